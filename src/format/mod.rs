//! Numbers and problems in words for people: shares as percentages, file
//! problems ([`problem`]) and text tables ([`table`]). Below every stage,
//! so labels, stats, weights, score, shards and report word and lay them
//! out alike.

pub mod problem;
pub mod table;

/// A ratio that is 0 (not NaN) when the denominator is 0.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// `12.34%`, with more digits for small shares so rare classes show.
pub fn percent(f: f64) -> String {
    let p = f * 100.0;
    if p != 0.0 && p.abs() < 0.1 {
        format!("{p:.4}%")
    } else {
        format!("{p:.2}%")
    }
}

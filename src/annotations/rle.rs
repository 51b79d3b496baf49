//! COCO run-length counts: pycocotools' compressed string form
//! (`rleToString` / `rleFrString` in `maskApi.c`) and the on-intervals a
//! count list stands for.
//!
//! Counts alternate background and foreground runs over the column-major
//! pixel order (index `x * h + y`), starting with background; a run may be
//! empty. The string form stores each count (from the fourth on, its
//! difference from the count two before) in 5-bit groups, low first, as
//! characters `0`..`o`, bit 6 meaning "more groups follow" and bit 5 of the
//! last group the sign.

/// Longest group sequence one count may use: 7 groups hold 35 bits, more
/// than any 32-bit count or difference of two needs.
const MAX_GROUPS: u32 = 7;

/// pycocotools' compressed string for `counts` (`rleToString`), byte for
/// byte.
pub fn encode_string(counts: &[u32]) -> String {
    let mut s = String::with_capacity(counts.len() * 2);
    for (i, &c) in counts.iter().enumerate() {
        let mut x = i64::from(c);
        if i > 2 {
            x -= i64::from(counts[i - 2]);
        }
        loop {
            let mut c = (x & 0x1f) as u8;
            x >>= 5;
            let more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                c |= 0x20;
            }
            s.push(char::from(c + 48));
            if !more {
                break;
            }
        }
    }
    s
}

/// The counts of a compressed string (`rleFrString`). Where pycocotools
/// reads a malformed string past its end or with undefined shifts, this
/// returns why the string is malformed instead.
pub fn decode_string(s: &str) -> Result<Vec<u32>, String> {
    let bytes = s.as_bytes();
    let mut counts: Vec<u32> = Vec::with_capacity(bytes.len() / 2 + 1);
    let mut p = 0;
    while p < bytes.len() {
        let mut x: i64 = 0;
        let mut k: u32 = 0;
        loop {
            let Some(&b) = bytes.get(p) else {
                return Err(format!(
                    "compressed counts end inside a number (at character {}); \
                     expected a complete pycocotools string",
                    p + 1
                ));
            };
            if !(48..=111).contains(&b) {
                return Err(format!(
                    "compressed counts hold `{}` at character {}; expected only `0` to `o`",
                    char::from(b).escape_default(),
                    p + 1
                ));
            }
            if k == MAX_GROUPS {
                return Err(format!(
                    "compressed counts hold a number longer than {MAX_GROUPS} characters \
                     (at character {}); expected 32-bit counts",
                    p + 1
                ));
            }
            let c = i64::from(b - 48);
            x |= (c & 0x1f) << (5 * k);
            p += 1;
            k += 1;
            if c & 0x20 == 0 {
                if c & 0x10 != 0 {
                    x |= -1i64 << (5 * k);
                }
                break;
            }
        }
        let m = counts.len();
        if m > 2 {
            x += i64::from(counts[m - 2]);
        }
        let Ok(v) = u32::try_from(x) else {
            return Err(format!(
                "compressed counts decode to count {x} (count {}); expected 0 to {}",
                m + 1,
                u32::MAX
            ));
        };
        counts.push(v);
    }
    Ok(counts)
}

/// Appends the foreground runs of `counts` as `(start, end)` half-open
/// intervals of pixel indices, empty runs left out. Returns the sum of all
/// counts (the pixels they cover).
pub fn counts_intervals(counts: &[u32], out: &mut Vec<(u64, u64)>) -> u64 {
    let mut pos = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        let end = pos + u64::from(c);
        if i % 2 == 1 && c > 0 {
            out.push((pos, end));
        }
        pos = end;
    }
    pos
}

/// Counts from on-intervals (sorted, disjoint, within `total` pixels):
/// background first, touching runs joined, no trailing empty run: the
/// counts pycocotools' `rleEncode` gives for the decoded mask.
pub fn intervals_counts(intervals: &[(u64, u64)], total: u64) -> Vec<u32> {
    let mut counts = Vec::with_capacity(intervals.len() * 2 + 1);
    let mut pos = 0u64;
    let mut last_end: Option<u64> = None;
    for &(s, e) in intervals {
        if s == e {
            continue;
        }
        if last_end == Some(s) {
            // Touching runs form one foreground run.
            if let Some(c) = counts.last_mut() {
                *c += (e - s) as u32;
            }
        } else {
            counts.push((s - pos) as u32);
            counts.push((e - s) as u32);
        }
        pos = e;
        last_end = Some(e);
    }
    if pos < total || counts.is_empty() {
        counts.push((total - pos) as u32);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_encoded_strings() {
        // [3, 2, 4]: 3 -> '3', 2 -> '2', 4 -> '4' (no differences yet).
        assert_eq!(encode_string(&[3, 2, 4]), "324");
        // 100 = 0b11_00100: low group 4 | more (0x20) = 36 -> 'T'; then
        // 3 -> '3'.
        assert_eq!(encode_string(&[100]), "T3");
        // 16 alone would read as negative (bit 5 set): 16 | 0x20 = 48 -> '`',
        // then 0.
        assert_eq!(encode_string(&[16]), "`0");
        // The fourth count is stored as its difference from the second:
        // [1, 5, 1, 3] -> '1','5','1', 3-5 = -2 -> 0x1e -> 'N'.
        assert_eq!(encode_string(&[1, 5, 1, 3]), "151N");
        assert_eq!(encode_string(&[]), "");
    }

    #[test]
    fn hand_strings_decode() {
        assert_eq!(decode_string("324").unwrap(), vec![3, 2, 4]);
        assert_eq!(decode_string("T3").unwrap(), vec![100]);
        assert_eq!(decode_string("`0").unwrap(), vec![16]);
        assert_eq!(decode_string("151N").unwrap(), vec![1, 5, 1, 3]);
        // A 4x4 mask with a 2x2 square at rows 1-2, columns 1-2: counts
        // [5, 2, 2, 2, 5]; the fourth and fifth are stored as 2-2 = 0 -> '0'
        // and 5-2 = 3 -> '3'.
        assert_eq!(encode_string(&[5, 2, 2, 2, 5]), "52203");
        assert_eq!(decode_string("52203").unwrap(), vec![5, 2, 2, 2, 5]);
    }

    #[test]
    fn round_trip_large_and_irregular() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..500 {
            let n = (next() % 40) as usize;
            let counts: Vec<u32> = (0..n)
                .map(|_| match next() % 4 {
                    0 => 0,
                    1 => (next() % 40) as u32,
                    2 => (next() % 100_000) as u32,
                    _ => (next() % (1 << 28)) as u32,
                })
                .collect();
            let s = encode_string(&counts);
            assert_eq!(decode_string(&s).unwrap(), counts, "{s}");
        }
        for v in [
            0u32,
            15,
            16,
            31,
            32,
            1 << 20,
            (1 << 29) - 1,
            1 << 30,
            u32::MAX,
        ] {
            let counts = [v, 1, v, 0, v];
            assert_eq!(decode_string(&encode_string(&counts)).unwrap(), counts);
        }
    }

    #[test]
    fn malformed_strings_are_refused() {
        assert!(decode_string("3 2").unwrap_err().contains("` `"));
        // 'T' says more follows, then the string ends.
        assert!(decode_string("T").unwrap_err().contains("end inside"));
        // 'O' = 31: sign bit set, no more groups -> -1, not a count.
        assert!(decode_string("O").unwrap_err().contains("-1"));
        assert!(decode_string("oooooooo0").unwrap_err().contains("longer"));
    }

    #[test]
    fn intervals_round_trip() {
        let counts = [0, 3, 2, 0, 0, 4, 1];
        let mut iv = Vec::new();
        let total = counts_intervals(&counts, &mut iv);
        assert_eq!(total, 10);
        assert_eq!(iv, vec![(0, 3), (5, 9)]);
        assert_eq!(intervals_counts(&iv, total), vec![0, 3, 2, 4, 1]);
        assert_eq!(intervals_counts(&[(0, 2), (2, 4)], 5), vec![0, 4, 1]);
        assert_eq!(intervals_counts(&[], 7), vec![7]);
        assert_eq!(intervals_counts(&[(3, 7)], 7), vec![3, 4]);
        assert_eq!(intervals_counts(&[(0, 7)], 7), vec![0, 7]);
    }
}

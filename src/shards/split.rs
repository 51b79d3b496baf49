//! Split stage of shards: sample indices → a split per sample, deterministic
//! for a seed.
//!
//! Without stratification a seeded shuffle gives each split its exact share.
//! With it, iterative stratification (Sechidis et al. 2011) on per-image
//! class presence: the rarest class is placed first, each of its images goes
//! to the split that most lacks that class; a class held by at least as many
//! images as there are splits is wanted at least once in every split, so rare
//! classes are not left out of validation.

/// A small deterministic generator (SplitMix64): same seed, same sequence
/// on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x6A09_E667_F3BC_C908)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Assigns each of `n` samples to a split by a seeded shuffle: split `s`
/// gets `round(fraction_s * n)` samples, the first split the rest.
pub fn random(n: usize, fractions: &[f64], seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut order);
    let mut out = vec![0; n];
    let mut at = 0;
    for (s, f) in fractions.iter().enumerate().skip(1) {
        let take = ((f * n as f64).round() as usize).min(n - at);
        for &i in &order[at..at + take] {
            out[i] = s;
        }
        at += take;
    }
    out
}

/// Iterative stratification. `classes[i]` lists the classes present in
/// sample `i`; `fractions[s]` is split `s`'s share (they sum to 1).
pub fn stratified(
    classes: &[Vec<u16>],
    num_classes: usize,
    fractions: &[f64],
    seed: u64,
) -> Vec<usize> {
    let n = classes.len();
    let splits = fractions.len();
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let mut holders: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for &i in &order {
        for &c in &classes[i] {
            holders[usize::from(c)].push(i);
        }
    }
    let live = fractions.iter().filter(|&&f| f > 0.0).count();
    let mut desired: Vec<Vec<f64>> = fractions
        .iter()
        .map(|&f| {
            holders
                .iter()
                .map(|h| {
                    let want = f * h.len() as f64;
                    if f > 0.0 && h.len() >= live {
                        want.max(1.0)
                    } else {
                        want
                    }
                })
                .collect()
        })
        .collect();
    let mut total: Vec<f64> = fractions.iter().map(|f| f * n as f64).collect();
    let mut remaining: Vec<usize> = holders.iter().map(Vec::len).collect();
    let mut out: Vec<Option<usize>> = vec![None; n];
    let mut best = Vec::with_capacity(splits);
    // The class with the fewest samples left to place (lowest index on ties).
    while let Some(c) = (0..num_classes)
        .filter(|&c| remaining[c] > 0)
        .min_by_key(|&c| (remaining[c], c))
    {
        for &i in &holders[c] {
            if out[i].is_some() {
                continue;
            }
            best.clear();
            best.extend(0..splits);
            keep_max(&mut best, |s| desired[s][c]);
            keep_max(&mut best, |s| total[s]);
            let s = best[rng.below(best.len())];
            out[i] = Some(s);
            total[s] -= 1.0;
            for &k in &classes[i] {
                desired[s][usize::from(k)] -= 1.0;
                remaining[usize::from(k)] -= 1;
            }
        }
    }
    for &i in &order {
        if out[i].is_none() {
            best.clear();
            best.extend(0..splits);
            keep_max(&mut best, |s| total[s]);
            let s = best[rng.below(best.len())];
            out[i] = Some(s);
            total[s] -= 1.0;
        }
    }
    out.into_iter().map(|s| s.unwrap_or(0)).collect()
}

/// Keeps the candidates with the largest key.
fn keep_max(cands: &mut Vec<usize>, key: impl Fn(usize) -> f64) {
    let top = cands
        .iter()
        .map(|&s| key(s))
        .fold(f64::NEG_INFINITY, f64::max);
    cands.retain(|&s| key(s) == top);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(assign: &[usize], s: usize) -> usize {
        assign.iter().filter(|&&a| a == s).count()
    }

    #[test]
    fn random_split_is_exact_and_seeded() {
        let a = random(100, &[0.8, 0.1, 0.1], 7);
        assert_eq!((count(&a, 0), count(&a, 1), count(&a, 2)), (80, 10, 10));
        assert_eq!(a, random(100, &[0.8, 0.1, 0.1], 7));
        assert_ne!(a, random(100, &[0.8, 0.1, 0.1], 8));
    }

    #[test]
    fn stratified_keeps_rare_classes_in_every_split() {
        // 200 samples: class 0 everywhere, class 1 in 40, class 2 in only 3.
        let classes: Vec<Vec<u16>> = (0..200)
            .map(|i| {
                let mut v = vec![0u16];
                if i % 5 == 0 {
                    v.push(1);
                }
                if i == 17 || i == 93 || i == 150 {
                    v.push(2);
                }
                v
            })
            .collect();
        let a = stratified(&classes, 3, &[0.9, 0.1], 7);
        assert_eq!(a, stratified(&classes, 3, &[0.9, 0.1], 7));
        let held = |s: usize, c: u16| {
            (0..200)
                .filter(|&i| a[i] == s && classes[i].contains(&c))
                .count()
        };
        assert_eq!(count(&a, 1), 20);
        assert_eq!(held(1, 1), 4);
        assert!(held(1, 2) >= 1 && held(0, 2) >= 1);
    }

    #[test]
    fn samples_without_classes_fill_by_size() {
        let classes = vec![Vec::new(); 10];
        let a = stratified(&classes, 2, &[0.7, 0.3], 1);
        assert_eq!(count(&a, 1), 3);
    }
}

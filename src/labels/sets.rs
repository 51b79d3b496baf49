//! Interned label sets for annotation regions.
//!
//! A pixel of an annotation export carries the set of categories whose
//! regions cover it. The reader turns each distinct set of an image into a
//! code once (a lock per distinct set per image, never per pixel); every
//! later lookup (`LabelMap::resolve`) is lock-free. A code is a position in
//! an append-only table, so a resolved set stays borrowed safely while
//! other threads add sets. Codes depend on the order images are read, so
//! they never appear in any output: only the class sets they stand for do.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::Resolved;

/// What a category id means under a `categories` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    Class(u16),
    /// Not a class: its regions carry nothing.
    Dropped,
    /// Its pixels count nowhere.
    Ignore,
}

/// One interned meaning: classes, or ignored.
#[derive(Debug)]
pub struct Set {
    classes: Box<[u16]>,
    ignored: bool,
}

impl Set {
    pub fn resolved(&self) -> Resolved<'_> {
        if self.ignored {
            Resolved::Ignore
        } else {
            Resolved::Classes(&self.classes)
        }
    }
}

/// Codes of class sets, shared by a map and the readers that use it.
#[derive(Debug, Default)]
pub struct SetTable {
    sets: boxcar::Vec<Set>,
    index: Mutex<BTreeMap<(bool, Vec<u16>), u32>>,
}

impl SetTable {
    /// The code of `classes` (sorted, distinct), or of "ignored".
    pub fn intern(&self, classes: &[u16], ignored: bool) -> u32 {
        let key = if ignored {
            (true, Vec::new())
        } else {
            (false, classes.to_vec())
        };
        // A poisoned lock only means another reader panicked; the map is
        // still consistent (entries are added after the push succeeds).
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&code) = index.get(&key) {
            return code;
        }
        let code = self.sets.push(Set {
            classes: key.1.clone().into_boxed_slice(),
            ignored,
        }) as u32;
        index.insert(key, code);
        code
    }

    pub fn get(&self, code: u32) -> Option<&Set> {
        self.sets.get(code as usize)
    }

    pub fn len(&self) -> usize {
        self.sets.count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_meaning_same_code() {
        let t = SetTable::default();
        let a = t.intern(&[0, 2], false);
        let b = t.intern(&[1], false);
        assert_ne!(a, b);
        assert_eq!(t.intern(&[0, 2], false), a);
        let ig = t.intern(&[0], true);
        assert_eq!(t.intern(&[], true), ig);
        assert_eq!(t.get(a).unwrap().resolved(), Resolved::Classes(&[0, 2]));
        assert_eq!(t.get(ig).unwrap().resolved(), Resolved::Ignore);
        assert!(t.get(99).is_none());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn threads_agree_on_codes() {
        let t = SetTable::default();
        let codes: Vec<Vec<u32>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..50u16).map(|c| t.intern(&[c], false)).collect()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(codes.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(t.len(), 50);
    }
}

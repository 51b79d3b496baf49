//! File problems in words: the one sentence of each kind of problem, used
//! by the tables, the reports and the console alike. Below every stage; the
//! stages' problem types ([`crate::stats::scan::SizeMismatch`],
//! [`crate::score::scan::SizeMismatch`], the documents' `Files`) word
//! themselves through these.

/// One file of a size mismatch: its role (`mask`, `truth`), path and size.
#[derive(Debug, Clone, Copy)]
pub struct Sized<'a> {
    pub role: &'a str,
    pub path: &'a str,
    /// `WxH`, or why it could not be read.
    pub size: &'a str,
}

/// In a list: "size mismatch: mask `a` is 4x4, image `b` is 8x8".
pub fn size_mismatch_line(a: Sized<'_>, b: Sized<'_>) -> String {
    format!(
        "size mismatch: {} `{}` is {}, {} `{}` is {}",
        a.role, a.path, a.size, b.role, b.path, b.size
    )
}

/// As a sentence: "mask `a` is 4x4 but image `b` is 8x8".
pub fn size_mismatch(a: Sized<'_>, b: Sized<'_>) -> String {
    format!(
        "{} `{}` is {} but {} `{}` is {}",
        a.role, a.path, a.size, b.role, b.path, b.size
    )
}

/// Why `a` was skipped (the skip line names its path already):
/// "prediction is 4x4 but truth `b` is 8x8".
pub fn size_mismatch_reason(a: Sized<'_>, b: Sized<'_>) -> String {
    format!(
        "{} is {} but {} `{}` is {}",
        a.role, a.size, b.role, b.path, b.size
    )
}

/// A file left out: "skipped `a.png`: REASON".
pub fn skipped(path: &str, reason: &str) -> String {
    format!("skipped `{path}`: {reason}")
}

/// A file left out whose reason names it: "skipped: REASON".
pub fn skipped_reason(reason: &str) -> String {
    format!("skipped: {reason}")
}

/// A file with no partner: "mask without image: `a.png`".
pub fn unpaired(what: &str, partner: &str, path: &str) -> String {
    format!("{what} without {partner}: `{path}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_in_its_words() {
        let mask = Sized {
            role: "mask",
            path: "m.png",
            size: "4x4",
        };
        let image = Sized {
            role: "image",
            path: "i.jpg",
            size: "8x8",
        };
        assert_eq!(
            size_mismatch_line(mask, image),
            "size mismatch: mask `m.png` is 4x4, image `i.jpg` is 8x8"
        );
        assert_eq!(
            size_mismatch(mask, image),
            "mask `m.png` is 4x4 but image `i.jpg` is 8x8"
        );
        assert_eq!(
            size_mismatch_reason(mask, image),
            "mask is 4x4 but image `i.jpg` is 8x8"
        );
        assert_eq!(skipped("a.png", "truncated"), "skipped `a.png`: truncated");
        assert_eq!(skipped_reason("why"), "skipped: why");
        assert_eq!(
            unpaired("truth", "prediction", "t.png"),
            "truth without prediction: `t.png`"
        );
    }
}

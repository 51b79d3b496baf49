//! WebDataset tar entries with deterministic headers: ustar, mode 0644,
//! uid/gid 0, no user names, mtime 0. A sample's files are written next to
//! each other in sorted name order, all sharing the key before the first dot.

use std::io::{self, Write};

/// Bytes of the end-of-archive marker (two zero blocks).
pub const END: usize = 1024;
const BLOCK: u64 = 512;

/// Bytes an entry of `n` data bytes takes: a header and the data padded to a block.
pub fn entry_len(n: u64) -> u64 {
    BLOCK + n.div_ceil(BLOCK) * BLOCK
}

/// Writes one regular-file entry.
pub fn append(w: &mut impl Write, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    w.write_all(h.as_bytes())?;
    w.write_all(data)?;
    let pad = (entry_len(data.len() as u64) - BLOCK - data.len() as u64) as usize;
    w.write_all(&[0u8; BLOCK as usize][..pad])
}

/// Writes a sample: `KEY.EXT` (the image), `KEY.json`, `KEY.mask.npy`, in
/// sorted name order.
pub fn append_sample(
    w: &mut impl Write,
    key: &str,
    image_ext: &str,
    image: &[u8],
    json: &[u8],
    npy: &[u8],
) -> io::Result<()> {
    let mut files = [
        (format!("{key}.{image_ext}"), image),
        (format!("{key}.json"), json),
        (format!("{key}.mask.npy"), npy),
    ];
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, data) in &files {
        append(w, name, data)?;
    }
    Ok(())
}

/// Ends the archive.
pub fn finish(w: &mut impl Write) -> io::Result<()> {
    w.write_all(&[0u8; END])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_padded_and_readable() {
        let mut buf = Vec::new();
        append_sample(&mut buf, "k1", "png", b"img", b"{}", b"npy!").unwrap();
        finish(&mut buf).unwrap();
        assert_eq!(buf.len() as u64, 3 * entry_len(4) + END as u64);
        let mut ar = tar::Archive::new(buf.as_slice());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                assert_eq!(e.header().mtime().unwrap(), 0);
                assert_eq!(e.header().mode().unwrap(), 0o644);
                e.path().unwrap().display().to_string()
            })
            .collect();
        assert_eq!(names, vec!["k1.json", "k1.mask.npy", "k1.png"]);
    }
}

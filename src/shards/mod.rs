//! Shards stage: image/mask pairs → training shards (WebDataset tar or
//! safetensors) with a manifest, `index.json`.
//!
//! Two passes. Pass 1 ([`plan`]) reads headers (and, for a stratified
//! split only, each mask's code histogram) and fixes every shard's samples
//! up front. Pass 2 ([`write`]) decodes each mask once into multi-hot planes
//! and its histogram (for exact per-split counts) and writes the shards in
//! plan order, decoding samples in parallel: the bytes do not depend on the
//! thread count. Each shard is written under a temporary name and renamed
//! when complete; a rerun of the same command keeps the shards it can prove
//! complete and rewrites the rest. Memory holds one shard's samples at most.

pub mod encode;
pub mod manifest;
pub mod merge;
pub mod plan;
pub mod split;
pub mod verify;
pub mod wds;
pub mod write;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::bail;
use serde::{Deserialize, Serialize};

pub use manifest::Manifest;

/// Identifies the manifest format; another value is rejected by `verify`.
pub const FORMAT: &str = "maskprep-shards/1";
/// The manifest's file name inside the output folder.
pub const INDEX: &str = "index.json";
/// Hidden folder of per-shard resume records.
pub const STATE_DIR: &str = ".maskprep";
/// Test hook: exit abruptly (code 137, like a kill) after this many samples.
pub const ABORT_ENV: &str = "MASKPREP_SHARDS_ABORT_AFTER";
/// How the mask arrays are laid out, written into every manifest.
pub const MASK_LAYOUT: &str = "uint8 [C,H,W] multi-hot: 1 where the pixel carries class c (classes in \
     manifest order), else 0; ignored and undeclared pixels are 0 in every plane";

/// Shard file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// WebDataset tar: image bytes as they were, `.mask.npy`, `.json` per sample.
    Webdataset,
    /// safetensors: `images` uint8 [N,3,H,W], `masks` uint8 [N,C,H,W].
    Safetensors,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "webdataset" | "wds" | "tar" => Ok(Self::Webdataset),
            "safetensors" => Ok(Self::Safetensors),
            _ => Err(format!(
                "`{s}` is not a shard format; expected `webdataset` or `safetensors`"
            )),
        }
    }
}

impl Format {
    pub fn ext(self) -> &'static str {
        match self {
            Self::Webdataset => "tar",
            Self::Safetensors => "safetensors",
        }
    }
}

/// `WxH` in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dims {
    pub width: u32,
    pub height: u32,
}

impl FromStr for Dims {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a size; expected WxH in pixels, e.g. 512x512");
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let width: u32 = w.trim().parse().map_err(|_| bad())?;
        let height: u32 = h.trim().parse().map_err(|_| bad())?;
        if width == 0
            || height == 0
            || u64::from(width) * u64::from(height) > crate::decode::MAX_PIXELS
        {
            return Err(bad());
        }
        Ok(Self { width, height })
    }
}

impl fmt::Display for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// A byte count: `256MB` (10^6), `1GiB` (2^30), `4096`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("`{s}` is not a size; expected a number of bytes such as 256MB, 1GiB or 4096")
        };
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let num: f64 = num.parse().map_err(|_| bad())?;
        let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "m" | "mb" => 1e6,
            "g" | "gb" => 1e9,
            "t" | "tb" => 1e12,
            "kib" => 1024.0,
            "mib" => 1024.0 * 1024.0,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            _ => return Err(bad()),
        };
        let bytes = (num * mult).round();
        if !(1.0..1e18).contains(&bytes) {
            return Err(bad());
        }
        Ok(Self(bytes as u64))
    }
}

/// A split named on the command line: `val=0.1`.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitArg {
    pub name: String,
    pub fraction: f64,
}

impl FromStr for SplitArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a split; expected NAME=FRACTION, e.g. val=0.1");
        let (name, f) = s.split_once('=').ok_or_else(bad)?;
        let name = name.trim().to_string();
        let fraction: f64 = f.trim().parse().map_err(|_| bad())?;
        let name_ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(format!(
                "split name `{name}` is not usable; expected lowercase letters, digits, `_` or `-`"
            ));
        }
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(format!(
                "split `{name}` has fraction {fraction}; expected a number between 0 and 1"
            ));
        }
        Ok(Self { name, fraction })
    }
}

/// What each sample is cut or scaled to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum Geometry {
    /// Samples keep their size (safetensors: all must share it).
    Native,
    /// Images resized bilinearly, masks by nearest neighbour.
    Resize(Dims),
    /// Cut into tiles; the last row and column are shifted to end at the edge.
    Tile(Dims),
}

/// `maskprep shards DIR -o OUT`.
#[derive(Debug, Clone)]
pub struct ShardsConfig {
    pub dir: PathBuf,
    pub labels: Option<String>,
    /// How annotation exports are read.
    pub exports: crate::dataset::ExportOptions,
    pub out: PathBuf,
    pub format: Format,
    /// A shard closes before its bytes would pass this.
    pub shard_bytes: Option<u64>,
    /// A shard closes at this many samples.
    pub shard_samples: Option<usize>,
    pub geometry: Geometry,
    /// Splits besides `train`, which gets the rest.
    pub splits: Vec<SplitArg>,
    pub seed: u64,
    pub stratify: bool,
    /// Write each split's samples in seeded random order, not key order.
    pub shuffle: bool,
    pub strict: bool,
    pub quiet: bool,
    /// The command line, recorded in the manifest.
    pub command: Vec<String>,
    /// The piece of the dataset to write (pipelines on a cluster).
    pub partition: crate::source::Partition,
}

/// Default shard size when neither limit is given.
pub const DEFAULT_SHARD_BYTES: u64 = 256_000_000;

impl ShardsConfig {
    /// Split names and fractions, `train` first.
    pub fn split_table(&self) -> anyhow::Result<Vec<(String, f64)>> {
        let rest: f64 = 1.0 - self.splits.iter().map(|s| s.fraction).sum::<f64>();
        if rest <= 1e-9 {
            bail!(
                "`--split` fractions sum to {:.6}; expected less than 1 (`train` gets the rest)",
                1.0 - rest
            );
        }
        let mut out = vec![("train".to_string(), rest)];
        for s in &self.splits {
            if out.iter().any(|(n, _)| n == &s.name) {
                bail!(
                    "split `{}` is named twice (or is `train`, which gets the rest); expected distinct names",
                    s.name
                );
            }
            out.push((s.name.clone(), s.fraction));
        }
        Ok(out)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.format == Format::Webdataset && self.geometry != Geometry::Native {
            bail!(
                "`--size` and `--tile` apply to `--format safetensors`; webdataset shards keep images as they are"
            );
        }
        if self.shard_samples == Some(0) {
            bail!("`--samples-per-shard 0`: expected at least 1");
        }
        Ok(())
    }
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_dims_and_splits() {
        assert_eq!("256MB".parse::<ByteSize>().unwrap().0, 256_000_000);
        assert_eq!("1GiB".parse::<ByteSize>().unwrap().0, 1 << 30);
        assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
        assert_eq!("1.5kb".parse::<ByteSize>().unwrap().0, 1500);
        assert!("12 parsecs".parse::<ByteSize>().is_err());
        assert!("0MB".parse::<ByteSize>().is_err());
        let d: Dims = "512x256".parse().unwrap();
        assert_eq!((d.width, d.height), (512, 256));
        assert!("512".parse::<Dims>().is_err());
        assert!("0x5".parse::<Dims>().is_err());
        let s: SplitArg = "val=0.1".parse().unwrap();
        assert_eq!((s.name.as_str(), s.fraction), ("val", 0.1));
        assert!("val=1.5".parse::<SplitArg>().is_err());
        assert!("Val.x=0.1".parse::<SplitArg>().is_err());
    }
}

//! Pass 1 of shards: the dataset's pairs → a plan fixing every shard's
//! samples before any is written.
//!
//! What it reads per pair: file sizes and times, the mask's PNG header and
//! the image's header (its size must match the mask's). Only a stratified
//! `--split` also decodes each mask, to its code histogram (class presence,
//! no planes). Sample sizes are known from headers, so shard boundaries are
//! exact for tar and deterministic for both formats; each shard gets a
//! digest of what goes into it, which a rerun compares to resume.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::encode::{self, SampleInfo};
use super::split;
use super::{DEFAULT_SHARD_BYTES, Dims, Format, Geometry, ShardsConfig, hex, wds};
use crate::dataset::Prepared;
use crate::decode::{self, MaskHist, Scratch};
use crate::labels::{LabelMap, Resolved};
use crate::output::error_chain;
use crate::source::Item;
use crate::stats::BadFile;
use crate::tensors::{DType, npy_header};

/// Longest sample key, so `KEY.mask.npy` fits a ustar name.
const MAX_KEY: usize = 80;
/// Safetensors header bytes besides the per-sample metadata (an estimate).
const ST_HEADER: u64 = 1024;

/// One image/mask pair that passed pass 1.
#[derive(Debug, Clone)]
pub struct Source {
    /// The sample key: the pairing key sanitised (no dots), unique.
    pub key: String,
    pub mask: PathBuf,
    pub image: PathBuf,
    /// Paths relative to the dataset root, `/`-separated (in manifests).
    pub mask_rel: String,
    pub image_rel: String,
    /// The image's extension, lowercase: its tar entry is `KEY.EXT`.
    pub image_ext: String,
    /// Source size (mask and image agree).
    pub width: u32,
    pub height: u32,
    pub image_len: u64,
    /// Mask and image (length, mtime in ns): a changed file changes the digest.
    stamp: [u64; 4],
    /// `[x, y, w, h]` per tile, row-major; empty unless `--tile`.
    pub tiles: Vec<[u32; 4]>,
    /// Classes present (stratified split only).
    pub classes: Vec<u16>,
}

impl Source {
    /// Samples this pair yields (tiles, or one).
    pub fn samples(&self) -> usize {
        self.tiles.len().max(1)
    }
}

/// One shard to write.
#[derive(Debug, Clone)]
pub struct ShardPlan {
    pub split: usize,
    /// Index within its split.
    pub index: usize,
    /// Path relative to the output folder: `train/train-000000.tar`.
    pub name: String,
    /// Indices into [`Plan::sources`], in write order.
    pub sources: Vec<usize>,
    pub samples: usize,
    /// Planned size (exact for tar, before any sample fails in pass 2).
    pub bytes: u64,
    /// sha256 of the settings and inputs of this shard.
    pub digest: String,
}

/// Pass 1's result.
#[derive(Debug)]
pub struct Plan {
    /// Split names and fractions, `train` first.
    pub splits: Vec<(String, f64)>,
    pub sources: Vec<Source>,
    /// Split of each source.
    pub assignment: Vec<usize>,
    pub shards: Vec<ShardPlan>,
    /// Pairs left out, with why.
    pub skipped: Vec<BadFile>,
    /// safetensors: the size of every sample.
    pub sample_dims: Option<Dims>,
    pub stratified: bool,
    /// Pass 1 decoded every mask (stratified split).
    pub decoded_masks: bool,
}

/// `--strict` stopped at a bad pair.
#[derive(Debug, thiserror::Error)]
#[error("cannot use `{path}`: {reason} (`--strict` stops at the first bad file)")]
pub struct StrictStop {
    pub path: String,
    pub reason: String,
}

impl From<BadFile> for StrictStop {
    fn from(b: BadFile) -> Self {
        Self {
            path: b.path,
            reason: b.reason,
        }
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> BadFile {
    BadFile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Plans the shards of a prepared dataset.
pub fn plan(
    cfg: &ShardsConfig,
    prep: &Prepared,
    splits: Vec<(String, f64)>,
) -> Result<Plan, StrictStop> {
    let ds = &prep.dataset;
    let stratified = cfg.stratify && splits.len() > 1;
    let keys = sample_keys(ds.items.iter().map(|i| i.key.as_str()));
    let probed: Vec<Result<Source, BadFile>> = ds
        .items
        .par_iter()
        .zip(keys)
        .map_init(Scratch::default, |scratch, (item, key)| {
            probe(item, key, &ds.root, cfg, prep, stratified, scratch)
        })
        .collect();
    let mut sources = Vec::new();
    // Files the walk could not take are listed like unreadable pairs.
    let mut skipped: Vec<BadFile> = ds
        .skipped
        .iter()
        .map(|s| bad(&s.path, s.reason.clone()))
        .collect();
    if cfg.strict && !skipped.is_empty() {
        return Err(skipped.swap_remove(0).into());
    }
    let mut sample_dims = match cfg.geometry {
        Geometry::Native => None,
        Geometry::Resize(d) | Geometry::Tile(d) => Some(d),
    };
    let mut first: Option<String> = None;
    for r in probed {
        let r = r.and_then(|s| {
            if cfg.format != Format::Safetensors || cfg.geometry != Geometry::Native {
                return Ok(s);
            }
            let dims = Dims {
                width: s.width,
                height: s.height,
            };
            match (sample_dims, &first) {
                (Some(d), Some(f)) if d != dims => Err(bad(
                    &s.mask,
                    format!(
                        "mask is {dims}; expected {d} like the first sample `{f}` (safetensors \
                         stacks samples: pass `--size` or `--tile` to mix sizes)"
                    ),
                )),
                _ => {
                    sample_dims = Some(dims);
                    first.get_or_insert_with(|| s.mask.display().to_string());
                    Ok(s)
                }
            }
        });
        match r {
            Ok(s) => sources.push(s),
            Err(b) if cfg.strict => return Err(b.into()),
            Err(b) => skipped.push(b),
        }
    }
    let fractions: Vec<f64> = splits.iter().map(|s| s.1).collect();
    let assignment = if splits.len() == 1 {
        vec![0; sources.len()]
    } else if stratified {
        let classes: Vec<Vec<u16>> = sources.iter().map(|s| s.classes.clone()).collect();
        split::stratified(&classes, prep.map.num_classes(), &fractions, cfg.seed)
    } else {
        split::random(sources.len(), &fractions, cfg.seed)
    };
    let settings = Settings {
        maskprep: env!("CARGO_PKG_VERSION"),
        format: cfg.format,
        geometry: cfg.geometry,
        sample_dims,
        labels: &prep.map.spec,
    };
    let mut shards = Vec::new();
    for (s, (name, _)) in splits.iter().enumerate() {
        let mut members: Vec<usize> = (0..sources.len()).filter(|&i| assignment[i] == s).collect();
        if cfg.shuffle {
            split::Rng::new(cfg.seed ^ (s as u64).wrapping_mul(0xA24B_AED4_963E_E407))
                .shuffle(&mut members);
        }
        pack(
            cfg,
            prep,
            &settings,
            &sources,
            &members,
            s,
            name,
            sample_dims,
            &mut shards,
        );
    }
    Ok(Plan {
        splits,
        sources,
        assignment,
        shards,
        skipped,
        sample_dims,
        stratified,
        decoded_masks: stratified,
    })
}

/// What every shard's digest covers besides its inputs.
#[derive(Serialize)]
struct Settings<'a> {
    maskprep: &'a str,
    format: Format,
    geometry: Geometry,
    sample_dims: Option<Dims>,
    labels: &'a crate::labels::LabelSpec,
}

/// Closes shards at the sample and byte limits, in member order.
#[allow(clippy::too_many_arguments)]
fn pack(
    cfg: &ShardsConfig,
    prep: &Prepared,
    settings: &Settings<'_>,
    sources: &[Source],
    members: &[usize],
    split: usize,
    split_name: &str,
    sample_dims: Option<Dims>,
    out: &mut Vec<ShardPlan>,
) {
    let (max_bytes, max_samples) = match (cfg.shard_bytes, cfg.shard_samples) {
        (None, None) => (DEFAULT_SHARD_BYTES, usize::MAX),
        (b, n) => (b.unwrap_or(u64::MAX), n.unwrap_or(usize::MAX)),
    };
    let (base, tail) = match cfg.format {
        Format::Webdataset => (0, wds::END as u64),
        Format::Safetensors => (ST_HEADER, 0),
    };
    let c = prep.map.num_classes();
    let mut cur: Vec<usize> = Vec::new();
    let (mut samples, mut bytes) = (0usize, base);
    let mut close = |cur: &mut Vec<usize>, samples: usize, bytes: u64| {
        let index = out.iter().filter(|s| s.split == split).count();
        let name = format!("{split_name}/{split_name}-{index:06}.{}", cfg.format.ext());
        let digest = digest(settings, &name, sources, cur);
        out.push(ShardPlan {
            split,
            index,
            name,
            sources: std::mem::take(cur),
            samples,
            bytes: bytes + tail,
            digest,
        });
    };
    for &i in members {
        let s = &sources[i];
        let n = s.samples();
        let b = source_bytes(cfg.format, s, c, split_name, sample_dims);
        if !cur.is_empty()
            && (samples + n > max_samples
                || bytes.saturating_add(b).saturating_add(tail) > max_bytes)
        {
            close(&mut cur, samples, bytes);
            samples = 0;
            bytes = base;
        }
        cur.push(i);
        samples += n;
        bytes += b;
    }
    if !cur.is_empty() {
        close(&mut cur, samples, bytes);
    }
}

/// Bytes a pair adds to a shard: exact for tar (entries are padded to 512
/// bytes and the JSON has a fixed width), data plus metadata for safetensors.
fn source_bytes(format: Format, s: &Source, c: usize, split: &str, dims: Option<Dims>) -> u64 {
    match format {
        Format::Webdataset => {
            let shape = [c, s.height as usize, s.width as usize];
            let npy =
                npy_header(DType::U8, &shape).len() as u64 + shape.iter().product::<usize>() as u64;
            let json = info_len(&encode::info(s, split, None, s.width, s.height, c));
            wds::entry_len(s.image_len) + wds::entry_len(npy) + wds::entry_len(json)
        }
        Format::Safetensors => {
            let d = dims.unwrap_or(Dims {
                width: s.width,
                height: s.height,
            });
            let hw = u64::from(d.width) * u64::from(d.height);
            let meta: u64 = if s.tiles.is_empty() {
                info_len(&encode::info(s, split, None, d.width, d.height, c)) + 1
            } else {
                s.tiles
                    .iter()
                    .map(|t| info_len(&encode::info(s, split, Some(*t), d.width, d.height, c)) + 1)
                    .sum()
            };
            s.samples() as u64 * (3 + c as u64) * hw + meta
        }
    }
}

fn info_len(info: &SampleInfo) -> u64 {
    serde_json::to_vec(info)
        .map(|v| v.len() as u64)
        .unwrap_or(0)
}

#[derive(Serialize)]
struct Input<'a> {
    key: &'a str,
    mask: &'a str,
    image: &'a str,
    stamp: [u64; 4],
    tiles: &'a [[u32; 4]],
}

#[derive(Serialize)]
struct Planned<'a> {
    settings: &'a Settings<'a>,
    shard: &'a str,
    inputs: Vec<Input<'a>>,
}

fn digest(settings: &Settings<'_>, name: &str, sources: &[Source], members: &[usize]) -> String {
    let planned = Planned {
        settings,
        shard: name,
        inputs: members
            .iter()
            .map(|&i| {
                let s = &sources[i];
                Input {
                    key: &s.key,
                    mask: &s.mask_rel,
                    image: &s.image_rel,
                    stamp: s.stamp,
                    tiles: &s.tiles,
                }
            })
            .collect(),
    };
    let json = serde_json::to_vec(&planned).unwrap_or_default();
    hex(&Sha256::digest(&json))
}

/// Checks one pair: both files readable, sizes agreeing, formats usable.
fn probe(
    item: &Item,
    key: String,
    root: &Path,
    cfg: &ShardsConfig,
    prep: &Prepared,
    presence: bool,
    scratch: &mut Scratch,
) -> Result<Source, BadFile> {
    let image = item.image.clone().ok_or_else(|| {
        bad(
            &item.mask,
            format!(
                "mask has no image; expected `images/{}.*` (png or jpg)",
                item.key
            ),
        )
    })?;
    let (mask_len, mask_time) = stamp(&item.mask)?;
    let (width, height, classes) = if presence {
        let hist = match prep.cache.get(&item.mask) {
            Some(h) => h.clone(),
            None => decode::read_hist(&item.mask, scratch).map_err(|e| {
                bad(
                    &item.mask,
                    format!("failed to decode mask: {}", error_chain(&e)),
                )
            })?,
        };
        prep.map
            .check_format(hist.format)
            .map_err(|why| bad(&item.mask, why))?;
        (hist.width, hist.height, present(&hist, &prep.map))
    } else {
        let (w, h) = png_size(&item.mask)?;
        (w, h, Vec::new())
    };
    let (image_len, image_time) = stamp(&image)?;
    let (iw, ih) = image_size(&image)?;
    if (iw, ih) != (width, height) {
        return Err(bad(
            &image,
            format!(
                "image is {iw}x{ih} but its mask `{}` is {width}x{height}; expected the same size",
                item.mask.display()
            ),
        ));
    }
    let tiles = match cfg.geometry {
        Geometry::Tile(t) => {
            if t.width > width || t.height > height {
                return Err(bad(
                    &item.mask,
                    format!(
                        "mask is {width}x{height}, smaller than `--tile {t}`; expected at least one whole tile"
                    ),
                ));
            }
            tiles(width, height, t)
        }
        _ => Vec::new(),
    };
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    };
    let image_ext = image
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    Ok(Source {
        key,
        mask_rel: rel(&item.mask),
        image_rel: rel(&image),
        mask: item.mask.clone(),
        image,
        image_ext,
        width,
        height,
        image_len,
        stamp: [mask_len, mask_time, image_len, image_time],
        tiles,
        classes,
    })
}

/// Classes a mask holds (at least one pixel).
pub fn present(hist: &MaskHist, map: &LabelMap) -> Vec<u16> {
    let mut set = BTreeSet::new();
    for &(code, n) in &hist.codes {
        if let Resolved::Classes(cs) = map.resolve(code, hist.format)
            && n > 0
        {
            set.extend(cs.iter().copied());
        }
    }
    set.into_iter().collect()
}

fn stamp(path: &Path) -> Result<(u64, u64), BadFile> {
    // An image of an annotation export: the export file's stamp (the
    // content hash of its objects catches an edit to this one image).
    let export = crate::decode::raster::export_of(path);
    let path = export.as_deref().unwrap_or(path);
    if crate::store::is_url(path) {
        // A store's listing gives the size; the content hashes of a resumed
        // shard's sources (see `shards::write`) catch a same-size rewrite.
        let len = crate::store::size(path)
            .map_err(|e| bad(path, format!("cannot read the object: {e}")))?;
        return Ok((len, 0));
    }
    let meta =
        std::fs::metadata(path).map_err(|e| bad(path, format!("cannot read the file: {e}")))?;
    let ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Ok((meta.len(), ns))
}

/// Width and height from a PNG's header, without decoding pixels.
fn png_size(path: &Path) -> Result<(u32, u32), BadFile> {
    if let Some(size) = crate::decode::raster::size(path) {
        return Ok(size);
    }
    let (w, h) = crate::store::header(
        path,
        |file| {
            let mut dec = png::Decoder::new(file);
            let info = dec.read_header_info().map_err(|e| {
                format!("not a readable PNG (truncated, corrupt or another format): {e}")
            })?;
            Ok((info.width, info.height))
        },
        |e| format!("cannot read the file: {e}"),
    )
    .map_err(|m| bad(path, m))?;
    if w == 0 || h == 0 {
        return Err(bad(
            path,
            format!("mask has zero size ({w}x{h}); expected at least 1x1"),
        ));
    }
    if u64::from(w) * u64::from(h) > decode::MAX_PIXELS {
        return Err(bad(
            path,
            format!(
                "mask is {w}x{h}, more than the {} pixels allowed",
                decode::MAX_PIXELS
            ),
        ));
    }
    Ok((w, h))
}

/// Width and height from an image's header; PNG and JPEG only.
fn image_size(path: &Path) -> Result<(u32, u32), BadFile> {
    crate::store::header(
        path,
        |r| {
            let reader = image::ImageReader::new(r)
                .with_guessed_format()
                .map_err(|e| format!("cannot read the file: {e}"))?;
            match reader.format() {
                Some(image::ImageFormat::Png | image::ImageFormat::Jpeg) => {}
                _ => return Err("image format is not supported; expected PNG or JPEG".to_string()),
            }
            reader
                .into_dimensions()
                .map_err(|e| format!("not a readable image: {e}"))
        },
        |e| format!("cannot read the file: {e}"),
    )
    .map_err(|m| bad(path, m))
}

/// Tile rectangles covering a `w x h` source; the last column and row are
/// shifted back to end at the edge (so they may overlap their neighbours).
pub fn tiles(w: u32, h: u32, t: Dims) -> Vec<[u32; 4]> {
    let starts = |size: u32, step: u32| {
        let mut v: Vec<u32> = (0..)
            .map(|k| k * step)
            .take_while(|&s| s + step <= size)
            .collect();
        if v.last().is_some_and(|&l| l + step < size) {
            v.push(size - step);
        }
        v
    };
    let xs = starts(w, t.width);
    let mut out = Vec::new();
    for y in starts(h, t.height) {
        for &x in &xs {
            out.push([x, y, t.width, t.height]);
        }
    }
    out
}

/// Sample keys from pairing keys: characters other than `[A-Za-z0-9_-]`
/// (dots, slashes) become `_`, at most [`MAX_KEY`] bytes, and a repeat gets
/// `-2`, `-3`, ... in sorted order.
pub fn sample_keys<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for k in keys {
        let mut base: String = k
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if base.is_empty() {
            base.push('_');
        }
        base.truncate(MAX_KEY - 8);
        let mut key = base.clone();
        let n = counts.entry(base.clone()).or_insert(1);
        while seen.contains(&key) {
            *n += 1;
            key = format!("{base}-{n}");
        }
        seen.insert(key.clone());
        out.push(key);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_no_dots_and_are_unique() {
        let keys = sample_keys(["a.b", "a_b", "sub/x.v2", "a_b"].into_iter());
        assert_eq!(keys, vec!["a_b", "a_b-2", "sub_x_v2", "a_b-3"]);
        assert!(keys.iter().all(|k| !k.contains('.')));
        let long = "z".repeat(200);
        assert!(sample_keys([long.as_str()].into_iter())[0].len() <= MAX_KEY);
    }

    #[test]
    fn tiles_cover_the_source() {
        let t = Dims {
            width: 32,
            height: 32,
        };
        let v = tiles(64, 48, t);
        assert_eq!(
            v,
            vec![
                [0, 0, 32, 32],
                [32, 0, 32, 32],
                [0, 16, 32, 32],
                [32, 16, 32, 32]
            ]
        );
        assert_eq!(tiles(32, 32, t), vec![[0, 0, 32, 32]]);
        assert_eq!(tiles(70, 32, t).len(), 3);
    }
}

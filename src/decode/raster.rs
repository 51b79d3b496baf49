//! Annotation exports read as masks: one image of a COCO JSON or run-length
//! CSV export is a *virtual mask* `EXPORT#KEY`. Reading it rasterises that
//! image's objects (in run space, never per object pixel) into runs of
//! category-set codes; the bytes carry those runs, so every stage that reads
//! a mask file (stats, shards, score) reads an export's images unchanged:
//! [`super::decode_hist`] sums the runs, [`super::decode_frame`] paints them.
//!
//! An export is registered once per run with the label map that says what
//! its categories mean; the codes are that map's interned sets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{CodeTable, DecodeError, Frame, MAX_PIXELS, MaskFormat, MaskHist};
use crate::annotations::{self, CrowdMode, Export, Order, Raster, RasterScratch};
use crate::labels::LabelMap;

/// First bytes of a rasterised image (never the start of a PNG or JPEG).
const MAGIC: &[u8; 8] = b"\0MPRAST\0";
/// Magic, width, height, order.
const HEADER: usize = 8 + 4 + 4 + 1;

/// An export registered for reading, with what its categories mean.
struct Registered {
    export: Arc<Export>,
    map: LabelMap,
    crowd: CrowdMode,
    /// Category id of each category index of the export.
    ids: Vec<u32>,
    /// Image index by key (the part of a virtual path after `#`).
    keys: BTreeMap<String, u32>,
}

type Registry = Mutex<BTreeMap<String, Arc<Registered>>>;

fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// Makes the images of `export` readable as virtual masks under `map` (a
/// `categories` map); `keys[i]` names image `i`. Registering the same
/// export again replaces it (the latest map wins).
pub fn register(export: Arc<Export>, keys: &[String], map: &LabelMap, crowd: CrowdMode) {
    let ids = export
        .categories
        .iter()
        .map(|c| u32::try_from(c.id).unwrap_or(u32::MAX))
        .collect();
    let keys = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i as u32))
        .collect();
    let prefix = export.path.display().to_string();
    let entry = Arc::new(Registered {
        export,
        map: map.clone(),
        crowd,
        ids,
        keys,
    });
    lock().insert(prefix, entry);
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<String, Arc<Registered>>> {
    registry().lock().unwrap_or_else(|e| e.into_inner())
}

/// The virtual mask path of image `key` of the export at `export`.
pub fn virtual_path(export: &Path, key: &str) -> PathBuf {
    PathBuf::from(format!("{}#{key}", export.display()))
}

/// The registered export and image index a virtual path names: the
/// longest registered export path followed by `#` and a key of it.
fn lookup(path: &Path) -> Option<(Arc<Registered>, u32)> {
    let s = path.to_str()?;
    if !s.contains('#') {
        return None;
    }
    let reg = lock();
    let (entry, key) = reg
        .iter()
        .filter_map(|(p, e)| Some((e, s.strip_prefix(p.as_str())?.strip_prefix('#')?)))
        .max_by_key(|(e, _)| e.export.path.as_os_str().len())?;
    let index = *entry.keys.get(key)?;
    Some((entry.clone(), index))
}

/// Is `path` an image of a registered export?
pub fn is_virtual(path: &Path) -> bool {
    lookup(path).is_some()
}

/// The size of a virtual mask, from its export.
pub fn size(path: &Path) -> Option<(u32, u32)> {
    let (reg, i) = lookup(path)?;
    let img = &reg.export.images[i as usize];
    Some((img.width, img.height))
}

/// The export's image id of a virtual mask.
pub fn image_id(path: &Path) -> Option<i64> {
    let (reg, i) = lookup(path)?;
    Some(reg.export.images[i as usize].id)
}

/// The export file a virtual mask comes from.
pub fn export_of(path: &Path) -> Option<PathBuf> {
    lookup(path).map(|(reg, _)| reg.export.path.clone())
}

thread_local! {
    static SCRATCH: std::cell::RefCell<(RasterScratch, Raster, Vec<u32>)> =
        std::cell::RefCell::new(Default::default());
}

/// Reads a virtual mask: its image rasterised into run bytes. `None` when
/// `path` is not a virtual mask.
pub fn read(path: &Path) -> Option<Result<Vec<u8>, DecodeError>> {
    let (reg, i) = lookup(path)?;
    let img = &reg.export.images[i as usize];
    Some(SCRATCH.with(|cell| {
        let (scratch, raster, ids) = &mut *cell.borrow_mut();
        annotations::rasterise(img, reg.crowd, scratch, raster).map_err(DecodeError::Unusable)?;
        let mut codes = Vec::with_capacity(raster.sets.len());
        for (set, &crowd) in raster.sets.iter().zip(&raster.ignored) {
            ids.clear();
            ids.extend(set.iter().map(|&c| reg.ids[c as usize]));
            let code = reg.map.category_code(ids, crowd).ok_or_else(|| {
                DecodeError::Unusable(format!(
                    "annotation regions need a `categories` label map; got kind `{}`",
                    reg.map.kind().name()
                ))
            })?;
            codes.push(code);
        }
        Ok(encode(raster, &codes))
    }))
}

/// Bytes that change exactly when a virtual mask's content does (its runs
/// and the category ids of each run), unlike [`read`], whose codes depend
/// on the order images are read. `None` when `path` is not a virtual mask.
pub fn content(path: &Path) -> Option<Result<Vec<u8>, String>> {
    let (reg, i) = lookup(path)?;
    let img = &reg.export.images[i as usize];
    Some(SCRATCH.with(|cell| {
        let (scratch, raster, _) = &mut *cell.borrow_mut();
        annotations::rasterise(img, reg.crowd, scratch, raster)?;
        let mut out = Vec::new();
        out.extend_from_slice(&raster.width.to_le_bytes());
        out.extend_from_slice(&raster.height.to_le_bytes());
        for (set, &crowd) in raster.sets.iter().zip(&raster.ignored) {
            out.push(u8::from(crowd));
            out.extend_from_slice(&(set.len() as u32).to_le_bytes());
            for &c in set {
                out.extend_from_slice(&reg.ids[c as usize].to_le_bytes());
            }
        }
        for &(set, len) in &raster.runs {
            out.extend_from_slice(&set.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        Ok(out)
    }))
}

/// The run bytes of a raster whose local set `k` has the code `codes[k]`.
fn encode(raster: &Raster, codes: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + 8 * raster.runs.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&raster.width.to_le_bytes());
    out.extend_from_slice(&raster.height.to_le_bytes());
    out.push(match raster.order {
        Order::ColumnMajor => 0,
        Order::RowMajor => 1,
    });
    // Adjacent runs whose sets share a code (two category sets that mean
    // the same classes) are one run.
    let mut last: Option<(u32, u64)> = None;
    let put = |out: &mut Vec<u8>, (code, len): (u32, u64)| {
        out.extend_from_slice(&code.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
    };
    for &(set, len) in &raster.runs {
        let code = codes[set as usize];
        match &mut last {
            Some((c, l)) if *c == code => *l += len,
            _ => {
                if let Some(run) = last.take() {
                    put(&mut out, run);
                }
                last = Some((code, len));
            }
        }
    }
    if let Some(run) = last {
        put(&mut out, run);
    }
    out
}

/// Do these bytes hold a rasterised annotation image?
pub fn is_raster(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The header and the runs of raster bytes, checked: the runs cover the
/// image exactly.
fn parse(bytes: &[u8]) -> Result<(u32, u32, Order, &[u8]), DecodeError> {
    let bad = |m: &str| DecodeError::Unusable(format!("rasterised annotation is corrupt: {m}"));
    if bytes.len() < HEADER || !(bytes.len() - HEADER).is_multiple_of(8) {
        return Err(bad("length"));
    }
    let le = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let (width, height) = (le(8), le(12));
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty { width, height });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(DecodeError::TooLarge { width, height });
    }
    let order = if bytes[16] == 0 {
        Order::ColumnMajor
    } else {
        Order::RowMajor
    };
    let runs = &bytes[HEADER..];
    let total: u64 = runs
        .chunks_exact(8)
        .map(|r| u64::from(u32::from_le_bytes([r[4], r[5], r[6], r[7]])))
        .sum();
    if total != u64::from(width) * u64::from(height) {
        return Err(bad("runs do not cover the image"));
    }
    Ok((width, height, order, runs))
}

fn each_run(runs: &[u8], mut f: impl FnMut(u32, u64)) {
    for r in runs.chunks_exact(8) {
        let code = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
        let len = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        f(code, u64::from(len));
    }
}

/// The histogram of raster bytes: the runs summed by code.
pub(super) fn hist(bytes: &[u8], table: &mut CodeTable) -> Result<MaskHist, DecodeError> {
    let (width, height, _, runs) = parse(bytes)?;
    table.clear();
    each_run(runs, |code, len| table.add(code, len));
    Ok(MaskHist {
        width,
        height,
        format: MaskFormat::Sets,
        codes: table.sorted(),
    })
}

/// The frame of raster bytes: each pixel's code, row-major, 4 bytes LE.
pub(super) fn frame<'a>(bytes: &[u8], buf: &'a mut Vec<u8>) -> Result<Frame<'a>, DecodeError> {
    let (width, height, order, runs) = parse(bytes)?;
    let (w, h) = (width as usize, height as usize);
    buf.clear();
    buf.resize(4 * w * h, 0);
    let mut at = 0usize;
    each_run(runs, |code, len| {
        let code = code.to_le_bytes();
        let len = len as usize;
        match order {
            Order::RowMajor => {
                for px in buf[4 * at..4 * (at + len)].chunks_exact_mut(4) {
                    px.copy_from_slice(&code);
                }
            }
            // Run-length order is down each column (as in COCO RLE).
            Order::ColumnMajor => {
                for p in at..at + len {
                    let (x, y) = (p / h, p % h);
                    let i = 4 * (y * w + x);
                    buf[i..i + 4].copy_from_slice(&code);
                }
            }
        }
        at += len;
    });
    Ok(Frame {
        width,
        height,
        format: MaskFormat::Sets,
        data: buf,
    })
}

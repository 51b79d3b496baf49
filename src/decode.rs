//! Decode stage: PNG bytes → a code histogram `code -> pixel count`, in one pass.
//!
//! A *code* is the raw pixel value: an 8/16-bit index or gray level, or packed
//! RGB(A). Palette PNGs are read as raw indices, never through their colours.
//! Counting adds whole runs of equal pixels at once (masks are flat), so it
//! costs a small fraction of inflating the PNG.

use std::io::Cursor;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub mod raster;

/// Largest mask accepted, in pixels (16384 x 16384): a decompression-bomb guard.
pub const MAX_PIXELS: u64 = 1 << 28;
/// Most bytes the PNG decoder may allocate for one mask.
const MAX_DECODER_BYTES: usize = 1 << 30;

/// How a mask stores its pixels, after decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskFormat {
    /// 1/2/4/8-bit grayscale (alpha, if any, dropped).
    Gray8,
    /// 16-bit grayscale (alpha, if any, dropped).
    Gray16,
    /// Palette PNG, read as raw indices.
    Indexed,
    /// 8-bit RGB: code = r<<16 | g<<8 | b.
    Rgb,
    /// 8-bit RGBA: code = a<<24 | r<<16 | g<<8 | b.
    Rgba,
    /// Annotation regions (COCO JSON, run-length CSV) rasterised: a code is
    /// a set of categories, interned by the `categories` label map.
    Sets,
}

impl MaskFormat {
    /// True for masks whose codes are indices (gray or palette).
    pub fn is_index(self) -> bool {
        matches!(self, Self::Gray8 | Self::Gray16 | Self::Indexed)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Gray8 => "8-bit grayscale",
            Self::Gray16 => "16-bit grayscale",
            Self::Indexed => "palette (read as indices)",
            Self::Rgb => "8-bit RGB",
            Self::Rgba => "8-bit RGBA",
            Self::Sets => "annotation regions",
        }
    }
}

/// Why a mask could not be read. Each variant says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read the file")]
    Io(#[source] std::io::Error),
    #[error("not a readable PNG (truncated, corrupt or another format)")]
    Png(#[source] png::DecodingError),
    #[error("mask has zero size ({width}x{height}); expected at least 1x1")]
    Empty { width: u32, height: u32 },
    #[error("mask is {width}x{height}, more than the {MAX_PIXELS} pixels allowed")]
    TooLarge { width: u32, height: u32 },
    #[error("mask is {0}; expected 8-bit index, palette, 8/16-bit grayscale or 8-bit RGB(A)")]
    Unsupported(&'static str),
    #[error("mask is animated (APNG); expected a single frame")]
    Animated,
    /// Decoded, but its histogram says it is not a mask (a photograph).
    #[error("{0}")]
    NotAMask(String),
    #[error("not a readable JPEG (truncated, corrupt or another format)")]
    Jpeg(#[source] image::ImageError),
    #[error("{0}")]
    Unusable(String),
    #[error(
        "file is {len} bytes, too few for a {width}x{height} PNG; expected a complete mask \
         (truncated, or a header that lies)"
    )]
    TooSmall { len: u64, width: u32, height: u32 },
    #[error(
        "file is {len} bytes, far more than a {width}x{height} PNG can take (at most {most}); \
         expected a mask whose size matches its header"
    )]
    Oversized {
        len: u64,
        width: u32,
        height: u32,
        most: u64,
    },
}

/// One mask's histogram: sorted `(code, pixels)` pairs with nonzero counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskHist {
    pub width: u32,
    pub height: u32,
    pub format: MaskFormat,
    pub codes: Vec<(u32, u64)>,
}

impl MaskHist {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Per-thread buffers, reused from mask to mask so decoding allocates
/// only the file bytes and the (small) result.
#[derive(Default)]
pub struct Scratch {
    frame: Vec<u8>,
    dense: Vec<u64>,
    table: CodeTable,
}

/// Decoded pixels: codes of every pixel, row-major. Used by stages that need
/// pixels (shards, scoring), not by statistics.
pub struct Frame<'a> {
    pub width: u32,
    pub height: u32,
    pub format: MaskFormat,
    data: &'a [u8],
}

impl Frame<'_> {
    /// The code of every pixel, row-major, into `out` (cleared first).
    pub fn codes_into(&self, out: &mut Vec<u32>) {
        out.clear();
        let n = self.width as usize * self.height as usize;
        out.reserve(n);
        match self.format {
            MaskFormat::Gray8 | MaskFormat::Indexed => {
                out.extend(self.data[..n].iter().map(|&v| u32::from(v)))
            }
            MaskFormat::Gray16 => out.extend(
                self.data[..2 * n]
                    .chunks_exact(2)
                    .map(|p| u32::from(u16::from_be_bytes([p[0], p[1]]))),
            ),
            MaskFormat::Rgb => out.extend(self.data[..3 * n].chunks_exact(3).map(rgb_code)),
            MaskFormat::Rgba => out.extend(self.data[..4 * n].chunks_exact(4).map(rgba_code)),
            MaskFormat::Sets => out.extend(self.data[..4 * n].chunks_exact(4).map(set_code)),
        }
    }
}

impl<'a> Frame<'a> {
    /// A frame over pixels decoded elsewhere (an array in the Python
    /// binding, after augmentations): 8-bit samples, row-major, 1 (gray),
    /// 3 (RGB) or 4 (RGBA) per pixel.
    pub fn from_samples(
        width: u32,
        height: u32,
        channels: usize,
        data: &'a [u8],
    ) -> Result<Self, DecodeError> {
        let format = match channels {
            1 => MaskFormat::Gray8,
            3 => MaskFormat::Rgb,
            4 => MaskFormat::Rgba,
            n => {
                return Err(DecodeError::Unusable(format!(
                    "array has {n} channels; expected H x W (index), H x W x 3 (RGB) \
                     or H x W x 4 (RGBA)"
                )));
            }
        };
        if width == 0 || height == 0 {
            return Err(DecodeError::Empty { width, height });
        }
        if u64::from(width) * u64::from(height) > MAX_PIXELS {
            return Err(DecodeError::TooLarge { width, height });
        }
        let want = width as usize * height as usize * channels;
        if data.len() != want {
            return Err(DecodeError::Unusable(format!(
                "array holds {} bytes; expected {want} ({width}x{height}x{channels})",
                data.len()
            )));
        }
        Ok(Self {
            width,
            height,
            format,
            data,
        })
    }
}

impl Frame<'_> {
    /// Calls `f(code, run)` for each maximal run of equal pixels, in
    /// row-major order (runs may cross rows).
    pub fn runs(&self, mut f: impl FnMut(u32, u64)) {
        let n = self.width as usize * self.height as usize;
        match self.format {
            MaskFormat::Gray8 | MaskFormat::Indexed => {
                count_runs::<1>(&self.data[..n], |p, run| f(u32::from(p[0]), run))
            }
            MaskFormat::Gray16 => count_runs::<2>(&self.data[..2 * n], |p, run| {
                f(u32::from(u16::from_be_bytes([p[0], p[1]])), run)
            }),
            MaskFormat::Rgb => count_runs::<3>(&self.data[..3 * n], |p, run| f(rgb_code(p), run)),
            MaskFormat::Rgba => count_runs::<4>(&self.data[..4 * n], |p, run| f(rgba_code(p), run)),
            MaskFormat::Sets => count_runs::<4>(&self.data[..4 * n], |p, run| f(set_code(p), run)),
        }
    }

    /// The decoded samples, tightly packed in the frame's format.
    pub fn data(&self) -> &[u8] {
        self.data
    }

    /// The samples of row `y`.
    pub fn row(&self, y: u32) -> &[u8] {
        let line = self.width as usize * sample_bytes(self.format);
        &self.data[y as usize * line..(y as usize + 1) * line]
    }

    /// [`Self::runs`] within row `y` (runs end at the row's end).
    pub fn row_runs(&self, y: u32, mut f: impl FnMut(u32, u64)) {
        let row = self.row(y);
        match self.format {
            MaskFormat::Gray8 | MaskFormat::Indexed => {
                count_runs::<1>(row, |p, run| f(u32::from(p[0]), run))
            }
            MaskFormat::Gray16 => count_runs::<2>(row, |p, run| {
                f(u32::from(u16::from_be_bytes([p[0], p[1]])), run)
            }),
            MaskFormat::Rgb => count_runs::<3>(row, |p, run| f(rgb_code(p), run)),
            MaskFormat::Rgba => count_runs::<4>(row, |p, run| f(rgba_code(p), run)),
            MaskFormat::Sets => count_runs::<4>(row, |p, run| f(set_code(p), run)),
        }
    }
}

#[inline]
fn rgb_code(p: &[u8]) -> u32 {
    u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2])
}

#[inline]
fn rgba_code(p: &[u8]) -> u32 {
    u32::from(p[3]) << 24 | rgb_code(p)
}

#[inline]
fn set_code(p: &[u8]) -> u32 {
    u32::from_le_bytes([p[0], p[1], p[2], p[3]])
}

thread_local! {
    /// This thread's file buffer, reused from mask to mask (a fresh one per
    /// file costs a large allocation and its page faults every time).
    static FILE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The largest file buffer a thread keeps between masks.
const KEEP_BUF: usize = 64 << 20;

/// Reads and decodes the mask at `path` into its histogram.
pub fn read_hist(path: &Path, scratch: &mut Scratch) -> Result<MaskHist, DecodeError> {
    if crate::store::is_url(path) || raster::is_virtual(path) {
        let bytes = read_file(path)?;
        return decode_path_hist(path, &bytes, scratch);
    }
    FILE_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        let hist = read_local(path, &mut buf).and_then(|()| decode_path_hist(path, &buf, scratch));
        if buf.capacity() > KEEP_BUF {
            *buf = Vec::new();
        }
        hist
    })
}

/// Is `path` a JPEG by its name (`.jpg`, `.jpeg`)?
pub fn is_jpeg(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
}

/// Decodes the `bytes` of the mask at `path`: a JPEG when its name says
/// so (lossy: its codes carry compression noise), else a PNG.
pub fn decode_path_hist(
    path: &Path,
    bytes: &[u8],
    scratch: &mut Scratch,
) -> Result<MaskHist, DecodeError> {
    if raster::is_raster(bytes) {
        decode_hist(bytes, scratch)
    } else if is_jpeg(path) {
        decode_jpeg_hist(bytes, scratch)
    } else {
        decode_hist(bytes, scratch)
    }
}

/// A JPEG mask's histogram: gray JPEGs as 8-bit gray, others as RGB.
fn decode_jpeg_hist(bytes: &[u8], scratch: &mut Scratch) -> Result<MaskHist, DecodeError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Jpeg);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(1 << 14);
    limits.max_image_height = Some(1 << 14);
    limits.max_alloc = Some(MAX_DECODER_BYTES as u64);
    reader.limits(limits);
    let img = reader.decode().map_err(DecodeError::Jpeg)?;
    let (width, height) = (img.width(), img.height());
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty { width, height });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(DecodeError::TooLarge { width, height });
    }
    let (format, data) = match img {
        image::DynamicImage::ImageLuma8(g) => (MaskFormat::Gray8, g.into_raw()),
        other => (MaskFormat::Rgb, other.into_rgb8().into_raw()),
    };
    let Scratch { dense, table, .. } = scratch;
    start_counting(format, dense, table);
    count_rows(&data, format, dense, table, 1);
    Ok(MaskHist {
        width,
        height,
        format,
        codes: finish_counting(format, dense, table),
    })
}

/// Most bytes deflate can expand one byte of compressed data into.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// Bytes a PNG may hold beyond its pixel data (chunks, metadata).
const HEADROOM: u64 = 32 << 20;
/// Signature, IHDR length and type, and the 13 IHDR bytes.
const HEAD: usize = 8 + 8 + 13;

/// Files up to this size are read whole at once, their header's bound
/// checked from the bytes read; larger ones header first.
const WHOLE_READ: u64 = 4 << 20;

/// Reads a mask file. A file far larger than its PNG header allows (a
/// sparse 1 GiB `.png`) is refused without being read, and one that is no
/// PNG is kept no further than its header (the decoder then says what it
/// is).
pub fn read_file(path: &Path) -> Result<Vec<u8>, DecodeError> {
    if let Some(read) = raster::read(path) {
        return read;
    }
    if crate::store::is_url(path) {
        return read_object(path);
    }
    let mut bytes = Vec::new();
    read_local(path, &mut bytes)?;
    Ok(bytes)
}

/// [`read_file`] for a local file, into `buf` (cleared first): a file of
/// up to [`WHOLE_READ`] bytes in one read, then its header's bound checked
/// from the buffer; a larger one header first, the rest only if the header
/// allows that much.
fn read_local(path: &Path, buf: &mut Vec<u8>) -> Result<(), DecodeError> {
    let mut file = std::fs::File::open(path).map_err(DecodeError::Io)?;
    let len = file.metadata().map_err(DecodeError::Io)?.len();
    buf.clear();
    let first = if len <= WHOLE_READ {
        len as usize
    } else {
        HEAD
    };
    fill(&mut file, buf, first)?;
    let Some((width, height, most)) = max_len(buf) else {
        // A JPEG mask is read whole (up to the decoder's budget); any other
        // file is decoded from its first bytes only, which say it is no PNG.
        if buf.starts_with(&[0xFF, 0xD8, 0xFF]) {
            let rest = (len.min(MAX_DECODER_BYTES as u64) as usize).saturating_sub(buf.len());
            fill(&mut file, buf, rest)?;
        } else {
            buf.truncate(HEAD);
        }
        return Ok(());
    };
    if len > most {
        return Err(DecodeError::Oversized {
            len,
            width,
            height,
            most,
        });
    }
    // What the file's size said, never more than the header allows.
    let rest = (len.min(most) as usize).saturating_sub(buf.len());
    fill(&mut file, buf, rest)
}

/// Appends up to `n` bytes of `file` to `buf` (fewer at its end), in as
/// few reads as the system allows: one for a regular file.
fn fill(file: &mut std::fs::File, buf: &mut Vec<u8>, n: usize) -> Result<(), DecodeError> {
    use std::io::Read;
    let start = buf.len();
    buf.resize(start + n, 0);
    let mut got = start;
    while got < start + n {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(got);
                return Err(DecodeError::Io(e));
            }
        }
    }
    buf.truncate(got);
    Ok(())
}

/// [`read_file`] for an object in a store, with the same bound: its first
/// bytes are fetched alone (one ranged request of at most
/// [`crate::store::HEAD_BYTES`]); an object far larger than its PNG header
/// allows is refused without fetching the rest, and the rest is fetched
/// only up to that bound. A JPEG is fetched up to the decoder's budget; any
/// other object is decoded from its first bytes, which say what it is.
fn read_object(path: &Path) -> Result<Vec<u8>, DecodeError> {
    let len = crate::store::size(path).map_err(DecodeError::Io)?;
    let head_len = len.min(crate::store::HEAD_BYTES);
    let mut bytes = crate::store::read_range(path, 0, head_len).map_err(DecodeError::Io)?;
    let most = match max_len(&bytes) {
        Some((width, height, most)) if len > most => {
            return Err(DecodeError::Oversized {
                len,
                width,
                height,
                most,
            });
        }
        Some((_, _, most)) => most,
        None if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) => {
            let budget = MAX_DECODER_BYTES as u64 + HEADROOM;
            if len > budget {
                return Err(DecodeError::Oversized {
                    len,
                    width: 0,
                    height: 0,
                    most: budget,
                });
            }
            budget
        }
        None => return Ok(bytes),
    };
    let rest = crate::store::read_range(path, bytes.len() as u64, len.min(most))
        .map_err(DecodeError::Io)?;
    bytes.extend_from_slice(&rest);
    Ok(bytes)
}

/// From the first bytes of a PNG: its size and the most bytes a file of
/// that size may take (raw filtered rows, twice over, plus headroom).
fn max_len(head: &[u8]) -> Option<(u32, u32, u64)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if head.len() < HEAD || &head[..8] != SIGNATURE || &head[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let (width, height) = (be(16), be(20));
    let (depth, color) = (u64::from(head[24]), head[25]);
    let channels = match color {
        0 | 3 => 1,
        4 => 2,
        2 => 3,
        _ => 4,
    };
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        // Refused by the decoder from the header alone.
        return Some((width, height, HEADROOM));
    }
    let row = (u64::from(width) * depth.max(1) * channels).div_ceil(8) + 1;
    Some((width, height, row * u64::from(height) * 2 + HEADROOM))
}

/// Decodes PNG `bytes` into the mask's histogram. Non-interlaced 8/16-bit
/// masks are counted row by row while each row is still in cache, without
/// building the frame; other layouts go through [`decode_frame`].
pub fn decode_hist(bytes: &[u8], scratch: &mut Scratch) -> Result<MaskHist, DecodeError> {
    if raster::is_raster(bytes) {
        return raster::hist(bytes, &mut scratch.table);
    }
    let Scratch {
        frame,
        dense,
        table,
    } = scratch;
    let mut png = open(bytes)?;
    let (width, height, format) = (png.width, png.height, png.format);
    let by_rows = !png.reader.info().interlaced && !png.needs_normalising();
    let codes = if by_rows {
        start_counting(format, dense, table);
        let mut repeats = RowRepeats::new(frame);
        while let Some(row) = png.reader.next_row().map_err(DecodeError::Png)? {
            let data = row.data();
            if repeats.again(data, |prev, times| {
                count_rows(prev, format, dense, table, times)
            }) {
                continue;
            }
            count_rows(data, format, dense, table, 1);
        }
        repeats.finish(|prev, times| count_rows(prev, format, dense, table, times));
        finish_counting(format, dense, table)
    } else {
        let f = read_frame(png, frame)?;
        start_counting(format, dense, table);
        count_rows(f.data, format, dense, table, 1);
        finish_counting(format, dense, table)
    };
    Ok(MaskHist {
        width,
        height,
        format,
        codes,
    })
}

/// Decodes PNG `bytes` once into both its frame (pixels) and its histogram,
/// for stages that need pixels and exact counts of the same mask (shards).
pub fn decode_frame_hist<'a>(
    bytes: &[u8],
    scratch: &'a mut Scratch,
) -> Result<(Frame<'a>, MaskHist), DecodeError> {
    if raster::is_raster(bytes) {
        let hist = raster::hist(bytes, &mut scratch.table)?;
        let f = raster::frame(bytes, &mut scratch.frame)?;
        return Ok((f, hist));
    }
    let Scratch {
        frame,
        dense,
        table,
    } = scratch;
    let f = decode_frame(bytes, frame)?;
    start_counting(f.format, dense, table);
    count_rows(f.data, f.format, dense, table, 1);
    let hist = MaskHist {
        width: f.width,
        height: f.height,
        format: f.format,
        codes: finish_counting(f.format, dense, table),
    };
    Ok((f, hist))
}

/// A PNG whose header has been checked, ready to decode.
struct Opened<'b> {
    reader: png::Reader<Cursor<&'b [u8]>>,
    width: u32,
    height: u32,
    format: MaskFormat,
    color: png::ColorType,
    depth: png::BitDepth,
}

impl Opened<'_> {
    /// Sub-byte samples and gray+alpha need unpacking before counting.
    fn needs_normalising(&self) -> bool {
        use png::{BitDepth, ColorType};
        matches!(
            (self.color, self.depth),
            (
                ColorType::Grayscale | ColorType::Indexed,
                BitDepth::One | BitDepth::Two | BitDepth::Four
            ) | (ColorType::GrayscaleAlpha, _)
        )
    }
}

/// Reads the header with decoder limits and refuses what is not a mask.
fn open(bytes: &[u8]) -> Result<Opened<'_>, DecodeError> {
    use png::{BitDepth, ColorType};
    let limits = png::Limits {
        bytes: MAX_DECODER_BYTES,
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    decoder.set_transformations(png::Transformations::IDENTITY);
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let header = decoder.read_header_info().map_err(DecodeError::Png)?;
    let (width, height) = (header.width, header.height);
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty { width, height });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(DecodeError::TooLarge { width, height });
    }
    // Deflate packs at most 1032:1: a file too small for its header is
    // refused before a frame of the header's size is allocated.
    let bits = header.bits_per_pixel() as u64;
    let raw = (u64::from(width) * bits).div_ceil(8).saturating_add(1) * u64::from(height);
    if raw / DEFLATE_MAX_RATIO > bytes.len() as u64 {
        return Err(DecodeError::TooSmall {
            len: bytes.len() as u64,
            width,
            height,
        });
    }
    let (color, depth) = (header.color_type, header.bit_depth);
    let format = match (color, depth) {
        (ColorType::Grayscale, BitDepth::Sixteen) => MaskFormat::Gray16,
        (ColorType::Grayscale, _) => MaskFormat::Gray8,
        (ColorType::GrayscaleAlpha, BitDepth::Sixteen) => MaskFormat::Gray16,
        (ColorType::GrayscaleAlpha, _) => MaskFormat::Gray8,
        (ColorType::Indexed, _) => MaskFormat::Indexed,
        (ColorType::Rgb, BitDepth::Eight) => MaskFormat::Rgb,
        (ColorType::Rgba, BitDepth::Eight) => MaskFormat::Rgba,
        (ColorType::Rgb, _) => return Err(DecodeError::Unsupported("16-bit RGB")),
        (ColorType::Rgba, _) => return Err(DecodeError::Unsupported("16-bit RGBA")),
    };
    let reader = decoder.read_info().map_err(DecodeError::Png)?;
    if reader.info().is_animated() {
        return Err(DecodeError::Animated);
    }
    Ok(Opened {
        reader,
        width,
        height,
        format,
        color,
        depth,
    })
}

/// Decodes PNG `bytes` into `buf`, normalised to one of the [`MaskFormat`]s.
pub fn decode_frame<'a>(bytes: &[u8], buf: &'a mut Vec<u8>) -> Result<Frame<'a>, DecodeError> {
    if raster::is_raster(bytes) {
        return raster::frame(bytes, buf);
    }
    read_frame(open(bytes)?, buf)
}

fn read_frame<'a>(mut png: Opened<'_>, buf: &'a mut Vec<u8>) -> Result<Frame<'a>, DecodeError> {
    use png::{BitDepth, ColorType};
    let (width, height, format) = (png.width, png.height, png.format);
    let size = png
        .reader
        .output_buffer_size()
        .ok_or(DecodeError::TooLarge { width, height })?;
    buf.clear();
    buf.resize(size, 0);
    let out = png.reader.next_frame(buf).map_err(DecodeError::Png)?;
    let (w, h) = (width as usize, height as usize);
    let line = out.line_size;
    // Normalise in place to tightly packed samples of the format.
    match (png.color, png.depth) {
        (ColorType::Grayscale | ColorType::Indexed, BitDepth::Eight | BitDepth::Sixteen) => {}
        (ColorType::Grayscale | ColorType::Indexed, d) => unpack_bits(buf, w, h, line, d as u8),
        (ColorType::GrayscaleAlpha, BitDepth::Eight) => drop_alpha(buf, w * h, 1),
        (ColorType::GrayscaleAlpha, _) => drop_alpha(buf, w * h, 2),
        _ => {}
    }
    buf.truncate(w * h * sample_bytes(format));
    Ok(Frame {
        width,
        height,
        format,
        data: buf,
    })
}

fn sample_bytes(format: MaskFormat) -> usize {
    match format {
        MaskFormat::Gray8 | MaskFormat::Indexed => 1,
        MaskFormat::Gray16 => 2,
        MaskFormat::Rgb => 3,
        MaskFormat::Rgba | MaskFormat::Sets => 4,
    }
}

/// Expands 1/2/4-bit samples (rows padded to a byte) to one byte each.
fn unpack_bits(buf: &mut Vec<u8>, w: usize, h: usize, line: usize, bits: u8) {
    let packed = std::mem::take(buf);
    buf.reserve(w * h);
    let per_byte = 8 / bits as usize;
    let mask = (1u8 << bits) - 1;
    for row in packed.chunks(line).take(h) {
        for x in 0..w {
            let byte = row[x / per_byte];
            let shift = 8 - bits as usize * (x % per_byte + 1);
            buf.push((byte >> shift) & mask);
        }
    }
}

/// Keeps the first `sample` bytes of each gray+alpha pixel.
fn drop_alpha(buf: &mut Vec<u8>, n: usize, sample: usize) {
    for i in 0..n {
        for b in 0..sample {
            buf[i * sample + b] = buf[i * 2 * sample + b];
        }
    }
    buf.truncate(n * sample);
}

/// Clears the counters for a mask of `format`.
fn start_counting(format: MaskFormat, dense: &mut Vec<u64>, table: &mut CodeTable) {
    match format {
        MaskFormat::Gray8 | MaskFormat::Indexed => {
            dense.clear();
            dense.resize(256, 0);
        }
        MaskFormat::Gray16 => {
            dense.clear();
            dense.resize(1 << 16, 0);
        }
        MaskFormat::Rgb | MaskFormat::Rgba | MaskFormat::Sets => table.clear(),
    }
}

/// Counts the pixels of `data` (whole rows), each `times` over.
#[inline]
fn count_rows(
    data: &[u8],
    format: MaskFormat,
    dense: &mut [u64],
    table: &mut CodeTable,
    times: u64,
) {
    if data.is_empty() {
        return;
    }
    match format {
        MaskFormat::Gray8 | MaskFormat::Indexed => count_u8(data, dense, times),
        MaskFormat::Gray16 => count_runs::<2>(data, |p, run| {
            dense[usize::from(u16::from_be_bytes([p[0], p[1]]))] += run * times
        }),
        MaskFormat::Rgb => count_runs::<3>(data, |p, run| table.add(rgb_code(p), run * times)),
        MaskFormat::Rgba => count_runs::<4>(data, |p, run| table.add(rgba_code(p), run * times)),
        MaskFormat::Sets => count_runs::<4>(data, |p, run| table.add(set_code(p), run * times)),
    }
}

/// Rows equal to the row before, counted once with how often they repeat:
/// masks are flat down the columns as along the rows (background above
/// and below an object, a region's straight edges). A mask whose rows keep
/// changing stops being compared after a few.
struct RowRepeats<'a> {
    /// The last row counted.
    prev: &'a mut Vec<u8>,
    /// Rows since then equal to it, not yet counted.
    pending: u64,
    hits: u32,
    misses: u32,
    looking: bool,
}

impl<'a> RowRepeats<'a> {
    fn new(prev: &'a mut Vec<u8>) -> Self {
        prev.clear();
        Self {
            prev,
            pending: 0,
            hits: 0,
            misses: 0,
            looking: true,
        }
    }

    /// Is `row` the last row again (then it is only tallied)? Otherwise
    /// the tallied repeats are counted with `count(prev, times)`, `row`
    /// becomes the last row, and the caller counts it.
    fn again(&mut self, row: &[u8], count: impl FnOnce(&[u8], u64)) -> bool {
        if !self.looking {
            return false;
        }
        if row == self.prev.as_slice() {
            self.pending += 1;
            self.hits += 1;
            return true;
        }
        self.finish(count);
        self.misses += 1;
        // Fewer than one row in eight repeats: not worth the copies.
        if self.misses >= 32 && self.hits * 8 < self.misses {
            self.looking = false;
        } else {
            self.prev.clear();
            self.prev.extend_from_slice(row);
        }
        false
    }

    /// Counts the repeats tallied so far.
    fn finish(&mut self, count: impl FnOnce(&[u8], u64)) {
        if self.pending > 0 {
            count(self.prev, self.pending);
            self.pending = 0;
        }
    }
}

/// The sorted histogram of what was counted.
fn finish_counting(format: MaskFormat, dense: &[u64], table: &CodeTable) -> Vec<(u32, u64)> {
    match format {
        MaskFormat::Gray8 | MaskFormat::Indexed | MaskFormat::Gray16 => drain_dense(dense),
        MaskFormat::Rgb | MaskFormat::Rgba | MaskFormat::Sets => table.sorted(),
    }
}

fn drain_dense(dense: &[u64]) -> Vec<(u32, u64)> {
    dense
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(code, &c)| (code as u32, c))
        .collect()
}

/// Counts 8-bit samples, adding 8 at a time where a word repeats the run's byte.
fn count_u8(data: &[u8], dense: &mut [u64], times: u64) {
    let mut cur = data[0];
    let mut run: u64 = 0;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let word = u64::from_ne_bytes(w.try_into().expect("chunk of 8"));
        if word == u64::from(cur) * 0x0101_0101_0101_0101 {
            run += 8;
            continue;
        }
        for &v in w {
            if v == cur {
                run += 1;
            } else {
                dense[usize::from(cur)] += run * times;
                cur = v;
                run = 1;
            }
        }
    }
    for &v in words.remainder() {
        if v == cur {
            run += 1;
        } else {
            dense[usize::from(cur)] += run * times;
            cur = v;
            run = 1;
        }
    }
    dense[usize::from(cur)] += run * times;
}

/// Calls `add(pixel, run)` for each maximal run of equal `N`-byte pixels.
/// Blocks of 8 pixels equal to the current pixel are skipped with one compare.
#[inline]
fn count_runs<const N: usize>(data: &[u8], mut add: impl FnMut(&[u8], u64)) {
    let mut cur = [0u8; N];
    cur.copy_from_slice(&data[..N]);
    let mut pattern = [0u8; 64];
    let block = 8 * N;
    for i in 0..8 {
        pattern[i * N..(i + 1) * N].copy_from_slice(&cur);
    }
    let mut run: u64 = 0;
    let mut blocks = data.chunks_exact(block);
    for b in &mut blocks {
        if b == &pattern[..block] {
            run += 8;
            continue;
        }
        for p in b.chunks_exact(N) {
            if p == cur {
                run += 1;
            } else {
                add(&cur, run);
                cur.copy_from_slice(p);
                run = 1;
            }
        }
        for i in 0..8 {
            pattern[i * N..(i + 1) * N].copy_from_slice(&cur);
        }
    }
    for p in blocks.remainder().chunks_exact(N) {
        if p == cur {
            run += 1;
        } else {
            add(&cur, run);
            cur.copy_from_slice(p);
            run = 1;
        }
    }
    add(&cur, run);
}

/// A key of a [`CountTable`]: `EMPTY` (all bits set) marks a free slot.
pub trait TableKey: Copy + Eq + Ord {
    const EMPTY: Self;
    fn slot(self, mask: usize) -> usize;
}

impl TableKey for u32 {
    const EMPTY: Self = u32::MAX;
    #[inline]
    fn slot(self, mask: usize) -> usize {
        (self.wrapping_mul(0x9E37_79B1) >> 7) as usize & mask
    }
}

impl TableKey for u64 {
    const EMPTY: Self = u64::MAX;
    #[inline]
    fn slot(self, mask: usize) -> usize {
        (self.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & mask
    }
}

/// Open-addressing `key -> count` table (RGB(A) codes here, (truth, pred)
/// code pairs when scoring). It is consulted once per run of equal pixels,
/// remembers the last slot hit, and keeps its capacity between masks.
pub struct CountTable<K: TableKey> {
    keys: Vec<K>,
    counts: Vec<u64>,
    len: usize,
    last: usize,
    /// Count of the key `EMPTY` itself (e.g. opaque white RGBA), which
    /// cannot be stored as a key.
    empty_key: u64,
}

/// The code table of RGB(A) masks.
type CodeTable = CountTable<u32>;

impl<K: TableKey> Default for CountTable<K> {
    fn default() -> Self {
        Self {
            keys: vec![K::EMPTY; 64],
            counts: vec![0; 64],
            len: 0,
            last: 0,
            empty_key: 0,
        }
    }
}

impl<K: TableKey> CountTable<K> {
    pub fn clear(&mut self) {
        self.keys.fill(K::EMPTY);
        self.counts.fill(0);
        self.len = 0;
        self.last = 0;
        self.empty_key = 0;
    }

    #[inline]
    pub fn add(&mut self, key: K, run: u64) {
        if key == K::EMPTY {
            self.empty_key += run;
            return;
        }
        if self.keys[self.last] == key {
            self.counts[self.last] += run;
            return;
        }
        let mask = self.keys.len() - 1;
        let mut i = key.slot(mask);
        loop {
            let k = self.keys[i];
            if k == key {
                self.counts[i] += run;
                self.last = i;
                return;
            }
            if k == K::EMPTY {
                self.keys[i] = key;
                self.counts[i] = run;
                self.last = i;
                self.len += 1;
                if self.len * 2 > self.keys.len() {
                    self.grow();
                }
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let keys = std::mem::take(&mut self.keys);
        let counts = std::mem::take(&mut self.counts);
        self.keys = vec![K::EMPTY; keys.len() * 2];
        self.counts = vec![0; keys.len() * 2];
        self.len = 0;
        self.last = 0;
        for (k, c) in keys.into_iter().zip(counts) {
            if k != K::EMPTY {
                self.add(k, c);
            }
        }
    }

    /// Calls `f(key, count)` for every key counted, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(K, u64)) {
        for (&k, &n) in self.keys.iter().zip(&self.counts) {
            if k != K::EMPTY {
                f(k, n);
            }
        }
        if self.empty_key > 0 {
            f(K::EMPTY, self.empty_key);
        }
    }

    /// The counted keys, sorted.
    pub fn sorted(&self) -> Vec<(K, u64)> {
        let mut v = Vec::with_capacity(self.len + 1);
        self.for_each(|k, n| v.push((k, n)));
        v.sort_unstable();
        v
    }
}

/// The PLTE colours of a palette PNG (headers only, no pixels decoded).
pub fn palette(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: MAX_DECODER_BYTES,
        },
    );
    decoder.set_ignore_text_chunk(true);
    let reader = decoder.read_info().ok()?;
    reader.info().palette.as_ref().map(|p| p.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive per-pixel count, the reference for the run-adding counters.
    fn naive<const N: usize>(data: &[u8], code: impl Fn(&[u8]) -> u32) -> Vec<(u32, u64)> {
        let mut m = std::collections::BTreeMap::new();
        for p in data.chunks_exact(N) {
            *m.entry(code(p)).or_insert(0u64) += 1;
        }
        m.into_iter().collect()
    }

    /// Pseudo-random flat data: runs of random length and value.
    fn flat(len: usize, values: u8, seed: u64) -> Vec<u8> {
        let mut s = seed;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let v = (next() % u64::from(values)) as u8;
            let run = (next() % 40) as usize + 1;
            out.extend(std::iter::repeat_n(v, run.min(len - out.len())));
        }
        out
    }

    #[test]
    fn run_counting_equals_naive_counting() {
        for seed in 1..40u64 {
            let len = 1 + (seed as usize * 97) % 3000;
            let g = flat(len, 4, seed);
            let mut dense = vec![0u64; 256];
            count_u8(&g, &mut dense, 1);
            assert_eq!(drain_dense(&dense), naive::<1>(&g, |p| u32::from(p[0])));

            let rgb: Vec<u8> = flat(len * 3, 3, seed).iter().map(|v| v * 127).collect();
            let mut t = CodeTable::default();
            count_runs::<3>(&rgb, |p, run| t.add(rgb_code(p), run));
            assert_eq!(t.sorted(), naive::<3>(&rgb, rgb_code));

            // Long runs of pixels: whole 32- and 8-pixel blocks, and runs
            // that start and end inside them.
            let mut rgb = Vec::new();
            let mut x = seed;
            while rgb.len() < len * 3 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let px = [(x >> 60) as u8 * 17, 0, (x >> 56) as u8 & 1];
                for _ in 0..1 + (x >> 33) % 100 {
                    rgb.extend(px);
                }
            }
            rgb.truncate(len * 3);
            let mut t = CodeTable::default();
            count_runs::<3>(&rgb, |p, run| t.add(rgb_code(p), run));
            assert_eq!(t.sorted(), naive::<3>(&rgb, rgb_code));

            // RGBA including opaque white, whose code is the table's EMPTY.
            let rgba: Vec<u8> = flat(len * 4, 2, seed).iter().map(|v| v * 255).collect();
            let mut t = CodeTable::default();
            count_runs::<4>(&rgba, |p, run| t.add(rgba_code(p), run));
            assert_eq!(t.sorted(), naive::<4>(&rgba, rgba_code));
        }
    }

    fn png_bytes(
        w: u32,
        h: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        enc.write_header().unwrap().write_image_data(data).unwrap();
        out
    }

    /// Rows that repeat (counted once with their repeats), rows that never
    /// do (comparing stops after a few), and repeats after that: the same
    /// histogram as a naive count of every pixel.
    #[test]
    fn repeated_rows_count_as_every_pixel() {
        use png::{BitDepth, ColorType};
        let (w, h) = (37u32, 300u32);
        for (color, depth, n) in [
            (ColorType::Grayscale, BitDepth::Eight, 1),
            (ColorType::Grayscale, BitDepth::Sixteen, 2),
            (ColorType::Rgb, BitDepth::Eight, 3),
            (ColorType::Rgba, BitDepth::Eight, 4),
        ] {
            let row = w as usize * n;
            let mut data = Vec::new();
            for y in 0..h as usize {
                // 0..20: blocks of repeated rows; 20..200: every row new
                // (comparing stops); 200..: repeats again.
                let seed = if !(20..200).contains(&y) { y / 7 } else { y } as u64;
                data.extend(flat(row, 3, seed + 1).iter().map(|v| v * 90));
            }
            let bytes = png_bytes(w, h, color, depth, &data);
            let hist = decode_hist(&bytes, &mut Scratch::default()).unwrap();
            let want = match n {
                1 => naive::<1>(&data, |p| u32::from(p[0])),
                2 => naive::<2>(&data, |p| u32::from(u16::from_be_bytes([p[0], p[1]]))),
                3 => naive::<3>(&data, rgb_code),
                _ => naive::<4>(&data, rgba_code),
            };
            assert_eq!(hist.codes, want, "{color:?} {depth:?}");
            assert_eq!(hist.pixels(), u64::from(w * h));
        }
    }

    #[test]
    fn code_table_grows_past_its_first_capacity() {
        let mut t = CodeTable::default();
        for c in 0..5000u32 {
            t.add(c * 7919, 1);
            t.add(c * 7919, 2);
        }
        let v = t.sorted();
        assert_eq!(v.len(), 5000);
        assert!(v.iter().all(|&(_, n)| n == 3));
    }

    #[test]
    fn sub_byte_gray_is_unpacked_to_values() {
        // 2-bit gray, 3 pixels per row (row padded to a byte), 2 rows.
        let mut buf = vec![0b00_01_10_00, 0b11_10_01_00];
        unpack_bits(&mut buf, 3, 2, 1, 2);
        assert_eq!(buf, vec![0, 1, 2, 3, 2, 1]);
    }
}

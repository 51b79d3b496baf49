//! Regenerates `fixtures/` (run from the repository root):
//! `cargo run --example fixtures -- fixtures`
//!
//! Everything is drawn deterministically (no randomness), so the same bytes
//! come out every time; `tests/fixtures.rs` checks the committed files match.

use std::fs;
use std::path::Path;

type Rgb = [u8; 3];

const BLACK: Rgb = [0, 0, 0];
const RED: Rgb = [255, 0, 0];
const GREEN: Rgb = [0, 255, 0];
const BLUE: Rgb = [0, 0, 255];

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "fixtures".into());
    generate(Path::new(&root));
    eprintln!("wrote fixtures under `{root}`");
}

/// Writes every fixture under `root`.
pub fn generate(root: &Path) {
    plates(&root.join("plates"));
    plates_pred(&root.join("plates-pred"), &root.join("plates"));
    palette(&root.join("palette"));
    index(&root.join("index"));
    voc(&root.join("voc"));
    bad(&root.join("bad"));
}

fn encode(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    plte: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        enc.set_compression(png::Compression::Balanced);
        if let Some(p) = plte {
            enc.set_palette(p.to_vec());
        }
        let mut wr = enc.write_header().expect("header");
        wr.write_image_data(data).expect("data");
    }
    out
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, bytes).expect("write");
}

fn rgb_png(w: u32, h: u32, px: &[Rgb]) -> Vec<u8> {
    let data: Vec<u8> = px.iter().flatten().copied().collect();
    encode(w, h, png::ColorType::Rgb, png::BitDepth::Eight, &data, None)
}

fn or(a: Rgb, b: Rgb) -> Rgb {
    [a[0] | b[0], a[1] | b[1], a[2] | b[2]]
}

/// RGB-bit masks: a blue plate, a red "QR code" on it (so magenta), a rare
/// green class (< 1% of pixels), black background; with matching photos.
fn plates(dir: &Path) {
    let (w, h) = (64u32, 48u32);
    for k in 0..8u32 {
        let mut m = vec![BLACK; (w * h) as usize];
        let mut img = vec![[40u8, 40, 40]; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) as usize;
                let plate = (6 + k % 3..58 - k % 2).contains(&x) && (5..43).contains(&y);
                let qx = 14 + 3 * k;
                let qr = x >= qx && x < qx + 12 && y >= 12 + k % 4 && y < 24 + k % 4;
                if plate {
                    m[i] = or(m[i], BLUE);
                    img[i] = [180, 180, 190];
                }
                if qr {
                    m[i] = or(m[i], RED);
                    img[i] = if (x + y) % 2 == 0 {
                        [10, 10, 10]
                    } else {
                        [240, 240, 240]
                    };
                }
                // Rare green: a small chip in some images; in image 3 it sits on
                // the QR code (white = red + green + blue), in image 5 on the
                // plate edge (cyan = green + blue).
                let green = match k {
                    1 => (2..5).contains(&x) && (2..4).contains(&y),
                    3 => x >= qx + 2 && x < qx + 4 && (16..18).contains(&y),
                    5 => (56..59).contains(&x) && (40..44).contains(&y),
                    6 => (60..63).contains(&x) && (44..46).contains(&y),
                    _ => false,
                };
                if green {
                    m[i] = or(m[i], GREEN);
                    img[i] = [30, 160, 40];
                }
            }
        }
        let name = format!("{:04}", k + 1);
        write(
            &dir.join("masks").join(format!("{name}.png")),
            &rgb_png(w, h, &m),
        );
        let photo: Vec<Rgb> = img
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let n = ((i as u32).wrapping_mul(2_654_435_761) >> 28) as u8;
                [
                    p[0].saturating_add(n),
                    p[1].saturating_add(n),
                    p[2].saturating_add(n),
                ]
            })
            .collect();
        write(
            &dir.join("images").join(format!("{name}.png")),
            &rgb_png(w, h, &photo),
        );
    }
    let toml = "\
# plates fixture: R = QR code, G = scratch (rare), B = plate; a QR code on the
# plate is magenta (two classes), a scratch on the QR code white (three)
kind = \"rgb-bits\"
classes = [\"qr_code\", \"scratch\", \"plate\"]
threshold = 128
";
    write(&dir.join("labels.toml"), toml.as_bytes());
}

/// A model's predictions for `plates/` as RGB-bit PNGs: the plate one pixel
/// too wide on the right, the QR code shifted down a row, scratches missed
/// except in image 5, and a false scratch in image 8.
fn plates_pred(dir: &Path, plates: &Path) {
    let (w, h) = (64u32, 48u32);
    for k in 0..8u32 {
        let name = format!("{:04}.png", k + 1);
        let truth = decode_rgb(&plates.join("masks").join(&name));
        let mut m = vec![BLACK; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) as usize;
                let at = |xx: u32, yy: u32| truth[(yy * w + xx) as usize];
                let mut p = [0u8; 3];
                // plate (blue): widened by one pixel to the right.
                if at(x, y)[2] == 255 || (x > 0 && at(x - 1, y)[2] == 255) {
                    p[2] = 255;
                }
                // QR code (red): shifted down one row.
                if y > 0 && at(x, y - 1)[0] == 255 {
                    p[0] = 255;
                }
                // scratch (green): only image 5's, plus a false one in image 8.
                if (k == 4 && at(x, y)[1] == 255) || (k == 7 && x < 2 && y < 2) {
                    p[1] = 255;
                }
                m[i] = p;
            }
        }
        write(&dir.join(&name), &rgb_png(w, h, &m));
    }
}

fn decode_rgb(path: &Path) -> Vec<Rgb> {
    let bytes = fs::read(path).expect("read");
    let mut dec = png::Decoder::new(std::io::Cursor::new(&bytes[..]));
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut r = dec.read_info().expect("info");
    let mut buf = vec![0u8; r.output_buffer_size().expect("size")];
    r.next_frame(&mut buf).expect("frame");
    buf.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

/// Colour-coded masks with a palette label map: one colour means two
/// classes, one is ignored, and a few pixels use an undeclared colour.
fn palette(dir: &Path) {
    let (w, h) = (40u32, 30u32);
    let road: Rgb = [128, 64, 128];
    let car: Rgb = [0, 0, 142];
    let car_on_road: Rgb = [64, 0, 200];
    let void: Rgb = [255, 255, 255];
    let stray: Rgb = [130, 66, 126];
    for k in 0..4u32 {
        let mut m = vec![BLACK; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) as usize;
                if y >= 15 {
                    m[i] = road;
                }
                if (10 + k..20 + k).contains(&x) && (10..20).contains(&y) {
                    m[i] = if y >= 15 { car_on_road } else { car };
                }
                if y == 0 {
                    m[i] = void;
                }
                if k == 2 && x == 39 && (20..23).contains(&y) {
                    m[i] = stray;
                }
            }
        }
        write(&dir.join(format!("frame_{k}.png")), &rgb_png(w, h, &m));
    }
    let toml = "\
# palette fixture: `car_on_road` pixels are both car and road; white is ignored
kind = \"palette\"
classes = [\"road\", \"car\"]
ignore = [\"#ffffff\"]

[colors]
\"#000000\" = []
\"#804080\" = [\"road\"]
\"#00008e\" = [\"car\"]
\"#4000c8\" = [\"road\", \"car\"]
";
    write(&dir.join("labels.toml"), toml.as_bytes());
}

/// Palette PNGs read as raw indices (their colours deliberately unrelated to
/// the classes), values 0..=2 and 255 = ignore; and one 16-bit gray mask.
fn index(dir: &Path) {
    let (w, h) = (32u32, 24u32);
    // Index 0 is drawn red and index 1 black: colours must not be used.
    let mut plte = vec![0u8; 256 * 3];
    plte[0..3].copy_from_slice(&[255, 0, 0]);
    plte[6..9].copy_from_slice(&[0, 200, 0]);
    plte[255 * 3..].copy_from_slice(&[255, 255, 255]);
    for k in 0..3u32 {
        let mut m = vec![0u8; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) as usize;
                if x < 8 + 4 * k {
                    m[i] = 1;
                }
                if y >= 20 && x >= 24 {
                    m[i] = 2;
                }
                if x == 16 {
                    m[i] = 255;
                }
            }
        }
        let bytes = encode(
            w,
            h,
            png::ColorType::Indexed,
            png::BitDepth::Eight,
            &m,
            Some(&plte),
        );
        write(&dir.join("p").join(format!("{k:03}.png")), &bytes);
    }
    let mut g16 = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v: u16 = if y < 12 {
                1000
            } else if x < 16 {
                2
            } else {
                40000
            };
            let _ = x;
            g16.extend_from_slice(&v.to_be_bytes());
        }
    }
    let bytes = encode(
        w,
        h,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &g16,
        None,
    );
    write(&dir.join("gray16").join("000.png"), &bytes);
}

/// The standard VOC palette entry of index `i`.
fn voc_colour(i: u8) -> Rgb {
    let (mut r, mut g, mut b, mut c) = (0u8, 0u8, 0u8, i);
    for j in 0..8 {
        r |= (c & 1) << (7 - j);
        g |= ((c >> 1) & 1) << (7 - j);
        b |= ((c >> 2) & 1) << (7 - j);
        c >>= 3;
    }
    [r, g, b]
}

/// A VOC-style dataset: `SegmentationClass`-like palette PNGs with the VOC
/// palette (background 0, dog 12, person 15, a 255 "void" border around
/// objects), with photos.
fn voc(dir: &Path) {
    let (w, h) = (48u32, 36u32);
    let plte: Vec<u8> = (0..=255u8).flat_map(voc_colour).collect();
    for k in 0..6u32 {
        let mut m = vec![0u8; (w * h) as usize];
        let mut img = vec![[90u8, 120, 150]; (w * h) as usize];
        let (cx, cy) = (12 + 4 * k as i32, 18);
        for y in 0..h as i32 {
            for x in 0..w as i32 {
                let i = (y as u32 * w + x as u32) as usize;
                let d = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                // A person (a disk) with a void ring; a dog in every other image.
                if d < 64 {
                    m[i] = 15;
                    img[i] = [200, 150, 120];
                } else if d < 81 {
                    m[i] = 255;
                }
                if k % 2 == 0 && (34..44).contains(&x) && (24..32).contains(&y) {
                    m[i] = 12;
                    img[i] = [120, 80, 40];
                }
            }
        }
        let name = format!("2011_{:06}", k + 1);
        let bytes = encode(
            w,
            h,
            png::ColorType::Indexed,
            png::BitDepth::Eight,
            &m,
            Some(&plte),
        );
        write(&dir.join("masks").join(format!("{name}.png")), &bytes);
        write(
            &dir.join("images").join(format!("{name}.png")),
            &rgb_png(w, h, &img),
        );
    }
}

/// Files that must be reported, not crash the run.
fn bad(dir: &Path) {
    let (w, h) = (8u32, 8u32);
    let good = rgb_png(w, h, &[BLUE; 64]);
    write(&dir.join("good.png"), &good);
    write(&dir.join("truncated.png"), &good[..good.len() / 2]);
    write(
        &dir.join("not-a-png.png"),
        b"GIF89a this is not a PNG at all",
    );
    let rgb16: Vec<u8> = (0..w * h * 3).flat_map(|_| [0xFFu8, 0xFF]).collect();
    write(
        &dir.join("rgb16.png"),
        &encode(
            w,
            h,
            png::ColorType::Rgb,
            png::BitDepth::Sixteen,
            &rgb16,
            None,
        ),
    );
    // Gray + alpha: the alpha channel is dropped, the gray value is the code.
    let ga: Vec<u8> = (0..w * h)
        .flat_map(|i| [if i < 32 { 0 } else { 255 }, 128])
        .collect();
    write(
        &dir.join("gray-alpha.png"),
        &encode(
            w,
            h,
            png::ColorType::GrayscaleAlpha,
            png::BitDepth::Eight,
            &ga,
            None,
        ),
    );
    // RGBA: alpha is not a class unless an rgb-bits map names a 4th channel.
    let rgba: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            if i < 16 {
                [255, 0, 255, 0]
            } else {
                [0, 0, 255, 255]
            }
        })
        .collect();
    write(
        &dir.join("rgba.png"),
        &encode(
            w,
            h,
            png::ColorType::Rgba,
            png::BitDepth::Eight,
            &rgba,
            None,
        ),
    );
    write(&dir.join("huge.png"), &header_only(100_000, 100_000));
    write(&dir.join("zero-size.png"), &header_only(0, 8));
}

/// A gray PNG whose header claims `w x h` pixels with almost no data: a
/// decompression bomb (huge) or an empty image (zero).
fn header_only(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32(kind, 0xFFFF_FFFF);
    crc = crc32(data, crc);
    out.extend_from_slice(&(!crc).to_be_bytes());
}

fn crc32(bytes: &[u8], mut crc: u32) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    crc
}

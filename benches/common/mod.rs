//! What the stats and check benches share: their settings from the
//! environment, and the generated masks (the same files for both).

use std::path::Path;

use rayon::prelude::*;

/// `name` from the environment as a number, else `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes `n` masks of flat shapes (plate, code, chips), deterministic:
/// boxes, or with `round` the ellipse and discs inside those boxes.
pub fn generate(dir: &Path, n: usize, side: u32, round: bool) {
    if dir.is_dir() && std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0) == n {
        return;
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    (0..n).into_par_iter().for_each(|k| {
        let mut seed = (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rnd = |m: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % u64::from(m)) as u32
        };
        let s = side;
        let (px0, py0) = (rnd(s / 4), rnd(s / 4));
        let (px1, py1) = (s - rnd(s / 4), s - rnd(s / 4));
        let (qx, qy, qs) = (px0 + rnd(s / 3), py0 + rnd(s / 3), 20 + rnd(s / 6));
        let chips: Vec<(u32, u32, u32)> =
            (0..rnd(6)).map(|_| (rnd(s), rnd(s), 2 + rnd(10))).collect();
        // Inside the box [x0, x1) x [y0, y1): the box, or its inscribed ellipse.
        let inside = |x: u32, y: u32, x0: u32, y0: u32, x1: u32, y1: u32| {
            if x < x0 || x >= x1 || y < y0 || y >= y1 {
                return false;
            }
            if !round {
                return true;
            }
            let (rx, ry) = (f64::from(x1 - x0) / 2.0, f64::from(y1 - y0) / 2.0);
            let dx = (f64::from(x) + 0.5 - f64::from(x0)) / rx - 1.0;
            let dy = (f64::from(y) + 0.5 - f64::from(y0)) / ry - 1.0;
            dx * dx + dy * dy <= 1.0
        };
        let mut data = vec![0u8; (s * s * 3) as usize];
        for y in 0..s {
            for x in 0..s {
                let i = ((y * s + x) * 3) as usize;
                if inside(x, y, px0, py0, px1, py1) {
                    data[i + 2] = 255;
                }
                if inside(x, y, qx, qy, qx + qs, qy + qs) {
                    data[i] = 255;
                }
                if chips.iter().any(|&(cx, cy, r)| {
                    inside(
                        x,
                        y,
                        cx.saturating_sub(r - 1),
                        cy.saturating_sub(r - 1),
                        cx + r,
                        cy + r,
                    )
                }) {
                    data[i + 1] = 255;
                }
            }
        }
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, s, s);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().expect("header");
            w.write_image_data(&data).expect("data");
        }
        std::fs::write(dir.join(format!("{k:06}.png")), out).expect("write");
    });
}

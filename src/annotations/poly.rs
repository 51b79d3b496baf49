//! pycocotools' polygon rasteriser (`rleFrPoly` in `maskApi.c`), ported
//! operation for operation, so that every pixel equals `annToMask`.
//!
//! The C code scales the vertices by 5 and rounds them with `(int)(v+.5)`
//! (truncation toward zero), walks every edge densely (one point per scaled
//! unit along the longer axis), and keeps a point where the walk crosses
//! the scaled column line `5x+2` of an image column `x` in `0..w`; its row
//! is `ceil((min(v)+.5)/5-.5)` clamped to `0..=h`. Each kept point toggles
//! the column-major pixel index `x*h+y` (a toggle at `y = h` is the top of
//! column `x+1`); toggles at one index cancel in pairs. Here the walk
//! visits only the points that can matter (those whose scaled column lies
//! on an image column line), found by binary search on the same monotone
//! formulas, so an edge far outside the image costs nothing, and the points
//! it skips could not have produced a toggle.

/// Largest coordinate magnitude accepted. pycocotools converts `5x+.5` to a
/// C `int` (undefined beyond 2^31) and allocates one point per scaled unit
/// of perimeter: such polygons are refused, not guessed.
pub const MAX_COORDINATE: f64 = 1e8;

/// Why polygon `xy` cannot be rasterised: a non-finite or huge coordinate.
/// (Fewer than 3 points is the caller's rule; see `coco`.)
pub fn check(xy: &[f64]) -> Result<(), String> {
    for (i, &v) in xy.iter().enumerate() {
        if !v.is_finite() {
            return Err(format!(
                "coordinate {} is `{v}`; expected a finite number",
                i + 1
            ));
        }
        if v.abs() > MAX_COORDINATE {
            return Err(format!(
                "coordinate {} is `{v}`, beyond ±{MAX_COORDINATE:e}; expected a point near the image",
                i + 1
            ));
        }
    }
    Ok(())
}

/// C's `(int)v` on x86-64 (`cvttsd2si`): truncation toward zero, and
/// `INT_MIN` for NaN or out of range (a zero-length edge divides 0 by 0;
/// the point it gives never decides a toggle, but it is kept as C has it).
fn c_int(v: f64) -> i64 {
    if v.is_nan() || v >= 2_147_483_648.0 || v <= -2_147_483_649.0 {
        i64::from(i32::MIN)
    } else {
        v.trunc() as i64
    }
}

/// `(int)(5*v+.5)`: a vertex on the scaled grid.
fn scaled(v: f64) -> i64 {
    c_int(5.0 * v + 0.5)
}

/// One edge's dense walk: point `d` of `0..=n`, in the C code's order.
struct Edge {
    xs: i64,
    ys: i64,
    n: i64,
    flip: bool,
    /// Steps along x (dx >= dy), else along y.
    along_x: bool,
    s: f64,
}

impl Edge {
    fn new(x0: i64, y0: i64, x1: i64, y1: i64) -> Self {
        let (mut xs, mut xe, mut ys, mut ye) = (x0, x1, y0, y1);
        let dx = (xe - xs).abs();
        let dy = (ys - ye).abs();
        let flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
        if flip {
            std::mem::swap(&mut xs, &mut xe);
            std::mem::swap(&mut ys, &mut ye);
        }
        let along_x = dx >= dy;
        let s = if along_x {
            (ye - ys) as f64 / dx as f64
        } else {
            (xe - xs) as f64 / dy as f64
        };
        Edge {
            xs,
            ys,
            n: if along_x { dx } else { dy },
            flip,
            along_x,
            s,
        }
    }

    /// `(u, v)`: the scaled column and row of point `d`.
    fn point(&self, d: i64) -> (i64, i64) {
        let t = if self.flip { self.n - d } else { d };
        if self.along_x {
            (t + self.xs, c_int(self.ys as f64 + self.s * t as f64 + 0.5))
        } else {
            (c_int(self.xs as f64 + self.s * t as f64 + 0.5), t + self.ys)
        }
    }

    fn u(&self, d: i64) -> i64 {
        self.point(d).0
    }
}

/// Smallest `d` in `lo..=hi` with `f(d)` (false then true), or `hi + 1`.
fn first_true(mut lo: i64, hi: i64, f: impl Fn(i64) -> bool) -> i64 {
    let mut end = hi + 1;
    while lo < end {
        let mid = lo + (end - lo) / 2;
        if f(mid) {
            end = mid;
        } else {
            lo = mid + 1;
        }
    }
    end
}

/// The walk's state: the previous point, and where toggles go.
struct Walk<'a> {
    h: i64,
    w: i64,
    prev: Option<(i64, i64)>,
    out: &'a mut Vec<u32>,
}

impl Walk<'_> {
    /// The next point of the walk: a toggle when it changes column on a
    /// column line, exactly as the C loop over `u[j] != u[j-1]`.
    fn visit(&mut self, p: (i64, i64)) {
        if let Some(q) = self.prev
            && p.0 != q.0
        {
            self.toggle(q, p);
        }
        self.prev = Some(p);
    }

    fn toggle(&mut self, q: (i64, i64), p: (i64, i64)) {
        let mut xd = (if p.0 < q.0 { p.0 } else { p.0 - 1 }) as f64;
        xd = (xd + 0.5) / 5.0 - 0.5;
        if xd.floor() != xd || xd < 0.0 || xd > (self.w - 1) as f64 {
            return;
        }
        let mut yd = p.1.min(q.1) as f64;
        yd = (yd + 0.5) / 5.0 - 0.5;
        let h = self.h as f64;
        if yd < 0.0 {
            yd = 0.0;
        } else if yd > h {
            yd = h;
        }
        yd = yd.ceil();
        // `(uint)(x*(int)h+y)`: 0 <= x < w and 0 <= y <= h, so no wrap
        // for images of at most 2^32 pixels.
        self.out.push((xd as i64 * self.h + yd as i64) as u32);
    }

    /// Walks one edge, visiting only the points that can toggle (and the
    /// point before each, as C's pairwise test needs).
    fn edge(&mut self, e: &Edge) {
        // A point can start a toggle only if its scaled column is `5x+2`
        // (moving left) or `5x+3` (moving right) for some column x in 0..w.
        let (lo, hi) = (2, 5 * self.w - 2);
        let n = e.n;
        self.visit(e.point(0));
        let rising = e.u(n) >= e.u(0);
        let (a, b) = if rising {
            (
                first_true(0, n, |d| e.u(d) >= lo),
                first_true(0, n, |d| e.u(d) > hi) - 1,
            )
        } else {
            (
                first_true(0, n, |d| e.u(d) <= hi),
                first_true(0, n, |d| e.u(d) < lo) - 1,
            )
        };
        if a <= b {
            let start = a.max(1);
            if start > b {
                // Only point 0 is in range, and it was visited.
            } else {
                if start > 1 {
                    // Points before `start` cannot toggle; the last of
                    // them is the previous point of the first that can.
                    self.prev = Some(e.point(start - 1));
                }
                if e.along_x || b - start <= 64 {
                    for d in start..=b {
                        self.visit(e.point(d));
                    }
                } else {
                    self.jump(e, start, b);
                }
            }
        }
        // The rest cannot toggle; the edge's last point is the next
        // edge's previous point.
        self.prev = Some(e.point(n));
    }

    /// Along y, many points share a column: visit only each change of
    /// column (found by galloping search), with the point just before it.
    fn jump(&mut self, e: &Edge, start: i64, b: i64) {
        let mut cur = start;
        self.visit(e.point(cur));
        loop {
            let uc = e.u(cur);
            let mut step = 1;
            while cur + step <= b && e.u(cur + step) == uc {
                step *= 2;
            }
            let lo = cur + step / 2 + 1;
            let hi = (cur + step).min(b);
            if lo > hi {
                break;
            }
            let next = first_true(lo, hi, |d| e.u(d) != uc);
            if next > hi {
                break;
            }
            if next - 1 > cur {
                self.prev = Some(e.point(next - 1));
            }
            self.visit(e.point(next));
            cur = next;
        }
    }
}

/// Appends the toggles of polygon `xy` (`x0 y0 x1 y1 ...`; an odd last
/// number is ignored, as `int(len(p)/2)` does) in an `h` x `w` image.
/// Coordinates must pass [`check`].
pub fn toggles(xy: &[f64], h: u32, w: u32, out: &mut Vec<u32>) {
    let k = xy.len() / 2;
    if k == 0 {
        return;
    }
    let mut walk = Walk {
        h: i64::from(h),
        w: i64::from(w),
        prev: None,
        out,
    };
    let vertex = |j: usize| {
        let j = j % k;
        (scaled(xy[2 * j]), scaled(xy[2 * j + 1]))
    };
    for j in 0..k {
        let (x0, y0) = vertex(j);
        let (x1, y1) = vertex(j + 1);
        walk.edge(&Edge::new(x0, y0, x1, y1));
    }
}

/// The on-intervals `[start, end)` (column-major pixel indices) of one
/// polygon: its toggles sorted, equal ones cancelled in pairs, as
/// `rleFrPoly`'s run merge does. `toggles` is scratch.
pub fn intervals(
    xy: &[f64],
    h: u32,
    w: u32,
    toggles_buf: &mut Vec<u32>,
    out: &mut Vec<(u64, u64)>,
) {
    toggles_buf.clear();
    toggles(xy, h, w, toggles_buf);
    toggles_buf.sort_unstable();
    let total = u64::from(h) * u64::from(w);
    let mut open: Option<u64> = None;
    let mut i = 0;
    while i < toggles_buf.len() {
        let v = toggles_buf[i];
        let mut j = i + 1;
        while j < toggles_buf.len() && toggles_buf[j] == v {
            j += 1;
        }
        if (j - i) % 2 == 1 {
            let p = u64::from(v);
            match open.take() {
                None => open = Some(p),
                Some(s) => {
                    if p > s {
                        out.push((s, p));
                    }
                }
            }
        }
        i = j;
    }
    if let Some(s) = open
        && s < total
    {
        out.push((s, total));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mask of one polygon, row-major `[y][x]`, from its intervals.
    fn mask(xy: &[f64], h: u32, w: u32) -> Vec<Vec<u8>> {
        let (mut t, mut iv) = (Vec::new(), Vec::new());
        intervals(xy, h, w, &mut t, &mut iv);
        let mut m = vec![vec![0u8; w as usize]; h as usize];
        for (s, e) in iv {
            for p in s..e {
                m[(p % u64::from(h)) as usize][(p / u64::from(h)) as usize] = 1;
            }
        }
        m
    }

    fn rows(m: &[Vec<u8>]) -> Vec<String> {
        m.iter()
            .map(|r| r.iter().map(|&v| if v == 1 { '#' } else { '.' }).collect())
            .collect()
    }

    #[test]
    fn square_on_pixel_corners() {
        // (1,1)-(3,1)-(3,3)-(1,3), scaled (5,5)-(15,5)-(15,15)-(5,15). The
        // top edge crosses the lines 7 and 12 (columns 1, 2) at v = 5, row
        // ceil(5.5/5-.5) = ceil(0.6) = 1; the bottom edge at v = 15, row
        // ceil(2.6) = 3. Toggles 6, 11 and 8, 13: rows 1..3 of columns 1, 2.
        let m = mask(&[1.0, 1.0, 3.0, 1.0, 3.0, 3.0, 1.0, 3.0], 5, 5);
        assert_eq!(rows(&m), [".....", ".##..", ".##..", ".....", "....."]);
    }

    #[test]
    fn triangle_by_hand() {
        // Scaled vertices (0,0), (20,0), (0,20) in a 4x4 image. Edges:
        // (0,0)->(20,0) along x, v = 0: crossings at u 2->3, 7->8, 12->13,
        // 17->18 for columns 0..3, row ceil((0+.5)/5-.5) = 0.
        // (20,0)->(0,20): dx = dy = 20, along x, flipped (xs > xe), walked
        // from u = 20 down to 0 with v = 20 - u: column x crosses between
        // u = 5x+3 and 5x+2, v = min(17-5x, 18-5x) = 17-5x, row
        // ceil((17.5-5x)/5-.5) = ceil(3-x) = 3-x: toggles at x*4 + 3-x.
        // (0,20)->(0,0): no column change.
        // Column x is on from row 0 to row 3-x (exclusive): 3, 2, 1, 0 px.
        let m = mask(&[0.0, 0.0, 4.0, 0.0, 0.0, 4.0], 4, 4);
        assert_eq!(rows(&m), ["###.", "##..", "#...", "...."]);
    }

    #[test]
    fn negative_coordinates_truncate_toward_zero() {
        // -0.1*5+.5 = 0 -> 0 and -0.3*5+.5 = -1 -> -1: either way the walk
        // starts left of column 0's line (2).
        let a = mask(&[-0.1, 0.0, 2.0, 0.0, 2.0, 2.0, -0.1, 2.0], 3, 3);
        let b = mask(&[-0.3, 0.0, 2.0, 0.0, 2.0, 2.0, -0.3, 2.0], 3, 3);
        assert_eq!(rows(&a), ["##.", "##.", "..."]);
        assert_eq!(a, b);
        // 0.35*5+.5 = 2.25 -> 2: on the line, the step 2 -> 3 still crosses.
        let c = mask(&[0.35, 0.0, 2.0, 0.0, 2.0, 2.0, 0.35, 2.0], 3, 3);
        assert_eq!(rows(&c), ["##.", "##.", "..."]);
        // 0.55*5+.5 = 3.25 -> 3: right of the line, column 0 stays off.
        let d = mask(&[0.55, 0.0, 2.0, 0.0, 2.0, 2.0, 0.55, 2.0], 3, 3);
        assert_eq!(rows(&d), [".#.", ".#.", "..."]);
    }

    #[test]
    fn rows_clamp_and_columns_outside_are_dropped() {
        // A rectangle from (-3,-3) to (2,9) in a 4x4 image: columns 0, 1
        // (lines 2, 7 inside -15..10), rows clamped to 0 and 4: full
        // columns 0 and 1.
        let m = mask(&[-3.0, -3.0, 2.0, -3.0, 2.0, 9.0, -3.0, 9.0], 4, 4);
        assert_eq!(rows(&m), ["##..", "##..", "##..", "##.."]);
    }

    #[test]
    fn degenerate_polygons_are_empty() {
        // Collinear points: every crossing is walked there and back.
        assert!(
            mask(&[0.0, 0.0, 2.0, 2.0, 4.0, 4.0], 5, 5)
                .iter()
                .flatten()
                .all(|&v| v == 0)
        );
        // A repeated vertex (zero-length edge) changes nothing.
        assert_eq!(
            mask(&[1.0, 1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 3.0, 1.0, 3.0], 5, 5),
            mask(&[1.0, 1.0, 3.0, 1.0, 3.0, 3.0, 1.0, 3.0], 5, 5)
        );
    }

    /// Toggles from the C walk itself: every point of every edge.
    fn brute_toggles(xy: &[f64], h: u32, w: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut walk = Walk {
            h: i64::from(h),
            w: i64::from(w),
            prev: None,
            out: &mut out,
        };
        let k = xy.len() / 2;
        for j in 0..k {
            let (a, b) = (j, (j + 1) % k);
            let e = Edge::new(
                scaled(xy[2 * a]),
                scaled(xy[2 * a + 1]),
                scaled(xy[2 * b]),
                scaled(xy[2 * b + 1]),
            );
            for d in 0..=e.n {
                walk.visit(e.point(d));
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn skipping_walk_equals_the_full_walk() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..400 {
            let h = 1 + (next() % 40) as u32;
            let w = 1 + (next() % 40) as u32;
            let k = 3 + (next() % 7) as usize;
            let mut xy = Vec::with_capacity(2 * k);
            for _ in 0..k {
                for size in [w, h] {
                    let r = next();
                    let v = match r % 6 {
                        // Far away (tall or wide edges, both walk modes).
                        0 => (r >> 8) as f64 % 40_000.0 - 20_000.0,
                        // On pixel centres, corners and the rounding edges.
                        1 => ((r >> 8) % u64::from(4 * size + 8)) as f64 / 4.0 - 1.0,
                        _ => {
                            ((r >> 8) % 100_000) as f64 / 100_000.0 * (f64::from(size) + 6.0) - 3.0
                        }
                    };
                    xy.push(v);
                }
            }
            let mut fast = Vec::new();
            toggles(&xy, h, w, &mut fast);
            fast.sort_unstable();
            assert_eq!(
                fast,
                brute_toggles(&xy, h, w),
                "round {round}: {h}x{w} {xy:?}"
            );
        }
    }

    #[test]
    fn bad_coordinates_are_named() {
        assert!(
            check(&[0.0, f64::NAN])
                .unwrap_err()
                .contains("coordinate 2")
        );
        assert!(check(&[2e8, 0.0]).unwrap_err().contains("coordinate 1"));
        assert!(check(&[1e8, -1e8]).is_ok());
    }
}

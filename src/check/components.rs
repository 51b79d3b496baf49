//! Check stage: objects of every class of one decoded mask, by run-based
//! union-find labelling. The mask is read row by row as runs of equal
//! codes (the decoder's own run finder; a row equal to the one above is not
//! scanned again, its runs are reused); each class keeps its runs of
//! the previous row and the current one, and a run joins the components of
//! the runs above it that it touches. Cost grows with runs, not pixels.
//!
//! Objects of class c are the connected components of its plane (pixels
//! carrying c), 8-connected by default (4 on request). Holes are the
//! components of the complement (every pixel not carrying c, ignored ones
//! included) under the dual connectivity (4 for 8-connected objects, 8 for
//! 4-connected ones) that touch no image border; a hole belongs to the
//! object holding the pixel just above its first pixel (in row-major
//! order), which is the object around it. Scratch buffers are reused from
//! mask to mask: nothing is allocated per pixel.

use crate::decode::Frame;
use crate::labels::{LabelMap, Resolved};

/// Which neighbours join two pixels of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Connectivity {
    /// Edges only (up, down, left, right).
    Four,
    /// Edges and corners (diagonal neighbours touch): scipy's
    /// `ndimage.label` with a full 3x3 structure.
    #[default]
    Eight,
}

impl Connectivity {
    /// Extra columns a run reaches in the row above or below: 1 when
    /// corners count.
    fn reach(self) -> u32 {
        match self {
            Self::Four => 0,
            Self::Eight => 1,
        }
    }

    /// The connectivity of the complement (holes).
    fn dual(self) -> Self {
        match self {
            Self::Four => Self::Eight,
            Self::Eight => Self::Four,
        }
    }

    /// 4 or 8, as `--connectivity` and the pipeline's `connectivity` take it.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            4 => Some(Self::Four),
            8 => Some(Self::Eight),
            _ => None,
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Self::Four => 4,
            Self::Eight => 8,
        }
    }
}

/// One object found in a mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    pub class: u16,
    /// Pixels.
    pub size: u64,
    /// Encloses at least one hole.
    pub holed: bool,
}

/// What one mask holds, beside its objects.
#[derive(Debug, Default, Clone)]
pub struct MaskSummary {
    pub width: u32,
    pub height: u32,
    /// Pixels of each class.
    pub class_pixels: Vec<u64>,
    /// Ignored or undeclared pixels.
    pub excluded: u64,
    /// xxh3-128 of the label set of every pixel (ignored and undeclared
    /// alike), with the size: equal for masks with equal planes.
    pub hash: u128,
    /// Every pixel carries the same label set (an empty mask, all
    /// background): such masks of one size are all alike.
    pub uniform: bool,
}

/// A run of one class (or of its complement) in a row: columns `x0..x1`
/// and its union-find node.
#[derive(Debug, Clone, Copy)]
struct Run {
    x0: u32,
    x1: u32,
    node: u32,
}

/// One class's runs of the previous and the current row.
#[derive(Debug, Default)]
struct Rows {
    active: bool,
    prev_fg: Vec<Run>,
    cur_fg: Vec<Run>,
    prev_bg: Vec<Run>,
    cur_bg: Vec<Run>,
}

const BORDER: u8 = 1;
const BACKGROUND: u8 = 2;
const HOLED: u8 = 4;

/// Per-thread buffers for [`label`], reused from mask to mask.
#[derive(Default)]
pub struct Labeller {
    rows: Vec<Rows>,
    active: Vec<u16>,
    parent: Vec<u32>,
    size: Vec<u64>,
    flags: Vec<u8>,
    class: Vec<u16>,
    /// Background nodes: the row-major index of the first pixel, and the
    /// object node just above it.
    first: Vec<u64>,
    above: Vec<u32>,
    objects: Vec<Object>,
    /// The runs of the row being labelled, `(code, length)`.
    segs: Vec<(u32, u32)>,
}

impl Labeller {
    /// The objects of the mask last labelled, by class, then in the order
    /// their first run was met.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    fn reset(&mut self, classes: usize) {
        self.rows.resize_with(classes, Rows::default);
        for &c in &self.active {
            let r = &mut self.rows[usize::from(c)];
            r.active = false;
            r.prev_fg.clear();
            r.cur_fg.clear();
            r.prev_bg.clear();
            r.cur_bg.clear();
        }
        self.active.clear();
        self.parent.clear();
        self.size.clear();
        self.flags.clear();
        self.class.clear();
        self.first.clear();
        self.above.clear();
        self.objects.clear();
    }

    fn node(&mut self, class: u16, flags: u8, first: u64, above: u32) -> u32 {
        let n = self.parent.len() as u32;
        self.parent.push(n);
        self.size.push(0);
        self.flags.push(flags);
        self.class.push(class);
        self.first.push(first);
        self.above.push(above);
        n
    }

    fn find(&mut self, mut n: u32) -> u32 {
        while self.parent[n as usize] != n {
            let up = self.parent[self.parent[n as usize] as usize];
            self.parent[n as usize] = up;
            n = up;
        }
        n
    }

    /// Joins the components of `a` and `b`; returns the root. A background
    /// root keeps the earliest first pixel (and the object above it).
    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return a;
        }
        let (root, child) = if self.size[a as usize] >= self.size[b as usize] {
            (a, b)
        } else {
            (b, a)
        };
        let (r, c) = (root as usize, child as usize);
        self.parent[c] = root;
        self.size[r] += self.size[c];
        self.flags[r] |= self.flags[c];
        if self.first[c] < self.first[r] {
            self.first[r] = self.first[c];
            self.above[r] = self.above[c];
        }
        root
    }
}

/// Labels every class of `frame`: objects and holes into `lab`, pixel
/// counts and the planes' hash into the returned summary. A row equal to
/// the row above (masks are flat down the columns) reuses its runs instead
/// of being scanned again.
pub fn label(
    frame: &Frame<'_>,
    map: &LabelMap,
    conn: Connectivity,
    lab: &mut Labeller,
) -> MaskSummary {
    let classes = map.num_classes();
    lab.reset(classes);
    let (w, h) = (frame.width, frame.height);
    let mut summary = MaskSummary {
        width: w,
        height: h,
        class_pixels: vec![0; classes],
        ..MaskSummary::default()
    };
    let mut hasher = PlaneHasher::new(w, h);
    let mut segs = std::mem::take(&mut lab.segs);
    for y in 0..h {
        if y == 0 || frame.row(y) != frame.row(y - 1) {
            segs.clear();
            frame.row_runs(y, |code, run| segs.push((code, run as u32)));
        }
        let mut x = 0u32;
        for &(code, run) in &segs {
            let resolved = map.resolve(code, frame.format);
            hasher.add(resolved, u64::from(run));
            match resolved {
                Resolved::Classes(set) => {
                    for &c in set {
                        summary.class_pixels[usize::from(c)] += u64::from(run);
                        push_fg(lab, c, y, x, x + run, w);
                    }
                }
                Resolved::Ignore | Resolved::Unknown => summary.excluded += u64::from(run),
            }
            x += run;
        }
        finish_row(lab, y, w, h, conn);
    }
    lab.segs = segs;
    summary.uniform = hasher.runs <= 1;
    summary.hash = hasher.finish();
    collect(lab);
    summary
}

/// Adds columns `x0..x1` of row `y` to class `c`'s current row, joined to
/// the run before when they meet (two codes both carrying `c`).
fn push_fg(lab: &mut Labeller, c: u16, y: u32, x0: u32, x1: u32, w: u32) {
    let rows = &mut lab.rows[usize::from(c)];
    if !rows.active {
        rows.active = true;
        lab.active.push(c);
        if y > 0 {
            // The rows above were all background: one component, on the border.
            let n = lab.node(c, BACKGROUND | BORDER, 0, u32::MAX);
            lab.rows[usize::from(c)].prev_bg.push(Run {
                x0: 0,
                x1: w,
                node: n,
            });
        }
    }
    let cur = &mut lab.rows[usize::from(c)].cur_fg;
    match cur.last_mut() {
        Some(last) if last.x1 == x0 => last.x1 = x1,
        _ => cur.push(Run {
            x0,
            x1,
            node: u32::MAX,
        }),
    }
}

/// Ends row `y` for every active class: joins its object runs and its
/// background runs to those above, then makes it the previous row.
fn finish_row(lab: &mut Labeller, y: u32, w: u32, h: u32, conn: Connectivity) {
    for k in 0..lab.active.len() {
        let c = lab.active[k];
        let mut rows = std::mem::take(&mut lab.rows[usize::from(c)]);
        // Background: the gaps between the object runs.
        rows.cur_bg.clear();
        let mut at = 0;
        for r in &rows.cur_fg {
            if r.x0 > at {
                rows.cur_bg.push(Run {
                    x0: at,
                    x1: r.x0,
                    node: u32::MAX,
                });
            }
            at = r.x1;
        }
        if at < w {
            rows.cur_bg.push(Run {
                x0: at,
                x1: w,
                node: u32::MAX,
            });
        }
        join(lab, c, &rows.prev_fg, &mut rows.cur_fg, conn.reach(), None);
        let ctx = BgRow {
            y,
            w,
            h,
            above: &rows.prev_fg,
        };
        join(
            lab,
            c,
            &rows.prev_bg,
            &mut rows.cur_bg,
            conn.dual().reach(),
            Some(ctx),
        );
        std::mem::swap(&mut rows.prev_fg, &mut rows.cur_fg);
        std::mem::swap(&mut rows.prev_bg, &mut rows.cur_bg);
        rows.cur_fg.clear();
        lab.rows[usize::from(c)] = rows;
    }
}

/// Where a background row lies, for its border and its holes' owners.
struct BgRow<'a> {
    y: u32,
    w: u32,
    h: u32,
    /// The object runs of the row above.
    above: &'a [Run],
}

/// Gives every run of `cur` a node: the component of the runs of `prev` it
/// touches (columns within `reach` of its ends), joined, or a new one.
fn join(
    lab: &mut Labeller,
    c: u16,
    prev: &[Run],
    cur: &mut [Run],
    reach: u32,
    bg: Option<BgRow<'_>>,
) {
    let mut i = 0;
    for run in cur.iter_mut() {
        while i < prev.len() && prev[i].x1 + reach <= run.x0 {
            i += 1;
        }
        let mut node = None;
        let mut j = i;
        while j < prev.len() && prev[j].x0 < run.x1 + reach {
            node = Some(match node {
                None => lab.find(prev[j].node),
                Some(n) => lab.union(n, prev[j].node),
            });
            j += 1;
        }
        let node = match (node, &bg) {
            (Some(n), _) => n,
            (None, None) => lab.node(c, 0, 0, u32::MAX),
            (None, Some(b)) => {
                let first = u64::from(b.y) * u64::from(b.w) + u64::from(run.x0);
                let k = b.above.partition_point(|a| a.x1 <= run.x0);
                let above = b
                    .above
                    .get(k)
                    .filter(|a| a.x0 <= run.x0)
                    .map_or(u32::MAX, |a| a.node);
                lab.node(c, BACKGROUND, first, above)
            }
        };
        let root = lab.find(node);
        lab.size[root as usize] += u64::from(run.x1 - run.x0);
        if let Some(b) = &bg
            && (b.y == 0 || b.y + 1 == b.h || run.x0 == 0 || run.x1 == b.w)
        {
            lab.flags[root as usize] |= BORDER;
        }
        run.node = node;
    }
}

/// Reads the components off the forest: each object root is an object,
/// each background root off the border a hole of the object above it.
fn collect(lab: &mut Labeller) {
    for n in 0..lab.parent.len() as u32 {
        let f = lab.flags[n as usize];
        if lab.parent[n as usize] == n && f & BACKGROUND != 0 && f & BORDER == 0 {
            let owner = lab.above[n as usize];
            if owner != u32::MAX {
                let o = lab.find(owner);
                lab.flags[o as usize] |= HOLED;
            }
        }
    }
    for n in 0..lab.parent.len() {
        let f = lab.flags[n];
        if lab.parent[n] == n as u32 && f & BACKGROUND == 0 {
            lab.objects.push(Object {
                class: lab.class[n],
                size: lab.size[n],
                holed: f & HOLED != 0,
            });
        }
    }
    lab.objects.sort_by_key(|o| o.class);
}

/// Hashes a mask's planes as its runs of equal label sets (runs of codes
/// that mean the same set are one run), with its size: two masks hash
/// equal when every pixel carries the same classes, however the file
/// encodes them (RGB, palette, index).
struct PlaneHasher {
    h: xxhash_rust::xxh3::Xxh3,
    /// The sorted set of the open run; `excluded`: ignored or undeclared.
    set: Vec<u16>,
    excluded: bool,
    next: Vec<u16>,
    run: u64,
    started: bool,
    /// Runs of distinct label sets so far.
    runs: u64,
}

impl PlaneHasher {
    fn new(w: u32, h: u32) -> Self {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&w.to_le_bytes());
        hasher.update(&h.to_le_bytes());
        Self {
            h: hasher,
            set: Vec::new(),
            excluded: false,
            next: Vec::new(),
            run: 0,
            started: false,
            runs: 0,
        }
    }

    fn add(&mut self, r: Resolved<'_>, run: u64) {
        self.next.clear();
        let excluded = match r {
            Resolved::Classes(s) => {
                self.next.extend_from_slice(s);
                self.next.sort_unstable();
                false
            }
            Resolved::Ignore | Resolved::Unknown => true,
        };
        if self.started && self.excluded == excluded && self.set == self.next {
            self.run += run;
            return;
        }
        self.flush();
        self.started = true;
        self.runs += 1;
        self.excluded = excluded;
        std::mem::swap(&mut self.set, &mut self.next);
        self.run = run;
    }

    fn flush(&mut self) {
        if !self.started {
            return;
        }
        if self.excluded {
            self.h.update(&u32::MAX.to_le_bytes());
        } else {
            self.h.update(&(self.set.len() as u32).to_le_bytes());
            for c in &self.set {
                self.h.update(&c.to_le_bytes());
            }
        }
        self.h.update(&self.run.to_le_bytes());
    }

    fn finish(mut self) -> u128 {
        self.flush();
        self.h.digest128()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> LabelMap {
        let spec = crate::labels::presets::parse_toml(
            "kind = \"index\"\nclasses = [\"bg\", \"a\", \"b\"]\nignore = [255]\n",
            "test",
        )
        .unwrap();
        LabelMap::compile(spec, "test").unwrap()
    }

    /// `rows` of digits (`.` = 0, `x` = 255 ignored): the objects of class 1
    /// as (size, holed), sorted, and the summary.
    fn objects(rows: &[&str], conn: Connectivity) -> (Vec<(u64, bool)>, MaskSummary) {
        let w = rows[0].len() as u32;
        let data: Vec<u8> = rows
            .iter()
            .flat_map(|r| {
                r.bytes().map(|b| match b {
                    b'.' => 0,
                    b'x' => 255,
                    d => d - b'0',
                })
            })
            .collect();
        let frame = Frame::from_samples(w, rows.len() as u32, 1, &data).unwrap();
        let mut lab = Labeller::default();
        let s = label(&frame, &map(), conn, &mut lab);
        let mut v: Vec<(u64, bool)> = lab
            .objects()
            .iter()
            .filter(|o| o.class == 1)
            .map(|o| (o.size, o.holed))
            .collect();
        v.sort();
        (v, s)
    }

    use Connectivity::{Eight, Four};

    #[test]
    fn diagonal_neighbours_join_under_8_connectivity_only() {
        let rows = ["1...", ".1..", "..1.", "...1"];
        assert_eq!(objects(&rows, Eight).0, vec![(4, false)]);
        assert_eq!(objects(&rows, Four).0, vec![(1, false); 4]);
    }

    #[test]
    fn a_ring_encloses_a_hole_and_an_island_inside_has_none() {
        let rows = [
            ".......", ".11111.", ".1...1.", ".1.1.1.", ".1...1.", ".11111.", ".......",
        ];
        for conn in [Eight, Four] {
            assert_eq!(objects(&rows, conn).0, vec![(1, false), (16, true)]);
        }
    }

    /// A diamond of diagonal pixels closes its centre for 8-connected
    /// objects (the centre's 4 neighbours are the object); as 4 separate
    /// objects it closes nothing (the centre leaks out by its corners).
    #[test]
    fn a_diagonal_ring_is_closed_only_for_8_connected_objects() {
        let rows = [".....", "..1..", ".1.1.", "..1..", "....."];
        assert_eq!(objects(&rows, Eight).0, vec![(4, true)]);
        assert_eq!(objects(&rows, Four).0, vec![(1, false); 4]);
    }

    /// Background cut off by the object and the image border is no hole;
    /// objects on the border count as any other.
    #[test]
    fn background_open_to_the_border_is_no_hole() {
        let rows = ["1.1", "1.1", "111"];
        assert_eq!(objects(&rows, Eight).0, vec![(7, false)]);
        let rows = ["111", "1.1", "111"];
        assert_eq!(objects(&rows, Four).0, vec![(8, true)]);
    }

    /// Two arms meet at the bottom (a late union); a second class sharing
    /// the rows and ignored pixels count as background for holes.
    #[test]
    fn arms_joined_late_are_one_object_and_ignored_pixels_fill_holes() {
        let rows = ["1.1.1", "1.1.1", "11111", "22x22"];
        let (v, s) = objects(&rows, Four);
        assert_eq!(v, vec![(11, false)]);
        assert_eq!(s.class_pixels, vec![4, 11, 4]);
        assert_eq!(s.excluded, 1);
        let rows = ["11111", "1x2.1", "11111"];
        assert_eq!(objects(&rows, Eight).0, vec![(12, true)]);
    }

    #[test]
    fn equal_planes_hash_equal_and_any_change_differs() {
        let a = objects(&["12", "21"], Eight).1.hash;
        assert_eq!(a, objects(&["12", "21"], Four).1.hash);
        assert_ne!(a, objects(&["12", "12"], Eight).1.hash);
        assert_ne!(a, objects(&["1221"], Eight).1.hash);
        // Ignored and undeclared pixels are alike (both excluded).
        assert_ne!(
            objects(&["1x"], Eight).1.hash,
            objects(&["1."], Eight).1.hash
        );
        assert!(objects(&["11", "11"], Eight).1.uniform);
        assert!(!objects(&["11", "1x"], Eight).1.uniform);
    }
}

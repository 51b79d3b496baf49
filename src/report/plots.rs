//! Plots as PNG bytes: plotters draws into an RGB buffer
//! (`BitMapBackend::with_buffer`), text is laid out and rasterised with
//! ab_glyph from the embedded DejaVu Sans, and the `png` crate encodes the
//! buffer with fixed settings: the same numbers give the same bytes, and no
//! system font library is needed.

use std::error::Error as StdError;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

/// DejaVu Sans (Bitstream Vera license, see `assets/README.md`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family name the font is registered under.
const FAMILY: &str = "maskprep-sans";

/// Bar colour of ordinary classes, and of classes flagged (rare).
pub const BLUE: RGBColor = RGBColor(49, 110, 170);
pub const ORANGE: RGBColor = RGBColor(222, 110, 20);
pub const GREEN: RGBColor = RGBColor(60, 150, 80);
pub const PURPLE: RGBColor = RGBColor(128, 90, 170);
pub const TEAL: RGBColor = RGBColor(40, 150, 160);
const GREY: RGBColor = RGBColor(110, 110, 110);
const GRID: RGBColor = RGBColor(225, 225, 225);
const TEXT: RGBColor = RGBColor(30, 30, 30);

/// Most characters of a class name drawn on a plot (the tables hold the rest).
const MAX_LABEL: usize = 28;

/// A plot could not be drawn or encoded.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("the embedded font cannot be read")]
    Font,
    #[error("cannot draw plot `{name}`")]
    Draw {
        name: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("cannot encode plot `{name}` as PNG")]
    Encode {
        name: String,
        #[source]
        source: png::EncodingError,
    },
}

/// A rendered plot.
#[derive(Debug, Clone)]
pub struct Plot {
    /// File name in the report folder, e.g. `class_pixels.png`.
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub png: Vec<u8>,
}

type DrawResult = Result<(), Box<dyn StdError + Send + Sync>>;
type Area<'a> = DrawingArea<Canvas<'a>, Shift>;

/// The parsed font; also registered with plotters (its own text layout
/// needs a registered font before any text is drawn).
fn face() -> Result<&'static FontRef<'static>, PlotError> {
    static FACE: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FACE.get_or_init(|| {
        let ok = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok()
            && plotters::style::register_font(FAMILY, FontStyle::Bold, FONT).is_ok();
        ok.then(|| FontRef::try_from_slice(FONT).ok()).flatten()
    })
    .as_ref()
    .ok_or(PlotError::Font)
}

/// plotters' bitmap backend with text drawn by ab_glyph directly: glyphs
/// placed on one baseline with their side bearings and kerning (plotters'
/// own ab_glyph path drops the bearings, so letters and dots drift).
pub struct Canvas<'a> {
    inner: BitMapBackend<'a>,
    face: &'static FontRef<'static>,
}

/// Width and height of `text` at `size` px (ascent to descent), and the
/// glyphs' positions on a baseline at the ascent.
fn layout(face: &FontRef<'static>, text: &str, size: f64) -> (f32, f32, Vec<ab_glyph::Glyph>) {
    let scale = PxScale::from(size as f32);
    let scaled = face.as_scaled(scale);
    let ascent = scaled.ascent();
    let mut x = 0.0f32;
    let mut prev = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for ch in text.chars() {
        let id = scaled.glyph_id(ch);
        if let Some(p) = prev {
            x += scaled.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(scale, point(x, ascent)));
        x += scaled.h_advance(id);
        prev = Some(id);
    }
    (x, ascent - scaled.descent(), glyphs)
}

impl DrawingBackend for Canvas<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (w, h, glyphs) = layout(self.face, text, style.size());
        let dx = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Center => -w / 2.0,
            HPos::Right => -w,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0.0,
            VPos::Center => -h / 2.0,
            VPos::Bottom => -h,
        };
        let (dx, dy) = (dx.round() as i32, dy.round() as i32);
        let trans = style.transform();
        let mut result = Ok(());
        for g in glyphs {
            let Some(outline) = self.face.outline_glyph(g) else {
                continue;
            };
            let b = outline.px_bounds();
            let (bx, by) = (b.min.x as i32, b.min.y as i32);
            let inner = &mut self.inner;
            outline.draw(|x, y, cover| {
                if cover < 0.02 || result.is_err() {
                    return;
                }
                let (tx, ty) = trans.transform(bx + x as i32 + dx, by + y as i32 + dy);
                let c = BackendColor {
                    alpha: color.alpha * f64::from(cover.min(1.0)),
                    rgb: color.rgb,
                };
                result = inner.draw_pixel((pos.0 + tx, pos.1 + ty), c);
            });
            std::mem::replace(&mut result, Ok(()))?;
        }
        Ok(())
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let (w, h, _) = layout(self.face, text, style.size());
        Ok((w.ceil() as u32, h.ceil() as u32))
    }
}

fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&TEXT)
}

/// Draws on a white `w x h` canvas and encodes the result as PNG.
fn render(
    file: &str,
    w: u32,
    h: u32,
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<Plot, PlotError> {
    let face = face()?;
    let err = |source| PlotError::Draw {
        name: file.to_string(),
        source,
    };
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = Canvas {
            inner: BitMapBackend::with_buffer(&mut buf, (w, h)),
            face,
        }
        .into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.into()))?;
        draw(&root).map_err(err)?;
        root.present().map_err(|e| err(e.into()))?;
    }
    let png = encode_rgb(&buf, w, h).map_err(|source| PlotError::Encode {
        name: file.to_string(),
        source,
    })?;
    Ok(Plot {
        file: file.to_string(),
        width: w,
        height: h,
        png,
    })
}

/// RGB8 pixels → PNG bytes, with fixed settings (deterministic).
pub fn encode_rgb(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Balanced);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    Ok(out)
}

/// `name` cut to [`MAX_LABEL`] characters, with an ellipsis when cut.
pub fn short(name: &str) -> String {
    if name.chars().count() <= MAX_LABEL {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(MAX_LABEL - 1).collect();
        s.push('…');
        s
    }
}

/// Width in pixels of `text` at `size` (the font's own advance widths).
fn text_width(text: &str, size: f64) -> u32 {
    match face() {
        Ok(f) => layout(f, text, size).0.ceil() as u32,
        Err(_) => (text.chars().count() as f64 * size * 0.6) as u32,
    }
}

/// The widest of `texts` at `size`, in pixels.
fn measure(texts: &[String], size: f64) -> u32 {
    texts.iter().map(|t| text_width(t, size)).max().unwrap_or(0)
}

/// `12345` → `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `15390` → `15.4k`, for cells too small for every digit.
pub fn compact(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// Horizontal bars, one per category, a text column at the right.
pub struct HBars<'a> {
    pub file: &'a str,
    pub title: &'a str,
    /// Under the title: what the colours and lines mean.
    pub subtitle: &'a str,
    pub x_label: &'a str,
    pub labels: &'a [String],
    pub values: &'a [f64],
    /// Drawn in orange instead of blue (rare classes).
    pub flagged: &'a [bool],
    /// Right of each bar's row.
    pub notes: &'a [String],
    pub log: bool,
    /// A dashed vertical line with its label (the rare threshold).
    pub marker: Option<(f64, String)>,
    /// Upper end of the axis (linear plots), e.g. the number of images.
    pub x_max: Option<f64>,
}

/// Log axis bounds around the positive values: whole decades.
fn log_bounds(values: &[f64], marker: Option<f64>) -> (f64, f64) {
    let pos = values
        .iter()
        .copied()
        .chain(marker)
        .filter(|v| *v > 0.0 && v.is_finite());
    let (lo, hi) = pos.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (1e-6, 1.0);
    }
    let min = lo;
    let mut lo = 10f64.powf(lo.log10().floor());
    if lo >= min * 0.999 {
        // The smallest value sits on a decade: one more, so it is not on the axis.
        lo /= 10.0;
    }
    let mut hi = 10f64.powf(hi.log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    // A hair below the decade, so plotters' tick search (which rounds
    // ln(lo)/ln(10) up) still labels it.
    (lo * (1.0 - 1e-9), hi)
}

pub fn hbars(p: &HBars<'_>) -> Result<Plot, PlotError> {
    let n = p.labels.len().max(1);
    let labels: Vec<String> = p.labels.iter().map(|l| short(l)).collect();
    let label_w = measure(&labels, 14.0) + 18;
    let note_w = measure(p.notes, 13.0) + 20;
    let row = 30u32;
    let w = 960u32.max(label_w + note_w + 400);
    let h = 96 + row * n as u32 + 64;
    let rows = n as f64;
    render(p.file, w, h, |root| {
        let (head, body) = root.split_vertically(72);
        title(&head, p.title, p.subtitle)?;
        let body = body.margin(24, 0, 10, note_w as i32);
        let mut b = ChartBuilder::on(&body);
        b.x_label_area_size(48).y_label_area_size(label_w);
        // Row i of the data is drawn from the top: y in [n-1-i, n-i].
        let band = |i: usize| (rows - 1.0 - i as f64, rows - i as f64);
        let flag = |i: usize| {
            if p.flagged.get(i) == Some(&true) {
                ORANGE
            } else {
                BLUE
            }
        };
        let (lo, hi) = if p.log {
            log_bounds(p.values, p.marker.as_ref().map(|m| m.0))
        } else {
            let top = p
                .x_max
                .unwrap_or_else(|| p.values.iter().copied().fold(0.0, f64::max));
            (0.0, top.max(1.0))
        };
        // Both arms draw the same way; only the x coordinate type differs.
        macro_rules! draw {
            ($chart:expr, $fmt:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .disable_y_mesh()
                    .light_line_style(WHITE)
                    .bold_line_style(GRID)
                    .y_labels(0)
                    .x_label_formatter(&$fmt)
                    .x_desc(p.x_label)
                    .label_style(font(14.0))
                    .axis_desc_style(font(14.0))
                    .draw()?;
                for (i, v) in p.values.iter().enumerate() {
                    if *v <= 0.0 {
                        continue;
                    }
                    let (y0, y1) = band(i);
                    let a = chart.backend_coord(&(lo, y1));
                    let b = chart.backend_coord(&(v.min(hi), y0));
                    root.draw(&Rectangle::new(
                        [(a.0, a.1 + 5), (b.0, b.1 - 5)],
                        flag(i).filled(),
                    ))?;
                }
                if let Some((x, label)) = &p.marker {
                    let (px, top) = chart.backend_coord(&(*x, rows));
                    let (_, bottom) = chart.backend_coord(&(*x, 0.0));
                    marker_line(root, px, top, bottom, label)?;
                }
                let label_style = font(14.0).pos(Pos::new(HPos::Right, VPos::Center));
                let note_style = font(13.0).pos(Pos::new(HPos::Left, VPos::Center));
                for i in 0..p.labels.len() {
                    let (y0, y1) = band(i);
                    let (x_left, y) = chart.backend_coord(&(lo, (y0 + y1) / 2.0));
                    let (x_right, _) = chart.backend_coord(&(hi, (y0 + y1) / 2.0));
                    root.draw_text(&labels[i], &label_style, (x_left - 8, y))?;
                    if let Some(note) = p.notes.get(i) {
                        root.draw_text(note, &note_style, (x_right + 12, y))?;
                    }
                }
            }};
        }
        if p.log {
            draw!(
                b.build_cartesian_2d((lo..hi).log_scale(), 0.0..rows)?,
                |v: &f64| sci(*v)
            );
        } else {
            draw!(b.build_cartesian_2d(lo..hi, 0.0..rows)?, |v: &f64| {
                count_tick(*v)
            });
        }
        Ok(())
    })
}

/// A dashed vertical line at `x` (backend pixels) from `top` to `bottom`,
/// labelled at its top.
fn marker_line(root: &Area<'_>, x: i32, top: i32, bottom: i32, label: &str) -> DrawResult {
    let mut y = top;
    while y < bottom {
        root.draw(&PathElement::new(
            vec![(x, y), (x, (y + 6).min(bottom))],
            Color::stroke_width(&ORANGE, 2),
        ))?;
        y += 10;
    }
    let style = font(12.0)
        .color(&ORANGE)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    root.draw_text(label, &style, (x, top - 4))?;
    Ok(())
}

/// Title and subtitle, left-aligned.
fn title(area: &Area<'_>, title: &str, subtitle: &str) -> DrawResult {
    area.draw(&Text::new(title.to_string(), (16, 12), font(22.0)))?;
    if !subtitle.is_empty() {
        area.draw(&Text::new(
            subtitle.to_string(),
            (16, 42),
            font(14.0).color(&GREY),
        ))?;
    }
    Ok(())
}

/// `1e-3`-style labels for a log axis: powers of ten as `0.001`, `1e5`.
fn sci(v: f64) -> String {
    if v <= 0.0 {
        return "0".into();
    }
    let e = v.log10();
    if (e - e.round()).abs() > 1e-9 {
        return String::new();
    }
    let e = e.round() as i32;
    match e {
        -3..=-1 => format!("{v:.*}", (-e) as usize),
        0..=4 => format!("{v:.0}"),
        _ => format!("1e{e}"),
    }
}

/// Tick label of a count axis: integers only (no `0.50 images`).
fn count_tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// Vertical bars over named categories, a note above each bar.
pub struct VBars<'a> {
    pub file: &'a str,
    pub title: &'a str,
    pub subtitle: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub labels: &'a [String],
    pub values: &'a [f64],
    pub notes: &'a [String],
}

pub fn vbars(p: &VBars<'_>) -> Result<Plot, PlotError> {
    let n = p.labels.len().max(1);
    let (w, h) = (800u32.max(130 * n as u32 + 160), 520u32);
    render(p.file, w, h, |root| {
        let (head, body) = root.split_vertically(70);
        title(&head, p.title, p.subtitle)?;
        let body = body.margin(10, 20, 10, 30);
        let hi = p.values.iter().copied().fold(0.0, f64::max).max(1.0) * 1.18;
        let mut chart = ChartBuilder::on(&body)
            .x_label_area_size(56)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..n as f64, 0.0..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_labels(0)
            .y_label_formatter(&|v| count_tick(*v))
            .x_desc(p.x_label)
            .y_desc(p.y_label)
            .label_style(font(14.0))
            .axis_desc_style(font(14.0))
            .draw()?;
        let note_style = font(13.0).pos(Pos::new(HPos::Center, VPos::Bottom));
        let label_style = font(14.0).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, v) in p.values.iter().enumerate() {
            let a = chart.backend_coord(&(i as f64 + 0.15, *v));
            let b = chart.backend_coord(&(i as f64 + 0.85, 0.0));
            root.draw(&Rectangle::new([a, b], BLUE.filled()))?;
            let cx = (a.0 + b.0) / 2;
            if let Some(note) = p.notes.get(i) {
                root.draw_text(note, &note_style, (cx, a.1 - 4))?;
            }
            if let Some(label) = p.labels.get(i) {
                root.draw_text(label, &label_style, (cx, b.1 + 8))?;
            }
        }
        Ok(())
    })
}

/// A histogram over `[lo, hi]` in equal bins, counts above the bars.
pub struct Histogram<'a> {
    pub file: &'a str,
    pub title: &'a str,
    pub subtitle: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub lo: f64,
    pub hi: f64,
    pub counts: &'a [u64],
}

pub fn histogram(p: &Histogram<'_>) -> Result<Plot, PlotError> {
    let bins = p.counts.len().max(1);
    let step = (p.hi - p.lo) / bins as f64;
    render(p.file, 900, 520, |root| {
        let (head, body) = root.split_vertically(70);
        title(&head, p.title, p.subtitle)?;
        let body = body.margin(10, 30, 10, 30);
        let top = p.counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.15;
        let mut chart = ChartBuilder::on(&body)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(p.lo..p.hi, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_labels(11)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| count_tick(*v))
            .x_desc(p.x_label)
            .y_desc(p.y_label)
            .label_style(font(14.0))
            .axis_desc_style(font(14.0))
            .draw()?;
        chart.draw_series(
            p.counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, c)| {
                    let x0 = p.lo + step * i as f64;
                    let mut r = Rectangle::new([(x0, 0.0), (x0 + step, *c as f64)], BLUE.filled());
                    r.set_margin(0, 0, 1, 1);
                    r
                }),
        )?;
        let style = font(12.0).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (i, c) in p.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let x = p.lo + step * (i as f64 + 0.5);
            let (px, py) = chart.backend_coord(&(x, *c as f64));
            root.draw_text(&c.to_string(), &style, (px, py - 3))?;
        }
        Ok(())
    })
}

/// Grouped horizontal bars on `[0, 1]`: per category, one bar per series.
pub struct Grouped<'a> {
    pub file: &'a str,
    pub title: &'a str,
    pub subtitle: &'a str,
    pub x_label: &'a str,
    pub labels: &'a [String],
    /// `(series name, colour, value per category; None: undefined)`.
    pub series: &'a [(String, RGBColor, Vec<Option<f64>>)],
}

pub fn grouped(p: &Grouped<'_>) -> Result<Plot, PlotError> {
    let n = p.labels.len().max(1);
    let k = p.series.len().max(1);
    let labels: Vec<String> = p.labels.iter().map(|l| short(l)).collect();
    let label_w = measure(&labels, 14.0) + 18;
    let bar = 16u32;
    let row = bar * k as u32 + 16;
    let w = 960u32.max(label_w + 560);
    let h = 110 + row * n as u32 + 64;
    let rows = n as f64;
    render(p.file, w, h, |root| {
        let (head, body) = root.split_vertically(84);
        title(&head, p.title, p.subtitle)?;
        legend(
            &head,
            p.series.iter().map(|(n, c, _)| (n.as_str(), *c)),
            16,
            70,
        )?;
        let body = body.margin(8, 0, 10, 90);
        let mut chart = ChartBuilder::on(&body)
            .x_label_area_size(48)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0.0..1.0, 0.0..rows)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .y_labels(0)
            .x_labels(11)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .x_desc(p.x_label)
            .label_style(font(14.0))
            .axis_desc_style(font(14.0))
            .draw()?;
        let label_style = font(14.0).pos(Pos::new(HPos::Right, VPos::Center));
        let note = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, label) in labels.iter().enumerate() {
            // Category i from the top.
            let top = rows - i as f64;
            let (x0, y_top) = chart.backend_coord(&(0.0, top));
            let (_, y_bottom) = chart.backend_coord(&(0.0, top - 1.0));
            root.draw_text(label, &label_style, (x0 - 8, (y_top + y_bottom) / 2))?;
            let pad = ((y_bottom - y_top) - (bar as i32) * k as i32) / 2;
            for (s, (_, colour, values)) in p.series.iter().enumerate() {
                let y = y_top + pad + (bar as i32) * s as i32;
                let v = values.get(i).copied().flatten();
                let (x1, text) = match v {
                    Some(v) => (
                        chart.backend_coord(&(v.clamp(0.0, 1.0), top)).0,
                        format!("{v:.3}"),
                    ),
                    None => (x0, "undefined".to_string()),
                };
                root.draw(&Rectangle::new(
                    [(x0, y + 1), (x1, y + bar as i32 - 2)],
                    colour.filled(),
                ))?;
                root.draw_text(&text, &note, (x1 + 5, y + bar as i32 / 2))?;
            }
        }
        Ok(())
    })
}

/// Grouped vertical bars on `[0, 1]`: metrics along x, one bar per series.
pub fn grouped_columns(p: &Grouped<'_>) -> Result<Plot, PlotError> {
    let n = p.labels.len().max(1);
    let k = p.series.len().max(1);
    render(p.file, 1000, 580, |root| {
        let (head, body) = root.split_vertically(84);
        title(&head, p.title, p.subtitle)?;
        legend(
            &head,
            p.series.iter().map(|(n, c, _)| (n.as_str(), *c)),
            16,
            70,
        )?;
        let body = body.margin(24, 20, 10, 30);
        let mut chart = ChartBuilder::on(&body)
            .x_label_area_size(56)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..n as f64, 0.0..1.0)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_labels(0)
            .y_labels(11)
            .y_label_formatter(&|v| format!("{v:.1}"))
            .x_desc(p.x_label)
            .label_style(font(14.0))
            .axis_desc_style(font(14.0))
            .draw()?;
        let note = font(11.0).pos(Pos::new(HPos::Center, VPos::Bottom));
        let label_style = font(14.0).pos(Pos::new(HPos::Center, VPos::Top));
        for i in 0..p.labels.len() {
            let (xa, y0) = chart.backend_coord(&(i as f64, 0.0));
            let (xb, _) = chart.backend_coord(&(i as f64 + 1.0, 0.0));
            root.draw_text(&p.labels[i], &label_style, ((xa + xb) / 2, y0 + 8))?;
            let slot = (xb - xa) as f64 / (k as f64 + 1.0);
            for (s, (_, colour, values)) in p.series.iter().enumerate() {
                let x = xa + (slot * (s as f64 + 0.5)) as i32;
                let xe = xa + (slot * (s as f64 + 1.5)) as i32 - 4;
                let v = values.get(i).copied().flatten();
                let (y1, text) = match v {
                    Some(v) => (
                        chart.backend_coord(&(0.0, v.clamp(0.0, 1.0))).1,
                        format!("{v:.3}"),
                    ),
                    None => (y0, "n/a".to_string()),
                };
                root.draw(&Rectangle::new([(x, y1), (xe, y0)], colour.filled()))?;
                root.draw_text(&text, &note, ((x + xe) / 2, y1 - 3))?;
            }
        }
        Ok(())
    })
}

/// A row of colour swatches with names.
fn legend<'s>(
    area: &Area<'_>,
    items: impl Iterator<Item = (&'s str, RGBColor)>,
    x: i32,
    y: i32,
) -> DrawResult {
    let mut x = x;
    let style = font(13.0).pos(Pos::new(HPos::Left, VPos::Center));
    for (name, colour) in items {
        area.draw(&Rectangle::new(
            [(x, y - 6), (x + 14, y + 6)],
            colour.filled(),
        ))?;
        area.draw_text(name, &style, (x + 20, y))?;
        x += 20 + text_width(name, 13.0) as i32 + 24;
    }
    Ok(())
}

/// A matrix of counts: a cell per (row, column), coloured on a log scale,
/// with the count in each cell when it fits.
pub struct Heatmap<'a> {
    pub file: &'a str,
    pub title: &'a str,
    pub subtitle: &'a str,
    pub rows: &'a [String],
    pub cols: &'a [String],
    /// `values[row][col]`.
    pub values: &'a [Vec<u64>],
    pub row_label: &'a str,
    pub col_label: &'a str,
    /// Counts in the cells; `false` draws small squares only (many classes:
    /// the numbers are in a table).
    pub numbers: bool,
}

/// White → dark blue as `t` goes 0 → 1.
fn ramp(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0))
}

pub fn heatmap(p: &Heatmap<'_>) -> Result<Plot, PlotError> {
    let rows: Vec<String> = p.rows.iter().map(|l| short(l)).collect();
    let cols: Vec<String> = p.cols.iter().map(|l| short(l)).collect();
    let max = p.values.iter().flatten().copied().max().unwrap_or(0);
    let key_text = format!("0 … {} (log scale)", thousands(max));
    let g = HeatGrid::new(p, &rows, &cols);
    let w = (g.left + g.grid_w + 40)
        .max(g.left + 210 + measure(std::slice::from_ref(&key_text), 12.0) + 20)
        .max(760);
    let h = g.head_h + g.col_h + g.grid_h + 90;
    render(p.file, w, h, |root| {
        title(root, p.title, p.subtitle)?;
        g.cells(root, p.values, max)?;
        g.labels(root, p, &rows, &cols)?;
        g.key(root, &key_text)
    })
}

/// Where a heatmap's parts go, in pixels, and how big its text is.
struct HeatGrid {
    thin_cols: bool,
    label_size: f64,
    col_size: f64,
    num_size: f64,
    /// Labels on every `step`-th row and column.
    step: usize,
    cell_w: u32,
    cell_h: u32,
    cols_flat: bool,
    col_h: u32,
    grid_w: u32,
    grid_h: u32,
    head_h: u32,
    left: u32,
}

impl HeatGrid {
    fn new(p: &Heatmap<'_>, rows: &[String], cols: &[String]) -> Self {
        let (nr, nc) = (p.rows.len().max(1), p.cols.len().max(1));
        // Past 40 rows the rows get thin; past 40 columns the cells are small
        // squares without numbers (the table under the plot has them).
        let (thin_rows, thin_cols) = (nr > 40 || !p.numbers, nc > 40 || !p.numbers);
        let label_size = if thin_rows { 11.0 } else { 14.0 };
        let col_size = if thin_cols { 11.0 } else { 13.0 };
        let num_size = if thin_rows { 10.0 } else { 12.0 };
        let exact: Vec<String> = p.values.iter().flatten().map(|v| thousands(*v)).collect();
        let digits_w = measure(&exact, num_size) + 10;
        let cols_w = measure(cols, col_size) + 12;
        // Without numbers, squares shrink so ~60+ classes still fit a page
        // (900 px of grid), and labels go to every `step`-th index.
        let square = (900 / nc.max(nr) as u32).clamp(5, 16);
        let step = if p.numbers {
            1
        } else {
            12u32.div_ceil(square) as usize
        };
        let cell_w = if !p.numbers {
            square
        } else if thin_cols {
            14
        } else if nc <= 24 {
            // Wide enough for the counts, and for flat column names.
            digits_w.max(cols_w).clamp(30, 90)
        } else {
            digits_w.clamp(24, 60)
        };
        let cell_h = if !p.numbers {
            square
        } else if thin_rows {
            16
        } else {
            30
        };
        let row_w = measure(rows, label_size) + 20;
        let cols_flat = cols_w <= cell_w;
        let col_h = if cols_flat { 34 } else { cols_w + 12 };
        let grid_w = cell_w * nc as u32;
        let grid_h = cell_h * nr as u32;
        let head_h = 78u32;
        let left = 40 + row_w;
        Self {
            thin_cols,
            label_size,
            col_size,
            num_size,
            step,
            cell_w,
            cell_h,
            cols_flat,
            col_h,
            grid_w,
            grid_h,
            head_h,
            left,
        }
    }

    /// Top-left corner of the grid.
    fn origin(&self) -> (i32, i32) {
        (self.left as i32, (self.head_h + self.col_h) as i32)
    }

    /// The cells, coloured on a log scale up to `max`, with their counts
    /// unless the columns are thin.
    fn cells(&self, root: &Area<'_>, values: &[Vec<u64>], max: u64) -> DrawResult {
        let (x0, y0) = self.origin();
        let (cw, ch) = (self.cell_w as i32, self.cell_h as i32);
        let (num_size, cell_w, thin_cols) = (self.num_size, self.cell_w, self.thin_cols);
        let show = |v: u64| -> String {
            let t = thousands(v);
            if text_width(&t, num_size) + 6 <= cell_w {
                t
            } else {
                compact(v)
            }
        };
        let scale = |v: u64| {
            if max == 0 {
                0.0
            } else {
                (v as f64).ln_1p() / (max as f64).ln_1p()
            }
        };
        for (r, row) in values.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let (cx, cy) = (x0 + cw * c as i32, y0 + ch * r as i32);
                let t = scale(*v);
                root.draw(&Rectangle::new(
                    [(cx, cy), (cx + cw, cy + ch)],
                    ramp(t).filled(),
                ))?;
                root.draw(&Rectangle::new(
                    [(cx, cy), (cx + cw, cy + ch)],
                    Color::stroke_width(&WHITE, 1),
                ))?;
                if !thin_cols {
                    let colour = if t > 0.55 { WHITE } else { TEXT };
                    let style = font(num_size)
                        .color(&colour)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    root.draw_text(&show(*v), &style, (cx + cw / 2, cy + ch / 2))?;
                }
            }
        }
        Ok(())
    }

    /// Row and column names, and the axis labels.
    fn labels(
        &self,
        root: &Area<'_>,
        p: &Heatmap<'_>,
        rows: &[String],
        cols: &[String],
    ) -> DrawResult {
        let (x0, y0) = self.origin();
        let (cw, ch) = (self.cell_w as i32, self.cell_h as i32);
        let (label_size, col_size, step, cols_flat, grid_w, grid_h) = (
            self.label_size,
            self.col_size,
            self.step,
            self.cols_flat,
            self.grid_w,
            self.grid_h,
        );
        let rs = font(label_size).pos(Pos::new(HPos::Right, VPos::Center));
        for (r, name) in rows.iter().enumerate().step_by(step) {
            root.draw_text(name, &rs, (x0 - 8, y0 + ch * r as i32 + ch / 2))?;
        }
        for (c, name) in cols.iter().enumerate().step_by(step) {
            let cx = x0 + cw * c as i32 + cw / 2;
            if cols_flat {
                let cs = font(col_size).pos(Pos::new(HPos::Center, VPos::Bottom));
                root.draw_text(name, &cs, (cx, y0 - 6))?;
            } else {
                let cs = font(col_size)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Left, VPos::Center));
                root.draw_text(name, &cs, (cx, y0 - 8))?;
            }
        }
        let by = y0 + grid_h as i32 + 18;
        root.draw_text(
            p.col_label,
            &font(14.0).pos(Pos::new(HPos::Center, VPos::Top)),
            (x0 + grid_w as i32 / 2, by),
        )?;
        root.draw_text(
            p.row_label,
            &font(14.0)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Center, VPos::Top)),
            (14, y0 + grid_h as i32 / 2),
        )?;
        Ok(())
    }

    /// The colour key under the grid: 0 → max, log scale.
    fn key(&self, root: &Area<'_>, key_text: &str) -> DrawResult {
        let (x0, y0) = self.origin();
        let by = y0 + self.grid_h as i32 + 18;
        let ky = by + 30;
        let kw = 200;
        for i in 0..kw {
            let t = f64::from(i) / f64::from(kw - 1);
            root.draw(&Rectangle::new(
                [(x0 + i, ky), (x0 + i + 1, ky + 12)],
                ramp(t).filled(),
            ))?;
        }
        let ks = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw_text(key_text, &ks, (x0 + kw + 10, ky + 6))?;
        Ok(())
    }
}

/// One curve: its name, colour and points.
pub type Curve = (String, RGBColor, Vec<(f64, f64)>);

/// Curves on `[0, 1] x [0, 1]`, one per series (e.g. a class), with a
/// legend of the first [`MAX_LEGEND`] series.
pub struct Lines<'a> {
    pub file: &'a str,
    pub title: &'a str,
    pub subtitle: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Name, colour and points (undefined points already left out).
    pub series: &'a [Curve],
}

/// Series named in a line plot's legend; the rest are drawn unnamed.
pub const MAX_LEGEND: usize = 12;

pub fn lines(p: &Lines<'_>) -> Result<Plot, PlotError> {
    render(p.file, 900, 560, |root| {
        let (head, body) = root.split_vertically(84);
        title(&head, p.title, p.subtitle)?;
        legend(
            &head,
            p.series
                .iter()
                .take(MAX_LEGEND)
                .map(|(n, c, _)| (n.as_str(), *c)),
            16,
            70,
        )?;
        let body = body.margin(24, 20, 10, 30);
        let mut chart = ChartBuilder::on(&body)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_labels(11)
            .y_labels(11)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .x_desc(p.x_label)
            .y_desc(p.y_label)
            .label_style(font(14.0))
            .axis_desc_style(font(14.0))
            .draw()?;
        for (_, colour, points) in p.series {
            chart.draw_series(std::iter::once(PathElement::new(
                points.clone(),
                Color::stroke_width(colour, 2),
            )))?;
        }
        Ok(())
    })
}

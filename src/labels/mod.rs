//! Label maps: what each code of a mask means.
//!
//! A [`LabelSpec`] is the editable form (TOML on disk, JSON inside stats); a
//! [`LabelMap`] is its compiled form, which resolves a code to a *label set*
//! (the classes the pixel belongs to), to "ignore", or to "unknown"
//! (undeclared: counted and reported, never dropped).

pub mod detect;
pub mod evidence;
pub mod presets;
pub mod sets;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// How the codes of a mask map to classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Each channel (R, G, B, then A) is a class, positive when >= threshold.
    RgbBits,
    /// Declared RGB colours, each meaning a set of classes.
    Palette,
    /// Gray or palette-index values, one class per value.
    Index,
    /// One foreground class: a value >= threshold (default 128; 1 for 0/1
    /// masks) is the class, a smaller value is background (no class).
    /// RGB masks use their brightest channel.
    Binary,
    /// The full ADE20K `*_seg.png`: RGB masks whose class id is
    /// R/10*256 + G (B is the instance), then read like `index`.
    Ade20kSeg,
    /// Annotation exports (COCO JSON, run-length CSV): each category id is a
    /// class as listed in `values`; a pixel carries every category whose
    /// regions cover it. Categories not listed are dropped (no class), or
    /// ignored with `unlisted = "ignore"`; `ignore` ids are excluded.
    Categories,
}

impl Kind {
    /// The name written in `labels.toml`: `rgb-bits`, `palette`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::RgbBits => "rgb-bits",
            Self::Palette => "palette",
            Self::Index => "index",
            Self::Binary => "binary",
            Self::Ade20kSeg => "ade20k-seg",
            Self::Categories => "categories",
        }
    }
}

/// What a value the spec does not list means (index maps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unlisted {
    /// Counted and reported as undeclared.
    #[default]
    Unknown,
    /// Excluded like the ignore values.
    Ignore,
}

/// An ignore entry: an index value (index maps) or a `#rrggbb` colour (palette).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CodeRef {
    Value(u32),
    Colour(String),
}

/// The editable label map, as written in `labels.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    pub kind: Kind,
    /// Class names, in output order. For rgb-bits: one per channel, R, G, B, (A).
    pub classes: Vec<String>,
    /// rgb-bits: a channel is positive when its value is >= threshold;
    /// binary: a value >= threshold is the foreground class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u8>,
    /// Codes excluded from every count (index values or `#rrggbb` colours).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<CodeRef>,
    /// palette: `"#rrggbb" = ["class", ...]`; an empty list means "no class".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub colors: BTreeMap<String, Vec<String>>,
    /// index: explicit `"value" = "class"` pairs; without it value i is class i.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// index: what values not listed mean.
    #[serde(default, skip_serializing_if = "is_default")]
    pub unlisted: Unlisted,
}

impl LabelSpec {
    /// A palette map: `colors` name the classes (in `classes` order),
    /// `ignore` lists colours excluded from every count.
    pub fn palette(
        classes: Vec<String>,
        ignore: Vec<CodeRef>,
        colors: BTreeMap<String, Vec<String>>,
    ) -> Self {
        Self {
            kind: Kind::Palette,
            classes,
            threshold: None,
            ignore,
            colors,
            values: BTreeMap::new(),
            unlisted: Unlisted::Unknown,
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A label-map file or spec that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("cannot read label map `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed label map `{path}`: {message}")]
    Malformed { path: String, message: String },
}

impl LabelError {
    pub fn malformed(path: &str, message: impl Into<String>) -> Self {
        Self::Malformed {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// What a code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// The pixel belongs to these classes (possibly none).
    Classes(&'a [u16]),
    Ignore,
    Unknown,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Classes { start: u32, len: u16 },
    Ignore,
    Unknown,
}

#[derive(Debug, Clone)]
enum Rule {
    /// Label sets by channel bitmask, `combos[bits]`.
    RgbBits { threshold: u8, channels: usize },
    /// Sorted `(rgb, entry)`.
    Palette(Vec<(u32, Entry)>),
    /// Foreground when the value >= threshold (`combos[1]`), else `combos[0]`;
    /// `ignore` values are excluded.
    Binary { threshold: u8, ignore: Vec<u32> },
    /// `lut[value]`; values past the end resolve to `rest`. `ade`: the value
    /// of an RGB code is its ADE20K class id.
    Index {
        lut: Vec<Entry>,
        rest: Entry,
        ade: bool,
    },
    /// Annotation regions: a code is an interned set of classes (see
    /// [`sets::SetTable`]); `ids` says what each category id means, sorted
    /// by id, and `rest` what an unlisted id means.
    Sets {
        ids: Vec<(u32, sets::Meaning)>,
        rest: sets::Meaning,
        table: std::sync::Arc<sets::SetTable>,
    },
}

/// A compiled label map.
#[derive(Debug, Clone)]
pub struct LabelMap {
    pub spec: LabelSpec,
    /// How the map was detected, when it was (stated in the stats JSON).
    pub detection: Option<evidence::Detection>,
    rule: Rule,
    pool: Vec<u16>,
    combos: Vec<Entry>,
}

/// Most classes a map may declare (co-occurrence is `C x C` per worker).
pub const MAX_CLASSES: usize = 1024;

/// Longest class name accepted, in characters (tables pad to the longest).
pub const MAX_NAME_CHARS: usize = 256;

/// Maximum channels of an rgb-bits map (R, G, B, A).
pub const MAX_CHANNELS: usize = 4;

impl LabelMap {
    /// Checks and compiles a spec; `origin` names it in messages.
    pub fn compile(spec: LabelSpec, origin: &str) -> Result<Self, LabelError> {
        let bad = |m: String| LabelError::malformed(origin, m);
        let seen = check_classes(&spec, origin)?;
        let index_of = |name: &str, field: &str| -> Result<u16, LabelError> {
            seen.get(name).map(|&i| i as u16).ok_or_else(|| {
                bad(format!(
                    "field `{field}`: `{name}` is not in `classes`; expected one of {}",
                    list(&spec.classes)
                ))
            })
        };
        let mut pool = Vec::new();
        let mut combos = Vec::new();
        let rule = match spec.kind {
            Kind::RgbBits => rgb_bits_rule(&spec, origin, &mut pool, &mut combos)?,
            Kind::Palette => palette_rule(&spec, origin, &index_of, &mut pool)?,
            Kind::Binary => binary_rule(&spec, origin, &mut pool, &mut combos)?,
            Kind::Index | Kind::Ade20kSeg => index_rule(&spec, origin, &index_of, &mut pool)?,
            Kind::Categories => compile_categories(&spec, origin, &index_of)?,
        };
        Ok(Self {
            spec,
            detection: None,
            rule,
            pool,
            combos,
        })
    }

    /// Reads a label map: our TOML format, or a dataset's own map file
    /// (`labelmap.txt`, `label_colors.txt`, `dataset_meta.json`), or a
    /// built-in preset name (see [`presets::NAMES`]).
    pub fn load(arg: &str) -> Result<Self, LabelError> {
        let spec = presets::load_spec(arg)?;
        Self::compile(spec, arg)
    }

    pub fn classes(&self) -> &[String] {
        &self.spec.classes
    }

    pub fn num_classes(&self) -> usize {
        self.spec.classes.len()
    }

    pub fn kind(&self) -> Kind {
        self.spec.kind
    }

    /// Refuses a mask whose format cannot carry this map's codes: a gray or
    /// palette-index mask under an rgb-bits or palette map would be read
    /// as the colour `(v, v, v)`, every class at once, or as a wrong colour.
    pub fn check_format(&self, format: crate::decode::MaskFormat) -> Result<(), String> {
        use crate::decode::MaskFormat;
        let regions = format == MaskFormat::Sets;
        if regions != (self.spec.kind == Kind::Categories) {
            return Err(if regions {
                format!(
                    "format mismatch: annotation regions need a `categories` label map; \
                     got kind `{}`",
                    self.spec.kind.name()
                )
            } else {
                format!(
                    "format mismatch: mask is {}; a `categories` label map reads annotation \
                     exports (COCO JSON, run-length CSV)",
                    format.describe()
                )
            });
        }
        let colour_map = matches!(self.spec.kind, Kind::RgbBits | Kind::Palette);
        if colour_map && format.is_index() {
            let kind = match self.spec.kind {
                Kind::RgbBits => "rgb-bits",
                _ => "palette",
            };
            return Err(format!(
                "format mismatch: mask is {}; expected 8-bit RGB or RGBA for a {kind} label map",
                format.describe()
            ));
        }
        Ok(())
    }

    /// Resolves a code of a mask with the given format.
    #[inline]
    pub fn resolve(&self, code: u32, format: crate::decode::MaskFormat) -> Resolved<'_> {
        let entry = match &self.rule {
            Rule::RgbBits {
                threshold,
                channels,
            } => {
                let px = if format.is_index() {
                    // A gray mask under rgb-bits: the value is every channel.
                    let v = code.min(255);
                    v << 24 | v << 16 | v << 8 | v
                } else {
                    code
                };
                let mut bits = 0usize;
                for c in 0..*channels {
                    // Channel c: R, G, B at bits 16, 8, 0; A at bits 24.
                    let shift = [16, 8, 0, 24][c];
                    if (px >> shift & 0xFF) as u8 >= *threshold {
                        bits |= 1 << c;
                    }
                }
                self.combos[bits]
            }
            Rule::Palette(entries) => {
                let rgb = code & 0x00FF_FFFF;
                match entries.binary_search_by_key(&rgb, |e| e.0) {
                    Ok(i) => entries[i].1,
                    Err(_) => Entry::Unknown,
                }
            }
            Rule::Binary { threshold, ignore } => {
                let v = if format.is_index() {
                    code
                } else {
                    (code >> 16 & 0xFF).max(code >> 8 & 0xFF).max(code & 0xFF)
                };
                if format.is_index() && ignore.binary_search(&v).is_ok() {
                    Entry::Ignore
                } else {
                    self.combos[usize::from(v >= u32::from(*threshold))]
                }
            }
            Rule::Index { lut, rest, ade } => {
                let v = if *ade && !format.is_index() {
                    presets::ade_full_class(code)
                } else {
                    code
                };
                lut.get(v as usize).copied().unwrap_or(*rest)
            }
            Rule::Sets { table, .. } => {
                return match (format, table.get(code)) {
                    (crate::decode::MaskFormat::Sets, Some(set)) => set.resolved(),
                    _ => Resolved::Unknown,
                };
            }
        };
        match entry {
            Entry::Classes { start, len } => {
                Resolved::Classes(&self.pool[start as usize..start as usize + usize::from(len)])
            }
            Entry::Ignore => Resolved::Ignore,
            Entry::Unknown => Resolved::Unknown,
        }
    }

    /// Multi-hot planes of a decoded mask: `planes` gets `C x H x W` bytes
    /// (1 where the pixel carries the class), `excluded` gets `H x W` bytes
    /// (1 where the pixel is ignored or undeclared; its planes are all 0).
    /// Codes are resolved once per run of equal pixels, not per pixel.
    pub fn planes(
        &self,
        frame: &crate::decode::Frame<'_>,
        planes: &mut Vec<u8>,
        excluded: &mut Vec<u8>,
    ) {
        let hw = frame.width as usize * frame.height as usize;
        planes.clear();
        planes.resize(self.num_classes() * hw, 0);
        excluded.clear();
        excluded.resize(hw, 0);
        let mut at = 0usize;
        frame.runs(|code, run| {
            let run = run as usize;
            match self.resolve(code, frame.format) {
                Resolved::Classes(set) => {
                    for &c in set {
                        let base = usize::from(c) * hw + at;
                        planes[base..base + run].fill(1);
                    }
                }
                Resolved::Ignore | Resolved::Unknown => excluded[at..at + run].fill(1),
            }
            at += run;
        });
    }

    /// Class indices of a decoded mask, the target of a single-label loss
    /// (`CrossEntropyLoss`): `out` gets `H x W` values, each pixel's one
    /// class, `ignore_index` where the pixel is ignored or undeclared, and
    /// `C` (the number of classes) where it carries no class: the extra
    /// output and last entry of `weight` that `weights` writes for such
    /// pixels (its `C+1` rule). Fails on a pixel with several classes (the
    /// mask is multi-label: use [`Self::planes`]).
    pub fn index_target(
        &self,
        frame: &crate::decode::Frame<'_>,
        ignore_index: i64,
        out: &mut Vec<i64>,
    ) -> Result<(), String> {
        let width = frame.width as usize;
        out.clear();
        out.reserve(width * frame.height as usize);
        let none = self.num_classes() as i64;
        let mut failed = None;
        frame.runs(|code, run| {
            if failed.is_some() {
                return;
            }
            let value = match self.resolve(code, frame.format) {
                Resolved::Classes(&[c]) => i64::from(c),
                Resolved::Classes(&[]) => none,
                Resolved::Classes(set) => {
                    failed = Some((out.len(), code, set.len()));
                    return;
                }
                Resolved::Ignore | Resolved::Unknown => ignore_index,
            };
            out.resize(out.len() + run as usize, value);
        });
        match failed {
            None => Ok(()),
            Some((at, code, n)) => Err(format!(
                "pixel at row {}, column {} (`{}`) carries {n} classes; expected at most one \
                 for class indices (a multi-label mask: use the multi-hot planes)",
                at / width,
                at % width,
                code_name(code, frame.format)
            )),
        }
    }

    /// For an undeclared palette colour: the nearest declared colour and
    /// what it means (squared RGB distance; ties go to the lower colour).
    pub fn nearest(&self, code: u32) -> Option<String> {
        let Rule::Palette(entries) = &self.rule else {
            return None;
        };
        let (r, g, b) = split(code);
        let (rgb, entry) = entries.iter().min_by_key(|(c, _)| {
            let (r2, g2, b2) = split(*c);
            let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
            (d(r, r2) + d(g, g2) + d(b, b2), *c)
        })?;
        let meaning = match *entry {
            Entry::Ignore => "ignore".to_string(),
            Entry::Unknown => "unknown".to_string(),
            Entry::Classes { start, len } => {
                let set = &self.pool[start as usize..start as usize + usize::from(len)];
                if set.is_empty() {
                    "no class".to_string()
                } else {
                    set.iter()
                        .map(|&c| self.spec.classes[usize::from(c)].as_str())
                        .collect::<Vec<_>>()
                        .join("+")
                }
            }
        };
        Some(format!("{} ({meaning})", hex(*rgb)))
    }

    /// A colour per class where the map defines one (for plots and manifests).
    pub fn class_colours(&self) -> Vec<Option<[u8; 3]>> {
        let c = self.num_classes();
        match &self.rule {
            Rule::RgbBits { channels, .. } => (0..*channels)
                .map(|ch| Some([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]][ch]))
                .collect(),
            Rule::Palette(entries) => (0..c)
                .map(|class| {
                    entries.iter().find_map(|(rgb, e)| match *e {
                        Entry::Classes { start, len }
                            if len == 1 && self.pool[start as usize] == class as u16 =>
                        {
                            let (r, g, b) = split(*rgb);
                            Some([r, g, b])
                        }
                        _ => None,
                    })
                })
                .collect(),
            Rule::Binary { .. } => vec![Some([255, 255, 255])],
            Rule::Index { .. } | Rule::Sets { .. } => vec![None; c],
        }
    }

    /// For a `categories` map: the code of pixels covered by exactly the
    /// categories `ids` (sorted or not; repeats are harmless), `crowd` when
    /// an ignored crowd region covers them. Interned: the same meaning gets
    /// the same code. `None` for any other kind of map.
    pub fn category_code(&self, ids: &[u32], crowd: bool) -> Option<u32> {
        let Rule::Sets {
            ids: known,
            rest,
            table,
        } = &self.rule
        else {
            return None;
        };
        let mut ignored = crowd;
        let mut classes: Vec<u16> = Vec::with_capacity(ids.len());
        for id in ids {
            let meaning = match known.binary_search_by_key(id, |e| e.0) {
                Ok(i) => known[i].1,
                Err(_) => *rest,
            };
            match meaning {
                sets::Meaning::Class(c) => classes.push(c),
                sets::Meaning::Dropped => {}
                sets::Meaning::Ignore => ignored = true,
            }
        }
        classes.sort_unstable();
        classes.dedup();
        Some(table.intern(&classes, ignored))
    }

    /// For a `categories` map: the class a category id is, `None` when it
    /// is dropped or ignored (or the map is of another kind).
    pub fn category_class(&self, id: i64) -> Option<usize> {
        let Rule::Sets { ids, rest, .. } = &self.rule else {
            return None;
        };
        let id = u32::try_from(id).ok()?;
        let meaning = match ids.binary_search_by_key(&id, |e| e.0) {
            Ok(i) => ids[i].1,
            Err(_) => *rest,
        };
        match meaning {
            sets::Meaning::Class(c) => Some(usize::from(c)),
            sets::Meaning::Dropped | sets::Meaning::Ignore => None,
        }
    }

    /// Writes the spec as commented TOML.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(&self.spec).unwrap_or_default();
        format!("{}{body}", presets::toml_header(self.spec.kind))
    }
}

/// Checks the class names (some, not too many, not empty, not too long,
/// each once); returns each name's index.
fn check_classes<'a>(
    spec: &'a LabelSpec,
    origin: &str,
) -> Result<BTreeMap<&'a str, usize>, LabelError> {
    let bad = |m: String| LabelError::malformed(origin, m);
    if spec.classes.is_empty() {
        return Err(bad(
            "field `classes`: expected at least one class name".into()
        ));
    }
    if spec.classes.len() > MAX_CLASSES {
        return Err(bad(format!(
            "field `classes`: {} classes; expected at most {MAX_CLASSES}",
            spec.classes.len()
        )));
    }
    let mut seen = BTreeMap::new();
    for (i, name) in spec.classes.iter().enumerate() {
        if name.is_empty() {
            return Err(bad(format!("field `classes`: class {i} has an empty name")));
        }
        let chars = name.chars().count();
        if chars > MAX_NAME_CHARS {
            let head: String = name.chars().take(20).collect();
            return Err(bad(format!(
                "field `classes`: class {i} (`{head}...`) has a name of {chars} characters; \
                 expected at most {MAX_NAME_CHARS}"
            )));
        }
        if let Some(j) = seen.insert(name.as_str(), i) {
            return Err(bad(format!(
                "field `classes`: name `{name}` is used twice (classes {j} and {i})"
            )));
        }
    }
    Ok(seen)
}

/// Appends a label set to the pool; the entry that points at it.
fn push_set(pool: &mut Vec<u16>, set: &[u16]) -> Entry {
    let start = pool.len() as u32;
    pool.extend_from_slice(set);
    Entry::Classes {
        start,
        len: set.len() as u16,
    }
}

/// rgb-bits: one class per channel, a label set per channel bitmask.
fn rgb_bits_rule(
    spec: &LabelSpec,
    origin: &str,
    pool: &mut Vec<u16>,
    combos: &mut Vec<Entry>,
) -> Result<Rule, LabelError> {
    let bad = |m: String| LabelError::malformed(origin, m);
    let channels = spec.classes.len();
    if channels > MAX_CHANNELS {
        return Err(bad(format!(
            "field `classes`: rgb-bits has one class per channel (R, G, B, A); got {channels}"
        )));
    }
    reject_fields(spec, origin, &["colors", "values", "ignore", "unlisted"])?;
    for bits in 0..(1usize << channels) {
        let set: Vec<u16> = (0..channels)
            .filter(|c| bits >> c & 1 == 1)
            .map(|c| c as u16)
            .collect();
        combos.push(push_set(pool, &set));
    }
    Ok(Rule::RgbBits {
        threshold: spec.threshold.unwrap_or(128),
        channels,
    })
}

/// palette: `#rrggbb` colours to label sets, and ignored colours.
fn palette_rule(
    spec: &LabelSpec,
    origin: &str,
    index_of: &dyn Fn(&str, &str) -> Result<u16, LabelError>,
    pool: &mut Vec<u16>,
) -> Result<Rule, LabelError> {
    let bad = |m: String| LabelError::malformed(origin, m);
    reject_fields(spec, origin, &["threshold", "values", "unlisted"])?;
    if spec.colors.is_empty() {
        return Err(bad(
            "field `colors`: expected `\"#rrggbb\" = [\"class\", ...]` entries".into(),
        ));
    }
    let mut entries = Vec::new();
    for (hex, names) in &spec.colors {
        let rgb = parse_hex(hex).ok_or_else(|| {
            bad(format!(
                "field `colors`: key `{hex}` is not a `#rrggbb` colour"
            ))
        })?;
        let mut set = Vec::new();
        for n in names {
            set.push(index_of(n, &format!("colors.\"{hex}\""))?);
        }
        set.sort_unstable();
        set.dedup();
        entries.push((rgb, push_set(pool, &set)));
    }
    for ig in &spec.ignore {
        let CodeRef::Colour(hex) = ig else {
            return Err(bad(
                "field `ignore`: palette maps ignore `#rrggbb` colours, not numbers".into(),
            ));
        };
        let rgb = parse_hex(hex)
            .ok_or_else(|| bad(format!("field `ignore`: `{hex}` is not a `#rrggbb` colour")))?;
        if spec.colors.keys().any(|k| parse_hex(k) == Some(rgb)) {
            return Err(bad(format!(
                "field `ignore`: `{hex}` is also declared in `colors`"
            )));
        }
        entries.push((rgb, Entry::Ignore));
    }
    entries.sort_by_key(|e| e.0);
    if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(bad(format!(
            "field `colors`: colour `{}` is declared twice",
            hex(w[0].0)
        )));
    }
    Ok(Rule::Palette(entries))
}

/// binary: one foreground class above a threshold, ignored values.
fn binary_rule(
    spec: &LabelSpec,
    origin: &str,
    pool: &mut Vec<u16>,
    combos: &mut Vec<Entry>,
) -> Result<Rule, LabelError> {
    let bad = |m: String| LabelError::malformed(origin, m);
    if spec.classes.len() != 1 {
        return Err(bad(format!(
            "field `classes`: binary has one foreground class; got {}",
            spec.classes.len()
        )));
    }
    reject_fields(spec, origin, &["colors", "values", "unlisted"])?;
    let mut ignore = Vec::new();
    for ig in &spec.ignore {
        match ig {
            CodeRef::Value(v) if *v <= 65535 => ignore.push(*v),
            _ => {
                return Err(bad(
                    "field `ignore`: binary maps ignore values in 0..=65535".into(),
                ));
            }
        }
    }
    ignore.sort_unstable();
    combos.push(push_set(pool, &[]));
    combos.push(push_set(pool, &[0]));
    Ok(Rule::Binary {
        threshold: spec.threshold.unwrap_or(128).max(1),
        ignore,
    })
}

/// index (and ADE20K's RGB-coded index): a lookup table by value.
fn index_rule(
    spec: &LabelSpec,
    origin: &str,
    index_of: &dyn Fn(&str, &str) -> Result<u16, LabelError>,
    pool: &mut Vec<u16>,
) -> Result<Rule, LabelError> {
    let bad = |m: String| LabelError::malformed(origin, m);
    reject_fields(spec, origin, &["threshold", "colors"])?;
    let rest = match spec.unlisted {
        Unlisted::Unknown => Entry::Unknown,
        Unlisted::Ignore => Entry::Ignore,
    };
    let mut lut: Vec<Entry> = Vec::new();
    let set = |lut: &mut Vec<Entry>, v: usize, e: Entry| {
        if lut.len() <= v {
            lut.resize(v + 1, rest);
        }
        lut[v] = e;
    };
    let class_entries: Vec<Entry> = (0..spec.classes.len())
        .map(|c| push_set(pool, &[c as u16]))
        .collect();
    if spec.values.is_empty() {
        for (c, e) in class_entries.iter().enumerate() {
            set(&mut lut, c, *e);
        }
    } else {
        for (v, name) in &spec.values {
            let value = parse_value(v).ok_or_else(|| {
                bad(format!(
                    "field `values`: key `{v}` is not a value in 0..=65535"
                ))
            })?;
            let c = index_of(name, &format!("values.\"{v}\""))?;
            set(&mut lut, value, class_entries[usize::from(c)]);
        }
    }
    for ig in &spec.ignore {
        let CodeRef::Value(v) = ig else {
            return Err(bad(
                "field `ignore`: index maps ignore values (numbers), not colours".into(),
            ));
        };
        if *v > 65535 {
            return Err(bad(format!(
                "field `ignore`: {v} is not a value in 0..=65535"
            )));
        }
        set(&mut lut, *v as usize, Entry::Ignore);
    }
    Ok(Rule::Index {
        lut,
        rest,
        ade: spec.kind == Kind::Ade20kSeg,
    })
}

/// The rule of a `categories` map: `values` names each category id's class
/// (several ids may share one: merged), `ignore` lists excluded ids.
fn compile_categories(
    spec: &LabelSpec,
    origin: &str,
    index_of: &dyn Fn(&str, &str) -> Result<u16, LabelError>,
) -> Result<Rule, LabelError> {
    let bad = |m: String| LabelError::malformed(origin, m);
    reject_fields(spec, origin, &["threshold", "colors"])?;
    let mut ids: BTreeMap<u32, sets::Meaning> = BTreeMap::new();
    for (v, name) in &spec.values {
        let id: u32 = v.trim().parse().map_err(|_| {
            bad(format!(
                "field `values`: key `{v}` is not a category id (an integer >= 0)"
            ))
        })?;
        let c = index_of(name, &format!("values.\"{v}\""))?;
        ids.insert(id, sets::Meaning::Class(c));
    }
    for ig in &spec.ignore {
        let CodeRef::Value(id) = ig else {
            return Err(bad(
                "field `ignore`: categories maps ignore category ids (numbers), not colours".into(),
            ));
        };
        if ids
            .insert(*id, sets::Meaning::Ignore)
            .is_some_and(|m| m != sets::Meaning::Ignore)
        {
            return Err(bad(format!(
                "field `ignore`: category {id} is also named in `values`"
            )));
        }
    }
    if spec.values.is_empty() {
        return Err(bad(
            "field `values`: expected `\"category id\" = \"class\"` entries".into(),
        ));
    }
    Ok(Rule::Sets {
        ids: ids.into_iter().collect(),
        rest: match spec.unlisted {
            Unlisted::Unknown => sets::Meaning::Dropped,
            Unlisted::Ignore => sets::Meaning::Ignore,
        },
        table: std::sync::Arc::new(sets::SetTable::default()),
    })
}

fn reject_fields(spec: &LabelSpec, origin: &str, fields: &[&str]) -> Result<(), LabelError> {
    for f in fields {
        let present = match *f {
            "threshold" => spec.threshold.is_some(),
            "ignore" => !spec.ignore.is_empty(),
            "colors" => !spec.colors.is_empty(),
            "values" => !spec.values.is_empty(),
            "unlisted" => spec.unlisted != Unlisted::default(),
            _ => false,
        };
        if present {
            let kind = serde_json::to_value(spec.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            return Err(LabelError::malformed(
                origin,
                format!("field `{f}` does not apply to kind `{kind}`"),
            ));
        }
    }
    Ok(())
}

fn list(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(8).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > 8 { ", ..." } else { "" };
    format!("{}{more}", shown.join(", "))
}

fn parse_value(s: &str) -> Option<usize> {
    s.trim().parse::<u16>().ok().map(usize::from)
}

/// Parses `#rrggbb` (the `#` optional) into a packed RGB code.
pub fn parse_hex(s: &str) -> Option<u32> {
    let h = s.trim().strip_prefix('#').unwrap_or(s.trim());
    if h.len() != 6 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(h, 16).ok()
}

/// Formats a packed RGB code as `#rrggbb`.
pub fn hex(code: u32) -> String {
    format!("#{:06x}", code & 0x00FF_FFFF)
}

fn split(code: u32) -> (u8, u8, u8) {
    ((code >> 16) as u8, (code >> 8) as u8, code as u8)
}

/// Formats a code for people: a colour for RGB masks, a number for indices.
pub fn code_name(code: u32, format: crate::decode::MaskFormat) -> String {
    if format == crate::decode::MaskFormat::Sets {
        format!("category set {code}")
    } else if format.is_index() {
        code.to_string()
    } else {
        hex(code)
    }
}

/// Most bytes of a label-map file (a map of 1024 classes with 256-character
/// names takes about 300 KiB): a larger one is refused by its size, before
/// it is read.
pub const MAX_MAP_BYTES: u64 = 4 << 20;

/// Is there an entry named `path` (a file, a folder, a link even dangling,
/// an object)? A dataset's map file that is there but cannot be read is an
/// error, never passed over.
pub(crate) fn map_file_present(path: &Path) -> bool {
    if crate::store::is_url(path) {
        crate::store::is_file(path)
    } else {
        std::fs::symlink_metadata(path).is_ok()
    }
}

/// Reads a label-map file whole, naming it on failure: a regular file (or
/// an object) of at most [`MAX_MAP_BYTES`], checked by its size first.
pub(crate) fn read_text(path: &Path) -> Result<String, LabelError> {
    let shown = path.display().to_string();
    let io = |source| LabelError::Io {
        path: shown.clone(),
        source,
    };
    let refuse =
        |what: String| LabelError::malformed(&shown, format!("{what}; expected a label-map file"));
    let len = if crate::store::is_url(path) {
        crate::store::size(path).map_err(io)?
    } else {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if std::fs::symlink_metadata(path).is_ok() => {
                return Err(refuse(format!("is a symlink that leads nowhere ({e})")));
            }
            Err(e) => return Err(io(e)),
        };
        if meta.is_dir() {
            return Err(refuse("is a folder".into()));
        }
        if !meta.is_file() {
            return Err(refuse(
                "is not a regular file (a device, FIFO or socket)".into(),
            ));
        }
        meta.len()
    };
    let too_big = |len: u64| {
        LabelError::malformed(
            &shown,
            format!("is {len} bytes; expected a label map of at most {MAX_MAP_BYTES} bytes"),
        )
    };
    if len > MAX_MAP_BYTES {
        return Err(too_big(len));
    }
    let bytes = if crate::store::is_url(path) {
        crate::store::read_range(path, 0, len).map_err(io)?
    } else {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_MAP_BYTES + 1).read_to_end(&mut bytes))
            .map_err(io)?;
        bytes
    };
    // Grown since its size was read.
    if bytes.len() as u64 > MAX_MAP_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes)
        .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_toml_names() {
        for k in [
            Kind::RgbBits,
            Kind::Palette,
            Kind::Index,
            Kind::Binary,
            Kind::Ade20kSeg,
            Kind::Categories,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
    }

    /// rgb-bits planes equal resolving each pixel on its own, for RGB and
    /// RGBA samples, 1 to 4 channels, values around the threshold.
    #[test]
    fn rgb_bits_planes_equal_resolving_each_pixel() {
        use crate::decode::{Frame, MaskFormat};
        let (w, h) = (7u32, 5u32);
        for (channels, stride) in [(1, 3), (2, 3), (3, 3), (3, 4), (4, 4)] {
            let names: Vec<String> = (0..channels).map(|c| format!("c{c}")).collect();
            let text = format!("kind = \"rgb-bits\"\nclasses = {names:?}\nthreshold = 100\n");
            let spec: LabelSpec = toml::from_str(&text).unwrap();
            let map = LabelMap::compile(spec, "test").unwrap();
            let data: Vec<u8> = (0..w * h * stride)
                .map(|i| [0, 99, 100, 101, 255][(i * 7 % 11 % 5) as usize])
                .collect();
            let frame = Frame::from_samples(w, h, stride as usize, &data).unwrap();
            let format = if stride == 3 {
                MaskFormat::Rgb
            } else {
                MaskFormat::Rgba
            };
            let (mut planes, mut excluded) = (Vec::new(), Vec::new());
            map.planes(&frame, &mut planes, &mut excluded);
            let hw = (w * h) as usize;
            assert_eq!(planes.len(), channels * hw);
            assert!(excluded.iter().all(|&e| e == 0));
            for (i, px) in data.chunks_exact(stride as usize).enumerate() {
                let code = if stride == 3 {
                    u32::from(px[0]) << 16 | u32::from(px[1]) << 8 | u32::from(px[2])
                } else {
                    u32::from(px[3]) << 24
                        | u32::from(px[0]) << 16
                        | u32::from(px[1]) << 8
                        | u32::from(px[2])
                };
                let Resolved::Classes(set) = map.resolve(code, format) else {
                    panic!("rgb-bits ignores nothing");
                };
                for c in 0..channels {
                    let want = u8::from(set.contains(&(c as u16)));
                    assert_eq!(planes[c * hw + i], want, "channels {channels}, pixel {i}");
                }
            }
        }
    }
}

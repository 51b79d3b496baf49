//! Label maps from files and presets: maskprep's TOML, a dataset's own map
//! (VOC `labelmap.txt`, CamVid-style `label_colors.txt`, the
//! `dataset_meta.json` of the common semantic-segmentation layout) and the
//! standard Cityscapes and VOC tables. Each becomes a [`LabelSpec`].

use std::collections::BTreeMap;
use std::path::Path;

use super::{CodeRef, Kind, LabelError, LabelSpec, Unlisted, hex, read_text};

/// Built-in preset names accepted by `--labels`.
pub const NAMES: &[&str] = &["ade20k", "cityscapes", "cityscapes-trainids", "voc"];

/// Loads a spec from a preset name or a file (chosen by its name).
pub fn load_spec(arg: &str) -> Result<LabelSpec, LabelError> {
    match arg {
        "cityscapes" => return Ok(cityscapes_label_ids()),
        "cityscapes-trainids" => return Ok(cityscapes_train_ids()),
        "voc" => return Ok(voc_index()),
        "ade20k" => return Ok(ade20k()),
        _ => {}
    }
    let path = Path::new(arg);
    let text = read_text(path)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if name.ends_with(".toml") {
        parse_toml(&text, arg)
    } else if name.ends_with(".csv") {
        class_dict_csv(&text, arg)
    } else if name.ends_with(".json") {
        dataset_meta(&text, arg)
    } else if name == "labelmap.txt" || text.lines().any(|l| l.contains(':')) {
        voc_labelmap(&text, arg)
    } else if name.ends_with(".txt") {
        label_colors(&text, arg)
    } else {
        Err(LabelError::malformed(
            arg,
            format!(
                "unknown label-map file; expected a `.toml`, `labelmap.txt`, `label_colors.txt`, \
                 `class_dict.csv`, `dataset_meta.json` or one of the presets {}",
                NAMES.join(", ")
            ),
        ))
    }
}

/// Parses maskprep's TOML label map. Errors name the line.
pub fn parse_toml(text: &str, origin: &str) -> Result<LabelSpec, LabelError> {
    let spec: LabelSpec = toml::from_str(text)
        .map_err(|e| LabelError::malformed(origin, e.to_string().trim_end().to_string()))?;
    // Compile now so semantic errors name the line of the offending field.
    super::LabelMap::compile(spec.clone(), origin).map_err(|e| match e {
        LabelError::Malformed { path, message } => {
            let line = field_line(text, &message);
            let message = match line {
                Some(l) => format!("line {l}: {message}"),
                None => message,
            };
            LabelError::Malformed { path, message }
        }
        other => other,
    })?;
    Ok(spec)
}

/// The line of the field a message names (``field `colors."#ff0000"` ``).
fn field_line(text: &str, message: &str) -> Option<usize> {
    let field = message.split('`').nth(1)?;
    let (table, key) = match field.split_once('.') {
        Some((t, k)) => (t, k.trim_matches('"')),
        None => ("", field),
    };
    let mut in_table = table.is_empty();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            in_table = l.trim_matches(['[', ']']).trim() == table;
            continue;
        }
        let lhs = l.split('=').next().unwrap_or("").trim().trim_matches('"');
        if (in_table || table.is_empty()) && lhs == key && l.contains('=') {
            return Some(i + 1);
        }
        if !table.is_empty() && lhs == table && l.contains('=') {
            return Some(i + 1);
        }
    }
    None
}

/// The comment block written above a generated `labels.toml`.
pub fn toml_header(kind: Kind) -> &'static str {
    match kind {
        Kind::RgbBits => {
            "# maskprep label map (kind rgb-bits): each channel is a class, in the order\n\
             # R, G, B (then A); a channel is positive when its value >= threshold.\n\
             # A pixel may carry several classes (magenta = red + blue). Rename freely.\n"
        }
        Kind::Palette => {
            "# maskprep label map (kind palette): each colour means a set of classes;\n\
             # [] means \"no class\"; `ignore` colours are excluded from every count.\n\
             # Colours not listed are counted and reported as undeclared.\n"
        }
        Kind::Binary => {
            "# maskprep label map (kind binary): one foreground class; a value >=\n\
             # threshold is the class, a smaller one is background (no class, not\n\
             # ignored). RGB masks use their brightest channel.\n"
        }
        Kind::Ade20kSeg => {
            "# maskprep label map (kind ade20k-seg): full ADE20K `*_seg.png`; the class id\n\
             # of a pixel is R/10*256 + G (B is the instance), then read as in kind\n\
             # index: [values] names the ids, `ignore` ids are excluded (0 = unlabelled).\n"
        }
        Kind::Categories => {
            "# maskprep label map (kind categories): an annotation export's categories;\n\
             # [values] maps each category id to a class (give two ids one class to merge\n\
             # them, rename freely); ids not listed are dropped (unlisted = \"ignore\" makes\n\
             # them ignored); `ignore` ids are excluded from every count.\n"
        }
        Kind::Index => {
            "# maskprep label map (kind index): value i is classes[i] (or as listed in\n\
             # [values]); `ignore` values are excluded from every count. Values not\n\
             # declared are counted and reported (or ignored with unlisted = \"ignore\").\n"
        }
    }
}

fn rgb(r: u8, g: u8, b: u8) -> u32 {
    u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b)
}

fn is_ignore_name(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "ignore" | "ignored" | "void" | "unlabeled" | "unlabelled"
    )
}

/// VOC `labelmap.txt`: `name:r,g,b:parts:actions` per line, `#` comments.
/// A class named `ignored`/`void` becomes the ignore colour.
pub fn voc_labelmap(text: &str, origin: &str) -> Result<LabelSpec, LabelError> {
    let mut classes = Vec::new();
    let mut colors = BTreeMap::new();
    let mut ignore = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let bad = |what: &str| {
            LabelError::malformed(
                origin,
                format!(
                    "line {}: {what}; expected `name:r,g,b:parts:actions`",
                    i + 1
                ),
            )
        };
        let mut fields = l.split(':');
        let name = fields.next().unwrap_or("").trim();
        if name.is_empty() {
            return Err(bad("empty class name"));
        }
        let colour = fields.next().ok_or_else(|| bad("no colour field"))?;
        let code = parse_triplet(colour, ',').ok_or_else(|| {
            bad(&format!(
                "colour field `{colour}` is not three numbers 0..=255"
            ))
        })?;
        if is_ignore_name(name) {
            ignore.push(CodeRef::Colour(hex(code)));
            continue;
        }
        if colors.insert(hex(code), vec![name.to_string()]).is_some() {
            return Err(bad(&format!("colour `{}` is used twice", hex(code))));
        }
        classes.push(name.to_string());
    }
    Ok(LabelSpec::palette(classes, ignore, colors))
}

/// CamVid-style `label_colors.txt`: `r g b name` per line.
pub fn label_colors(text: &str, origin: &str) -> Result<LabelSpec, LabelError> {
    let mut classes = Vec::new();
    let mut colors = BTreeMap::new();
    let mut ignore = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let bad = |what: String| {
            LabelError::malformed(
                origin,
                format!("line {}: {what}; expected `r g b name`", i + 1),
            )
        };
        let mut parts = l.splitn(4, char::is_whitespace).filter(|p| !p.is_empty());
        let nums: Vec<&str> = (&mut parts).take(3).collect();
        let name = parts.next().map(str::trim).unwrap_or("");
        if nums.len() != 3 || name.is_empty() {
            return Err(bad("need three numbers and a name".into()));
        }
        let code = parse_triplet(&nums.join(","), ',')
            .ok_or_else(|| bad(format!("`{}` is not three numbers 0..=255", nums.join(" "))))?;
        if is_ignore_name(name) {
            ignore.push(CodeRef::Colour(hex(code)));
            continue;
        }
        if colors.insert(hex(code), vec![name.to_string()]).is_some() {
            return Err(bad(format!("colour `{}` is used twice", hex(code))));
        }
        classes.push(name.to_string());
    }
    Ok(LabelSpec::palette(classes, ignore, colors))
}

fn parse_triplet(s: &str, sep: char) -> Option<u32> {
    let v: Vec<u8> = s
        .split(sep)
        .map(|p| p.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .ok()?;
    (v.len() == 3).then(|| rgb(v[0], v[1], v[2]))
}

/// `dataset_meta.json`: `label_map` {"id": "name"} with optional
/// `segmentation_colors` (one `[r,g,b]` per id, in id order): a palette map
/// when colours are given, an index map otherwise.
pub fn dataset_meta(text: &str, origin: &str) -> Result<LabelSpec, LabelError> {
    #[derive(serde::Deserialize)]
    struct Meta {
        label_map: BTreeMap<String, String>,
        #[serde(default)]
        segmentation_colors: Vec<[u8; 3]>,
        #[serde(default)]
        ignore_index: Option<u32>,
    }
    let meta: Meta = serde_json::from_str(text).map_err(|e| {
        LabelError::malformed(
            origin,
            format!("{e}; expected a `dataset_meta.json` with a `label_map` object"),
        )
    })?;
    let mut ids: Vec<(u32, String)> = Vec::new();
    for (k, name) in meta.label_map {
        let id = k.trim().parse::<u32>().map_err(|_| {
            LabelError::malformed(
                origin,
                format!("field `label_map`: key `{k}` is not a number"),
            )
        })?;
        ids.push((id, name));
    }
    ids.sort();
    let classes: Vec<String> = ids.iter().map(|(_, n)| n.clone()).collect();
    if meta.segmentation_colors.is_empty() {
        let values = ids
            .iter()
            .map(|(id, n)| (id.to_string(), n.clone()))
            .collect();
        return Ok(LabelSpec {
            kind: Kind::Index,
            classes,
            threshold: None,
            ignore: meta.ignore_index.map(CodeRef::Value).into_iter().collect(),
            colors: BTreeMap::new(),
            values,
            unlisted: Unlisted::Unknown,
        });
    }
    if meta.segmentation_colors.len() != ids.len() {
        return Err(LabelError::malformed(
            origin,
            format!(
                "field `segmentation_colors`: {} colours for {} labels; expected one per label",
                meta.segmentation_colors.len(),
                ids.len()
            ),
        ));
    }
    let mut colors = BTreeMap::new();
    for ([r, g, b], (_, name)) in meta.segmentation_colors.iter().zip(&ids) {
        if colors
            .insert(hex(rgb(*r, *g, *b)), vec![name.clone()])
            .is_some()
        {
            return Err(LabelError::malformed(
                origin,
                format!("field `segmentation_colors`: colour of `{name}` is used twice"),
            ));
        }
    }
    Ok(LabelSpec::palette(classes, Vec::new(), colors))
}

/// The 19 Cityscapes evaluation classes with their trainId and labelId.
const CITYSCAPES: [(&str, u8); 19] = [
    ("road", 7),
    ("sidewalk", 8),
    ("building", 11),
    ("wall", 12),
    ("fence", 13),
    ("pole", 17),
    ("traffic light", 19),
    ("traffic sign", 20),
    ("vegetation", 21),
    ("terrain", 22),
    ("sky", 23),
    ("person", 24),
    ("rider", 25),
    ("car", 26),
    ("truck", 27),
    ("bus", 28),
    ("train", 31),
    ("motorcycle", 32),
    ("bicycle", 33),
];

fn cityscapes_classes() -> Vec<String> {
    CITYSCAPES.iter().map(|(n, _)| n.to_string()).collect()
}

/// Cityscapes `*_labelIds.png`: labelIds 0..=33 mapped to the 19 trainId
/// classes; every other id (void classes, license plate) is ignored.
pub fn cityscapes_label_ids() -> LabelSpec {
    LabelSpec {
        kind: Kind::Index,
        classes: cityscapes_classes(),
        threshold: None,
        ignore: Vec::new(),
        colors: BTreeMap::new(),
        values: CITYSCAPES
            .iter()
            .map(|(n, id)| (id.to_string(), n.to_string()))
            .collect(),
        unlisted: Unlisted::Ignore,
    }
}

/// Cityscapes `*_labelTrainIds.png`: values 0..=18, 255 ignored.
pub fn cityscapes_train_ids() -> LabelSpec {
    LabelSpec {
        kind: Kind::Index,
        classes: cityscapes_classes(),
        threshold: None,
        ignore: vec![CodeRef::Value(255)],
        colors: BTreeMap::new(),
        values: BTreeMap::new(),
        unlisted: Unlisted::Unknown,
    }
}

/// The 21 PASCAL VOC classes, in VOC order.
pub const VOC_CLASSES: [&str; 21] = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// VOC `SegmentationClass` palette PNGs read as indices: 0..=20, 255 ignored.
pub fn voc_index() -> LabelSpec {
    LabelSpec {
        kind: Kind::Index,
        classes: VOC_CLASSES.iter().map(|s| s.to_string()).collect(),
        threshold: None,
        ignore: vec![CodeRef::Value(255)],
        colors: BTreeMap::new(),
        values: BTreeMap::new(),
        unlisted: Unlisted::Unknown,
    }
}

/// VOC `SegmentationClass` RGB PNGs (saved as colours, e.g. by CVAT or
/// Datumaro): the 21 VOC colours, `#e0e0c0` (the void border) ignored.
pub fn voc_palette() -> LabelSpec {
    let colour = |i: u8| {
        let [r, g, b] = voc_colour(i);
        hex(rgb(r, g, b))
    };
    LabelSpec {
        kind: Kind::Palette,
        classes: VOC_CLASSES.iter().map(|s| s.to_string()).collect(),
        threshold: None,
        ignore: vec![CodeRef::Colour(VOC_VOID.into())],
        colors: (0..21u8)
            .map(|i| (colour(i), vec![VOC_CLASSES[usize::from(i)].to_string()]))
            .collect(),
        values: BTreeMap::new(),
        unlisted: Unlisted::Unknown,
    }
}

/// The colour of VOC's void border.
pub const VOC_VOID: &str = "#e0e0c0";

/// The VOC colour of index `i` (the standard bit-interleaved palette).
pub fn voc_colour(i: u8) -> [u8; 3] {
    let (mut r, mut g, mut b) = (0u8, 0u8, 0u8);
    let mut c = i;
    for j in 0..8 {
        r |= (c & 1) << (7 - j);
        g |= ((c >> 1) & 1) << (7 - j);
        b |= ((c >> 2) & 1) << (7 - j);
        c >>= 3;
    }
    [r, g, b]
}

/// A palette/RGB `labelmap.txt` turned into an index map for index masks:
/// class i is the i-th line (ignore lines excluded), 255 ignored.
pub fn palette_as_index(spec: &LabelSpec) -> LabelSpec {
    LabelSpec {
        kind: Kind::Index,
        classes: spec.classes.clone(),
        threshold: None,
        ignore: vec![CodeRef::Value(255)],
        colors: BTreeMap::new(),
        values: BTreeMap::new(),
        unlisted: Unlisted::Unknown,
    }
}

/// A `class_dict.csv` (Kaggle CamVid, DeepGlobe, ...): a `name,r,g,b`
/// header, then one class per line. A class named like `void`/`unlabelled`
/// becomes the ignore colour; `background` means no class.
pub fn class_dict_csv(text: &str, origin: &str) -> Result<LabelSpec, LabelError> {
    let mut classes = Vec::new();
    let mut colors = BTreeMap::new();
    let mut ignore = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || i == 0 && line.to_ascii_lowercase().starts_with("name") {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = || {
            LabelError::malformed(
                origin,
                format!(
                    "line {}: `{line}`; expected `name,r,g,b` with r, g, b in 0..=255",
                    i + 1
                ),
            )
        };
        if f.len() != 4 || f[0].is_empty() {
            return Err(bad());
        }
        let c: Vec<u8> = f[1..]
            .iter()
            .map(|v| v.parse::<u8>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let code = hex(rgb(c[0], c[1], c[2]));
        // One colour, one meaning: a repeat would silently move all of a
        // class's pixels to another.
        if let Some(first) = seen.insert(code.clone(), f[0].to_string()) {
            return Err(LabelError::malformed(
                origin,
                format!(
                    "line {}: colour `{code}` is used twice (by `{first}` and `{}`); expected \
                     one line per colour",
                    i + 1,
                    f[0]
                ),
            ));
        }
        if is_ignore_name(f[0]) {
            ignore.push(CodeRef::Colour(code));
        } else if f[0].eq_ignore_ascii_case("background") {
            colors.insert(code, Vec::new());
        } else {
            classes.push(f[0].to_string());
            colors.insert(code, vec![f[0].to_string()]);
        }
    }
    if classes.is_empty() {
        return Err(LabelError::malformed(
            origin,
            "no class lines; expected `name,r,g,b` lines after the header",
        ));
    }
    Ok(LabelSpec::palette(classes, ignore, colors))
}

/// The 150 ADE20K SceneParsing classes, in order (value v is class v-1).
pub const ADE20K_CLASSES: [&str; 150] = [
    "wall",
    "building",
    "sky",
    "floor",
    "tree",
    "ceiling",
    "road",
    "bed",
    "windowpane",
    "grass",
    "cabinet",
    "sidewalk",
    "person",
    "earth",
    "door",
    "table",
    "mountain",
    "plant",
    "curtain",
    "chair",
    "car",
    "water",
    "painting",
    "sofa",
    "shelf",
    "house",
    "sea",
    "mirror",
    "rug",
    "field",
    "armchair",
    "seat",
    "fence",
    "desk",
    "rock",
    "wardrobe",
    "lamp",
    "bathtub",
    "railing",
    "cushion",
    "base",
    "box",
    "column",
    "signboard",
    "chest of drawers",
    "counter",
    "sand",
    "sink",
    "skyscraper",
    "fireplace",
    "refrigerator",
    "grandstand",
    "path",
    "stairs",
    "runway",
    "case",
    "pool table",
    "pillow",
    "screen door",
    "stairway",
    "river",
    "bridge",
    "bookcase",
    "blind",
    "coffee table",
    "toilet",
    "flower",
    "book",
    "hill",
    "bench",
    "countertop",
    "stove",
    "palm",
    "kitchen island",
    "computer",
    "swivel chair",
    "boat",
    "bar",
    "arcade machine",
    "hovel",
    "bus",
    "towel",
    "light",
    "truck",
    "tower",
    "chandelier",
    "awning",
    "streetlight",
    "booth",
    "television receiver",
    "airplane",
    "dirt track",
    "apparel",
    "pole",
    "land",
    "bannister",
    "escalator",
    "ottoman",
    "bottle",
    "buffet",
    "poster",
    "stage",
    "van",
    "ship",
    "fountain",
    "conveyer belt",
    "canopy",
    "washer",
    "plaything",
    "swimming pool",
    "stool",
    "barrel",
    "basket",
    "waterfall",
    "tent",
    "bag",
    "minibike",
    "cradle",
    "oven",
    "ball",
    "food",
    "step",
    "tank",
    "trade name",
    "microwave",
    "pot",
    "animal",
    "bicycle",
    "lake",
    "dishwasher",
    "screen",
    "blanket",
    "sculpture",
    "hood",
    "sconce",
    "vase",
    "traffic light",
    "tray",
    "ashcan",
    "fan",
    "pier",
    "crt screen",
    "plate",
    "monitor",
    "bulletin board",
    "shower",
    "radiator",
    "glass",
    "clock",
    "flag",
];

/// ADE20K SceneParsing (`ADEChallengeData2016`): values 1..=150 are the
/// classes, 0 ("other objects") is ignored, as mmsegmentation reads it.
pub fn ade20k() -> LabelSpec {
    LabelSpec {
        kind: Kind::Index,
        classes: ADE20K_CLASSES.iter().map(|s| s.to_string()).collect(),
        threshold: None,
        ignore: vec![CodeRef::Value(0)],
        colors: BTreeMap::new(),
        values: ADE20K_CLASSES
            .iter()
            .enumerate()
            .map(|(i, n)| ((i + 1).to_string(), n.to_string()))
            .collect(),
        unlisted: Unlisted::Unknown,
    }
}

/// The class id of a full-ADE20K `*_seg.png` pixel: R/10*256 + G.
pub fn ade_full_class(code: u32) -> u32 {
    (code >> 16 & 0xFF) / 10 * 256 + (code >> 8 & 0xFF)
}

/// A full-ADE20K map for the class ids seen (`class_<id>`), 0 ignored.
pub fn ade20k_full(ids: &std::collections::BTreeSet<u32>) -> LabelSpec {
    let mut ids: Vec<u32> = ids.iter().copied().filter(|&i| i != 0).collect();
    if ids.is_empty() {
        ids.push(1);
    }
    LabelSpec {
        kind: Kind::Ade20kSeg,
        classes: ids.iter().map(|i| format!("class_{i}")).collect(),
        threshold: None,
        ignore: vec![CodeRef::Value(0)],
        colors: BTreeMap::new(),
        values: ids
            .iter()
            .map(|i| (i.to_string(), format!("class_{i}")))
            .collect(),
        unlisted: Unlisted::Unknown,
    }
}

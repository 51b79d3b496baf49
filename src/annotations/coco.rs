//! COCO JSON reader: `images`, `annotations`, `categories` → [`Export`].
//!
//! Streams the file (never holding its text and its parse at once):
//! annotations go straight into per-image buckets, polygons stay `f64`
//! (pycocotools' arithmetic needs them exact), compressed counts stay
//! strings. Anything malformed below the top level is a [`Problem`] naming
//! the item, never a panic and never a silent drop; only a file that is not
//! JSON, or not COCO at all, is an error.
//!
//! pycocotools' `annToRLE` reads a `segmentation` list with `frPyObjects`:
//! a first polygon of exactly 4 numbers sends the whole list down the
//! bounding-box path (which raises), a polygon of fewer than 3 points adds
//! no pixels, an odd last number is ignored (`int(len(p)/2)` points). Here a
//! polygon of fewer than 3 points (wherever it stands) is left out with a
//! problem, the object's other polygons kept: where pycocotools gives a
//! mask it is the same mask, and where it raises maskprep says why.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Category, Export, Format, ImageAnn, Object, Problem, Shape, poly, rle};

/// Why a COCO file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CocoError {
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not valid JSON", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "`{}` is not a COCO annotation file: {found}; expected a JSON object with \
         `images`, `annotations` and `categories` lists",
        path.display()
    )]
    NotCoco { path: PathBuf, found: String },
}

/// Reads a COCO annotation file (see the module docs for what is kept).
pub fn load(path: &Path) -> Result<Export, CocoError> {
    let io = |source| CocoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    match first_byte(&mut reader).map_err(io)? {
        Some(b'{') => {}
        Some(b'[') => {
            return Err(CocoError::NotCoco {
                path: path.to_path_buf(),
                found: "it holds a JSON array (a COCO results file is an array of \
                        predictions)"
                    .into(),
            });
        }
        None => {
            return Err(CocoError::NotCoco {
                path: path.to_path_buf(),
                found: "it is empty".into(),
            });
        }
        // Not JSON either: let the parser say where.
        Some(_) => {}
    }
    let mut builder = Builder::default();
    let mut de = serde_json::Deserializer::from_reader(reader);
    let json = |source: serde_json::Error| {
        if source.is_data() {
            // Valid JSON of another shape (only the top level is strict).
            CocoError::NotCoco {
                path: path.to_path_buf(),
                found: format!("it holds {source}"),
            }
        } else {
            CocoError::Json {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    de.deserialize_any(TopVisitor(&mut builder)).map_err(json)?;
    de.end().map_err(json)?;
    builder.finish(path)
}

/// Skips a UTF-8 byte-order mark and whitespace; the first byte after.
fn first_byte(r: &mut impl BufRead) -> std::io::Result<Option<u8>> {
    let mut bom = true;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if bom {
            bom = false;
            if buf.starts_with(b"\xEF\xBB\xBF") {
                r.consume(3);
                continue;
            }
        }
        let skip = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if skip < buf.len() {
            let b = buf[skip];
            r.consume(skip);
            return Ok(Some(b));
        }
        let n = buf.len();
        r.consume(n);
    }
}

/// A JSON scalar read leniently: the caller says what it expected.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Other(&'static str),
}

impl Scalar {
    fn as_id(&self) -> Option<i64> {
        match *self {
            Scalar::Int(v) => Some(v),
            Scalar::Float(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some(v as i64),
            _ => None,
        }
    }

    /// A width or height: a positive integer (`640.0` accepted, as
    /// pycocotools does).
    fn as_size(&self) -> Option<u32> {
        self.as_id()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v > 0)
    }

    fn describe(&self) -> String {
        match self {
            Scalar::Int(v) => format!("`{v}`"),
            Scalar::Float(v) => format!("`{v}`"),
            Scalar::Str(s) => format!("the string `{s:?}`"),
            Scalar::Bool(b) => format!("`{b}`"),
            Scalar::Null => "`null`".into(),
            Scalar::Other(what) => (*what).into(),
        }
    }
}

fn describe(v: Option<&Scalar>) -> String {
    v.map_or("missing".into(), Scalar::describe)
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("a list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("an object"))
    }
}

/// `segmentation`, as read.
#[derive(Debug)]
enum RawSegm {
    Polygons(Vec<Vec<f64>>),
    Rle {
        size: Vec<Scalar>,
        counts: RawCounts,
    },
    Invalid(String),
}

#[derive(Debug)]
enum RawCounts {
    Missing,
    List(Vec<u32>),
    Str(String),
    Invalid(String),
}

impl<'de> Deserialize<'de> for RawSegm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SegmVisitor)
    }
}

struct SegmVisitor;

impl<'de> Visitor<'de> for SegmVisitor {
    type Value = RawSegm;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of polygons or an RLE object")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawSegm, A::Error> {
        let mut polys: Vec<Vec<f64>> = Vec::new();
        let mut bad: Option<String> = None;
        let mut n = 0;
        while let Some(p) = seq.next_element::<RawPolygon>()? {
            n += 1;
            match p {
                RawPolygon::Points(v) if bad.is_none() => polys.push(v),
                RawPolygon::Points(_) => {}
                RawPolygon::Invalid(why) => {
                    bad.get_or_insert_with(|| format!("`segmentation` item {n} {why}"));
                }
            }
        }
        if let Some(why) = bad {
            return Ok(RawSegm::Invalid(why));
        }
        polys.shrink_to_fit();
        Ok(RawSegm::Polygons(polys))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawSegm, A::Error> {
        let mut size = Vec::new();
        let mut counts = RawCounts::Missing;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "size" => size = map.next_value::<SizeList>()?.0,
                "counts" => counts = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(RawSegm::Rle { size, counts })
    }
    fn visit_str<E>(self, _: &str) -> Result<RawSegm, E> {
        Ok(RawSegm::Invalid("`segmentation` is a string".into()))
    }
    fn visit_i64<E>(self, _: i64) -> Result<RawSegm, E> {
        Ok(RawSegm::Invalid("`segmentation` is a number".into()))
    }
    fn visit_u64<E>(self, _: u64) -> Result<RawSegm, E> {
        Ok(RawSegm::Invalid("`segmentation` is a number".into()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<RawSegm, E> {
        Ok(RawSegm::Invalid("`segmentation` is a number".into()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<RawSegm, E> {
        Ok(RawSegm::Invalid("`segmentation` is a boolean".into()))
    }
    fn visit_unit<E>(self) -> Result<RawSegm, E> {
        Ok(RawSegm::Invalid("`segmentation` is `null`".into()))
    }
}

/// `size` of an RLE: any list (checked later), or not a list.
struct SizeList(Vec<Scalar>);

impl<'de> Deserialize<'de> for SizeList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Scalar::deserialize_list(d)? {
            Ok(v) => Ok(SizeList(v)),
            Err(_) => Ok(SizeList(Vec::new())),
        }
    }
}

impl Scalar {
    /// A list of scalars, or `Err` with the value read instead.
    fn deserialize_list<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Vec<Scalar>, Scalar>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Result<Vec<Scalar>, Scalar>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Scalar>()? {
                    out.push(v);
                }
                Ok(Ok(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ScalarVisitor.visit_map(map).map(Err)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Err(Scalar::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Err(Scalar::Int(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Err(Scalar::Float(v as f64)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Err(Scalar::Float(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Err(Scalar::Str(v.into())))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Err(Scalar::Null))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawCounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCounts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("RLE counts")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawCounts, E> {
                Ok(RawCounts::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawCounts, E> {
                Ok(RawCounts::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawCounts, A::Error> {
                let mut out: Vec<u32> = Vec::new();
                let mut bad = None;
                while let Some(v) = seq.next_element::<Scalar>()? {
                    let n = out.len() + 1;
                    match v.as_id().and_then(|v| u32::try_from(v).ok()) {
                        Some(c) => out.push(c),
                        None => {
                            bad.get_or_insert_with(|| {
                                format!(
                                    "RLE count {n} is {}; expected an integer from 0 to {}",
                                    v.describe(),
                                    u32::MAX
                                )
                            });
                            out.push(0);
                        }
                    }
                }
                if let Some(why) = bad {
                    return Ok(RawCounts::Invalid(why));
                }
                out.shrink_to_fit();
                Ok(RawCounts::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawCounts, A::Error> {
                ScalarVisitor.visit_map(map)?;
                Ok(RawCounts::Invalid(
                    "RLE `counts` is an object; expected a list or a string".into(),
                ))
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawCounts, E> {
                Ok(RawCounts::Invalid(
                    "RLE `counts` is a number; expected a list or a string".into(),
                ))
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawCounts, E> {
                Ok(RawCounts::Invalid(
                    "RLE `counts` is a number; expected a list or a string".into(),
                ))
            }
            fn visit_f64<E>(self, _: f64) -> Result<RawCounts, E> {
                Ok(RawCounts::Invalid(
                    "RLE `counts` is a number; expected a list or a string".into(),
                ))
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawCounts, E> {
                Ok(RawCounts::Invalid(
                    "RLE `counts` is a boolean; expected a list or a string".into(),
                ))
            }
            fn visit_unit<E>(self) -> Result<RawCounts, E> {
                Ok(RawCounts::Invalid(
                    "RLE `counts` is `null`; expected a list or a string".into(),
                ))
            }
        }
        d.deserialize_any(V)
    }
}

/// One item of a `segmentation` list.
enum RawPolygon {
    Points(Vec<f64>),
    Invalid(String),
}

impl<'de> Deserialize<'de> for RawPolygon {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPolygon;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a polygon")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawPolygon, A::Error> {
                let mut out: Vec<f64> = Vec::new();
                let mut bad = None;
                while let Some(v) = seq.next_element::<Scalar>()? {
                    match v {
                        Scalar::Int(i) => out.push(i as f64),
                        Scalar::Float(f) => out.push(f),
                        other => {
                            bad.get_or_insert_with(|| {
                                format!(
                                    "holds {} as coordinate {}; expected numbers",
                                    other.describe(),
                                    out.len() + 1
                                )
                            });
                            out.push(f64::NAN);
                        }
                    }
                }
                if let Some(why) = bad {
                    return Ok(RawPolygon::Invalid(why));
                }
                out.shrink_to_fit();
                Ok(RawPolygon::Points(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPolygon, A::Error> {
                ScalarVisitor.visit_map(map)?;
                Ok(RawPolygon::Invalid(
                    "is an object; expected a list of polygons (one RLE object is not put in a list)"
                        .into(),
                ))
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawPolygon, E> {
                Ok(flat())
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawPolygon, E> {
                Ok(flat())
            }
            fn visit_f64<E>(self, _: f64) -> Result<RawPolygon, E> {
                Ok(flat())
            }
            fn visit_str<E>(self, _: &str) -> Result<RawPolygon, E> {
                Ok(RawPolygon::Invalid(
                    "is a string; expected a polygon (a list of numbers)".into(),
                ))
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawPolygon, E> {
                Ok(RawPolygon::Invalid(
                    "is a boolean; expected a polygon (a list of numbers)".into(),
                ))
            }
            fn visit_unit<E>(self) -> Result<RawPolygon, E> {
                Ok(RawPolygon::Invalid(
                    "is `null`; expected a polygon (a list of numbers)".into(),
                ))
            }
        }
        fn flat() -> RawPolygon {
            RawPolygon::Invalid(
                "is a number; expected a list of polygons, each a list of numbers \
                 (`[[x0, y0, x1, y1, ...]]`)"
                    .into(),
            )
        }
        d.deserialize_any(V)
    }
}

/// An `images` entry, fields read leniently.
#[derive(Default)]
struct RawImage {
    id: Option<Scalar>,
    file_name: Option<Scalar>,
    width: Option<Scalar>,
    height: Option<Scalar>,
    /// Not an object: what it is.
    not_object: Option<&'static str>,
}

/// A `categories` entry.
#[derive(Default)]
struct RawCategory {
    id: Option<Scalar>,
    name: Option<Scalar>,
    not_object: Option<&'static str>,
}

/// An `annotations` entry.
#[derive(Default)]
struct RawAnn {
    id: Option<Scalar>,
    image_id: Option<Scalar>,
    category_id: Option<Scalar>,
    iscrowd: Option<Scalar>,
    segmentation: Option<RawSegm>,
    not_object: Option<&'static str>,
}

/// Reads a JSON object's fields with `field` (key, map) → handled, and
/// anything else into `not_object`.
macro_rules! lenient_object {
    ($ty:ident, |$this:ident, $key:ident, $map:ident| $body:block) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut $map: A) -> Result<$ty, A::Error> {
                        let mut $this = $ty::default();
                        while let Some($key) = $map.next_key::<String>()? {
                            $body
                        }
                        Ok($this)
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<$ty, A::Error> {
                        ScalarVisitor.visit_seq(seq)?;
                        Ok($ty {
                            not_object: Some("a list"),
                            ..Default::default()
                        })
                    }
                    fn visit_str<E>(self, _: &str) -> Result<$ty, E> {
                        Ok($ty {
                            not_object: Some("a string"),
                            ..Default::default()
                        })
                    }
                    fn visit_i64<E>(self, _: i64) -> Result<$ty, E> {
                        Ok($ty {
                            not_object: Some("a number"),
                            ..Default::default()
                        })
                    }
                    fn visit_u64<E>(self, _: u64) -> Result<$ty, E> {
                        Ok($ty {
                            not_object: Some("a number"),
                            ..Default::default()
                        })
                    }
                    fn visit_f64<E>(self, _: f64) -> Result<$ty, E> {
                        Ok($ty {
                            not_object: Some("a number"),
                            ..Default::default()
                        })
                    }
                    fn visit_bool<E>(self, _: bool) -> Result<$ty, E> {
                        Ok($ty {
                            not_object: Some("a boolean"),
                            ..Default::default()
                        })
                    }
                    fn visit_unit<E>(self) -> Result<$ty, E> {
                        Ok($ty {
                            not_object: Some("`null`"),
                            ..Default::default()
                        })
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

lenient_object!(RawImage, |this, key, map| {
    match key.as_str() {
        "id" => this.id = Some(map.next_value()?),
        "file_name" => this.file_name = Some(map.next_value()?),
        "width" => this.width = Some(map.next_value()?),
        "height" => this.height = Some(map.next_value()?),
        _ => {
            map.next_value::<IgnoredAny>()?;
        }
    }
});

lenient_object!(RawCategory, |this, key, map| {
    match key.as_str() {
        "id" => this.id = Some(map.next_value()?),
        "name" => this.name = Some(map.next_value()?),
        _ => {
            map.next_value::<IgnoredAny>()?;
        }
    }
});

lenient_object!(RawAnn, |this, key, map| {
    match key.as_str() {
        "id" => this.id = Some(map.next_value()?),
        "image_id" => this.image_id = Some(map.next_value()?),
        "category_id" => this.category_id = Some(map.next_value()?),
        "iscrowd" => this.iscrowd = Some(map.next_value()?),
        "segmentation" => this.segmentation = Some(map.next_value()?),
        _ => {
            map.next_value::<IgnoredAny>()?;
        }
    }
});

/// An annotation waiting for its image: an object (category as an interned
/// index), or why it cannot be one.
enum Entry {
    Ok(Object),
    Bad(String),
}

/// Which top-level list a seed reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum List {
    Images,
    Annotations,
    Categories,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::Images => "images",
            List::Annotations => "annotations",
            List::Categories => "categories",
        }
    }
}

/// What has been read so far.
#[derive(Default)]
struct Builder {
    /// Per list: `Some(None)` read, `Some(Some(what))` present but not a list.
    seen: [Option<Option<&'static str>>; 3],
    images: Vec<RawImage>,
    categories: Vec<RawCategory>,
    buckets: HashMap<i64, Vec<Entry>>,
    /// Category ids in order of first use by an annotation.
    interned: HashMap<i64, u32>,
    interned_ids: Vec<i64>,
    annotations: u64,
    problems: Vec<Problem>,
}

struct TopVisitor<'a>(&'a mut Builder);

impl<'de> Visitor<'de> for TopVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a COCO object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let list = match key.as_str() {
                "images" => List::Images,
                "annotations" => List::Annotations,
                "categories" => List::Categories,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            map.next_value_seed(ListSeed(self.0, list))?;
        }
        Ok(())
    }
}

struct ListSeed<'a>(&'a mut Builder, List);

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ListSeed<'_> {
    fn not_list(self, what: &'static str) {
        self.0.seen[self.1 as usize] = Some(Some(what));
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let b = self.0;
        b.seen[self.1 as usize] = Some(None);
        // A repeated key replaces the earlier list, as Python's json does.
        match self.1 {
            List::Images => {
                b.images.clear();
                while let Some(v) = seq.next_element::<RawImage>()? {
                    b.images.push(v);
                }
            }
            List::Categories => {
                b.categories.clear();
                while let Some(v) = seq.next_element::<RawCategory>()? {
                    b.categories.push(v);
                }
            }
            List::Annotations => {
                b.buckets.clear();
                b.annotations = 0;
                while let Some(v) = seq.next_element::<RawAnn>()? {
                    b.annotations += 1;
                    b.add_annotation(v);
                }
            }
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        ScalarVisitor.visit_map(map)?;
        self.not_list("an object");
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.not_list("a string");
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.not_list("a number");
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.not_list("a number");
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.not_list("a number");
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.not_list("a boolean");
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.not_list("`null`");
        Ok(())
    }
}

impl Builder {
    /// Files one annotation under its image id.
    fn add_annotation(&mut self, mut a: RawAnn) {
        let n = self.annotations;
        let ann_id = a.id.as_ref().and_then(Scalar::as_id);
        let name = match ann_id {
            Some(id) => format!("annotation {id}"),
            None => format!("annotation #{n} (no `id`)"),
        };
        if let Some(what) = a.not_object {
            self.problems.push(Problem {
                image: None,
                reason: format!("{name} skipped: it is {what}; expected an object"),
            });
            return;
        }
        let Some(image_id) = a.image_id.as_ref().and_then(Scalar::as_id) else {
            self.problems.push(Problem {
                image: None,
                reason: format!(
                    "{name} skipped: `image_id` is {}; expected an integer",
                    describe(a.image_id.as_ref())
                ),
            });
            return;
        };
        let segmentation = a.segmentation.take();
        let entry = match self.object(&a, segmentation, ann_id) {
            Ok(obj) => Entry::Ok(obj),
            Err(why) => Entry::Bad(format!("{name} skipped: {why}")),
        };
        self.buckets.entry(image_id).or_default().push(entry);
    }

    /// The object of an annotation (category interned), or why not.
    fn object(
        &mut self,
        a: &RawAnn,
        segmentation: Option<RawSegm>,
        ann_id: Option<i64>,
    ) -> Result<Object, String> {
        let Some(cat) = a.category_id.as_ref().and_then(Scalar::as_id) else {
            return Err(format!(
                "`category_id` is {}; expected an integer",
                describe(a.category_id.as_ref())
            ));
        };
        let crowd = match &a.iscrowd {
            None | Some(Scalar::Null) => false,
            Some(Scalar::Bool(b)) => *b,
            Some(Scalar::Int(v)) => *v != 0,
            Some(Scalar::Float(v)) => *v != 0.0,
            Some(other) => {
                return Err(format!(
                    "`iscrowd` is {}; expected 0 or 1",
                    other.describe()
                ));
            }
        };
        let shape = match segmentation {
            None => return Err("it has no `segmentation`; expected polygons or an RLE".into()),
            Some(s) => raw_shape(s)?,
        };
        let next = self.interned_ids.len() as u32;
        let category = *self.interned.entry(cat).or_insert(next);
        if category == next {
            self.interned_ids.push(cat);
        }
        Ok(Object {
            category,
            crowd,
            shape,
            ann_id,
        })
    }

    fn finish(mut self, path: &Path) -> Result<Export, CocoError> {
        let mut missing = Vec::new();
        for list in [List::Images, List::Annotations, List::Categories] {
            match self.seen[list as usize] {
                None => missing.push(format!("`{}` is missing", list.key())),
                Some(Some(what)) => missing.push(format!("`{}` is {what}", list.key())),
                Some(None) => {}
            }
        }
        if !missing.is_empty() {
            return Err(CocoError::NotCoco {
                path: path.to_path_buf(),
                found: missing.join(", "),
            });
        }
        let mut problems = std::mem::take(&mut self.problems);
        let mut categories = self.categories(&mut problems);
        // Interned index -> sorted index.
        let by_id: HashMap<i64, u32> = categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i as u32))
            .collect();
        let remap: Vec<Option<u32>> = self
            .interned_ids
            .iter()
            .map(|id| by_id.get(id).copied())
            .collect();
        let images = self.images(&remap, &mut categories, &mut problems);
        // Annotations of images that `images` does not list, by image id.
        let mut rest: Vec<(i64, Vec<Entry>)> = self.buckets.drain().collect();
        rest.sort_by_key(|(id, _)| *id);
        for (id, entries) in rest {
            for e in entries {
                let what = match e {
                    Entry::Ok(obj) => match obj.ann_id {
                        Some(a) => format!("annotation {a} skipped"),
                        None => "an annotation with no `id` skipped".into(),
                    },
                    Entry::Bad(why) => why,
                };
                problems.push(Problem {
                    image: Some(format!("id {id}")),
                    reason: format!("{what}: it names image {id}, which `images` does not list"),
                });
            }
        }
        Ok(Export {
            format: Format::Coco,
            path: path.to_path_buf(),
            categories,
            images,
            problems,
        })
    }

    /// Categories sorted by id; bad and repeated ones are problems.
    fn categories(&mut self, problems: &mut Vec<Problem>) -> Vec<Category> {
        let mut out: Vec<Category> = Vec::with_capacity(self.categories.len());
        let mut seen = HashMap::new();
        for (i, c) in std::mem::take(&mut self.categories).into_iter().enumerate() {
            let n = i + 1;
            let problem = |reason: String| Problem {
                image: None,
                reason,
            };
            if let Some(what) = c.not_object {
                problems.push(problem(format!(
                    "category #{n} skipped: it is {what}; expected an object"
                )));
                continue;
            }
            let Some(id) = c.id.as_ref().and_then(Scalar::as_id) else {
                problems.push(problem(format!(
                    "category #{n} skipped: `id` is {}; expected an integer",
                    describe(c.id.as_ref())
                )));
                continue;
            };
            if seen.insert(id, n).is_some() {
                problems.push(problem(format!(
                    "category #{n} skipped: id {id} is listed twice; the first is kept"
                )));
                continue;
            }
            let name = match c.name {
                Some(Scalar::Str(s)) => s,
                _ => id.to_string(),
            };
            out.push(Category {
                id,
                name,
                annotations: 0,
                crowd: 0,
            });
        }
        out.sort_by_key(|c| c.id);
        out
    }

    /// Images in file order with their objects checked against them.
    fn images(
        &mut self,
        remap: &[Option<u32>],
        categories: &mut [Category],
        problems: &mut Vec<Problem>,
    ) -> Vec<ImageAnn> {
        let mut out = Vec::with_capacity(self.images.len());
        let mut seen = HashMap::new();
        for (i, raw) in std::mem::take(&mut self.images).into_iter().enumerate() {
            let n = i + 1;
            let file_name = match &raw.file_name {
                Some(Scalar::Str(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            };
            let id = raw.id.as_ref().and_then(Scalar::as_id);
            let label = file_name
                .clone()
                .or_else(|| id.map(|id| format!("id {id}")));
            let mut fail = |why: String, skipped: usize| {
                let with = match skipped {
                    0 => String::new(),
                    1 => " (and its 1 annotation)".into(),
                    k => format!(" (and its {k} annotations)"),
                };
                problems.push(Problem {
                    image: label.clone(),
                    reason: format!("image #{n} skipped{with}: {why}"),
                });
            };
            if let Some(what) = raw.not_object {
                fail(format!("it is {what}; expected an object"), 0);
                continue;
            }
            let Some(id) = id else {
                fail(
                    format!("`id` is {}; expected an integer", describe(raw.id.as_ref())),
                    0,
                );
                continue;
            };
            if let Some(first) = seen.insert(id, n) {
                seen.insert(id, first);
                fail(
                    format!("id {id} is also image #{first}'s; the first is kept"),
                    0,
                );
                continue;
            }
            let entries = self.buckets.remove(&id).unwrap_or_default();
            let Some(file_name) = file_name else {
                fail(
                    format!(
                        "`file_name` is {}; expected the image's file name",
                        describe(raw.file_name.as_ref())
                    ),
                    entries.len(),
                );
                continue;
            };
            let (w, h) = (
                raw.width.as_ref().and_then(Scalar::as_size),
                raw.height.as_ref().and_then(Scalar::as_size),
            );
            let (Some(w), Some(h)) = (w, h) else {
                fail(
                    format!(
                        "`width` is {} and `height` {}; expected positive integers",
                        describe(raw.width.as_ref()),
                        describe(raw.height.as_ref())
                    ),
                    entries.len(),
                );
                continue;
            };
            if u64::from(w) * u64::from(h) > u64::from(u32::MAX) {
                fail(
                    format!(
                        "it is {w}x{h}, more than the {} pixels COCO RLE can count",
                        u32::MAX
                    ),
                    entries.len(),
                );
                continue;
            }
            let objects = self.objects(entries, &file_name, (w, h), remap, categories, problems);
            out.push(ImageAnn {
                id,
                file_name,
                width: w,
                height: h,
                objects,
            });
        }
        out
    }

    /// An image's objects that name a listed category and fit the image
    /// (`(w, h)`), counted in `categories`; the others are problems.
    fn objects(
        &self,
        entries: Vec<Entry>,
        file_name: &str,
        (w, h): (u32, u32),
        remap: &[Option<u32>],
        categories: &mut [Category],
        problems: &mut Vec<Problem>,
    ) -> Vec<Object> {
        let mut objects = Vec::with_capacity(entries.len());
        for e in entries {
            let bad = |reason: String| Problem {
                image: Some(file_name.to_string()),
                reason,
            };
            let mut obj = match e {
                Entry::Bad(why) => {
                    problems.push(bad(why));
                    continue;
                }
                Entry::Ok(obj) => obj,
            };
            let name = match obj.ann_id {
                Some(a) => format!("annotation {a}"),
                None => "an annotation with no `id`".into(),
            };
            let Some(cat) = remap[obj.category as usize] else {
                let cat_id = self.interned_ids[obj.category as usize];
                problems.push(bad(format!(
                    "{name} skipped: it names category {cat_id}, which `categories` does not list"
                )));
                continue;
            };
            obj.category = cat;
            match check_shape(&mut obj.shape, h, w) {
                Ok(notes) => {
                    for note in notes {
                        problems.push(bad(format!("{name}: {note}")));
                    }
                }
                Err(why) => {
                    problems.push(bad(format!("{name} skipped: {why}")));
                    continue;
                }
            }
            let c = &mut categories[cat as usize];
            c.annotations += 1;
            c.crowd += u64::from(obj.crowd);
            objects.push(obj);
        }
        objects
    }
}

/// A `segmentation` as a [`Shape`] (sizes checked later), or why not.
fn raw_shape(s: RawSegm) -> Result<Shape, String> {
    Ok(match s {
        RawSegm::Invalid(why) => return Err(why),
        RawSegm::Polygons(p) => Shape::Polygons(p),
        RawSegm::Rle { size, counts } => {
            let dims = match size.as_slice() {
                [h, w] => h.as_size().zip(w.as_size()),
                _ => None,
            };
            let Some((height, width)) = dims else {
                return Err("RLE `size` is not [height, width] (two positive integers)".to_string());
            };
            match counts {
                RawCounts::Missing => return Err("RLE has no `counts`".into()),
                RawCounts::Invalid(why) => return Err(why),
                RawCounts::List(counts) => Shape::Counts {
                    height,
                    width,
                    counts,
                },
                RawCounts::Str(counts) => Shape::Compressed {
                    height,
                    width,
                    counts,
                },
            }
        }
    })
}

/// Checks a shape against its `h` x `w` image: `Err` skips the object;
/// `Ok` lists what was left out of it (polygons of fewer than 3 points).
fn check_shape(shape: &mut Shape, h: u32, w: u32) -> Result<Vec<String>, String> {
    let total = u64::from(h) * u64::from(w);
    let mut notes = Vec::new();
    match shape {
        Shape::Polygons(polys) => {
            if polys.is_empty() {
                return Err("`segmentation` is an empty list; expected polygons or an RLE".into());
            }
            let mut n = 0;
            let mut err = None;
            polys.retain(|p| {
                n += 1;
                if err.is_some() {
                    return true;
                }
                if p.len() < 6 {
                    notes.push(format!(
                        "polygon {n} left out: it has {} number{}; expected at least 3 points (6 numbers)",
                        p.len(),
                        if p.len() == 1 { "" } else { "s" }
                    ));
                    return false;
                }
                if let Err(why) = poly::check(p) {
                    err = Some(format!("polygon {n}: {why}"));
                }
                true
            });
            if let Some(why) = err {
                return Err(why);
            }
            if polys.is_empty() {
                return Err("no polygon has at least 3 points (6 numbers)".into());
            }
        }
        Shape::Counts {
            height,
            width,
            counts,
        } => {
            super::check_rle_size(*height, *width, h, w)?;
            let sum: u64 = counts.iter().map(|&c| u64::from(c)).sum();
            super::check_sum(sum, total)?;
        }
        Shape::Compressed {
            height,
            width,
            counts,
        } => {
            super::check_rle_size(*height, *width, h, w)?;
            let c = rle::decode_string(counts)?;
            super::check_sum(c.iter().map(|&c| u64::from(c)).sum(), total)?;
        }
        Shape::Runs { .. } => {}
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::{CrowdMode, Raster, RasterScratch, rasterise};

    fn load_str(text: &str) -> Result<Export, CocoError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        std::fs::write(&p, text).unwrap();
        load(&p)
    }

    #[test]
    fn reads_a_small_file() {
        let e = load_str(
            r#"{"info": {"x": 1}, "categories": [{"id": 3, "name": "b"}, {"id": 1, "name": "a"}],
                "images": [{"id": 7, "file_name": "images/x.jpg", "width": 4, "height": 2.0}],
                "annotations": [
                  {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0, "bbox": [0,0,1,1],
                   "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]},
                  {"id": 2, "image_id": 7, "category_id": 1, "iscrowd": 1,
                   "segmentation": {"size": [2, 4], "counts": [2, 2, 4]}},
                  {"id": 3, "image_id": 7, "category_id": 1,
                   "segmentation": {"size": [2, 4], "counts": "025O"}}
                ]}"#,
        )
        .unwrap();
        assert_eq!(e.format, Format::Coco);
        assert_eq!(
            e.categories
                .iter()
                .map(|c| (c.id, c.name.as_str(), c.annotations, c.crowd))
                .collect::<Vec<_>>(),
            vec![(1, "a", 2, 1), (3, "b", 1, 0)]
        );
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        let img = &e.images[0];
        assert_eq!(
            (img.id, img.file_name.as_str(), img.width, img.height),
            (7, "images/x.jpg", 4, 2)
        );
        assert_eq!(img.objects.len(), 3);
        assert_eq!(img.objects[0].category, 1);
        assert_eq!(img.objects[1].category, 0);
        assert!(img.objects[1].crowd);
        // 1 is stored as 1 - 2 = -1 -> 31 -> 'O'.
        assert_eq!(rle::decode_string("025O").unwrap(), vec![0, 2, 5, 1]);
        let (mut s, mut r) = (RasterScratch::default(), Raster::default());
        rasterise(img, CrowdMode::AsCategory, &mut s, &mut r).unwrap();
        // Square (0,0)-(2,2): columns 0, 1 fully (h = 2): [0, 4).
        assert_eq!(r.category_intervals(1), vec![(0, 4)]);
        // Crowd [2, 4) and [0, 2) + [7, 8).
        assert_eq!(r.category_intervals(0), vec![(0, 4), (7, 8)]);
    }

    #[test]
    fn bad_items_are_problems_not_errors() {
        let e = load_str(
            r#"{"categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "dup"}, {"name": "noid"}],
                "images": [{"id": 1, "file_name": "a.png", "width": 3, "height": 3},
                           {"id": 2, "file_name": "b.png"},
                           {"id": 1, "file_name": "c.png", "width": 3, "height": 3}],
                "annotations": [
                  {"id": 10, "image_id": 1, "category_id": 9, "segmentation": [[0,0,2,0,2,2]]},
                  {"id": 11, "image_id": 5, "category_id": 1, "segmentation": [[0,0,2,0,2,2]]},
                  {"id": 12, "image_id": 1, "category_id": 1, "segmentation": [[0,0,2,0]]},
                  {"id": 13, "image_id": 1, "category_id": 1, "segmentation": [[0,0,2,0], [0,0,2,0,2,2,1]]},
                  {"id": 14, "image_id": 1, "category_id": 1, "segmentation": [[0,0,null,0,2,2]]},
                  {"id": 15, "image_id": 1, "category_id": 1, "segmentation": {"size": [3, 4], "counts": [12]}},
                  {"id": 16, "image_id": 1, "category_id": 1, "segmentation": {"size": [3, 3], "counts": [8]}},
                  {"id": 17, "image_id": 1, "category_id": 1, "segmentation": {"size": [3, 3], "counts": "0 1"}},
                  {"id": 18, "image_id": 1, "category_id": 1, "segmentation": [[0,0,1e9,0,2,2]]},
                  {"id": 19, "image_id": 2, "category_id": 1, "segmentation": [[0,0,2,0,2,2]]},
                  {"id": 20, "image_id": 1, "category_id": 1, "segmentation": []},
                  {"id": 21, "image_id": 1, "category_id": 1, "segmentation": [0, 0, 2, 0, 2, 2]},
                  {"id": 22, "image_id": 1, "category_id": 1},
                  {"id": 23, "image_id": "x", "category_id": 1, "segmentation": [[0,0,2,0,2,2]]}
                ]}"#,
        )
        .unwrap();
        let reasons: Vec<String> = e
            .problems
            .iter()
            .map(|p| format!("{}| {}", p.image.as_deref().unwrap_or("-"), p.reason))
            .collect();
        let has = |what: &str| {
            assert!(
                reasons.iter().any(|r| r.contains(what)),
                "no problem with `{what}` in:\n{}",
                reasons.join("\n")
            )
        };
        has("-| annotation 23 skipped: `image_id` is the string");
        has("-| category #2 skipped: id 1 is listed twice");
        has("-| category #3 skipped: `id` is missing");
        has("b.png| image #2 skipped (and its 1 annotation): `width` is missing");
        has("c.png| image #3 skipped: id 1 is also image #1's");
        has("a.png| annotation 10 skipped: it names category 9");
        has("id 5| annotation 11 skipped: it names image 5");
        has("a.png| annotation 12 skipped: no polygon has at least 3 points");
        has("a.png| annotation 13: polygon 1 left out: it has 4 numbers");
        has("a.png| annotation 14 skipped: `segmentation` item 1 holds `null` as coordinate 3");
        has("a.png| annotation 15 skipped: RLE size is [3, 4]");
        has("a.png| annotation 16 skipped: RLE counts sum to 8; expected height * width = 9");
        has("a.png| annotation 17 skipped: compressed counts hold ` `");
        has("a.png| annotation 18 skipped: polygon 1: coordinate 3");
        has("a.png| annotation 20 skipped: `segmentation` is an empty list");
        has("a.png| annotation 21 skipped: `segmentation` item 1 is a number");
        has("a.png| annotation 22 skipped: it has no `segmentation`");
        assert_eq!(e.images.len(), 1);
        let img = &e.images[0];
        // Only annotation 13 is kept, with its second polygon (the odd 7th
        // number ignored).
        assert_eq!(img.objects.len(), 1);
        assert_eq!(img.objects[0].ann_id, Some(13));
        assert_eq!(
            img.objects[0].shape,
            Shape::Polygons(vec![vec![0.0, 0.0, 2.0, 0.0, 2.0, 2.0, 1.0]])
        );
        assert_eq!(e.categories.len(), 1);
        assert_eq!(e.categories[0].annotations, 1);
    }

    #[test]
    fn not_coco_is_an_error_naming_what_was_expected() {
        let e = load_str(r#"[{"image_id": 1, "score": 0.5}]"#).unwrap_err();
        assert!(e.to_string().contains("JSON array"), "{e}");
        let e = load_str(r#"{"images": [], "annotations": {}}"#).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`annotations` is an object") && msg.contains("`categories` is missing"),
            "{msg}"
        );
        assert!(
            msg.contains("expected a JSON object with `images`"),
            "{msg}"
        );
        let e = load_str("\"hello\"").unwrap_err();
        assert!(matches!(e, CocoError::NotCoco { .. }), "{e}");
        let e = load_str("{\"images\": [").unwrap_err();
        assert!(matches!(e, CocoError::Json { .. }), "{e}");
        let e = load_str("\u{feff}  ").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        // A byte-order mark before a valid file is skipped.
        let e =
            load_str("\u{feff}{\"images\": [], \"annotations\": [], \"categories\": []}").unwrap();
        assert!(e.images.is_empty() && e.problems.is_empty());
    }
}

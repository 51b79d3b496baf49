//! Tensor files that people load elsewhere: NumPy `.npy` (version 1.0) and
//! safetensors. Writers are ours, so the bytes are deterministic (sorted
//! keys, fixed padding); safetensors are read with the `safetensors` crate.
//!
//! - `.npy`: `\x93NUMPY`, version 1.0, a Python-dict header padded with
//!   spaces (and a final newline) so the data starts at a multiple of 64.
//! - safetensors: 8-byte little-endian header length, a JSON header
//!   (`dtype`, `shape`, `data_offsets`; `__metadata__` holds strings only)
//!   padded with spaces to a multiple of 8, then the data.

use std::collections::BTreeMap;

/// Element types maskprep writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    U8,
    Bool,
    F16,
    F32,
    I64,
}

impl DType {
    fn npy_descr(self) -> &'static str {
        match self {
            Self::U8 => "|u1",
            Self::Bool => "|b1",
            Self::F16 => "<f2",
            Self::F32 => "<f4",
            Self::I64 => "<i8",
        }
    }

    fn st_name(self) -> &'static str {
        match self {
            Self::U8 => "U8",
            Self::Bool => "BOOL",
            Self::F16 => "F16",
            Self::F32 => "F32",
            Self::I64 => "I64",
        }
    }

    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::Bool => 1,
            Self::F16 => 2,
            Self::F32 => 4,
            Self::I64 => 8,
        }
    }
}

/// A tensor to write: little-endian element bytes in C order.
#[derive(Debug, Clone)]
pub struct TensorOut<'a> {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: std::borrow::Cow<'a, [u8]>,
}

impl TensorOut<'static> {
    pub fn f32(shape: Vec<usize>, values: &[f32]) -> Self {
        Self {
            dtype: DType::F32,
            shape,
            bytes: values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>()
                .into(),
        }
    }

    pub fn i64(shape: Vec<usize>, values: &[i64]) -> Self {
        Self {
            dtype: DType::I64,
            shape,
            bytes: values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>()
                .into(),
        }
    }
}

impl<'a> TensorOut<'a> {
    pub fn u8(shape: Vec<usize>, values: &'a [u8]) -> Self {
        Self {
            dtype: DType::U8,
            shape,
            bytes: values.into(),
        }
    }
}

/// The `.npy` header for `dtype` and `shape` (the data follows it).
pub fn npy_header(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        dtype.npy_descr()
    );
    let unpadded = 10 + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// A whole `.npy` file.
pub fn npy_bytes(t: &TensorOut<'_>) -> Vec<u8> {
    let mut out = npy_header(t.dtype, &t.shape);
    out.extend_from_slice(&t.bytes);
    out
}

/// A whole safetensors file: tensors by name (sorted), string metadata.
pub fn safetensors_bytes(
    tensors: &BTreeMap<String, TensorOut<'_>>,
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let meta: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), meta.into());
    }
    let mut offset = 0usize;
    for (name, t) in tensors {
        let end = offset + t.bytes.len();
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": t.dtype.st_name(),
                "shape": t.shape,
                "data_offsets": [offset, end],
            }),
        );
        offset = end;
    }
    // serde_json's Map is a BTreeMap here (no `preserve_order`): sorted keys.
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for t in tensors.values() {
        out.extend_from_slice(&t.bytes);
    }
    out
}

/// A tensor read back, widened to f32 (exact for u8, bool and f16).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Why a tensor file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    #[error("not a `.npy` file (bad magic or header); expected NumPy format 1.0-3.0")]
    NpyHeader,
    #[error("`.npy` dtype `{0}` is not supported; expected float32, float16, uint8 or bool")]
    NpyDtype(String),
    #[error("`.npy` is Fortran-ordered; expected C order")]
    Fortran,
    #[error("data holds {got} bytes; shape {shape:?} needs {want}")]
    Size {
        got: usize,
        want: usize,
        shape: Vec<usize>,
    },
    #[error("not a readable safetensors file")]
    SafeTensors(#[source] safetensors::SafeTensorError),
    #[error("safetensors file has {0} tensors; expected one, or one named `{1}`")]
    Which(usize, String),
    #[error("safetensors dtype `{0}` is not supported; expected F32, F16, U8 or BOOL")]
    StDtype(String),
}

fn widen(dtype: DType, bytes: &[u8], shape: Vec<usize>) -> Result<Array, TensorError> {
    let n: usize = shape.iter().product();
    let want = n * dtype.size();
    if bytes.len() != want {
        return Err(TensorError::Size {
            got: bytes.len(),
            want,
            shape,
        });
    }
    let values = match dtype {
        DType::U8 | DType::Bool => bytes.iter().map(|&b| f32::from(b)).collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::I64 => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
    };
    Ok(Array { shape, values })
}

/// Reads a `.npy` file (C order; float32, float16, uint8 or bool).
pub fn read_npy(bytes: &[u8]) -> Result<Array, TensorError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(TensorError::NpyHeader);
    }
    let (len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(TensorError::NpyHeader),
    };
    let header = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or(TensorError::NpyHeader)?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        Some(header[at..].trim_start().strip_prefix(':')?.trim_start())
    };
    let descr = field("descr")
        .and_then(|s| s.strip_prefix('\''))
        .and_then(|s| s.split('\'').next())
        .ok_or(TensorError::NpyHeader)?;
    let dtype = match descr {
        "<f4" | "=f4" => DType::F32,
        "<f2" | "=f2" => DType::F16,
        "|u1" | "<u1" | "=u1" => DType::U8,
        "|b1" => DType::Bool,
        other => return Err(TensorError::NpyDtype(other.to_string())),
    };
    if field("fortran_order").is_some_and(|s| s.starts_with("True")) {
        return Err(TensorError::Fortran);
    }
    let dims = field("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split(')').next())
        .ok_or(TensorError::NpyHeader)?;
    let shape = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TensorError::NpyHeader)?;
    widen(dtype, &bytes[start + len..], shape)
}

/// Reads one tensor of a safetensors file: the one named `name`, or the
/// only one.
pub fn read_safetensors(bytes: &[u8], name: &str) -> Result<Array, TensorError> {
    use safetensors::{Dtype, SafeTensors};
    let st = SafeTensors::deserialize(bytes).map_err(TensorError::SafeTensors)?;
    let names = st.names();
    let pick = if names.len() == 1 {
        names[0].to_string()
    } else if names.contains(&name) {
        name.to_string()
    } else {
        return Err(TensorError::Which(names.len(), name.to_string()));
    };
    let view = st.tensor(&pick).map_err(TensorError::SafeTensors)?;
    let dtype = match view.dtype() {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        other => return Err(TensorError::StDtype(format!("{other:?}"))),
    };
    widen(dtype, view.data(), view.shape().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_padded_to_64_and_round_trips() {
        let t = TensorOut::f32(vec![3, 1, 1], &[0.25, 5.0, 29.0]);
        let bytes = npy_bytes(&t);
        let hlen = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(bytes[10 + hlen - 1], b'\n');
        let back = read_npy(&bytes).unwrap();
        assert_eq!(back.shape, vec![3, 1, 1]);
        assert_eq!(back.values, vec![0.25, 5.0, 29.0]);
    }

    #[test]
    fn safetensors_round_trip_with_metadata() {
        let mut ts = BTreeMap::new();
        ts.insert(
            "pos_weight".to_string(),
            TensorOut::f32(vec![2, 1, 1], &[1.5, 3.0]),
        );
        ts.insert("weight".to_string(), TensorOut::f32(vec![2], &[0.5, 2.0]));
        let mut meta = BTreeMap::new();
        meta.insert("classes".to_string(), "[\"a\",\"b\"]".to_string());
        let bytes = safetensors_bytes(&ts, &meta);
        let hlen = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(hlen % 8, 0);
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("pos_weight").unwrap().shape(), &[2, 1, 1]);
        let (_, m) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(
            m.metadata().as_ref().unwrap().get("classes").unwrap(),
            "[\"a\",\"b\"]"
        );
        assert_eq!(
            read_safetensors(&bytes, "weight").unwrap().values,
            vec![0.5, 2.0]
        );
        // Same input, same bytes.
        assert_eq!(bytes, safetensors_bytes(&ts, &meta));
    }
}

//! `maskprep shards verify DIR`: re-reads every shard the manifest lists and
//! checks it against the manifest (size, sha256, sample count) and against
//! itself (each sample complete and adjacent, keys unique across the set,
//! mask arrays `[C,H,W]` of 0/1 whose planes agree with the sample's
//! `present`). Shard files the manifest does not list, and temporary files,
//! are differences too.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::encode::SampleInfo;
use super::{FORMAT, Format, INDEX, Manifest, STATE_DIR, hex};
use crate::tensors::read_npy;

/// Problems shown per shard before the rest are summed up.
const PER_SHARD: usize = 20;

/// What verification found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub shards: usize,
    pub samples: u64,
    /// Each difference, one line each; empty when everything matches.
    pub problems: Vec<String>,
}

/// Why verification could not start.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "no manifest `{0}`; expected a folder written by `maskprep shards` (an interrupted run leaves none: run the same command again)"
    )]
    NoManifest(PathBuf),
    #[error("cannot read manifest `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest `{path}` is not usable: {message}")]
    Malformed { path: PathBuf, message: String },
}

/// Verifies the shard set in `dir`.
pub fn verify(dir: &Path) -> Result<VerifyReport, VerifyError> {
    let path = dir.join(INDEX);
    let text = match crate::store::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VerifyError::NoManifest(path));
        }
        Err(source) => return Err(VerifyError::Io { path, source }),
    };
    let malformed = |message: String| VerifyError::Malformed {
        path: path.clone(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| malformed(format!("not JSON ({e})")))?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != FORMAT {
        return Err(malformed(format!(
            "format is `{format}`; expected `{FORMAT}`"
        )));
    }
    let m: Manifest = serde_json::from_value(value)
        .map_err(|e| malformed(format!("expected a complete manifest ({e})")))?;
    let mut rep = VerifyReport::default();
    let mut keys = BTreeSet::new();
    let mut listed = BTreeSet::new();
    let c = m.classes.len();
    for (split, entry) in &m.splits {
        let mut total = 0;
        for sh in &entry.shards {
            rep.shards += 1;
            listed.insert(sh.name.clone());
            let mut problems = Vec::new();
            let safe =
                !sh.name.split('/').any(|p| p == ".." || p.is_empty()) && !sh.name.starts_with('/');
            if !safe {
                rep.problems.push(format!(
                    "shard name `{}` leaves the folder; expected a relative path",
                    sh.name
                ));
                continue;
            }
            let file = dir.join(&sh.name);
            let found = crate::store::local_copy(&file).and_then(|local| match m.shard_format {
                Format::Webdataset => check_tar(&local.path, c, split, &mut keys, &mut problems),
                Format::Safetensors => {
                    check_safetensors(&local.path, &m, split, &mut keys, &mut problems)
                }
            });
            let (bytes, sha, samples) = match found {
                Ok(f) => f,
                Err(e) => {
                    rep.problems
                        .push(format!("cannot read shard `{}`: {e}", file.display()));
                    continue;
                }
            };
            if bytes != sh.bytes {
                problems.push(format!("is {bytes} bytes; the manifest says {}", sh.bytes));
            }
            if sha != sh.sha256 {
                problems.push(format!("has sha256 {sha}; the manifest says {}", sh.sha256));
            }
            if samples != sh.samples {
                problems.push(format!(
                    "holds {samples} samples; the manifest says {}",
                    sh.samples
                ));
            }
            total += samples;
            rep.samples += samples;
            let more = problems.len().saturating_sub(PER_SHARD);
            for p in problems.into_iter().take(PER_SHARD) {
                rep.problems.push(format!("shard `{}` {p}", file.display()));
            }
            if more > 0 {
                rep.problems.push(format!(
                    "shard `{}`: {more} more difference(s)",
                    file.display()
                ));
            }
        }
        if total != entry.samples {
            rep.problems.push(format!(
                "split `{split}` holds {total} samples in its shards; the manifest says {}",
                entry.samples
            ));
        }
    }
    unlisted(dir, &listed, &mut rep.problems);
    Ok(rep)
}

/// Shard-like and temporary files that the manifest does not list.
fn unlisted(dir: &Path, listed: &BTreeSet<String>, problems: &mut Vec<String>) {
    let Ok(rd) = crate::store::read_dir(dir) else {
        return;
    };
    let mut subdirs: Vec<(String, PathBuf)> = rd
        .into_iter()
        .filter(|(n, _, is_dir)| *is_dir && n != STATE_DIR)
        .map(|(n, p, _)| (n, p))
        .collect();
    subdirs.insert(0, (String::new(), dir.to_path_buf()));
    for (name, path) in subdirs {
        let Ok(rd) = crate::store::read_dir(&path) else {
            continue;
        };
        let files: Vec<String> = rd.into_iter().map(|(n, _, _)| n).collect();
        for f in files {
            let rel = if name.is_empty() {
                f.clone()
            } else {
                format!("{name}/{f}")
            };
            let shard_like = f.ends_with(".tar") || f.ends_with(".safetensors");
            if f.contains(".tmp-") {
                problems.push(format!(
                    "temporary file `{}` is left from an interrupted run; run the same command again",
                    path.join(&f).display()
                ));
            } else if shard_like && !listed.contains(&rel) {
                problems.push(format!(
                    "shard `{}` is not in the manifest",
                    path.join(&f).display()
                ));
            }
        }
    }
}

/// Size and sha256 of a file, streamed.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        sha.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex(&sha.finalize())))
}

/// One tar sample being read.
#[derive(Default)]
struct Pending {
    key: String,
    images: usize,
    info: Option<SampleInfo>,
    /// `[C,H,W]` shape and per-class presence from the `.npy`.
    mask: Option<(Vec<usize>, Vec<u8>)>,
}

impl Pending {
    fn check(self, problems: &mut Vec<String>) {
        let k = &self.key;
        if self.images != 1 {
            problems.push(format!(
                "sample `{k}` has {} image files; expected 1",
                self.images
            ));
        }
        match (&self.info, &self.mask) {
            (Some(info), Some((shape, present))) => {
                if shape[1..] != [info.height as usize, info.width as usize] {
                    problems.push(format!(
                        "sample `{k}`: mask is {shape:?}; its json says {}x{}",
                        info.width, info.height
                    ));
                }
                if &info.present != present {
                    problems.push(format!(
                        "sample `{k}`: json `present` is {:?}; the mask planes hold {present:?}",
                        info.present
                    ));
                }
            }
            (None, _) => problems.push(format!("sample `{k}` has no `{k}.json`")),
            (_, None) => problems.push(format!("sample `{k}` has no `{k}.mask.npy`")),
        }
    }
}

/// Checks a tar shard; returns (bytes, sha256, samples).
fn check_tar(
    path: &Path,
    c: usize,
    split: &str,
    keys: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> std::io::Result<(u64, String, u64)> {
    let (bytes, sha) = hash_file(path)?;
    let mut ar = tar::Archive::new(BufReader::new(File::open(path)?));
    let mut samples = 0u64;
    let mut cur: Option<Pending> = None;
    let entries = match ar.entries() {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("is not a readable tar: {e}"));
            return Ok((bytes, sha, 0));
        }
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("is not a readable tar: {e}"));
                break;
            }
        };
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let Some((key, suffix)) = name.split_once('.') else {
            problems.push(format!("entry `{name}` has no extension; expected KEY.EXT"));
            continue;
        };
        if cur.as_ref().is_none_or(|p| p.key != key) {
            if let Some(p) = cur.take() {
                p.check(problems);
            }
            if !keys.insert(key.to_string()) {
                problems.push(format!(
                    "sample `{key}` appears again (a duplicate, or its files are not adjacent)"
                ));
            }
            samples += 1;
            cur = Some(Pending {
                key: key.to_string(),
                ..Pending::default()
            });
        }
        let p = cur.as_mut().expect("set above");
        let mut data = Vec::new();
        if let Err(e) = entry.read_to_end(&mut data) {
            problems.push(format!("entry `{name}` cannot be read: {e}"));
            continue;
        }
        match suffix {
            "json" => match serde_json::from_slice::<SampleInfo>(&data) {
                Ok(info) => {
                    if info.key != key || info.split != split || info.present.len() != c {
                        problems.push(format!(
                            "`{name}` says key `{}`, split `{}`, {} classes; expected `{key}`, `{split}`, {c}",
                            info.key,
                            info.split,
                            info.present.len()
                        ));
                    }
                    p.info = Some(info);
                }
                Err(e) => problems.push(format!("`{name}` is not a sample description: {e}")),
            },
            "mask.npy" => match read_npy(&data) {
                Ok(a) if a.shape.len() == 3 && a.shape[0] == c => {
                    if a.values.iter().any(|&v| v != 0.0 && v != 1.0) {
                        problems.push(format!("`{name}` holds values other than 0 and 1"));
                    }
                    let hw = a.shape[1] * a.shape[2];
                    let present = (0..c)
                        .map(|k| u8::from(a.values[k * hw..(k + 1) * hw].iter().any(|&v| v != 0.0)))
                        .collect();
                    p.mask = Some((a.shape, present));
                }
                Ok(a) => problems.push(format!(
                    "`{name}` has shape {:?}; expected [{c}, H, W]",
                    a.shape
                )),
                Err(e) => problems.push(format!("`{name}` is not a readable .npy: {e}")),
            },
            ext if !ext.contains('.') => p.images += 1,
            other => problems.push(format!("entry `{name}` has unexpected suffix `{other}`")),
        }
    }
    if let Some(p) = cur.take() {
        p.check(problems);
    }
    Ok((bytes, sha, samples))
}

/// Checks a safetensors shard; returns (bytes, sha256, samples).
fn check_safetensors(
    path: &Path,
    m: &Manifest,
    split: &str,
    keys: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> std::io::Result<(u64, String, u64)> {
    use safetensors::{Dtype, SafeTensors};
    let bytes = std::fs::read(path)?;
    let sha = hex(&Sha256::digest(&bytes));
    let len = bytes.len() as u64;
    let c = m.classes.len();
    let st = match SafeTensors::deserialize(&bytes) {
        Ok(st) => st,
        Err(e) => {
            problems.push(format!("is not a readable safetensors file: {e}"));
            return Ok((len, sha, 0));
        }
    };
    let (Ok(images), Ok(masks)) = (st.tensor("images"), st.tensor("masks")) else {
        problems.push("lacks tensor `images` or `masks`".to_string());
        return Ok((len, sha, 0));
    };
    let n = masks.shape().first().copied().unwrap_or(0);
    let (h, w) = m
        .sample_size
        .map_or((0, 0), |d| (d.height as usize, d.width as usize));
    if images.dtype() != Dtype::U8 || images.shape() != [n, 3, h, w] {
        problems.push(format!(
            "tensor `images` is {:?} {:?}; expected U8 [{n}, 3, {h}, {w}]",
            images.dtype(),
            images.shape()
        ));
    }
    if masks.dtype() != Dtype::U8 || masks.shape() != [n, c, h, w] {
        problems.push(format!(
            "tensor `masks` is {:?} {:?}; expected U8 [{n}, {c}, {h}, {w}]",
            masks.dtype(),
            masks.shape()
        ));
        return Ok((len, sha, n as u64));
    }
    let data = masks.data();
    if data.iter().any(|&v| v > 1) {
        problems.push("tensor `masks` holds values other than 0 and 1".to_string());
    }
    let infos: Vec<SampleInfo> = match SafeTensors::read_metadata(&bytes)
        .ok()
        .and_then(|(_, meta)| meta.metadata().as_ref()?.get("samples").cloned())
        .map(|s| serde_json::from_str(&s))
    {
        Some(Ok(v)) => v,
        _ => {
            problems.push("has no readable `samples` in its metadata".to_string());
            return Ok((len, sha, n as u64));
        }
    };
    if infos.len() != n {
        problems.push(format!(
            "metadata lists {} samples; the tensors hold {n}",
            infos.len()
        ));
        return Ok((len, sha, n as u64));
    }
    let hw = h * w;
    for (i, info) in infos.iter().enumerate() {
        if !keys.insert(info.key.clone()) {
            problems.push(format!("sample `{}` appears again", info.key));
        }
        if info.split != split {
            problems.push(format!(
                "sample `{}` says split `{}`; expected `{split}`",
                info.key, info.split
            ));
        }
        let planes = &data[i * c * hw..(i + 1) * c * hw];
        let present: Vec<u8> = (0..c)
            .map(|k| u8::from(planes[k * hw..(k + 1) * hw].iter().any(|&v| v != 0)))
            .collect();
        if info.present != present {
            problems.push(format!(
                "sample `{}`: metadata `present` is {:?}; the mask planes hold {present:?}",
                info.key, info.present
            ));
        }
    }
    Ok((len, sha, n as u64))
}

//! Pass 2 of shards: the plan → shard files, resume records and the manifest.
//!
//! Shards are written one after another in plan order; within a shard,
//! pairs are encoded in parallel a chunk at a time and appended in order,
//! so output bytes do not depend on the thread count and memory holds one
//! chunk (tar) or one shard (safetensors, built in memory: peak about twice
//! the shard). Each shard goes to a temporary name, is synced and renamed;
//! then a record (`.maskprep/SPLIT/NAME.json`: plan digest, size, sha256,
//! exact counts, sha256 of each source's bytes) is written. A rerun keeps a
//! shard only when its record's digest equals the new plan's, the file has
//! the recorded size and sha256 (re-hashed) and every source still has the
//! recorded content. A run holds an exclusive lock on the output folder
//! (`.maskprep/lock`, opened without following a symlink); on a store,
//! which has no locks, a lock object naming the run is written first and
//! checked before each shard and before `index.json`, so a second writer
//! on one prefix is detected and the run that lost the prefix stops.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::encode::{self, Ctx, Encoded, Worker};
use super::manifest::{self, Manifest, ShardEntry, SplitEntry, SplitSettings};
use super::plan::{self, Plan, ShardPlan, StrictStop};
use super::{ABORT_ENV, FORMAT, Format, INDEX, MASK_LAYOUT, STATE_DIR, ShardsConfig, hex, wds};
use crate::dataset::{Prepared, prepare};
use crate::labels::LabelMap;
use crate::output::{Console, write_owned, write_owned_bytes};
use crate::stats::doc::{Files, Meta, StatsDoc};
use crate::stats::{BadFile, Counts, RARE_BELOW};
use crate::store;
use crate::tensors::{TensorOut, safetensors_bytes};

/// Version 2 adds the content hashes of the sources; a version 1 record
/// is never reused (its sources were known by length and mtime only).
const RECORD_FORMAT: &str = "maskprep-shard-record/2";

/// What a run produced.
#[derive(Debug)]
pub struct Written {
    pub manifest: Manifest,
    /// The exact counts of every split together (skipped masks included).
    pub counts: Counts,
    /// Masks found (in this partition).
    pub masks_found: u64,
    /// The label map the shards were written with.
    pub map: LabelMap,
    /// Shards kept from an earlier run.
    pub reused: usize,
    /// Pass 1 decoded every mask (stratified split).
    pub plan_decoded_masks: bool,
}

/// A finished shard, as recorded for resuming.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardRecord {
    format: String,
    plan: String,
    entry: ShardEntry,
    pairs: u64,
    stats: StatsDoc,
    skipped: Vec<BadFile>,
    /// sha256 of each pair's mask and image bytes, in shard order: a source
    /// rewritten with the same length and mtime still changes its hash.
    #[serde(default)]
    sources: Vec<String>,
}

/// Writes the shards and manifest of `cfg`.
pub fn run(cfg: &ShardsConfig) -> anyhow::Result<Written> {
    cfg.check()?;
    let splits = cfg.split_table()?;
    let prep = prepare(&cfg.dir, cfg.labels.as_deref(), &cfg.exports, cfg.partition)?;
    if prep.dataset.image_dir.is_none() {
        bail!(
            "`{}` has no `images/` folder; expected a dataset root holding `images/` and `masks/` \
             (shards pair each mask with its image)",
            cfg.dir.display()
        );
    }
    prep.announce(&Console::new(cfg.quiet));
    let out = &cfg.out;
    crate::source::refuse_output_inside(&cfg.dir, out)?;
    let remote = store::is_url(out);
    // Held until this run returns: one writer per output folder. A store
    // has no lock: its lock object detects a second writer instead.
    let console = Console::new(cfg.quiet);
    let _lock = if remote {
        None
    } else {
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create `{}`", out.display()))?;
        Some(lock(out)?)
    };
    let claim = if remote {
        Some(Claim::take(out, &console)?)
    } else {
        None
    };
    locked_hook();
    let still_ours = || claim.as_ref().map_or(Ok(()), Claim::check);
    still_ours()?;
    // A manifest describes a finished run only: drop it until this one finishes.
    store::remove(&out.join(INDEX))
        .with_context(|| format!("cannot remove `{}`", out.join(INDEX).display()))?;
    if !remote {
        // Objects are put whole: a store holds no temporary files.
        remove_temps(out)?;
    }
    let plan = plan::plan(cfg, &prep, splits)?;
    let ctx = Ctx {
        map: &prep.map,
        format: cfg.format,
        geometry: cfg.geometry,
        sample_dims: plan.sample_dims,
    };
    let bar = crate::output::progress(
        plan.sources.len() as u64,
        Console::new(cfg.quiet).progress(),
    );
    let mut abort = Abort(std::env::var(ABORT_ENV).ok().and_then(|v| v.parse().ok()));
    let c = prep.map.num_classes();
    let n = plan.splits.len();
    let mut counts = vec![Counts::new(c); n];
    let mut pairs = vec![0u64; n];
    let mut entries: Vec<Vec<ShardEntry>> = vec![Vec::new(); n];
    let mut skipped = plan.skipped.clone();
    let mut reused = 0;
    for shard in &plan.shards {
        still_ours()?;
        let path = out.join(&shard.name);
        let rec_path = record_path(out, &shard.name);
        let rec = match reuse(&path, &rec_path, &shard.digest, &plan, shard) {
            Some(r) => {
                reused += 1;
                bar.inc(shard.sources.len() as u64);
                r
            }
            None => {
                // A record must never describe another plan's file.
                let _ = store::remove(&rec_path);
                let r = write_shard(cfg, &prep, &plan, shard, &ctx, &path, &mut abort, &|| {
                    bar.inc(1)
                })?;
                let json = serde_json::to_vec(&r).context("cannot serialise a shard record")?;
                write_owned_bytes(&rec_path, &json)?;
                r
            }
        };
        counts[shard.split] += rec.stats.counts();
        pairs[shard.split] += rec.pairs;
        skipped.extend(rec.skipped.iter().cloned());
        entries[shard.split].push(rec.entry);
    }
    bar.finish_and_clear();
    remove_stale(out, &plan)?;
    skipped.sort();
    let mut total = Counts::new(c);
    for k in &counts {
        total += k;
    }
    total.bad = skipped.clone();
    let masks_found = (0..n)
        .map(|s| plan.assignment.iter().filter(|&&a| a == s).count() as u64)
        .sum();
    let manifest = build_manifest(cfg, &prep, &plan, counts, pairs, entries, skipped);
    let mut json =
        serde_json::to_string_pretty(&manifest).context("cannot serialise the manifest")?;
    json.push('\n');
    still_ours()?;
    write_owned_bytes(&out.join(INDEX), json.as_bytes())?;
    if let Some(c) = claim {
        c.release();
    }
    Ok(Written {
        manifest,
        counts: total,
        masks_found,
        map: prep.map,
        reused,
        plan_decoded_masks: plan.decoded_masks,
    })
}

/// The test hook of [`ABORT_ENV`]: exit like a killed process, without
/// flushing or cleaning up.
struct Abort(Option<u64>);

impl Abort {
    fn tick(&mut self) {
        if let Some(left) = &mut self.0 {
            *left = left.saturating_sub(1);
            if *left == 0 {
                std::process::exit(137);
            }
        }
    }
}

/// Name of the lock file in the state folder.
const LOCK_FILE: &str = "lock";

/// Takes the exclusive lock of the output folder `out` (`.maskprep/lock`,
/// released by the OS when the process ends, even killed), or says which
/// process holds it.
fn lock(out: &Path) -> anyhow::Result<std::fs::File> {
    let state = out.join(STATE_DIR);
    let planted = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_symlink());
    if planted(&state) {
        bail!(
            "`{}` is a symlink; expected the folder maskprep keeps its state in (remove the link)",
            state.display()
        );
    }
    std::fs::create_dir_all(&state)
        .with_context(|| format!("cannot create `{}`", state.display()))?;
    let path = state.join(LOCK_FILE);
    let refuse = || {
        anyhow::anyhow!(
            "the lock `{}` is a symlink or a special file; expected a regular file that \
             maskprep creates (remove it)",
            path.display()
        )
    };
    if planted(&path) {
        return Err(refuse());
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(target_os = "linux")]
    {
        // Never follow a symlink planted between the check and the open.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let mut file = match options.open(&path) {
        #[cfg(target_os = "linux")]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse()),
        r => r.with_context(|| format!("cannot open the lock `{}`", path.display()))?,
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(refuse());
    }
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another process".to_string()
            } else {
                format!("process {holder}")
            };
            bail!(
                "`{}` is being written by {who} (it holds `{}`); expected one `maskprep shards` \
                 per output folder: wait for it, or choose another `-o`",
                out.display(),
                path.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock `{}`", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()))
        .with_context(|| format!("cannot write the lock `{}`", path.display()))?;
    Ok(file)
}

/// Test hook: a file that a shards run creates once it holds its output
/// (lock or lock object), then waits (a minute at most) for its removal.
pub const LOCKED_ENV: &str = "MASKPREP_TEST_SHARDS_LOCKED";

fn locked_hook() {
    let Some(flag) = std::env::var_os(LOCKED_ENV).map(PathBuf::from) else {
        return;
    };
    if std::fs::write(&flag, b"locked").is_err() {
        return;
    }
    for _ in 0..600 {
        if !flag.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A store's stand-in for a lock: the object `.maskprep/lock` names the run
/// that writes the prefix. A store cannot refuse a second writer, but each
/// run checks, before every shard and before `index.json`, that the object
/// still names it: the run whose claim was taken over stops (exit 2)
/// before writing over the other's files.
struct Claim {
    path: PathBuf,
    out: PathBuf,
    body: Vec<u8>,
}

impl Claim {
    fn take(out: &Path, console: &Console) -> anyhow::Result<Self> {
        let path = out.join(STATE_DIR).join(LOCK_FILE);
        if let Ok(old) = store::read(&path) {
            console.note(&format!(
                "`{}` names {}: a run that stopped, or one still writing (one writer per \
                 prefix); this run takes the prefix over",
                path.display(),
                describe_claim(&old)
            ));
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let body = serde_json::json!({
            "run": format!("{host}-{}-{}", std::process::id(), now.as_nanos()),
            "host": host,
            "pid": std::process::id(),
            "started": now.as_secs(),
        });
        let body = serde_json::to_vec(&body).context("cannot serialise the lock object")?;
        store::put(&path, body.clone())
            .with_context(|| format!("cannot write the lock object `{}`", path.display()))?;
        Ok(Self {
            path,
            out: out.to_path_buf(),
            body,
        })
    }

    /// Fails when another run has taken the prefix over.
    fn check(&self) -> anyhow::Result<()> {
        match store::read(&self.path) {
            Ok(now) if now == self.body => Ok(()),
            now => bail!(
                "`{}` is being written by another run ({}) that started after this one; \
                 expected one `maskprep shards` per output prefix: this run stops before \
                 writing over its files",
                self.out.display(),
                match now {
                    Ok(b) => describe_claim(&b),
                    Err(_) => "its lock object was removed".to_string(),
                }
            ),
        }
    }

    /// Removes the lock object, if it still names this run.
    fn release(self) {
        if self.check().is_ok() {
            let _ = store::remove(&self.path);
        }
    }
}

/// A lock object's run, in words.
fn describe_claim(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let pid = v["pid"].as_u64().map_or("?".to_string(), |p| p.to_string());
    let host = v["host"].as_str().unwrap_or("?");
    format!("process {pid} on `{host}`")
}

fn record_path(out: &Path, name: &str) -> PathBuf {
    out.join(STATE_DIR).join(format!("{name}.json"))
}

/// The record of a shard that this plan would write identically, if its
/// file is there with the recorded size.
fn reuse(
    path: &Path,
    rec_path: &Path,
    digest: &str,
    plan: &Plan,
    shard: &ShardPlan,
) -> Option<ShardRecord> {
    let text = store::read(rec_path).ok()?;
    let rec: ShardRecord = serde_json::from_slice(&text).ok()?;
    let len = store::size(path).ok()?;
    let same = rec.format == RECORD_FORMAT && rec.plan == digest && len == rec.entry.bytes;
    if !same || rec.sources != source_hashes(plan, shard) {
        return None;
    }
    // The file itself, re-hashed: a same-length corruption is rewritten.
    let mut sha = Sha256::new();
    hash_file(path, &mut sha).ok()?;
    (hex(&sha.finalize()) == rec.entry.sha256).then_some(rec)
}

/// Adds a file's or an object's bytes to `sha`, streamed.
fn hash_file(path: &Path, sha: &mut Sha256) -> std::io::Result<()> {
    if let Some(content) = crate::decode::raster::content(path) {
        sha.update(content.map_err(std::io::Error::other)?);
        return Ok(());
    }
    store::read_chunks(path, |chunk| sha.update(chunk))
}

/// The content hash of each pair of a shard (mask bytes, then image
/// bytes), read in parallel; an unreadable file hashes to an empty string.
fn source_hashes(plan: &Plan, shard: &ShardPlan) -> Vec<String> {
    shard
        .sources
        .par_iter()
        .map(|&i| {
            let s = &plan.sources[i];
            let mut sha = Sha256::new();
            for p in [&s.mask, &s.image] {
                if hash_file(p, &mut sha).is_err() {
                    return String::new();
                }
                sha.update(b"\0");
            }
            hex(&sha.finalize())
        })
        .collect()
}

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
}

/// A pair, encoded or rejected.
type Pair = Result<Encoded, BadFile>;

/// Encodes a shard's pairs in parallel, a chunk at a time, and hands them
/// to `sink` in plan order; `sink` takes one chunk while the next encodes.
fn encode_in_order(
    ctx: &Ctx<'_>,
    plan: &Plan,
    shard: &ShardPlan,
    mut sink: impl FnMut(usize, Result<Encoded, BadFile>) -> anyhow::Result<()> + Send,
) -> anyhow::Result<()> {
    let split = &plan.splits[shard.split].0;
    let chunk = (4 * rayon::current_num_threads()).max(8);
    let encode_part = |part: &[usize]| -> Vec<Pair> {
        part.par_iter()
            .map(|&i| {
                WORKER.with(|w| encode::encode(ctx, &plan.sources[i], split, &mut w.borrow_mut()))
            })
            .collect()
    };
    let mut ready: Option<(&[usize], Vec<Pair>)> = None;
    let parts = shard.sources.chunks(chunk).map(Some).chain([None]);
    for part in parts {
        let prev = ready.take();
        let (sunk, next) = rayon::join(
            || -> anyhow::Result<()> {
                if let Some((p, done)) = prev {
                    for (&i, r) in p.iter().zip(done) {
                        sink(i, r)?;
                    }
                }
                Ok(())
            },
            || part.map(|p| (p, encode_part(p))),
        );
        sunk?;
        ready = next;
    }
    Ok(())
}

/// Bytes written through it, and their sha256.
struct Hashing<W> {
    inner: W,
    sha: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[allow(clippy::too_many_arguments)]
fn write_shard(
    cfg: &ShardsConfig,
    prep: &Prepared,
    plan: &Plan,
    shard: &ShardPlan,
    ctx: &Ctx<'_>,
    path: &Path,
    abort: &mut Abort,
    progress: &(dyn Fn() + Sync),
) -> anyhow::Result<ShardRecord> {
    let map = &prep.map;
    let c = map.num_classes();
    // Hashed before encoding: a source changed meanwhile fails the next check.
    let sources = source_hashes(plan, shard);
    let mut counts = Counts::new(c);
    let mut skipped = Vec::new();
    let mut pairs = 0u64;
    let mut samples = 0u64;
    let mut per_class = Vec::new();
    // Counts a pair once it is in the shard; keeps or rejects a bad one.
    let mut settle = |i: usize, r: Result<Encoded, BadFile>| -> anyhow::Result<Option<Encoded>> {
        progress();
        match r {
            Ok(e) => {
                let mask = plan.sources[i].mask.display().to_string();
                counts.add_mask(&e.hist, map, &mask, &mut per_class);
                pairs += 1;
                samples += e.samples.len() as u64;
                Ok(Some(e))
            }
            Err(b) if cfg.strict => Err(StrictStop::from(b).into()),
            Err(b) => {
                skipped.push(b);
                Ok(None)
            }
        }
    };
    let (bytes, sha) = match cfg.format {
        Format::Webdataset => write_tar(ctx, plan, shard, path, abort, &mut settle)?,
        Format::Safetensors => write_safetensors(ctx, plan, shard, map, path, abort, &mut settle)?,
    };
    let stats = stats_doc(prep, &shard.name, &counts, pairs + skipped.len() as u64);
    Ok(ShardRecord {
        format: RECORD_FORMAT.to_string(),
        plan: shard.digest.clone(),
        entry: ShardEntry {
            name: shard.name.clone(),
            samples,
            bytes,
            sha256: sha,
        },
        pairs,
        stats,
        skipped,
        sources,
    })
}

/// Writes a WebDataset tar shard of the pairs `settle` keeps; its size and
/// SHA-256.
fn write_tar(
    ctx: &Ctx<'_>,
    plan: &Plan,
    shard: &ShardPlan,
    path: &Path,
    abort: &mut Abort,
    settle: &mut (impl FnMut(usize, Result<Encoded, BadFile>) -> anyhow::Result<Option<Encoded>> + Send),
) -> anyhow::Result<(u64, String)> {
    let mut result = (0, String::new());
    write_owned(path, |w| -> anyhow::Result<()> {
        let mut hw = Hashing {
            inner: w,
            sha: Sha256::new(),
            bytes: 0,
        };
        encode_in_order(ctx, plan, shard, |i, r| {
            let Some(e) = settle(i, r)? else {
                return Ok(());
            };
            let ext = &plan.sources[i].image_ext;
            for s in &e.samples {
                let json = serde_json::to_vec(&s.info)?;
                wds::append_sample(&mut hw, &s.info.key, ext, &s.image, &json, &s.mask)?;
                abort.tick();
            }
            Ok(())
        })?;
        wds::finish(&mut hw)?;
        hw.flush()?;
        result = (hw.bytes, hex(&hw.sha.finalize()));
        Ok(())
    })?;
    Ok(result)
}

/// Writes a safetensors shard (`images`, `masks` and the samples in its
/// metadata) of the pairs `settle` keeps; its size and SHA-256.
fn write_safetensors(
    ctx: &Ctx<'_>,
    plan: &Plan,
    shard: &ShardPlan,
    map: &LabelMap,
    path: &Path,
    abort: &mut Abort,
    settle: &mut (impl FnMut(usize, Result<Encoded, BadFile>) -> anyhow::Result<Option<Encoded>> + Send),
) -> anyhow::Result<(u64, String)> {
    let c = map.num_classes();
    let dims = plan.sample_dims.unwrap_or(super::Dims {
        width: 1,
        height: 1,
    });
    let (w, h) = (dims.width as usize, dims.height as usize);
    let planned: usize = shard.samples;
    let mut images = Vec::with_capacity(planned * 3 * w * h);
    let mut masks = Vec::with_capacity(planned * c * w * h);
    let mut infos = Vec::with_capacity(planned);
    encode_in_order(ctx, plan, shard, |i, r| {
        let Some(e) = settle(i, r)? else {
            return Ok(());
        };
        for s in e.samples {
            images.extend_from_slice(&s.image);
            masks.extend_from_slice(&s.mask);
            infos.push(s.info);
            abort.tick();
        }
        Ok(())
    })?;
    let n = infos.len();
    let mut tensors = std::collections::BTreeMap::new();
    tensors.insert(
        "images".to_string(),
        TensorOut::u8(vec![n, 3, h, w], &images),
    );
    tensors.insert("masks".to_string(), TensorOut::u8(vec![n, c, h, w], &masks));
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("classes".to_string(), serde_json::to_string(map.classes())?);
    meta.insert("mask_layout".to_string(), MASK_LAYOUT.to_string());
    meta.insert("samples".to_string(), serde_json::to_string(&infos)?);
    let bytes = safetensors_bytes(&tensors, &meta);
    drop(tensors);
    drop((images, masks));
    write_owned_bytes(path, &bytes)?;
    Ok((bytes.len() as u64, hex(&Sha256::digest(&bytes))))
}

fn stats_doc(prep: &Prepared, what: &str, counts: &Counts, found: u64) -> StatsDoc {
    let meta = Meta {
        dataset: what.to_string(),
        partition: None,
        labels: prep.map.spec.clone(),
        labels_origin: prep.origin.clone(),
        rare_below: RARE_BELOW,
    };
    let files = Files {
        masks_found: found,
        ..Files::default()
    };
    StatsDoc::new(meta, counts, files, &prep.map)
}

fn build_manifest(
    cfg: &ShardsConfig,
    prep: &Prepared,
    plan: &Plan,
    counts: Vec<Counts>,
    pairs: Vec<u64>,
    entries: Vec<Vec<ShardEntry>>,
    skipped: Vec<BadFile>,
) -> Manifest {
    let map: &LabelMap = &prep.map;
    let names: Vec<String> = plan.splits.iter().map(|s| s.0.clone()).collect();
    let (split_report, mut warnings) = manifest::split_report(&names, &counts, map.classes());
    let unpaired = prep.dataset.images_without_masks.len();
    if unpaired > 0 {
        warnings.push(format!(
            "{unpaired} image(s) have no mask and are not in the shards"
        ));
    }
    let mut splits = std::collections::BTreeMap::new();
    for (s, ((name, fraction), (k, shards))) in plan
        .splits
        .iter()
        .zip(counts.iter().zip(entries))
        .enumerate()
    {
        let dataset = format!("{} [{name}]", cfg.dir.display());
        let found = plan.assignment.iter().filter(|&&a| a == s).count() as u64;
        splits.insert(
            name.clone(),
            SplitEntry {
                fraction: *fraction,
                pairs: pairs[s],
                samples: shards.iter().map(|e| e.samples).sum(),
                shards,
                stats: stats_doc(prep, &dataset, k, found),
            },
        );
    }
    let weights = splits
        .get(&names[0])
        .and_then(|s: &SplitEntry| manifest::loss_weights(&s.stats));
    Manifest {
        format: FORMAT.to_string(),
        maskprep_version: env!("CARGO_PKG_VERSION").to_string(),
        command: cfg.command.clone(),
        dataset: cfg.dir.display().to_string(),
        shard_format: cfg.format,
        geometry: cfg.geometry,
        sample_size: plan
            .sample_dims
            .filter(|_| cfg.format == Format::Safetensors),
        layout: manifest::layout(cfg.format),
        mask_layout: MASK_LAYOUT.to_string(),
        classes: manifest::classes(map),
        labels: map.spec.clone(),
        labels_origin: prep.origin.clone(),
        split: SplitSettings {
            seed: cfg.seed,
            stratify: plan.stratified,
            shuffle: cfg.shuffle,
        },
        splits,
        split_report,
        skipped,
        warnings,
        weights,
    }
}

/// Is `name` a temporary file of [`write_owned`] (`.NAME.tmp-PID`)?
fn is_temp(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Is `file` in folder `dir` a shard name this tool writes (`DIR-NNNNNN.EXT`)?
fn is_shard_name(dir: &str, file: &str) -> bool {
    let Some(rest) = file.strip_prefix(dir).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    let Some((num, ext)) = rest.split_once('.') else {
        return false;
    };
    num.len() == 6
        && num.bytes().all(|b| b.is_ascii_digit())
        && (ext == Format::Webdataset.ext() || ext == Format::Safetensors.ext())
}

/// Files directly in `dir` (none when it does not exist).
fn files_in(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    Ok(entries(dir)?
        .into_iter()
        .filter(|e| !e.2)
        .map(|(n, p, _)| (n, p))
        .collect())
}

/// Files and folders directly in `dir` (none when it does not exist).
fn entries(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf, bool)>> {
    match store::read_dir(dir) {
        Ok(v) => Ok(v),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot list `{}`", dir.display())),
    }
}

/// Subfolders of the output that may hold shards (all but the state folder).
fn split_dirs(out: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    Ok(entries(out)?
        .into_iter()
        .filter(|(n, _, d)| n != STATE_DIR && *d)
        .map(|(n, p, _)| (n, p))
        .collect())
}

/// Removes temporary files left by an interrupted run.
fn remove_temps(out: &Path) -> anyhow::Result<()> {
    let mut dirs = vec![out.to_path_buf()];
    dirs.extend(split_dirs(out)?.into_iter().map(|d| d.1));
    dirs.extend(split_dirs(&out.join(STATE_DIR))?.into_iter().map(|d| d.1));
    for d in dirs {
        for (name, path) in files_in(&d)? {
            if is_temp(&name) && path.is_file() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove `{}`", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Removes shards (and their records) that this plan does not list: left by
/// a run with other settings or more shards.
fn remove_stale(out: &Path, plan: &Plan) -> anyhow::Result<()> {
    let keep: std::collections::BTreeSet<&str> =
        plan.shards.iter().map(|s| s.name.as_str()).collect();
    for (dir, path) in split_dirs(out)? {
        for (file, p) in files_in(&path)? {
            let name = format!("{dir}/{file}");
            if is_shard_name(&dir, &file) && !keep.contains(name.as_str()) {
                store::remove(&p)
                    .with_context(|| format!("cannot remove stale shard `{}`", p.display()))?;
            }
        }
    }
    for (dir, path) in split_dirs(&out.join(STATE_DIR))? {
        for (file, p) in files_in(&path)? {
            let shard = file.strip_suffix(".json").unwrap_or("");
            if !keep.contains(format!("{dir}/{shard}").as_str()) {
                store::remove(&p).with_context(|| format!("cannot remove `{}`", p.display()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_own_file_names_only() {
        assert!(is_temp(".train-000001.tar.tmp-4242"));
        assert!(!is_temp("train-000001.tar"));
        assert!(!is_temp(".hidden.tmp-"));
        assert!(is_shard_name("train", "train-000001.tar"));
        assert!(is_shard_name("val", "val-000000.safetensors"));
        assert!(!is_shard_name("val", "train-000000.tar"));
        assert!(!is_shard_name("val", "val-01.tar"));
        assert!(!is_shard_name("val", "val-000000.tar.bak"));
    }
}

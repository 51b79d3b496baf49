//! Check stage: a dataset checked end to end: find the masks (and the
//! splits), resolve the label map, run the pass, build the document and
//! the sampling weights. The one copy that `check` and pipelines run;
//! nothing is written.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::doc::{self, CheckDoc, Meta};
use super::sampling::{self, SamplingDoc};
use super::splits::Splits;
use super::{Options, check};
use crate::dataset::{ExportOptions, prepare, prepare_splits};
use crate::output::Console;
use crate::source::Partition;

/// What to check.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The dataset (splits found from its layout); unused with `splits`.
    pub dir: &'a Path,
    /// Splits given as `(name, folder)`; empty: found from the layout.
    pub splits: &'a [(String, PathBuf)],
    pub labels: Option<&'a str>,
    pub exports: ExportOptions,
    pub options: Options,
    /// Compute the sampling weights.
    pub sampling: bool,
}

/// A checked dataset.
pub struct Collected {
    pub doc: CheckDoc,
    pub sampling: Option<SamplingDoc>,
}

/// Checks a dataset; says on the console where the masks and splits are.
pub fn collect(req: &Request<'_>, console: &Console) -> anyhow::Result<Collected> {
    let what = if req.splits.is_empty() {
        format!("`{}`", req.dir.display())
    } else {
        let list: Vec<String> = req.splits.iter().map(|(n, _)| format!("`{n}`")).collect();
        format!("the splits {}", list.join(", "))
    };
    let fail = || format!("cannot check {what}");
    let prep = if req.splits.is_empty() {
        prepare(req.dir, req.labels, &req.exports, Partition::WHOLE)
    } else {
        prepare_splits(req.splits, req.labels, &req.exports)
    }
    .with_context(fail)?;
    prep.announce(console);
    let splits = if req.splits.is_empty() {
        Splits::found(&prep.dataset)
    } else {
        let names: Vec<String> = req.splits.iter().map(|(n, _)| n.clone()).collect();
        Splits::given(&prep.dataset, &names)
    };
    console.note(&format!(
        "splits: {} ({})",
        splits.names.join(", "),
        splits.origin
    ));
    let mut opts = req.options;
    opts.keep_classes = req.sampling;
    opts.progress = console.progress();
    let checked = check(&prep.dataset, &prep.map, &splits, &opts);
    let meta = Meta {
        dataset: if req.splits.is_empty() {
            req.dir.display().to_string()
        } else {
            what.clone()
        },
        labels_origin: prep.origin.clone(),
        classes: prep.map.classes().to_vec(),
        connectivity: opts.connectivity.number(),
        min_object: opts.min_object,
        photos_hashed: opts.photos && prep.dataset.items.iter().any(|i| i.image.is_some()),
        splits_origin: splits.origin.clone(),
        size_bin_edges: doc::SIZE_EDGES.to_vec(),
    };
    let sampling = req
        .sampling
        .then(|| sampling::weights(&prep.dataset, &splits, &checked.facts, prep.map.classes()));
    let doc = doc::build(meta, &prep.dataset, &splits, &checked, &opts);
    Ok(Collected { doc, sampling })
}

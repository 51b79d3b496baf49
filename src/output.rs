//! Output: atomic writes (a temporary file in the destination folder, then
//! a rename, so a reader sees the old file or the new one, never half of
//! one), the one document emitter (JSON or table, stdout or file), the
//! per-image table writer, and the console every command talks through
//! (notes, warnings, one wording of problem lines, progress bars).

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use polars::prelude::{
    CsvWriter, DataFrame, ParquetCompression, ParquetWriter, PolarsResult, SerWriter,
};

/// Where and how a document is written.
#[derive(Debug, Clone)]
pub struct Output {
    pub json: bool,
    /// `None`: stdout.
    pub path: Option<PathBuf>,
}

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write `{path}`")]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes `path` atomically with `fill`, which writes the whole content.
pub fn write_atomic<E>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
) -> Result<(), anyhow::Error>
where
    E: Into<anyhow::Error>,
{
    let wrap = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(wrap)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let file = File::create(&tmp).map_err(wrap)?;
        let mut w = BufWriter::new(file);
        fill(&mut w).map_err(Into::into)?;
        let file = w.into_inner().map_err(|e| wrap(e.into_error()))?;
        file.sync_all().map_err(wrap)?;
        std::fs::rename(&tmp, path).map_err(wrap)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes bytes atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// Writes a document to its destination: `text` of it to stdout or, when
/// `out.path` is set, atomically to that file. The one emitter of every
/// command: JSON (pretty, newline-terminated) or the document's table.
pub fn emit<D: serde::Serialize>(
    doc: &D,
    out: &Output,
    table: impl FnOnce(&D) -> String,
) -> anyhow::Result<()> {
    let text = if out.json {
        let mut s = serde_json::to_string_pretty(doc)
            .map_err(|e| anyhow::anyhow!("cannot serialise the document: {e}"))?;
        s.push('\n');
        s
    } else {
        table(doc)
    };
    match &out.path {
        Some(p) => write_bytes(p, text.as_bytes()),
        None => to_stdout(text.as_bytes()),
    }
}

/// Writes to stdout and flushes (a closed pipe surfaces as `BrokenPipe`).
pub fn to_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

/// Where a command's messages go: notes and warnings on stderr unless
/// quiet; problem lines (files skipped) always, in one wording.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    pub quiet: bool,
}

impl Console {
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }

    /// `maskprep: MSG`, unless quiet.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("maskprep: {msg}");
        }
    }

    /// `maskprep: warning: MSG`, unless quiet.
    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            eprintln!("maskprep: warning: {msg}");
        }
    }

    /// A file left out of the job: `maskprep: skipped `PATH`: REASON`
    /// (always shown: the exit code says some files were skipped).
    pub fn skipped(&self, path: &str, reason: &str) {
        eprintln!("{}", problem_line(path, reason));
    }

    /// A warning that must be seen even when quiet (a doubtful reading of
    /// the data): `maskprep: warning: MSG`, always shown.
    pub fn alert(&self, msg: &str) {
        eprintln!("maskprep: warning: {msg}");
    }

    /// A problem with the input that is not one skipped file (an unpaired
    /// file, a difference found): `maskprep: MSG`, always shown.
    pub fn problem(&self, msg: &str) {
        eprintln!("maskprep: {msg}");
    }

    /// Whether to draw progress bars: not quiet and stderr is a terminal.
    pub fn progress(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }
}

/// The one wording of a skipped file.
pub fn problem_line(path: &str, reason: &str) -> String {
    format!("maskprep: skipped `{path}`: {reason}")
}

/// An error and its causes on one line, `a: b: c` (for per-file reasons).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// A progress bar on stderr, drawn only when `enabled`.
pub fn progress(len: u64, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {pos}/{len} masks [{bar:30}] {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Is this error a closed stdout (`maskprep stats | head`)? Not an error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes a data frame to `path` as CSV or Parquet (by the extension),
/// atomically; `what` names it in messages. The frame is built only once
/// the file name has been checked.
pub fn write_table(
    path: &Path,
    what: &str,
    build: impl FnOnce() -> PolarsResult<DataFrame>,
) -> anyhow::Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "csv" && ext != "parquet" {
        bail!(
            "cannot write the {what} to `{}`: expected a `.csv` or `.parquet` file name",
            path.display()
        );
    }
    let mut df =
        build().map_err(|e| anyhow::anyhow!(e).context(format!("cannot build the {what}")))?;
    write_atomic(path, |w| -> anyhow::Result<()> {
        if ext == "csv" {
            CsvWriter::new(w).finish(&mut df)?;
        } else {
            ParquetWriter::new(w)
                .with_compression(ParquetCompression::Uncompressed)
                .finish(&mut df)?;
        }
        Ok(())
    })
}

//! Object stores: `s3://`, `gs://` and `az://` locations wherever a folder
//! or a file is read or written.
//!
//! A location is a `Path` either way. A local one goes to `std::fs`
//! unchanged; a URL is kept as typed (`s3://bucket/data/train`), so joins,
//! file names and extensions work on it as on a folder, and messages show
//! it as the user wrote it. Each function here answers for both.
//!
//! - Listing: the store pages it; it is sorted here by key, so a partition
//!   takes every N-th key as it does for a folder. The first whole listing
//!   of a folder is kept for the run: layout discovery and the walk ask
//!   the store once. A key that is no usable path (an empty, `.` or `..`
//!   segment, a control character) is taken out of each listing page
//!   before the store client parses it, and kept aside ([`odd_keys`]), so
//!   one odd key never stops a job.
//! - Reading: objects fetched by the worker thread that decodes them
//!   (masks header first, in ranges: [`read_range`]), which blocks on one
//!   shared runtime. A store-backed
//!   command runs with [`fetch_workers`] workers, so that many objects are
//!   in flight and memory stays flat in the number of objects. Transient
//!   failures are retried with exponential backoff by the store client.
//! - Writing: each object whole (one put, or a multipart upload from a
//!   local temporary file for large ones), so a reader never sees half of
//!   one. A store has no rename: what must be written last (a shard set's
//!   `index.json`) is written last by its caller.
//!
//! Credentials and endpoints come the standard way: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` (with
//! `AWS_ALLOW_HTTP=true` for a plain-http endpoint), instance roles;
//! `GOOGLE_APPLICATION_CREDENTIALS`; `AZURE_STORAGE_ACCOUNT_NAME` and
//! `AZURE_STORAGE_ACCOUNT_KEY`. Without the `store` feature a URL is
//! refused with a message saying how to build with it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// URL schemes read as object-store locations.
pub const SCHEMES: &[&str] = &["s3://", "gs://", "az://"];

/// Test hook: a file that a listing creates, then waits for its removal
/// (see `tests/store.rs`).
pub const LISTED_ENV: &str = "MASKPREP_TEST_STORE_LISTED";

/// Objects fetched at once by default from a store (`--fetch`).
pub const DEFAULT_FETCH: usize = 16;

static FETCH: AtomicUsize = AtomicUsize::new(DEFAULT_FETCH);

/// Sets how many objects a store-backed command fetches at once.
pub fn set_fetch(n: usize) {
    FETCH.store(n.max(1), Ordering::Relaxed);
}

/// Is `path` an object-store URL?
pub fn is_url(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|s| SCHEMES.iter().any(|p| s.starts_with(p)))
}

/// Workers for a command whose inputs are `inputs`: `--fetch` of them when
/// one is a URL (each blocks on its own fetch), else `None` (the global
/// pool as configured).
fn fetch_workers(inputs: &[&Path]) -> Option<usize> {
    let n = FETCH.load(Ordering::Relaxed);
    (inputs.iter().any(|p| is_url(p)) && n > rayon::current_num_threads()).then_some(n)
}

/// Runs `f` in a pool of [`fetch_workers`] threads when an input is a
/// URL, else in the current pool.
pub fn with_workers<T: Send>(
    inputs: &[&Path],
    f: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    match fetch_workers(inputs) {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start {n} fetch workers: {e}"))?
            .install(f),
        None => f(),
    }
}

/// Is `path` a folder (a local directory, or a prefix holding objects)?
/// Errors (a missing bucket, refused credentials) read as "no".
pub fn is_dir(path: &Path) -> bool {
    dir_status(path).unwrap_or(false)
}

/// Like [`is_dir`], but a store's error is returned (for the first look at
/// a source, where a missing bucket or refused credentials must be said).
pub fn dir_status(path: &Path) -> io::Result<bool> {
    if is_url(path) {
        remote::is_dir(path)
    } else {
        Ok(path.is_dir())
    }
}

/// Is `path` a file (or an object)?
pub fn is_file(path: &Path) -> bool {
    if is_url(path) {
        remote::size(path).is_ok()
    } else {
        path.is_file()
    }
}

/// Size in bytes of a file or an object.
pub fn size(path: &Path) -> io::Result<u64> {
    if is_url(path) {
        remote::size(path)
    } else {
        std::fs::metadata(path).map(|m| m.len())
    }
}

/// The whole content of a file or an object.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    if is_url(path) {
        remote::read(path)
    } else {
        std::fs::read(path)
    }
}

/// Bytes `start..end` of a file or an object (fewer where it ends first).
pub fn read_range(path: &Path, start: u64, end: u64) -> io::Result<Vec<u8>> {
    if end <= start {
        return Ok(Vec::new());
    }
    if is_url(path) {
        return remote::read_range(path, start, end);
    }
    use io::{Read, Seek};
    let mut f = std::fs::File::open(path)?;
    f.seek(io::SeekFrom::Start(start))?;
    let mut out = Vec::new();
    f.take(end - start).read_to_end(&mut out)?;
    Ok(out)
}

/// Calls `f` on the content of a file or an object, a chunk at a time
/// (large shards are hashed without being held in memory).
pub fn read_chunks(path: &Path, mut f: impl FnMut(&[u8]) + Send) -> io::Result<()> {
    if is_url(path) {
        return remote::read_chunks(path, &mut f);
    }
    use io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(()),
            n => f(&buf[..n]),
        }
    }
}

/// A file opened for buffered reading, or an object's bytes: what image
/// and PNG decoders read from.
pub enum Reader {
    File(io::BufReader<std::fs::File>),
    Bytes(io::Cursor<Vec<u8>>),
}

/// Opens a file, or fetches an object, for reading.
pub fn open(path: &Path) -> io::Result<Reader> {
    if is_url(path) {
        Ok(Reader::Bytes(io::Cursor::new(remote::read(path)?)))
    } else {
        Ok(Reader::File(io::BufReader::new(std::fs::File::open(path)?)))
    }
}

impl io::Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::File(r) => r.read(buf),
            Self::Bytes(r) => r.read(buf),
        }
    }
}

impl io::BufRead for Reader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Self::File(r) => r.fill_buf(),
            Self::Bytes(r) => r.fill_buf(),
        }
    }
    fn consume(&mut self, n: usize) {
        match self {
            Self::File(r) => r.consume(n),
            Self::Bytes(r) => r.consume(n),
        }
    }
}

impl io::Seek for Reader {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        match self {
            Self::File(r) => r.seek(pos),
            Self::Bytes(r) => r.seek(pos),
        }
    }
}

/// Bytes of an object fetched to read its header (an image's size, a
/// mask's bound).
pub const HEAD_BYTES: u64 = 256 << 10;

/// Reads a header with `parse`, which sees the file's reader: of an object
/// only its first 256 KiB are fetched, and the whole object only when
/// `parse` fails on them (a JPEG's size may follow large metadata).
/// `on_io` turns a read error into `parse`'s error type.
pub fn header<T, E>(
    path: &Path,
    parse: impl Fn(Reader) -> Result<T, E>,
    on_io: impl Fn(io::Error) -> E,
) -> Result<T, E> {
    if !is_url(path) {
        return parse(open(path).map_err(&on_io)?);
    }
    let len = remote::size(path).map_err(&on_io)?;
    let head = remote::read_range(path, 0, len.min(HEAD_BYTES)).map_err(&on_io)?;
    match parse(Reader::Bytes(io::Cursor::new(head))) {
        Err(_) if len > HEAD_BYTES => parse(open(path).map_err(&on_io)?),
        r => r,
    }
}

/// The content of a file or an object, as UTF-8 text.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    if is_url(path) {
        String::from_utf8(remote::read(path)?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    } else {
        std::fs::read_to_string(path)
    }
}

/// The subfolders directly under `dir`, sorted; none when it cannot be read.
pub fn subdirs(dir: &Path) -> Vec<PathBuf> {
    if is_url(dir) {
        return remote::children(dir)
            .map(|(dirs, _)| dirs)
            .unwrap_or_default();
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// What is directly under `dir`: (name, path, is a folder), sorted by
/// name. A folder that does not exist is an error of kind `NotFound`; a
/// prefix with nothing under it is empty.
pub fn read_dir(dir: &Path) -> io::Result<Vec<(String, PathBuf, bool)>> {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if is_url(dir) {
        let (dirs, files) = remote::children(dir)?;
        out.extend(dirs.into_iter().map(|p| (name(&p), p, true)));
        out.extend(files.into_iter().map(|p| (name(&p), p, false)));
    } else {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let path = e.path();
            out.push((name(&path), path.clone(), path.is_dir()));
        }
    }
    out.sort();
    Ok(out)
}

/// One entry of [`walk`]: a file or folder and its depth below the root.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub depth: usize,
    pub is_dir: bool,
}

impl Entry {
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Files and folders under `root` (not `root` itself), at most `max_depth`
/// levels down, depth first in file-name order; unreadable entries are
/// left out. For a store, the folders are the prefixes of the keys.
pub fn walk(root: &Path, max_depth: usize) -> Vec<Entry> {
    if is_url(root) {
        return remote::walk(root, max_depth).unwrap_or_default();
    }
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .max_depth(max_depth)
        .sort_by_file_name()
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| Entry {
            is_dir: e.file_type().is_dir(),
            depth: e.depth(),
            path: e.into_path(),
        })
        .collect()
}

/// [`walk`] over a store's sorted keys under `base`: each key a file, each
/// of its prefixes a folder (listed once, before the first key under it).
#[cfg_attr(not(feature = "store"), allow(dead_code))]
fn walk_keys(base: &str, keys: &[(String, u64)], max_depth: usize) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut last: Vec<&str> = Vec::new();
    for (key, _) in keys {
        let parts: Vec<&str> = key.split('/').collect();
        // Folders not yet seen on the way down to this key (the keys under
        // one prefix are contiguous in sorted order).
        let common = last.iter().zip(&parts).take_while(|(a, b)| a == b).count();
        for d in common..parts.len() - 1 {
            if d < max_depth {
                out.push(Entry {
                    path: PathBuf::from(format!("{base}/{}", parts[..=d].join("/"))),
                    depth: d + 1,
                    is_dir: true,
                });
            }
        }
        if parts.len() <= max_depth {
            out.push(Entry {
                path: PathBuf::from(format!("{base}/{key}")),
                depth: parts.len(),
                is_dir: false,
            });
        }
        last = parts;
        last.pop();
    }
    out
}

/// Every object under the prefix `dir` as (key relative to `dir`, size),
/// sorted by key. For URLs only.
pub fn list(dir: &Path) -> io::Result<Vec<(String, u64)>> {
    remote::list(dir).map(|l| l.entries.clone())
}

/// Keys under the prefix `dir` that are no usable path (an empty, `.` or
/// `..` segment, a control character), relative to `dir` and sorted: left
/// out of [`list`], for the caller to report. For URLs only.
pub fn odd_keys(dir: &Path) -> io::Result<Vec<String>> {
    remote::list(dir).map(|l| l.odd.clone())
}

/// Can `key` (relative to a bucket) be read back under the same name?
/// Keys with an empty, `.` or `..` segment, a leading `/` or a control
/// character cannot (the store client refuses or rewrites them).
#[cfg_attr(not(feature = "store"), allow(dead_code))]
fn usable_key(key: &str) -> bool {
    !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty() && seg != "." && seg != ".." && !seg.chars().any(char::is_control)
        })
}

/// A file to read locally: the file itself, or an object's temporary
/// local copy (removed when this is dropped).
pub struct LocalCopy {
    pub path: PathBuf,
    temporary: bool,
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `path` itself when local; an object is streamed into a temporary file
/// (large shards are read twice, never held in memory).
pub fn local_copy(path: &Path) -> io::Result<LocalCopy> {
    if !is_url(path) {
        return Ok(LocalCopy {
            path: path.to_path_buf(),
            temporary: false,
        });
    }
    let (tmp, file) = crate::output::create_temp(&std::env::temp_dir(), "maskprep-copy")?;
    let copy = LocalCopy {
        path: tmp,
        temporary: true,
    };
    remote::download(path, file)?;
    Ok(copy)
}

/// Writes `bytes` to an object, whole.
pub fn put(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
    remote::put(path, bytes)
}

/// Uploads the local file `from` to the object `to`, whole.
pub fn put_file(from: &Path, to: &Path) -> io::Result<()> {
    remote::put_file(from, to)
}

/// Moves a file, or an object within one store (a copy, then a delete).
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    match (is_url(from), is_url(to)) {
        (false, false) => std::fs::rename(from, to),
        (true, true) => remote::rename(from, to),
        _ => Err(io::Error::other(format!(
            "cannot move `{}` to `{}`: expected both in one store, or both local",
            from.display(),
            to.display()
        ))),
    }
}

/// Removes a file or an object; one that is not there is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    let r = if is_url(path) {
        remote::delete(path)
    } else {
        std::fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

#[cfg(feature = "store")]
mod remote {
    use std::future::Future;
    use std::io::{self, Read};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::Duration;

    use futures::TryStreamExt;
    use object_store::client::{
        HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService,
        ReqwestConnector,
    };
    use object_store::path::Path as Key;
    use object_store::{
        BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
        WriteMultipart,
    };

    /// Objects larger than this are uploaded in parts.
    const PART: usize = 16 << 20;

    /// A whole listing of one prefix, kept for the run.
    pub struct Listing {
        /// The prefix's URL with a trailing `/`.
        pub root: String,
        pub entries: Vec<(String, u64)>,
        /// Keys left out: no usable path (see [`super::usable_key`]).
        pub odd: Vec<String>,
    }

    /// Keys taken out of listing pages, for [`list`] to pick up.
    type Odd = Arc<Mutex<Vec<String>>>;

    /// A bucket's store and the odd keys its listings met.
    type Stores = Mutex<Vec<(String, Arc<dyn ObjectStore>, Odd)>>;

    fn stores() -> &'static Stores {
        static S: OnceLock<Stores> = OnceLock::new();
        S.get_or_init(|| Mutex::new(Vec::new()))
    }

    fn listings() -> &'static Mutex<Vec<Arc<Listing>>> {
        static L: OnceLock<Mutex<Vec<Arc<Listing>>>> = OnceLock::new();
        L.get_or_init(|| Mutex::new(Vec::new()))
    }

    fn runtime() -> io::Result<&'static tokio::runtime::Runtime> {
        static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("maskprep-store")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| io::Error::other(format!("cannot start the object-store runtime: {e}")))
    }

    fn block<T>(f: impl Future<Output = T>) -> io::Result<T> {
        Ok(runtime()?.block_on(f))
    }

    fn io_err(url: &str, e: object_store::Error) -> io::Error {
        let kind = match e {
            object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, format!("`{url}`: {e}"))
    }

    /// `s3://bucket/a/b` → ("s3://bucket", "a/b").
    fn split(url: &str) -> (&str, &str) {
        let scheme_end = url.find("://").map_or(0, |i| i + 3);
        match url[scheme_end..].find('/') {
            Some(i) => (&url[..scheme_end + i], &url[scheme_end + i + 1..]),
            None => (url, ""),
        }
    }

    fn url_of(path: &Path) -> io::Result<String> {
        let s = path
            .to_str()
            .ok_or_else(|| io::Error::other("an object-store URL must be UTF-8"))?;
        Ok(s.trim_end_matches('/').to_string())
    }

    fn retry() -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(8),
                base: 2.0,
            },
            max_retries: 5,
            retry_timeout: Duration::from_secs(60),
        }
    }

    fn build(bucket_url: &str, odd: &Odd) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
        let http = Filtering {
            odd: Arc::clone(odd),
        };
        Ok(if bucket_url.starts_with("s3://") {
            Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(bucket_url)
                    .with_retry(retry())
                    .with_http_connector(http)
                    .build()?,
            )
        } else if bucket_url.starts_with("gs://") {
            Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(bucket_url)
                    .with_retry(retry())
                    .with_http_connector(http)
                    .build()?,
            )
        } else {
            Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(bucket_url)
                    .with_retry(retry())
                    .with_http_connector(http)
                    .build()?,
            )
        })
    }

    /// The store of `url`, the object key in it, and its odd keys.
    fn open_odd(url: &str) -> io::Result<(Arc<dyn ObjectStore>, Key, Odd)> {
        let (bucket, key) = split(url);
        let key = Key::parse(key).map_err(|e| io::Error::other(format!("`{url}`: {e}")))?;
        let mut stores = stores().lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, s, odd)) = stores.iter().find(|(b, _, _)| b == bucket) {
            return Ok((Arc::clone(s), key, Arc::clone(odd)));
        }
        let odd = Odd::default();
        let s = build(bucket, &odd).map_err(|e| io_err(url, e))?;
        stores.push((bucket.to_string(), Arc::clone(&s), Arc::clone(&odd)));
        Ok((s, key, odd))
    }

    /// The store of `url` and the object key in it.
    fn open(url: &str) -> io::Result<(Arc<dyn ObjectStore>, Key)> {
        open_odd(url).map(|(s, k, _)| (s, k))
    }

    /// The HTTP client of every store: the default one, with the odd keys
    /// taken out of listing responses (S3 and GCS `<Contents><Key>`, Azure
    /// `<Blob><Name>`) before the store client parses them, which would
    /// fail the whole listing on one of them.
    #[derive(Debug)]
    struct Filtering {
        odd: Odd,
    }

    impl HttpConnector for Filtering {
        fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
            let inner = ReqwestConnector::default().connect(options)?;
            Ok(HttpClient::new(FilteringService {
                inner,
                odd: Arc::clone(&self.odd),
            }))
        }
    }

    #[derive(Debug)]
    struct FilteringService {
        inner: HttpClient,
        odd: Odd,
    }

    #[async_trait::async_trait]
    impl HttpService for FilteringService {
        async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
            let listing = req.method().as_str() == "GET"
                && req
                    .uri()
                    .query()
                    .is_some_and(|q| q.split('&').any(|p| p == "list-type=2" || p == "comp=list"));
            let response = self.inner.execute(req).await?;
            if !listing || !response.status().is_success() {
                return Ok(response);
            }
            let (mut parts, body) = response.into_parts();
            let bytes = body.bytes().await?;
            let Some((kept, odd)) = filter_listing(&bytes) else {
                return Ok(HttpResponse::from_parts(parts, bytes.into()));
            };
            self.odd
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(odd);
            parts.headers.remove("content-length");
            Ok(HttpResponse::from_parts(parts, kept.into()))
        }
    }

    /// A listing response without the entries whose key is no usable path
    /// (returned apart), without folder markers (`dir/` objects, which are
    /// no data) and without prefixes no path can name (a delimited
    /// listing's `odd//`); `None` when it has none of them.
    pub(super) fn filter_listing(xml: &[u8]) -> Option<(Vec<u8>, Vec<String>)> {
        let mut odd = Vec::new();
        let mut page = xml.to_vec();
        let mut changed = false;
        // S3 and GCS list `<Contents><Key>`, Azure `<Blob><Name>`; their
        // prefixes `<CommonPrefixes><Prefix>` and `<BlobPrefix><Name>`.
        for (block, field, object) in [
            (&b"Contents"[..], &b"Key"[..], true),
            (b"Blob", b"Name", true),
            (b"CommonPrefixes", b"Prefix", false),
            (b"BlobPrefix", b"Name", false),
        ] {
            if let Some(kept) = filter_entries(&page, block, field, object, &mut odd) {
                page = kept;
                changed = true;
            }
        }
        changed.then_some((page, odd))
    }

    /// One kind of entry of [`filter_listing`]: objects (odd keys recorded
    /// in `odd`, folder markers dropped) or prefixes (odd ones dropped).
    fn filter_entries(
        xml: &[u8],
        block: &[u8],
        field: &[u8],
        object: bool,
        odd: &mut Vec<String>,
    ) -> Option<Vec<u8>> {
        let open = [b"<", block, b">"].concat();
        let close = [b"</", block, b">"].concat();
        let mut out = Vec::with_capacity(xml.len());
        let mut changed = false;
        let mut at = 0;
        while let Some(i) = find(&xml[at..], &open) {
            let start = at + i;
            let Some(len) = find(&xml[start..], &close) else {
                break;
            };
            let end = start + len + close.len();
            out.extend_from_slice(&xml[at..start]);
            let name = entry_name(&xml[start..end], field);
            let folder = name.as_deref().and_then(|n| n.strip_suffix('/'));
            let keep =
                match (object, &name, folder) {
                    // A folder marker (`dir/`) is no data; a prefix is kept
                    // when a path can name it.
                    (_, _, Some(dir)) => !object && super::usable_key(dir),
                    (true, Some(n), None) if super::usable_key(n) => true,
                    (true, n, None) => {
                        odd.push(n.clone().unwrap_or_else(|| {
                            String::from_utf8_lossy(&xml[start..end]).into_owned()
                        }));
                        false
                    }
                    (false, _, None) => false,
                };
            if keep {
                out.extend_from_slice(&xml[start..end]);
            } else {
                changed = true;
            }
            at = end;
        }
        out.extend_from_slice(&xml[at..]);
        changed.then_some(out)
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// The unescaped text of `<field>` in a listing entry; `None` when it
    /// has none or it does not decode.
    fn entry_name(entry: &[u8], field: &[u8]) -> Option<String> {
        let open = [b"<", field, b">"].concat();
        let close = [b"</", field, b">"].concat();
        let from = find(entry, &open)? + open.len();
        let len = find(&entry[from..], &close)?;
        let text = std::str::from_utf8(&entry[from..from + len]).ok()?;
        unescape(text)
    }

    /// XML character references and the five named entities.
    fn unescape(text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            let end = rest[i..].find(';')? + i;
            let name = &rest[i + 1..end];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => name.strip_prefix('#')?.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            out.push(c);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    /// The kept listing covering `url`, and `url`'s key relative to it.
    fn cached(url: &str) -> Option<(Arc<Listing>, String)> {
        let l = listings().lock().unwrap_or_else(|e| e.into_inner());
        l.iter().find_map(|listing| {
            let root = listing.root.trim_end_matches('/');
            if url == root {
                Some((Arc::clone(listing), String::new()))
            } else {
                url.strip_prefix(&listing.root)
                    .map(|rel| (Arc::clone(listing), rel.to_string()))
            }
        })
    }

    /// Drops kept listings that `url` (just written or removed) falls under.
    fn forget(url: &str) {
        let mut l = listings().lock().unwrap_or_else(|e| e.into_inner());
        l.retain(|listing| !url.starts_with(&listing.root));
    }

    /// Every object under `dir`, sorted by key (paged by the store).
    pub fn list(dir: &Path) -> io::Result<Arc<Listing>> {
        let url = url_of(dir)?;
        if let Some((l, rel)) = cached(&url) {
            if rel.is_empty() {
                return Ok(l);
            }
            // A folder inside a kept listing: its part of it.
            let p = format!("{rel}/");
            let from = l.entries.partition_point(|(k, _)| k.as_str() < p.as_str());
            let entries = l.entries[from..]
                .iter()
                .take_while(|(k, _)| k.starts_with(&p))
                .map(|(k, s)| (k[p.len()..].to_string(), *s))
                .collect();
            let odd = l
                .odd
                .iter()
                .filter_map(|k| k.strip_prefix(&p).map(str::to_string))
                .collect();
            return Ok(Arc::new(Listing {
                root: format!("{url}/"),
                entries,
                odd,
            }));
        }
        let (store, key, odd) = open_odd(&url)?;
        let prefix = (!key.as_ref().is_empty()).then_some(&key);
        let metas: Vec<object_store::ObjectMeta> =
            block(store.list(prefix).try_collect())?.map_err(|e| io_err(&url, e))?;
        let root = format!("{url}/");
        let strip = if key.as_ref().is_empty() {
            String::new()
        } else {
            format!("{}/", key.as_ref())
        };
        let mut entries: Vec<(String, u64)> = metas
            .into_iter()
            .filter_map(|m| {
                let k = m.location.as_ref();
                k.strip_prefix(&strip)
                    .filter(|r| !r.is_empty())
                    .map(|r| (r.to_string(), m.size))
            })
            .collect();
        entries.sort();
        // The odd keys met under this prefix (by this listing or another).
        let mut odd: Vec<String> = odd
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|k| k.strip_prefix(&strip).map(str::to_string))
            .collect();
        odd.sort();
        odd.dedup();
        let listing = Arc::new(Listing { root, entries, odd });
        listings()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&listing));
        listed_hook();
        Ok(listing)
    }

    /// The test hook of [`super::LISTED_ENV`]: after the first whole
    /// listing, create the file it names and wait (a minute at most) until
    /// the test removes it, so that an object can vanish between list and
    /// fetch.
    fn listed_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        let Some(flag) = std::env::var_os(super::LISTED_ENV) else {
            return;
        };
        let mut first = false;
        ONCE.call_once(|| first = true);
        if !first {
            return;
        }
        let flag = PathBuf::from(flag);
        if std::fs::write(&flag, b"listed").is_err() {
            return;
        }
        for _ in 0..600 {
            if !flag.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn is_dir(path: &Path) -> io::Result<bool> {
        let url = url_of(path)?;
        if let Some((l, rel)) = cached(&url) {
            if rel.is_empty() {
                return Ok(!l.entries.is_empty());
            }
            let p = format!("{rel}/");
            let i = l.entries.partition_point(|(k, _)| k.as_str() < p.as_str());
            return Ok(l.entries.get(i).is_some_and(|(k, _)| k.starts_with(&p)));
        }
        let (store, key) = open(&url)?;
        let r = block(store.list_with_delimiter(Some(&key)))?.map_err(|e| io_err(&url, e))?;
        Ok(!r.objects.is_empty() || !r.common_prefixes.is_empty())
    }

    pub fn size(path: &Path) -> io::Result<u64> {
        let url = url_of(path)?;
        if let Some((l, rel)) = cached(&url)
            && !rel.is_empty()
        {
            return match l.entries.binary_search_by(|(k, _)| k.as_str().cmp(&rel)) {
                Ok(i) => Ok(l.entries[i].1),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("`{url}`: no such object"),
                )),
            };
        }
        let (store, key) = open(&url)?;
        let meta = block(store.head(&key))?.map_err(|e| io_err(&url, e))?;
        Ok(meta.size)
    }

    pub fn read(path: &Path) -> io::Result<Vec<u8>> {
        let url = url_of(path)?;
        let (store, key) = open(&url)?;
        let bytes =
            block(async { store.get(&key).await?.bytes().await })?.map_err(|e| io_err(&url, e))?;
        Ok(bytes.to_vec())
    }

    /// Bytes `start..end` of an object (`end` at most its size).
    pub fn read_range(path: &Path, start: u64, end: u64) -> io::Result<Vec<u8>> {
        if end <= start {
            return Ok(Vec::new());
        }
        let url = url_of(path)?;
        let (store, key) = open(&url)?;
        let bytes = block(store.get_range(&key, start..end))?.map_err(|e| io_err(&url, e))?;
        Ok(bytes.into())
    }

    /// Streams an object to `f`, chunk by chunk as the store sends it.
    pub fn read_chunks(path: &Path, f: &mut (dyn FnMut(&[u8]) + Send)) -> io::Result<()> {
        let url = url_of(path)?;
        let (store, key) = open(&url)?;
        block(async {
            let mut stream = store.get(&key).await?.into_stream();
            while let Some(chunk) = stream.try_next().await? {
                f(&chunk);
            }
            Ok(())
        })?
        .map_err(|e| io_err(&url, e))
    }

    /// (subfolders, files) directly under `dir`, each sorted.
    pub fn children(dir: &Path) -> io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
        let url = url_of(dir)?;
        if cached(&url).is_some() {
            // From the kept listing: no request.
            let l = list(dir)?;
            let (mut dirs, mut files): (Vec<PathBuf>, Vec<PathBuf>) = (Vec::new(), Vec::new());
            for (key, _) in &l.entries {
                match key.split_once('/') {
                    Some((d, _)) => {
                        let p = PathBuf::from(format!("{url}/{d}"));
                        if dirs.last() != Some(&p) {
                            dirs.push(p);
                        }
                    }
                    None => files.push(PathBuf::from(format!("{url}/{key}"))),
                }
            }
            dirs.sort();
            dirs.dedup();
            files.sort();
            return Ok((dirs, files));
        }
        let (store, key) = open(&url)?;
        let prefix = (!key.as_ref().is_empty()).then_some(&key);
        let r = block(store.list_with_delimiter(prefix))?.map_err(|e| io_err(&url, e))?;
        let under = |k: &Key| {
            let name = k.filename().unwrap_or_default();
            PathBuf::from(format!("{url}/{name}"))
        };
        let mut dirs: Vec<PathBuf> = r.common_prefixes.iter().map(under).collect();
        let mut files: Vec<PathBuf> = r.objects.iter().map(|m| under(&m.location)).collect();
        dirs.sort();
        files.sort();
        Ok((dirs, files))
    }

    pub fn walk(root: &Path, max_depth: usize) -> io::Result<Vec<super::Entry>> {
        let listing = list(root)?;
        let base = listing.root.trim_end_matches('/');
        Ok(super::walk_keys(base, &listing.entries, max_depth))
    }

    pub fn put(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
        let url = url_of(path)?;
        let (store, key) = open(&url)?;
        forget(&url);
        block(store.put(&key, PutPayload::from(bytes)))?.map_err(|e| io_err(&url, e))?;
        Ok(())
    }

    pub fn put_file(from: &Path, to: &Path) -> io::Result<()> {
        let len = std::fs::metadata(from)?.len();
        if len <= PART as u64 {
            return put(to, std::fs::read(from)?);
        }
        let url = url_of(to)?;
        let (store, key) = open(&url)?;
        forget(&url);
        let mut file = std::fs::File::open(from)?;
        block(async {
            let upload = store.put_multipart(&key).await?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut buf = vec![0u8; PART];
            loop {
                let n =
                    read_full(&mut file, &mut buf).map_err(|e| object_store::Error::Generic {
                        store: "local",
                        source: Box::new(e),
                    })?;
                if n == 0 {
                    break;
                }
                w.wait_for_capacity(4).await?;
                w.write(&buf[..n]);
            }
            w.finish().await
        })?
        .map_err(|e| io_err(&url, e))?;
        Ok(())
    }

    fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    }

    pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
        let (a, b) = (url_of(from)?, url_of(to)?);
        if split(&a).0 != split(&b).0 {
            return Err(io::Error::other(format!(
                "cannot move `{a}` to `{b}`: expected both in one bucket"
            )));
        }
        let (store, from_key) = open(&a)?;
        let (_, to_key) = open(&b)?;
        forget(&a);
        forget(&b);
        block(store.rename(&from_key, &to_key))?.map_err(|e| io_err(&a, e))
    }

    pub fn download(path: &Path, to: std::fs::File) -> io::Result<()> {
        use std::io::Write;
        let url = url_of(path)?;
        let (store, key) = open(&url)?;
        let mut file = std::io::BufWriter::new(to);
        block(async {
            let mut stream = store.get(&key).await?.into_stream();
            while let Some(chunk) = stream.try_next().await? {
                file.write_all(&chunk)
                    .map_err(|e| object_store::Error::Generic {
                        store: "local",
                        source: Box::new(e),
                    })?;
            }
            Ok(())
        })?
        .map_err(|e| io_err(&url, e))?;
        file.flush()
    }

    pub fn delete(path: &Path) -> io::Result<()> {
        let url = url_of(path)?;
        let (store, key) = open(&url)?;
        forget(&url);
        block(store.delete(&key))?.map_err(|e| io_err(&url, e))
    }

    #[cfg(test)]
    mod tests {
        use super::split;

        #[test]
        fn odd_keys_and_folder_markers_are_taken_out_of_a_listing_page() {
            let page = "<R><Contents><Key>a/ok.png</Key><Size>1</Size></Contents>\
                        <Contents><Key>a/../x.png</Key></Contents>\
                        <Contents><Key>a/dir/</Key></Contents>\
                        <Contents><Key>a//b&amp;c.png</Key></Contents>\
                        <Contents><Key>a/c&#x1;.png</Key></Contents>\
                        <Contents><Key>a/&lt;ok&gt;.png</Key></Contents><Name>b</Name></R>";
            let (kept, odd) = super::filter_listing(page.as_bytes()).expect("changed");
            assert_eq!(
                String::from_utf8(kept).unwrap(),
                "<R><Contents><Key>a/ok.png</Key><Size>1</Size></Contents>\
                 <Contents><Key>a/&lt;ok&gt;.png</Key></Contents><Name>b</Name></R>"
            );
            assert_eq!(odd, ["a/../x.png", "a//b&c.png", "a/c\u{1}.png"]);
            let clean =
                "<R><Blob><Name>x/y.png</Name></Blob><BlobPrefix><Name>x/</Name></BlobPrefix></R>";
            assert!(super::filter_listing(clean.as_bytes()).is_none());
            let prefixes = "<R><CommonPrefixes><Prefix>a/b/</Prefix></CommonPrefixes>\
                            <CommonPrefixes><Prefix>a/../</Prefix></CommonPrefixes></R>";
            let (kept, odd) = super::filter_listing(prefixes.as_bytes()).expect("changed");
            assert_eq!(
                String::from_utf8(kept).unwrap(),
                "<R><CommonPrefixes><Prefix>a/b/</Prefix></CommonPrefixes></R>"
            );
            assert!(odd.is_empty());
        }

        #[test]
        fn a_url_splits_into_bucket_and_key() {
            assert_eq!(split("s3://b/a/c.png"), ("s3://b", "a/c.png"));
            assert_eq!(split("s3://b"), ("s3://b", ""));
            assert_eq!(split("gs://b/x"), ("gs://b", "x"));
        }
    }
}

#[cfg(not(feature = "store"))]
mod remote {
    //! Without the `store` feature: every URL is refused, saying why.
    use std::io;
    use std::path::{Path, PathBuf};

    pub struct Listing {
        pub entries: Vec<(String, u64)>,
        pub odd: Vec<String>,
    }

    fn refuse<T>(path: &Path) -> io::Result<T> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "`{}` is an object-store URL, but this maskprep was built without object-store \
                 support; build it with `cargo install --path . --features store`",
                path.display()
            ),
        ))
    }

    pub fn list(dir: &Path) -> io::Result<std::sync::Arc<Listing>> {
        refuse(dir)
    }
    pub fn is_dir(path: &Path) -> io::Result<bool> {
        refuse(path)
    }
    pub fn size(path: &Path) -> io::Result<u64> {
        refuse(path)
    }
    pub fn read(path: &Path) -> io::Result<Vec<u8>> {
        refuse(path)
    }
    pub fn read_range(path: &Path, _start: u64, _end: u64) -> io::Result<Vec<u8>> {
        refuse(path)
    }
    pub fn read_chunks(path: &Path, _f: &mut (dyn FnMut(&[u8]) + Send)) -> io::Result<()> {
        refuse(path)
    }
    pub fn children(dir: &Path) -> io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
        refuse(dir)
    }
    pub fn walk(root: &Path, _max_depth: usize) -> io::Result<Vec<super::Entry>> {
        refuse(root)
    }
    pub fn put(path: &Path, _bytes: Vec<u8>) -> io::Result<()> {
        refuse(path)
    }
    pub fn put_file(_from: &Path, to: &Path) -> io::Result<()> {
        refuse(to)
    }
    pub fn download(path: &Path, _to: std::fs::File) -> io::Result<()> {
        refuse(path)
    }
    pub fn rename(from: &Path, _to: &Path) -> io::Result<()> {
        refuse(from)
    }
    pub fn delete(path: &Path) -> io::Result<()> {
        refuse(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url(Path::new("s3://b/data")));
        assert!(is_url(&Path::new("gs://b").join("masks")));
        assert!(!is_url(Path::new("data/s3://b")));
        assert!(!is_url(Path::new("s3:/b")));
        // A URL joins like a folder and keeps its spelling.
        let p = Path::new("s3://b/data").join("masks").join("a.png");
        assert_eq!(p.to_str(), Some("s3://b/data/masks/a.png"));
        assert_eq!(p.extension().and_then(|e| e.to_str()), Some("png"));
    }

    #[test]
    fn a_walk_of_keys_lists_each_folder_once_before_its_files() {
        let keys: Vec<(String, u64)> =
            ["a.png", "m/b-c/x.png", "m/b/y.png", "m/b/z.png", "m/q.png"]
                .iter()
                .map(|k| (k.to_string(), 1))
                .collect();
        let got: Vec<(String, usize, bool)> = walk_keys("s3://b/r", &keys, usize::MAX)
            .into_iter()
            .map(|e| (e.path.display().to_string(), e.depth, e.is_dir))
            .collect();
        let want = [
            ("s3://b/r/a.png", 1, false),
            ("s3://b/r/m", 1, true),
            ("s3://b/r/m/b-c", 2, true),
            ("s3://b/r/m/b-c/x.png", 3, false),
            ("s3://b/r/m/b", 2, true),
            ("s3://b/r/m/b/y.png", 3, false),
            ("s3://b/r/m/b/z.png", 3, false),
            ("s3://b/r/m/q.png", 2, false),
        ];
        let want: Vec<(String, usize, bool)> = want
            .iter()
            .map(|(p, d, f)| (p.to_string(), *d, *f))
            .collect();
        assert_eq!(got, want);
        // Two levels: no deeper file, the folders above it still listed.
        let two: Vec<String> = walk_keys("s3://b/r", &keys, 2)
            .into_iter()
            .map(|e| e.path.display().to_string())
            .collect();
        assert_eq!(
            two,
            [
                "s3://b/r/a.png",
                "s3://b/r/m",
                "s3://b/r/m/b-c",
                "s3://b/r/m/b",
                "s3://b/r/m/q.png"
            ]
        );
    }
}

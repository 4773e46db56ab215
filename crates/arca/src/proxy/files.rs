//! Immutable upstream files (a wheel, a tarball, a layer): fetched once, streamed to every client
//! asking meanwhile, verified, and recorded in the proxy's cache registry as ordinary content.
//! See the module documentation of `crate::proxy`.
//!
//! A miss starts one fetch per key ([`Fetches`]). The fetch task writes what arrives to a spool
//! (an unlinked temporary file) and, where the proxy caches, into a staged blob in the same
//! pass; every client of that key reads the spool as it grows, so followers get their first
//! byte when the leader does. The last byte is held back until the length and the published
//! digests check out: on a mismatch or a broken transfer each client's body ends in an error
//! (the connection is aborted, never a clean end) and nothing is kept. A proxy with
//! `isCaching: false` relays the same way, still coalesced, and keeps nothing.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};

use super::{Failure, transport_failure};
use crate::blob::{BlobInfo, Digests, MultiHasher};
use crate::error::{ApiError, ApiResult};
use crate::http::header_value;
use crate::model::Registry;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::artifacts::{FileRow, NewFile};

/// A file a format found in its upstream's metadata, and where it goes in the cache.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// Absolute upstream URL, taken from the upstream's own metadata (never from a client).
    pub url: String,
    /// Digests the metadata published (lower-case hex); each one given is verified.
    pub sha256: Option<String>,
    pub sha512: Option<String>,
    pub sha1: Option<String>,
    /// Where it is recorded in the cache registry.
    pub package: String,
    pub version: String,
    pub path: String,
    pub name: String,
    pub content_type: Option<String>,
    /// The file's attributes from the metadata (kept for when that metadata is unavailable).
    pub metadata: serde_json::Value,
}

impl Wanted {
    /// A file at the same `path` below the upstream's URL as in the cache, which no metadata
    /// publishes a digest for (the client checks it against its own index).
    pub fn at_upstream_path(
        upstream: &str,
        path: &str,
        package: String,
        version: String,
        content_type: &str,
    ) -> Wanted {
        Wanted {
            url: super::join(upstream, path),
            sha256: None,
            sha512: None,
            sha1: None,
            package,
            version,
            path: path.to_string(),
            name: path.rsplit('/').next().unwrap_or(path).to_string(),
            content_type: Some(content_type.to_string()),
            metadata: serde_json::json!({}),
        }
    }
}

/// How a verified, committed file is recorded in the cache registry; by default as a file of
/// `wanted.package`/`wanted.version` at `wanted.path` ([`record_file`]).
pub type OnCommit = Arc<
    dyn Fn(AppState, Registry, Wanted, BlobInfo) -> BoxFuture<'static, Result<FileRow, Failure>>
        + Send
        + Sync,
>;

/// Finds a kept copy in the cache registry (by default the file at `wanted.path`). A fetch asks
/// it first: a client that found the cache empty just before another fetch committed then gets
/// that copy instead of fetching again.
pub type Probe = Arc<
    dyn Fn(AppState, Registry, Wanted) -> BoxFuture<'static, Result<Option<FileRow>, Failure>>
        + Send
        + Sync,
>;

/// How a fetched file is kept: recorded by `on_commit`, with the digests it needs computed,
/// found again by `probe`.
#[derive(Clone)]
pub struct Keep {
    pub on_commit: OnCommit,
    pub digests: Digests,
    pub probe: Probe,
}

impl Keep {
    /// Kept as `on_commit` records it, found at `wanted.path`.
    pub fn new(on_commit: OnCommit, digests: Digests) -> Keep {
        Keep {
            on_commit,
            digests,
            probe: Arc::new(|state: AppState, cache: Registry, wanted: Wanted| {
                async move {
                    state
                        .db
                        .file_by_path(&cache.id, &wanted.path)
                        .await
                        .map_err(|e| Failure::Internal(e.to_string()))
                }
                .boxed()
            }),
        }
    }
}

/// A proxied file as it can be served: already in the cache, or arriving from upstream.
// One per request, moved once: boxing the row would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Got {
    Stored(FileRow),
    Live(Live),
}

/// A file being fetched, readable from its first byte while the rest arrives.
pub struct Live {
    spool: Arc<Spool>,
    name: String,
    content_type: Option<String>,
    sha256: Option<String>,
}

/// Fetches in flight by key (per process; bounded by the files being fetched right now).
#[derive(Default)]
pub struct Fetches {
    running: Mutex<HashMap<String, Arc<Spool>>>,
}

/// One fetch's spool and progress.
struct Spool {
    file: std::fs::File,
    progress: watch::Sender<Progress>,
}

// One per fetch, in a watch channel: boxing the row would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Progress {
    /// Waiting for the upstream's answer.
    Starting,
    /// `written` bytes are in the spool; `size` is the length the upstream declared.
    Streaming {
        written: u64,
        size: Option<u64>,
    },
    /// Verified (and, when caching, committed as `file`).
    Done {
        written: u64,
        file: Option<FileRow>,
    },
    Failed(Failure),
}

/// The cached file `wanted` names, fetched on a miss and waited for; `None` where the upstream
/// does not have it (or the proxy is offline and never fetched it). For formats that need the
/// row (its version, its metadata); downloads use [`open`], which streams.
pub async fn file(
    state: &AppState,
    proxy: &Registry,
    wanted: Wanted,
) -> ApiResult<Option<FileRow>> {
    match open(state, proxy, wanted).await? {
        None => Ok(None),
        Some(got) => got.finished().await,
    }
}

/// The file `wanted` names: from the cache, or from a fetch (started or joined) that can be
/// read while it runs. `None` where the upstream does not have it.
pub async fn open(state: &AppState, proxy: &Registry, wanted: Wanted) -> ApiResult<Option<Got>> {
    open_with(
        state,
        proxy,
        wanted,
        Keep::new(Arc::new(record_default), Digests::All),
    )
    .await
}

fn record_default(
    state: AppState,
    cache: Registry,
    wanted: Wanted,
    blob: BlobInfo,
) -> BoxFuture<'static, Result<FileRow, Failure>> {
    async move { record_file(&state, &cache, &wanted, &blob).await }.boxed()
}

/// The file at `path` of `proxy`'s cache, if it holds one: what a request for it is served
/// without asking the upstream (for a format that works out what a miss needs, such as a
/// published digest, only on a miss).
pub async fn cached(state: &AppState, proxy: &Registry, path: &str) -> ApiResult<Option<FileRow>> {
    let cache = state.db.cache_of_proxy(&proxy.id).await?;
    cached_in(state, proxy, cache.as_ref(), path).await
}

async fn cached_in(
    state: &AppState,
    proxy: &Registry,
    cache: Option<&Registry>,
    path: &str,
) -> ApiResult<Option<FileRow>> {
    let Some(cache) = cache else { return Ok(None) };
    let found = state.db.file_by_path(&cache.id, path).await?;
    if found.is_some() {
        crate::formats::members::served_by(&proxy.identifier);
    }
    Ok(found)
}

/// [`open`], keeping a fetched file as `keep` says instead of as a plain file.
pub async fn open_with(
    state: &AppState,
    proxy: &Registry,
    wanted: Wanted,
    keep: Keep,
) -> ApiResult<Option<Got>> {
    let settings = proxy
        .proxy
        .as_ref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("not a proxy registry")))?;
    let cache = state.db.cache_of_proxy(&proxy.id).await?;
    if let Some(f) = cached_in(state, proxy, cache.as_ref(), &wanted.path).await? {
        return Ok(Some(Got::Stored(f)));
    }
    // `isCaching: false`: the proxy relays (still one fetch per key) and keeps nothing new.
    let cache = cache.filter(|_| settings.caching);
    let engine = &state.proxy;
    if settings.offline || engine.known_missing(proxy, &wanted.url) {
        return Ok(None);
    }
    if engine.circuit_open(proxy) {
        return Err(ApiError::BadGateway(format!(
            "the upstream of '{}' failed repeatedly and is not asked again for a moment",
            proxy.identifier
        )));
    }
    let key = format!("{}|{}", proxy.id, wanted.path);
    let spool = engine.live.join_or_start(&key, || {
        let file = spool_file(state)?;
        let spool = Arc::new(Spool {
            file,
            progress: watch::Sender::new(Progress::Starting),
        });
        let task = fetch(
            state.clone(),
            proxy.clone(),
            cache.clone(),
            wanted.clone(),
            keep,
            spool.clone(),
        );
        let (state2, key2, spool2) = (state.clone(), key.clone(), spool.clone());
        tokio::spawn(async move {
            let outcome = task.await;
            spool2.progress.send_replace(outcome);
            state2.proxy.live.finish(&key2, &spool2);
        });
        Ok(spool)
    })?;
    let mut rx = spool.progress.subscribe();
    let seen = rx
        .wait_for(|p| !matches!(p, Progress::Starting))
        .await
        .map(|p| p.clone())
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("a proxy fetch ended without a word")))?;
    if !matches!(seen, Progress::Failed(_)) {
        // Through a group, the member that answered is named in `X-Arca-Served-By`, whether
        // the file was committed already or is still arriving.
        crate::formats::members::served_by(&proxy.identifier);
    }
    match seen {
        Progress::Failed(Failure::NotFound(_)) => Ok(None),
        Progress::Failed(f) => Err(f.into()),
        Progress::Done {
            file: Some(row), ..
        } => Ok(Some(Got::Stored(row))),
        _ => Ok(Some(Got::Live(Live {
            spool,
            name: wanted.name,
            content_type: wanted.content_type,
            sha256: wanted.sha256,
        }))),
    }
}

impl Fetches {
    fn join_or_start(
        &self,
        key: &str,
        start: impl FnOnce() -> ApiResult<Arc<Spool>>,
    ) -> ApiResult<Arc<Spool>> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = running.get(key) {
            return Ok(s.clone());
        }
        let s = start()?;
        running.insert(key.to_string(), s.clone());
        Ok(s)
    }

    fn finish(&self, key: &str, spool: &Arc<Spool>) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(key).is_some_and(|s| Arc::ptr_eq(s, spool)) {
            running.remove(key);
        }
    }

    /// Keys being fetched (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(0)
    }
}

/// An unlinked temporary file under the data directory: gone with its last reader.
fn spool_file(state: &AppState) -> ApiResult<std::fs::File> {
    let dir = state.config.data_dir.join("spool");
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::Internal(e.into()))?;
    tempfile::tempfile_in(&dir).map_err(|e| ApiError::Internal(e.into()))
}

impl Got {
    /// The cached row, waiting for a running fetch to be verified and committed. A proxy that
    /// keeps nothing has no row to give: that is an error here (use [`Got::respond`]).
    pub async fn finished(self) -> ApiResult<Option<FileRow>> {
        match self {
            Got::Stored(f) => Ok(Some(f)),
            Got::Live(live) => {
                let mut rx = live.spool.progress.subscribe();
                let end = rx
                    .wait_for(|p| matches!(p, Progress::Done { .. } | Progress::Failed(_)))
                    .await
                    .map(|p| p.clone())
                    .map_err(|_| {
                        ApiError::Internal(anyhow::anyhow!("a proxy fetch ended without a word"))
                    })?;
                match end {
                    Progress::Done { file: Some(f), .. } => Ok(Some(f)),
                    Progress::Done { file: None, .. } => Err(ApiError::BadGateway(
                        "this proxy does not keep what it fetches (isCaching is false), and this \
                         request needs a kept copy"
                            .into(),
                    )),
                    Progress::Failed(Failure::NotFound(_)) => Ok(None),
                    Progress::Failed(f) => Err(f.into()),
                    _ => Err(ApiError::Internal(anyhow::anyhow!("unreachable progress"))),
                }
            }
        }
    }

    /// Answers GET or HEAD with the file: from the store, or streamed as it arrives.
    pub async fn respond(
        self,
        state: &AppState,
        method: &Method,
        headers: &HeaderMap,
    ) -> ApiResult<Response> {
        match self {
            Got::Stored(f) => crate::download::serve_file(state, &f, method, headers).await,
            Got::Live(live) => Ok(live.respond(method)),
        }
    }
}

impl Live {
    /// The response of a file still arriving: a `Range` is answered with the whole body (as
    /// RFC 9110 allows), the length is the upstream's when it declared one.
    fn respond(self, method: &Method) -> Response {
        let mut out = HeaderMap::new();
        let content_type = self
            .content_type
            .clone()
            .unwrap_or_else(|| crate::download::guess_content_type(&self.name).to_string());
        crate::download::user_content_headers(&mut out, &content_type, &self.name);
        out.insert("x-arca-cache", HeaderValue::from_static("MISS"));
        if let Some(sha) = &self.sha256 {
            out.insert(header::ETAG, header_value(&format!("\"{sha}\"")));
            out.insert("x-checksum-sha256", header_value(sha));
        }
        let declared = match &*self.spool.progress.borrow() {
            Progress::Streaming { size, .. } => *size,
            Progress::Done { written, .. } => Some(*written),
            _ => None,
        };
        if let Some(len) = declared {
            out.insert(header::CONTENT_LENGTH, header_value(&len.to_string()));
        }
        if *method == Method::HEAD {
            return (StatusCode::OK, out).into_response();
        }
        (StatusCode::OK, out, Body::from_stream(self.stream())).into_response()
    }

    /// The spool's bytes as they arrive; ends in an error where the fetch fails.
    fn stream(self) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        const CHUNK: u64 = 1 << 20;
        let rx = self.spool.progress.subscribe();
        futures::stream::unfold(
            (self.spool, rx, 0u64, false),
            |(spool, mut rx, pos, ended)| async move {
                if ended {
                    return None;
                }
                loop {
                    let now = rx.borrow_and_update().clone();
                    let (readable, done) = match now {
                        Progress::Starting => (0, false),
                        // The last byte waits for the verdict, so a failed check aborts.
                        Progress::Streaming { written, .. } => (written.saturating_sub(1), false),
                        Progress::Done { written, .. } => (written, true),
                        Progress::Failed(f) => {
                            let e =
                                std::io::Error::other(format!("upstream transfer failed: {f:?}"));
                            return Some((Err(e), (spool, rx, pos, true)));
                        }
                    };
                    if pos < readable {
                        // Small first reads (a fast first byte for every client), then larger.
                        let n = (readable - pos).min(pos.clamp(16 << 10, CHUNK)) as usize;
                        let s = spool.clone();
                        let read = tokio::task::spawn_blocking(move || {
                            let mut buf = vec![0u8; n];
                            s.file.read_exact_at(&mut buf, pos).map(|_| buf)
                        })
                        .await
                        .map_err(std::io::Error::other)
                        .and_then(|r| r);
                        return match read {
                            Ok(buf) => {
                                Some((Ok(Bytes::from(buf)), (spool, rx, pos + n as u64, false)))
                            }
                            Err(e) => Some((Err(e), (spool, rx, pos, true))),
                        };
                    }
                    if done {
                        return None;
                    }
                    if rx.changed().await.is_err() {
                        let e = std::io::Error::other("upstream transfer ended without a verdict");
                        return Some((Err(e), (spool, rx, pos, true)));
                    }
                }
            },
        )
    }
}

/// How long a node's claim on one upstream fetch lasts without renewal (renewed every third of
/// that while the transfer runs); a node that died holding it delays the others this long.
const FETCH_LEASE_MS: i64 = 30_000;
/// Longest a node waits for another node's fetch of a file before it gives up.
const FETCH_WAIT: std::time::Duration = std::time::Duration::from_secs(1800);

/// The fetch of one file. Within a process, concurrent clients share it ([`Fetches`]); across
/// the processes sharing the metadata store, the one holding the file's lease fetches it and the
/// others wait for its commit, then serve the kept copy (taking over if the holder fails or dies).
async fn fetch(
    state: AppState,
    proxy: Registry,
    cache: Option<Registry>,
    wanted: Wanted,
    keep: Keep,
    spool: Arc<Spool>,
) -> Progress {
    // A proxy that keeps nothing has nothing another node could wait for.
    let Some(c) = cache.clone() else {
        return transfer(state, proxy, cache, wanted, keep, spool).await;
    };
    let name = format!("proxy-file|{}|{}", c.id, wanted.path);
    let holder = uuid::Uuid::new_v4().to_string();
    let started = std::time::Instant::now();
    loop {
        match (keep.probe)(state.clone(), c.clone(), wanted.clone()).await {
            Ok(Some(row)) => {
                return Progress::Done {
                    written: 0,
                    file: Some(row),
                };
            }
            Ok(None) => {}
            Err(f) => return Progress::Failed(f),
        }
        let until = crate::model::now_ms() + FETCH_LEASE_MS;
        match state.db.lease_acquire(&name, &holder, until).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return Progress::Failed(Failure::Internal(e.to_string())),
        }
        if started.elapsed() > FETCH_WAIT {
            return Progress::Failed(Failure::Upstream(format!(
                "another node's fetch of '{}' did not finish in time",
                wanted.name
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The node that held the lease before may have committed and let go between the probe
    // above and taking the lease: look once more, now that no one else can be fetching.
    match (keep.probe)(state.clone(), c.clone(), wanted.clone()).await {
        Ok(None) => {}
        found => {
            let _ = state.db.lease_release(&name, &holder).await;
            return match found {
                Ok(row) => Progress::Done {
                    written: 0,
                    file: row,
                },
                Err(f) => Progress::Failed(f),
            };
        }
    }
    let renew = {
        let (db, name, holder) = (state.db.clone(), name.clone(), holder.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(FETCH_LEASE_MS as u64 / 3))
                    .await;
                let until = crate::model::now_ms() + FETCH_LEASE_MS;
                let _ = db.lease_acquire(&name, &holder, until).await;
            }
        })
    };
    let out = transfer(state.clone(), proxy, cache, wanted, keep, spool).await;
    renew.abort();
    if let Err(e) = state.db.lease_release(&name, &holder).await {
        tracing::warn!(error = %e, "releasing a fetch lease failed (it expires by itself)");
    }
    out
}

/// The upstream transfer of one file: spooled for readers, staged into the blob store when
/// caching, verified, committed and recorded. Returns the final progress.
async fn transfer(
    state: AppState,
    proxy: Registry,
    cache: Option<Registry>,
    wanted: Wanted,
    keep: Keep,
    spool: Arc<Spool>,
) -> Progress {
    let Some(settings) = proxy.proxy.clone() else {
        return Progress::Failed(Failure::Internal("not a proxy registry".into()));
    };
    let engine = &state.proxy;
    let creds = match super::credentials(&state, &proxy, &settings).await {
        Ok(c) => c,
        Err(f) => return Progress::Failed(f),
    };
    let resp = match engine
        .send(&proxy, &creds, Method::GET, &wanted.url, HeaderMap::new())
        .await
    {
        Ok(r) => r,
        Err(e) => {
            engine.record_outcome(&proxy, false);
            return Progress::Failed(transport_failure(&wanted.url, &e));
        }
    };
    let status = resp.status();
    if matches!(status.as_u16(), 404 | 410) {
        engine.record_outcome(&proxy, true);
        engine.remember_missing(&proxy, &wanted.url);
        return Progress::Failed(Failure::NotFound(format!(
            "'{}' not found upstream",
            wanted.name
        )));
    }
    if status != reqwest::StatusCode::OK {
        engine.record_outcome(&proxy, false);
        return Progress::Failed(Failure::Upstream(format!(
            "the upstream answered {status} for '{}'",
            wanted.name
        )));
    }
    let declared = resp.content_length();
    spool.progress.send_replace(Progress::Streaming {
        written: 0,
        size: declared,
    });
    let limit = state.config.max_upload_bytes;
    // Staged into the blob store in the same pass (the store hashes it); a proxy that keeps
    // nothing hashes here instead.
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let staging = cache.as_ref().map(|_| {
        let blobs = state.blobs.clone();
        let body = Box::pin(tokio_stream_from(rx));
        let digests = keep.digests;
        tokio::spawn(async move { blobs.stage(body, Some(limit), digests).await })
    });
    let mut hasher = staging.is_none().then(|| MultiHasher::new(keep.digests));
    let mut written = 0u64;
    // What has arrived is written in one go (the network hands over small pieces).
    let mut upstream = resp.bytes_stream().ready_chunks(64);
    let mut broken = None;
    while let Some(pieces) = upstream.next().await {
        let mut chunk = bytes::BytesMut::new();
        for piece in pieces {
            match piece {
                Ok(c) => chunk.extend_from_slice(&c),
                Err(e) => {
                    broken = Some(format!(
                        "the transfer of '{}' from upstream broke: {e}",
                        wanted.name
                    ));
                    break;
                }
            }
        }
        if broken.is_some() {
            break;
        }
        let chunk = chunk.freeze();
        if written + chunk.len() as u64 > limit {
            broken = Some(format!(
                "'{}' from upstream exceeds the size limit",
                wanted.name
            ));
            break;
        }
        let write = {
            let s = spool.clone();
            let c = chunk.clone();
            let at = written;
            tokio::task::spawn_blocking(move || s.file.write_all_at(&c, at)).await
        };
        if !matches!(write, Ok(Ok(()))) {
            return Progress::Failed(Failure::Internal(
                "the proxy spool could not be written".into(),
            ));
        }
        if let Some(h) = &mut hasher {
            h.update(&chunk);
        }
        written += chunk.len() as u64;
        if staging.is_some() && tx.send(Ok(chunk)).await.is_err() {
            broken = Some("staging the file failed".into());
            break;
        }
        spool.progress.send_replace(Progress::Streaming {
            written,
            size: declared,
        });
    }
    if let Some(m) = &broken {
        // The staged copy must fail too, not end cleanly on a prefix.
        let _ = tx.send(Err(std::io::Error::other(m.clone()))).await;
    }
    drop(tx);
    let info = match (staging, hasher) {
        (Some(task), _) => match task.await {
            Ok(Ok(staged)) => Some(staged),
            Ok(Err(e)) if broken.is_none() => {
                broken = Some(format!("'{}' could not be staged: {e}", wanted.name));
                None
            }
            _ => None,
        }
        .map(|s| (s.info.clone(), Some(s))),
        (None, Some(h)) => Some((h.finish(), None)),
        (None, None) => None,
    };
    if let Some(m) = broken {
        engine.record_outcome(&proxy, false);
        return Progress::Failed(Failure::Upstream(m));
    }
    let Some((info, staged)) = info else {
        return Progress::Failed(Failure::Internal("the fetched file was lost".into()));
    };
    if let Err(f) = verify(&wanted, declared, &info) {
        engine.record_outcome(&proxy, false);
        return Progress::Failed(f);
    }
    engine.record_outcome(&proxy, true);
    let (Some(cache), Some(staged)) = (cache, staged) else {
        return Progress::Done {
            written,
            file: None,
        };
    };
    let committed = async {
        let blob = state
            .blobs
            .commit(staged)
            .await
            .map_err(|e| Failure::Internal(e.to_string()))?;
        state.commit_blob(&blob).await.map_err(Failure::from)?;
        (keep.on_commit)(state.clone(), cache, wanted, blob).await
    };
    match committed.await {
        Ok(row) => Progress::Done {
            written,
            file: Some(row),
        },
        Err(f) => Progress::Failed(f),
    }
}

/// Length and every published digest; never an empty body for content that has a digest.
fn verify(wanted: &Wanted, declared: Option<u64>, info: &BlobInfo) -> Result<(), Failure> {
    let mismatch = |what: &str| {
        Failure::Upstream(format!(
            "'{}' from upstream does not match its {what}; nothing was kept",
            wanted.name
        ))
    };
    if declared.is_some_and(|d| d != info.size) {
        return Err(mismatch("Content-Length"));
    }
    for (expected, got, what) in [
        (&wanted.sha256, &info.sha256, "sha256"),
        (&wanted.sha512, &info.sha512, "sha512"),
        (&wanted.sha1, &info.sha1, "sha1"),
    ] {
        if let Some(e) = expected
            && !e.eq_ignore_ascii_case(got)
        {
            return Err(mismatch(what));
        }
    }
    if info.size == 0 && wanted.sha256.is_none() && wanted.sha512.is_none() {
        return Err(Failure::Upstream(format!(
            "the upstream sent an empty body for '{}'",
            wanted.name
        )));
    }
    Ok(())
}

/// Records a committed file as `wanted` says, in the cache registry.
pub async fn record_file(
    state: &AppState,
    cache: &Registry,
    wanted: &Wanted,
    blob: &BlobInfo,
) -> Result<FileRow, Failure> {
    let recorded = state
        .db
        .record_file(
            cache,
            NewFile {
                package: &wanted.package,
                version: &wanted.version,
                path: &wanted.path,
                name: &wanted.name,
                blob,
                content_type: wanted.content_type.as_deref(),
                metadata: wanted.metadata.clone(),
            },
        )
        .await;
    match recorded {
        Ok(f) => Ok(f),
        // Recorded meanwhile by another node: that row is the one.
        Err(StoreError::Conflict(_)) => state
            .db
            .file_by_path(&cache.id, &wanted.path)
            .await
            .map_err(|e| Failure::Internal(e.to_string()))?
            .ok_or_else(|| Failure::Internal("cached file vanished".into())),
        Err(e) => Err(Failure::Internal(e.to_string())),
    }
}

/// A channel's receiver as a stream (what `tokio-stream`'s wrapper does, without the crate).
fn tokio_stream_from<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

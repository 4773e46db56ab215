//! Immutable upstream files (a wheel, a tarball): fetched once, verified, and recorded in the
//! proxy's cache registry as ordinary content. See the module documentation of `crate::proxy`.

use axum::http::header;
use futures::{FutureExt, StreamExt};

use super::{Failure, transport_failure};
use crate::blob::Digests;
use crate::error::{ApiError, ApiResult};
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

/// The cached file `wanted` names, fetched on a miss; `None` where the upstream does not have
/// it (or the proxy is offline and never fetched it).
pub async fn file(
    state: &AppState,
    proxy: &Registry,
    wanted: Wanted,
) -> ApiResult<Option<FileRow>> {
    let settings = proxy
        .proxy
        .as_ref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("not a proxy registry")))?;
    let cache = state.db.cache_of_proxy(&proxy.id).await?.ok_or_else(|| {
        ApiError::BadGateway(format!(
            "proxy '{}' does not keep what it fetches (isCaching is false): pass-through is not \
             implemented yet",
            proxy.identifier
        ))
    })?;
    if let Some(f) = state.db.file_by_path(&cache.id, &wanted.path).await? {
        return Ok(Some(f));
    }
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
    let key = format!("{}|{}", cache.id, wanted.path);
    let work = fetch_once_in_cluster(state.clone(), proxy.clone(), cache, wanted).boxed();
    match engine.files.run(&key, work).await {
        Ok(f) => Ok(Some(f)),
        Err(Failure::NotFound(_)) => Ok(None),
        Err(f) => Err(f.into()),
    }
}

/// How long a node's claim on one upstream fetch lasts without renewal (it renews it every third
/// of that while the transfer runs); a node that died holding it delays the others this long.
const FETCH_LEASE_MS: i64 = 30_000;
/// Longest a node waits for another node's fetch of a file before it gives up (a transfer of the
/// largest accepted file at a slow upstream's pace).
const FETCH_WAIT: std::time::Duration = std::time::Duration::from_secs(1800);

/// Single flight across nodes: within a process `Flights` already joins concurrent misses; across
/// the processes sharing the metadata store, the one holding the file's lease fetches it and the
/// others wait for its row (taking over if the holder fails or dies).
async fn fetch_once_in_cluster(
    state: AppState,
    proxy: Registry,
    cache: Registry,
    wanted: Wanted,
) -> Result<FileRow, Failure> {
    let internal = |e: StoreError| Failure::Internal(e.to_string());
    let name = format!("proxy-file|{}|{}", cache.id, wanted.path);
    let holder = uuid::Uuid::new_v4().to_string();
    let started = std::time::Instant::now();
    loop {
        if let Some(f) = state
            .db
            .file_by_path(&cache.id, &wanted.path)
            .await
            .map_err(internal)?
        {
            return Ok(f);
        }
        let until = crate::model::now_ms() + FETCH_LEASE_MS;
        if state
            .db
            .lease_acquire(&name, &holder, until)
            .await
            .map_err(internal)?
        {
            let renew = {
                let (db, name, holder) = (state.db.clone(), name.clone(), holder.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_millis(
                            FETCH_LEASE_MS as u64 / 3,
                        ))
                        .await;
                        let until = crate::model::now_ms() + FETCH_LEASE_MS;
                        let _ = db.lease_acquire(&name, &holder, until).await;
                    }
                })
            };
            let fetched = fetch(state.clone(), proxy, cache, wanted).await;
            renew.abort();
            if let Err(e) = state.db.lease_release(&name, &holder).await {
                tracing::warn!(error = %e, "releasing a fetch lease failed (it expires by itself)");
            }
            return fetched;
        }
        if started.elapsed() > FETCH_WAIT {
            return Err(Failure::Upstream(format!(
                "another node's fetch of '{}' did not finish in time",
                wanted.name
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn fetch(
    state: AppState,
    proxy: Registry,
    cache: Registry,
    wanted: Wanted,
) -> Result<FileRow, Failure> {
    let Some(settings) = proxy.proxy.clone() else {
        return Err(Failure::Internal("not a proxy registry".into()));
    };
    let engine = &state.proxy;
    let creds = super::credentials(&state, &proxy, &settings).await?;
    let resp = match engine.get(&creds, &wanted.url).send().await {
        Ok(r) => r,
        Err(e) => {
            engine.record_outcome(&proxy, false);
            return Err(transport_failure(&wanted.url, &e));
        }
    };
    let status = resp.status();
    if matches!(status.as_u16(), 404 | 410) {
        engine.record_outcome(&proxy, true);
        engine.remember_missing(&proxy, &wanted.url);
        return Err(Failure::NotFound(format!(
            "'{}' not found upstream",
            wanted.name
        )));
    }
    if status != reqwest::StatusCode::OK {
        engine.record_outcome(&proxy, false);
        return Err(Failure::Upstream(format!(
            "the upstream answered {status} for '{}'",
            wanted.name
        )));
    }
    let declared = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stream = resp
        .bytes_stream()
        .map(|r| r.map_err(std::io::Error::other));
    let staged = match state
        .blobs
        .stage(
            Box::pin(stream),
            Some(state.config.max_upload_bytes),
            Digests::All,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            engine.record_outcome(&proxy, false);
            return Err(Failure::Upstream(format!(
                "the transfer of '{}' from upstream failed: {e}",
                wanted.name
            )));
        }
    };
    let info = &staged.info;
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
    engine.record_outcome(&proxy, true);
    let blob = state
        .blobs
        .commit(staged)
        .await
        .map_err(|e| Failure::Internal(e.to_string()))?;
    state.commit_blob(&blob).await.map_err(Failure::from)?;
    let recorded = state
        .db
        .record_file(
            &cache,
            NewFile {
                package: &wanted.package,
                version: &wanted.version,
                path: &wanted.path,
                name: &wanted.name,
                blob: &blob,
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

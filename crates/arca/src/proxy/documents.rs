//! Upstream metadata documents (a PyPI project page, an npm packument): fetched, kept with their
//! validators, revalidated when stale, served stale while the upstream fails. See the module
//! documentation of `crate::proxy` for the rules.

use std::sync::Arc;

use axum::http::header;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};

use super::{Failure, join, transport_failure};
use crate::error::{ApiError, ApiResult};
use crate::model::{Registry, now_ms};
use crate::state::AppState;
use crate::store::proxy::ProxyDocument;

/// How a document was obtained, for the `X-Arca-Cache` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    /// Served from the stored copy, fresh.
    Hit,
    /// Fetched from upstream just now.
    Miss,
    /// The upstream confirmed the stored copy (304).
    Revalidated,
    /// The upstream failed; the last stored copy is served.
    Stale,
}

impl CacheState {
    pub fn header_value(self) -> &'static str {
        match self {
            CacheState::Hit => "HIT",
            CacheState::Miss => "MISS",
            CacheState::Revalidated => "REVALIDATED",
            CacheState::Stale => "STALE",
        }
    }
}

/// A metadata document as a proxy serves it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Bytes,
    pub content_type: Option<String>,
    /// The upstream URL it came from (after redirects): relative links resolve against it.
    pub url: String,
    /// SHA-256 of the body: what generated documents built from it are keyed by.
    pub sha256: String,
    pub state: CacheState,
}

/// What to ask the upstream for.
pub struct Request<'a> {
    /// Path below the proxy's upstream URL.
    pub path: &'a str,
    /// The representation wanted (`Accept`); each representation is kept apart.
    pub accept: &'a str,
    /// Revalidate even a fresh copy (a client asked for a version the copy does not list; the
    /// caller rate-limits this with `ProxyEngine::may_revalidate_on_miss`).
    pub revalidate: bool,
}

/// A new copy of a document the upstream sent, before it replaces the stored one.
pub struct Candidate {
    pub body: Bytes,
    pub sha256: String,
    /// The copy served so far, if any (to refuse a rollback, say).
    pub stored: Option<Bytes>,
}

/// A document kept together with a checked one, of the same generation (a detached signature),
/// stored under `path` before the checked document replaces the old one.
pub struct Companion {
    pub path: String,
    pub body: Bytes,
}

/// What a format checks before a new copy of a document is stored (a signature, a revision not
/// older than the served one). A refusal leaves the stored copy in service, as when the
/// upstream fails (served stale, logged); with nothing stored it is a 502.
pub type Check =
    dyn Fn(Candidate) -> BoxFuture<'static, Result<Vec<Companion>, String>> + Send + Sync;

/// The document at `req.path` of `proxy`'s upstream, or `None` where the upstream does not have
/// it (or the proxy is offline without a copy).
pub async fn document(
    state: &AppState,
    proxy: &Registry,
    req: Request<'_>,
) -> ApiResult<Option<Fetched>> {
    let url = match &proxy.proxy {
        Some(s) => join(&s.url, req.path),
        None => String::new(),
    };
    document_at(state, proxy, req, url).await
}

/// [`document`] at an upstream URL the format composed itself (`req.path` then only names the
/// document in the store: formats whose upstream URLs are not "proxy URL + path", like OCI
/// registries with a namespace).
pub async fn document_at(
    state: &AppState,
    proxy: &Registry,
    req: Request<'_>,
    url: String,
) -> ApiResult<Option<Fetched>> {
    document_inner(state, proxy, req, url, None).await
}

/// [`document_at`], where a new copy is stored only once `check` accepts it (see [`Check`]).
pub async fn document_checked(
    state: &AppState,
    proxy: &Registry,
    req: Request<'_>,
    url: String,
    check: Arc<Check>,
) -> ApiResult<Option<Fetched>> {
    document_inner(state, proxy, req, url, Some(check)).await
}

async fn document_inner(
    state: &AppState,
    proxy: &Registry,
    req: Request<'_>,
    url: String,
    check: Option<Arc<Check>>,
) -> ApiResult<Option<Fetched>> {
    let settings = proxy
        .proxy
        .as_ref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("not a proxy registry")))?;
    let key = format!("{}|{}", req.path, req.accept);
    let stored = state.db.proxy_document(&proxy.id, &key).await?;
    let engine = &state.proxy;
    if settings.offline {
        return match stored {
            Some(d) => Ok(Some(load(state, &d, CacheState::Hit).await?)),
            None => Ok(None),
        };
    }
    if let Some(d) = &stored
        && !req.revalidate
        && now_ms() - d.fetched_at < settings.metadata_interval_secs.saturating_mul(1000)
    {
        return Ok(Some(load(state, d, CacheState::Hit).await?));
    }
    if stored.is_none() && engine.known_missing(proxy, &key) {
        return Ok(None);
    }
    if engine.circuit_open(proxy) {
        return match stored {
            Some(d) => Ok(Some(load(state, &d, CacheState::Stale).await?)),
            None => Err(ApiError::BadGateway(format!(
                "the upstream of '{}' failed repeatedly and is not asked again for a moment",
                proxy.identifier
            ))),
        };
    }
    let work = fetch(
        state.clone(),
        proxy.clone(),
        key.clone(),
        url,
        req.accept.to_string(),
        stored.clone(),
        check,
    )
    .boxed();
    match engine
        .documents
        .run(&format!("{}|{key}", proxy.id), work)
        .await
    {
        Ok(f) => Ok(Some(f)),
        Err(Failure::NotFound(_)) => Ok(None),
        Err(failure) => match stored {
            Some(d) => {
                tracing::warn!(proxy = %proxy.identifier, path = req.path, ?failure, "serving stale metadata");
                Ok(Some(load(state, &d, CacheState::Stale).await?))
            }
            None => Err(failure.into()),
        },
    }
}

/// The last stored copy of the document at `path` (as `accept`), without asking the upstream:
/// what was served most recently, for formats whose documents form one generation (an apt
/// index is the one the served `Release` lists).
pub async fn stored(
    state: &AppState,
    proxy: &Registry,
    path: &str,
    accept: &str,
) -> ApiResult<Option<Fetched>> {
    let key = format!("{path}|{accept}");
    match state.db.proxy_document(&proxy.id, &key).await? {
        Some(d) => Ok(Some(load(state, &d, CacheState::Hit).await?)),
        None => Ok(None),
    }
}

/// The same document from each proxy a read through `reg` reaches, in order (proxies whose
/// upstream lacks it left out); `path` says where it is below a proxy's URL.
pub async fn from_each_proxy(
    state: &AppState,
    reg: &Registry,
    accept: &str,
    revalidate: bool,
    path: impl Fn(&Registry) -> String,
) -> ApiResult<Vec<(Registry, Fetched)>> {
    let mut out = Vec::new();
    for proxy in (crate::formats::Resolver { state }).proxies(reg).await? {
        let path = path(&proxy);
        let req = Request {
            path: &path,
            accept,
            revalidate,
        };
        if let Some(doc) = document(state, &proxy, req).await? {
            crate::formats::members::served_by(&proxy.identifier);
            out.push((proxy, doc));
        }
    }
    Ok(out)
}

/// The stored packages of a read chain, less the caches of proxies whose upstream answered:
/// what a proxy cached is listed as its upstream lists it now (yanks and tags change); only
/// where the upstream is unavailable do the cached entries stand for it.
pub fn without_answered_caches<P: Clone>(
    chain: &[(Registry, P)],
    upstream: &[(Registry, Fetched)],
) -> Vec<(Registry, P)> {
    chain
        .iter()
        .filter(|(r, _)| {
            !r.cache_of
                .as_deref()
                .is_some_and(|p| upstream.iter().any(|(u, _)| u.id == p))
        })
        .cloned()
        .collect()
}

/// Reads a stored document's body (metadata documents are held in memory to be rewritten): from
/// the engine's memo when kept there (the digest comes from the row just read, so it is the
/// current document's), else from the blob store.
async fn load(state: &AppState, d: &ProxyDocument, how: CacheState) -> ApiResult<Fetched> {
    let body = match state.proxy.memo.body(&d.sha256) {
        Some(body) => body,
        None => {
            let read = state.blobs.get(&d.sha256, None).await?;
            let chunks: Vec<Bytes> = read.stream.try_collect().await?;
            let body: Bytes = chunks.concat().into();
            state.proxy.memo.keep_body(&d.sha256, &body);
            body
        }
    };
    Ok(Fetched {
        body,
        content_type: d.content_type.clone(),
        url: d.url.clone(),
        sha256: d.sha256.clone(),
        state: how,
    })
}

/// The upstream request of one (single-flight) fetch.
async fn fetch(
    state: AppState,
    proxy: Registry,
    key: String,
    url: String,
    accept: String,
    stored: Option<ProxyDocument>,
    check: Option<Arc<Check>>,
) -> Result<Fetched, Failure> {
    let Some(settings) = proxy.proxy.clone() else {
        return Err(Failure::Internal("not a proxy registry".into()));
    };
    let engine = &state.proxy;
    let creds = super::credentials(&state, &proxy, &settings).await?;
    let mut headers = axum::http::HeaderMap::new();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(v) = axum::http::HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(header::ACCEPT, &accept);
    if let Some(d) = &stored {
        if let Some(etag) = &d.etag {
            set(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &d.last_modified {
            set(header::IF_MODIFIED_SINCE, lm);
        }
    }
    let resp = match engine
        .send(&proxy, &creds, axum::http::Method::GET, &url, headers)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            engine.record_outcome(&proxy, false);
            return Err(transport_failure(&url, &e));
        }
    };
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_MODIFIED
        && let Some(d) = &stored
    {
        engine.record_outcome(&proxy, true);
        state
            .db
            .touch_proxy_document(&proxy.id, &key, now_ms())
            .await
            .map_err(|e| Failure::Internal(e.to_string()))?;
        return load(&state, d, CacheState::Revalidated)
            .await
            .map_err(Failure::from);
    }
    if matches!(status.as_u16(), 404 | 410) {
        engine.record_outcome(&proxy, true);
        engine.remember_missing(&proxy, &key);
        state
            .db
            .delete_proxy_document(&proxy.id, &key)
            .await
            .map_err(|e| Failure::Internal(e.to_string()))?;
        return Err(Failure::NotFound(format!(
            "not found upstream ({})",
            status.as_u16()
        )));
    }
    if status != reqwest::StatusCode::OK {
        engine.record_outcome(&proxy, false);
        return Err(Failure::Upstream(format!(
            "the upstream answered {status} for {}",
            url::Url::parse(&url)
                .map(|u| u.path().to_string())
                .unwrap_or_default()
        )));
    }
    let header_str = |h: header::HeaderName| {
        resp.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header_str(header::ETAG);
    let last_modified = header_str(header::LAST_MODIFIED);
    let content_type = header_str(header::CONTENT_TYPE);
    let final_url = resp.url().to_string();
    let limit = state.config.max_parsed_body_bytes;
    let stream = resp
        .bytes_stream()
        .map(|r| r.map_err(std::io::Error::other));
    let info = match state.blobs.put(Box::pin(stream), Some(limit), None).await {
        Ok(info) => info,
        Err(e) => {
            engine.record_outcome(&proxy, false);
            return Err(Failure::Upstream(format!(
                "the upstream's document could not be read: {e}"
            )));
        }
    };
    if info.size == 0 {
        engine.record_outcome(&proxy, false);
        return Err(Failure::Upstream(
            "the upstream answered with an empty document".into(),
        ));
    }
    engine.record_outcome(&proxy, true);
    state.commit_blob(&info).await.map_err(Failure::from)?;
    let doc = ProxyDocument {
        sha256: info.sha256.clone(),
        content_type,
        etag,
        last_modified,
        url: final_url,
        fetched_at: now_ms(),
    };
    if let Some(check) = check {
        // Checked before it is stored: a refused copy never replaces the good one.
        let body = load(&state, &doc, CacheState::Miss).await?.body;
        let old = match &stored {
            Some(d) if d.sha256 != doc.sha256 => Some(load(&state, d, CacheState::Hit).await?.body),
            _ => None,
        };
        let candidate = Candidate {
            body,
            sha256: doc.sha256.clone(),
            stored: old,
        };
        let companions = check(candidate).await.map_err(|e| {
            tracing::warn!(proxy = %proxy.identifier, %key, error = %e, "a new upstream document was refused");
            Failure::Upstream(e)
        })?;
        let accept = key.rsplit_once('|').map(|(_, a)| a).unwrap_or("*/*");
        for c in companions {
            keep(
                &state,
                &proxy,
                &format!("{}|{accept}", c.path),
                c.body,
                &doc.url,
            )
            .await?;
        }
    }
    state
        .db
        .put_proxy_document(&proxy.id, &key, &doc)
        .await
        .map_err(|e| Failure::Internal(e.to_string()))?;
    load(&state, &doc, CacheState::Miss)
        .await
        .map_err(Failure::from)
}

/// The companion `path` kept with the served document `doc` (its detached signature), served
/// with `doc`'s cache state. A document stored before its companion was kept with it gets it
/// filled in once: fetched from `url`, kept only if `verify` accepts it with `doc`.
pub async fn companion(
    state: &AppState,
    proxy: &Registry,
    doc: &Fetched,
    path: &str,
    accept: &str,
    url: &str,
    verify: impl Fn(&[u8], &[u8]) -> Result<(), String>,
) -> ApiResult<Option<Fetched>> {
    if let Some(mut c) = stored(state, proxy, path, accept).await? {
        c.state = doc.state;
        return Ok(Some(c));
    }
    if proxy.proxy.as_ref().is_some_and(|p| p.offline) || state.proxy.known_missing(proxy, path) {
        return Ok(None);
    }
    let Some(body) = upstream_bytes(state, proxy, url).await? else {
        state.proxy.remember_missing(proxy, path);
        return Ok(None);
    };
    verify(&doc.body, &body).map_err(ApiError::BadGateway)?;
    keep(state, proxy, &format!("{path}|{accept}"), body, url).await?;
    stored(state, proxy, path, accept).await.map(|c| {
        c.map(|mut c| {
            c.state = doc.state;
            c
        })
    })
}

/// Stores `body` as the document `key` of `proxy` (a companion of a checked document).
async fn keep(
    state: &AppState,
    proxy: &Registry,
    key: &str,
    body: Bytes,
    url: &str,
) -> Result<(), Failure> {
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let info = state
        .blobs
        .put(Box::pin(stream), None, None)
        .await
        .map_err(|e| Failure::Internal(e.to_string()))?;
    state.commit_blob(&info).await.map_err(Failure::from)?;
    let doc = ProxyDocument {
        sha256: info.sha256,
        content_type: None,
        etag: None,
        last_modified: None,
        url: url.to_string(),
        fetched_at: now_ms(),
    };
    state
        .db
        .put_proxy_document(&proxy.id, key, &doc)
        .await
        .map_err(|e| Failure::Internal(e.to_string()))
}

/// One plain GET of `url` with the proxy's credentials, nothing stored: what a [`Check`] reads
/// alongside the document it checks (a detached signature). `None` where the upstream has
/// no such file.
pub async fn upstream_bytes(
    state: &AppState,
    proxy: &Registry,
    url: &str,
) -> Result<Option<Bytes>, Failure> {
    let Some(settings) = proxy.proxy.clone() else {
        return Err(Failure::Internal("not a proxy registry".into()));
    };
    let creds = super::credentials(state, proxy, &settings).await?;
    let resp = state
        .proxy
        .send(
            proxy,
            &creds,
            axum::http::Method::GET,
            url,
            axum::http::HeaderMap::new(),
        )
        .await
        .map_err(|e| transport_failure(url, &e))?;
    match resp.status().as_u16() {
        200 => {}
        404 | 410 => return Ok(None),
        s => return Err(Failure::Upstream(format!("the upstream answered {s}"))),
    }
    let limit = state.config.max_parsed_body_bytes as usize;
    let body = resp.bytes().await.map_err(|e| transport_failure(url, &e))?;
    if body.len() > limit {
        return Err(Failure::Upstream(
            "the upstream's document is too large".into(),
        ));
    }
    Ok(Some(body))
}

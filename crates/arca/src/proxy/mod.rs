//! The pull-through proxy engine: how a PROXY (GitFlic) / UPSTREAM (Harness) registry reads from
//! its upstream. One implementation for every format; a format only says *what* to fetch (a
//! metadata document by path, or a file whose URL and digest it read from that metadata) and how
//! to render it. The rules, from `proxy.md` of the reference:
//!
//! * **Metadata** ([`documents`]) is kept with its validators and is fresh for the proxy's
//!   `metadataRetrievalIntervalSeconds`; after that it is revalidated (`If-None-Match` /
//!   `If-Modified-Since`; a 304 refreshes it). A client asking for something the fresh copy does
//!   not list may force one revalidation per key every [`VERSION_MISS_INTERVAL`].
//! * **Files** ([`files`]) are fetched once, verified (length, and the digest the metadata
//!   published) before anything is kept, and recorded in the proxy's cache as ordinary content:
//!   listed, counted, collected like uploads. Nothing is kept on a mismatch, an error status or
//!   an empty body.
//! * **Single flight** ([`flight`]): concurrent misses for one key make one upstream request.
//! * **Stale if error**: an upstream that fails (5xx, 429, 401/403, timeout, connection error)
//!   leaves the last copy of metadata in service, marked `X-Arca-Cache: STALE`; after
//!   [`BREAKER_FAILURES`] failures in a row the upstream is not asked again for
//!   [`BREAKER_OPEN`], so the stale path stops paying the timeout. With nothing cached the answer
//!   is 502/504 naming the upstream's status.
//! * **Negative cache**: 404/410 only, for `proxy_negative_ttl_secs`, forgotten when the proxy's
//!   settings change (the key includes the settings' time stamp).
//! * **Offline** (`isOffline`): no upstream connection at all; what is cached is served.
//! * **Upstream requests** carry the proxy's own credentials (Basic), never the client's;
//!   redirects are followed by the HTTP client, which drops `Authorization` on a hop to another
//!   host. Only the configured upstream and URLs its own metadata names are ever fetched: a
//!   client's request chooses *which* listed file, never a URL (no SSRF).
//!
//! In-process state here (the breaker, the negative cache, the flights) is per node and bounded
//! by short lifetimes; everything that must survive or be shared lives in the stores. The
//! [`memo`] of stored documents' bodies is keyed by the digest their metadata-store row names on
//! each request, so it never outlives a refresh by any node; it is bounded in bytes. A file's
//! upstream fetch is single-flight across nodes too: the node holding the file's lease in the
//! metadata store fetches it, the others wait for its row (`files::fetch`).

pub(crate) mod auth;
pub mod documents;
pub mod files;
pub mod flight;
pub mod memo;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;
use crate::model::{ProxySettings, Registry};

/// Consecutive upstream failures after which the circuit opens.
pub const BREAKER_FAILURES: u32 = 3;
/// How long an open circuit keeps the upstream out of the path.
pub const BREAKER_OPEN: Duration = Duration::from_secs(30);
/// How often one key's metadata may be revalidated because a client asked for something the
/// fresh copy does not list.
pub const VERSION_MISS_INTERVAL: Duration = Duration::from_secs(10);

/// Why a fetch failed, in a form every waiter of a shared fetch can get a copy of.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The upstream does not have it (404/410), or the proxy is offline and has no copy.
    NotFound(String),
    /// The upstream answered with an error or broke the transfer (502).
    Upstream(String),
    /// The upstream did not answer in time (504).
    Timeout(String),
    /// Arca's own side failed (storage, database).
    Internal(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotFound(m)
            | Failure::Upstream(m)
            | Failure::Timeout(m)
            | Failure::Internal(m) => f.write_str(m),
        }
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> ApiError {
        match f {
            Failure::NotFound(m) => ApiError::NotFound(m),
            Failure::Upstream(m) => ApiError::BadGateway(m),
            Failure::Timeout(m) => ApiError::GatewayTimeout(m),
            Failure::Internal(m) => ApiError::Internal(anyhow::anyhow!(m)),
        }
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        match e {
            ApiError::NotFound(m) => Failure::NotFound(m),
            ApiError::BadGateway(m) => Failure::Upstream(m),
            ApiError::GatewayTimeout(m) => Failure::Timeout(m),
            other => Failure::Internal(other.to_string()),
        }
    }
}

/// The engine's shared state (one per process, in `AppState`).
pub struct ProxyEngine {
    client: reqwest::Client,
    negative_ttl: Duration,
    /// Proxy id → consecutive failures and when the circuit opened.
    health: Mutex<HashMap<String, (u32, Option<Instant>)>>,
    /// (proxy id, settings stamp, key) → until when a 404 is believed.
    negative: Mutex<HashMap<String, Instant>>,
    /// Key → when a version miss last forced a revalidation.
    misses: Mutex<HashMap<String, Instant>>,
    pub(crate) documents: flight::Flights<Result<documents::Fetched, Failure>>,
    /// Files being fetched (one spool per key), joined by concurrent readers.
    pub(crate) live: files::Fetches,
    /// Small documents a format resolves itself (OCI manifests and tags), one at a time per key.
    pub(crate) manifests:
        flight::Flights<Result<Option<crate::store::artifacts::FileRow>, Failure>>,
    pub(crate) tokens: auth::Tokens,
    /// Stored documents' bodies and what formats derive from them, by digest (see `memo`).
    pub(crate) memo: memo::Memo,
}

impl ProxyEngine {
    pub fn new(connect_timeout: Duration, negative_ttl: Duration) -> anyhow::Result<ProxyEngine> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            // A whole response may take long (a large file); a stalled one may not.
            .read_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::limited(10))
            .user_agent(concat!("arca/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ProxyEngine {
            client,
            negative_ttl,
            health: Mutex::default(),
            negative: Mutex::default(),
            misses: Mutex::default(),
            documents: flight::Flights::default(),
            live: files::Fetches::default(),
            manifests: flight::Flights::default(),
            tokens: auth::Tokens::default(),
            memo: memo::Memo::default(),
        })
    }

    /// Whether the circuit of this proxy's upstream is open (recent failures in a row).
    pub(crate) fn circuit_open(&self, proxy: &Registry) -> bool {
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        matches!(health.get(&proxy.id), Some((_, Some(at))) if at.elapsed() < BREAKER_OPEN)
    }

    /// Records the outcome of an upstream request for the circuit breaker.
    pub(crate) fn record_outcome(&self, proxy: &Registry, ok: bool) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            health.remove(&proxy.id);
            return;
        }
        let entry = health.entry(proxy.id.clone()).or_insert((0, None));
        entry.0 += 1;
        if entry.0 >= BREAKER_FAILURES {
            entry.1 = Some(Instant::now());
        }
    }

    /// The negative-cache key: settings changes (which move `updated_at`) forget old entries.
    fn negative_key(proxy: &Registry, key: &str) -> String {
        format!("{}|{}|{key}", proxy.id, proxy.updated_at)
    }

    pub(crate) fn known_missing(&self, proxy: &Registry, key: &str) -> bool {
        let k = Self::negative_key(proxy, key);
        let mut neg = self.negative.lock().unwrap_or_else(|e| e.into_inner());
        match neg.get(&k) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                neg.remove(&k);
                false
            }
            None => false,
        }
    }

    pub(crate) fn remember_missing(&self, proxy: &Registry, key: &str) {
        let mut neg = self.negative.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Bounded: expired entries go whenever the map grows large.
        if neg.len() > 100_000 {
            neg.retain(|_, until| *until > now);
        }
        let ttl = proxy
            .proxy
            .as_ref()
            .and_then(|p| p.negative_ttl_secs)
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(self.negative_ttl);
        neg.insert(Self::negative_key(proxy, key), now + ttl);
    }

    /// Whether a version miss on `key` may force a revalidation now (at most once per
    /// [`VERSION_MISS_INTERVAL`]); taking the slot is part of asking.
    pub(crate) fn may_revalidate_on_miss(&self, proxy: &Registry, key: &str) -> bool {
        let k = format!("{}|{key}", proxy.id);
        let mut misses = self.misses.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if misses.len() > 100_000 {
            misses.retain(|_, at| now.duration_since(*at) < VERSION_MISS_INTERVAL);
        }
        match misses.get(&k) {
            Some(at) if now.duration_since(*at) < VERSION_MISS_INTERVAL => false,
            _ => {
                misses.insert(k, now);
                true
            }
        }
    }
}

/// What a proxy presents to its upstream.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub user: Option<String>,
    pub secret: Option<String>,
}

/// A proxy's upstream credentials: the secret stored on it (GitFlic `token`, Harness `password`),
/// else the one its Harness secret reference names (`secretIdentifier` in `secretSpacePath`,
/// by default the proxy's own space), read from the secret store when it is needed.
pub(crate) async fn credentials(
    state: &crate::state::AppState,
    proxy: &Registry,
    settings: &ProxySettings,
) -> Result<Credentials, Failure> {
    let mut creds = Credentials {
        user: settings.username.clone(),
        secret: settings.secret.clone(),
    };
    if creds.secret.is_none()
        && let Some(auth) = &settings.harness_auth
        && let Some(id) = auth.get("secretIdentifier").and_then(|v| v.as_str())
    {
        let space = auth
            .get("secretSpacePath")
            .and_then(|v| v.as_str())
            .map(|p| p.trim_matches('/').to_string())
            .unwrap_or_else(|| proxy.scope_path.clone());
        creds.secret = state
            .db
            .secret_value(&space, id)
            .await
            .map_err(|e| Failure::Internal(e.to_string()))?;
        if creds.secret.is_none() {
            return Err(Failure::Upstream(format!(
                "the secret '{id}' that proxy '{}' refers to is not set in '{space}'",
                proxy.identifier
            )));
        }
    }
    Ok(creds)
}

/// `base` and a path below it, with exactly one slash between.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Describes a transport failure for a client: the upstream and what went wrong.
pub(crate) fn transport_failure(url: &str, e: &reqwest::Error) -> Failure {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    if e.is_timeout() {
        Failure::Timeout(format!("the upstream {host} did not answer in time"))
    } else if e.is_connect() {
        Failure::Upstream(format!("the upstream {host} could not be reached"))
    } else {
        Failure::Upstream(format!("the transfer from the upstream {host} failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PackageType, RegistryKind};

    #[test]
    fn breaker_opens_after_consecutive_failures_and_closes_on_success() {
        let e = ProxyEngine::new(Duration::from_secs(1), Duration::from_secs(60)).unwrap();
        let p = Registry::new("acme", "p", PackageType::Python, RegistryKind::Proxy);
        for _ in 0..BREAKER_FAILURES - 1 {
            e.record_outcome(&p, false);
        }
        assert!(!e.circuit_open(&p));
        e.record_outcome(&p, false);
        assert!(e.circuit_open(&p));
        e.record_outcome(&p, true);
        assert!(!e.circuit_open(&p));
    }

    #[test]
    fn negative_entries_are_forgotten_when_settings_change() {
        let e = ProxyEngine::new(Duration::from_secs(1), Duration::from_secs(60)).unwrap();
        let mut p = Registry::new("acme", "p", PackageType::Npm, RegistryKind::Proxy);
        e.remember_missing(&p, "left-pad");
        assert!(e.known_missing(&p, "left-pad"));
        assert!(!e.known_missing(&p, "right-pad"));
        p.updated_at += 1;
        assert!(!e.known_missing(&p, "left-pad"));
    }

    #[test]
    fn version_misses_revalidate_at_most_once_per_interval() {
        let e = ProxyEngine::new(Duration::from_secs(1), Duration::from_secs(60)).unwrap();
        let p = Registry::new("acme", "p", PackageType::Npm, RegistryKind::Proxy);
        assert!(e.may_revalidate_on_miss(&p, "a"));
        assert!(!e.may_revalidate_on_miss(&p, "a"));
        assert!(e.may_revalidate_on_miss(&p, "b"));
    }
}

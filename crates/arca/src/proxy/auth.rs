//! How a proxy authenticates to its upstream: Basic with the proxy's own credentials, and the
//! OCI Bearer token dance (`WWW-Authenticate: Bearer realm,service,scope` → a token for that
//! scope from the realm, cached until it expires, one retry). A client's own credentials are
//! never forwarded: every upstream request is built here from the proxy's settings alone.
//!
//! Distribution paths (`/v2/...`) are asked without credentials first (or with a token cached
//! for the repository), as registries expect; other upstreams get Basic up front, and a Bearer
//! challenge is answered there too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, header};

use super::{Credentials, ProxyEngine};
use crate::model::Registry;

/// Tokens are refreshed this long before the expiry the realm announced.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Expiry assumed when the realm does not say (the distribution spec's default is 60 s).
const DEFAULT_EXPIRY: Duration = Duration::from_secs(60);

/// Bearer tokens by (proxy, settings stamp, repository): bounded, entries expire.
#[derive(Default)]
pub(crate) struct Tokens {
    by_key: Mutex<HashMap<String, (String, Instant)>>,
}

impl Tokens {
    fn get(&self, key: &str) -> Option<String> {
        let map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(t, _)| t.clone())
    }

    fn put(&self, key: String, token: String, ttl: Duration) {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() > 10_000 {
            map.retain(|_, (_, until)| *until > now);
        }
        map.insert(key, (token, now + ttl));
    }
}

/// The repository a distribution-API URL addresses (`/v2/<name>/manifests|blobs|tags|referrers/…`).
fn oci_repository(url: &str) -> Option<String> {
    let path = url::Url::parse(url).ok()?.path().to_string();
    let rest = path.split_once("/v2/")?.1;
    for marker in ["/manifests/", "/blobs/", "/tags/", "/referrers/"] {
        if let Some((name, _)) = rest.rsplit_once(marker) {
            return Some(name.to_string());
        }
    }
    None
}

/// The parameters of a `WWW-Authenticate: Bearer …` challenge. Written by hand: the header is
/// a short list of `key="value"` pairs, and the crates that parse it are unmaintained.
pub(crate) fn bearer_challenge(value: &str) -> Option<HashMap<String, String>> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let after = after.trim_start();
        let (value, rest) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(key.trim().to_ascii_lowercase(), value.to_string());
        s = rest.trim_start().trim_start_matches(',').trim_start();
    }
    params.contains_key("realm").then_some(params)
}

impl ProxyEngine {
    /// Sends one upstream request for `proxy` with its credentials, answering a Bearer
    /// challenge once. `headers` are the request's own (Accept, validators).
    pub(crate) async fn send(
        &self,
        proxy: &Registry,
        creds: &Credentials,
        method: Method,
        url: &str,
        headers: HeaderMap,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let repository = oci_repository(url);
        let token_key = format!(
            "{}|{}|{}",
            proxy.id,
            proxy.updated_at,
            repository.as_deref().unwrap_or("")
        );
        let build = |auth: Auth| {
            let mut req = self
                .client
                .request(method.clone(), url)
                .headers(headers.clone());
            match auth {
                Auth::None => {}
                Auth::Bearer(t) => req = req.bearer_auth(t),
                Auth::Basic => req = creds.apply(req),
            }
            req
        };
        let first = match self.tokens.get(&token_key) {
            Some(t) => Auth::Bearer(t),
            // Registries challenge for a scoped token; Basic up front would not be one.
            None if repository.is_some() => Auth::None,
            None => Auth::Basic,
        };
        let tried_basic = matches!(first, Auth::Basic);
        let resp = build(first).send().await?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(bearer_challenge);
        match challenge {
            Some(params) => match self.fetch_token(creds, &params).await {
                Some((token, ttl)) => {
                    self.tokens.put(token_key, token.clone(), ttl);
                    build(Auth::Bearer(token)).send().await
                }
                None => Ok(resp),
            },
            None if !tried_basic && creds.is_set() => build(Auth::Basic).send().await,
            None => Ok(resp),
        }
    }

    /// A token from the challenge's realm for its scope, presenting the proxy's credentials.
    async fn fetch_token(
        &self,
        creds: &Credentials,
        params: &HashMap<String, String>,
    ) -> Option<(String, Duration)> {
        let mut realm = url::Url::parse(params.get("realm")?).ok()?;
        if !matches!(realm.scheme(), "http" | "https") {
            return None;
        }
        {
            let mut q = realm.query_pairs_mut();
            for k in ["service", "scope"] {
                if let Some(v) = params.get(k) {
                    q.append_pair(k, v);
                }
            }
        }
        let resp = creds
            .apply(self.client.get(realm))
            .send()
            .await
            .ok()?
            .error_for_status()
            .ok()?;
        let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.ok()?).ok()?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())?
            .to_string();
        let ttl = body["expires_in"]
            .as_u64()
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_EXPIRY)
            .saturating_sub(EXPIRY_MARGIN)
            .max(Duration::from_secs(5));
        Some((token, ttl))
    }
}

enum Auth {
    None,
    Basic,
    Bearer(String),
}

impl Credentials {
    fn is_set(&self) -> bool {
        self.user.as_deref().is_some_and(|u| !u.is_empty())
            || self.secret.as_deref().is_some_and(|s| !s.is_empty())
    }

    /// Basic with a user name, else the secret as a Bearer token (a personal access token).
    pub(crate) fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (&self.user, &self.secret) {
            (Some(u), secret) if !u.is_empty() => req.basic_auth(u, secret.as_deref()),
            (_, Some(token)) if !token.is_empty() => req.bearer_auth(token),
            _ => req,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let p = bearer_challenge(
            r#"Bearer realm="http://127.0.0.1:5/v2/token",service="arca",scope="repository:a/b:pull""#,
        )
        .unwrap();
        assert_eq!(p["realm"], "http://127.0.0.1:5/v2/token");
        assert_eq!(p["service"], "arca");
        assert_eq!(p["scope"], "repository:a/b:pull");
        let p = bearer_challenge("bearer realm=http://h/t, service=s").unwrap();
        assert_eq!(p["realm"], "http://h/t");
        assert_eq!(p["service"], "s");
        assert!(bearer_challenge(r#"Basic realm="x""#).is_none());
        assert!(bearer_challenge(r#"Bearer service="x""#).is_none());
        assert!(bearer_challenge(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn repositories_of_distribution_urls() {
        assert_eq!(
            oci_repository("http://h/v2/acme/img/x/manifests/latest").as_deref(),
            Some("acme/img/x")
        );
        assert_eq!(
            oci_repository("http://h/prefix/v2/a/blobs/sha256:00").as_deref(),
            Some("a")
        );
        assert_eq!(oci_repository("http://h/simple/x/"), None);
    }
}

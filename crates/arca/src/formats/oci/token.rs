//! The Docker token flow: `/v2/token` exchanges credentials (or none, for public registries) for a
//! short-lived token scoped to repositories and actions.
//!
//! Tokens are `arca_oci.<payload>.<signature>`: base64url JSON claims and an HMAC-SHA256 over
//! them. Written by hand rather than as JWTs: only Arca reads them, and the signing key is a
//! shared secret in the metadata store, so every server process verifies every other's tokens.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::OnceCell;

use super::{OciError, render, resolve_repo};
use crate::auth::Need;
use crate::error::ApiError;
use crate::model::{now_ms, rfc3339};
use crate::state::AppState;

pub const PREFIX: &str = "arca_oci.";
/// Token lifetime: clients fetch a new one when it runs out.
const LIFETIME_SECS: i64 = 300;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Access {
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user, or none for anonymous pulls.
    pub sub: Option<String>,
    /// Expiry, milliseconds since the epoch.
    pub exp: i64,
    pub access: Vec<Access>,
}

impl Claims {
    pub fn grants(&self, name: &str, action: &str) -> bool {
        self.access
            .iter()
            .any(|a| a.name == name && a.actions.iter().any(|x| x == action || x == "*"))
    }
}

static KEY: OnceCell<Vec<u8>> = OnceCell::const_new();

async fn key(state: &AppState) -> Result<&'static [u8], ApiError> {
    KEY.get_or_try_init(|| async {
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        let v = state.db.shared_secret("oci_token_key", &fresh).await?;
        hex::decode(v).map_err(|e| ApiError::Internal(anyhow::anyhow!("bad token key: {e}")))
    })
    .await
    .map(Vec::as_slice)
}

fn sign(key: &[u8], payload: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

pub async fn verify(state: &AppState, token: &str) -> Result<Claims, String> {
    let body = token.strip_prefix(PREFIX).ok_or("not an OCI token")?;
    let (payload, sig) = body.split_once('.').ok_or("malformed token")?;
    let key = key(state).await.map_err(|e| e.public_message())?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    let sig = B64.decode(sig).map_err(|_| "malformed token signature")?;
    mac.verify_slice(&sig)
        .map_err(|_| "invalid token signature")?;
    let claims: Claims =
        serde_json::from_slice(&B64.decode(payload).map_err(|_| "malformed token")?)
            .map_err(|_| "malformed token claims")?;
    if claims.exp < now_ms() {
        return Err("the token has expired".into());
    }
    Ok(claims)
}

/// `GET /v2/token?service=..&scope=repository:<name>:pull,push[&scope=...]`.
pub async fn token_endpoint(State(state): State<AppState>, req: Request) -> Response {
    match issue(&state, req).await {
        Ok(r) => r,
        Err(e) => render(&state, e),
    }
}

async fn issue(state: &AppState, req: Request) -> Result<Response, OciError> {
    let principal = state.principal(req.headers()).await.map_err(|e| match e {
        ApiError::Unauthenticated(m) => OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", m),
        other => other.into(),
    })?;
    let scopes: Vec<String> = crate::http::query_pairs(req.uri().query())
        .into_iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let mut access = Vec::new();
    for scope in scopes {
        let mut it = scope.splitn(3, ':');
        let (kind, name, actions) = (it.next(), it.next(), it.next());
        let (Some("repository"), Some(name), Some(actions)) = (kind, name, actions) else {
            continue;
        };
        // Unknown or invalid repositories get an entry without grants, exactly like existing
        // ones the caller may not use: the answer must not tell which names exist.
        let Ok(repo) = resolve_repo(state, name).await else {
            access.push(Access {
                name: name.to_string(),
                actions: Vec::new(),
            });
            continue;
        };
        let mut granted = Vec::new();
        for action in actions.split(',') {
            let need = match action {
                "pull" => Need::Read,
                "push" => Need::Write,
                "delete" => Need::Delete,
                "*" => Need::Delete,
                _ => continue,
            };
            if principal.can(&repo.registry, need) {
                granted.push(action.to_string());
            }
        }
        access.push(Access {
            name: name.to_string(),
            actions: granted,
        });
    }
    let claims = Claims {
        sub: principal.user_name().map(str::to_string),
        exp: now_ms() + LIFETIME_SECS * 1000,
        access,
    };
    let payload = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let token = format!("{PREFIX}{payload}.{}", sign(key(state).await?, &payload));
    let mut resp = axum::Json(json!({
        "token": token, "access_token": token, "expires_in": LIFETIME_SECS,
        "issued_at": rfc3339(now_ms()),
    }))
    .into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

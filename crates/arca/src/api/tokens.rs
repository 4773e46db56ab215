//! Arca's own API tokens over HTTP (`/arca/v1/tokens`): a signed-in user creates, lists and
//! revokes their tokens; an admin does so for users within their admin scope (`?user=<name>`).
//!
//! A token never carries more than its creator may do: it is bounded by the limits of the
//! credentials that created it (scope, role and expiry of the creating token), may be narrowed
//! further (`scope`, `role`, `expiresAt`/`expiresInDays`), and at use its rights are its user's
//! intersected with its limits (`Principal::role_at`). The secret is returned once, at creation.

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Principal, generate_token, hash_token, within};
use crate::error::{ApiError, ApiResult};
use crate::http::{query_get, query_pairs};
use crate::model::{Role, now_ms};
use crate::state::AppState;
use crate::store::auth::{NewToken, TokenInfo, TokenLimit, User};

/// The path of the token collection.
pub const TOKENS_PATH: &str = "/arca/v1/tokens";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(TOKENS_PATH, get(list).post(create))
        .route(&format!("{TOKENS_PATH}/{{id}}"), delete(revoke))
}

/// The body of `POST /arca/v1/tokens`; every field is optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// A name to recognise the token by (default `api`).
    pub name: Option<String>,
    /// Only registries at or below this scope (`account[/org[/project]]`).
    pub scope: Option<String>,
    /// At most this role: `reader`, `deployer` or `admin`.
    pub role: Option<String>,
    /// Expiry in milliseconds since the epoch.
    #[serde(rename = "expiresAt")]
    pub expires_at: Option<i64>,
    /// Expiry in days from now.
    #[serde(rename = "expiresInDays")]
    pub expires_in_days: Option<i64>,
}

/// The caller, or 401.
async fn caller(state: &AppState, headers: &HeaderMap) -> ApiResult<Principal> {
    let p = state.principal(headers).await?;
    if p.is_anonymous() {
        return Err(ApiError::Unauthenticated("authentication required".into()));
    }
    Ok(p)
}

/// The user whose tokens a request is about: the caller, or `?user=` if the caller may act for
/// them (see [`may_act_for`]).
async fn subject(state: &AppState, who: &Principal, query: Option<&str>) -> ApiResult<User> {
    let pairs = query_pairs(query);
    let me = match who {
        Principal::User { user, .. } => user,
        Principal::Anonymous => {
            return Err(ApiError::Unauthenticated("authentication required".into()));
        }
    };
    match query_get(&pairs, "user").filter(|n| !n.is_empty()) {
        None => Ok(me.clone()),
        Some(name) if name == me.name => Ok(me.clone()),
        Some(name) => {
            let other = state
                .db
                .user_by_name(name)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("user '{name}' doesn't exist")))?;
            may_act_for(state, who, &other).await?;
            Ok(other)
        }
    }
}

/// An admin acts for another user when every scope that user holds a role on lies within the
/// caller's admin scope (so the user can do nothing the caller cannot); global administrators
/// only by other unrestricted global administrators.
async fn may_act_for(state: &AppState, who: &Principal, other: &User) -> ApiResult<()> {
    if who.is_global_admin() {
        return Ok(());
    }
    let roles = state.db.roles_of(&other.id).await?;
    let covered = !other.is_admin
        && !roles.is_empty()
        && roles
            .iter()
            .all(|(path, _)| who.role_at(path) == Some(Role::Admin));
    if covered {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "managing the tokens of '{}' needs the admin role on every scope they hold a role on",
            other.name
        )))
    }
}

/// The strongest role `p` holds at `scope` or anywhere below it.
fn strongest_within(p: &Principal, scope: &str) -> Option<Role> {
    let below = match p {
        Principal::User { roles, user, .. } if !user.is_admin => roles
            .iter()
            .filter(|(path, _)| within(path, scope))
            .filter_map(|(path, _)| p.role_at(path))
            .max(),
        _ => None,
    };
    p.role_at(scope).max(below)
}

fn parse_request(body: &Bytes) -> ApiResult<TokenRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(TokenRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

/// The limits of a new token: the request's, within those of the caller's credentials.
async fn new_limit(state: &AppState, who: &Principal, req: &TokenRequest) -> ApiResult<TokenLimit> {
    let outer = who.limit();
    let scope = match req.scope.as_deref().map(|s| s.trim_matches('/')) {
        Some("") | None => outer.scope.clone(),
        Some(s) => {
            let s = s.to_ascii_lowercase();
            if state.db.scope_by_path(&s).await?.is_none() {
                return Err(ApiError::bad("scope", format!("scope '{s}' doesn't exist")));
            }
            if let Some(o) = &outer.scope
                && !within(&s, o)
            {
                return Err(ApiError::forbidden(format!(
                    "the signed-in token is limited to '{o}': a new token cannot reach '{s}'"
                )));
            }
            Some(s)
        }
    };
    let role = match req.role.as_deref() {
        None => outer.role,
        Some(r) => {
            let r = Role::parse(r).ok_or_else(|| {
                ApiError::bad(
                    "role",
                    format!("unknown role '{r}': expected reader, deployer or admin"),
                )
            })?;
            if let Some(o) = outer.role
                && r > o
            {
                return Err(ApiError::forbidden(format!(
                    "the signed-in token is limited to the {} role",
                    o.as_str()
                )));
            }
            Some(r)
        }
    };
    let now = now_ms();
    let expires_at = match (req.expires_at, req.expires_in_days) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "expiresAt",
                "give expiresAt or expiresInDays, not both",
            ));
        }
        (Some(at), None) => Some(at),
        (None, Some(days)) if (1..=36_500).contains(&days) => Some(now + days * 86_400_000),
        (None, Some(_)) => {
            return Err(ApiError::bad(
                "expiresInDays",
                "expiresInDays must be between 1 and 36500",
            ));
        }
        (None, None) => None,
    };
    if let Some(at) = expires_at
        && at <= now
    {
        return Err(ApiError::bad(
            "expiresAt",
            "expiresAt must be in the future",
        ));
    }
    let expires_at = match (expires_at, outer.expires_at) {
        (Some(at), Some(o)) if at > o => {
            return Err(ApiError::forbidden(
                "a new token cannot outlive the signed-in token",
            ));
        }
        (None, o) => o,
        (at, _) => at,
    };
    Ok(TokenLimit {
        scope,
        role,
        expires_at,
    })
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let who = caller(&state, &headers).await?;
    let req = parse_request(&body)?;
    let name = req.name.as_deref().map(str::trim).unwrap_or("api");
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad(
            "name",
            "name must be 1~100 characters without control characters",
        ));
    }
    let owner = subject(&state, &who, query.as_deref()).await?;
    let limit = new_limit(&state, &who, &req).await?;
    // What the owner would hold with these limits must be something: refuse a role the owner
    // (through the caller's credentials) does not hold anywhere within the scope.
    if let Some(role) = limit.role {
        let holder = Principal::User {
            roles: state.db.roles_of(&owner.id).await?,
            user: owner.clone(),
            limit: who.limit(),
        };
        let scope = limit.scope.as_deref().unwrap_or("");
        let held = match &limit.scope {
            Some(s) => strongest_within(&holder, s),
            None => strongest_anywhere(&holder),
        };
        if held.is_none_or(|h| h < role) {
            return Err(ApiError::forbidden(format!(
                "'{}' does not hold the {} role{}",
                owner.name,
                role.as_str(),
                if scope.is_empty() {
                    String::new()
                } else {
                    format!(" on '{scope}'")
                }
            )));
        }
    }
    let token = generate_token();
    let id = state
        .db
        .insert_limited_token(&NewToken {
            user_id: &owner.id,
            name,
            token_hash: &hash_token(&token),
            limit: &limit,
            created_by: who.user_name(),
        })
        .await?;
    let info = state
        .db
        .token_by_id(&id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("token {id} vanished")))?;
    let mut view = token_view(&info);
    view["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The strongest role anywhere (for a token limited by role only).
fn strongest_anywhere(p: &Principal) -> Option<Role> {
    match p {
        Principal::User { user, .. } if user.is_admin => p.role_at(""),
        Principal::User { roles, .. } => roles.iter().filter_map(|(path, _)| p.role_at(path)).max(),
        Principal::Anonymous => None,
    }
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<Value>>> {
    let who = caller(&state, &headers).await?;
    let owner = subject(&state, &who, query.as_deref()).await?;
    let tokens = state.db.list_tokens(Some(&owner.name)).await?;
    Ok(Json(tokens.iter().map(token_view).collect()))
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<StatusCode> {
    let who = caller(&state, &headers).await?;
    let missing = || ApiError::not_found(format!("token '{id}' doesn't exist"));
    let info = state.db.token_by_id(&id).await?.ok_or_else(missing)?;
    let pairs = query_pairs(query.as_deref());
    if query_get(&pairs, "user").is_some_and(|u| !u.is_empty() && u != info.user_name) {
        return Err(missing());
    }
    if who.user_name() != Some(info.user_name.as_str()) {
        let owner = state
            .db
            .user_by_name(&info.user_name)
            .await?
            .ok_or_else(missing)?;
        // Someone else's token is as missing as an unknown one to those who cannot manage it.
        may_act_for(&state, &who, &owner)
            .await
            .map_err(|_| missing())?;
    }
    // A narrowed token revokes only tokens as narrow as itself.
    let outer = who.limit();
    let inner = &info.limit;
    let scope_ok = outer
        .scope
        .as_deref()
        .is_none_or(|o| inner.scope.as_deref().is_some_and(|s| within(s, o)));
    let role_ok = outer
        .role
        .is_none_or(|o| inner.role.is_some_and(|r| r <= o));
    if !(scope_ok && role_ok) {
        return Err(ApiError::forbidden(
            "the signed-in token is narrower than the token to revoke",
        ));
    }
    if info.revoked_at.is_some() || !state.db.revoke_token(&id).await? {
        return Err(missing());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A token as the API shows it (never its secret).
pub fn token_view(t: &TokenInfo) -> Value {
    let now = now_ms();
    let state = if t.revoked_at.is_some() {
        "revoked"
    } else if t.limit.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": t.id,
        "name": t.name,
        "user": t.user_name,
        "scope": t.limit.scope,
        "role": t.limit.role.map(Role::as_str),
        "createdAt": t.created_at,
        "expiresAt": t.limit.expires_at,
        "revokedAt": t.revoked_at,
        "createdBy": t.created_by,
        "state": state,
    })
}

//! Arca's secret store over HTTP (`/arca/v1/secrets`): admins of a space set, list and delete the
//! secrets that upstream proxies refer to by name (Harness `secretIdentifier` and
//! `secretSpacePath`). Values go in and never come out.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::http::query_get;
use crate::model::{Role, rfc3339, validate_identifier};
use crate::state::AppState;
use crate::store::scopes::validate_path;

#[derive(Deserialize)]
struct NewSecret {
    space: Option<String>,
    identifier: Option<String>,
    value: Option<String>,
}

/// The space a request names, checked, and the caller's admin role on it.
async fn admin_space(
    state: &AppState,
    headers: &HeaderMap,
    space: Option<&str>,
) -> ApiResult<String> {
    let principal = state.principal(headers).await?;
    if principal.is_anonymous() {
        return Err(ApiError::Unauthenticated("authentication required".into()));
    }
    let space = space
        .map(|s| s.trim_matches('/').to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad("space", "space is required"))?;
    validate_path("space", &space)?;
    principal.require_scope(&space, Role::Admin)?;
    Ok(space)
}

/// `POST /arca/v1/secrets` `{"space", "identifier", "value"}`: sets (or replaces) a secret.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let limit = state.config.max_api_body_bytes;
    crate::http::check_length(&headers, limit)?;
    let body = crate::http::read_body(body, limit.min(usize::MAX as u64) as usize).await?;
    let req: NewSecret = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad("body", format!("invalid JSON body: {e}")))?;
    let space = admin_space(&state, &headers, req.space.as_deref()).await?;
    let identifier = req
        .identifier
        .ok_or_else(|| ApiError::bad("identifier", "identifier is required"))?;
    validate_identifier("identifier", &identifier)?;
    let value = req
        .value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad("value", "value is required"))?;
    state.db.set_secret(&space, &identifier, &value).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"space": space, "identifier": identifier})),
    )
        .into_response())
}

/// `GET /arca/v1/secrets?space=<path>`: the space's secrets, without their values.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let pairs = crate::http::query_pairs(q.as_deref());
    let space = admin_space(&state, &headers, query_get(&pairs, "space")).await?;
    let items: Vec<_> = state
        .db
        .list_secrets(&space)
        .await?
        .into_iter()
        .map(|s| {
            json!({"space": s.scope_path, "identifier": s.identifier,
                   "createdAt": rfc3339(s.created_at), "updatedAt": rfc3339(s.updated_at)})
        })
        .collect();
    Ok(Json(json!({ "secrets": items })).into_response())
}

/// `DELETE /arca/v1/secrets?space=<path>&identifier=<id>`.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let pairs = crate::http::query_pairs(q.as_deref());
    let space = admin_space(&state, &headers, query_get(&pairs, "space")).await?;
    let identifier = query_get(&pairs, "identifier")
        .ok_or_else(|| ApiError::bad("identifier", "identifier is required"))?;
    if !state.db.delete_secret(&space, identifier).await? {
        return Err(ApiError::not_found(format!(
            "no secret '{identifier}' in '{space}'"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

//! The GitFlic "registry repositories" dialect.
//!
//! GitFlic paths carry no account: they address the configured default account. A company is an
//! org of that account; a project `{owner}/{project}` lives under the org named after its owner
//! (a company or a user's own org); the whole-service ("instance") level is the account itself.
//! The seed's two instance forms, `/registry/instance/{projectAlias}/repositories` (list, get,
//! create; the alias is accepted and ignored) and `/registry/instance/repositories` (modify,
//! delete), are both served for every operation.
//!
//! This file routes: [`ScopeRef`] reads the scope from any of the forms and [`Authed`] the
//! signed-in caller, so `repositories` and `packages` have one handler per operation.

mod packages;
mod repositories;
mod trash;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::routing::{get, post};
use serde_json::{Value, json};

use self::packages::{list_packages, one_package, version_list};
pub use self::repositories::{
    LocalSettings, ProxySettingsDto, RepositoryRequest, VirtualSettingsDto,
};
use self::repositories::{create, delete, get_one, list, modify};
pub use self::trash::RestoreRequest;
use super::common::check_size;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::http::{query_int, query_pairs};
use crate::state::AppState;

/// The scope forms of a path prefix; [`ScopeRef`] reads the scope back from their parameters.
const PROJECT: &str = "/registry/project/{owner}/{project}";
const COMPANY: &str = "/registry/company/{company}";

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    // Repositories: the same operations in a project and in a company.
    for scope in [PROJECT, COMPANY] {
        router = router
            .route(&format!("{scope}/repositories"), get(list).post(create))
            .route(
                &format!("{scope}/repositories/{{uuid}}"),
                get(get_one).put(modify).delete(delete),
            );
    }
    // The instance's two forms (see the module doc), each for every method.
    for scope in ["/registry/instance/{alias}", "/registry/instance"] {
        router = router
            .route(&format!("{scope}/repositories"), get(list).post(create))
            .route(
                &format!("{scope}/repositories/{{uuid}}"),
                get(get_one).put(modify).delete(delete),
            );
    }
    // Arca's extension on a TRASH_CAN: what it holds, and restoring a version (see `trash`).
    for scope in [
        PROJECT,
        COMPANY,
        "/registry/instance/{alias}",
        "/registry/instance",
    ] {
        router = router
            .route(
                &format!("{scope}/repositories/{{uuid}}/trash"),
                get(trash::list),
            )
            .route(
                &format!("{scope}/repositories/{{uuid}}/restore"),
                post(trash::restore),
            );
    }
    // Packages (GitFlic's package API), over every registry repository of the scope; the
    // instance's have no prefix.
    for scope in [PROJECT, COMPANY, "/registry"] {
        router = router
            .route(&format!("{scope}/package"), get(list_packages))
            .route(&format!("{scope}/package/{{package}}"), get(one_package))
            .route(
                &format!("{scope}/package/{{package}}/version-list"),
                get(version_list),
            );
    }
    // Every error is JSON, a method the path does not have too.
    router.method_not_allowed_fallback(|| async {
        ApiError::MethodNotAllowed("this path does not take that method".into())
    })
}

/// The scope path a route addresses, from its path parameters: `{owner}/{project}` is a project
/// (in the org named after its owner), `{company}` an org, and neither the account itself (an
/// instance route's `{alias}` is accepted and ignored). Names are lowercased as scope paths are.
/// One extractor for all three forms, so each operation has one handler.
pub struct ScopeRef(pub String);

impl FromRequestParts<AppState> for ScopeRef {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let params = path_params(parts, state).await?;
        let account = &state.config.default_account;
        let path = match (
            params.get("owner"),
            params.get("project"),
            params.get("company"),
        ) {
            (Some(owner), Some(project), _) => format!(
                "{account}/{}/{}",
                owner.to_ascii_lowercase(),
                project.to_ascii_lowercase()
            ),
            (_, _, Some(company)) => format!("{account}/{}", company.to_ascii_lowercase()),
            _ => account.clone(),
        };
        Ok(ScopeRef(path))
    }
}

/// The repository `{uuid}` or `{package}` id a route names after its scope, in its stored
/// spelling (an upper-case UUID names the same repository).
pub struct ItemId(pub String);

impl FromRequestParts<AppState> for ItemId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let mut params = path_params(parts, state).await?;
        params
            .remove("uuid")
            .or_else(|| params.remove("package"))
            .map(|id| ItemId(crate::model::canonical_id(&id)))
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("route without an id parameter")))
    }
}

async fn path_params(parts: &mut Parts, state: &AppState) -> ApiResult<HashMap<String, String>> {
    Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// The caller, who must be signed in: every GitFlic endpoint needs a user.
pub struct Authed(pub Principal);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let p = state.principal(&parts.headers).await?;
        if p.is_anonymous() {
            return Err(ApiError::Unauthenticated("authentication required".into()));
        }
        Ok(Authed(p))
    }
}

/// `page` (0-based) and `size` (default 10, as the seed's example answers), Spring style.
pub(super) fn pager(q: Option<String>) -> ApiResult<(i64, i64)> {
    let q = query_pairs(q.as_deref());
    Ok((
        query_int(&q, "page")?.unwrap_or(0),
        check_size(query_int(&q, "size")?.unwrap_or(10))?,
    ))
}

/// A Spring page: `page` numbers, and `_embedded.<key>` only when there are items.
pub(super) fn paged(key: &str, items: Vec<Value>, total: i64, page: i64, size: i64) -> Value {
    let mut body = json!({"page": {"size": size, "totalElements": total, "totalPages": (total + size - 1) / size, "number": page}});
    if !items.is_empty() {
        body["_embedded"] = json!({ key: items });
    }
    body
}

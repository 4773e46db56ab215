//! Arca's extension to the GitFlic dialect: the owner's TRASH_CAN lists what it holds and restores
//! a version into the repository it was deleted from. GitFlic documents neither; the semantics
//! are those of the Harness restore (`api::harness::deleted`), so both dialects agree:
//!
//! * `GET {scope}/repositories/{trashUuid}/trash`: the trashed versions, most recently deleted
//!   first, as a Spring page (`_embedded.trashedVersionList`), each naming its original
//!   repository by uuid (`repositoryUuid`) and title, the package, the version and `deletedAt`;
//! * `POST {scope}/repositories/{trashUuid}/restore` with `{"packageId", "version"}` (the
//!   `packageId` of a listed entry): bytes and metadata back into the original repository (200
//!   with the restored entry); 409 when that repository has the version again, 404 when the
//!   version is not in this trash or its repository no longer exists.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Authed, ItemId, ScopeRef, paged, pager};
use crate::auth::{Need, Principal};
use crate::error::{ApiError, ApiResult};
use crate::model::{Registry, RegistryKind};
use crate::state::AppState;
use crate::store::artifacts::{PackageRow, VersionRow};
use crate::store::paging::{Page, SortField};

/// The TRASH_CAN `uuid` of the scope, as the caller may see it.
async fn trash_can(
    state: &AppState,
    principal: &Principal,
    scope_path: &str,
    uuid: &str,
) -> ApiResult<Registry> {
    match state.db.registry_by_id(uuid).await? {
        Some(r)
            if r.kind == RegistryKind::Trash
                && crate::store::scopes::same_path(&r.scope_path, scope_path)
                && principal.can(&r, Need::Read) =>
        {
            Ok(r)
        }
        _ => Err(ApiError::not_found(format!(
            "no TRASH_CAN '{uuid}' in '{scope_path}'"
        ))),
    }
}

/// A trash package's original repository id and package name (`<registry id>/<package>`).
fn origin(p: &PackageRow) -> Option<(&str, &str)> {
    p.name.split_once('/')
}

fn entry(p: &PackageRow, v: &VersionRow, reg: Option<&Registry>) -> Value {
    let (reg_id, name) = origin(p).unwrap_or(("", p.name.as_str()));
    json!({
        "packageId": p.id, "name": name, "version": v.version, "size": v.size,
        "repositoryUuid": reg_id, "repositoryTitle": reg.map(|r| r.identifier.clone()),
        "deletedAt": v.updated_at,
    })
}

/// `GET {scope}/repositories/{trashUuid}/trash`.
pub(super) async fn list(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(uuid): ItemId,
    Authed(principal): Authed,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let state = &state;
    let trash = trash_can(state, &principal, &scope_path, &uuid).await?;
    let (page, size) = pager(q)?;
    let all = Page::new(0, i64::MAX, SortField::Name, false, None);
    let (_, pkgs) = state
        .db
        .list_packages(std::slice::from_ref(&trash.id), &[], &all)
        .await?;
    let mut rows: Vec<(i64, Value)> = Vec::new();
    for p in &pkgs {
        let reg = match origin(p) {
            Some((id, _)) => state.db.registry_by_id(id).await?,
            None => None,
        };
        // What the caller could not read in its repository stays hidden here too.
        if reg.as_ref().is_some_and(|r| !principal.can(r, Need::Read)) {
            continue;
        }
        for v in state.db.package_versions(&p.id).await? {
            rows.push((v.updated_at, entry(p, &v, reg.as_ref())));
        }
    }
    rows.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let total = rows.len() as i64;
    let offset = usize::try_from(crate::api::common::page_offset(page, size)?).unwrap_or(0);
    let items: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(size as usize)
        .map(|(_, v)| v)
        .collect();
    Ok(Json(paged("trashedVersionList", items, total, page, size)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRequest {
    pub package_id: String,
    pub version: String,
}

/// `POST {scope}/repositories/{trashUuid}/restore`.
pub(super) async fn restore(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(uuid): ItemId,
    Authed(principal): Authed,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let state = &state;
    let trash = trash_can(state, &principal, &scope_path, &uuid).await?;
    let req: RestoreRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad("body", format!("expected {{packageId, version}}: {e}")))?;
    let not_found = || {
        ApiError::not_found(format!(
            "no deleted version '{}' of package '{}' in this TRASH_CAN",
            req.version, req.package_id
        ))
    };
    let pkg = state
        .db
        .package_by_id(&req.package_id)
        .await?
        .filter(|p| p.registry_id == trash.id)
        .ok_or_else(not_found)?;
    let v = state
        .db
        .version_by_name(&pkg.id, &req.version)
        .await?
        .ok_or_else(not_found)?;
    let (reg_id, name) = origin(&pkg).ok_or_else(not_found)?;
    let reg = state
        .db
        .registry_by_id(reg_id)
        .await?
        .filter(|r| principal.can(r, Need::Read))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "the repository '{reg_id}' that '{name}' was deleted from no longer exists"
            ))
        })?;
    principal.check(&reg, Need::Delete)?;
    state.db.restore_version(&reg, name, &pkg, &v).await?;
    Ok(Json(json!({
        "name": name, "version": v.version, "repositoryUuid": reg.id,
        "repositoryTitle": reg.identifier, "restored": true,
    }))
    .into_response())
}

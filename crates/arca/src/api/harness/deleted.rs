//! Deleted versions in the Harness dialect, which has no trash registry: a deleted version stays
//! visible on the registry it was deleted from, with `deletedAt` set, in
//! `GET .../artifact/{a}/versions?deleted=include|only` (`exclude`, the default, lists live ones);
//! `POST .../artifact/{a}/+/version/{v}/restore` puts it back, and deleting a version (or an
//! artifact) that is only in the trash purges it. The versions live in the trash of the registry's
//! scope (`store::trash`); a proxy's are those of its cache ([`storage`]).

use axum::response::Response;
use serde_json::{Value, json};

use super::Ctx;
use super::requests::paging;
use super::views::{done, list_json, success, version_json};
use crate::api::common::page_offset;
use crate::auth::Need;
use crate::error::{ApiError, ApiResult};
use crate::http::query_get;
use crate::model::{Registry, RegistryKind};
use crate::state::AppState;
use crate::store::artifacts::{PackageRow, VersionRow};

/// Where a registry's artifacts are stored: a caching proxy's in its cache, any other's in itself.
pub(super) async fn storage(state: &AppState, reg: &Registry) -> ApiResult<Registry> {
    if reg.kind == RegistryKind::Proxy
        && let Some(cache) = state.db.cache_of_proxy(&reg.id).await?
    {
        return Ok(cache);
    }
    Ok(reg.clone())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deleted {
    Exclude,
    Include,
    Only,
}

fn deleted_mode(query: &[(String, String)]) -> ApiResult<Deleted> {
    match query_get(query, "deleted") {
        None | Some("") | Some("exclude") => Ok(Deleted::Exclude),
        Some("include") => Ok(Deleted::Include),
        Some("only") => Ok(Deleted::Only),
        Some(o) => Err(ApiError::bad(
            "deleted",
            format!("deleted must be exclude, include or only, got '{o}'"),
        )),
    }
}

/// A version as the version list shows it, with `deletedAt` (epoch ms) when it is deleted.
fn version_item(
    state: &AppState,
    reg: &Registry,
    name: &str,
    p: &PackageRow,
    v: &VersionRow,
    deleted: bool,
) -> Value {
    let p = PackageRow {
        name: name.to_string(),
        ..p.clone()
    };
    let mut item = version_json(state, reg, &p, v);
    item["deletedAt"] = if deleted {
        json!(v.updated_at.to_string())
    } else {
        Value::Null
    };
    item
}

/// `GET .../artifact/{name}/versions` with the `deleted` filter. Live versions come first (in the
/// list's sort order), deleted ones after them, most recently deleted first.
pub(super) async fn versions(
    cx: &Ctx<'_>,
    reg: &Registry,
    store: &Registry,
    name: &str,
) -> ApiResult<Response> {
    let Ctx { state, query, .. } = *cx;
    cx.principal.check(reg, Need::Read)?;
    let mode = deleted_mode(query)?;
    let (page, size, index) = paging(query)?;
    let live = state.db.package_by_name(&store.id, name).await?;
    let gone = match mode {
        Deleted::Exclude => None,
        _ => state.db.deleted_package(store, name).await?,
    };
    if live.is_none() && gone.is_none() {
        return Err(ApiError::not_found(format!(
            "artifact '{name}' doesn't exist in registry '{}'",
            reg.identifier
        )));
    }
    if mode == Deleted::Exclude
        && let Some(p) = &live
    {
        let pg = super::requests::version_page(query, page, size)?;
        let (total, vs) = state.db.list_versions(&p.id, &pg).await?;
        let items: Vec<Value> = vs
            .iter()
            .map(|v| version_item(state, reg, name, p, v, false))
            .collect();
        return Ok(success(list_json(
            total,
            index,
            size,
            "artifactVersions",
            json!(items),
        )));
    }
    let mut items = Vec::new();
    if let (Deleted::Include, Some(p)) = (mode, &live) {
        for v in state.db.package_versions(&p.id).await? {
            items.push(version_item(state, reg, name, p, &v, false));
        }
    }
    if let Some(p) = &gone {
        let mut vs = state.db.package_versions(&p.id).await?;
        vs.sort_by_key(|v| std::cmp::Reverse(v.updated_at));
        for v in vs {
            items.push(version_item(state, reg, name, p, &v, true));
        }
    }
    let total = items.len() as i64;
    let items: Vec<Value> = items
        .into_iter()
        .skip(usize::try_from(page_offset(page, size)?).unwrap_or(usize::MAX))
        .take(size as usize)
        .collect();
    Ok(success(list_json(
        total,
        index,
        size,
        "artifactVersions",
        json!(items),
    )))
}

/// A deleted version of `name`: its trash package and the version.
async fn deleted_version(
    state: &AppState,
    store: &Registry,
    name: &str,
    version: &str,
) -> ApiResult<Option<(PackageRow, VersionRow)>> {
    let Some(p) = state.db.deleted_package(store, name).await? else {
        return Ok(None);
    };
    Ok(state
        .db
        .version_by_name(&p.id, version)
        .await?
        .map(|v| (p, v)))
}

/// `POST .../artifact/{name}/+/version/{version}/restore`: the deleted version back in its registry.
pub(super) async fn restore(
    cx: &Ctx<'_>,
    reg: &Registry,
    store: &Registry,
    name: &str,
    version: &str,
) -> ApiResult<Response> {
    let state = cx.state;
    cx.principal.check(reg, Need::Delete)?;
    let (gone, v) = deleted_version(state, store, name, version)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no deleted version '{version}' of '{name}' in registry '{}'",
                reg.identifier
            ))
        })?;
    state.db.restore_version(store, name, &gone, &v).await?;
    let p = state
        .db
        .package_by_name(&store.id, name)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("restored package {name} missing")))?;
    let v = state
        .db
        .version_by_name(&p.id, version)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("restored version {version} missing")))?;
    Ok(success(version_item(state, reg, name, &p, &v, false)))
}

/// Deletes `name` (every version, or `version`): live versions go to the trash; what is only in
/// the trash is purged. Whether live or deleted, a version that does not exist is a 404.
pub(super) async fn delete(
    cx: &Ctx<'_>,
    reg: &Registry,
    store: &Registry,
    name: &str,
    version: Option<&str>,
) -> ApiResult<Response> {
    let state = cx.state;
    cx.principal.check(reg, Need::Delete)?;
    let live = match state.db.package_by_name(&store.id, name).await? {
        Some(p) => match version {
            Some(v) => state.db.version_by_name(&p.id, v).await?.is_some(),
            None => true,
        },
        None => false,
    };
    if live {
        crate::service::trash_versions(state, store, name, version).await?;
        return Ok(done());
    }
    let purge: Vec<(PackageRow, VersionRow)> = match version {
        Some(v) => deleted_version(state, store, name, v)
            .await?
            .into_iter()
            .collect(),
        None => match state.db.deleted_package(store, name).await? {
            Some(p) => state
                .db
                .package_versions(&p.id)
                .await?
                .into_iter()
                .map(|v| (p.clone(), v))
                .collect(),
            None => vec![],
        },
    };
    if purge.is_empty() {
        return Err(ApiError::not_found(format!(
            "artifact '{name}'{} doesn't exist in registry '{}'",
            version
                .map(|v| format!(" version '{v}'"))
                .unwrap_or_default(),
            reg.identifier
        )));
    }
    for (p, v) in &purge {
        state.db.purge_version(p, v).await?;
    }
    Ok(done())
}

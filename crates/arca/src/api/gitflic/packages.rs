//! GitFlic packages: the packages of every registry repository of a scope the caller may read,
//! one package, and its versions with their files.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Authed, ItemId, ScopeRef, paged, pager};
use crate::api::common::page_offset;
use crate::auth::{Need, Principal};
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry};
use crate::state::AppState;
use crate::store::artifacts::PackageRow;
use crate::store::paging::{Page, SortField};
use crate::store::registries::RegistryFilter;

/// GitFlic's package `type` (it says `deb` where repositories say `debian`).
fn package_type_name(t: PackageType) -> &'static str {
    match t {
        PackageType::Debian => "deb",
        other => other.gitflic(),
    }
}

fn package_json(state: &AppState, reg: &Registry, p: &PackageRow) -> Value {
    let (group, artifact) = match (reg.package_type, p.name.split_once(':')) {
        (PackageType::Maven, Some((g, a))) => (json!(g), json!(a)),
        _ => (Value::Null, Value::Null),
    };
    json!({
        "id": p.id, "name": p.name, "version": p.latest_version, "groupId": group, "artifactId": artifact,
        "type": package_type_name(reg.package_type), "ownerUuid": reg.id, "ownerType": "REPOSITORY",
        "repositoryTitle": reg.identifier,
        "repositoryUrl": crate::api::common::native_url(state, reg),
    })
}

/// The registries of a scope the caller may read. A scope that does not exist and one where the
/// caller has no role and nothing public answer alike.
async fn readable_registries(
    state: &AppState,
    principal: &Principal,
    scope_path: &str,
) -> ApiResult<Vec<Registry>> {
    let not_found = || ApiError::not_found(format!("'{scope_path}' not found"));
    let scope = state
        .db
        .scope_by_path(scope_path)
        .await?
        .ok_or_else(not_found)?;
    let filter = RegistryFilter {
        scope_ids: vec![scope.id],
        ..Default::default()
    };
    let all = Page::new(0, 10_000, SortField::Created, false, None);
    let (_, regs) = state.db.list_registries(&filter, &all).await?;
    let regs: Vec<Registry> = regs
        .into_iter()
        .filter(|r| principal.can(r, Need::Read))
        .collect();
    if regs.is_empty() && principal.role_at(scope_path).is_none() {
        return Err(not_found());
    }
    Ok(regs)
}

pub(super) async fn list_packages(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    Authed(principal): Authed,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let state = &state;
    let regs = readable_registries(state, &principal, &scope_path).await?;
    let (page, size) = pager(q)?;
    let ids: Vec<String> = regs.iter().map(|r| r.id.clone()).collect();
    let pg = Page::new(
        page_offset(page, size)?,
        size,
        SortField::Created,
        false,
        None,
    );
    if regs
        .iter()
        .any(|r| r.kind == crate::model::RegistryKind::Group)
    {
        return list_with_groups(state, &regs, pg, page, size).await;
    }
    let (total, pkgs) = state.db.list_packages(&ids, &[], &pg).await?;
    let items = pkgs
        .iter()
        .filter_map(|p| {
            regs.iter()
                .find(|r| r.id == p.registry_id)
                .map(|r| package_json(state, r, p))
        })
        .collect();
    Ok(Json(paged(
        "simplePackageInfoModelList",
        items,
        total,
        page,
        size,
    ))
    .into_response())
}

/// The package list of a scope with VIRTUAL repositories: each shows its merged view (every
/// name once, `servedBy` naming the member that serves it) beside the other repositories' own
/// packages, in one list paged here.
async fn list_with_groups(
    state: &AppState,
    regs: &[Registry],
    pg: Page,
    page: i64,
    size: i64,
) -> ApiResult<Response> {
    use crate::model::RegistryKind;
    let mut ids: Vec<String> = regs
        .iter()
        .filter(|r| r.kind != RegistryKind::Group)
        .map(|r| r.id.clone())
        .collect();
    let mut groups = Vec::new();
    for g in regs.iter().filter(|r| r.kind == RegistryKind::Group) {
        let merged = crate::api::merged::of_group(state, g).await?;
        ids.extend(merged.stores.iter().cloned());
        groups.push((g, merged));
    }
    ids.sort();
    ids.dedup();
    let all = Page {
        offset: 0,
        limit: i64::MAX,
        ..pg.clone()
    };
    let (_, pkgs) = state.db.list_packages(&ids, &[], &all).await?;
    let mut items = Vec::new();
    for p in &pkgs {
        if let Some(r) = regs
            .iter()
            .find(|r| r.id == p.registry_id && r.kind != RegistryKind::Group)
        {
            items.push(package_json(state, r, p));
        }
        for (g, merged) in &groups {
            if let Some(m) = merged.served_by(p) {
                let mut v = package_json(state, g, p);
                v["servedBy"] = json!(m);
                items.push(v);
            }
        }
    }
    let total = items.len() as i64;
    let items = items
        .into_iter()
        .skip(pg.offset.max(0) as usize)
        .take(pg.limit.max(0) as usize)
        .collect();
    Ok(Json(paged(
        "simplePackageInfoModelList",
        items,
        total,
        page,
        size,
    ))
    .into_response())
}

async fn find_package(
    state: &AppState,
    principal: &Principal,
    scope_path: &str,
    id: &str,
) -> ApiResult<(Registry, PackageRow)> {
    let not_found = || ApiError::not_found(format!("package '{id}' not found in '{scope_path}'"));
    let pkg = state.db.package_by_id(id).await?.ok_or_else(not_found)?;
    let reg = state
        .db
        .registry_by_id(&pkg.registry_id)
        .await?
        .ok_or_else(not_found)?;
    if !crate::store::scopes::same_path(&reg.scope_path, scope_path) {
        return Err(not_found());
    }
    principal.check(&reg, Need::Read)?;
    Ok((reg, pkg))
}

pub(super) async fn one_package(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(id): ItemId,
    Authed(principal): Authed,
) -> ApiResult<Response> {
    let (reg, pkg) = find_package(&state, &principal, &scope_path, &id).await?;
    Ok(Json(package_json(&state, &reg, &pkg)).into_response())
}

pub(super) async fn version_list(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(id): ItemId,
    Authed(principal): Authed,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let state = &state;
    let (_, pkg) = find_package(state, &principal, &scope_path, &id).await?;
    let (page, size) = pager(q)?;
    let pg = Page::new(
        page_offset(page, size)?,
        size,
        SortField::Created,
        false,
        None,
    );
    let (total, versions) = state.db.list_versions(&pkg.id, &pg).await?;
    let mut items = Vec::new();
    for v in versions {
        let all = Page::new(0, 1000, SortField::Name, false, None);
        let (_, files) = state.db.list_files(&v.id, &all).await?;
        let files: Vec<Value> = files
            .iter()
            .map(|f| json!({"id": f.id, "name": f.name, "size": f.size, "hashMd5": f.md5, "hashSHA1": f.sha1, "hashSHA256": f.sha256,
                            "packageUploadType": "TRANSPORT", "createdAt": f.created_at}))
            .collect();
        items.push(json!({"id": v.id, "baseVersion": v.version, "version": v.version, "lowerVersion": v.version.to_lowercase(),
                          "downloadCount": v.download_count, "languageVersion": Value::Null, "packageUploadType": "TRANSPORT",
                          "packageFiles": files}));
    }
    Ok(Json(paged("packageVersionModelList", items, total, page, size)).into_response())
}

//! Harness artifact handlers: artifact lists (of a registry, of a space), labels, and the
//! artifact, version and file endpoints under `/registry/{ref}/artifact/{name}`.

use axum::Json;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Ctx;
use super::deleted::{self, storage};
use super::requests::{file_page, package_page, package_types, paging, parse_body};
use super::views::{
    artifact_summary, file_json, list_json, native_url, registry_artifact_json,
    space_artifact_json, success, version_details_json, version_summary_json,
};
use crate::api::common::page_offset;
use crate::auth::Need;
use crate::error::{ApiError, ApiResult};
use crate::http::query_all;
use crate::model::{Registry, RegistryKind};
use crate::state::AppState;
use crate::store::artifacts::PackageRow;
use crate::store::paging::{Page, SortField};
use crate::store::registries::RegistryFilter;

/// `GET /registry/{ref}/artifact/labels`: the labels the registry's artifacts use, paged.
pub(super) async fn labels(cx: &Ctx<'_>, reg: &Registry) -> ApiResult<Response> {
    cx.principal.check(reg, Need::Read)?;
    let store = storage(cx.state, reg).await?;
    let labels = cx.state.db.package_labels(&store.id).await?;
    let (page, size, index) = paging(cx.query)?;
    let total = labels.len() as i64;
    let items: Vec<_> = labels
        .into_iter()
        .skip(page_offset(page, size)? as usize)
        .take(size as usize)
        .collect();
    Ok(success(list_json(
        total,
        index,
        size,
        "labels",
        json!(items),
    )))
}

/// `GET /registry/{ref}/artifacts`, filtered by `label`.
pub(super) async fn list_in_registry(cx: &Ctx<'_>, reg: &Registry) -> ApiResult<Response> {
    let Ctx {
        state,
        principal,
        query,
        ..
    } = *cx;
    principal.check(reg, Need::Read)?;
    let store = storage(state, reg).await?;
    let (page, size, index) = paging(query)?;
    let labels: Vec<String> = query_all(query, "label")
        .into_iter()
        .map(str::to_string)
        .collect();
    if reg.kind == RegistryKind::Group {
        // The merged view: every name once, from the member that serves it.
        let merged = crate::api::merged::of_group(state, reg).await?;
        let want = package_page(query, page, size)?;
        let all = Page {
            offset: 0,
            limit: i64::MAX,
            ..want.clone()
        };
        let (_, rows) = state
            .db
            .list_packages(&merged.stores, &labels, &all)
            .await?;
        let rows: Vec<(&PackageRow, &str)> = rows
            .iter()
            .filter_map(|r| merged.served_by(r).map(|m| (r, m)))
            .collect();
        let items: Vec<Value> = rows
            .iter()
            .skip(want.offset.max(0) as usize)
            .take(want.limit.max(0) as usize)
            .map(|(p, m)| {
                let mut v = registry_artifact_json(state, reg, p);
                v["servedBy"] = json!(m);
                v
            })
            .collect();
        return Ok(success(list_json(
            rows.len() as i64,
            index,
            size,
            "artifacts",
            json!(items),
        )));
    }
    let (total, pkgs) = state
        .db
        .list_packages(
            std::slice::from_ref(&store.id),
            &labels,
            &package_page(query, page, size)?,
        )
        .await?;
    let items: Vec<Value> = pkgs
        .iter()
        .map(|p| registry_artifact_json(state, reg, p))
        .collect();
    Ok(success(list_json(
        total,
        index,
        size,
        "artifacts",
        json!(items),
    )))
}

/// `GET /spaces/{space}/artifacts`: the artifacts of the space's readable registries, filtered by
/// `package_type` and `reg_identifier`.
pub(super) async fn list_in_space(cx: &Ctx<'_>, space: &str) -> ApiResult<Response> {
    let Ctx {
        state,
        principal,
        query,
        ..
    } = *cx;
    cx.require_user()?;
    let not_found = || ApiError::not_found(format!("space '{space}' doesn't exist"));
    let scope = state.db.scope_by_path(space).await?.ok_or_else(not_found)?;
    let package_types = package_types(query)?;
    let wanted: Vec<&str> = query_all(query, "reg_identifier");
    let filter = RegistryFilter {
        scope_ids: vec![scope.id],
        package_types,
        ..Default::default()
    };
    let all = Page::new(0, 10_000, SortField::Created, false, None);
    let (_, regs) = state.db.list_registries(&filter, &all).await?;
    let regs: Vec<Registry> = regs
        .into_iter()
        .filter(|r| !matches!(r.kind, RegistryKind::Cache | RegistryKind::Trash))
        .filter(|r| principal.can(r, Need::Read))
        .filter(|r| wanted.is_empty() || wanted.contains(&r.identifier.as_str()))
        .collect();
    // Without a role here and nothing public, the space answers like one that does not exist.
    if regs.is_empty() && principal.role_at(space).is_none() {
        return Err(not_found());
    }
    // A proxy's artifacts are in its cache: (where they are stored, the registry shown).
    let mut stores: Vec<(String, &Registry)> = Vec::new();
    for r in &regs {
        stores.push((storage(state, r).await?.id, r));
    }
    let ids: Vec<String> = stores.iter().map(|(id, _)| id.clone()).collect();
    let (page, size, index) = paging(query)?;
    if regs.iter().any(|r| r.kind == RegistryKind::Group) {
        return list_in_space_with_groups(cx, &regs, stores, page, size, index).await;
    }
    let (total, pkgs) = state
        .db
        .list_packages(&ids, &[], &package_page(query, page, size)?)
        .await?;
    let items: Vec<Value> = pkgs
        .iter()
        .filter_map(|p| {
            stores
                .iter()
                .find(|(id, _)| *id == p.registry_id)
                .map(|(_, reg)| space_artifact_json(state, reg, p))
        })
        .collect();
    Ok(success(list_json(
        total,
        index,
        size,
        "artifacts",
        json!(items),
    )))
}

/// A space list that shows groups: each group's merged view (every name once, with the member
/// that serves it) beside the other registries' own rows, in one sorted list paged here.
async fn list_in_space_with_groups(
    cx: &Ctx<'_>,
    regs: &[Registry],
    stores: Vec<(String, &Registry)>,
    page: i64,
    size: i64,
    index: i64,
) -> ApiResult<Response> {
    let state = cx.state;
    let mut groups = Vec::new();
    let mut ids: Vec<String> = stores
        .iter()
        .filter(|(_, r)| r.kind != RegistryKind::Group)
        .map(|(id, _)| id.clone())
        .collect();
    for g in regs.iter().filter(|r| r.kind == RegistryKind::Group) {
        let merged = crate::api::merged::of_group(state, g).await?;
        ids.extend(merged.stores.iter().cloned());
        groups.push((g, merged));
    }
    ids.sort();
    ids.dedup();
    let want = package_page(cx.query, page, size)?;
    let all = Page {
        offset: 0,
        limit: i64::MAX,
        ..want.clone()
    };
    let (_, rows) = state.db.list_packages(&ids, &[], &all).await?;
    let mut items: Vec<Value> = Vec::new();
    for p in &rows {
        for (id, reg) in &stores {
            if *id == p.registry_id && reg.kind != RegistryKind::Group {
                items.push(space_artifact_json(state, reg, p));
            }
        }
        for (g, merged) in &groups {
            if let Some(m) = merged.served_by(p) {
                let mut v = space_artifact_json(state, g, p);
                v["servedBy"] = json!(m);
                items.push(v);
            }
        }
    }
    let total = items.len() as i64;
    let items: Vec<Value> = items
        .into_iter()
        .skip(want.offset.max(0) as usize)
        .take(want.limit.max(0) as usize)
        .collect();
    Ok(success(list_json(
        total,
        index,
        size,
        "artifacts",
        json!(items),
    )))
}

/// Everything under `/registry/{ref}/artifact/{name}`: `sub` is the path after the name.
pub(super) async fn route(
    cx: &Ctx<'_>,
    reg: &Registry,
    method: Method,
    name: &str,
    sub: &[&str],
) -> ApiResult<Response> {
    let Ctx {
        state,
        principal,
        query,
        body,
    } = *cx;
    // What the dialect shows is `reg`; where the artifacts are is `store` (a proxy's cache).
    let store = &storage(state, reg).await?;
    match (method, sub) {
        (Method::DELETE, []) => deleted::delete(cx, reg, store, name, None).await,
        (Method::DELETE, ["version", version]) => {
            deleted::delete(cx, reg, store, name, Some(version)).await
        }
        (Method::POST, ["version", version, "restore"]) => {
            deleted::restore(cx, reg, store, name, version).await
        }
        (Method::GET, ["versions"]) => deleted::versions(cx, reg, store, name).await,
        (Method::GET, ["summary"]) => {
            principal.check(reg, Need::Read)?;
            let p = package(state, store, name).await?;
            Ok(success(artifact_summary(reg, &p)))
        }
        (Method::PUT, ["labels"]) => {
            principal.check(reg, Need::Write)?;
            #[derive(Deserialize)]
            struct Labels {
                labels: Vec<String>,
            }
            let l: Labels = parse_body(body)?;
            crate::model::check_labels("labels", &l.labels)?;
            let p = package(state, store, name).await?;
            state.db.set_package_labels(&p.id, &l.labels).await?;
            let p = package(state, store, name).await?;
            Ok(success(artifact_summary(reg, &p)))
        }
        (method, ["version", version, rest @ ..]) => {
            let p = package(state, store, name).await?;
            let v = state
                .db
                .version_by_name(&p.id, version)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("version '{version}' of '{name}' doesn't exist"))
                })?;
            match (method, rest) {
                (Method::GET, ["summary"]) => {
                    principal.check(reg, Need::Read)?;
                    Ok(success(version_summary_json(reg, &p, &v)))
                }
                (Method::GET, ["details"]) => {
                    principal.check(reg, Need::Read)?;
                    Ok(success(version_details_json(state, reg, &p, &v)))
                }
                (Method::GET, ["files"]) => {
                    principal.check(reg, Need::Read)?;
                    let (page, size, index) = paging(query)?;
                    let pg = file_page(query, page, size)?;
                    let (total, files) = state.db.list_files(&v.id, &pg).await?;
                    let items: Vec<Value> =
                        files.iter().map(|f| file_json(state, reg, f)).collect();
                    Ok(success(list_json(
                        total,
                        index,
                        size,
                        "files",
                        json!(items),
                    )))
                }
                (Method::GET, ["file", file]) => {
                    principal.check(reg, Need::Read)?;
                    let f = state.db.file_by_name(&v.id, file).await?.ok_or_else(|| {
                        ApiError::not_found(format!("file '{file}' doesn't exist"))
                    })?;
                    Ok(Json(json!({"status": "SUCCESS", "downloadUrl": format!("{}/{}", native_url(state, reg), f.path)})).into_response())
                }
                _ => Err(ApiError::not_found("no such version endpoint")),
            }
        }
        _ => Err(ApiError::not_found("no such artifact endpoint")),
    }
}

async fn package(state: &AppState, reg: &Registry, name: &str) -> ApiResult<PackageRow> {
    state
        .db
        .package_by_name(&reg.id, name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "artifact '{name}' doesn't exist in registry '{}'",
                reg.identifier
            ))
        })
}

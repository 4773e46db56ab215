//! Harness registry handlers: create, get, update, delete and list registries, and the
//! registry-level extras (signing key, client setup). Rules live in `service`; these translate.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Ctx;
use super::requests::{
    RegistryRequest, ScopeMode, package_types, paging, parse_body, parse_config,
    parse_package_type, parse_reupload, registry_kinds, registry_page, scope_mode,
    strip_terminator,
};
use super::views::{done, list_json, registry_item, registry_json, success};
use crate::auth::{Need, Principal};
use crate::error::{ApiError, ApiResult};
use crate::http::query_get;
use crate::model::{Registry, RegistryKind, Reupload};
use crate::service;
use crate::state::AppState;
use crate::store::registries::RegistryFilter;
use crate::store::scopes::{ancestor_paths, validate_path};

/// `POST /registry`: creates a registry in the body's `parentRef` (or the query's `space_ref`).
pub(super) async fn create(cx: &Ctx<'_>) -> ApiResult<Response> {
    let Ctx {
        state,
        principal,
        query,
        body,
    } = *cx;
    cx.require_user()?;
    let req: RegistryRequest = parse_body(body)?;
    let identifier = req
        .identifier
        .clone()
        .ok_or_else(|| ApiError::bad("identifier", "identifier is required"))?;
    crate::model::validate_identifier("identifier", &identifier)?;
    let package_type = parse_package_type(req.package_type.as_deref())?;
    // The body's parentRef wins, as on the Harness server; space_ref is the fallback.
    let parent = req
        .parent_ref
        .clone()
        .or_else(|| query_get(query, "space_ref").map(strip_terminator))
        .ok_or_else(|| ApiError::bad("parentRef", "parentRef is required"))?;
    let parent = parent.trim_matches('/').to_string();
    validate_path("parentRef", &parent)?;
    let account = parent.split('/').next().unwrap_or(&parent);
    let cfg = parse_config(&state.config.upstream_sources, req.config.as_ref(), None)?;
    let members = match &cfg.upstreams {
        Some(names) => resolve_upstreams(state, principal, &[], account, names).await?,
        None => vec![],
    };
    let reg = Registry {
        description: req.description,
        labels: req.labels.unwrap_or_default(),
        allowed_patterns: req.allowed_pattern.unwrap_or_default(),
        blocked_patterns: req.blocked_pattern.unwrap_or_default(),
        // Stored on create as on update (the seed lists the field for both; OSS Harness drops it).
        cleanup_policies: req.cleanup_policy.unwrap_or_default(),
        scanners: req.scanners.unwrap_or_default(),
        anonymous: req.is_public.unwrap_or(false),
        allow_public_groups: req.allow_public_groups.unwrap_or(false),
        delete_allowed: req.is_delete_package_allowed.unwrap_or(false),
        reupload: parse_reupload(req.package_reupload_type.as_deref())?
            .unwrap_or(Reupload::Override),
        proxy: cfg.proxy,
        dc_allow_list: cfg.allow_list.unwrap_or_default(),
        members,
        ..Registry::new(&parent, identifier, package_type, cfg.kind)
    };
    let reg = service::create(state, principal, &parent, reg, "config.upstreamProxies").await?;
    let data = registry_json(state, &reg).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"status": "SUCCESS", "data": data})),
    )
        .into_response())
}

/// `GET /registry/{ref}`.
pub(super) async fn get(cx: &Ctx<'_>, reg: &Registry) -> ApiResult<Response> {
    cx.principal.check(reg, Need::Read)?;
    Ok(success(registry_json(cx.state, reg).await?))
}

/// `DELETE /registry/{ref}`.
pub(super) async fn delete(cx: &Ctx<'_>, reg: &Registry) -> ApiResult<Response> {
    service::delete(cx.state, cx.principal, reg).await?;
    Ok(done())
}

/// `GET /registry/{ref}/signing-key` (Arca extension): the OpenPGP key that signs a Debian or RPM
/// registry's metadata.
pub(super) async fn signing_key(cx: &Ctx<'_>, reg: &Registry) -> ApiResult<Response> {
    cx.principal.check(reg, Need::Read)?;
    let key = crate::signing::key_for(&cx.state.db, reg).await?;
    Ok(success(json!({"publicKey": key.public_armored})))
}

/// `POST /registry/{ref}/signing-key/rotate` (Arca extension).
pub(super) async fn rotate_signing_key(cx: &Ctx<'_>, reg: &Registry) -> ApiResult<Response> {
    cx.principal.check(reg, Need::Admin)?;
    if !crate::formats::for_type(reg.package_type).signs_metadata() {
        return Err(ApiError::bad(
            "packageType",
            "only DEBIAN and RPM registries sign their metadata",
        ));
    }
    let key = crate::signing::rotate(&cx.state.db, reg).await?;
    Ok(success(json!({"publicKey": key.public_armored})))
}

/// `GET /registry/{ref}/client-setup-details`.
pub(super) fn client_setup(cx: &Ctx<'_>, reg: &Registry) -> ApiResult<Response> {
    cx.principal.check(reg, Need::Read)?;
    let data = crate::api::client_setup::details(
        cx.state,
        reg,
        cx.principal,
        query_get(cx.query, "artifact"),
        query_get(cx.query, "version"),
    );
    Ok(success(data))
}

/// `PUT /registry/{ref}`: merges the fields the body has into the registry.
pub(super) async fn update(cx: &Ctx<'_>, mut reg: Registry) -> ApiResult<Response> {
    let Ctx {
        state,
        principal,
        body,
        ..
    } = *cx;
    principal.check(&reg, Need::Admin)?;
    let req: RegistryRequest = parse_body(body)?;
    if let Some(i) = &req.identifier
        && *i != reg.identifier
    {
        return Err(ApiError::bad("identifier", "identifier cannot be changed"));
    }
    if let Some(t) = &req.package_type
        && parse_package_type(Some(t))? != reg.package_type
    {
        return Err(ApiError::bad(
            "packageType",
            "packageType cannot be changed",
        ));
    }
    if let Some(p) = &req.parent_ref
        && p.trim_matches('/') != reg.scope_path
    {
        return Err(ApiError::bad("parentRef", "parentRef cannot be changed"));
    }
    let cfg = parse_config(
        &state.config.upstream_sources,
        req.config.as_ref(),
        Some(&reg),
    )?;
    if (cfg.kind == RegistryKind::Proxy) != (reg.kind == RegistryKind::Proxy) {
        return Err(ApiError::bad(
            "config.type",
            "config.type cannot be changed",
        ));
    }
    if let Some(names) = &cfg.upstreams {
        if matches!(reg.kind, RegistryKind::Cache | RegistryKind::Trash) && !names.is_empty() {
            return Err(ApiError::bad(
                "config.upstreamProxies",
                format!("a {} registry has no upstream proxies", reg.kind.gitflic()),
            ));
        }
        reg.members =
            resolve_upstreams(state, principal, &reg.members, &reg.account, names).await?;
        if reg.kind == RegistryKind::Group
            && let Some(d) = &reg.deployment_registry_id
            && !reg.members.contains(d)
        {
            reg.deployment_registry_id = None;
        }
    }
    if let Some(p) = cfg.proxy {
        reg.proxy = Some(p);
    }
    if let Some(l) = cfg.allow_list {
        reg.dc_allow_list = l;
    }
    if let Some(d) = req.description {
        reg.description = Some(d);
    }
    if let Some(l) = req.labels {
        reg.labels = l;
    }
    if let Some(p) = req.allowed_pattern {
        reg.allowed_patterns = p;
    }
    if let Some(p) = req.blocked_pattern {
        reg.blocked_patterns = p;
    }
    if let Some(c) = req.cleanup_policy {
        reg.cleanup_policies = c;
    }
    if let Some(s) = req.scanners {
        reg.scanners = s;
    }
    if let Some(p) = req.is_public {
        reg.anonymous = p;
    }
    if let Some(a) = req.allow_public_groups {
        reg.allow_public_groups = a;
    }
    if let Some(d) = req.is_delete_package_allowed {
        reg.delete_allowed = d;
    }
    if let Some(r) = parse_reupload(req.package_reupload_type.as_deref())? {
        reg.reupload = r;
    }
    let reg = service::update(state, principal, reg, "config.upstreamProxies").await?;
    Ok(success(registry_json(state, &reg).await?))
}

/// `GET /spaces/{space}/registries`.
pub(super) async fn list(cx: &Ctx<'_>, space: &str) -> ApiResult<Response> {
    let Ctx {
        state,
        principal,
        query,
        ..
    } = *cx;
    cx.require_user()?;
    let scope_mode = scope_mode(query)?;
    // A space the caller has no role on and sees nothing in answers like one that does not exist.
    let not_found = || ApiError::not_found(format!("space '{space}' doesn't exist"));
    let space_exists = state.db.scope_by_path(space).await?.is_some();
    let readable = principal.role_at(space).is_some();
    let mut scope_ids = Vec::new();
    let mut readable_scope_ids = None;
    match scope_mode {
        ScopeMode::Descendants => {
            let scopes = state.db.descendant_scopes(space).await?;
            // Readers of a descendant only may still list what they can see there (and the
            // public registries), counted in the query so the totals say nothing more.
            if !readable {
                readable_scope_ids = Some(
                    scopes
                        .iter()
                        .filter(|(_, path)| principal.role_at(path).is_some())
                        .map(|(id, _)| id.clone())
                        .collect::<Vec<_>>(),
                );
            }
            scope_ids.extend(scopes.into_iter().map(|(id, _)| id));
        }
        ScopeMode::Ancestors => {
            for p in ancestor_paths(space) {
                if let Some(s) = state.db.scope_by_path(&p).await? {
                    scope_ids.push(s.id);
                }
            }
        }
        ScopeMode::Space => {
            if let Some(s) = state.db.scope_by_path(space).await? {
                scope_ids.push(s.id);
            }
        }
    }
    if !readable && readable_scope_ids.is_none() {
        // Without a role on the space: its public registries only.
        readable_scope_ids = Some(Vec::new());
    }
    if !space_exists {
        return Err(not_found());
    }
    let package_types = package_types(query)?;
    let kinds = registry_kinds(query)?;
    let (page, size, index) = paging(query)?;
    let filter = RegistryFilter {
        scope_ids,
        package_types,
        kinds,
        readable_scope_ids,
    };
    let pg = registry_page(query, page, size)?;
    let (total, regs) = state.db.list_registries_with_stats(&filter, &pg).await?;
    if total == 0
        && filter
            .readable_scope_ids
            .as_ref()
            .is_some_and(|ids| ids.is_empty())
    {
        return Err(not_found());
    }
    // The filter already left out what the caller cannot read; this is a second guard.
    let items: Vec<Value> = regs
        .iter()
        .filter(|(r, _)| principal.can(r, Need::Read))
        .map(|(r, stats)| registry_item(state, r, stats))
        .collect();
    Ok(success(list_json(
        total,
        index,
        size,
        "registries",
        json!(items),
    )))
}

async fn resolve_upstreams(
    state: &AppState,
    principal: &Principal,
    current: &[String],
    account: &str,
    names: &[String],
) -> ApiResult<Vec<String>> {
    let mut ids = Vec::new();
    for n in names {
        ids.push(
            service::resolve_member(
                state,
                principal,
                current,
                account,
                "config.upstreamProxies",
                n,
            )
            .await?
            .id,
        );
    }
    Ok(ids)
}

//! GitFlic registry repositories: list, get, create, modify and delete in a scope, the request
//! settings they read and the two views (short, full) they answer with.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Authed, ItemId, ScopeRef, paged, pager};
use crate::api::common::page_offset;
use crate::auth::{Need, Principal};
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, ProxySettings, Registry, RegistryKind, Reupload, Role};
use crate::service;
use crate::state::AppState;
use crate::store::paging::{Page, SortField};
use crate::store::registries::RegistryFilter;

/// The seed's short shape, plus `url`: where the repository's clients point.
fn short_json(state: &AppState, reg: &Registry) -> Value {
    json!({
        "title": reg.identifier,
        "url": crate::api::common::native_url(state, reg),
        "repositoryType": reg.kind.gitflic(),
        "repositoryUuid": reg.id,
        "packageType": reg.package_type.gitflic(),
        "description": reg.description,
    })
}

/// The short view of any repository, the server's own too: their stored identifiers are internal,
/// so a LOCAL_CACHE is titled `<proxy>-cache` and a TRASH_CAN `trashCan`, as the seed shows them.
async fn short_view(state: &AppState, reg: &Registry) -> ApiResult<Value> {
    let mut v = short_json(state, reg);
    match (reg.kind, &reg.cache_of) {
        (RegistryKind::Trash, _) => v["title"] = json!("trashCan"),
        (RegistryKind::Cache, Some(proxy)) => {
            if let Some(p) = state.db.registry_by_id(proxy).await? {
                v["title"] = json!(format!("{}-cache", p.identifier));
            }
        }
        _ => {}
    }
    Ok(v)
}

/// The single-repository view: the seed's short shape plus the settings (secrets never included).
async fn full_json(state: &AppState, reg: &Registry) -> ApiResult<Value> {
    let mut v = short_view(state, reg).await?;
    let o = v
        .as_object_mut()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("not an object")))?;
    o.insert(
        "settings".into(),
        json!({"hasAnonymousAccess": reg.anonymous, "isDeletePackageAllowed": reg.delete_allowed, "packageReuploadType": reg.reupload.as_str(),
               "allowPublicGroups": reg.allow_public_groups}),
    );
    if let Some(p) = &reg.proxy {
        o.insert(
            "proxySettings".into(),
            json!({"url": p.url, "username": p.username, "isCaching": p.caching, "isOffline": p.offline,
                   "expireHours": p.expire_hours, "metadataRetrievalIntervalSeconds": p.metadata_interval_secs,
                   "dockerLibraryPrefix": p.uses_library_prefix(),
                   // Arca extension (Debian/RPM): the upstream's public key.
                   "upstreamPublicKey": p.upstream_key,
                   // Arca extension (Debian): the distributions served through a group.
                   "distributions": p.distributions}),
        );
    }
    if reg.kind == RegistryKind::Group {
        o.insert(
            "virtualSettings".into(),
            json!({"includedRepositoryUuids": reg.members, "allowRemoteProxying": reg.allow_remote_proxying,
                   "deploymentRepositoryUuid": reg.deployment_registry_id,
                   "dependencyConfusionAllowList": reg.dc_allow_list}),
        );
    }
    if reg.kind == RegistryKind::Hosted && !reg.members.is_empty() {
        o.insert("upstreamRepositoryUuids".into(), json!(reg.members));
    }
    if let Some(c) = &reg.cache_of {
        o.insert("cacheOfRepositoryUuid".into(), json!(c));
    } else if let Some(c) = state.db.cache_of_proxy(&reg.id).await? {
        o.insert("cacheRepositoryUuid".into(), json!(c.id));
    }
    Ok(v)
}

pub(super) async fn list(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    Authed(principal): Authed,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let state = &state;
    let scope_path = scope_path.as_str();
    // The role first: whether a scope exists is for its members to know.
    principal.require_scope(scope_path, Role::Reader)?;
    let scope = state
        .db
        .scope_by_path(scope_path)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("'{scope_path}' not found")))?;
    let (page, size) = pager(query)?;
    let filter = RegistryFilter {
        scope_ids: vec![scope.id],
        ..Default::default()
    };
    let pg = Page::new(
        page_offset(page, size)?,
        size,
        SortField::Created,
        false,
        None,
    );
    let (total, regs) = state.db.list_registries(&filter, &pg).await?;
    let mut items: Vec<Value> = Vec::with_capacity(regs.len());
    for r in &regs {
        items.push(short_view(state, r).await?);
    }
    Ok(Json(paged(
        "shortRegistryRepositoryDtoList",
        items,
        total,
        page,
        size,
    ))
    .into_response())
}

async fn find_in_scope(
    state: &AppState,
    principal: &Principal,
    scope_path: &str,
    uuid: &str,
) -> ApiResult<Registry> {
    // A repository the caller cannot read is not found, like one that does not exist.
    match state.db.registry_by_id(uuid).await? {
        Some(r)
            if crate::store::scopes::same_path(&r.scope_path, scope_path)
                && principal.can(&r, Need::Read) =>
        {
            Ok(r)
        }
        _ => Err(ApiError::not_found(format!(
            "registry repository '{uuid}' not found in '{scope_path}'"
        ))),
    }
}

pub(super) async fn get_one(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(uuid): ItemId,
    Authed(principal): Authed,
) -> ApiResult<Response> {
    let state = &state;
    let reg = find_in_scope(state, &principal, &scope_path, &uuid).await?;
    principal.check(&reg, Need::Read)?;
    Ok(Json(full_json(state, &reg).await?).into_response())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalSettings {
    pub has_anonymous_access: Option<bool>,
    pub is_delete_package_allowed: Option<bool>,
    pub package_reupload_type: Option<String>,
    /// Arca's extension: this private repository may be included by public VIRTUAL repositories.
    pub allow_public_groups: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxySettingsDto {
    pub url: Option<String>,
    pub username: Option<String>,
    pub token: Option<String>,
    pub is_caching: Option<bool>,
    pub is_offline: Option<bool>,
    pub expire_hours: Option<i64>,
    pub metadata_retrieval_interval_seconds: Option<i64>,
    /// Arca's extension for container proxies: ask for single-segment image names under
    /// `library/` upstream (Docker Hub's rule).
    pub docker_library_prefix: Option<bool>,
    /// Arca extension (Debian/RPM proxies): the upstream's armored OpenPGP public key.
    pub upstream_public_key: Option<String>,
    /// Arca extension (Debian proxies): the distributions this proxy serves through a group
    /// (empty: any distribution no LOCAL member holds); one proxy member per distribution.
    pub distributions: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualSettingsDto {
    pub included_repository_uuids: Option<Vec<String>>,
    pub allow_remote_proxying: Option<bool>,
    pub deployment_repository_uuid: Option<String>,
    /// Arca's extension: name patterns exempt from the dependency-confusion guard.
    pub dependency_confusion_allow_list: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRequest {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub repository_name: Option<String>,
    pub description: Option<String>,
    pub package_type: Option<String>,
    pub settings: Option<LocalSettings>,
    pub proxy_settings: Option<ProxySettingsDto>,
    pub virtual_settings: Option<VirtualSettingsDto>,
}

fn parse_body(body: &[u8]) -> ApiResult<RepositoryRequest> {
    if body.is_empty() {
        return Err(ApiError::bad("body", "request body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("body", format!("invalid JSON body: {e}")))
}

fn parse_kind(s: Option<&str>) -> ApiResult<RegistryKind> {
    match s {
        Some("LOCAL") => Ok(RegistryKind::Hosted),
        Some("PROXY") => Ok(RegistryKind::Proxy),
        Some("VIRTUAL") => Ok(RegistryKind::Group),
        Some(t @ ("LOCAL_CACHE" | "TRASH_CAN")) => Err(ApiError::bad(
            "type",
            format!("{t} repositories are created by the server"),
        )),
        Some(t) => Err(ApiError::bad(
            "type",
            format!("unknown type '{t}': expected LOCAL, PROXY or VIRTUAL"),
        )),
        None => Err(ApiError::bad(
            "type",
            "type is required (LOCAL, PROXY or VIRTUAL)",
        )),
    }
}

fn apply_local(reg: &mut Registry, s: &LocalSettings) -> ApiResult<()> {
    if let Some(v) = s.has_anonymous_access {
        reg.anonymous = v;
    }
    if let Some(v) = s.is_delete_package_allowed {
        reg.delete_allowed = v;
    }
    if let Some(v) = s.allow_public_groups {
        reg.allow_public_groups = v;
    }
    if let Some(v) = &s.package_reupload_type {
        reg.reupload = Reupload::parse(v).ok_or_else(|| {
            ApiError::bad(
                "settings.packageReuploadType",
                format!("unknown packageReuploadType '{v}': expected NONE or OVERRIDE"),
            )
        })?;
    }
    Ok(())
}

fn apply_proxy(reg: &mut Registry, s: &ProxySettingsDto) {
    let mut p = reg.proxy.clone().unwrap_or(ProxySettings {
        metadata_interval_secs: 7200,
        ..Default::default()
    });
    if let Some(v) = &s.url {
        p.url = v.trim().to_string();
    }
    if let Some(v) = &s.username {
        p.username = Some(v.clone()).filter(|u| !u.is_empty());
    }
    if let Some(v) = &s.token {
        p.secret = Some(v.clone()).filter(|t| !t.is_empty());
    }
    if let Some(v) = s.is_caching {
        p.caching = v;
    }
    if let Some(v) = s.is_offline {
        p.offline = v;
    }
    if let Some(v) = s.expire_hours {
        p.expire_hours = v;
    }
    if let Some(v) = s.docker_library_prefix {
        p.library_prefix = Some(v);
    }
    if let Some(v) = s.metadata_retrieval_interval_seconds {
        p.metadata_interval_secs = v;
    }
    if let Some(v) = &s.upstream_public_key {
        p.upstream_key = Some(v.trim().to_string()).filter(|k| !k.is_empty());
    }
    if let Some(v) = &s.distributions {
        p.distributions = v.iter().map(|d| d.trim().to_string()).collect();
    }
    reg.proxy = Some(p);
}

async fn resolve_uuids(
    state: &AppState,
    principal: &Principal,
    current: &[String],
    account: &str,
    field: &str,
    uuids: &[String],
) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for u in uuids {
        if uuid::Uuid::parse_str(u).is_err() {
            return Err(ApiError::bad(field, format!("'{u}' is not a UUID")));
        }
        out.push(
            service::resolve_member(state, principal, current, account, field, u)
                .await?
                .id,
        );
    }
    Ok(out)
}

async fn apply_virtual(
    state: &AppState,
    principal: &Principal,
    reg: &mut Registry,
    s: &VirtualSettingsDto,
    creating: bool,
) -> ApiResult<()> {
    if creating && s.included_repository_uuids.is_none() {
        return Err(ApiError::bad(
            "virtualSettings.includedRepositoryUuids",
            "includedRepositoryUuids is required to create a VIRTUAL repository",
        ));
    }
    if !creating
        && (s.included_repository_uuids.is_some() != s.deployment_repository_uuid.is_some())
    {
        return Err(ApiError::bad(
            "virtualSettings",
            "includedRepositoryUuids and deploymentRepositoryUuid must be modified together",
        ));
    }
    if let Some(list) = &s.included_repository_uuids {
        reg.members = resolve_uuids(
            state,
            principal,
            &reg.members,
            &reg.account,
            "virtualSettings.includedRepositoryUuids",
            list,
        )
        .await?;
    }
    if s.included_repository_uuids.is_some() || s.deployment_repository_uuid.is_some() {
        reg.deployment_registry_id = match &s.deployment_repository_uuid {
            Some(d) if !d.is_empty() => Some(
                resolve_uuids(
                    state,
                    principal,
                    &reg.members,
                    &reg.account,
                    "virtualSettings.deploymentRepositoryUuid",
                    std::slice::from_ref(d),
                )
                .await?
                .remove(0),
            ),
            _ => None,
        };
    }
    if let Some(v) = s.allow_remote_proxying {
        reg.allow_remote_proxying = v;
    }
    if let Some(v) = &s.dependency_confusion_allow_list {
        reg.dc_allow_list = v.clone();
    }
    Ok(())
}

pub(super) async fn create(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    Authed(principal): Authed,
    body: Bytes,
) -> ApiResult<Response> {
    let state = &state;
    let scope_path = scope_path.as_str();
    let req = parse_body(&body)?;
    let kind = parse_kind(req.kind.as_deref())?;
    let name = req
        .repository_name
        .clone()
        .ok_or_else(|| ApiError::bad("repositoryName", "repositoryName is required"))?;
    crate::model::validate_gitflic_name("repositoryName", &name)?;
    let pt_s = req
        .package_type
        .as_deref()
        .ok_or_else(|| ApiError::bad("packageType", "packageType is required"))?;
    let package_type = PackageType::from_gitflic(pt_s).ok_or_else(|| {
        ApiError::bad(
            "packageType",
            format!(
                "unknown packageType '{pt_s}': expected one of {}",
                PackageType::ALL
                    .iter()
                    .map(|t| t.gitflic())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let mut reg = Registry {
        description: req.description.clone(),
        // GitFlic names are unique per owner (project, company, instance).
        namespace: scope_path.to_string(),
        ..Registry::new(scope_path, name, package_type, kind)
    };
    // Access settings apply to every kind (a proxy or a group is public or private too).
    if let Some(s) = &req.settings {
        apply_local(&mut reg, s)?;
    }
    match kind {
        RegistryKind::Hosted => {}
        RegistryKind::Proxy => {
            let s = req.proxy_settings.as_ref().ok_or_else(|| {
                ApiError::bad(
                    "proxySettings",
                    "proxySettings are required for a PROXY repository",
                )
            })?;
            if s.url.as_deref().is_none_or(|u| u.trim().is_empty()) {
                return Err(ApiError::bad(
                    "proxySettings.url",
                    "proxySettings.url is required",
                ));
            }
            apply_proxy(&mut reg, s);
        }
        RegistryKind::Group => {
            let s = req.virtual_settings.as_ref().ok_or_else(|| {
                ApiError::bad(
                    "virtualSettings",
                    "virtualSettings are required for a VIRTUAL repository",
                )
            })?;
            apply_virtual(state, &principal, &mut reg, s, true).await?;
        }
        _ => unreachable!("parse_kind only yields LOCAL, PROXY or VIRTUAL"),
    }
    let reg = service::create(
        state,
        &principal,
        scope_path,
        reg,
        "virtualSettings.includedRepositoryUuids",
    )
    .await?;
    Ok((StatusCode::CREATED, Json(short_json(state, &reg))).into_response())
}

pub(super) async fn modify(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(uuid): ItemId,
    Authed(principal): Authed,
    body: Bytes,
) -> ApiResult<Response> {
    let state = &state;
    let mut reg = find_in_scope(state, &principal, &scope_path, &uuid).await?;
    principal.check(&reg, Need::Admin)?;
    let req = parse_body(&body)?;
    let kind = parse_kind(req.kind.as_deref())?;
    if kind != reg.kind {
        return Err(ApiError::bad(
            "type",
            format!(
                "repository '{}' is {}, not {}",
                reg.identifier,
                reg.kind.gitflic(),
                kind.gitflic()
            ),
        ));
    }
    if let Some(n) = &req.repository_name
        && *n != reg.identifier
    {
        return Err(ApiError::bad(
            "repositoryName",
            "repositoryName cannot be changed",
        ));
    }
    if let Some(d) = &req.description {
        reg.description = Some(d.clone());
    }
    if let Some(s) = &req.settings {
        apply_local(&mut reg, s)?;
    }
    match kind {
        RegistryKind::Proxy => {
            if let Some(s) = &req.proxy_settings {
                apply_proxy(&mut reg, s);
            }
        }
        RegistryKind::Group => {
            if let Some(s) = &req.virtual_settings {
                apply_virtual(state, &principal, &mut reg, s, false).await?;
            }
        }
        _ => {}
    }
    let reg = service::update(
        state,
        &principal,
        reg,
        "virtualSettings.includedRepositoryUuids",
    )
    .await?;
    Ok(Json(short_json(state, &reg)).into_response())
}

pub(super) async fn delete(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(uuid): ItemId,
    Authed(principal): Authed,
) -> ApiResult<Response> {
    let reg = find_in_scope(&state, &principal, &scope_path, &uuid).await?;
    service::delete(&state, &principal, &reg).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

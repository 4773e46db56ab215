//! The GitFlic "registry repositories" dialect.
//!
//! GitFlic paths carry no account: they address the configured default account. A company is an
//! org of that account; a project `{owner}/{project}` lives under the org named after its owner
//! (a company or a user's own org); the whole-service ("instance") level is the account itself.
//! The seed's two instance forms are both served: list/get/create under
//! `/registry/instance/{projectAlias}/repositories` (the alias is accepted and ignored) and
//! modify/delete (and get) under `/registry/instance/repositories/{uuid}`.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{check_size, page_offset, query_int, query_pairs};
use crate::auth::{Need, Principal};
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, ProxySettings, Registry, RegistryKind, Reupload, Role};
use crate::service;
use crate::state::AppState;
use crate::store::paging::{Page, SortField};
use crate::store::registries::RegistryFilter;

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
    // The instance's two forms (see the module doc).
    router = router
        .route(
            "/registry/instance/{alias}/repositories",
            get(list).post(create),
        )
        .route(
            "/registry/instance/{alias}/repositories/{uuid}",
            get(get_one),
        )
        .route(
            "/registry/instance/repositories/{uuid}",
            get(get_one).put(modify).delete(delete),
        );
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
    router
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

/// The repository `{uuid}` or `{package}` id a route names after its scope.
pub struct ItemId(pub String);

impl FromRequestParts<AppState> for ItemId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let mut params = path_params(parts, state).await?;
        params
            .remove("uuid")
            .or_else(|| params.remove("package"))
            .map(ItemId)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("route without an id parameter")))
    }
}

async fn path_params(parts: &mut Parts, state: &AppState) -> ApiResult<HashMap<String, String>> {
    Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

fn short_json(reg: &Registry) -> Value {
    json!({
        "title": reg.identifier,
        "repositoryType": reg.kind.gitflic(),
        "repositoryUuid": reg.id,
        "packageType": reg.package_type.gitflic(),
        "description": reg.description,
    })
}

/// The single-repository view: the seed's short shape plus the settings (secrets never included).
async fn full_json(state: &AppState, reg: &Registry) -> ApiResult<Value> {
    let mut v = short_json(reg);
    let o = v
        .as_object_mut()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("not an object")))?;
    o.insert(
        "settings".into(),
        json!({"hasAnonymousAccess": reg.anonymous, "isDeletePackageAllowed": reg.delete_allowed, "packageReuploadType": reg.reupload.as_str()}),
    );
    if let Some(p) = &reg.proxy {
        o.insert(
            "proxySettings".into(),
            json!({"url": p.url, "username": p.username, "isCaching": p.caching, "isOffline": p.offline,
                   "expireHours": p.expire_hours, "metadataRetrievalIntervalSeconds": p.metadata_interval_secs}),
        );
    }
    if reg.kind == RegistryKind::Group {
        o.insert(
            "virtualSettings".into(),
            json!({"includedRepositoryUuids": reg.members, "allowRemoteProxying": reg.allow_remote_proxying,
                   "deploymentRepositoryUuid": reg.deployment_registry_id}),
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

// --- operations ---

async fn authed(state: &AppState, headers: &HeaderMap) -> ApiResult<Principal> {
    let p = state.principal(headers).await?;
    if p.is_anonymous() {
        return Err(ApiError::Unauthenticated("authentication required".into()));
    }
    Ok(p)
}

async fn list(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let state = &state;
    let scope_path = scope_path.as_str();
    let principal = authed(state, &headers).await?;
    let scope = state
        .db
        .scope_by_path(scope_path)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("'{scope_path}' not found")))?;
    principal.require_scope(scope_path, Role::Reader)?;
    let q = query_pairs(query.as_deref());
    let page = query_int(&q, "page")?.unwrap_or(0);
    let size = check_size(query_int(&q, "size")?.unwrap_or(20))?;
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
    let items: Vec<Value> = regs.iter().map(short_json).collect();
    let mut body = json!({
        "page": {"size": size, "totalElements": total, "totalPages": (total + size - 1) / size, "number": page}
    });
    if !items.is_empty() {
        body["_embedded"] = json!({"shortRegistryRepositoryDtoList": items});
    }
    Ok(Json(body).into_response())
}

async fn find_in_scope(
    state: &AppState,
    principal: &Principal,
    scope_path: &str,
    uuid: &str,
) -> ApiResult<Registry> {
    let _ = principal;
    match state.db.registry_by_id(uuid).await? {
        Some(r) if r.scope_path == scope_path => Ok(r),
        _ => Err(ApiError::not_found(format!(
            "registry repository '{uuid}' not found in '{scope_path}'"
        ))),
    }
}

async fn get_one(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(uuid): ItemId,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let state = &state;
    let principal = authed(state, &headers).await?;
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
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualSettingsDto {
    pub included_repository_uuids: Option<Vec<String>>,
    pub allow_remote_proxying: Option<bool>,
    pub deployment_repository_uuid: Option<String>,
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
    if let Some(v) = s.metadata_retrieval_interval_seconds {
        p.metadata_interval_secs = v;
    }
    reg.proxy = Some(p);
}

async fn resolve_uuids(
    state: &AppState,
    account: &str,
    field: &str,
    uuids: &[String],
) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for u in uuids {
        if uuid::Uuid::parse_str(u).is_err() {
            return Err(ApiError::bad(field, format!("'{u}' is not a UUID")));
        }
        out.push(service::resolve_member(state, account, field, u).await?.id);
    }
    Ok(out)
}

async fn apply_virtual(
    state: &AppState,
    reg: &mut Registry,
    s: &VirtualSettingsDto,
    creating: bool,
) -> ApiResult<()> {
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
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let state = &state;
    let scope_path = scope_path.as_str();
    let principal = authed(state, &headers).await?;
    let req = parse_body(&body)?;
    let kind = parse_kind(req.kind.as_deref())?;
    let name = req
        .repository_name
        .clone()
        .ok_or_else(|| ApiError::bad("repositoryName", "repositoryName is required"))?;
    crate::model::validate_identifier("repositoryName", &name)?;
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
        ..Registry::new(scope_path, name, package_type, kind)
    };
    match kind {
        RegistryKind::Hosted => {
            if let Some(s) = &req.settings {
                apply_local(&mut reg, s)?;
            }
        }
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
            apply_virtual(state, &mut reg, s, true).await?;
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
    Ok((StatusCode::CREATED, Json(short_json(&reg))).into_response())
}

async fn modify(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(uuid): ItemId,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let state = &state;
    let principal = authed(state, &headers).await?;
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
    match kind {
        RegistryKind::Hosted => {
            if let Some(s) = &req.settings {
                apply_local(&mut reg, s)?;
            }
        }
        RegistryKind::Proxy => {
            if let Some(s) = &req.proxy_settings {
                apply_proxy(&mut reg, s);
            }
        }
        RegistryKind::Group => {
            if let Some(s) = &req.virtual_settings {
                apply_virtual(state, &mut reg, s, false).await?;
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
    Ok(Json(short_json(&reg)).into_response())
}

async fn delete(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(uuid): ItemId,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let principal = authed(&state, &headers).await?;
    let reg = find_in_scope(&state, &principal, &scope_path, &uuid).await?;
    service::delete(&state, &principal, &reg).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- packages ---

/// GitFlic's package `type` (it says `deb` where repositories say `debian`).
fn package_type_name(t: PackageType) -> &'static str {
    match t {
        PackageType::Debian => "deb",
        other => other.gitflic(),
    }
}

fn package_json(reg: &Registry, p: &crate::store::artifacts::PackageRow) -> Value {
    let (group, artifact) = match (reg.package_type, p.name.split_once(':')) {
        (PackageType::Maven, Some((g, a))) => (json!(g), json!(a)),
        _ => (Value::Null, Value::Null),
    };
    json!({
        "id": p.id, "name": p.name, "version": p.latest_version, "groupId": group, "artifactId": artifact,
        "type": package_type_name(reg.package_type), "ownerUuid": reg.id, "ownerType": "REPOSITORY",
        "repositoryTitle": reg.identifier,
    })
}

fn pager(q: Option<String>) -> ApiResult<(i64, i64)> {
    let q = query_pairs(q.as_deref());
    Ok((
        query_int(&q, "page")?.unwrap_or(0),
        check_size(query_int(&q, "size")?.unwrap_or(20))?,
    ))
}

fn paged(key: &str, items: Vec<Value>, total: i64, page: i64, size: i64) -> Value {
    let mut body = json!({"page": {"size": size, "totalElements": total, "totalPages": (total + size - 1) / size, "number": page}});
    if !items.is_empty() {
        body["_embedded"] = json!({ key: items });
    }
    body
}

/// The registries of a scope the caller may read.
async fn readable_registries(
    state: &AppState,
    principal: &Principal,
    scope_path: &str,
) -> ApiResult<Vec<Registry>> {
    let scope = state
        .db
        .scope_by_path(scope_path)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("'{scope_path}' not found")))?;
    let filter = RegistryFilter {
        scope_ids: vec![scope.id],
        ..Default::default()
    };
    let all = Page::new(0, 10_000, SortField::Created, false, None);
    let (_, regs) = state.db.list_registries(&filter, &all).await?;
    Ok(regs
        .into_iter()
        .filter(|r| principal.can(r, Need::Read))
        .collect())
}

async fn list_packages(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let state = &state;
    let principal = authed(state, &headers).await?;
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
    let (total, pkgs) = state.db.list_packages(&ids, &[], &pg).await?;
    let items = pkgs
        .iter()
        .filter_map(|p| {
            regs.iter()
                .find(|r| r.id == p.registry_id)
                .map(|r| package_json(r, p))
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

async fn find_package(
    state: &AppState,
    principal: &Principal,
    scope_path: &str,
    id: &str,
) -> ApiResult<(Registry, crate::store::artifacts::PackageRow)> {
    let not_found = || ApiError::not_found(format!("package '{id}' not found in '{scope_path}'"));
    let pkg = state.db.package_by_id(id).await?.ok_or_else(not_found)?;
    let reg = state
        .db
        .registry_by_id(&pkg.registry_id)
        .await?
        .ok_or_else(not_found)?;
    if reg.scope_path != scope_path {
        return Err(not_found());
    }
    principal.check(&reg, Need::Read)?;
    Ok((reg, pkg))
}

async fn one_package(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(id): ItemId,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let principal = authed(&state, &headers).await?;
    let (reg, pkg) = find_package(&state, &principal, &scope_path, &id).await?;
    Ok(Json(package_json(&reg, &pkg)).into_response())
}

async fn version_list(
    State(state): State<AppState>,
    ScopeRef(scope_path): ScopeRef,
    ItemId(id): ItemId,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let state = &state;
    let principal = authed(state, &headers).await?;
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

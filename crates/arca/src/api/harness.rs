//! The Harness Artifact Registry dialect, under `/har/api/v1` and `/api/v1`.
//!
//! Refs contain slashes (`acct/org/proj/registry`), written either percent-encoded or raw with a
//! `/+` terminator, and artifact names may contain slashes too. That does not fit a declarative
//! router, so this module routes by hand on the raw (still encoded) path.
//!
//! Paging follows what the Harness server really does: `page` is 0-based (offset = page × size),
//! `size` defaults to 10, and `pageIndex` echoes the request's `page`, or 1 when it was omitted.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{
    check_size, page_offset, query_all, query_get, query_int, query_pairs, trash_versions,
};
use crate::auth::{Need, Principal};
use crate::error::{ApiError, ApiResult};
use crate::model::{
    CleanupPolicy, PackageType, ProxySettings, Registry, RegistryKind, Reupload, human_size,
    new_id, now_ms,
};
use crate::service;
use crate::state::AppState;
use crate::store::artifacts::{FileRow, PackageRow, Page, VersionRow};
use crate::store::registries::RegistryFilter;
use crate::store::scopes::{ancestor_paths, validate_path};

fn success(data: Value) -> Response {
    Json(json!({"status": "SUCCESS", "data": data})).into_response()
}

fn decode(s: &str) -> ApiResult<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::bad_request("path is not valid UTF-8"))
}

/// Splits `<ref>/+/<rest>` or `<percent-encoded ref>/<rest>` into the decoded ref and the rest.
pub(crate) fn split_ref(path: &str) -> ApiResult<(String, Vec<String>)> {
    let segs: Vec<&str> = path.split('/').collect();
    // Clients that encode every reserved character send the terminator as `%2B`.
    if let Some(pos) = segs
        .iter()
        .position(|s| *s == "+" || s.eq_ignore_ascii_case("%2B"))
    {
        let r = segs[..pos]
            .iter()
            .map(|s| decode(s))
            .collect::<ApiResult<Vec<_>>>()?
            .join("/");
        let rest = segs[pos + 1..]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| decode(s))
            .collect::<ApiResult<_>>()?;
        return Ok((r, rest));
    }
    let first = segs.first().copied().unwrap_or("");
    let rest = segs[1..]
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| decode(s))
        .collect::<ApiResult<_>>()?;
    Ok((decode(first)?, rest))
}

/// A space ref from a query string without its `/+` terminator. Form decoding turns a `+` typed
/// unencoded (`space_ref=acme/+`) into a space, so `/ ` is the same terminator.
pub(crate) fn strip_terminator(r: &str) -> String {
    r.strip_suffix("/+")
        .or_else(|| r.strip_suffix("/ "))
        .unwrap_or(r)
        .to_string()
}

/// `acct[/org[/proj]]/registry` → (space path, identifier).
pub(crate) fn split_registry_ref(r: &str) -> ApiResult<(String, String)> {
    let r = r.trim_matches('/');
    let (space, ident) = r.rsplit_once('/').ok_or_else(|| {
        ApiError::bad(
            "registry_ref",
            format!(
                "invalid registry_ref '{r}': expected <account>[/<org>[/<project>]]/<registry>"
            ),
        )
    })?;
    validate_path("registry_ref", space)?;
    Ok((space.to_string(), ident.to_string()))
}

/// Entry point for everything under `/har/api/v1/` and `/api/v1/`.
pub async fn route(State(state): State<AppState>, req: Request) -> Response {
    match dispatch(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Routes one request to its handler (the naming of `formats::route` and `oci::route`: `route` is
/// the axum entry point, `dispatch` the fallible inner router).
async fn dispatch(state: &AppState, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let rest = path
        .strip_prefix("/har/api/v1/")
        .or_else(|| path.strip_prefix("/api/v1/"))
        .unwrap_or("");
    let query = query_pairs(parts.uri.query());
    let principal = state.principal(&parts.headers).await?;
    let method = parts.method.clone();
    let body = crate::formats::read_body(body, 4 << 20).await?;

    if rest == "registry" || rest == "registry/" {
        return match method {
            Method::POST => create_registry(state, &principal, &query, &body).await,
            _ => Err(ApiError::MethodNotAllowed(
                "use POST /registry?space_ref=... to create a registry".into(),
            )),
        };
    }
    if let Some(r) = rest.strip_prefix("registry/") {
        let (reg_ref, sub) = split_ref(r)?;
        let (space, ident) = split_registry_ref(&reg_ref)?;
        let reg = load_registry(state, &principal, &space, &ident).await?;
        let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
        return match (method, sub.as_slice()) {
            (Method::GET, []) => {
                principal.check(&reg, Need::Read)?;
                Ok(success(registry_json(state, &reg).await?))
            }
            (Method::PUT, []) => update_registry(state, &principal, reg, &body).await,
            (Method::DELETE, []) => {
                service::delete(state, &principal, &reg).await?;
                Ok(Json(json!({"status": "SUCCESS"})).into_response())
            }
            (Method::GET, ["artifacts"]) => {
                list_registry_artifacts(state, &principal, &reg, &query).await
            }
            // Arca extension: the OpenPGP key that signs a Debian or RPM registry's metadata.
            (Method::GET, ["signing-key"]) => {
                principal.check(&reg, Need::Read)?;
                let key = crate::signing::key_for(&state.db, &reg).await?;
                Ok(success(json!({"publicKey": key.public_armored})))
            }
            (Method::POST, ["signing-key", "rotate"]) => {
                principal.check(&reg, Need::Admin)?;
                if !matches!(reg.package_type, PackageType::Debian | PackageType::Rpm) {
                    return Err(ApiError::bad(
                        "packageType",
                        "only DEBIAN and RPM registries sign their metadata",
                    ));
                }
                let key = crate::signing::rotate(&state.db, &reg).await?;
                Ok(success(json!({"publicKey": key.public_armored})))
            }
            (Method::GET, ["client-setup-details"]) => {
                principal.check(&reg, Need::Read)?;
                let data = super::client_setup::details(
                    state,
                    &reg,
                    &principal,
                    query_get(&query, "artifact"),
                    query_get(&query, "version"),
                );
                Ok(success(data))
            }
            (Method::GET, ["artifact", "labels"]) => {
                principal.check(&reg, Need::Read)?;
                let labels = state.db.package_labels(&reg.id).await?;
                let (page, size, index) = paging(&query)?;
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
            (m, ["artifact", ..]) => {
                // Artifact names may contain slashes: re-split the raw remainder after "artifact/".
                let after = raw_after_artifact(r)?;
                let (name, sub2) = split_ref(&after)?;
                let sub2: Vec<&str> = sub2.iter().map(String::as_str).collect();
                artifact_route(state, &principal, &reg, m, &name, &sub2, &query, &body).await
            }
            _ => Err(ApiError::not_found(format!(
                "no such endpoint: {} /registry/{r}",
                parts.method
            ))),
        };
    }
    if let Some(r) = rest.strip_prefix("spaces/") {
        let (space, sub) = split_ref(r)?;
        let space = space.trim_matches('/').to_string();
        validate_path("space_ref", &space)?;
        let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
        return match (method, sub.as_slice()) {
            (Method::GET, ["registries"]) => {
                list_registries(state, &principal, &space, &query).await
            }
            (Method::GET, ["artifacts"]) => {
                list_space_artifacts(state, &principal, &space, &query).await
            }
            _ => Err(ApiError::not_found(format!(
                "no such endpoint under /spaces/{space}"
            ))),
        };
    }
    Err(ApiError::not_found(format!("no such endpoint: {path}")))
}

/// The raw text after `/artifact/` in a registry path (refs already consumed).
pub(crate) fn raw_after_artifact(r: &str) -> ApiResult<String> {
    r.split_once("/artifact/")
        .map(|(_, a)| a.to_string())
        .ok_or_else(|| ApiError::bad("artifact", "missing artifact name"))
}

async fn load_registry(
    state: &AppState,
    principal: &Principal,
    space: &str,
    ident: &str,
) -> ApiResult<Registry> {
    let account = space.split('/').next().unwrap_or(space);
    match state.db.registry_by_identifier(account, ident).await? {
        Some(r) if r.scope_path == space => Ok(r),
        _ if principal.is_anonymous() => {
            Err(ApiError::Unauthenticated("authentication required".into()))
        }
        _ => Err(ApiError::not_found(format!(
            "registry '{space}/{ident}' doesn't exist"
        ))),
    }
}

/// (page for the offset, size, pageIndex to echo).
fn paging(query: &[(String, String)]) -> ApiResult<(i64, i64, i64)> {
    let page = query_int(query, "page")?;
    let size = check_size(query_int(query, "size")?.unwrap_or(10))?;
    Ok((page.unwrap_or(0), size, page.unwrap_or(1)))
}

fn list_json(total: i64, index: i64, size: i64, key: &str, items: Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("itemCount".into(), json!(total));
    m.insert("pageCount".into(), json!((total + size - 1) / size));
    m.insert("pageIndex".into(), json!(index));
    m.insert("pageSize".into(), json!(size));
    m.insert(key.into(), items);
    Value::Object(m)
}

fn descending(query: &[(String, String)]) -> ApiResult<bool> {
    match query_get(query, "sort_order")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("") | Some("ASC") => Ok(false),
        Some("DESC") => Ok(true),
        Some(o) => Err(ApiError::bad(
            "sort_order",
            format!("sort_order must be ASC or DESC, got '{o}'"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Registry request/response translation.

/// Create and update body. Unknown fields are ignored, as the Harness server does.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryRequest {
    pub identifier: Option<String>,
    pub package_type: Option<String>,
    pub parent_ref: Option<String>,
    pub description: Option<String>,
    pub labels: Option<Vec<String>>,
    pub allowed_pattern: Option<Vec<String>>,
    pub blocked_pattern: Option<Vec<String>>,
    pub cleanup_policy: Option<Vec<CleanupPolicy>>,
    #[schema(value_type = Object)]
    pub config: Option<Value>,
    #[schema(value_type = Vec<Object>)]
    pub scanners: Option<Vec<Value>>,
    pub is_public: Option<bool>,
    /// Arca extension (GitFlic setting): may versions be deleted.
    pub is_delete_package_allowed: Option<bool>,
    /// Arca extension (GitFlic setting): NONE or OVERRIDE.
    pub package_reupload_type: Option<String>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::bad("body", "request body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("body", format!("invalid JSON body: {e}")))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Reads `config` into kind, members (identifiers) and proxy settings.
struct ParsedConfig {
    kind: RegistryKind,
    upstreams: Option<Vec<String>>,
    proxy: Option<ProxySettings>,
}

fn parse_config(config: Option<&Value>, existing: Option<&Registry>) -> ApiResult<ParsedConfig> {
    let Some(c) = config.filter(|c| !c.is_null()) else {
        return Ok(ParsedConfig {
            kind: existing.map(|r| r.kind).unwrap_or(RegistryKind::Hosted),
            upstreams: None,
            proxy: None,
        });
    };
    if !c.is_object() {
        return Err(ApiError::bad("config", "config must be an object"));
    }
    match str_field(c, "type") {
        Some("VIRTUAL") => {
            let upstreams = match c.get("upstreamProxies") {
                None | Some(Value::Null) => None,
                Some(Value::Array(a)) => Some(
                    a.iter()
                        .map(|v| {
                            v.as_str().map(str::to_string).ok_or_else(|| {
                                ApiError::bad(
                                    "config.upstreamProxies",
                                    "must be a list of registry identifiers",
                                )
                            })
                        })
                        .collect::<ApiResult<Vec<_>>>()?,
                ),
                Some(_) => {
                    return Err(ApiError::bad(
                        "config.upstreamProxies",
                        "must be a list of registry identifiers",
                    ));
                }
            };
            let kind = match existing.map(|r| r.kind) {
                Some(k @ (RegistryKind::Group | RegistryKind::Cache | RegistryKind::Trash)) => k,
                _ => RegistryKind::Hosted,
            };
            Ok(ParsedConfig {
                kind,
                upstreams,
                proxy: None,
            })
        }
        Some("UPSTREAM") => {
            let auth_type = str_field(c, "authType").unwrap_or("Anonymous");
            let auth = c.get("auth").filter(|a| !a.is_null());
            let (username, secret, refs) = match auth_type {
                "Anonymous" => (None, None, None),
                "UserPassword" => {
                    let a = auth.ok_or_else(|| {
                        ApiError::bad("config.auth", "authType UserPassword needs auth.userName")
                    })?;
                    let user = str_field(a, "userName").ok_or_else(|| {
                        ApiError::bad("config.auth.userName", "userName is required")
                    })?;
                    // Harness passes secret references; Arca also accepts the secret itself (`password`),
                    // which is stored and never returned.
                    let secret = str_field(a, "password").map(str::to_string);
                    if secret.is_none() && str_field(a, "secretIdentifier").is_none() {
                        return Err(ApiError::bad(
                            "config.auth.secretIdentifier",
                            "secretIdentifier (or password) is required",
                        ));
                    }
                    let mut refs = a.clone();
                    if let Some(o) = refs.as_object_mut() {
                        o.remove("password");
                    }
                    (Some(user.to_string()), secret, Some(refs))
                }
                "AccessKeySecretKey" => {
                    let a = auth.ok_or_else(|| {
                        ApiError::bad("config.auth", "authType AccessKeySecretKey needs auth")
                    })?;
                    if str_field(a, "secretKeyIdentifier").is_none() {
                        return Err(ApiError::bad(
                            "config.auth.secretKeyIdentifier",
                            "secretKeyIdentifier is required",
                        ));
                    }
                    (
                        str_field(a, "accessKey").map(str::to_string),
                        None,
                        Some(a.clone()),
                    )
                }
                other => {
                    return Err(ApiError::bad(
                        "config.authType",
                        format!(
                            "unknown authType '{other}': expected UserPassword, AccessKeySecretKey or Anonymous"
                        ),
                    ));
                }
            };
            let source = str_field(c, "source").unwrap_or("Custom").to_string();
            const SOURCES: [&str; 10] = [
                "Dockerhub",
                "Custom",
                "AwsEcr",
                "MavenCentral",
                "PyPi",
                "NpmJs",
                "NugetOrg",
                "Crates",
                "GoProxy",
                "HuggingFace",
            ];
            if !SOURCES.contains(&source.as_str()) {
                return Err(ApiError::bad(
                    "config.source",
                    format!("unknown source '{source}'"),
                ));
            }
            let url = str_field(c, "url").map(str::trim).unwrap_or("").to_string();
            if url.is_empty() {
                return Err(ApiError::bad(
                    "config.url",
                    "config.url is required: Arca has no built-in upstream addresses",
                ));
            }
            let prev = existing.and_then(|r| r.proxy.clone());
            let proxy = ProxySettings {
                url,
                username,
                secret: secret.or_else(|| prev.as_ref().and_then(|p| p.secret.clone())),
                caching: prev.as_ref().map(|p| p.caching).unwrap_or(true),
                offline: prev.as_ref().map(|p| p.offline).unwrap_or(false),
                expire_hours: prev.as_ref().map(|p| p.expire_hours).unwrap_or(0),
                metadata_interval_secs: prev
                    .as_ref()
                    .map(|p| p.metadata_interval_secs)
                    .unwrap_or(7200),
                source: Some(source),
                harness_auth: refs.map(|mut r| {
                    if let Some(o) = r.as_object_mut() {
                        o.insert("authType".into(), json!(auth_type));
                    }
                    r
                }),
            };
            Ok(ParsedConfig {
                kind: RegistryKind::Proxy,
                upstreams: None,
                proxy: Some(proxy),
            })
        }
        Some(t) => Err(ApiError::bad(
            "config.type",
            format!("unknown config.type '{t}': expected VIRTUAL or UPSTREAM"),
        )),
        None => Err(ApiError::bad(
            "config.type",
            "config.type is required (VIRTUAL or UPSTREAM)",
        )),
    }
}

fn parse_package_type(s: Option<&str>) -> ApiResult<PackageType> {
    let s = s.ok_or_else(|| ApiError::bad("packageType", "packageType is required"))?;
    PackageType::from_harness(s).ok_or_else(|| {
        ApiError::bad(
            "packageType",
            format!(
                "unknown packageType '{s}': expected one of {}",
                PackageType::ALL
                    .iter()
                    .map(|t| t.harness())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

async fn resolve_upstreams(
    state: &AppState,
    account: &str,
    names: &[String],
) -> ApiResult<Vec<String>> {
    let mut ids = Vec::new();
    for n in names {
        ids.push(
            service::resolve_member(state, account, "config.upstreamProxies", n)
                .await?
                .id,
        );
    }
    Ok(ids)
}

fn parse_reupload(s: Option<&str>) -> ApiResult<Option<Reupload>> {
    s.map(|v| {
        Reupload::parse(v).ok_or_else(|| {
            ApiError::bad(
                "packageReuploadType",
                format!("unknown packageReuploadType '{v}': expected NONE or OVERRIDE"),
            )
        })
    })
    .transpose()
}

async fn create_registry(
    state: &AppState,
    principal: &Principal,
    query: &[(String, String)],
    body: &[u8],
) -> ApiResult<Response> {
    if principal.is_anonymous() {
        return Err(ApiError::Unauthenticated("authentication required".into()));
    }
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
    let account = parent.split('/').next().unwrap_or(&parent).to_string();
    let cfg = parse_config(req.config.as_ref(), None)?;
    let members = match &cfg.upstreams {
        Some(names) => resolve_upstreams(state, &account, names).await?,
        None => vec![],
    };
    let now = now_ms();
    let reg = Registry {
        id: new_id(),
        account,
        scope_id: String::new(),
        scope_path: parent.clone(),
        identifier,
        package_type,
        kind: cfg.kind,
        description: req.description,
        labels: req.labels.unwrap_or_default(),
        allowed_patterns: req.allowed_pattern.unwrap_or_default(),
        blocked_patterns: req.blocked_pattern.unwrap_or_default(),
        // As on the Harness server, cleanup policies are stored on update only.
        cleanup_policies: vec![],
        scanners: req.scanners.unwrap_or_default(),
        anonymous: req.is_public.unwrap_or(false),
        delete_allowed: req.is_delete_package_allowed.unwrap_or(false),
        reupload: parse_reupload(req.package_reupload_type.as_deref())?
            .unwrap_or(Reupload::Override),
        proxy: cfg.proxy,
        cache_of: None,
        allow_remote_proxying: false,
        deployment_registry_id: None,
        members,
        created_at: now,
        updated_at: now,
    };
    let reg = service::create(state, principal, &parent, reg, "config.upstreamProxies").await?;
    let data = registry_json(state, &reg).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"status": "SUCCESS", "data": data})),
    )
        .into_response())
}

async fn update_registry(
    state: &AppState,
    principal: &Principal,
    mut reg: Registry,
    body: &[u8],
) -> ApiResult<Response> {
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
    let cfg = parse_config(req.config.as_ref(), Some(&reg))?;
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
        reg.members = resolve_upstreams(state, &reg.account, names).await?;
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
    if let Some(d) = req.is_delete_package_allowed {
        reg.delete_allowed = d;
    }
    if let Some(r) = parse_reupload(req.package_reupload_type.as_deref())? {
        reg.reupload = r;
    }
    let reg = service::update(state, principal, reg, "config.upstreamProxies").await?;
    Ok(success(registry_json(state, &reg).await?))
}

/// The URL clients use for a registry: OCI image prefix for DOCKER/HELM, the package root otherwise,
/// the remote for proxies.
pub fn registry_url(state: &AppState, reg: &Registry) -> String {
    if let (RegistryKind::Proxy, Some(p)) = (reg.kind, &reg.proxy) {
        return p.url.clone();
    }
    native_url(state, reg)
}

pub fn native_url(state: &AppState, reg: &Registry) -> String {
    let base = &state.config.base_url;
    match reg.package_type {
        PackageType::Docker | PackageType::Helm => {
            format!("{base}/{}/{}", reg.account, reg.identifier)
        }
        t => format!(
            "{base}/pkg/{}/{}/{}",
            reg.account,
            reg.identifier,
            t.path_segment()
        ),
    }
}

async fn member_identifiers(state: &AppState, reg: &Registry) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for m in &reg.members {
        if let Some(r) = state.db.registry_by_id(m).await? {
            out.push(r.identifier);
        }
    }
    Ok(out)
}

pub async fn registry_json(state: &AppState, reg: &Registry) -> ApiResult<Value> {
    let config = match (reg.kind, &reg.proxy) {
        (RegistryKind::Proxy, Some(p)) => {
            let auth_type = p
                .harness_auth
                .as_ref()
                .and_then(|a| {
                    a.get("authType")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| {
                    if p.username.is_some() {
                        "UserPassword".into()
                    } else {
                        "Anonymous".into()
                    }
                });
            let auth = p.harness_auth.clone().map(|mut a| {
                if let Some(o) = a.as_object_mut() {
                    o.remove("authType");
                }
                a
            });
            json!({"type": "UPSTREAM", "source": p.source.clone().unwrap_or_else(|| "Custom".into()), "url": p.url,
                   "authType": auth_type, "auth": auth})
        }
        _ => json!({"type": "VIRTUAL", "upstreamProxies": member_identifiers(state, reg).await?}),
    };
    Ok(json!({
        "uuid": reg.id,
        "identifier": reg.identifier,
        "packageType": reg.package_type.harness(),
        "url": registry_url(state, reg),
        "description": reg.description.clone().unwrap_or_default(),
        "labels": reg.labels,
        "allowedPattern": reg.allowed_patterns,
        "blockedPattern": reg.blocked_patterns,
        "cleanupPolicy": if reg.cleanup_policies.is_empty() { Value::Null } else { json!(reg.cleanup_policies) },
        "scanners": reg.scanners,
        "isPublic": reg.anonymous,
        "config": config,
        "createdAt": reg.created_at.to_string(),
        "modifiedAt": reg.updated_at.to_string(),
        "parentRef": reg.scope_path,
        // Arca extensions that keep both dialects lossless.
        "kind": reg.kind.as_str(),
        "isDeletePackageAllowed": reg.delete_allowed,
        "packageReuploadType": reg.reupload.as_str(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Lists.

async fn list_registries(
    state: &AppState,
    principal: &Principal,
    space: &str,
    query: &[(String, String)],
) -> ApiResult<Response> {
    if principal.is_anonymous() {
        return Err(ApiError::Unauthenticated("authentication required".into()));
    }
    let scope_mode = match query_get(query, "scope") {
        Some("ancestors") => "ancestors",
        Some("descendants") => "descendants",
        Some("none") | Some("") | None => {
            if query_get(query, "recursive") == Some("true") {
                "ancestors"
            } else {
                "none"
            }
        }
        Some(o) => {
            return Err(ApiError::bad(
                "scope",
                format!("scope must be none, ancestors or descendants, got '{o}'"),
            ));
        }
    };
    let mut scope_ids = Vec::new();
    match scope_mode {
        "descendants" => scope_ids.extend(state.db.descendant_scope_ids(space).await?),
        "ancestors" => {
            for p in ancestor_paths(space) {
                if let Some(s) = state.db.scope_by_path(&p).await? {
                    scope_ids.push(s.id);
                }
            }
        }
        _ => {
            if let Some(s) = state.db.scope_by_path(space).await? {
                scope_ids.push(s.id);
            }
        }
    }
    if state.db.scope_by_path(space).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "space '{space}' doesn't exist"
        )));
    }
    principal
        .require_scope(space, crate::model::Role::Reader)
        .or_else(|e| {
            // Readers of a descendant only may still list what they can see there.
            if scope_mode == "descendants" {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    let mut package_types = Vec::new();
    for t in query_all(query, "package_type") {
        package_types.push(
            parse_package_type(Some(t)).map_err(|_| {
                ApiError::bad("package_type", format!("unknown package_type '{t}'"))
            })?,
        );
    }
    let kinds = match query_get(query, "type") {
        None | Some("") => vec![],
        Some("UPSTREAM") => vec![RegistryKind::Proxy],
        Some("VIRTUAL") => vec![
            RegistryKind::Hosted,
            RegistryKind::Group,
            RegistryKind::Cache,
            RegistryKind::Trash,
        ],
        Some(o) => {
            return Err(ApiError::bad(
                "type",
                format!("type must be VIRTUAL or UPSTREAM, got '{o}'"),
            ));
        }
    };
    let sort_column = match query_get(query, "sort_field") {
        Some("identifier") => "r.identifier",
        Some("lastModified") => "r.updated_at",
        Some("type") => "r.kind",
        Some("artifactsCount") => "(SELECT COUNT(*) FROM packages p WHERE p.registry_id = r.id)",
        Some("registrySize") => {
            "(SELECT COALESCE(SUM(p.size), 0) FROM packages p WHERE p.registry_id = r.id)"
        }
        Some("downloadsCount") => {
            "(SELECT COALESCE(SUM(p.download_count), 0) FROM packages p WHERE p.registry_id = r.id)"
        }
        _ => "r.created_at",
    };
    let (page, size, index) = paging(query)?;
    // Registries the caller cannot read are filtered out; counting them first keeps paging honest
    // only when the caller can read the whole space, which the role check above ensures.
    let filter = RegistryFilter {
        scope_ids,
        package_types,
        kinds,
        search: query_get(query, "search_term").map(str::to_string),
        sort_column,
        descending: descending(query)?,
        offset: page_offset(page, size)?,
        limit: size,
    };
    let (total, regs) = state.db.list_registries(&filter).await?;
    let mut items = Vec::new();
    for r in regs.iter().filter(|r| principal.can(r, Need::Read)) {
        let (count, bytes, downloads) = state.db.registry_stats(&r.id).await?;
        items.push(json!({
            "identifier": r.identifier,
            "packageType": r.package_type.harness(),
            "type": r.kind.harness(),
            "kind": r.kind.as_str(),
            "url": registry_url(state, r),
            "isPublic": r.anonymous,
            "uuid": r.id,
            "description": r.description.clone().unwrap_or_default(),
            "registrySize": human_size(bytes),
            "downloadsCount": downloads,
            "artifactsCount": count,
            "labels": r.labels,
            "lastModified": r.updated_at.to_string(),
            "path": r.path(),
        }));
    }
    Ok(success(list_json(
        total,
        index,
        size,
        "registries",
        json!(items),
    )))
}

/// A page of a list: offset from the 0-based `page`, the validated sort column, order and search term.
fn list_page(
    query: &[(String, String)],
    page: i64,
    size: i64,
    sort_column: &'static str,
) -> ApiResult<Page> {
    Ok(Page {
        offset: page_offset(page, size)?,
        limit: size,
        sort_column,
        descending: descending(query)?,
        search: query_get(query, "search_term").map(str::to_string),
    })
}

fn package_page(query: &[(String, String)], page: i64, size: i64) -> ApiResult<Page> {
    let sort_column = match query_get(query, "sort_field") {
        Some("name") | Some("repoKey") => "name",
        Some("lastModified") => "updated_at",
        Some("downloadsCount") => "download_count",
        _ => "created_at",
    };
    list_page(query, page, size, sort_column)
}

fn pull_command(state: &AppState, reg: &Registry, name: &str, version: &str) -> String {
    let url = native_url(state, reg);
    let host = state
        .config
        .base_url
        .split("://")
        .nth(1)
        .unwrap_or(&state.config.base_url);
    match reg.package_type {
        PackageType::Generic => {
            format!("curl -u <USERNAME>:<TOKEN> -O {url}/{name}/{version}/<FILENAME>")
        }
        PackageType::Docker => format!(
            "docker pull {host}/{}/{}/{name}:{version}",
            reg.account, reg.identifier
        ),
        PackageType::Helm => format!(
            "helm pull oci://{host}/{}/{}/{name} --version {version}",
            reg.account, reg.identifier
        ),
        PackageType::Python => format!("pip install {name}=={version}"),
        PackageType::Npm => format!("npm install {name}@{version}"),
        PackageType::Rpm => format!("yum install {name}-{version}"),
        PackageType::Nuget => {
            format!("nuget install {name} -Version {version} -Source {url}/index.json")
        }
        PackageType::Cargo => format!("cargo add {name}@{version} --registry {}", reg.identifier),
        PackageType::Maven => format!("mvn dependency:get -Dartifact={name}:{version}"),
        PackageType::Composer => format!("composer require {name}:{version}"),
        PackageType::Debian => format!("apt-get install {name}={version}"),
        PackageType::Cran => format!("install.packages(\"{name}\")"),
        PackageType::Opm => format!("opm install {name}@{version}"),
    }
}

fn registry_artifact_json(reg: &Registry, p: &PackageRow) -> Value {
    json!({
        "name": p.name,
        "registryIdentifier": reg.identifier,
        "registryPath": reg.path(),
        "packageType": reg.package_type.harness(),
        "labels": p.labels,
        "downloadsCount": p.download_count,
        "latestVersion": p.latest_version.clone().unwrap_or_default(),
        "lastModified": p.updated_at.to_string(),
        "uuid": p.id,
        "registryUUID": reg.id,
        "isPublic": reg.anonymous,
        "isQuarantined": false,
        "deletedAt": Value::Null,
    })
}

async fn list_registry_artifacts(
    state: &AppState,
    principal: &Principal,
    reg: &Registry,
    query: &[(String, String)],
) -> ApiResult<Response> {
    principal.check(reg, Need::Read)?;
    let (page, size, index) = paging(query)?;
    let labels: Vec<String> = query_all(query, "label")
        .into_iter()
        .map(str::to_string)
        .collect();
    let (total, pkgs) = state
        .db
        .list_packages(
            std::slice::from_ref(&reg.id),
            &labels,
            &package_page(query, page, size)?,
        )
        .await?;
    let items: Vec<Value> = pkgs
        .iter()
        .map(|p| registry_artifact_json(reg, p))
        .collect();
    Ok(success(list_json(
        total,
        index,
        size,
        "artifacts",
        json!(items),
    )))
}

async fn list_space_artifacts(
    state: &AppState,
    principal: &Principal,
    space: &str,
    query: &[(String, String)],
) -> ApiResult<Response> {
    if principal.is_anonymous() {
        return Err(ApiError::Unauthenticated("authentication required".into()));
    }
    let scope = state
        .db
        .scope_by_path(space)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("space '{space}' doesn't exist")))?;
    let mut package_types = Vec::new();
    for t in query_all(query, "package_type") {
        package_types.push(
            parse_package_type(Some(t)).map_err(|_| {
                ApiError::bad("package_type", format!("unknown package_type '{t}'"))
            })?,
        );
    }
    let wanted: Vec<&str> = query_all(query, "reg_identifier");
    let filter = RegistryFilter {
        scope_ids: vec![scope.id],
        package_types,
        kinds: vec![],
        search: None,
        sort_column: "r.created_at",
        descending: false,
        offset: 0,
        limit: 10_000,
    };
    let (_, regs) = state.db.list_registries(&filter).await?;
    let regs: Vec<Registry> = regs
        .into_iter()
        .filter(|r| principal.can(r, Need::Read))
        .filter(|r| wanted.is_empty() || wanted.contains(&r.identifier.as_str()))
        .collect();
    let ids: Vec<String> = regs.iter().map(|r| r.id.clone()).collect();
    let (page, size, index) = paging(query)?;
    let (total, pkgs) = state
        .db
        .list_packages(&ids, &[], &package_page(query, page, size)?)
        .await?;
    let mut items = Vec::new();
    for p in &pkgs {
        let Some(reg) = regs.iter().find(|r| r.id == p.registry_id) else {
            continue;
        };
        let version = p.latest_version.clone().unwrap_or_default();
        items.push(json!({
            "name": p.name,
            "version": version,
            "registryIdentifier": reg.identifier,
            "registryPath": reg.path(),
            "packageType": reg.package_type.harness(),
            "registryType": reg.kind.harness(),
            "labels": p.labels,
            "downloadsCount": p.download_count,
            "lastModified": p.updated_at.to_string(),
            "pullCommand": pull_command(state, reg, &p.name, &version),
            "isQuarantined": false,
            "uuid": p.id,
            "registryUUID": reg.id,
            "deletedAt": Value::Null,
        }));
    }
    Ok(success(list_json(
        total,
        index,
        size,
        "artifacts",
        json!(items),
    )))
}

// ---------------------------------------------------------------------------------------------
// Artifacts, versions, files.

#[allow(clippy::too_many_arguments)]
async fn artifact_route(
    state: &AppState,
    principal: &Principal,
    reg: &Registry,
    method: Method,
    name: &str,
    sub: &[&str],
    query: &[(String, String)],
    body: &[u8],
) -> ApiResult<Response> {
    match (method, sub) {
        (Method::DELETE, []) => {
            principal.check(reg, Need::Delete)?;
            trash_versions(state, reg, name, None).await?;
            Ok(Json(json!({"status": "SUCCESS"})).into_response())
        }
        (Method::GET, ["summary"]) => {
            principal.check(reg, Need::Read)?;
            let p = package(state, reg, name).await?;
            Ok(success(artifact_summary(reg, &p)))
        }
        (Method::PUT, ["labels"]) => {
            principal.check(reg, Need::Write)?;
            #[derive(Deserialize)]
            struct Labels {
                labels: Vec<String>,
            }
            let l: Labels = parse_body(body)?;
            let p = package(state, reg, name).await?;
            state.db.set_package_labels(&p.id, &l.labels).await?;
            let p = package(state, reg, name).await?;
            Ok(success(artifact_summary(reg, &p)))
        }
        (Method::GET, ["versions"]) => {
            principal.check(reg, Need::Read)?;
            let p = package(state, reg, name).await?;
            let (page, size, index) = paging(query)?;
            let sort_column = match query_get(query, "sort_field") {
                Some("name") | Some("pullCommand") => "version",
                Some("size") => "size",
                Some("downloadsCount") => "download_count",
                Some("lastModified") => "updated_at",
                _ => "created_at",
            };
            let pg = list_page(query, page, size, sort_column)?;
            let (total, versions) = state.db.list_versions(&p.id, &pg).await?;
            let items: Vec<Value> = versions
                .iter()
                .map(|v| version_json(state, reg, &p, v))
                .collect();
            Ok(success(list_json(
                total,
                index,
                size,
                "artifactVersions",
                json!(items),
            )))
        }
        (method, ["version", version, rest @ ..]) => {
            let p = package(state, reg, name).await?;
            let v = state
                .db
                .version_by_name(&p.id, version)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("version '{version}' of '{name}' doesn't exist"))
                })?;
            match (method, rest) {
                (Method::DELETE, []) => {
                    principal.check(reg, Need::Delete)?;
                    trash_versions(state, reg, name, Some(version)).await?;
                    Ok(Json(json!({"status": "SUCCESS"})).into_response())
                }
                (Method::GET, ["summary"]) => {
                    principal.check(reg, Need::Read)?;
                    Ok(success(json!({
                        "imageName": p.name, "version": v.version, "isQuarantined": false, "quarantineReason": "",
                        "packageType": reg.package_type.harness(), "uuid": v.id, "registryUUID": reg.id, "deletedAt": Value::Null,
                    })))
                }
                (Method::GET, ["details"]) => {
                    principal.check(reg, Need::Read)?;
                    Ok(success(json!({
                        "name": p.name, "version": v.version, "size": human_size(v.size), "downloadCount": v.download_count,
                        "createdAt": v.created_at.to_string(), "modifiedAt": v.updated_at.to_string(),
                        "isQuarantined": false, "quarantineReason": "", "packageType": reg.package_type.harness(),
                        "pullCommand": pull_command(state, reg, &p.name, &v.version),
                        "metadata": v.metadata,
                    })))
                }
                (Method::GET, ["files"]) => {
                    principal.check(reg, Need::Read)?;
                    let (page, size, index) = paging(query)?;
                    let sort_column = match query_get(query, "sort_field") {
                        Some("name") => "name",
                        Some("size") => "size",
                        _ => "created_at",
                    };
                    let pg = list_page(query, page, size, sort_column)?;
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

fn artifact_summary(reg: &Registry, p: &PackageRow) -> Value {
    json!({
        "imageName": p.name,
        "packageType": reg.package_type.harness(),
        "labels": p.labels,
        "downloadsCount": p.download_count,
        "createdAt": p.created_at.to_string(),
        "modifiedAt": p.updated_at.to_string(),
        "uuid": p.id,
        "registryUUID": reg.id,
        "deletedAt": Value::Null,
    })
}

fn version_json(state: &AppState, reg: &Registry, p: &PackageRow, v: &VersionRow) -> Value {
    json!({
        "name": v.version,
        "registryIdentifier": reg.identifier,
        "registryPath": reg.path(),
        "packageType": reg.package_type.harness(),
        "size": human_size(v.size),
        "fileCount": v.file_count,
        "downloadsCount": v.download_count,
        "lastModified": v.updated_at.to_string(),
        "pullCommand": pull_command(state, reg, &p.name, &v.version),
        "isQuarantined": false,
        "quarantineReason": "",
        "uuid": v.id,
        "registryUUID": reg.id,
        "metadata": v.metadata,
    })
}

fn file_json(state: &AppState, reg: &Registry, f: &FileRow) -> Value {
    let url = format!("{}/{}", native_url(state, reg), f.path);
    json!({
        "name": f.name,
        "size": human_size(f.size),
        "checksums": [format!("SHA-512: {}", f.sha512), format!("SHA-256: {}", f.sha256), format!("SHA-1: {}", f.sha1), format!("MD5: {}", f.md5)],
        "downloadCommand": format!("curl -u <USERNAME>:<TOKEN> -o '{}' '{url}'", f.name),
        "createdAt": f.created_at.to_string(),
        "path": f.path,
    })
}

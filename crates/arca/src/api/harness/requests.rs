//! Harness request parsing: the registry body and its `config`, and the query parameters of the
//! lists (paging, sort order, sort field, filters). Handlers call these in the order in which
//! their errors must win, so each parameter has its own function.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::common::{check_size, page_offset};
use crate::error::{ApiError, ApiResult};
use crate::http::{query_all, query_get, query_int};
use crate::model::{CleanupPolicy, PackageType, ProxySettings, Registry, RegistryKind, Reupload};
use crate::store::paging::{Page, SortField};

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
    /// Arca's extension: this private registry may be an upstream or member of public registries.
    pub allow_public_groups: Option<bool>,
    /// Arca extension (GitFlic setting): may versions be deleted.
    pub is_delete_package_allowed: Option<bool>,
    /// Arca extension (GitFlic setting): NONE or OVERRIDE.
    pub package_reupload_type: Option<String>,
}

pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::bad("body", "request body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("body", format!("invalid JSON body: {e}")))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `config` read into kind, members (identifiers) and proxy settings.
pub(super) struct ParsedConfig {
    pub kind: RegistryKind,
    pub upstreams: Option<Vec<String>>,
    pub proxy: Option<ProxySettings>,
    /// `dependencyConfusionAllowList` of a VIRTUAL (Arca's extension; see `formats::members`).
    pub allow_list: Option<Vec<String>>,
}

pub(super) fn parse_config(
    upstream_sources: &std::collections::BTreeMap<String, String>,
    config: Option<&Value>,
    existing: Option<&Registry>,
) -> ApiResult<ParsedConfig> {
    // An empty object (the seed's own request sample, `"config": {}`) says nothing, like no config:
    // the hosted kind on create, the registry's own on update.
    let empty = |c: &&Value| c.is_null() || c.as_object().is_some_and(|o| o.is_empty());
    let Some(c) = config.filter(|c| !empty(c)) else {
        return Ok(ParsedConfig {
            kind: existing.map(|r| r.kind).unwrap_or(RegistryKind::Hosted),
            upstreams: None,
            proxy: None,
            allow_list: None,
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
            let allow_list = match c.get("dependencyConfusionAllowList") {
                None | Some(Value::Null) => None,
                Some(v) => Some(serde_json::from_value::<Vec<String>>(v.clone()).map_err(
                    |_| {
                        ApiError::bad(
                            "config.dependencyConfusionAllowList",
                            "must be a list of name patterns",
                        )
                    },
                )?),
            };
            Ok(ParsedConfig {
                kind,
                upstreams,
                proxy: None,
                allow_list,
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
                    (
                        Some(user.to_string()),
                        secret,
                        Some(secret_refs(a, &USER_PASSWORD_REFS)),
                    )
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
                    // A raw `secretKey` is kept like a password: stored, never returned.
                    (
                        str_field(a, "accessKey").map(str::to_string),
                        str_field(a, "secretKey").map(str::to_string),
                        Some(secret_refs(a, &ACCESS_KEY_REFS)),
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
            if !crate::model::UPSTREAM_SOURCES.contains(&source.as_str()) {
                return Err(ApiError::bad(
                    "config.source",
                    format!("unknown source '{source}'"),
                ));
            }
            let prev = existing.and_then(|r| r.proxy.clone());
            // No URL: the one already stored, else the configured default of a well-known source.
            let url = match str_field(c, "url").map(str::trim).filter(|u| !u.is_empty()) {
                Some(u) => u.to_string(),
                None => match (prev.as_ref(), upstream_sources.get(&source)) {
                    (Some(p), _) => p.url.clone(),
                    (None, Some(default)) => default.clone(),
                    (None, None) if source == "Custom" => {
                        return Err(ApiError::bad(
                            "config.url",
                            "config.url is required for a Custom source",
                        ));
                    }
                    (None, None) => {
                        return Err(ApiError::bad(
                            "config.url",
                            format!(
                                "config.url is required: no default upstream is configured for source \
                                 '{source}' (set ARCA_UPSTREAM_{} or upstream_sources.{source})",
                                source.to_ascii_uppercase()
                            ),
                        ));
                    }
                },
            };
            // Settings Harness has no field for travel as extensions on `config`.
            let flag = |k: &str| c.get(k).and_then(Value::as_bool);
            let number = |k: &str| c.get(k).and_then(Value::as_i64);
            let harness_auth = refs.map(|mut r| {
                if let Some(o) = r.as_object_mut() {
                    o.insert("authType".into(), json!(auth_type));
                }
                r
            });
            // A stored secret is never shown, so a config sent back as read keeps it; other
            // credentials (another user or reference, or Anonymous) drop it: it would otherwise
            // still be sent upstream.
            let secret = match auth_type {
                "Anonymous" => None,
                _ => secret.or_else(|| {
                    prev.as_ref()
                        .filter(|p| p.username == username && p.harness_auth == harness_auth)
                        .and_then(|p| p.secret.clone())
                }),
            };
            let proxy = ProxySettings {
                url,
                username,
                secret,
                caching: flag("isCaching")
                    .or(prev.as_ref().map(|p| p.caching))
                    .unwrap_or(true),
                offline: flag("isOffline")
                    .or(prev.as_ref().map(|p| p.offline))
                    .unwrap_or(false),
                expire_hours: number("expireHours")
                    .or(prev.as_ref().map(|p| p.expire_hours))
                    .unwrap_or(0),
                metadata_interval_secs: number("metadataCacheTTL")
                    .or(prev.as_ref().map(|p| p.metadata_interval_secs))
                    .unwrap_or(7200),
                negative_ttl_secs: number("negativeCacheTTL")
                    .filter(|v| *v >= 0)
                    .or(prev.as_ref().and_then(|p| p.negative_ttl_secs)),
                library_prefix: flag("dockerLibraryPrefix")
                    .or(prev.as_ref().and_then(|p| p.library_prefix)),
                source: Some(source),
                distributions: match c.get("distributions") {
                    Some(Value::Array(l)) => l
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|d| d.trim().to_string())
                        .collect(),
                    Some(_) => Vec::new(),
                    None => prev
                        .as_ref()
                        .map(|p| p.distributions.clone())
                        .unwrap_or_default(),
                },
                upstream_key: match c.get("upstreamPublicKey") {
                    Some(Value::String(k)) => Some(k.trim().to_string()).filter(|k| !k.is_empty()),
                    Some(_) => None,
                    None => prev.as_ref().and_then(|p| p.upstream_key.clone()),
                },
                harness_auth,
            };
            Ok(ParsedConfig {
                kind: RegistryKind::Proxy,
                upstreams: None,
                proxy: Some(proxy),
                allow_list: None,
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

pub(super) fn parse_package_type(s: Option<&str>) -> ApiResult<PackageType> {
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

pub(super) fn parse_reupload(s: Option<&str>) -> ApiResult<Option<Reupload>> {
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

/// A space ref from a query string without its `/+` terminator. Form decoding turns a `+` typed
/// unencoded (`space_ref=acme/+`) into a space, so `/ ` is the same terminator.
pub(crate) fn strip_terminator(r: &str) -> String {
    r.strip_suffix("/+")
        .or_else(|| r.strip_suffix("/ "))
        .unwrap_or(r)
        .to_string()
}

/// (page for the offset, size, pageIndex to echo).
pub(super) fn paging(query: &[(String, String)]) -> ApiResult<(i64, i64, i64)> {
    let page = query_int(query, "page")?;
    let size = check_size(query_int(query, "size")?.unwrap_or(10))?;
    Ok((page.unwrap_or(0), size, page.unwrap_or(1)))
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

/// A page of a list: offset from the 0-based `page`, the sort field, order and search term.
fn list_page(query: &[(String, String)], page: i64, size: i64, sort: SortField) -> ApiResult<Page> {
    Ok(Page::new(
        page_offset(page, size)?,
        size,
        sort,
        descending(query)?,
        query_get(query, "search_term").map(str::to_string),
    ))
}

/// The page of an artifact list (`sort_field` as for `registry_page`).
pub(super) fn package_page(query: &[(String, String)], page: i64, size: i64) -> ApiResult<Page> {
    let sort = match query_get(query, "sort_field") {
        Some("name") | Some("repoKey") => SortField::Name,
        Some("lastModified") => SortField::Updated,
        Some("downloadsCount") => SortField::Downloads,
        _ => SortField::Created,
    };
    list_page(query, page, size, sort)
}

/// Which scopes a registry list covers (`scope`, or the older `recursive=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScopeMode {
    /// The space only.
    Space,
    /// The space and its parents.
    Ancestors,
    /// The space and everything below it.
    Descendants,
}

pub(super) fn scope_mode(query: &[(String, String)]) -> ApiResult<ScopeMode> {
    match query_get(query, "scope") {
        Some("ancestors") => Ok(ScopeMode::Ancestors),
        Some("descendants") => Ok(ScopeMode::Descendants),
        Some("none") | Some("") | None => {
            if query_get(query, "recursive") == Some("true") {
                Ok(ScopeMode::Ancestors)
            } else {
                Ok(ScopeMode::Space)
            }
        }
        Some(o) => Err(ApiError::bad(
            "scope",
            format!("scope must be none, ancestors or descendants, got '{o}'"),
        )),
    }
}

/// The repeatable `package_type` filter.
pub(super) fn package_types(query: &[(String, String)]) -> ApiResult<Vec<PackageType>> {
    query_all(query, "package_type")
        .into_iter()
        .map(|t| {
            parse_package_type(Some(t))
                .map_err(|_| ApiError::bad("package_type", format!("unknown package_type '{t}'")))
        })
        .collect()
}

/// The `type` filter: Harness's two registry types, as the kinds each covers. Caches and trash
/// registries are never listed: the dialect has none.
pub(super) fn registry_kinds(query: &[(String, String)]) -> ApiResult<Vec<RegistryKind>> {
    match query_get(query, "type") {
        None | Some("") => Ok(vec![
            RegistryKind::Hosted,
            RegistryKind::Group,
            RegistryKind::Proxy,
        ]),
        Some("UPSTREAM") => Ok(vec![RegistryKind::Proxy]),
        Some("VIRTUAL") => Ok(vec![RegistryKind::Hosted, RegistryKind::Group]),
        Some(o) => Err(ApiError::bad(
            "type",
            format!("type must be VIRTUAL or UPSTREAM, got '{o}'"),
        )),
    }
}

/// The page of a registry list. Like every list's, its `sort_field` names a field of the list's
/// view; an unknown one is not an error (it never was): the list sorts by creation.
pub(super) fn registry_page(query: &[(String, String)], page: i64, size: i64) -> ApiResult<Page> {
    let sort = match query_get(query, "sort_field") {
        Some("identifier") => SortField::Name,
        Some("lastModified") => SortField::Updated,
        Some("type") => SortField::Kind,
        Some("artifactsCount") => SortField::Artifacts,
        Some("registrySize") => SortField::Size,
        Some("downloadsCount") => SortField::Downloads,
        _ => SortField::Created,
    };
    list_page(query, page, size, sort)
}

/// The page of a version list (`sort_field` as for `registry_page`).
pub(super) fn version_page(query: &[(String, String)], page: i64, size: i64) -> ApiResult<Page> {
    let sort = match query_get(query, "sort_field") {
        Some("name") | Some("pullCommand") => SortField::Name,
        Some("size") => SortField::Size,
        Some("downloadsCount") => SortField::Downloads,
        Some("lastModified") => SortField::Updated,
        _ => SortField::Created,
    };
    list_page(query, page, size, sort)
}

/// The page of a file list (`sort_field` as for `registry_page`).
pub(super) fn file_page(query: &[(String, String)], page: i64, size: i64) -> ApiResult<Page> {
    let sort = match query_get(query, "sort_field") {
        Some("name") => SortField::Name,
        Some("size") => SortField::Size,
        _ => SortField::Created,
    };
    list_page(query, page, size, sort)
}

/// What of a `UserPassword` auth object is stored and shown: names and secret references only.
const USER_PASSWORD_REFS: [&str; 4] = [
    "userName",
    "secretIdentifier",
    "secretSpacePath",
    "secretSpaceId",
];

/// What of an `AccessKeySecretKey` auth object is stored and shown (never `secretKey`).
const ACCESS_KEY_REFS: [&str; 7] = [
    "accessKey",
    "accessKeySecretIdentifier",
    "accessKeySecretSpacePath",
    "accessKeySecretSpaceId",
    "secretKeyIdentifier",
    "secretKeySpacePath",
    "secretKeySpaceId",
];

/// Keeps only the listed fields of an upstream's `auth` object: a whitelist, so that no secret a
/// client sends under any other name is ever stored beside the references or echoed back.
pub(super) fn secret_refs(auth: &Value, keep: &[&str]) -> Value {
    let kept = keep
        .iter()
        .filter_map(|k| auth.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect::<serde_json::Map<_, _>>();
    Value::Object(kept)
}

/// The stored `auth` of an upstream as it may be shown: the whitelist again, so rows written
/// before the whitelist existed cannot leak a secret either.
pub(super) fn shown_auth(auth_type: &str, stored: &Value) -> Value {
    match auth_type {
        "AccessKeySecretKey" => secret_refs(stored, &ACCESS_KEY_REFS),
        _ => secret_refs(stored, &USER_PASSWORD_REFS),
    }
}

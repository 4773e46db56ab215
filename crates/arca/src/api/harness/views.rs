//! Harness response documents: the `{"status": "SUCCESS", "data": ...}` envelope, list pages, and
//! the JSON views of registries, artifacts, versions and files.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::model::{Registry, RegistryKind, human_size};
use crate::state::AppState;
use crate::store::artifacts::{FileRow, PackageRow, VersionRow};
use crate::store::registries::RegistryStats;

pub(super) fn success(data: Value) -> Response {
    Json(json!({"status": "SUCCESS", "data": data})).into_response()
}

/// The envelope without data (deletes).
pub(super) fn done() -> Response {
    Json(json!({"status": "SUCCESS"})).into_response()
}

pub(super) fn list_json(total: i64, index: i64, size: i64, key: &str, items: Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("itemCount".into(), json!(total));
    m.insert("pageCount".into(), json!((total + size - 1) / size));
    m.insert("pageIndex".into(), json!(index));
    m.insert("pageSize".into(), json!(size));
    m.insert(key.into(), items);
    Value::Object(m)
}

/// The URL clients use for a registry: OCI image prefix for DOCKER/HELM, the package root otherwise,
/// the remote for proxies.
pub(super) fn registry_url(state: &AppState, reg: &Registry) -> String {
    if let (RegistryKind::Proxy, Some(p)) = (reg.kind, &reg.proxy) {
        return p.url.clone();
    }
    native_url(state, reg)
}

pub(super) fn native_url(state: &AppState, reg: &Registry) -> String {
    crate::api::common::native_url(state, reg)
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

pub(super) async fn registry_json(state: &AppState, reg: &Registry) -> ApiResult<Value> {
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
            let auth = p
                .harness_auth
                .as_ref()
                .map(|a| super::requests::shown_auth(&auth_type, a));
            json!({"type": "UPSTREAM", "source": p.source.clone().unwrap_or_else(|| "Custom".into()), "url": p.url,
                   "authType": auth_type, "auth": auth,
                   // Extensions: the proxy settings Harness has no field for.
                   "metadataCacheTTL": p.metadata_interval_secs, "isOffline": p.offline,
                   "expireHours": p.expire_hours, "isCaching": p.caching,
                   "dockerLibraryPrefix": p.uses_library_prefix(),
                   "negativeCacheTTL": p.negative_ttl_secs.unwrap_or(state.config.proxy_negative_ttl_secs as i64),
                   "upstreamPublicKey": p.upstream_key, "distributions": p.distributions})
        }
        _ => json!({"type": "VIRTUAL", "upstreamProxies": member_identifiers(state, reg).await?,
                    "dependencyConfusionAllowList": reg.dc_allow_list}),
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
        "allowPublicGroups": reg.allow_public_groups,
    }))
}

/// A registry as the registry list shows it, with the statistics the list query selected.
pub(super) fn registry_item(state: &AppState, r: &Registry, stats: &RegistryStats) -> Value {
    json!({
        "identifier": r.identifier,
        "packageType": r.package_type.harness(),
        "type": r.kind.harness(),
        "kind": r.kind.as_str(),
        "url": registry_url(state, r),
        "isPublic": r.anonymous,
        "uuid": r.id,
        "description": r.description.clone().unwrap_or_default(),
        "registrySize": human_size(stats.bytes),
        "downloadsCount": stats.downloads,
        "artifactsCount": stats.artifacts,
        "labels": r.labels,
        "lastModified": r.updated_at.to_string(),
        "path": r.path(),
    })
}

pub(super) fn pull_command(state: &AppState, reg: &Registry, name: &str, version: &str) -> String {
    let ctx =
        crate::formats::setup::SetupContext::new(&state.config.base_url, reg, None, None, None);
    crate::formats::for_type(reg.package_type).pull_command(&ctx, name, version)
}

pub(super) fn registry_artifact_json(state: &AppState, reg: &Registry, p: &PackageRow) -> Value {
    json!({
        "name": p.name,
        "registryIdentifier": reg.identifier,
        "registryUrl": native_url(state, reg),
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

/// An artifact in a space-wide list: its latest version and how to pull it.
pub(super) fn space_artifact_json(state: &AppState, reg: &Registry, p: &PackageRow) -> Value {
    let version = p.latest_version.clone().unwrap_or_default();
    json!({
        "name": p.name,
        "version": version,
        "registryIdentifier": reg.identifier,
        "registryUrl": native_url(state, reg),
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
    })
}

pub(super) fn artifact_summary(reg: &Registry, p: &PackageRow) -> Value {
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

pub(super) fn version_json(
    state: &AppState,
    reg: &Registry,
    p: &PackageRow,
    v: &VersionRow,
) -> Value {
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

pub(super) fn version_summary_json(reg: &Registry, p: &PackageRow, v: &VersionRow) -> Value {
    json!({
        "imageName": p.name, "version": v.version, "isQuarantined": false, "quarantineReason": "",
        "packageType": reg.package_type.harness(), "uuid": v.id, "registryUUID": reg.id, "deletedAt": Value::Null,
    })
}

pub(super) fn version_details_json(
    state: &AppState,
    reg: &Registry,
    p: &PackageRow,
    v: &VersionRow,
) -> Value {
    json!({
        "name": p.name, "version": v.version, "size": human_size(v.size), "downloadCount": v.download_count,
        "createdAt": v.created_at.to_string(), "modifiedAt": v.updated_at.to_string(),
        "isQuarantined": false, "quarantineReason": "", "packageType": reg.package_type.harness(),
        "pullCommand": pull_command(state, reg, &p.name, &v.version),
        "metadata": v.metadata,
    })
}

pub(super) fn file_json(state: &AppState, reg: &Registry, f: &FileRow) -> Value {
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

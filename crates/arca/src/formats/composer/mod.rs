//! Composer (COMPOSER registries): a Composer 2 repository of uploaded package zips.
//!
//! Layout under `<base>/pkg/<account>/<registry>/composer/`:
//! * `packages.json`: `metadata-url`, `available-packages`, `notify-batch` and `search`;
//! * `p2/<vendor>/<package>.json` (tagged versions) and `p2/<vendor>/<package>~dev.json` (dev
//!   versions), generated from the metadata store and cached per package revision;
//! * `PUT <file>.zip`: upload a package archive (raw body). Name and version come from the
//!   `composer.json` in the archive (at its root or in its single top-level directory); `?version=`
//!   supplies or overrides the version, as for archives built from a VCS tag;
//! * `dists/<vendor>/<package>/<version>/<vendor>-<package>-<version>.zip`: the archives, whose
//!   SHA-1 is the `shasum` in the metadata;
//! * `POST downloads`: Composer's `notify-batch` (downloads are counted when archives are served);
//! * `search.json?q=`: `composer search`.
//!
//! Packages are keyed by their lowercase name, versions by the version string as uploaded;
//! two spellings of one version (`1.0` and `1.0.0`) normalise alike and are the same version.

mod proxy;

use crate::formats::setup::{Setup, SetupContext, inline, step};
use async_trait::async_trait;
use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::upload::{Body, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver, native_root};
use crate::doc_cache::{self as cache, Doc};
use crate::download::serve_file;
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Reupload, rfc3339};
use crate::proxy::documents::CacheState;
use crate::state::AppState;
use crate::store::artifacts::Page;

pub struct Composer;

const MAX_COMPOSER_JSON: u64 = 1 << 20;

#[async_trait]
impl Format for Composer {
    fn package_type(&self) -> PackageType {
        PackageType::Composer
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            id,
            root,
            user,
            art,
            ver,
            ..
        } = c;
        Setup {
            title: "Composer Client Setup",
            sections: vec![
                inline(
                    "Configure composer",
                    vec![step(
                        "Repository and credentials (in the project's directory)",
                        &[
                            // `composer config` needs a composer.json.
                            (
                                "",
                                "[ -f composer.json ] || echo '{}' > composer.json".to_string(),
                            ),
                            (
                                "",
                                format!("composer config repositories.{id} composer {root}"),
                            ),
                            (
                                "",
                                // Composer refuses plain-http repositories unless told otherwise.
                                format!("composer config secure-http {}", !c.plain_http()),
                            ),
                            (
                                "",
                                // Composer keys credentials by host *and* port.
                                format!(
                                    "composer config http-basic.{} {user} <TOKEN>",
                                    c.authority()
                                ),
                            ),
                        ],
                    )],
                ),
                inline(
                    "Upload",
                    vec![step(
                        "Upload a zip",
                        &[(
                            "",
                            format!(
                                "curl --fail-with-body -u {user}:<TOKEN> -T <FILE>.zip {root}/<FILE>.zip"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Require",
                        &[("", format!("composer require {art}:{ver}"))],
                    )],
                ),
            ],
        }
    }

    fn pull_command(&self, _c: &SetupContext, name: &str, version: &str) -> String {
        format!("composer require {name}:{version}")
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let get = req.method == Method::GET || req.method == Method::HEAD;
        match (&req.method, segs.as_slice()) {
            (_, ["packages.json"]) if get => packages_json(state, &req).await,
            (_, ["p2", vendor, file]) if get => {
                let stem = file
                    .strip_suffix(".json")
                    .ok_or_else(|| ApiError::not_found("no such Composer endpoint"))?;
                let (name, dev) = match stem.strip_suffix("~dev") {
                    Some(n) => (n, true),
                    None => (stem, false),
                };
                metadata(state, &req, &format!("{vendor}/{name}"), dev).await
            }
            (_, ["dists", vendor, name, version, file]) if get => {
                let path = format!("dists/{vendor}/{name}/{version}/{file}").to_ascii_lowercase();
                let pkg = format!("{vendor}/{name}").to_ascii_lowercase();
                let resolver = Resolver { state };
                // A name a hosted member owns is never downloaded from a proxy member.
                resolver.guard(&req.registry, &pkg).await?;
                let found = resolver
                    .find_file(&req.registry, &path)
                    .await?
                    .map(|(_, f)| f);
                let f = match found {
                    Some(f) => Some(f),
                    None => proxy::fetch(state, &req.registry, &pkg, &path).await?,
                }
                .ok_or_else(|| ApiError::not_found(format!("no archive at {path}")))?;
                serve_file(state, &f, &req.method, &req.headers).await
            }
            (_, ["search.json"]) if get => search(state, &req).await,
            (&Method::POST, ["downloads"]) => notify_batch(req).await,
            (&Method::PUT, [file]) => upload(state, req, file).await,
            (&Method::PUT, _) => Err(ApiError::bad(
                "file",
                "upload a package archive as PUT <repository>/<file name>.zip",
            )),
            _ => Err(ApiError::not_found("no such Composer endpoint")),
        }
    }
}

/// Composer package names: `vendor/package`, lowercase, with single separators.
pub(crate) fn valid_name(name: &str) -> bool {
    fn part(p: &str, dashes: bool) -> bool {
        let b = p.as_bytes();
        if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric()
        {
            return false;
        }
        let mut prev_sep = false;
        let mut run = 0;
        for &c in b {
            let sep = matches!(c, b'_' | b'.' | b'-');
            if !(c.is_ascii_lowercase() || c.is_ascii_digit() || sep) {
                return false;
            }
            if sep {
                run += 1;
                // Two dashes are allowed in the package part ("--"), nothing else doubles.
                if prev_sep && !(dashes && c == b'-' && run == 2) {
                    return false;
                }
            } else {
                run = 0;
            }
            prev_sep = sep;
        }
        true
    }
    match name.split_once('/') {
        Some((v, p)) => part(v, false) && part(p, true),
        None => false,
    }
}

/// Composer's `VersionParser::normalize` for the versions a package archive can carry:
/// `1.0` → `1.0.0.0`, `v2.1.3-beta.2` → `2.1.3.0-beta2`, `1.x-dev` →
/// `1.9999999.9999999.9999999-dev`, `dev-main` stays. Written by hand: there is no Rust
/// implementation of Composer's version rules.
pub(crate) fn normalize_version(raw: &str) -> Option<String> {
    let v = raw.trim();
    if v.is_empty() || v.len() > 255 {
        return None;
    }
    if let Some(branch) = v.strip_prefix("dev-") {
        return (!branch.is_empty()
            && branch
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-/".contains(&c)))
        .then(|| format!("dev-{branch}"));
    }
    let lower = v.to_ascii_lowercase();
    // Branch aliases such as 1.x-dev / 1.2.x-dev.
    if let Some(stem) = lower
        .strip_suffix(".x-dev")
        .or_else(|| lower.strip_suffix(".*-dev"))
    {
        let stem = stem.strip_prefix('v').unwrap_or(stem);
        let nums: Vec<&str> = stem.split('.').collect();
        if nums.is_empty()
            || nums.len() > 3
            || !nums
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        {
            return None;
        }
        let mut parts: Vec<String> = nums.iter().map(|n| n.to_string()).collect();
        while parts.len() < 4 {
            parts.push("9999999".into());
        }
        return Some(format!("{}-dev", parts.join(".")));
    }
    let s = lower.strip_prefix('v').unwrap_or(&lower);
    // Numeric part: up to four dot-separated numbers.
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (numeric, rest) = s.split_at(end);
    let numeric = numeric.trim_end_matches('.');
    let nums: Vec<&str> = numeric.split('.').collect();
    if numeric.is_empty() || nums.len() > 4 || nums.iter().any(|n| n.is_empty()) {
        return None;
    }
    let mut parts: Vec<String> = nums.iter().map(|n| n.to_string()).collect();
    while parts.len() < 4 {
        parts.push("0".into());
    }
    let mut out = parts.join(".");
    let mut rest = rest.trim_start_matches(['-', '_', '.']);
    let mut dev = false;
    if let Some(r) = rest.strip_suffix("dev") {
        dev = true;
        rest = r.trim_end_matches(['-', '.']);
    }
    if !rest.is_empty() {
        let (label, tail) = [
            ("stable", "stable"),
            ("alpha", "alpha"),
            ("beta", "beta"),
            ("patch", "patch"),
            ("rc", "RC"),
            ("pl", "patch"),
            ("a", "alpha"),
            ("b", "beta"),
            ("p", "patch"),
        ]
        .iter()
        .find_map(|(prefix, norm)| rest.strip_prefix(prefix).map(|t| (*norm, t)))?;
        let tail = tail.trim_start_matches(['.', '-']);
        if !tail
            .bytes()
            .all(|c| c.is_ascii_digit() || c == b'.' || c == b'-')
        {
            return None;
        }
        if label != "stable" {
            out.push('-');
            out.push_str(label);
            out.push_str(tail);
        }
    }
    if dev {
        out.push_str("-dev");
    }
    Some(out)
}

fn is_dev(normalized: &str) -> bool {
    normalized.starts_with("dev-") || normalized.ends_with("-dev")
}

// ---------------------------------------------------------------------------------------------
// Upload.

/// Finds `composer.json` at the archive's root or in its single top-level directory.
pub(crate) fn read_composer_json(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let pick = |names: Vec<&str>| {
        names
            .into_iter()
            .filter(|n| {
                let parts: Vec<&str> = n.split('/').collect();
                parts.last() == Some(&"composer.json") && parts.len() <= 2
            })
            .min_by_key(|n| n.len())
            .map(str::to_string)
            .ok_or_else(|| "the archive has no composer.json at its root".to_string())
    };
    crate::archive::zip_entry(path, pick, MAX_COMPOSER_JSON)
}

async fn upload(state: &AppState, req: NativeRequest, file: &str) -> ApiResult<Response> {
    let up = Upload::begin(state, &req, Body::Streamed).await?;
    let target = &up.target;
    if !file.ends_with(".zip")
        || file.contains(['/', '\\'])
        || file.starts_with('.')
        || file.chars().any(char::is_control)
    {
        return Err(ApiError::bad(
            "file",
            format!("'{file}' is not a valid archive name (expected <name>.zip)"),
        ));
    }
    let q = crate::http::query_pairs(req.query.as_deref());
    let query_version = crate::http::query_get(&q, "version")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let staged = up.stage(req.into_body_stream()).await?;
    let raw = up.inspect(&staged, "file", read_composer_json).await?;
    let mut manifest: Map<String, Value> = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad("file", format!("composer.json is not valid JSON: {e}")))?;
    let name = manifest
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("file", "composer.json has no name"))?
        .to_string();
    if !valid_name(&name) {
        return Err(ApiError::bad(
            "file",
            format!("'{name}' is not a valid package name (vendor/package, lowercase)"),
        ));
    }
    let version = query_version
        .or_else(|| {
            manifest
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or_else(|| {
            ApiError::bad(
                "version",
                "composer.json has no version: pass one as ?version=",
            )
        })?;
    let normalized = normalize_version(&version).ok_or_else(|| {
        ApiError::bad(
            "version",
            format!("'{version}' is not a valid Composer version"),
        )
    })?;
    if (version.contains(['/', '\\']) && !version.starts_with("dev-")) || version.contains("..") {
        return Err(ApiError::bad(
            "version",
            format!("'{version}' is not a valid Composer version"),
        ));
    }
    let key = name.clone();
    // One version, however it is spelled.
    if let Some(pkg) = state.db.package_by_name(&target.id, &key).await? {
        for v in state.db.all_versions(&pkg.id).await? {
            let same = v.metadata.get("version_normalized").and_then(Value::as_str)
                == Some(normalized.as_str());
            if same && (v.version != version || target.reupload == Reupload::None) {
                return Err(ApiError::conflict(format!(
                    "{name} {} already exists (as {}) and this registry does not allow re-uploads",
                    version, v.version
                )));
            }
        }
    }
    let (vendor, short) = name.split_once('/').unwrap_or((&name, ""));
    let safe_version = version.replace('/', "-");
    let dist_name = format!("{vendor}-{short}-{safe_version}.zip");
    let dist_path = format!("dists/{name}/{safe_version}/{dist_name}").to_ascii_lowercase();
    let exists = || {
        ApiError::conflict(format!(
            "{name} {version} already exists and this registry does not allow re-uploads"
        ))
    };
    up.check_new(&format!("{name}:{version}"), &dist_path, exists)
        .await?;
    let sha1 = staged.info.sha1.clone();
    let stored = up
        .record(
            staged,
            FileSpec {
                package: &key,
                version: &version,
                path: &dist_path,
                name: &dist_name,
                content_type: Some("application/zip"),
                metadata: json!({}),
            },
            exists,
        )
        .await?;
    manifest.remove("version");
    manifest.remove("version_normalized");
    state
        .db
        .set_version_metadata(
            &stored.version_id,
            &json!({"composer": manifest, "version_normalized": normalized, "dist": dist_path, "sha1": sha1}),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": name, "version": version, "version_normalized": normalized})),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Reading.

async fn packages_json(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let root = native_root(state, &req.registry);
    let chain: Vec<String> = (Resolver { state })
        .read_chain(&req.registry)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut names = state.db.package_names(&chain).await?;
    let mut index = json!({
        "packages": [],
        "metadata-url": format!("{root}/p2/%package%.json"),
        "notify-batch": format!("{root}/downloads"),
        "search": format!("{root}/search.json?q=%query%&type=%type%"),
    });
    // With proxies, the list is complete only if every upstream gives one; otherwise there is
    // none and composer asks for each name it needs.
    if let Some(upstream) = proxy::available(state, &req.registry).await? {
        names.extend(upstream);
        names.sort();
        names.dedup();
        index["available-packages"] = json!(names);
    }
    let doc = Doc::new(index.to_string(), "application/json");
    Ok(doc.respond(&req.headers, req.method == Method::HEAD))
}

async fn metadata(
    state: &AppState,
    req: &NativeRequest,
    name: &str,
    dev: bool,
) -> ApiResult<Response> {
    let key = name.to_ascii_lowercase();
    let all = (Resolver { state }).packages(&req.registry, &key).await?;
    let upstream = proxy::p2_files(state, &req.registry, &key, dev, false).await?;
    if all.is_empty() && upstream.is_empty() {
        return Err(ApiError::not_found(format!("package '{name}' not found")));
    }
    let answered: Vec<_> = upstream
        .iter()
        .map(|(r, d, _)| (r.clone(), d.clone()))
        .collect();
    let stale = answered.iter().any(|(_, d)| d.state == CacheState::Stale);
    let upstream_key: String = answered.iter().map(|(_, d)| d.sha256.as_str()).collect();
    // What a proxy cached is listed as its upstream lists it now; only where the upstream is
    // unavailable do the cached versions stand for it.
    let chain = crate::proxy::documents::without_answered_caches(&all, &answered);
    let pkgs: Vec<_> = all.iter().map(|(_, p)| p.clone()).collect();
    let root = native_root(state, &req.registry);
    let doc = state
        .docs
        .get_or_build(
            format!("composer|{}|{key}|{dev}|{upstream_key}", req.registry.id),
            cache::stamp(&pkgs),
            || async {
                let mut seen = std::collections::HashSet::new();
                let mut versions = Vec::new();
                for (_, pkg) in &chain {
                    for v in state.db.all_versions(&pkg.id).await? {
                        let norm = v
                            .metadata
                            .get("version_normalized")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        if norm.is_empty() || is_dev(&norm) != dev || !seen.insert(norm.clone()) {
                            continue;
                        }
                        let mut entry = v
                            .metadata
                            .get("composer")
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default();
                        let sha1 = v.metadata.get("sha1").cloned().unwrap_or(Value::Null);
                        let dist = v.metadata.get("dist").and_then(Value::as_str).unwrap_or("");
                        entry.insert("name".into(), json!(key));
                        entry.insert("version".into(), json!(v.version));
                        entry.insert("version_normalized".into(), json!(norm));
                        // A cached upstream version keeps the upstream's dist (its reference).
                        let cached = v.metadata.get("upstreamDist");
                        let dist_doc = match cached {
                            Some(Value::Object(d)) => {
                                let mut d = d.clone();
                                d.insert("url".into(), json!(format!("{root}/{dist}")));
                                Value::Object(d)
                            }
                            _ => json!({"type": "zip", "url": format!("{root}/{dist}"), "shasum": sha1, "reference": sha1}),
                        };
                        entry.insert("dist".into(), dist_doc);
                        if cached.is_none() || !entry.contains_key("time") {
                            entry.insert("time".into(), json!(rfc3339(v.created_at)));
                        }
                        versions.push(Value::Object(entry));
                    }
                }
                for (_, _, listed) in &upstream {
                    for e in listed.iter() {
                        let Some(norm) = e["version_normalized"].as_str() else {
                            continue;
                        };
                        if !seen.insert(norm.to_string()) {
                            continue;
                        }
                        if let Some(served) = proxy::served(&root, &key, e.clone()) {
                            versions.push(served);
                        }
                    }
                }
                Ok::<_, ApiError>(Doc::new(
                    json!({"packages": {key.clone(): versions}}).to_string(),
                    "application/json",
                ))
            },
        )
        .await?;
    let mut resp = doc.respond(&req.headers, req.method == Method::HEAD);
    if stale {
        resp.headers_mut().insert(
            "x-arca-cache",
            axum::http::HeaderValue::from_static(CacheState::Stale.header_value()),
        );
    }
    Ok(resp)
}

/// Accepts Composer's install notifications. Downloads are already counted when archives are
/// served, so the notification only has to be well-formed.
async fn notify_batch(req: NativeRequest) -> ApiResult<Response> {
    let body = req.take_body();
    let body = crate::http::read_body(body, 1 << 20).await?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad("downloads", format!("malformed notification: {e}")))?;
    if !v.get("downloads").is_some_and(Value::is_array) {
        return Err(ApiError::bad(
            "downloads",
            "expected {\"downloads\": [...]}",
        ));
    }
    Ok(Json(json!({"status": "success"})).into_response())
}

async fn search(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let q = crate::http::query_pairs(req.query.as_deref());
    let text = crate::http::query_get(&q, "q")
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ids: Vec<String> = (Resolver { state })
        .read_chain(&req.registry)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let page = Page {
        offset: 0,
        limit: 100,
        sort: crate::store::paging::SortField::Name,
        descending: false,
        search: Some(text),
    };
    let (total, pkgs) = state.db.list_packages(&ids, &[], &page).await?;
    let root = native_root(state, &req.registry);
    let mut results = Vec::new();
    for p in pkgs {
        let latest = p.latest_version.clone().unwrap_or_default();
        let description = match state.db.version_by_name(&p.id, &latest).await? {
            Some(v) => v
                .metadata
                .pointer("/composer/description")
                .cloned()
                .unwrap_or(json!("")),
            None => json!(""),
        };
        results.push(json!({"name": p.name, "description": description, "url": format!("{root}/p2/{}.json", p.name), "downloads": p.download_count}));
    }
    Ok(Json(json!({"results": results, "total": total})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_versions_like_composer() {
        for (raw, want) in [
            ("1.0", "1.0.0.0"),
            ("v2.1.3", "2.1.3.0"),
            ("1.0.0-beta.2", "1.0.0.0-beta2"),
            ("1.0.0-RC1", "1.0.0.0-RC1"),
            ("1.0.0-alpha", "1.0.0.0-alpha"),
            ("1.2.3.4", "1.2.3.4"),
            ("1.0.0-p1", "1.0.0.0-patch1"),
            ("1.x-dev", "1.9999999.9999999.9999999-dev"),
            ("1.2.x-dev", "1.2.9999999.9999999-dev"),
            ("dev-main", "dev-main"),
            ("1.0-dev", "1.0.0.0-dev"),
        ] {
            assert_eq!(normalize_version(raw).as_deref(), Some(want), "{raw}");
        }
        for bad in ["", "abc", "1.0.0.0.0", "1..0", "1.0-gamma", "dev-"] {
            assert_eq!(normalize_version(bad), None, "{bad}");
        }
        assert!(is_dev("dev-main") && is_dev("1.0.0.0-dev") && !is_dev("1.0.0.0"));
    }

    #[test]
    fn package_names() {
        for ok in [
            "acme/hello",
            "acme-co/hello_world",
            "a1/b.c",
            "acme/foo--bar",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "Acme/hello",
            "acme",
            "acme/",
            "/x",
            "acme/-x",
            "ac--me/x",
            "a/b/c",
            "a/b..c",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}

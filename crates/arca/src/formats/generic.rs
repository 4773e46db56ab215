//! Generic files: `<root>/<package>/<version>/<file path>`.
//!
//! * `PUT` a raw body to upload (re-upload per the registry's NONE/OVERRIDE setting),
//! * `GET`/`HEAD` to download (Range, ETag),
//! * `DELETE` a file, or a version / package (moved to the account's trash can),
//! * `GET` of `<root>/`, `<package>/` or `<package>/<version>/` lists packages, versions or files.
//!
//! Through a proxy, a file is fetched from the same path below the upstream's URL and kept.

use crate::formats::setup::{Setup, SetupContext, inline, step};
use async_trait::async_trait;
use axum::Json;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::upload::{Body, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver};
use crate::auth::Need;
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry};
use crate::proxy::files::Wanted;
use crate::state::AppState;
use crate::store::artifacts::Page;

pub struct Generic;

/// Decodes and checks one path segment: no traversal, no separators, no control or invisible
/// characters.
fn segment(field: &str, raw: &str) -> ApiResult<String> {
    let s = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad(field, format!("{field} is not valid UTF-8")))?
        .into_owned();
    // Controls and invisible characters first, so that the message names the character
    // instead of echoing it; refused from the URL, before the body is read.
    crate::model::check_visible(field, &s)?;
    if s.is_empty() || s == "." || s == ".." || s.len() > 255 || s.contains(['/', '\\']) {
        return Err(ApiError::bad(field, format!("invalid {field} '{s}'")));
    }
    Ok(s)
}

fn name_like(field: &str, s: &str) -> ApiResult<()> {
    let ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+~".contains(c));
    if !ok {
        return Err(ApiError::bad(
            field,
            format!(
                "invalid {field} '{s}': letters, digits and . _ - + ~, starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

const MAX_PAGE: i64 = 1000;

fn page() -> Page {
    Page {
        offset: 0,
        limit: MAX_PAGE,
        sort: crate::store::paging::SortField::Created,
        descending: false,
        search: None,
    }
}

#[async_trait]
impl Format for Generic {
    fn package_type(&self) -> PackageType {
        PackageType::Generic
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            root,
            user,
            art,
            ver,
            ..
        } = c;
        Setup {
            title: "Generic Client Setup",
            sections: vec![
                inline(
                    "Upload a file",
                    vec![step(
                        "Upload with curl",
                        &[(
                            "",
                            format!(
                                "curl --fail-with-body -u {user}:<TOKEN> -T <FILE> {root}/{art}/{ver}/<FILE>"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Download a file",
                    vec![step(
                        "Download with curl",
                        &[(
                            "",
                            format!("curl -f -u {user}:<TOKEN> -O {root}/{art}/{ver}/<FILE>"),
                        )],
                    )],
                ),
            ],
        }
    }

    fn pull_command(&self, c: &SetupContext, name: &str, version: &str) -> String {
        let url = &c.root;
        format!("curl -u <USERNAME>:<TOKEN> -O {url}/{name}/{version}/<FILENAME>")
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        let raw: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let resolver = Resolver { state };
        match raw.len() {
            0 => {
                if req.method != Method::GET {
                    return Err(ApiError::MethodNotAllowed("only GET lists packages".into()));
                }
                let ids: Vec<String> = resolver
                    .read_chain(&req.registry)
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                let (_, pkgs) = state.db.list_packages(&ids, &[], &page()).await?;
                // Merged: a package once, its latest version the newest among the members'
                // (generic versions have no order: the one uploaded last, as in one registry).
                let mut merged: Vec<(String, Option<String>, i64)> = Vec::new();
                for p in pkgs {
                    match merged.iter_mut().find(|(n, _, _)| *n == p.name) {
                        Some((_, latest, at)) => {
                            if p.latest_version.is_some()
                                && (latest.is_none() || p.updated_at > *at)
                            {
                                *latest = p.latest_version;
                                *at = p.updated_at;
                            }
                        }
                        None => merged.push((p.name, p.latest_version, p.updated_at)),
                    }
                }
                let names: Vec<_> = merged
                    .iter()
                    .map(|(n, l, _)| json!({"name": n, "latestVersion": l}))
                    .collect();
                Ok(Json(json!({ "packages": names })).into_response())
            }
            1 | 2 => {
                let package = segment("package", raw[0])?;
                let version = raw.get(1).map(|v| segment("version", v)).transpose()?;
                match req.method {
                    Method::GET => list(state, &req, &package, version.as_deref()).await,
                    Method::DELETE => {
                        delete_versions(state, &req, &package, version.as_deref()).await
                    }
                    _ => Err(ApiError::MethodNotAllowed(
                        "use GET to list or DELETE to remove".into(),
                    )),
                }
            }
            _ => {
                let package = segment("package", raw[0])?;
                let version = segment("version", raw[1])?;
                name_like("package", &package)?;
                name_like("version", &version)?;
                let mut file_segs = Vec::new();
                for s in &raw[2..] {
                    file_segs.push(segment("file name", s)?);
                }
                let file_path = file_segs.join("/");
                let path = format!("{package}/{version}/{file_path}");
                match req.method {
                    Method::GET | Method::HEAD => {
                        resolver.guard(&req.registry, &package).await?;
                        let got = match resolver.find_file(&req.registry, &path).await? {
                            Some((_, f)) => crate::proxy::files::Got::Stored(f),
                            None => fetch_upstream(state, &req.registry, &package, &version, &path)
                                .await?
                                .ok_or_else(|| {
                                    ApiError::not_found(format!("file '{path}' not found"))
                                })?,
                        };
                        got.respond(state, &req.method, &req.headers).await
                    }
                    Method::PUT => upload(state, req, &package, &version, &file_path, &path).await,
                    Method::DELETE => {
                        let target = resolver.write_target(&req.registry).await?;
                        req.principal.check(&target, Need::Delete)?;
                        let file =
                            state
                                .db
                                .file_by_path(&target.id, &path)
                                .await?
                                .ok_or_else(|| {
                                    ApiError::not_found(format!("file '{path}' not found"))
                                })?;
                        state.db.delete_file(&file).await?;
                        Ok(StatusCode::NO_CONTENT.into_response())
                    }
                    _ => Err(ApiError::MethodNotAllowed(
                        "use GET, HEAD, PUT or DELETE".into(),
                    )),
                }
            }
        }
    }
}

/// A file missing from every stored registry of the chain, fetched from the first proxy's
/// upstream that has it at the same path (generic files publish no digest: the length is
/// checked, and an empty body is refused).
async fn fetch_upstream(
    state: &AppState,
    reg: &Registry,
    package: &str,
    version: &str,
    path: &str,
) -> ApiResult<Option<crate::proxy::files::Got>> {
    for proxy in (Resolver { state }).proxies(reg).await? {
        let Some(settings) = &proxy.proxy else {
            continue;
        };
        let wanted = Wanted {
            url: crate::proxy::join(&settings.url, &encode_path(path)),
            sha256: None,
            sha512: None,
            sha1: None,
            package: package.to_string(),
            version: version.to_string(),
            path: path.to_string(),
            name: path.rsplit('/').next().unwrap_or(path).to_string(),
            content_type: None,
            metadata: json!({}),
        };
        if let Some(f) = crate::proxy::files::open(state, &proxy, wanted).await? {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// What a URL path segment keeps unencoded: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A stored path as URL path segments (each percent-encoded).
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

async fn upload(
    state: &AppState,
    req: NativeRequest,
    package: &str,
    version: &str,
    file_path: &str,
    path: &str,
) -> ApiResult<Response> {
    let up = Upload::begin(state, &req, Body::Streamed).await?;
    let target = &up.target;
    let exists = || {
        ApiError::conflict(format!(
            "'{path}' already exists in registry '{}' and re-upload is not allowed (packageReuploadType NONE)",
            target.identifier
        ))
    };
    // Refused before streaming a body that cannot be stored; the insert re-checks atomically.
    if let Err(e) = up
        .check_new(&format!("{package}:{version}"), path, exists)
        .await
    {
        // Read (a bounded part of) the refused body, so that the client gets the answer on a
        // connection it can keep using rather than one closed under it mid-request.
        crate::blob::drain(req.into_body_stream()).await;
        return Err(e);
    }
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|t| {
            !t.starts_with("application/x-www-form-urlencoded") && !t.starts_with("multipart/")
        })
        .map(str::to_string);
    let name = file_path
        .rsplit('/')
        .next()
        .unwrap_or(file_path)
        .to_string();
    let staged = up.stage(req.into_body_stream()).await?;
    let file = up
        .record(
            staged,
            FileSpec {
                package,
                version,
                path,
                name: &name,
                content_type: content_type.as_deref(),
                metadata: json!({}),
            },
            exists,
        )
        .await?;
    let body = json!({
        "registry": target.identifier,
        "package": package,
        "version": version,
        "path": file_path,
        "size": file.size,
        "sha256": file.sha256,
        "sha1": file.sha1,
        "md5": file.md5,
        "sha512": file.sha512,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A package's versions, or a version's files, merged across the members of the read chain:
/// versions unioned (the first member that has a version wins it), a version's files unioned by
/// path (the first member wins a path), as downloads resolve them.
async fn list(
    state: &AppState,
    req: &NativeRequest,
    package: &str,
    version: Option<&str>,
) -> ApiResult<Response> {
    let chain = (Resolver { state })
        .packages(&req.registry, package)
        .await?;
    if chain.is_empty() {
        return Err(ApiError::not_found(format!(
            "package '{package}' not found"
        )));
    }
    match version {
        None => {
            let mut seen = std::collections::HashSet::new();
            let mut v = Vec::new();
            for (_, pkg) in &chain {
                let (_, versions) = state.db.list_versions(&pkg.id, &page()).await?;
                for ver in versions {
                    if seen.insert(ver.version.clone()) {
                        v.push(json!({"version": ver.version, "size": ver.size, "fileCount": ver.file_count}));
                    }
                }
            }
            Ok(Json(json!({"package": package, "versions": v})).into_response())
        }
        Some(version) => {
            let prefix = format!("{package}/{version}/");
            let mut seen = std::collections::HashSet::new();
            let mut f = Vec::new();
            let mut found = false;
            for (_, pkg) in &chain {
                let Some(ver) = state.db.version_by_name(&pkg.id, version).await? else {
                    continue;
                };
                found = true;
                let (_, files) = state.db.list_files(&ver.id, &page()).await?;
                for file in files {
                    let path = file
                        .path
                        .strip_prefix(&prefix)
                        .unwrap_or(&file.path)
                        .to_string();
                    if seen.insert(path.clone()) {
                        f.push(json!({"path": path, "size": file.size, "sha256": file.sha256}));
                    }
                }
            }
            if !found {
                return Err(ApiError::not_found(format!(
                    "version '{package}/{version}' not found"
                )));
            }
            Ok(Json(json!({"package": package, "version": version, "files": f})).into_response())
        }
    }
}

/// Moves one version, or every version of a package, to the account's trash can.
async fn delete_versions(
    state: &AppState,
    req: &NativeRequest,
    package: &str,
    version: Option<&str>,
) -> ApiResult<Response> {
    let target = Resolver { state }.write_target(&req.registry).await?;
    req.principal.check(&target, Need::Delete)?;
    crate::service::trash_versions(state, &target, package, version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

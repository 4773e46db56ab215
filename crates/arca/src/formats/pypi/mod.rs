//! PyPI (PYTHON registries): the legacy upload API used by twine and uv, and the simple repository
//! API in HTML (PEP 503) and JSON (PEP 691), with PEP 592 yanking, PEP 658/714 core metadata and
//! PEP 700 fields.
//!
//! Layout under `<base>/pkg/<account>/<registry>/python/`:
//! * `POST /` (or `/legacy/`): upload, multipart/form-data with `:action=file_upload`;
//! * `GET simple/` and `simple/<project>/`: the index, negotiated by `Accept`;
//! * `GET files/<project>/<version>/<file>` and `<file>.metadata`: downloads;
//! * `PUT|DELETE yank/<project>/<version>`: yank (optional reason as the body) and un-yank.
//!
//! Project pages are generated from one indexed query per registry of the read chain (a package's
//! files joined through its versions), never from a scan of the registry.

use crate::formats::setup::{Setup, SetupContext, inline, step};
use std::collections::BTreeMap;
use std::io::Read;
use std::str::FromStr;

use async_trait::async_trait;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use futures::TryStreamExt;
use serde_json::{Value, json};

use super::upload::{Body as UploadBody, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver, native_root};
use crate::auth::Need;
use crate::blob::{ByteStream, StagedBlob};
use crate::doc_cache::{self as cache, Doc};
use crate::download::serve_blob;
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry, Reupload, rfc3339};
use crate::state::AppState;
use crate::store::artifacts::{FileRow, PackageRow};

mod proxy;

use crate::proxy::documents::CacheState;

pub struct Pypi;

const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";
const HTML_TYPE: &str = "application/vnd.pypi.simple.v1+html";
/// Largest METADATA/PKG-INFO read from an archive (decompression bombs stop here).
const MAX_METADATA: u64 = 8 << 20;
/// Largest text form field of an upload.
const MAX_FIELD: usize = 4 << 20;

/// PEP 503 normalisation: lowercase, runs of `-`, `_` and `.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

pub(crate) fn valid_name(name: &str) -> bool {
    // PEP 508 names: ASCII letters and digits, with . _ - inside.
    let b = name.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Picks JSON or HTML from an `Accept` header by q-value (PEP 691); HTML when nothing matches.
fn wants_json(headers: &HeaderMap) -> Result<bool, ()> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(false);
    };
    let mut best: Option<(f32, bool)> = None;
    for part in accept.split(',') {
        let mut it = part.split(';');
        let mime = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|v| v.trim().parse::<f32>().ok())
            })
            .next()
            .unwrap_or(1.0);
        let json = match mime.as_str() {
            JSON_TYPE | "application/vnd.pypi.simple.latest+json" => true,
            HTML_TYPE | "application/vnd.pypi.simple.latest+html" | "text/html" | "*/*" => false,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, json));
        }
    }
    match best {
        Some((_, json)) => Ok(json),
        // Only unsupported types (or supported ones with q=0) were acceptable: 406.
        None => Err(()),
    }
}

/// Reads RFC 822-style core metadata headers (METADATA / PKG-INFO). Written by hand: the format is
/// a handful of `Key: value` lines with continuations, and the crates that parse it pull in their
/// own archive readers, which this module already has.
pub(crate) fn parse_core_metadata(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(k) = &last
                && let Some(v) = out.get_mut(k).and_then(|v| v.last_mut())
            {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let key = k.trim().to_ascii_lowercase();
            out.entry(key.clone())
                .or_default()
                .push(v.trim().to_string());
            last = Some(key);
        }
    }
    out
}

pub(crate) enum Dist {
    Wheel,
    Sdist,
}

/// The distribution kind and (name, version) encoded in a file name.
pub(crate) fn parse_filename(filename: &str) -> ApiResult<(Dist, String, String)> {
    let bad = || {
        ApiError::bad(
            "content",
            format!(
                "'{filename}' is not a wheel (.whl) or source distribution (.tar.gz, .zip) file name"
            ),
        )
    };
    if filename.contains(['/', '\\']) || filename.starts_with('.') {
        return Err(bad());
    }
    if let Some(stem) = filename.strip_suffix(".whl") {
        let parts: Vec<&str> = stem.split('-').collect();
        if parts.len() != 5 && parts.len() != 6 {
            return Err(bad());
        }
        return Ok((Dist::Wheel, parts[0].to_string(), parts[1].to_string()));
    }
    let stem = filename
        .strip_suffix(".tar.gz")
        .or_else(|| filename.strip_suffix(".zip"))
        .ok_or_else(bad)?;
    // Source distributions: <name>-<version>; the name may itself contain '-' in old sdists.
    let (name, version) = stem.rsplit_once('-').ok_or_else(bad)?;
    Ok((Dist::Sdist, name.to_string(), version.to_string()))
}

/// Extracts the core metadata document from a wheel or an sdist (blocking I/O).
pub(crate) fn read_core_metadata(
    path: &std::path::Path,
    dist: &Dist,
    filename: &str,
) -> ApiResult<String> {
    let bad = |m: String| ApiError::bad("content", m);
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    match dist {
        Dist::Wheel => {
            let mut zip = zip::ZipArchive::new(file)
                .map_err(|e| bad(format!("'{filename}' is not a valid wheel: {e}")))?;
            let name = zip
                .file_names()
                .find(|n| {
                    let mut p = n.split('/');
                    matches!((p.next(), p.next(), p.next()), (Some(d), Some("METADATA"), None) if d.ends_with(".dist-info"))
                })
                .map(str::to_string)
                .ok_or_else(|| bad(format!("wheel '{filename}' has no .dist-info/METADATA")))?;
            let entry = zip
                .by_name(&name)
                .map_err(|e| bad(format!("reading {name}: {e}")))?;
            entry
                .take(MAX_METADATA)
                .read_to_string(&mut text)
                .map_err(|e| bad(format!("reading {name}: {e}")))?;
        }
        Dist::Sdist if filename.ends_with(".zip") => {
            let mut zip = zip::ZipArchive::new(file)
                .map_err(|e| bad(format!("'{filename}' is not a valid zip: {e}")))?;
            let name = zip
                .file_names()
                .find(|n| n.split('/').count() == 2 && n.ends_with("/PKG-INFO"))
                .map(str::to_string)
                .ok_or_else(|| bad(format!("sdist '{filename}' has no PKG-INFO")))?;
            let entry = zip
                .by_name(&name)
                .map_err(|e| bad(format!("reading {name}: {e}")))?;
            entry
                .take(MAX_METADATA)
                .read_to_string(&mut text)
                .map_err(|e| bad(format!("reading {name}: {e}")))?;
        }
        Dist::Sdist => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
            let entries = tar
                .entries()
                .map_err(|e| bad(format!("'{filename}' is not a valid .tar.gz: {e}")))?;
            let mut found = false;
            for entry in entries {
                let entry =
                    entry.map_err(|e| bad(format!("'{filename}' is not a valid .tar.gz: {e}")))?;
                let path = entry
                    .path()
                    .map_err(|e| bad(format!("bad path in '{filename}': {e}")))?
                    .into_owned();
                let comps: Vec<_> = path.components().collect();
                if comps.len() == 2 && path.ends_with("PKG-INFO") {
                    entry
                        .take(MAX_METADATA)
                        .read_to_string(&mut text)
                        .map_err(|e| bad(format!("reading PKG-INFO: {e}")))?;
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(bad(format!("sdist '{filename}' has no PKG-INFO")));
            }
        }
    }
    Ok(text)
}

pub(crate) fn normalize_version(field: &str, v: &str) -> ApiResult<String> {
    pep440_rs::Version::from_str(v)
        .map(|v| v.to_string())
        .map_err(|e| ApiError::bad(field, format!("'{v}' is not a valid PEP 440 version: {e}")))
}

#[async_trait]
impl Format for Pypi {
    fn package_type(&self) -> PackageType {
        PackageType::Python
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            scheme,
            root,
            user,
            art,
            ver,
            ..
        } = c;
        let mut configure = vec![(
            "",
            format!(
                "pip config set global.index-url {scheme}://{user}:<TOKEN>@{}/simple/",
                c.root_without_scheme()
            ),
        )];
        if c.plain_http() {
            // pip trusts plain HTTP only on localhost unless told to.
            configure.push((
                "",
                format!("pip config set global.trusted-host {}", c.authority()),
            ));
        }
        Setup {
            title: "Python Client Setup",
            sections: vec![
                inline(
                    "Configure pip",
                    vec![step(
                        "Set the index with credentials (written to pip's user configuration)",
                        &configure,
                    )],
                ),
                inline(
                    "Upload with twine",
                    vec![step(
                        "Upload",
                        &[(
                            "",
                            format!(
                                "twine upload --non-interactive --repository-url {root}/ -u {user} -p <TOKEN> dist/*"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Install (from the configured index)",
                        &[("", format!("pip install {art}=={ver}"))],
                    )],
                ),
            ],
        }
    }

    fn pull_command(&self, _c: &SetupContext, name: &str, version: &str) -> String {
        format!("pip install {name}=={version}")
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (&req.method, segs.as_slice()) {
            (&Method::POST, [] | ["legacy"]) => upload(state, req).await,
            (&Method::GET, ["simple"]) => index(state, &req).await,
            (&Method::GET, ["simple", project]) => {
                let norm = normalize(project);
                if norm != *project || !req.path.ends_with('/') {
                    // PEP 503: redirect to the normalised URL.
                    return Ok(Redirect::permanent(&format!(
                        "{}/simple/{norm}/",
                        native_root(state, &req.registry)
                    ))
                    .into_response());
                }
                project_page(state, &req, &norm).await
            }
            (&Method::GET | &Method::HEAD, ["files", project, version, filename]) => {
                download(state, &req, project, version, filename).await
            }
            (&Method::PUT | &Method::DELETE, ["yank", project, version]) => {
                yank(state, req, &normalize(project), version).await
            }
            _ => Err(ApiError::not_found("no such PyPI endpoint")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Upload.

async fn upload(state: &AppState, req: NativeRequest) -> ApiResult<Response> {
    let up = Upload::begin(state, &req, UploadBody::Streamed).await?;
    let target = &up.target;
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        ApiError::bad(
            "body",
            "expected a multipart/form-data upload (twine upload / uv publish)",
        )
    })?;
    let body: ByteStream = req.into_body_stream();
    let mut multipart = multer::Multipart::new(body, boundary);
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut upload: Option<(String, StagedBlob)> = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad("body", format!("malformed multipart body: {e}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name == "content" {
            let filename = field.file_name().unwrap_or("").to_string();
            let (_, fname, fversion) = parse_filename(&filename)?;
            // Refuse early, before storing a body that cannot be kept (re-checked atomically later).
            if target.reupload == Reupload::None {
                let path = format!(
                    "files/{}/{}/{filename}",
                    normalize(&fname),
                    normalize_version("version", &fversion).unwrap_or(fversion)
                );
                if state.db.file_by_path(&target.id, &path).await?.is_some() {
                    return Err(file_exists(&filename));
                }
            }
            let expected = fields
                .get("sha256_digest")
                .filter(|s| !s.is_empty())
                .map(|s| s.to_ascii_lowercase());
            let stream: ByteStream = Box::pin(field.map_err(std::io::Error::other));
            let staged = up.stage(stream).await?;
            if let Some(expected) = expected
                && expected != staged.info.sha256
            {
                return Err(ApiError::bad(
                    "sha256_digest",
                    format!(
                        "the uploaded file's SHA-256 does not match sha256_digest: expected {expected}, got {}",
                        staged.info.sha256
                    ),
                ));
            }
            upload = Some((filename, staged));
        } else {
            let mut text = Vec::new();
            let mut field = field;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| ApiError::bad("body", format!("malformed multipart body: {e}")))?
            {
                if text.len() + chunk.len() > MAX_FIELD {
                    return Err(ApiError::PayloadTooLarge(format!(
                        "form field '{name}' is larger than {MAX_FIELD} bytes"
                    )));
                }
                text.extend_from_slice(&chunk);
            }
            fields.insert(name, String::from_utf8_lossy(&text).into_owned());
        }
    }
    if let Some(action) = fields.get(":action")
        && action != "file_upload"
    {
        return Err(ApiError::bad(
            ":action",
            format!("unsupported :action '{action}'"),
        ));
    }
    let (filename, staged) =
        upload.ok_or_else(|| ApiError::bad("content", "the upload has no 'content' file"))?;
    let form_name = fields
        .get("name")
        .cloned()
        .ok_or_else(|| ApiError::bad("name", "'name' is required"))?;
    let form_version = fields
        .get("version")
        .cloned()
        .ok_or_else(|| ApiError::bad("version", "'version' is required"))?;
    if !valid_name(&form_name) {
        return Err(ApiError::bad(
            "name",
            format!("'{form_name}' is not a valid project name"),
        ));
    }
    let norm = normalize(&form_name);
    let version = normalize_version("version", &form_version)?;
    if let Some(md5) = fields.get("md5_digest").filter(|m| !m.is_empty())
        && !md5.eq_ignore_ascii_case(&staged.info.md5)
    {
        return Err(ApiError::bad(
            "md5_digest",
            "the uploaded file's MD5 does not match md5_digest",
        ));
    }
    let (dist, file_name_part, file_version_part) = parse_filename(&filename)?;
    if normalize(&file_name_part) != norm {
        return Err(ApiError::bad(
            "content",
            format!("file '{filename}' does not belong to project '{form_name}'"),
        ));
    }
    if normalize_version("content", &file_version_part)
        .ok()
        .as_deref()
        != Some(version.as_str())
    {
        return Err(ApiError::bad(
            "content",
            format!("file '{filename}' is not version {form_version}"),
        ));
    }
    // The archive's own metadata must agree with the form.
    let path = staged.path().to_path_buf();
    let fname = filename.clone();
    let meta_text = tokio::task::spawn_blocking(move || {
        let is_wheel = matches!(dist, Dist::Wheel);
        read_core_metadata(&path, &dist, &fname).map(|t| (t, is_wheel))
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("metadata reader panicked: {e}")))??;
    let (meta_text, is_wheel) = meta_text;
    let meta = parse_core_metadata(&meta_text);
    let first = |k: &str| meta.get(k).and_then(|v| v.first()).cloned();
    let meta_name = first("name").ok_or_else(|| {
        ApiError::bad(
            "content",
            format!("the metadata of '{filename}' has no Name"),
        )
    })?;
    if normalize(&meta_name) != norm {
        return Err(ApiError::bad(
            "content",
            format!("'{filename}' contains project '{meta_name}', not '{form_name}'"),
        ));
    }
    let meta_version = first("version").ok_or_else(|| {
        ApiError::bad(
            "content",
            format!("the metadata of '{filename}' has no Version"),
        )
    })?;
    if normalize_version("content", &meta_version)? != version {
        return Err(ApiError::bad(
            "content",
            format!("'{filename}' contains version {meta_version}, not {form_version}"),
        ));
    }
    let path = format!("files/{norm}/{version}/{filename}");
    up.check_new(&format!("{norm}:{version}"), &path, || {
        file_exists(&filename)
    })
    .await?;
    let requires_python = fields
        .get("requires_python")
        .filter(|s| !s.is_empty())
        .cloned()
        .or_else(|| first("requires-python"));
    let mut file_meta = json!({
        "name": meta_name,
        "filetype": fields.get("filetype").cloned().unwrap_or_else(|| if is_wheel { "bdist_wheel".into() } else { "sdist".into() }),
        "pyversion": fields.get("pyversion").cloned().unwrap_or_default(),
        "requiresPython": requires_python,
        "yanked": false,
    });
    if is_wheel {
        // PEP 658: serve the wheel's METADATA next to it.
        let bytes = Bytes::from(meta_text.clone().into_bytes());
        let len = bytes.len();
        let mblob = up.commit(up.stage_bytes(bytes).await?).await?;
        file_meta["coreMetadata"] = json!({"sha256": mblob.sha256, "size": len});
    }
    let file = up
        .record(
            staged,
            FileSpec {
                package: &norm,
                version: &version,
                path: &path,
                name: &filename,
                content_type: None,
                metadata: file_meta,
            },
            || file_exists(&filename),
        )
        .await?;
    let summary = fields
        .get("summary")
        .cloned()
        .or_else(|| first("summary"))
        .unwrap_or_default();
    let mut description = fields.get("description").cloned().unwrap_or_default();
    description.truncate(64 * 1024);
    state
        .db
        .set_version_metadata(
            &file.version_id,
            &json!({"name": meta_name, "version": version, "summary": summary, "requiresPython": fields.get("requires_python"),
                    "description": description, "author": first("author"), "license": first("license")}),
        )
        .await?;
    Ok((StatusCode::OK, "OK").into_response())
}

fn file_exists(filename: &str) -> ApiError {
    ApiError::bad(
        "content",
        format!(
            "File already exists ('{filename}'). Re-uploading a file is not allowed in this registry."
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Simple API.

/// One file on a project page, from a registry of the read chain or from an upstream.
pub(crate) struct PageFile {
    pub filename: String,
    pub version: String,
    /// Relative to the project page: `../../files/<project>/<version>/<file>`.
    pub url: String,
    pub sha256: String,
    pub requires_python: Option<String>,
    /// `false`, `true` or the reason (PEP 592).
    pub yanked: Value,
    /// SHA-256 of the PEP 658 core metadata, where Arca serves it.
    pub core_sha256: Option<String>,
    pub size: Option<i64>,
    pub upload_time: Option<String>,
}

/// The page-relative URL of a file (the same for stored and upstream files, so lockfiles and
/// caches do not care where a file came from).
pub(crate) fn file_url(norm: &str, version: &str, filename: &str) -> String {
    format!("../../files/{norm}/{version}/{filename}")
}

/// Files of a project along the read chain; the first registry holding a filename wins.
async fn project_files(
    state: &AppState,
    chain: &[(Registry, PackageRow)],
    norm: &str,
) -> ApiResult<Vec<PageFile>> {
    let mut out: Vec<PageFile> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, pkg) in chain {
        for (version, f) in state.db.package_files(&pkg.id).await? {
            if seen.insert(f.name.clone()) {
                let m = &f.metadata;
                out.push(PageFile {
                    url: file_url(norm, &version, &f.name),
                    filename: f.name.clone(),
                    version,
                    sha256: f.sha256.clone(),
                    requires_python: m
                        .get("requiresPython")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    yanked: match m.get("yanked") {
                        Some(Value::String(r)) => json!(r),
                        Some(Value::Bool(true)) => json!(true),
                        _ => json!(false),
                    },
                    core_sha256: m
                        .get("coreMetadata")
                        .and_then(|c| c.get("sha256"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    size: Some(f.size),
                    upload_time: Some(rfc3339(f.created_at)),
                });
            }
        }
    }
    Ok(out)
}

fn negotiated(headers: &HeaderMap) -> ApiResult<bool> {
    wants_json(headers).map_err(|()| ApiError::NotAcceptable("supported: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html, text/html".into()))
}

fn page_response(headers: &HeaderMap, json: bool, body: String) -> Response {
    Doc::new(body, if json { JSON_TYPE } else { HTML_TYPE }).respond(headers, false)
}

async fn index(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let json = negotiated(&req.headers)?;
    let mut names = std::collections::BTreeSet::new();
    for r in (Resolver { state }).read_chain(&req.registry).await? {
        let page = crate::store::artifacts::Page {
            offset: 0,
            limit: 1_000_000,
            sort: crate::store::paging::SortField::Name,
            descending: false,
            search: None,
        };
        for p in state
            .db
            .list_packages(std::slice::from_ref(&r.id), &[], &page)
            .await?
            .1
        {
            names.insert(p.name);
        }
    }
    let body = if json {
        json!({"meta": {"api-version": "1.1"}, "projects": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()}).to_string()
    } else {
        let mut s = String::from(
            "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Simple index</title></head><body>\n",
        );
        for n in &names {
            s.push_str(&format!("<a href=\"{0}/\">{0}</a><br/>\n", html_escape(n)));
        }
        s.push_str("</body></html>\n");
        s
    };
    Ok(page_response(&req.headers, json, body))
}

async fn project_page(state: &AppState, req: &NativeRequest, norm: &str) -> ApiResult<Response> {
    let json = negotiated(&req.headers)?;
    let chain = (Resolver { state }).packages(&req.registry, norm).await?;
    let pkgs: Vec<PackageRow> = chain.iter().map(|(_, p)| p.clone()).collect();
    let stamp = cache::stamp(&pkgs);
    // Upstream pages of the proxies in the chain: their bodies' digests join the cache key.
    let upstream = proxy::pages(state, &req.registry, norm, false).await?;
    let upstream_key: String = upstream.iter().map(|(_, d)| d.sha256.as_str()).collect();
    let stale = upstream.iter().any(|(_, d)| d.state == CacheState::Stale);
    let key = format!("pypi|{}|{json}|{norm}|{upstream_key}", req.registry.id);
    let doc = state
        .docs
        .get_or_build(key, stamp, || async {
            // What a proxy cached is listed as its upstream lists it now (yanks change); only
            // where the upstream's page is unavailable do the cached files stand for it.
            let stored = crate::proxy::documents::without_answered_caches(&chain, &upstream);
            let mut files = project_files(state, &stored, norm).await?;
            let mut seen: std::collections::HashSet<String> =
                files.iter().map(|f| f.filename.clone()).collect();
            for (_, page) in &upstream {
                for f in proxy::page_files(page, norm) {
                    if seen.insert(f.filename.clone()) {
                        files.push(f);
                    }
                }
            }
            if files.is_empty() {
                return Err(ApiError::not_found(format!("project '{norm}' not found")));
            }
            let body = if json {
                render_json(norm, &files)
            } else {
                render_html(norm, &files)
            };
            Ok::<_, ApiError>(Doc::new(body, if json { JSON_TYPE } else { HTML_TYPE }))
        })
        .await?;
    let mut resp = doc.respond(&req.headers, false);
    if stale {
        resp.headers_mut().insert(
            "x-arca-cache",
            header::HeaderValue::from_static(CacheState::Stale.header_value()),
        );
    }
    Ok(resp)
}

/// A project page in PEP 691 JSON.
fn render_json(norm: &str, files: &[PageFile]) -> String {
    let mut versions: Vec<&str> = files.iter().map(|l| l.version.as_str()).collect();
    versions.sort_by(|a, b| {
        match (
            pep440_rs::Version::from_str(a),
            pep440_rs::Version::from_str(b),
        ) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        }
    });
    versions.dedup();
    let files: Vec<Value> = files
        .iter()
        .map(|l| {
            let core = l
                .core_sha256
                .as_ref()
                .map(|s| json!({"sha256": s}))
                .unwrap_or(json!(false));
            json!({
                "filename": l.filename, "url": l.url, "hashes": {"sha256": l.sha256},
                "requires-python": l.requires_python,
                // Only the PEP 714 key: pip 22.3-23.1 (Debian 12's, CPython 3.10's) crash on the
                // legacy `dist-info-metadata` in JSON. The HTML page keeps both attributes.
                "core-metadata": core, "yanked": l.yanked,
                "size": l.size, "upload-time": l.upload_time,
            })
        })
        .collect();
    json!({"meta": {"api-version": "1.1"}, "name": norm, "versions": versions, "files": files})
        .to_string()
}

/// A project page in PEP 503 HTML.
fn render_html(norm: &str, files: &[PageFile]) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for {0}</title></head><body><h1>Links for {0}</h1>\n",
        html_escape(norm)
    );
    for l in files {
        let mut attrs = String::new();
        if let Some(rp) = &l.requires_python {
            attrs.push_str(&format!(" data-requires-python=\"{}\"", html_escape(rp)));
        }
        if let Some(sha) = &l.core_sha256 {
            attrs.push_str(&format!(
                " data-dist-info-metadata=\"sha256={sha}\" data-core-metadata=\"sha256={sha}\""
            ));
        }
        match &l.yanked {
            Value::String(r) => attrs.push_str(&format!(" data-yanked=\"{}\"", html_escape(r))),
            Value::Bool(true) => attrs.push_str(" data-yanked=\"\""),
            _ => {}
        }
        s.push_str(&format!(
            "<a href=\"{}#sha256={}\"{attrs}>{}</a><br/>\n",
            html_escape(&l.url),
            l.sha256,
            html_escape(&l.filename)
        ));
    }
    s.push_str("</body></html>\n");
    s
}

// ---------------------------------------------------------------------------------------------
// Downloads and yanking.

async fn download(
    state: &AppState,
    req: &NativeRequest,
    project: &str,
    version: &str,
    filename: &str,
) -> ApiResult<Response> {
    let resolver = Resolver { state };
    // The download agrees with the project page (dependency-confusion guard).
    resolver.guard(&req.registry, &normalize(project)).await?;
    if let Some(wheel) = filename.strip_suffix(".metadata") {
        let path = format!("files/{project}/{version}/{wheel}");
        let (_, file) = resolver
            .find_file(&req.registry, &path)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("'{filename}' not found")))?;
        let core = file
            .metadata
            .get("coreMetadata")
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("'{wheel}' has no core metadata")))?;
        let sha = core
            .get("sha256")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let size = core.get("size").and_then(Value::as_i64).unwrap_or_default();
        let doc = FileRow {
            sha256: sha,
            size,
            name: filename.to_string(),
            content_type: Some("text/plain; charset=utf-8".into()),
            md5: String::new(),
            sha1: String::new(),
            sha512: String::new(),
            ..file
        };
        return serve_blob(state, &doc, &req.method, &req.headers).await;
    }
    let path = format!("files/{project}/{version}/{filename}");
    let got = match resolver.find_file(&req.registry, &path).await? {
        Some((_, f)) => crate::proxy::files::Got::Stored(f),
        None => proxy::fetch(state, &req.registry, &normalize(project), version, filename)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("'{filename}' not found")))?,
    };
    got.respond(state, &req.method, &req.headers).await
}

async fn yank(
    state: &AppState,
    req: NativeRequest,
    norm: &str,
    version: &str,
) -> ApiResult<Response> {
    let target = Resolver { state }.write_target(&req.registry).await?;
    req.principal.check(&target, Need::Write)?;
    let yanking = req.method == Method::PUT;
    let body = crate::http::read_body(
        req.body.into_inner().ok().flatten().unwrap_or_default(),
        4096,
    )
    .await?;
    let reason = String::from_utf8_lossy(&body).trim().to_string();
    let version = normalize_version("version", version)?;
    let pkg = state
        .db
        .package_by_name(&target.id, norm)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project '{norm}' not found")))?;
    let files: Vec<FileRow> = state
        .db
        .package_files(&pkg.id)
        .await?
        .into_iter()
        .filter(|(v, _)| *v == version)
        .map(|(_, f)| f)
        .collect();
    if files.is_empty() {
        return Err(ApiError::not_found(format!(
            "version {version} of '{norm}' not found"
        )));
    }
    let yanked = if !yanking {
        json!(false)
    } else if reason.is_empty() {
        json!(true)
    } else {
        json!(reason)
    };
    for f in files {
        state
            .db
            .merge_file_metadata(&f.id, &json!({ "yanked": yanked }))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn normalizes_names_per_pep_503() {
        assert_eq!(normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize("FRIENDLY__bard"), "friendly-bard");
        assert_eq!(normalize("friendly.-_bard"), "friendly-bard");
        assert_eq!(normalize("a.b"), "a-b");
    }

    #[test]
    fn parses_distribution_file_names() {
        let (_, n, v) = parse_filename("my_pkg-1.0.2-py3-none-any.whl").unwrap();
        assert_eq!((n.as_str(), v.as_str()), ("my_pkg", "1.0.2"));
        let (_, n, v) = parse_filename("my-pkg-1.0.2.tar.gz").unwrap();
        assert_eq!((n.as_str(), v.as_str()), ("my-pkg", "1.0.2"));
        assert!(parse_filename("../x-1.0.tar.gz").is_err());
        assert!(parse_filename("x.exe").is_err());
    }

    #[test]
    fn negotiates_pep_691_accept_headers() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(
            wants_json(&h(
                "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
            )),
            Ok(true)
        );
        assert_eq!(wants_json(&h("text/html")), Ok(false));
        assert_eq!(
            wants_json(&h("application/vnd.pypi.simple.v1+json; q=0.1, text/html")),
            Ok(false)
        );
        assert_eq!(wants_json(&h("application/xml")), Err(()));
        assert_eq!(wants_json(&HeaderMap::new()), Ok(false));
    }

    #[test]
    fn reads_core_metadata_headers() {
        let m = parse_core_metadata(
            "Metadata-Version: 2.1\nName: Foo\nVersion: 1.0\nRequires-Python: >=3.8\nClassifier: A\nClassifier: B\n\nLong description\nName: Not a header\n",
        );
        assert_eq!(m["name"], vec!["Foo"]);
        assert_eq!(m["requires-python"], vec![">=3.8"]);
        assert_eq!(m["classifier"].len(), 2);
    }
}

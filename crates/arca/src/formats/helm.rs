//! Helm (HELM registries): the classic HTTP chart repository. (Charts over OCI are served at
//! `/v2/` by the OCI module; both live in the same registry.)
//!
//! Layout under `<base>/pkg/<account>/<registry>/helm/`:
//! * `index.yaml` (apiVersion v1; entries with digest, created, urls), generated from the
//!   metadata store and cached per package revisions;
//! * `charts/<name>-<version>.tgz` and `.tgz.prov`;
//! * uploads: `PUT <name>-<version>.tgz` (and `.tgz.prov`), ChartMuseum's `POST api/charts`
//!   (raw chart, or multipart with `chart` and optional `prov`) and `POST api/prov`;
//!   `DELETE api/charts/<name>/<version>` (to the trash can).
//!
//! `Chart.yaml` is read from the archive; its name and version must match the file name.

use async_trait::async_trait;
use axum::Json;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::TryStreamExt;
use serde_json::{Map, Value, json};

use super::cache::{self, Doc};
use super::{Format, NativeRequest, Resolver, native_root};
use crate::archive::{Limits, tar_gz_find};
use crate::auth::{Need, Principal};
use crate::blob::{BlobInfo, ByteStream};
use crate::download::serve_file;
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry, Reupload, rfc3339};
use crate::state::AppState;
use crate::store::artifacts::NewFile;

pub struct Helm;

const MAX_PROV: usize = 1 << 20;

#[async_trait]
impl Format for Helm {
    fn package_type(&self) -> PackageType {
        PackageType::Helm
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let get = req.method == Method::GET || req.method == Method::HEAD;
        match (&req.method, segs.as_slice()) {
            (_, ["index.yaml"]) if get => index(state, &req).await,
            (_, ["charts", file]) if get => download(state, &req, file).await,
            (&Method::PUT, [file]) if file.ends_with(".tgz") => {
                let file = file.to_string();
                let body = read(&req, state).await?;
                let (target, principal) = (req.registry.clone(), req.principal.clone());
                store_chart(state, &target, &principal, Some(&file), body, None).await
            }
            (&Method::PUT, [file]) if file.ends_with(".tgz.prov") => {
                let file = file.to_string();
                let body = read(&req, state).await?;
                store_prov(state, &req.registry, &req.principal, &file, body).await
            }
            (&Method::POST, ["api", "charts"]) => chartmuseum_upload(state, req).await,
            (&Method::POST, ["api", "prov"]) => {
                let body = read(&req, state).await?;
                let file = prov_name_from(&body)?;
                store_prov(state, &req.registry, &req.principal, &file, body).await
            }
            (&Method::DELETE, ["api", "charts", name, version]) => {
                delete(state, &req, name, version).await
            }
            (&Method::PUT | &Method::POST, _) => Err(ApiError::bad(
                "file",
                "upload charts as PUT <root>/<name>-<version>.tgz or POST <root>/api/charts",
            )),
            _ => Err(ApiError::not_found("no such chart repository path")),
        }
    }
}

async fn read(req: &NativeRequest, state: &AppState) -> ApiResult<Bytes> {
    let limit = state.config.max_upload_bytes.min(usize::MAX as u64) as usize;
    super::read_body(req.take_body(), limit).await
}

/// `Chart.yaml` of a chart archive (`<chart>/Chart.yaml`), as JSON.
pub(crate) fn chart_metadata(chart: &[u8]) -> Result<Map<String, Value>, String> {
    let found = tar_gz_find(
        chart,
        |p| {
            let parts: Vec<_> = p.components().collect();
            parts.len() == 2 && p.file_name().is_some_and(|f| f == "Chart.yaml")
        },
        Limits::default(),
    )?
    .ok_or("the archive has no <chart>/Chart.yaml")?;
    let text = String::from_utf8(found.1).map_err(|_| "Chart.yaml is not UTF-8")?;
    let v: Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("Chart.yaml is not valid YAML: {e}"))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err("Chart.yaml is not a mapping".into()),
    }
}

pub(crate) fn valid_chart_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 250
        && n.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_' || c == b'.'
        })
        && n.as_bytes()[0].is_ascii_alphanumeric()
}

fn blob_stream(bytes: Bytes) -> ByteStream {
    Box::pin(futures::stream::once(async move {
        Ok::<_, std::io::Error>(bytes)
    }))
}

/// Stores a chart; `file` is the name it was uploaded under (checked against Chart.yaml).
async fn store_chart(
    state: &AppState,
    reg: &Registry,
    principal: &Principal,
    file: Option<&str>,
    chart: Bytes,
    prov: Option<Bytes>,
) -> ApiResult<Response> {
    let target = Resolver { state }.write_target(reg).await?;
    principal.check(&target, Need::Write)?;
    let reader = chart.clone();
    let meta = tokio::task::spawn_blocking(move || chart_metadata(&reader))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("chart reader panicked: {e}")))?
        .map_err(|e| ApiError::bad("chart", e))?;
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let version = meta
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !valid_chart_name(&name) {
        return Err(ApiError::bad(
            "chart",
            format!("'{name}' is not a valid chart name"),
        ));
    }
    if semver::Version::parse(version.trim_start_matches('v')).is_err() {
        return Err(ApiError::bad(
            "chart",
            format!("'{version}' is not a SemVer 2 chart version"),
        ));
    }
    let expected = format!("{name}-{version}.tgz");
    if let Some(f) = file
        && f != expected
    {
        return Err(ApiError::bad(
            "file",
            format!("'{f}' holds chart {name} {version}; upload it as {expected}"),
        ));
    }
    target.check_patterns(&format!("{name}:{version}"))?;
    let path = format!("charts/{expected}");
    if target.reupload == Reupload::None
        && state.db.file_by_path(&target.id, &path).await?.is_some()
    {
        return Err(ApiError::conflict(format!(
            "{name} {version} already exists and this registry does not allow re-uploads"
        )));
    }
    let blob = state.blobs.put(blob_stream(chart), None, None).await?;
    state.commit_blob(&blob).await?;
    let stored = put(
        state,
        &target,
        &name,
        &version,
        &path,
        &expected,
        &blob,
        "application/gzip",
    )
    .await?;
    state
        .db
        .set_version_metadata(
            &stored.version_id,
            &json!({"chart": meta, "digest": blob.sha256}),
        )
        .await?;
    if let Some(p) = prov {
        let pblob = state.blobs.put(blob_stream(p), None, None).await?;
        state.commit_blob(&pblob).await?;
        let pname = format!("{expected}.prov");
        put(
            state,
            &target,
            &name,
            &version,
            &format!("charts/{pname}"),
            &pname,
            &pblob,
            "application/octet-stream",
        )
        .await?;
    }
    Ok((StatusCode::CREATED, Json(json!({"saved": true}))).into_response())
}

#[allow(clippy::too_many_arguments)]
async fn put(
    state: &AppState,
    target: &Registry,
    name: &str,
    version: &str,
    path: &str,
    file: &str,
    blob: &BlobInfo,
    content_type: &str,
) -> ApiResult<crate::store::artifacts::FileRow> {
    state
        .db
        .record_file(
            target,
            NewFile {
                package: name,
                version,
                path,
                name: file,
                blob,
                content_type: Some(content_type),
                metadata: json!({}),
            },
        )
        .await
        .map_err(|e| match e {
            ApiError::Conflict(_) => ApiError::conflict(format!(
                "{file} already exists and this registry does not allow re-uploads"
            )),
            other => other,
        })
}

/// A provenance file belongs to a chart that is already there.
async fn store_prov(
    state: &AppState,
    reg: &Registry,
    principal: &Principal,
    file: &str,
    body: Bytes,
) -> ApiResult<Response> {
    let target = Resolver { state }.write_target(reg).await?;
    principal.check(&target, Need::Write)?;
    if body.len() > MAX_PROV || !body.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(ApiError::bad(
            "prov",
            "a provenance file is a PGP clear-signed message",
        ));
    }
    let chart_file = file.strip_suffix(".prov").unwrap_or(file);
    let chart = state
        .db
        .file_by_path(&target.id, &format!("charts/{chart_file}"))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("upload {chart_file} before its provenance file"))
        })?;
    let v = state
        .db
        .version_names(&chart.version_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the chart's version is gone"))?;
    let blob = state.blobs.put(blob_stream(body), None, None).await?;
    state.commit_blob(&blob).await?;
    put(
        state,
        &target,
        &v.0,
        &v.1,
        &format!("charts/{file}"),
        file,
        &blob,
        "application/octet-stream",
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"saved": true}))).into_response())
}

/// ChartMuseum names a bare provenance upload by the chart it signs (`name: ...` and
/// `version: ...` lines of the signed Chart.yaml).
pub(crate) fn prov_name_from(body: &[u8]) -> ApiResult<String> {
    let text = String::from_utf8_lossy(body);
    let field = |k: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(&format!("{k}: "))
                .map(|v| v.trim().to_string())
        })
    };
    match (field("name"), field("version")) {
        (Some(n), Some(v)) => Ok(format!("{n}-{v}.tgz.prov")),
        _ => Err(ApiError::bad("prov", "the provenance file names no chart")),
    }
}

async fn chartmuseum_upload(state: &AppState, req: NativeRequest) -> ApiResult<Response> {
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (reg, principal) = (req.registry.clone(), req.principal.clone());
    let Ok(boundary) = multer::parse_boundary(&content_type) else {
        let body = read(&req, state).await?;
        return store_chart(state, &reg, &principal, None, body, None).await;
    };
    let limit = state.config.max_upload_bytes.min(usize::MAX as u64) as usize;
    let mut multipart = multer::Multipart::new(req.into_body_stream(), boundary);
    let (mut chart, mut prov) = (None, None);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad("chart", format!("malformed multipart body: {e}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        let stream: ByteStream = Box::pin(field.map_err(std::io::Error::other));
        let body = super::read_body(axum::body::Body::from_stream(stream), limit).await?;
        match name.as_str() {
            "chart" => chart = Some(body),
            "prov" => prov = Some(body),
            _ => {}
        }
    }
    let chart = chart.ok_or_else(|| ApiError::bad("chart", "the form has no 'chart' field"))?;
    store_chart(state, &reg, &principal, None, chart, prov).await
}

async fn delete(
    state: &AppState,
    req: &NativeRequest,
    name: &str,
    version: &str,
) -> ApiResult<Response> {
    let target = Resolver { state }.write_target(&req.registry).await?;
    req.principal.check(&target, Need::Delete)?;
    crate::api::common::trash_versions(state, &target, name, Some(version)).await?;
    Ok(Json(json!({"deleted": true})).into_response())
}

async fn download(state: &AppState, req: &NativeRequest, file: &str) -> ApiResult<Response> {
    if file.contains(['/', '\\']) || file.starts_with('.') {
        return Err(ApiError::not_found("no such chart"));
    }
    let (_, f) = (Resolver { state })
        .find_file(&req.registry, &format!("charts/{file}"))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no chart file '{file}'")))?;
    serve_file(state, &f, &req.method, &req.headers).await
}

async fn index(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let (_, pkgs) = (Resolver { state }).all_packages(&req.registry).await?;
    let root = native_root(state, &req.registry);
    let doc = state
        .docs
        .get_or_build(format!("helm|{}", req.registry.id), cache::stamp(&pkgs), || async {
            let mut entries = Map::new();
            for p in &pkgs {
                if entries.contains_key(&p.name) {
                    continue;
                }
                let mut versions: Vec<(semver::Version, Value)> = Vec::new();
                for v in state.db.all_versions(&p.id).await? {
                    // Charts pushed over OCI have no classic archive.
                    let (Some(chart), Some(digest)) = (v.metadata.get("chart"), v.metadata.get("digest")) else {
                        continue;
                    };
                    let mut e = chart.clone();
                    let file = format!("{}-{}.tgz", p.name, v.version);
                    e["urls"] = json!([format!("{root}/charts/{file}")]);
                    e["created"] = json!(rfc3339(v.created_at));
                    e["digest"] = digest.clone();
                    let key = semver::Version::parse(v.version.trim_start_matches('v'))
                        .unwrap_or(semver::Version::new(0, 0, 0));
                    versions.push((key, e));
                }
                if versions.is_empty() {
                    continue;
                }
                versions.sort_by(|a, b| b.0.cmp(&a.0));
                entries.insert(p.name.clone(), Value::Array(versions.into_iter().map(|(_, e)| e).collect()));
            }
            let index = json!({"apiVersion": "v1", "entries": entries, "generated": rfc3339(crate::model::now_ms())});
            let yaml = serde_saphyr::to_string(&index)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("writing index.yaml: {e}")))?;
            Ok::<_, ApiError>(Doc::new(yaml, "application/yaml"))
        })
        .await?;
    Ok(doc.respond(&req.headers, req.method == Method::HEAD))
}

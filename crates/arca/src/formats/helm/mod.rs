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
//! `Chart.yaml` is read from the archive; its name and version must match the file name. Uploads
//! go through [`super::upload`]: write permission first, then the chart, parsed in memory under
//! the in-memory body cap.

mod proxy;

use crate::formats::setup::{Setup, SetupContext, inline, step};
use async_trait::async_trait;
use axum::Json;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::TryStreamExt;
use serde_json::{Map, Value, json};

use super::upload::{Body, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver, native_root};
use crate::archive::{Limits, tar_gz_find};
use crate::auth::Need;
use crate::blob::ByteStream;
use crate::doc_cache::{self as cache, Doc};
use crate::download::serve_file;
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, rfc3339};
use crate::proxy::documents::CacheState;
use crate::state::AppState;

pub struct Helm;

const MAX_PROV: usize = 1 << 20;

#[async_trait]
impl Format for Helm {
    fn package_type(&self) -> PackageType {
        PackageType::Helm
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            oci_account: account,
            oci_id,
            id,
            root,
            user,
            art,
            ver,
            ..
        } = c;
        let host = c.authority();
        // Helm speaks TLS to OCI registries unless told otherwise (login: Helm 3.19 or later).
        let plain = if c.plain_http() { " --plain-http" } else { "" };
        let mut sections = vec![
            inline(
                "Login",
                vec![step(
                    if c.plain_http() {
                        "Log in to the registry (paste the token, then press Enter and Ctrl-D; --plain-http needs Helm 3.19 or later)"
                    } else {
                        "Log in to the registry (paste the token, then press Enter and Ctrl-D)"
                    },
                    &[(
                        "",
                        format!("helm registry login{plain} -u {user} --password-stdin {host}"),
                    )],
                )],
            ),
            inline(
                "Push a chart",
                vec![step(
                    "Push",
                    &[(
                        "",
                        format!("helm push{plain} {art}-{ver}.tgz oci://{host}/{account}/{oci_id}"),
                    )],
                )],
            ),
            inline(
                "Pull a chart",
                vec![step(
                    "Pull",
                    &[(
                        "",
                        format!(
                            "helm pull{plain} oci://{host}/{account}/{oci_id}/{art} --version {ver}"
                        ),
                    )],
                )],
            ),
            inline(
                "Classic chart repository",
                vec![step(
                    "Add the repository",
                    &[(
                        "",
                        format!("helm repo add {id} {root} --username {user} --password <TOKEN>"),
                    )],
                )],
            ),
            inline(
                "Upload a chart to the classic repository",
                vec![step(
                    "Upload",
                    &[(
                        "",
                        format!(
                            "curl --fail-with-body -u {user}:<TOKEN> -T {art}-{ver}.tgz {root}/{art}-{ver}.tgz"
                        ),
                    )],
                )],
            ),
        ];
        if let Some(note) = super::setup::oci_case_note(c) {
            sections[0]["secHeader"] = serde_json::json!(note);
        }
        Setup {
            title: "Helm Client Setup",
            sections,
        }
    }

    fn pull_command(&self, c: &SetupContext, name: &str, version: &str) -> String {
        let host = &c.host;
        format!(
            "helm pull oci://{host}/{}/{}/{name} --version {version}",
            c.oci_account, c.oci_id
        )
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
                let up = Upload::begin(state, &req, Body::Parsed).await?;
                let body = up.read_parsed(req.take_body()).await?;
                store_chart(state, &up, Some(&file), body, None).await
            }
            (&Method::PUT, [file]) if file.ends_with(".tgz.prov") => {
                let file = file.to_string();
                let up = Upload::begin(state, &req, Body::Parsed).await?;
                let body = read_prov(req.take_body()).await?;
                store_prov(state, &up, &file, body).await
            }
            (&Method::POST, ["api", "charts"]) => chartmuseum_upload(state, req).await,
            (&Method::POST, ["api", "prov"]) => {
                let up = Upload::begin(state, &req, Body::Parsed).await?;
                let body = read_prov(req.take_body()).await?;
                let file = prov_name_from(&body)?;
                store_prov(state, &up, &file, body).await
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

/// A provenance file is a small signed text: anything larger is refused while reading.
async fn read_prov(body: axum::body::Body) -> ApiResult<Bytes> {
    crate::http::read_body(body, MAX_PROV)
        .await
        .map_err(|e| match e {
            ApiError::PayloadTooLarge(_) => {
                ApiError::bad("prov", "a provenance file is a PGP clear-signed message")
            }
            other => other,
        })
}

/// `Chart.yaml` of a chart archive (`<chart>/Chart.yaml`), as JSON.
pub(crate) fn chart_metadata(chart: impl std::io::Read) -> Result<Map<String, Value>, String> {
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

/// Stores a chart; `file` is the name it was uploaded under (checked against Chart.yaml).
async fn store_chart(
    state: &AppState,
    up: &Upload<'_>,
    file: Option<&str>,
    chart: Bytes,
    prov: Option<Bytes>,
) -> ApiResult<Response> {
    // Staged first: the chart is held to the upload cap before anything reads it.
    let staged = up.stage_bytes(chart).await?;
    let meta = up
        .inspect(&staged, "chart", |path| {
            let file = std::fs::File::open(path).map_err(|e| format!("reading the chart: {e}"))?;
            chart_metadata(std::io::BufReader::new(file))
        })
        .await?;
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
    let path = format!("charts/{expected}");
    let exists = || conflict(&expected);
    up.check_new(&format!("{name}:{version}"), &path, exists)
        .await?;
    let sha256 = staged.info.sha256.clone();
    let stored = up
        .record(
            staged,
            FileSpec {
                package: &name,
                version: &version,
                path: &path,
                name: &expected,
                content_type: Some("application/gzip"),
                metadata: json!({}),
            },
            exists,
        )
        .await?;
    // Merged, not replaced: the same version pushed over OCI keeps its manifest fields, and
    // `chartDigest` does not collide with the manifest's `digest`.
    state
        .db
        .merge_version_metadata(
            &stored.version_id,
            &json!({"chart": meta, "chartDigest": sha256}),
        )
        .await?;
    if let Some(p) = prov {
        let pname = format!("{expected}.prov");
        let staged = up.stage_bytes(p).await?;
        up.record(
            staged,
            FileSpec {
                package: &name,
                version: &version,
                path: &format!("charts/{pname}"),
                name: &pname,
                content_type: Some("application/octet-stream"),
                metadata: json!({}),
            },
            || conflict(&pname),
        )
        .await?;
    }
    Ok((StatusCode::CREATED, Json(json!({"saved": true}))).into_response())
}

fn conflict(file: &str) -> ApiError {
    ApiError::conflict(format!(
        "{file} already exists and this registry does not allow re-uploads"
    ))
}

/// A provenance file belongs to a chart that is already there.
async fn store_prov(
    state: &AppState,
    up: &Upload<'_>,
    file: &str,
    body: Bytes,
) -> ApiResult<Response> {
    if !body.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(ApiError::bad(
            "prov",
            "a provenance file is a PGP clear-signed message",
        ));
    }
    let target = &up.target;
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
    let staged = up.stage_bytes(body).await?;
    up.record(
        staged,
        FileSpec {
            package: &v.0,
            version: &v.1,
            path: &format!("charts/{file}"),
            name: file,
            content_type: Some("application/octet-stream"),
            metadata: json!({}),
        },
        || conflict(file),
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
    let up = Upload::begin(state, &req, Body::Parsed).await?;
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let Ok(boundary) = multer::parse_boundary(&content_type) else {
        let body = up.read_parsed(req.take_body()).await?;
        return store_chart(state, &up, None, body, None).await;
    };
    // The whole form is held in memory: one cap for all its fields together.
    let mut left = up.parsed_limit();
    let mut multipart = multer::Multipart::new(req.into_body_stream(), boundary);
    let (mut chart, mut prov) = (None, None);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad("chart", format!("malformed multipart body: {e}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        let stream: ByteStream = Box::pin(field.map_err(std::io::Error::other));
        let body = crate::http::read_body(axum::body::Body::from_stream(stream), left).await?;
        left -= body.len();
        match name.as_str() {
            "chart" => chart = Some(body),
            "prov" => prov = Some(body),
            _ => {}
        }
    }
    let chart = chart.ok_or_else(|| ApiError::bad("chart", "the form has no 'chart' field"))?;
    store_chart(state, &up, None, chart, prov).await
}

async fn delete(
    state: &AppState,
    req: &NativeRequest,
    name: &str,
    version: &str,
) -> ApiResult<Response> {
    let target = Resolver { state }.write_target(&req.registry).await?;
    req.principal.check(&target, Need::Delete)?;
    crate::service::trash_versions(state, &target, name, Some(version)).await?;
    Ok(Json(json!({"deleted": true})).into_response())
}

async fn download(state: &AppState, req: &NativeRequest, file: &str) -> ApiResult<Response> {
    if file.contains(['/', '\\']) || file.starts_with('.') {
        return Err(ApiError::not_found("no such chart"));
    }
    let resolver = Resolver { state };
    // A chart a hosted member holds is never downloaded from a proxy member (unless
    // allow-listed). `<name>-<version>.tgz`: names may hold dashes, versions start with a digit.
    let stem = file.strip_suffix(".tgz").unwrap_or(file);
    for (i, _) in stem.match_indices('-') {
        if stem[i + 1..].starts_with(|c: char| c.is_ascii_digit()) {
            resolver.guard(&req.registry, &stem[..i]).await?;
        }
    }
    let found = resolver
        .find_file(&req.registry, &format!("charts/{file}"))
        .await?
        .map(|(_, f)| f);
    let f = match found {
        Some(f) => Some(f),
        None => proxy::fetch(state, &req.registry, file).await?,
    }
    .ok_or_else(|| ApiError::not_found(format!("no chart file '{file}'")))?;
    serve_file(state, &f, &req.method, &req.headers).await
}

async fn index(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let (chain, all) = (Resolver { state }).all_packages(&req.registry).await?;
    let upstream = proxy::indexes(state, &req.registry, false).await?;
    let stale = upstream.iter().any(|(_, d)| d.state == CacheState::Stale);
    let upstream_key: String = upstream.iter().map(|(_, d)| d.sha256.as_str()).collect();
    // What a proxy cached is listed as its upstream lists it now; only where the upstream is
    // unavailable do the cached charts stand for it.
    let chain: Vec<(crate::model::Registry, ())> = chain.into_iter().map(|r| (r, ())).collect();
    let kept: std::collections::HashSet<String> =
        crate::proxy::documents::without_answered_caches(&chain, &upstream)
            .into_iter()
            .map(|(r, _)| r.id)
            .collect();
    let pkgs: Vec<_> = all
        .iter()
        .filter(|p| kept.contains(&p.registry_id))
        .cloned()
        .collect();
    let root = native_root(state, &req.registry);
    let doc = state
        .docs
        .get_or_build(format!("helm|{}|{upstream_key}", req.registry.id), cache::stamp(&all), || async {
            // A chart's entries are the union of its versions over the read chain (a group's
            // members in order): the first member that has a version wins it.
            let mut by_name: std::collections::BTreeMap<String, Vec<(String, semver::Version, Value)>> =
                Default::default();
            for p in &pkgs {
                let versions = by_name.entry(p.name.clone()).or_default();
                for v in state.db.all_versions(&p.id).await? {
                    if versions.iter().any(|(known, _, _)| *known == v.version) {
                        continue;
                    }
                    // Charts pushed over OCI have no classic archive. Charts stored before
                    // `chartDigest` carry the archive's digest as a bare `digest`.
                    let digest = v.metadata.get("chartDigest").or_else(|| {
                        v.metadata.get("digest").filter(|d| d.as_str().is_some_and(|d| !d.starts_with("sha256:")))
                    });
                    let (Some(chart), Some(digest)) = (v.metadata.get("chart"), digest) else {
                        continue;
                    };
                    let mut e = chart.clone();
                    let file = format!("{}-{}.tgz", p.name, v.version);
                    e["urls"] = json!([format!("{root}/charts/{file}")]);
                    e["created"] = json!(rfc3339(v.created_at));
                    e["digest"] = digest.clone();
                    let key = semver::Version::parse(v.version.trim_start_matches('v'))
                        .unwrap_or(semver::Version::new(0, 0, 0));
                    versions.push((v.version.clone(), key, e));
                }
            }
            let mut entries = Map::new();
            for (name, mut versions) in by_name {
                if versions.is_empty() {
                    continue;
                }
                versions.sort_by(|a, b| b.1.cmp(&a.1));
                entries.insert(name, Value::Array(versions.into_iter().map(|(_, _, e)| e).collect()));
            }
            // Upstream charts after the stored ones; a name stored here hides the upstream's.
            for (_, doc) in &upstream {
                for (name, versions) in proxy::entries(doc) {
                    if entries.contains_key(&name) {
                        continue;
                    }
                    let listed: Vec<Value> = versions
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| proxy::served(&root, &name, e.clone()))
                        .collect();
                    if !listed.is_empty() {
                        entries.insert(name, Value::Array(listed));
                    }
                }
            }
            let index = json!({"apiVersion": "v1", "entries": entries, "generated": rfc3339(crate::model::now_ms())});
            let yaml = serde_saphyr::to_string(&index)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("writing index.yaml: {e}")))?;
            Ok::<_, ApiError>(Doc::new(yaml, "application/yaml"))
        })
        .await?;
    // A large index goes compressed to the clients that accept it.
    let mut resp = doc.respond_compressed(&req.headers, req.method == Method::HEAD);
    if stale {
        resp.headers_mut().insert(
            "x-arca-cache",
            header::HeaderValue::from_static(CacheState::Stale.header_value()),
        );
    }
    Ok(resp)
}

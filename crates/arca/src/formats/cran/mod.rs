//! CRAN (CRAN registries): a CRAN-like repository of R source packages.
//!
//! Layout under `<base>/pkg/<account>/<registry>/cran/`:
//! * `PUT src/contrib/<pkg>_<version>.tar.gz`: upload a source package (raw body, as built by
//!   `R CMD build`); `DESCRIPTION` is read from the archive and must name the same package and
//!   version;
//! * `src/contrib/PACKAGES` and `PACKAGES.gz`: the index, one DCF stanza per package (its latest
//!   version), generated from the metadata store and cached per package revisions;
//! * `src/contrib/<pkg>_<version>.tar.gz` and `src/contrib/Archive/<pkg>/<pkg>_<version>.tar.gz`.
//!
//! R asks for `PACKAGES.rds` first and falls back to `PACKAGES.gz` when it is missing (404), so the
//! R serialization format is not produced: a proxy relays its upstream's `PACKAGES.rds` (which
//! lists what its PACKAGES lists), every other registry answers 404.

mod proxy;

use crate::formats::setup::{Setup, SetupContext, inline, step};
use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::upload::{Body, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver};
use crate::archive::{Limits, tar_gz_find};
use crate::doc_cache::{self as cache, Doc};
use crate::download::serve_file;
use crate::error::{ApiError, ApiResult};
use crate::model::PackageType;
use crate::proxy::documents::CacheState;
use crate::state::AppState;

pub struct Cran;

/// The DESCRIPTION fields PACKAGES carries (as CRAN's `tools::write_PACKAGES` does).
const INDEX_FIELDS: [&str; 10] = [
    "Package",
    "Version",
    "Priority",
    "Depends",
    "Imports",
    "LinkingTo",
    "Suggests",
    "Enhances",
    "License",
    "NeedsCompilation",
];

#[async_trait]
impl Format for Cran {
    fn package_type(&self) -> PackageType {
        PackageType::Cran
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            id,
            root,
            user,
            art,
            ..
        } = c;
        Setup {
            title: "CRAN Client Setup",
            sections: vec![
                inline(
                    "Configure R",
                    vec![step(
                        "Set the repository (in R)",
                        &[("", format!("options(repos = c(\"{id}\" = \"{root}\"))"))],
                    )],
                ),
                inline(
                    "Upload",
                    vec![step(
                        "Upload a source package",
                        &[(
                            "",
                            format!(
                                "curl --fail-with-body -u {user}:<TOKEN> -T <FILE>.tar.gz {root}/src/contrib/<FILE>.tar.gz"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        // A header keeps the token out of the URLs R prints.
                        "Install (in R, after setting the repository)",
                        &[(
                            "",
                            format!(
                                "install.packages(\"{art}\", headers = c(Authorization = \"Bearer <TOKEN>\"))"
                            ),
                        )],
                    )],
                ),
            ],
        }
    }

    fn pull_command(&self, _c: &SetupContext, name: &str, _version: &str) -> String {
        format!("install.packages(\"{name}\")")
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let get = req.method == Method::GET || req.method == Method::HEAD;
        match (&req.method, segs.as_slice()) {
            (_, ["src", "contrib", "PACKAGES"]) if get => index(state, &req, false).await,
            (_, ["src", "contrib", "PACKAGES.gz"]) if get => index(state, &req, true).await,
            (_, ["src", "contrib", "PACKAGES.rds"]) if get => packages_rds(state, &req).await,
            (_, ["src", "contrib", file]) if get => download(state, &req, file).await,
            (_, ["src", "contrib", "Archive", _, file]) if get => download(state, &req, file).await,
            (&Method::PUT, ["src", "contrib", file]) => upload(state, req, file).await,
            (&Method::PUT, _) => Err(ApiError::bad(
                "file",
                "upload source packages as PUT <root>/src/contrib/<pkg>_<version>.tar.gz",
            )),
            _ => Err(ApiError::not_found("no such CRAN repository path")),
        }
    }
}

/// `<pkg>_<version>.tar.gz` → (pkg, version).
pub(crate) fn split_file(file: &str) -> Option<(&str, &str)> {
    let stem = file.strip_suffix(".tar.gz")?;
    let (pkg, version) = stem.split_once('_')?;
    (valid_name(pkg) && valid_version(version)).then_some((pkg, version))
}

/// R package names: letters, digits and dots, starting with a letter, not ending in a dot.
fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1] != b'.'
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'.')
}

/// R versions: at least two non-negative integers separated by `.` or `-`.
fn valid_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split(['.', '-']).collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '-'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

async fn upload(state: &AppState, req: NativeRequest, file: &str) -> ApiResult<Response> {
    let up = Upload::begin(state, &req, Body::Streamed).await?;
    let (pkg, version) = split_file(file).ok_or_else(|| {
        ApiError::bad(
            "file",
            format!("'{file}' is not a source package name (<pkg>_<version>.tar.gz)"),
        )
    })?;
    let (pkg, version) = (pkg.to_string(), version.to_string());
    let path = format!("src/contrib/Archive/{pkg}/{pkg}_{version}.tar.gz");
    let exists = || {
        ApiError::conflict(format!(
            "{pkg} {version} already exists and this registry does not allow re-uploads"
        ))
    };
    up.check_new(&format!("{pkg}:{version}"), &path, exists)
        .await?;
    let staged = up.stage(req.into_body_stream()).await?;
    let wanted = format!("{pkg}/DESCRIPTION");
    let found = up
        .inspect(&staged, "file", move |path| {
            let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
            tar_gz_find(
                f,
                |p| p.to_str() == Some(wanted.as_str()),
                Limits::default(),
            )
        })
        .await?
        .ok_or_else(|| ApiError::bad("file", format!("the archive has no {pkg}/DESCRIPTION")))?;
    let text = String::from_utf8(found.1)
        .map_err(|_| ApiError::bad("file", "DESCRIPTION is not UTF-8"))?;
    let fields = crate::dcf::parse(&text).map_err(|e| ApiError::bad("file", e))?;
    let field = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    if field("Package") != Some(pkg.as_str()) || field("Version") != Some(version.as_str()) {
        return Err(ApiError::bad(
            "file",
            format!(
                "DESCRIPTION describes {} {}, not {pkg} {version}",
                field("Package").unwrap_or("?"),
                field("Version").unwrap_or("?")
            ),
        ));
    }
    let mut meta = Map::new();
    for (k, v) in &fields {
        if INDEX_FIELDS.contains(&k.as_str()) || matches!(k.as_str(), "Title" | "Description") {
            meta.insert(k.clone(), json!(crate::dcf::folded(v)));
        }
    }
    meta.insert("MD5sum".into(), json!(staged.info.md5));
    let stored = up
        .record(
            staged,
            FileSpec {
                package: &pkg,
                version: &version,
                path: &path,
                name: &format!("{pkg}_{version}.tar.gz"),
                content_type: Some("application/gzip"),
                metadata: json!({}),
            },
            exists,
        )
        .await?;
    state
        .db
        .set_version_metadata(&stored.version_id, &json!({"description": meta}))
        .await?;
    Ok((StatusCode::CREATED, format!("{pkg} {version} uploaded\n")).into_response())
}

async fn download(state: &AppState, req: &NativeRequest, file: &str) -> ApiResult<Response> {
    let (pkg, version) =
        split_file(file).ok_or_else(|| ApiError::not_found(format!("no file '{file}'")))?;
    let path = format!("src/contrib/Archive/{pkg}/{pkg}_{version}.tar.gz");
    let resolver = Resolver { state };
    // A name a hosted member owns is never downloaded from a proxy member (unless allow-listed).
    resolver.guard(&req.registry, pkg).await?;
    let found = resolver
        .find_file(&req.registry, &path)
        .await?
        .map(|(_, f)| f);
    let f = match found {
        Some(f) => Some(f),
        None => proxy::fetch(state, &req.registry, pkg, version, &path).await?,
    }
    .ok_or_else(|| ApiError::not_found(format!("{pkg} {version} not found")))?;
    serve_file(state, &f, &req.method, &req.headers).await
}

/// `PACKAGES.rds`: the upstream's, relayed byte for byte (revalidated like PACKAGES) by a proxy;
/// Arca cannot write R serialization, so anything else (a hosted registry, a group merging
/// several members) is a 404 and R reads `PACKAGES.gz`.
async fn packages_rds(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    if req.registry.proxy.is_none() {
        return Err(ApiError::not_found("no PACKAGES.rds: read PACKAGES.gz"));
    }
    let doc = proxy::packages_rds(state, &req.registry)
        .await?
        .ok_or_else(|| ApiError::not_found("no PACKAGES.rds upstream: read PACKAGES.gz"))?;
    let mut resp = (
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        doc.body.clone(),
    )
        .into_response();
    if doc.state == CacheState::Stale {
        resp.headers_mut().insert(
            "x-arca-cache",
            axum::http::HeaderValue::from_static(CacheState::Stale.header_value()),
        );
    }
    Ok(resp)
}

/// `PACKAGES`: the latest version of every package along the read chain.
async fn index(state: &AppState, req: &NativeRequest, gz: bool) -> ApiResult<Response> {
    let (chain, all) = (Resolver { state }).all_packages(&req.registry).await?;
    let upstream = proxy::indexes(state, &req.registry, false).await?;
    let stale = upstream.iter().any(|(_, d)| d.state == CacheState::Stale);
    let upstream_key: String = upstream.iter().map(|(_, d)| d.sha256.as_str()).collect();
    // What a proxy cached is listed as its upstream lists it now; only where the upstream is
    // unavailable do the cached packages stand for it.
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
    let doc = state
        .docs
        .get_or_build(
            format!("cran|{}|{gz}|{upstream_key}", req.registry.id),
            cache::stamp(&all),
            || async {
                let mut text = String::new();
                let mut seen = std::collections::HashSet::new();
                for p in &pkgs {
                    if !seen.insert(p.name.clone()) {
                        continue;
                    }
                    let versions = state.db.all_versions(&p.id).await?;
                    let Some(latest) = versions
                        .iter()
                        .max_by(|a, b| version_key(&a.version).cmp(&version_key(&b.version)))
                    else {
                        continue;
                    };
                    let d = latest
                        .metadata
                        .get("description")
                        .cloned()
                        .unwrap_or(Value::Null);
                    for k in INDEX_FIELDS.iter().copied().chain(["MD5sum"]) {
                        if let Some(v) = d.get(k).and_then(Value::as_str) {
                            text.push_str(&format!("{k}: {v}\n"));
                        }
                    }
                    text.push('\n');
                }
                // The upstreams' stanzas, verbatim, for names not stored here.
                for (_, doc) in &upstream {
                    for (name, stanza) in proxy::stanzas(doc) {
                        if seen.insert(name) {
                            text.push_str(&stanza);
                            text.push_str("\n\n");
                        }
                    }
                }
                if gz {
                    crate::archive::gzip(text.as_bytes())
                        .map(|b| Doc::new(b, "application/gzip"))
                        .map_err(|e| ApiError::Internal(e.into()))
                } else {
                    Ok(Doc::new(text, "text/plain; charset=utf-8"))
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_versions() {
        assert_eq!(split_file("hellor_0.1.0.tar.gz"), Some(("hellor", "0.1.0")));
        assert_eq!(
            split_file("data.table_1.14-8.tar.gz"),
            Some(("data.table", "1.14-8"))
        );
        for bad in [
            "x_1.0.tar.gz",
            "hellor-0.1.tar.gz",
            "hellor_1.tar.gz",
            "../x_1.0.tar.gz",
            "a_b.c.tar.gz",
        ] {
            assert_eq!(split_file(bad), None, "{bad}");
        }
        assert!(version_key("1.10.0") > version_key("1.9.2"));
    }
}

//! OPM (OPM registries): the OneScript package manager's hub protocol.
//!
//! Layout under `<base>/pkg/<account>/<registry>/opm/` (point an `opm.cfg` server entry's path at
//! it, and its publish resource at `push`):
//! * `list.txt`: one package name per line;
//! * `<name>/<name>-<version>.ospx` and `<name>/<name>.ospx` (the latest version);
//! * `POST push`: the raw `.ospx` body with `FILE-NAME` and `CHANNEL` headers, the token in
//!   `OAUTH-TOKEN` (the hub's style) or `Authorization`. Name and version come from the package's
//!   `opm-metadata.xml` (or, failing that, its `packagedef`).

mod proxy;

use crate::formats::setup::{Setup, SetupContext, inline, step};
use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::upload::{Body, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver};
use crate::doc_cache::{self as cache, Doc};
use crate::download::serve_file;
use crate::error::{ApiError, ApiResult};
use crate::model::PackageType;
use crate::proxy::documents::CacheState;
use crate::state::AppState;

pub struct Opm;

const MAX_MANIFEST: u64 = 1 << 20;

#[async_trait]
impl Format for Opm {
    fn package_type(&self) -> PackageType {
        PackageType::Opm
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            prefix,
            id,
            user,
            scheme,
            art,
            ..
        } = c;
        // The registry is read with the credentials in the server URL, as opm sends none of its own.
        let server = format!("{scheme}://{user}:<TOKEN>@{}", c.authority());
        let path = format!("/pkg/{prefix}/opm/");
        Setup {
            title: "OPM Client Setup",
            sections: vec![
                inline(
                    "Configure opm",
                    vec![step(
                        "The server entry of opm.cfg (for OneScript's opm), with the credentials in the server URL",
                        &[(
                            "opm.cfg",
                            format!(
                                "{{\"СервераПакетов\": [{{\"Имя\": \"{id}\", \"Сервер\": \"{server}\", \"ПутьНаСервере\": \"{path}\", \"РесурсПубликацииПакетов\": \"{path}push\", \"Приоритет\": 1}}]}}"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Publish",
                    vec![step(
                        "Publish a package to the stable channel (the token goes in opm's OAUTH-TOKEN header)",
                        &[(
                            "",
                            "opm push --token <TOKEN> --channel stable --file <FILE>.ospx"
                                .to_string(),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step("Install", &[("", format!("opm install {art}"))])],
                ),
            ],
        }
    }

    fn pull_command(&self, _c: &SetupContext, name: &str, version: &str) -> String {
        format!("opm install {name}@{version}")
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let get = req.method == Method::GET || req.method == Method::HEAD;
        match (&req.method, segs.as_slice()) {
            (_, ["list.txt"]) if get => list(state, &req).await,
            (_, [name, file]) if get => download(state, &req, name, file).await,
            (&Method::POST, ["push"]) => push(state, req).await,
            _ => Err(ApiError::not_found("no such OPM endpoint")),
        }
    }
}

/// Package names: letters (any script), digits, `-`, `_` and `.`, not starting with a dot.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// Dotted versions compare numerically part by part (non-numeric parts as text).
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split('.')
        .map(|p| (p.parse().unwrap_or(0), p.to_string()))
        .collect()
}

/// Name and version from `opm-metadata.xml` (`<name>`, `<version>` under the root element).
pub(crate) fn from_metadata(xml: &[u8]) -> Option<(String, String)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut depth = 0;
    let mut current = String::new();
    let (mut name, mut version) = (None, None);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) => {
                depth += 1;
                current = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
            }
            Event::End(_) => {
                depth -= 1;
                current.clear();
            }
            Event::Text(t) if depth == 2 => {
                let v = t.unescape().ok()?.trim().to_string();
                match current.as_str() {
                    "name" => name = Some(v),
                    "version" => version = Some(v),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Some((name?, version?))
}

/// Name and version from a `packagedef` script: `.Имя("x")` / `.Версия("1.0")` (or the English
/// `.Name(...)` / `.Version(...)`).
pub(crate) fn from_packagedef(text: &str) -> Option<(String, String)> {
    let call = |methods: &[&str]| {
        methods.iter().find_map(|m| {
            let start = text.find(&format!(".{m}("))? + m.len() + 2;
            let rest = text[start..].trim_start();
            let rest = rest.strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        })
    };
    Some((call(&["Имя", "Name"])?, call(&["Версия", "Version"])?))
}

pub(crate) fn read_identity(path: &std::path::Path) -> Result<(String, String), String> {
    let pick = |wanted: &'static str| {
        move |names: Vec<&str>| {
            names
                .into_iter()
                .find(|n| *n == wanted)
                .map(str::to_string)
                .ok_or_else(|| format!("the package has no {wanted}"))
        }
    };
    if let Ok(xml) = crate::archive::zip_entry(path, pick("opm-metadata.xml"), MAX_MANIFEST)
        && let Some(id) = from_metadata(&xml)
    {
        return Ok(id);
    }
    let def = crate::archive::zip_entry(path, pick("packagedef"), MAX_MANIFEST)?;
    let text = String::from_utf8_lossy(&def);
    from_packagedef(text.trim_start_matches('\u{feff}')).ok_or_else(|| {
        "neither opm-metadata.xml nor packagedef names the package and its version".into()
    })
}

async fn push(state: &AppState, req: NativeRequest) -> ApiResult<Response> {
    let up = Upload::begin(state, &req, Body::Streamed).await?;
    let header = |k: &str| {
        req.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let channel = header("channel").unwrap_or_else(|| "stable".into());
    if !matches!(channel.as_str(), "stable" | "dev") {
        return Err(ApiError::bad(
            "CHANNEL",
            format!("unknown channel '{channel}' (stable or dev)"),
        ));
    }
    let file_name = header("file-name");
    let staged = up.stage(req.into_body_stream()).await?;
    let (name, version) = up.inspect(&staged, "package", read_identity).await?;
    if !valid_name(&name) || !valid_version(&version) {
        return Err(ApiError::bad(
            "package",
            format!("'{name}' '{version}' is not a valid package name and version"),
        ));
    }
    let expected = format!("{name}-{version}.ospx");
    if let Some(f) = &file_name
        && *f != expected
    {
        return Err(ApiError::bad(
            "FILE-NAME",
            format!("FILE-NAME is '{f}' but the package is {expected}"),
        ));
    }
    let path = format!("{name}/{expected}");
    let exists = || {
        ApiError::conflict(format!(
            "{name} {version} already exists and this registry does not allow re-uploads"
        ))
    };
    up.check_new(&format!("{name}:{version}"), &path, exists)
        .await?;
    let stored = up
        .record(
            staged,
            FileSpec {
                package: &name,
                version: &version,
                path: &path,
                name: &expected,
                content_type: Some("application/zip"),
                metadata: json!({}),
            },
            exists,
        )
        .await?;
    state
        .db
        .set_version_metadata(&stored.version_id, &json!({"channel": channel}))
        .await?;
    Ok((
        StatusCode::OK,
        format!("package {name} {version} published to channel {channel}\n"),
    )
        .into_response())
}

async fn list(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let (_, pkgs) = (Resolver { state }).all_packages(&req.registry).await?;
    let upstream = proxy::lists(state, &req.registry).await?;
    let upstream_key: String = upstream.iter().map(|(_, d)| d.sha256.as_str()).collect();
    let stale = upstream.iter().any(|(_, d)| d.state == CacheState::Stale);
    let doc = state
        .docs
        .get_or_build(
            format!("opm|{}|{upstream_key}", req.registry.id),
            cache::stamp(&pkgs),
            || async {
                let mut names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
                names.sort();
                names.dedup();
                // The upstreams' names after the stored ones (case-sensitive, first spelling).
                let from_upstream: Vec<String> =
                    upstream.iter().flat_map(|(_, d)| proxy::names(d)).collect();
                for n in &from_upstream {
                    if !names.contains(&n.as_str()) {
                        names.push(n);
                    }
                }
                let mut text = names.join("\n");
                text.push('\n');
                Ok::<_, ApiError>(Doc::new(text, "text/plain; charset=utf-8"))
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

async fn download(
    state: &AppState,
    req: &NativeRequest,
    name: &str,
    file: &str,
) -> ApiResult<Response> {
    let version = if file == format!("{name}.ospx") {
        // The latest version of the package: stored, else as an upstream has it (what a proxy
        // cached stands for its upstream only while that upstream does not answer).
        let all = (Resolver { state }).packages(&req.registry, name).await?;
        let upstream = if valid_name(name) {
            proxy::latest(state, &req.registry, name).await?
        } else {
            Vec::new()
        };
        let chain = crate::proxy::documents::without_answered_caches(&all, &upstream);
        let mut best: Option<String> = None;
        for (_, p) in &chain {
            for v in state.db.all_versions(&p.id).await? {
                if best
                    .as_ref()
                    .is_none_or(|b| version_key(&v.version) > version_key(b))
                {
                    best = Some(v.version);
                }
            }
        }
        match (best, upstream.first()) {
            (Some(b), _) => b,
            (None, Some((_, doc))) => {
                let mut resp = (
                    [(axum::http::header::CONTENT_TYPE, "application/zip")],
                    proxy::body(doc),
                )
                    .into_response();
                if doc.state == CacheState::Stale {
                    resp.headers_mut().insert(
                        "x-arca-cache",
                        axum::http::HeaderValue::from_static(CacheState::Stale.header_value()),
                    );
                }
                return Ok(resp);
            }
            (None, None) => {
                return Err(ApiError::not_found(format!("package '{name}' not found")));
            }
        }
    } else {
        file.strip_prefix(&format!("{name}-"))
            .and_then(|v| v.strip_suffix(".ospx"))
            .filter(|v| valid_version(v))
            .ok_or_else(|| ApiError::not_found(format!("no file '{file}' for '{name}'")))?
            .to_string()
    };
    let resolver = Resolver { state };
    // A name a hosted member owns is never downloaded from a proxy member (unless allow-listed).
    resolver.guard(&req.registry, name).await?;
    let found = resolver
        .find_file(&req.registry, &format!("{name}/{name}-{version}.ospx"))
        .await?
        .map(|(_, f)| f);
    let f = match found {
        Some(f) => Some(f),
        None if valid_name(name) => proxy::fetch(state, &req.registry, name, &version).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::not_found(format!("{name} {version} not found")))?;
    serve_file(state, &f, &req.method, &req.headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_identities() {
        let xml = br#"<?xml version="1.0"?><opm-metadata xmlns="http://oscript.io/schemas/opm-metadata/1.0"><name>gitrunner</name><version>1.6.0</version><author><name>x</name></author></opm-metadata>"#;
        assert_eq!(
            from_metadata(xml),
            Some(("gitrunner".into(), "1.6.0".into()))
        );
        let def = "Описание.Имя(\"asserts\")\n    .Версия(\"1.3.0\")\n    .Автор(\"x\");";
        assert_eq!(
            from_packagedef(def),
            Some(("asserts".into(), "1.3.0".into()))
        );
        assert_eq!(from_packagedef("nothing"), None);
        assert!(version_key("1.10.0") > version_key("1.9.9"));
        assert!(
            valid_name("gitrunner")
                && valid_name("ОтчетыЮнит")
                && !valid_name("../x")
                && !valid_name("a/b")
        );
    }
}

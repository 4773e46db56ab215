//! Cargo (CARGO registries): the sparse index protocol and the registry web API.
//!
//! Layout under `<base>/pkg/<account>/<registry>/cargo/`:
//! * `index/config.json` (`auth-required` unless the registry allows anonymous reads) and index
//!   files at the standard paths (`1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd...`), with `ETag`,
//!   `Last-Modified` and 304s;
//! * `PUT api/v1/crates/new`: publish (through [`super::upload`]; the body is parsed in memory
//!   under the in-memory body cap); `DELETE|PUT api/v1/crates/<name>/<version>/(un)yank`;
//!   `GET api/v1/crates/<name>/owners`; `GET api/v1/crates?q=`: search;
//! * `GET api/v1/crates/<name>/<version>/download`: the `.crate` (its SHA-256 is the index `cksum`).
//!
//! Crates are keyed by their lowercase name (the index path); names that differ only in case or
//! `-`/`_` are the same crate, as on crates.io. Published versions are immutable whatever the
//! re-upload setting: lockfiles pin their checksums.

use crate::formats::setup::{Setup, SetupContext, append_file, inline, step};
use async_trait::async_trait;
use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Buf, Bytes};
use serde_json::{Value, json};

use super::upload::{Body, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver};
use crate::archive::{Limits, tar_gz_find};
use crate::auth::Need;
use crate::doc_cache::{self as cache, Doc};
use crate::error::{ApiError, ApiResult};
use crate::model::PackageType;
use crate::state::AppState;
use crate::store::artifacts::PackageRow;

mod proxy;

pub struct Cargo;

/// Cargo reads `errors[].detail` from error bodies and shows it to the user.
fn cargo_error(e: ApiError) -> Response {
    let status = e.status();
    let detail = e.public_message();
    let mut resp = (status, Json(json!({"errors": [{"detail": detail}]}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        // Cargo's own scheme tells cargo to send its token (a `login_url` would have to be a
        // page where users get one; an empty one makes cargo fail parsing it). Basic for others.
        let h = resp.headers_mut();
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Cargo"));
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"arca\""),
        );
    }
    resp
}

pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// Crates that differ only in case or `-`/`_` are the same crate.
fn canonical(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// The index path of a (lowercase) crate name.
fn index_path(name: &str) -> String {
    match name.len() {
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

#[async_trait]
impl Format for Cargo {
    fn package_type(&self) -> PackageType {
        PackageType::Cargo
    }

    fn error_response(&self, e: ApiError) -> Response {
        cargo_error(e)
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            id, root, art, ver, ..
        } = c;
        // A TOML bare key has no dots.
        let key = if id.contains('.') {
            format!("\"{id}\"")
        } else {
            id.to_string()
        };
        Setup {
            title: "Cargo Client Setup",
            sections: vec![
                inline(
                    "Configure cargo",
                    vec![step(
                        "Add the registry to ~/.cargo/config.toml",
                        &[(
                            "",
                            append_file(
                                "~/.cargo/config.toml",
                                &format!(
                                    "[registries.{key}]\nindex = \"sparse+{root}/index/\"\ncredential-provider = \"cargo:token\""
                                ),
                            ),
                        )],
                    )],
                ),
                inline(
                    "Log in",
                    vec![step(
                        "Store the token: cargo reads it from standard input (paste it, then press Enter)",
                        &[("", format!("cargo login --registry {id}"))],
                    )],
                ),
                inline(
                    "Publish",
                    vec![step(
                        "Publish (in the crate's directory)",
                        &[("", format!("cargo publish --registry {id}"))],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Add as a dependency (in the using crate's directory)",
                        &[("", format!("cargo add {art}@{ver} --registry {id}"))],
                    )],
                ),
            ],
        }
    }

    fn pull_command(&self, c: &SetupContext, name: &str, version: &str) -> String {
        format!("cargo add {name}@{version} --registry {}", c.id)
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        route(state, req).await
    }
}

async fn route(state: &AppState, req: NativeRequest) -> ApiResult<Response> {
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = req.method.clone();
    match (&method, segs.as_slice()) {
        (&Method::GET, ["index", "config.json"]) => {
            let root = super::native_root(state, &req.registry);
            Ok(Json(json!({"dl": format!("{root}/api/v1/crates"), "api": root, "auth-required": !req.registry.anonymous})).into_response())
        }
        (&Method::GET | &Method::HEAD, ["index", path @ ..]) => index_file(state, &req, path).await,
        (&Method::PUT, ["api", "v1", "crates", "new"]) => publish(state, req).await,
        (&Method::DELETE, ["api", "v1", "crates", name, version, "yank"]) => {
            yank(state, req, name, version, true).await
        }
        (&Method::PUT, ["api", "v1", "crates", name, version, "unyank"]) => {
            yank(state, req, name, version, false).await
        }
        (&Method::GET, ["api", "v1", "crates", name, "owners"]) => owners(state, &req, name).await,
        (&Method::GET, ["api", "v1", "crates"]) => search(state, &req).await,
        (&Method::GET | &Method::HEAD, ["api", "v1", "crates", name, version, "download"]) => {
            let name = name.to_ascii_lowercase();
            let path = format!("crates/{name}/{version}/{name}-{version}.crate");
            let resolver = Resolver { state };
            // The download agrees with the index (dependency-confusion guard).
            resolver.guard(&req.registry, &name).await?;
            let got = match resolver.find_file(&req.registry, &path).await? {
                Some((_, f)) => crate::proxy::files::Got::Stored(f),
                None => proxy::download(state, &req.registry, &name, version, &path)
                    .await?
                    .ok_or_else(|| {
                        ApiError::not_found(format!("crate {name}@{version} not found"))
                    })?,
            };
            got.respond(state, &req.method, &req.headers).await
        }
        _ => Err(ApiError::not_found("no such cargo registry endpoint")),
    }
}

// ---------------------------------------------------------------------------------------------
// Index.

async fn index_file(state: &AppState, req: &NativeRequest, path: &[&str]) -> ApiResult<Response> {
    let name = path.last().copied().unwrap_or("").to_string();
    if name.is_empty() || name != name.to_ascii_lowercase() || path.join("/") != index_path(&name) {
        return Err(ApiError::not_found("not an index file"));
    }
    let chain = (Resolver { state }).packages(&req.registry, &name).await?;
    let pkgs: Vec<PackageRow> = chain.iter().map(|(_, p)| p.clone()).collect();
    let stamp = cache::stamp(&pkgs);
    // Upstream index files of the proxies in the chain: their digests join the cache key.
    let upstream = proxy::index_files(state, &req.registry, &name, false).await?;
    let upstream_key: String = upstream.iter().map(|(_, d)| d.sha256.as_str()).collect();
    let key = format!("cargo|{}|{name}|{upstream_key}", req.registry.id);
    let doc = state
        .docs
        .get_or_build(key, stamp, || async {
            let mut lines: Vec<(String, String)> = Vec::new();
            let stored = crate::proxy::documents::without_answered_caches(&chain, &upstream);
            for (_, pkg) in &stored {
                for v in state.db.all_versions(&pkg.id).await? {
                    if lines.iter().any(|(ver, _)| *ver == v.version) {
                        continue;
                    }
                    let mut line = v.metadata.get("index").cloned().unwrap_or(json!({}));
                    line["yanked"] = json!(
                        v.metadata
                            .get("yanked")
                            .and_then(Value::as_bool)
                            .unwrap_or(false)
                    );
                    lines.push((v.version.clone(), line.to_string()));
                }
            }
            // Upstream lines are relayed byte for byte, after the stored versions (first wins).
            for (_, doc) in &upstream {
                for (vers, line) in proxy::index_lines(&doc.body) {
                    if !lines.iter().any(|(v, _)| *v == vers) {
                        lines.push((vers, line));
                    }
                }
            }
            if lines.is_empty() {
                return Err(ApiError::not_found(format!("crate '{name}' not found")));
            }
            let body: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
            Ok(Doc::new(body, "text/plain; charset=utf-8"))
        })
        .await?;
    // Cargo revalidates with If-None-Match; If-Modified-Since is honoured too.
    Ok(doc.respond_dated(&req.headers, req.method == Method::HEAD))
}

// ---------------------------------------------------------------------------------------------
// Publish.

/// Splits the publish body: u32 LE length + JSON metadata, u32 LE length + `.crate` bytes.
pub(crate) fn split_publish(mut body: Bytes) -> ApiResult<(Value, Bytes)> {
    let bad = |m: &str| ApiError::bad("body", format!("malformed publish request: {m}"));
    if body.len() < 4 {
        return Err(bad("too short"));
    }
    let json_len = body.get_u32_le() as usize;
    if body.len() < json_len + 4 {
        return Err(bad("truncated metadata"));
    }
    let meta = body.split_to(json_len);
    let crate_len = body.get_u32_le() as usize;
    if body.len() != crate_len {
        return Err(bad("the .crate length does not match"));
    }
    let meta: Value = serde_json::from_slice(&meta)
        .map_err(|e| ApiError::bad("body", format!("malformed metadata JSON: {e}")))?;
    Ok((meta, body))
}

/// The index entry for a dependency in publish metadata (field names differ between the two).
pub(crate) fn index_dep(d: &Value) -> Value {
    let (name, package) = match d.get("explicit_name_in_toml").and_then(Value::as_str) {
        Some(alias) => (json!(alias), d.get("name").cloned().unwrap_or(Value::Null)),
        None => (d.get("name").cloned().unwrap_or(Value::Null), Value::Null),
    };
    let mut dep = json!({
        "name": name,
        "req": d.get("version_req").cloned().unwrap_or(json!("*")),
        "features": d.get("features").cloned().unwrap_or(json!([])),
        "optional": d.get("optional").cloned().unwrap_or(json!(false)),
        "default_features": d.get("default_features").cloned().unwrap_or(json!(true)),
        "target": d.get("target").cloned().unwrap_or(Value::Null),
        "kind": d.get("kind").cloned().unwrap_or(json!("normal")),
        "registry": d.get("registry").cloned().unwrap_or(Value::Null),
    });
    if !package.is_null() {
        dep["package"] = package;
    }
    dep
}

async fn publish(state: &AppState, req: NativeRequest) -> ApiResult<Response> {
    // The publish body (metadata and .crate) is parsed in memory: the small in-memory cap.
    let up = Upload::begin(state, &req, Body::Parsed).await?;
    let target = &up.target;
    let publisher = req.principal.user_name().unwrap_or("").to_string();
    let body = up.read_parsed(req.take_body()).await?;
    let (meta, krate) = split_publish(body)?;
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("name", "metadata has no name"))?
        .to_string();
    let vers = meta
        .get("vers")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("vers", "metadata has no vers"))?
        .to_string();
    if !valid_name(&name) {
        return Err(ApiError::bad(
            "name",
            format!("invalid crate name '{name}'"),
        ));
    }
    let parsed = semver::Version::parse(&vers).map_err(|e| {
        ApiError::bad(
            "vers",
            format!("'{vers}' is not a valid semver version: {e}"),
        )
    })?;
    if parsed.to_string() != vers {
        return Err(ApiError::bad(
            "vers",
            format!("'{vers}' is not in normal form ('{parsed}')"),
        ));
    }
    let key = name.to_ascii_lowercase();
    let file_name = format!("{key}-{vers}.crate");
    let path = format!("crates/{key}/{vers}/{file_name}");
    let uploaded = || {
        ApiError::bad(
            "vers",
            format!("crate version `{name}@{vers}` is already uploaded"),
        )
    };
    up.check_new(&format!("{name}:{vers}"), &path, uploaded)
        .await?;
    // The manifest inside the .crate must agree with the metadata.
    // Staged first: the .crate is held to the upload cap before anything reads it.
    let staged = up.stage_bytes(krate).await?;
    let manifest_path = format!("{name}-{vers}/Cargo.toml");
    let found = up
        .inspect(&staged, "crate", move |path| {
            let file = std::fs::File::open(path).map_err(|e| format!(".crate file: {e}"))?;
            tar_gz_find(
                std::io::BufReader::new(file),
                |p| p.to_str() == Some(manifest_path.as_str()),
                Limits::default(),
            )
            .map_err(|e| format!(".crate file: {e}"))
        })
        .await?
        .ok_or_else(|| {
            ApiError::bad(
                "crate",
                format!("the .crate has no {name}-{vers}/Cargo.toml"),
            )
        })?;
    let toml: toml::Value = toml::from_str(&String::from_utf8_lossy(&found.1))
        .map_err(|e| ApiError::bad("crate", format!("Cargo.toml in the .crate: {e}")))?;
    let (tname, tvers) = (
        toml.get("package")
            .and_then(|p| p.get("name"))
            .and_then(|v| v.as_str()),
        toml.get("package")
            .and_then(|p| p.get("version"))
            .and_then(|v| v.as_str()),
    );
    if tname != Some(name.as_str()) || tvers != Some(vers.as_str()) {
        return Err(ApiError::bad(
            "crate",
            format!(
                "the .crate's Cargo.toml is {}@{}, not {name}@{vers}",
                tname.unwrap_or("?"),
                tvers.unwrap_or("?")
            ),
        ));
    }
    // Same crate under another spelling (`-` and `_` are interchangeable)?
    if let Some(other) = state
        .db
        .package_with_canonical_name(&target.id, &canonical(&key), &key)
        .await?
    {
        return Err(ApiError::bad(
            "name",
            format!("crate '{name}' conflicts with the existing crate '{other}'"),
        ));
    }
    if let Some(pkg) = state.db.package_by_name(&target.id, &key).await? {
        if let Some(first) = pkg
            .metadata
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| *n != name)
        {
            return Err(ApiError::bad(
                "name",
                format!("crate '{name}' conflicts with the existing crate '{first}'"),
            ));
        }
        if state.db.version_by_name(&pkg.id, &vers).await?.is_some() {
            return Err(ApiError::bad(
                "vers",
                format!("crate version `{name}@{vers}` is already uploaded"),
            ));
        }
    }
    let cksum = staged.info.sha256.clone();
    let deps: Vec<Value> = meta
        .get("deps")
        .and_then(Value::as_array)
        .map(|d| d.iter().map(index_dep).collect())
        .unwrap_or_default();
    let mut line = json!({
        "name": name, "vers": vers, "deps": deps, "cksum": cksum,
        "features": meta.get("features").cloned().unwrap_or(json!({})),
        "yanked": false, "links": meta.get("links").cloned().unwrap_or(Value::Null), "v": 2,
    });
    if let Some(rv) = meta.get("rust_version").filter(|v| !v.is_null()) {
        line["rust_version"] = rv.clone();
    }
    let file = up
        .record(
            staged,
            FileSpec {
                package: &key,
                version: &vers,
                path: &path,
                name: &file_name,
                content_type: Some("application/x-tar"),
                metadata: json!({}),
            },
            uploaded,
        )
        .await?;
    let info = json!({"description": meta.get("description"), "license": meta.get("license"), "repository": meta.get("repository"), "keywords": meta.get("keywords")});
    state
        .db
        .set_version_metadata(
            &file.version_id,
            &json!({"index": line, "yanked": false, "info": info}),
        )
        .await?;
    let pkg = state
        .db
        .package_by_name(&target.id, &key)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("package vanished")))?;
    if pkg.metadata.get("owners").is_none() {
        state
            .db
            .set_package_metadata(&pkg.id, &json!({"owners": [publisher], "name": name}))
            .await?;
    }
    Ok(
        Json(json!({"warnings": {"invalid_categories": [], "invalid_badges": [], "other": []}}))
            .into_response(),
    )
}

async fn yank(
    state: &AppState,
    req: NativeRequest,
    name: &str,
    version: &str,
    yanked: bool,
) -> ApiResult<Response> {
    let target = Resolver { state }.write_target(&req.registry).await?;
    req.principal.check(&target, Need::Write)?;
    let key = name.to_ascii_lowercase();
    let pkg = state
        .db
        .package_by_name(&target.id, &key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("crate '{name}' not found")))?;
    let v = state
        .db
        .version_by_name(&pkg.id, version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("crate {name}@{version} not found")))?;
    // One field, atomically; the package's revision and modification time move with it, so the
    // index file's Last-Modified does.
    state
        .db
        .merge_version_metadata(&v.id, &json!({ "yanked": yanked }))
        .await?;
    Ok(Json(json!({"ok": true})).into_response())
}

async fn owners(state: &AppState, req: &NativeRequest, name: &str) -> ApiResult<Response> {
    let key = name.to_ascii_lowercase();
    for r in (Resolver { state }).read_chain(&req.registry).await? {
        if let Some(pkg) = state.db.package_by_name(&r.id, &key).await? {
            let users: Vec<Value> = pkg
                .metadata
                .get("owners")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, u)| json!({"id": i + 1, "login": u, "name": u}))
                .collect();
            return Ok(Json(json!({"users": users})).into_response());
        }
    }
    Err(ApiError::not_found(format!("crate '{name}' not found")))
}

async fn search(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let q = crate::http::query_pairs(req.query.as_deref());
    let text = crate::http::query_get(&q, "q")
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let per_page = crate::http::query_int(&q, "per_page")?
        .unwrap_or(10)
        .clamp(1, 100);
    // Through a group a crate several members have is listed and counted once.
    let (total, pkgs) = (Resolver { state })
        .search(&req.registry, &text, 0, per_page)
        .await?;
    let mut crates = Vec::new();
    for p in pkgs {
        let latest = p.latest_version.clone().unwrap_or_default();
        let description = match state.db.version_by_name(&p.id, &latest).await? {
            Some(v) => v
                .metadata
                .pointer("/info/description")
                .cloned()
                .unwrap_or(Value::Null),
            None => Value::Null,
        };
        let name = p.metadata.get("name").cloned().unwrap_or(json!(p.name));
        crates.push(json!({"name": name, "max_version": latest, "description": description}));
    }
    Ok(Json(json!({"crates": crates, "meta": {"total": total}})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_follow_cargo() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("serde_json"), "se/rd/serde_json");
        assert!(
            valid_name("serde_json")
                && valid_name("a-b")
                && !valid_name("1abc")
                && !valid_name("a b")
                && !valid_name("")
        );
        assert_eq!(canonical("Serde_Json"), canonical("serde-json"));
    }

    #[test]
    fn splits_publish_bodies() {
        let meta = br#"{"name":"x","vers":"1.0.0"}"#;
        let mut body = Vec::new();
        body.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        body.extend_from_slice(meta);
        body.extend_from_slice(&3u32.to_le_bytes());
        body.extend_from_slice(b"abc");
        let (m, c) = split_publish(Bytes::from(body.clone())).unwrap();
        assert_eq!((m["name"].as_str(), c.as_ref()), (Some("x"), &b"abc"[..]));
        body.pop();
        assert!(split_publish(Bytes::from(body)).is_err());
        assert!(split_publish(Bytes::from_static(b"\xff\xff\xff\xff{}")).is_err());
    }
}

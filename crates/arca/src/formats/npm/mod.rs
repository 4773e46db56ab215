//! npm (NPM registries): the registry protocol the npm CLI speaks.
//!
//! Layout under `<base>/pkg/<account>/<registry>/npm/`:
//! * `GET <name>`: the packument (abbreviated for `Accept: application/vnd.npm.install-v1+json`),
//!   `GET <name>/<version|tag>`: one version's manifest;
//! * `PUT <name>`: publish (packument with a base64 tarball in `_attachments`, decoded into a
//!   staged blob as it streams in; only the rest of the document is held in memory), or without
//!   attachments a metadata update (`npm deprecate`);
//! * `PUT <name>/-rev/<rev>`: update that drops versions (`npm unpublish <pkg>@<v>`),
//!   `DELETE <name>/-rev/<rev>`: unpublish the whole package, `DELETE <name>/-/<file>/-rev/<rev>`;
//! * `GET <name>/-/<file>.tgz`: tarballs;
//! * `-/package/<name>/dist-tags[/<tag>]`: `npm dist-tag ls/add/rm`;
//! * `GET -/whoami`, `PUT -/user/org.couchdb.user:<name>` (legacy login), `GET -/v1/search`.
//!
//! Scoped names arrive as `@scope%2fname` or `@scope/name`. Versions are immutable, whatever the
//! registry's re-upload setting: npm clients rely on that. Packuments are generated from indexed
//! queries (a package's versions and files) for the registry that was asked, so that tarball URLs
//! stay on the registry (or group) the client uses.

use crate::formats::setup::{Setup, SetupContext, inline, step};
use std::collections::BTreeMap;

use async_trait::async_trait;
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::json_stream::{Piece, SplitError, Splitter};
use super::upload::{Body as UploadBody, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver, native_root};
use crate::archive::{Limits, tar_gz_find};
use crate::auth::{Need, Principal, generate_token, hash_token};
use crate::blob::{ByteStream, StagedBlob};
use crate::doc_cache::{self as cache, Doc};
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry, rfc3339};
use crate::state::AppState;
use crate::store::artifacts::{FileRow, PackageRow};

mod group;
mod proxy;

use crate::proxy::documents::{CacheState, Fetched};

pub struct Npm;

const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";

/// npm package name rules (new packages): lowercase, URL-safe, at most 214 characters.
pub(crate) fn valid_name(name: &str) -> bool {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(?:@[a-z0-9~-][a-z0-9._~-]*/)?[a-z0-9~-][a-z0-9._~-]*$")
            .expect("static regex")
    });
    name.len() <= 214 && RE.is_match(name)
}

/// `@scope/name` → `name`; the tarball file is `<basename>-<version>.tgz`.
pub(crate) fn basename(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Splits decoded path segments into a package name (one or two segments) and the rest.
fn split_name(segs: &[String]) -> Option<(String, &[String])> {
    let first = segs.first()?;
    if first.starts_with('@') && !first.contains('/') {
        let second = segs.get(1)?;
        Some((format!("{first}/{second}"), &segs[2..]))
    } else {
        Some((first.clone(), &segs[1..]))
    }
}

/// npm reads `error` from error bodies and shows it to the user.
fn npm_error(e: ApiError) -> Response {
    let status = e.status();
    let message = e.public_message();
    let mut resp = (status, Json(json!({"error": message, "reason": message, "code": status.as_u16().to_string(), "message": message}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"arca\""),
        );
    }
    resp
}

#[async_trait]
impl Format for Npm {
    fn package_type(&self) -> PackageType {
        PackageType::Npm
    }

    fn error_response(&self, e: ApiError) -> Response {
        npm_error(e)
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext { root, art, ver, .. } = c;
        Setup {
            title: "npm Client Setup",
            sections: vec![
                inline(
                    "Configure npm",
                    vec![step(
                        "Registry and token (written to ~/.npmrc)",
                        &[
                            ("", format!("npm config set registry {root}/")),
                            (
                                "",
                                format!(
                                    "npm config set //{}/:_authToken=<TOKEN>",
                                    c.root_without_scheme()
                                ),
                            ),
                        ],
                    )],
                ),
                inline(
                    "Publish",
                    vec![step(
                        "Publish (in the package's directory)",
                        &[("", "npm publish".to_string())],
                    )],
                ),
                inline(
                    "Install",
                    vec![step("Install", &[("", format!("npm install {art}@{ver}"))])],
                ),
            ],
        }
    }

    fn pull_command(&self, _c: &SetupContext, name: &str, version: &str) -> String {
        format!("npm install {name}@{version}")
    }

    fn authenticates_itself(&self, method: &Method, path: &str) -> bool {
        *method == Method::PUT && path.starts_with("-/user/org.couchdb.user:")
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        route(state, req).await
    }
}

async fn route(state: &AppState, req: NativeRequest) -> ApiResult<Response> {
    let segs = req.segments();
    let method = req.method.clone();
    if segs.first().map(String::as_str) == Some("-") {
        let rest: Vec<&str> = segs[1..].iter().map(String::as_str).collect();
        return match (&method, rest.as_slice()) {
            (&Method::GET, ["whoami"]) => match req.principal.user_name() {
                Some(u) => Ok(Json(json!({"username": u})).into_response()),
                None => Err(ApiError::Unauthenticated("not logged in".into())),
            },
            (&Method::PUT, ["user", user]) => login(state, req, user).await,
            (&Method::GET, ["v1", "search"]) => search(state, &req).await,
            (_, ["package", ..]) => {
                let (name, rest) = split_name(&segs[2..])
                    .ok_or_else(|| ApiError::not_found("missing package name"))?;
                let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
                dist_tags(state, req, &name, &rest).await
            }
            _ => Err(ApiError::not_found("no such npm endpoint")),
        };
    }
    let (name, rest) =
        split_name(&segs).ok_or_else(|| ApiError::not_found("missing package name"))?;
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (&method, rest.as_slice()) {
        (&Method::GET, []) => packument_response(state, &req, &name).await,
        (&Method::GET, [spec]) => version_manifest(state, &req, &name, spec).await,
        (&Method::PUT, []) => publish(state, req, &name, false).await,
        (&Method::PUT, ["-rev", _]) => publish(state, req, &name, true).await,
        (&Method::DELETE, ["-rev", _]) => unpublish_all(state, req, &name).await,
        (&Method::GET | &Method::HEAD, ["-", file]) => tarball(state, &req, &name, file).await,
        (&Method::DELETE, ["-", file, "-rev", _]) => delete_tarball(state, req, &name, file).await,
        _ => Err(ApiError::not_found("no such npm endpoint")),
    }
}

fn integrity(sha512_hex: &str) -> String {
    let bytes = hex::decode(sha512_hex).unwrap_or_default();
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

// ---------------------------------------------------------------------------------------------
// Reading: packuments, manifests, tarballs.

/// One version: its manifest and its tarball, stored here or known from an upstream's
/// packument (`file` is `None`: the manifest's own `dist` stands, only its `tarball` URL is
/// rewritten to Arca's).
struct StoredVersion {
    manifest: Value,
    file: Option<FileRow>,
    created_at: i64,
    /// The upstream's `time` entry, relayed as it was.
    time: Option<Value>,
}

/// Everything known about a package along the read chain of `reg`.
struct Packument {
    dist_tags: Map<String, Value>,
    /// Each member's own dist-tags, in member order: merged by [`group::merge_tags`].
    member_tags: Vec<Map<String, Value>>,
    versions: BTreeMap<String, StoredVersion>,
    meta: Value,
    created: i64,
    modified: i64,
}

async fn load(state: &AppState, reg: &Registry, name: &str) -> ApiResult<Option<Packument>> {
    let chain = (Resolver { state }).packages(reg, name).await?;
    let upstream = proxy::packuments(state, reg, name, false).await?;
    let stored = crate::proxy::documents::without_answered_caches(&chain, &upstream);
    Ok(merge_upstream(load_from(state, &stored).await?, &upstream))
}

/// Builds the packument from the package rows found along the read chain (first one wins).
async fn load_from(
    state: &AppState,
    chain: &[(Registry, PackageRow)],
) -> ApiResult<Option<Packument>> {
    let mut out: Option<Packument> = None;
    for (_, pkg) in chain {
        let files: BTreeMap<String, FileRow> =
            state.db.package_files(&pkg.id).await?.into_iter().collect();
        let p = out.get_or_insert_with(|| Packument {
            dist_tags: Map::new(),
            member_tags: Vec::new(),
            versions: BTreeMap::new(),
            meta: pkg.metadata.clone(),
            created: pkg.created_at,
            modified: pkg.updated_at,
        });
        p.member_tags.push(stored_dist_tags(&pkg.metadata));
        p.modified = p.modified.max(pkg.updated_at);
        for v in state.db.all_versions(&pkg.id).await? {
            if let Some(file) = files.get(&v.version) {
                p.versions
                    .entry(v.version.clone())
                    .or_insert(StoredVersion {
                        manifest: v.metadata,
                        file: Some(file.clone()),
                        created_at: v.created_at,
                        time: None,
                    });
            }
        }
    }
    Ok(out)
}

/// Adds the versions and tags of upstream packuments (in order) to what the stored packages
/// hold (a version already known stays as it is: the first member wins), then merges the
/// members' dist-tags by npm's group rule ([`group::merge_tags`]).
fn merge_upstream(out: Option<Packument>, upstream: &[(Registry, Fetched)]) -> Option<Packument> {
    let mut out = out;
    for (_, doc) in upstream {
        let Ok(v) = serde_json::from_slice::<Value>(&doc.body) else {
            continue;
        };
        let p = out.get_or_insert_with(|| Packument {
            dist_tags: Map::new(),
            member_tags: Vec::new(),
            versions: BTreeMap::new(),
            meta: json!({"readme": v.get("readme").cloned().unwrap_or(json!(""))}),
            created: 0,
            modified: 0,
        });
        for (ver, manifest) in v["versions"].as_object().into_iter().flatten() {
            p.versions.entry(ver.clone()).or_insert(StoredVersion {
                manifest: manifest.clone(),
                file: None,
                created_at: 0,
                time: v.pointer(&format!("/time/{ver}")).cloned(),
            });
        }
        p.member_tags
            .push(v["dist-tags"].as_object().cloned().unwrap_or_default());
    }
    let mut out = out.filter(|p| !p.versions.is_empty());
    if let Some(p) = out.as_mut() {
        p.dist_tags = group::merge_tags(&p.member_tags, |v| p.versions.contains_key(v));
        normalize_latest(p);
    }
    out
}

/// Gives a package whose `latest` tag is missing (published only under another tag, as with
/// `publishConfig.tag`) or names a version that is gone the highest version as `latest`, the
/// highest release when there is one, as the public registry and verdaccio do: `npm view` prints
/// nothing for a package without `latest`.
fn normalize_latest(p: &mut Packument) {
    if p.dist_tags
        .get("latest")
        .and_then(Value::as_str)
        .is_some_and(|v| p.versions.contains_key(v))
    {
        return;
    }
    let parsed: Vec<(semver::Version, &String)> = p
        .versions
        .keys()
        .filter_map(|v| semver::Version::parse(v).ok().map(|s| (s, v)))
        .collect();
    let best = parsed
        .iter()
        .filter(|(s, _)| s.pre.is_empty())
        .max_by(|a, b| a.0.cmp(&b.0))
        .or_else(|| parsed.iter().max_by(|a, b| a.0.cmp(&b.0)))
        .map(|(_, v)| (*v).clone());
    if let Some(v) = best {
        p.dist_tags.insert("latest".into(), json!(v));
    }
}

fn render_version(
    state: &AppState,
    reg: &Registry,
    name: &str,
    v: &str,
    sv: &StoredVersion,
) -> Value {
    let mut m = sv.manifest.clone();
    if !m.is_object() {
        m = json!({});
    }
    m["name"] = json!(name);
    m["version"] = json!(v);
    m["_id"] = json!(format!("{name}@{v}"));
    let mut dist = m
        .get("dist")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    dist["tarball"] = json!(format!(
        "{}/{name}/-/{}-{v}.tgz",
        native_root(state, reg),
        basename(name)
    ));
    if let Some(file) = &sv.file {
        dist["shasum"] = json!(file.sha1);
        dist["integrity"] = json!(integrity(&file.sha512));
    }
    m["dist"] = dist;
    m
}

fn rev(p: &Packument) -> String {
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    for (v, sv) in &p.versions {
        sha2::Digest::update(&mut h, v.as_bytes());
        let content = match &sv.file {
            Some(f) => f.sha256.clone(),
            None => sv
                .manifest
                .pointer("/dist/integrity")
                .map(Value::to_string)
                .unwrap_or_default(),
        };
        sha2::Digest::update(&mut h, content.as_bytes());
        sha2::Digest::update(
            &mut h,
            sv.manifest
                .get("deprecated")
                .map(|d| d.to_string())
                .unwrap_or_default()
                .as_bytes(),
        );
    }
    sha2::Digest::update(
        &mut h,
        Value::Object(p.dist_tags.clone()).to_string().as_bytes(),
    );
    format!(
        "{}-{}",
        p.versions.len(),
        hex::encode(&sha2::Digest::finalize(h)[..8])
    )
}

fn full_packument(state: &AppState, reg: &Registry, name: &str, p: &Packument) -> Value {
    let mut versions = Map::new();
    let mut times = Map::new();
    times.insert("created".into(), json!(rfc3339(p.created)));
    times.insert("modified".into(), json!(rfc3339(p.modified)));
    for (v, sv) in &p.versions {
        versions.insert(v.clone(), render_version(state, reg, name, v, sv));
        let time = sv
            .time
            .clone()
            .unwrap_or_else(|| json!(rfc3339(sv.created_at)));
        times.insert(v.clone(), time);
    }
    let latest = p
        .dist_tags
        .get("latest")
        .and_then(Value::as_str)
        .and_then(|l| p.versions.get(l));
    let description = latest
        .and_then(|l| l.manifest.get("description").cloned())
        .unwrap_or(json!(""));
    json!({
        "_id": name, "_rev": rev(p), "name": name, "description": description,
        "dist-tags": p.dist_tags, "versions": versions, "time": times,
        "readme": p.meta.get("readme").cloned().unwrap_or(json!("")),
    })
}

fn abbreviated_packument(state: &AppState, reg: &Registry, name: &str, p: &Packument) -> Value {
    const KEEP: [&str; 15] = [
        "name",
        "version",
        "dependencies",
        "optionalDependencies",
        "devDependencies",
        "bundleDependencies",
        "peerDependencies",
        "peerDependenciesMeta",
        "bin",
        "directories",
        "engines",
        "dist",
        "deprecated",
        "os",
        "cpu",
    ];
    let mut versions = Map::new();
    for (v, sv) in &p.versions {
        let full = render_version(state, reg, name, v, sv);
        let mut m = Map::new();
        for k in KEEP {
            if let Some(x) = full.get(k) {
                m.insert(k.into(), x.clone());
            }
        }
        if full.pointer("/scripts/install").is_some()
            || full.pointer("/scripts/preinstall").is_some()
            || full.pointer("/scripts/postinstall").is_some()
        {
            m.insert("hasInstallScript".into(), json!(true));
        }
        versions.insert(v.clone(), Value::Object(m));
    }
    json!({"name": name, "modified": rfc3339(p.modified), "dist-tags": p.dist_tags, "versions": versions})
}

async fn packument_response(
    state: &AppState,
    req: &NativeRequest,
    name: &str,
) -> ApiResult<Response> {
    let abbreviated = req
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(ABBREVIATED));
    let chain = (Resolver { state }).packages(&req.registry, name).await?;
    // Upstream packuments of the proxies in the chain: their bodies' digests join the key.
    let upstream = proxy::packuments(state, &req.registry, name, false).await?;
    let upstream_key: String = upstream.iter().map(|(_, d)| d.sha256.as_str()).collect();
    let stale = upstream.iter().any(|(_, d)| d.state == CacheState::Stale);
    let key = format!(
        "npm|{}|{abbreviated}|{name}|{upstream_key}",
        req.registry.id
    );
    let pkgs: Vec<PackageRow> = chain.iter().map(|(_, p)| p.clone()).collect();
    let stamp = cache::stamp(&pkgs);
    let doc = state
        .docs
        .get_or_build(key, stamp, || async {
            let stored = crate::proxy::documents::without_answered_caches(&chain, &upstream);
            let p = merge_upstream(load_from(state, &stored).await?, &upstream)
                .ok_or_else(|| ApiError::not_found(format!("package '{name}' not found")))?;
            Ok::<_, ApiError>(if abbreviated {
                Doc::new(
                    abbreviated_packument(state, &req.registry, name, &p).to_string(),
                    ABBREVIATED,
                )
            } else {
                Doc::new(
                    full_packument(state, &req.registry, name, &p).to_string(),
                    "application/json",
                )
            })
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

async fn version_manifest(
    state: &AppState,
    req: &NativeRequest,
    name: &str,
    spec: &str,
) -> ApiResult<Response> {
    let p = load(state, &req.registry, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("package '{name}' not found")))?;
    let version = match p.dist_tags.get(spec).and_then(Value::as_str) {
        Some(v) => v.to_string(),
        None => spec.to_string(),
    };
    let sv = p
        .versions
        .get(&version)
        .ok_or_else(|| ApiError::not_found(format!("version '{spec}' of '{name}' not found")))?;
    Ok(Json(render_version(state, &req.registry, name, &version, sv)).into_response())
}

async fn tarball(
    state: &AppState,
    req: &NativeRequest,
    name: &str,
    file: &str,
) -> ApiResult<Response> {
    let path = format!("{name}/-/{file}");
    let resolver = Resolver { state };
    // The download agrees with the packument: a name a hosted member owns is never served from
    // a proxy member (dependency-confusion guard).
    resolver.guard(&req.registry, name).await?;
    let got = match resolver.find_file(&req.registry, &path).await? {
        Some((_, f)) => crate::proxy::files::Got::Stored(f),
        None => proxy::tarball(state, &req.registry, name, file)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("tarball '{file}' of '{name}' not found"))
            })?,
    };
    got.respond(state, &req.method, &req.headers).await
}

// ---------------------------------------------------------------------------------------------
// Writing: publish, deprecate, unpublish, dist-tags.

async fn read_json(req: NativeRequest, limit: usize) -> ApiResult<(Principal, Registry, Value)> {
    let NativeRequest {
        principal,
        registry,
        body,
        ..
    } = req;
    let body = body.into_inner().ok().flatten().unwrap_or_default();
    let bytes = crate::http::read_body(body, limit).await?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad("body", format!("malformed JSON: {e}")))?;
    Ok((principal, registry, v))
}

/// Reads a publish document, decoding its attachment's base64 data into a staged blob as it
/// streams in; the rest of the document (with `"data": ""`) is capped at the in-memory limit.
async fn read_publish(
    up: &Upload<'_>,
    body: axum::body::Body,
) -> ApiResult<(Value, Option<StagedBlob>)> {
    use futures::{SinkExt, StreamExt, TryStreamExt};
    let mut stream: ByteStream = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
    let mut splitter = Splitter::new(&["_attachments", "*", "data"], up.parsed_limit());
    let mut sink = None;
    let mut staged = None;
    let finish = |h: tokio::task::JoinHandle<ApiResult<StagedBlob>>| async move {
        h.await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("staging the tarball: {e}")))?
    };
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad("body", format!("reading the request body: {e}")))?;
        let pieces = match splitter.feed(&chunk) {
            Ok(p) => p,
            Err(SplitError::TooLarge(n)) => {
                crate::blob::drain(stream).await;
                return Err(ApiError::PayloadTooLarge(format!(
                    "the publish document without its tarball is larger than {n} bytes"
                )));
            }
            Err(SplitError::Malformed(m)) => return Err(ApiError::bad("_attachments", m)),
        };
        for piece in pieces {
            match piece {
                Piece::Start if sink.is_some() || staged.is_some() => {
                    return Err(ApiError::bad(
                        "_attachments",
                        "a publish carries exactly one tarball",
                    ));
                }
                Piece::Start => sink = Some(up.stage_piecewise()),
                Piece::Data(d) => {
                    if let Some((tx, _)) = sink.as_mut()
                        && tx.send(Ok(d)).await.is_err()
                        && let Some((_, h)) = sink.take()
                    {
                        // The blob store stopped reading: its result says why.
                        finish(h).await?;
                        return Err(ApiError::Internal(anyhow::anyhow!(
                            "staging the tarball stopped early"
                        )));
                    }
                }
                Piece::End => {
                    if let Some((tx, h)) = sink.take() {
                        drop(tx);
                        staged = Some(finish(h).await?);
                    }
                }
            }
        }
    }
    let doc = splitter.finish().map_err(|e| match e {
        SplitError::Malformed(m) => ApiError::bad("_attachments", m),
        SplitError::TooLarge(n) => ApiError::PayloadTooLarge(format!("larger than {n} bytes")),
    })?;
    let v: Value = serde_json::from_slice(&doc)
        .map_err(|e| ApiError::bad("body", format!("malformed JSON: {e}")))?;
    Ok((v, staged))
}

async fn publish(
    state: &AppState,
    req: NativeRequest,
    name: &str,
    may_remove: bool,
) -> ApiResult<Response> {
    // The tarball travels base64-encoded inside the JSON document: it is decoded into a staged
    // blob as it arrives, and only the rest of the document is held in memory.
    let up = Upload::begin(state, &req, UploadBody::ParsedAround).await?;
    let (body, staged) = read_publish(&up, req.take_body()).await?;
    let (principal, target) = (req.principal.clone(), up.target.clone());
    if !valid_name(name) {
        return Err(ApiError::bad(
            "name",
            format!("invalid package name '{name}'"),
        ));
    }
    if body
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n != name)
    {
        return Err(ApiError::bad(
            "name",
            format!(
                "the document names '{}', not '{name}'",
                body["name"].as_str().unwrap_or("")
            ),
        ));
    }
    let (versions, attachments) = publish_parts(&body);
    if attachments.is_empty() {
        return update_metadata(
            state, &principal, &target, name, &body, &versions, may_remove,
        )
        .await;
    }
    if versions.len() != 1 {
        return Err(ApiError::bad(
            "versions",
            "a publish carries exactly one new version",
        ));
    }
    let (version, manifest) = versions
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad("versions", "no version"))?;
    let parsed = semver::Version::parse(&version).map_err(|e| {
        ApiError::bad(
            "version",
            format!("'{version}' is not a valid semver version: {e}"),
        )
    })?;
    if parsed.to_string() != version {
        return Err(ApiError::bad(
            "version",
            format!("'{version}' is not in normal form ('{parsed}')"),
        ));
    }
    if manifest.get("name").and_then(Value::as_str) != Some(name)
        || manifest.get("version").and_then(Value::as_str) != Some(version.as_str())
    {
        return Err(ApiError::bad(
            "versions",
            format!("the manifest of {version} does not name {name}@{version}"),
        ));
    }
    let published = || {
        ApiError::forbidden(format!(
            "You cannot publish over the previously published versions: {version}."
        ))
    };
    let file_name = format!("{}-{version}.tgz", basename(name));
    let path = format!("{name}/-/{file_name}");
    up.check_new(&format!("{name}:{version}"), &path, published)
        .await?;
    if let Some(pkg) = state.db.package_by_name(&target.id, name).await?
        && state.db.version_by_name(&pkg.id, &version).await?.is_some()
    {
        return Err(published());
    }
    let attachment = attachments
        .iter()
        .find(|(k, _)| k.ends_with(&file_name) || attachments.len() == 1)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| ApiError::bad("_attachments", format!("no attachment '{file_name}'")))?;
    let staged = staged.ok_or_else(|| ApiError::bad("_attachments", "attachment has no data"))?;
    if let Some(len) = attachment.get("length").and_then(Value::as_u64)
        && len != staged.info.size
    {
        return Err(ApiError::bad(
            "_attachments",
            format!(
                "attachment length {len} does not match its {} bytes",
                staged.info.size
            ),
        ));
    }
    // The tarball's own package.json must agree with the document.
    let tgz = staged.path().to_path_buf();
    let pj = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&tgz).map_err(|e| format!("reading the tarball: {e}"))?;
        tar_gz_find(
            std::io::BufReader::new(file),
            |p| p.components().count() == 2 && p.ends_with("package.json"),
            Limits::default(),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("tarball reader panicked: {e}")))?
    .map_err(|e| ApiError::bad("_attachments", format!("tarball: {e}")))?
    .ok_or_else(|| ApiError::bad("_attachments", "the tarball has no package/package.json"))?;
    let pj: Value = serde_json::from_slice(&pj.1)
        .map_err(|e| ApiError::bad("_attachments", format!("package.json in the tarball: {e}")))?;
    if pj.get("name").and_then(Value::as_str) != Some(name)
        || pj.get("version").and_then(Value::as_str) != Some(version.as_str())
    {
        return Err(ApiError::bad(
            "_attachments",
            format!(
                "the tarball's package.json is {}@{}, not {name}@{version}",
                pj["name"].as_str().unwrap_or("?"),
                pj["version"].as_str().unwrap_or("?")
            ),
        ));
    }
    if let Some(shasum) = manifest.pointer("/dist/shasum").and_then(Value::as_str)
        && !shasum.eq_ignore_ascii_case(&staged.info.sha1)
    {
        return Err(ApiError::bad(
            "dist.shasum",
            "dist.shasum does not match the tarball",
        ));
    }
    if let Some(integ) = manifest.pointer("/dist/integrity").and_then(Value::as_str)
        && integ.starts_with("sha512-")
        && integ != integrity(&staged.info.sha512)
    {
        return Err(ApiError::bad(
            "dist.integrity",
            "dist.integrity does not match the tarball",
        ));
    }
    let mut stored = manifest.clone();
    if let Some(o) = stored.as_object_mut() {
        o.remove("_id");
        o.remove("readme");
        if let Some(d) = o.get_mut("dist").and_then(Value::as_object_mut) {
            d.remove("tarball");
        }
    }
    let file = up
        .record(
            staged,
            FileSpec {
                package: name,
                version: &version,
                path: &path,
                name: &file_name,
                content_type: Some("application/octet-stream"),
                metadata: json!({}),
            },
            published,
        )
        .await?;
    state
        .db
        .set_version_metadata(&file.version_id, &stored)
        .await?;
    // Package metadata: dist-tags from the document (npm sends the tag it publishes under).
    let pkg = state
        .db
        .package_by_name(&target.id, name)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("package vanished")))?;
    // One atomic change: parallel publishes each add their tags without undoing the others'.
    let readme = body
        .get("readme")
        .and_then(Value::as_str)
        .map(|r| r.chars().take(64 * 1024).collect::<String>());
    state
        .db
        .update_package_metadata(&pkg.id, |meta| {
            let mut tags = stored_dist_tags(meta);
            match body.get("dist-tags").and_then(Value::as_object) {
                Some(t) if !t.is_empty() => {
                    for (k, v) in t {
                        tags.insert(k.clone(), v.clone());
                    }
                }
                _ => {
                    tags.insert("latest".into(), json!(version));
                }
            }
            meta["dist-tags"] = Value::Object(tags);
            if let Some(readme) = readme {
                meta["readme"] = json!(readme);
            }
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"ok": true, "id": name, "success": true})),
    )
        .into_response())
}

/// The `versions` and `_attachments` objects of a publish document (empty when absent).
pub(crate) fn publish_parts(body: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let object = |key: &str| {
        body.get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    (object("versions"), object("_attachments"))
}

/// A PUT without attachments: deprecations and dist-tags; with `may_remove`, versions missing
/// from the document are unpublished (to the trash can).
async fn update_metadata(
    state: &AppState,
    principal: &Principal,
    target: &Registry,
    name: &str,
    body: &Value,
    versions: &Map<String, Value>,
    may_remove: bool,
) -> ApiResult<Response> {
    let pkg = state
        .db
        .package_by_name(&target.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("package '{name}' not found")))?;
    let stored = state.db.all_versions(&pkg.id).await?;
    let removed: Vec<String> = stored
        .iter()
        .filter(|v| !versions.contains_key(&v.version))
        .map(|v| v.version.clone())
        .collect();
    if may_remove && !removed.is_empty() {
        principal.check(target, Need::Delete)?;
        for v in &removed {
            crate::service::trash_versions(state, target, name, Some(v)).await?;
        }
    }
    for v in &stored {
        let Some(doc) = versions.get(&v.version) else {
            continue;
        };
        let deprecated = doc
            .get("deprecated")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty());
        if v.metadata.get("deprecated").and_then(Value::as_str) == deprecated {
            continue;
        }
        state
            .db
            .update_version_metadata(&v.id, |m| {
                match deprecated {
                    Some(msg) => m["deprecated"] = json!(msg),
                    None => {
                        if let Some(o) = m.as_object_mut() {
                            o.remove("deprecated");
                        }
                    }
                }
                Ok::<_, ApiError>(())
            })
            .await?;
    }
    if let Some(pkg) = state.db.package_by_name(&target.id, name).await?
        && let Some(tags) = body.get("dist-tags").and_then(Value::as_object)
    {
        let live: std::collections::HashSet<String> = state
            .db
            .all_versions(&pkg.id)
            .await?
            .into_iter()
            .map(|v| v.version)
            .collect();
        let tags: Map<String, Value> = tags
            .iter()
            .filter(|(_, v)| v.as_str().is_some_and(|v| live.contains(v)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        state
            .db
            .update_package_metadata(&pkg.id, |meta| {
                meta["dist-tags"] = Value::Object(tags);
                Ok::<_, ApiError>(())
            })
            .await?;
    }
    Ok(Json(json!({"ok": true, "id": name})).into_response())
}

async fn unpublish_all(state: &AppState, req: NativeRequest, name: &str) -> ApiResult<Response> {
    let target = Resolver { state }.write_target(&req.registry).await?;
    req.principal.check(&target, Need::Delete)?;
    crate::service::trash_versions(state, &target, name, None).await?;
    Ok(Json(json!({"ok": true})).into_response())
}

async fn delete_tarball(
    state: &AppState,
    req: NativeRequest,
    name: &str,
    file: &str,
) -> ApiResult<Response> {
    let target = Resolver { state }.write_target(&req.registry).await?;
    req.principal.check(&target, Need::Delete)?;
    // npm removes the version from the packument first (PUT .../-rev), which already moved it to
    // the trash can; a tarball still present belongs to a version being removed now.
    if let Some(f) = state
        .db
        .file_by_path(&target.id, &format!("{name}/-/{file}"))
        .await?
    {
        let version = file
            .strip_prefix(&format!("{}-", basename(name)))
            .and_then(|v| v.strip_suffix(".tgz"))
            .unwrap_or("");
        if state.db.package_by_name(&target.id, name).await?.is_some() && !version.is_empty() {
            crate::service::trash_versions(state, &target, name, Some(version)).await?;
        } else {
            state.db.delete_file(&f).await?;
        }
    }
    Ok(Json(json!({"ok": true})).into_response())
}

async fn dist_tags(
    state: &AppState,
    req: NativeRequest,
    name: &str,
    rest: &[&str],
) -> ApiResult<Response> {
    match (&req.method, rest) {
        (&Method::GET, ["dist-tags"]) => {
            let p = load(state, &req.registry, name)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("package '{name}' not found")))?;
            Ok(Json(Value::Object(p.dist_tags)).into_response())
        }
        (&Method::PUT | &Method::POST, ["dist-tags", tag]) => {
            set_tag(state, req, name, tag, false).await
        }
        (&Method::DELETE, ["dist-tags", tag]) => set_tag(state, req, name, tag, true).await,
        _ => Err(ApiError::not_found("no such dist-tags endpoint")),
    }
}

async fn set_tag(
    state: &AppState,
    req: NativeRequest,
    name: &str,
    tag: &str,
    delete: bool,
) -> ApiResult<Response> {
    if semver::Version::parse(tag).is_ok() {
        return Err(ApiError::bad(
            "tag",
            format!("'{tag}' looks like a version and cannot be a dist-tag"),
        ));
    }
    let (principal, registry, body) = if delete {
        let NativeRequest {
            principal,
            registry,
            ..
        } = req;
        (principal, registry, Value::Null)
    } else {
        read_json(req, 4096).await?
    };
    let target = Resolver { state }.write_target(&registry).await?;
    principal.check(&target, Need::Write)?;
    let pkg = state
        .db
        .package_by_name(&target.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("package '{name}' not found")))?;
    let version = if delete {
        None
    } else {
        let version = body
            .as_str()
            .ok_or_else(|| ApiError::bad("body", "expected the version as a JSON string"))?;
        if state.db.version_by_name(&pkg.id, version).await?.is_none() {
            return Err(ApiError::not_found(format!(
                "version '{version}' of '{name}' not found"
            )));
        }
        Some(version)
    };
    let tags = state
        .db
        .update_package_metadata(&pkg.id, |meta| {
            let mut tags = stored_dist_tags(meta);
            match version {
                Some(v) => {
                    tags.insert(tag.to_string(), json!(v));
                }
                None if tag == "latest" => {
                    return Err(ApiError::bad("tag", "the 'latest' tag cannot be removed"));
                }
                None => {
                    tags.remove(tag).ok_or_else(|| {
                        ApiError::not_found(format!("no dist-tag '{tag}' on '{name}'"))
                    })?;
                }
            }
            meta["dist-tags"] = Value::Object(tags.clone());
            Ok(tags)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"ok": true, "dist-tags": tags})),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Users and search.

/// Legacy `npm login` / `npm adduser`: checks the password and answers with a new API token.
async fn login(state: &AppState, req: NativeRequest, user: &str) -> ApiResult<Response> {
    let name = user
        .strip_prefix("org.couchdb.user:")
        .ok_or_else(|| ApiError::not_found("no such user endpoint"))?
        .to_string();
    let mut headers = HeaderMap::new();
    let (_, _, body) = read_json(req, 64 * 1024).await?;
    let password = body
        .get("password")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("password", "password is required"))?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {basic}"))
            .map_err(|_| ApiError::bad("name", "invalid user name"))?,
    );
    let principal = state.principal(&headers).await?;
    let Principal::User { user, .. } = principal else {
        return Err(ApiError::Unauthenticated("invalid credentials".into()));
    };
    if user.name != name || user.password_hash.is_none() {
        // A token used as the password is not a login.
        return Err(ApiError::Unauthenticated(
            "invalid user name or password".into(),
        ));
    }
    let token = generate_token();
    state
        .db
        .insert_token(&user.id, "npm login", &hash_token(&token))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"ok": true, "id": format!("org.couchdb.user:{name}"), "token": token})),
    )
        .into_response())
}

async fn search(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let q = crate::http::query_pairs(req.query.as_deref());
    let text = crate::http::query_get(&q, "text")
        .unwrap_or("")
        .trim()
        .to_string();
    let size = crate::http::query_int(&q, "size")?
        .unwrap_or(20)
        .clamp(1, 250);
    let from = crate::http::query_int(&q, "from")?.unwrap_or(0);
    // Through a group a name several members have is listed and counted once.
    let (total, pkgs) = (Resolver { state })
        .search(&req.registry, &text, from, size)
        .await?;
    let mut objects = Vec::new();
    for p in pkgs {
        let latest = p
            .metadata
            .pointer("/dist-tags/latest")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(p.latest_version.clone())
            .unwrap_or_default();
        let manifest = match state.db.version_by_name(&p.id, &latest).await? {
            Some(v) => v.metadata,
            None => json!({}),
        };
        objects.push(json!({
            "package": {
                "name": p.name, "scope": if p.name.starts_with('@') { p.name[1..].split('/').next().unwrap_or("unscoped") } else { "unscoped" },
                "version": latest, "description": manifest.get("description").cloned().unwrap_or(json!("")),
                "keywords": manifest.get("keywords").cloned().unwrap_or(json!([])), "date": rfc3339(p.updated_at),
                "links": {}, "publisher": {}, "maintainers": [],
            },
            "flags": {}, "score": {"final": 1.0, "detail": {"quality": 1.0, "popularity": 1.0, "maintenance": 1.0}}, "searchScore": 1.0,
        }));
    }
    Ok(
        Json(json!({"objects": objects, "total": total, "time": rfc3339(crate::model::now_ms())}))
            .into_response(),
    )
}

/// The `dist-tags` of a package's stored attributes (empty when there are none).
fn stored_dist_tags(meta: &Value) -> Map<String, Value> {
    meta.get("dist-tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert!(valid_name("lodash") && valid_name("@acme/lib-b") && valid_name("a.b_c~d"));
        assert!(
            !valid_name("Upper")
                && !valid_name(".hidden")
                && !valid_name("@scope/")
                && !valid_name("a/b")
                && !valid_name(&"a".repeat(215))
        );
        let segs: Vec<String> = ["@acme", "lib", "-", "lib-1.0.0.tgz"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (n, rest) = split_name(&segs).unwrap();
        assert_eq!((n.as_str(), rest.len()), ("@acme/lib", 2));
        let segs: Vec<String> = ["@acme/lib", "1.0.0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(split_name(&segs).unwrap().0, "@acme/lib");
        assert_eq!(basename("@acme/lib"), "lib");
        assert_eq!(
            integrity(&"00".repeat(64)),
            format!("sha512-{}", "A".repeat(86) + "==")
        );
    }
}

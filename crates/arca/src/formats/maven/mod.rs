//! Maven (MAVEN registries): the Maven 2 repository layout under
//! `<base>/pkg/<account>/<registry>/maven/<group path>/<artifactId>/<version>/<file>`.
//!
//! * Files are stored as uploaded; `.md5`, `.sha1`, `.sha256` and `.sha512` of every file are
//!   computed by Arca. An uploaded checksum is compared with the stored file (a mismatch is a 400)
//!   and not stored; `.asc` signatures are stored like any file.
//! * `maven-metadata.xml` (artifact level, and version level for SNAPSHOTs) is generated from the
//!   stored versions and files on every read (cached, revalidated per package revision); uploads of
//!   it are accepted and ignored, never trusted. The group level (`<group path>/maven-metadata.xml`,
//!   the `<plugins>` list Maven reads to resolve a plugin prefix such as `mvn jetty:run`) is
//!   generated from the deployed plugin jars: their `META-INF/maven/plugin.xml` names the prefix.
//!   A path that is both an artifact and a group answers with the artifact's metadata.
//! * Directory URLs (ending in `/`) answer an HTML listing, as other Maven repositories do.
//! * SNAPSHOT files may always be redeployed; release files only when the registry's re-upload
//!   setting is OVERRIDE (otherwise 409, which mvn reports).
//! * Packages are `groupId:artifactId`; allowed/blocked patterns match `groupId:artifactId:version`.

use crate::formats::setup::{Setup, SetupContext, inline, step, write_file};
use async_trait::async_trait;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::upload::{Body, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver};
use crate::auth::Need;
use crate::doc_cache::{self as cache, Doc};
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry, Reupload};
use crate::state::AppState;
use crate::store::artifacts::{FileRow, PackageRow};

pub struct Maven;

const METADATA: &str = "maven-metadata.xml";

mod proxy;
const CHECKSUMS: [&str; 4] = ["md5", "sha1", "sha256", "sha512"];
const MAX_POM: usize = 4 << 20;

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+~".contains(c))
}

fn is_snapshot(version: &str) -> bool {
    version.ends_with("-SNAPSHOT")
}

/// Splits `file.ext.sha1` into (`file.ext`, `sha1`).
fn checksum_of(filename: &str) -> Option<(&str, &'static str)> {
    CHECKSUMS.iter().find_map(|alg| {
        filename
            .strip_suffix(&format!(".{alg}"))
            .map(|base| (base, *alg))
    })
}

fn digest_of(file: &FileRow, alg: &str) -> String {
    match alg {
        "md5" => file.md5.clone(),
        "sha1" => file.sha1.clone(),
        "sha256" => file.sha256.clone(),
        _ => file.sha512.clone(),
    }
}

fn digest_bytes(data: &[u8], alg: &str) -> String {
    use sha2::Digest;
    match alg {
        "md5" => hex::encode(md5::Md5::digest(data)),
        "sha1" => hex::encode(sha1::Sha1::digest(data)),
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        _ => hex::encode(sha2::Sha512::digest(data)),
    }
}

fn text(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// A parsed repository path.
pub(crate) enum Target {
    /// `<g>/<a>/maven-metadata.xml[.alg]`
    ArtifactMetadata {
        group: String,
        artifact: String,
        alg: Option<&'static str>,
    },
    /// `<g>/<a>/<v>/maven-metadata.xml[.alg]`
    VersionMetadata {
        group: String,
        artifact: String,
        version: String,
        alg: Option<&'static str>,
    },
    /// `<g>/<a>/<v>/<file>[.alg]`
    File {
        group: String,
        artifact: String,
        version: String,
        filename: String,
        alg: Option<&'static str>,
    },
}

pub(crate) fn parse(segs: &[String]) -> ApiResult<Target> {
    if let Some(bad) = segs.iter().find(|s| !valid_segment(s)) {
        return Err(ApiError::bad(
            "path",
            format!("invalid path segment '{bad}'"),
        ));
    }
    let n = segs.len();
    if n == 2 && checksum_of(&segs[1]).map_or(segs[1].as_str(), |(base, _)| base) == METADATA {
        // `<group>/maven-metadata.xml` of a one-segment group: only group-level metadata.
        return Ok(Target::ArtifactMetadata {
            group: String::new(),
            artifact: segs[0].clone(),
            alg: checksum_of(&segs[1]).map(|(_, a)| a),
        });
    }
    if n < 3 {
        return Err(ApiError::not_found(
            "expected <group>/<artifactId>/<version>/<file>",
        ));
    }
    let last = segs[n - 1].as_str();
    let (base, alg) = match checksum_of(last) {
        Some((b, a)) => (b, Some(a)),
        None => (last, None),
    };
    if base == METADATA {
        // Version-level metadata sits in a SNAPSHOT version directory.
        if n >= 4 && is_snapshot(&segs[n - 2]) {
            return Ok(Target::VersionMetadata {
                group: segs[..n - 3].join("."),
                artifact: segs[n - 3].clone(),
                version: segs[n - 2].clone(),
                alg,
            });
        }
        return Ok(Target::ArtifactMetadata {
            group: segs[..n - 2].join("."),
            artifact: segs[n - 2].clone(),
            alg,
        });
    }
    if n < 4 {
        return Err(ApiError::not_found(
            "expected <group>/<artifactId>/<version>/<file>",
        ));
    }
    Ok(Target::File {
        group: segs[..n - 3].join("."),
        artifact: segs[n - 3].clone(),
        version: segs[n - 2].clone(),
        filename: base.to_string(),
        alg,
    })
}

/// For `artifact-1.0-20261123.083012-3-sources.jar` in version `1.0-SNAPSHOT`: the timestamped
/// version, timestamp and build number.
fn snapshot_parts<'a>(
    artifact: &str,
    version: &str,
    filename: &'a str,
) -> Option<(&'a str, &'a str, u32)> {
    let base = version.strip_suffix("-SNAPSHOT")?;
    let rest = filename
        .strip_prefix(artifact)?
        .strip_prefix('-')?
        .strip_prefix(base)?
        .strip_prefix('-')?;
    // rest: yyyyMMdd.HHmmss-N[-classifier].ext
    let ts = rest.get(..15)?;
    if !(ts.len() == 15
        && ts.as_bytes()[8] == b'.'
        && ts
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 8 || b.is_ascii_digit()))
    {
        return None;
    }
    let after = rest.get(16..)?;
    let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
    let build: u32 = digits.parse().ok()?;
    let value_len = artifact.len() + 1 + base.len() + 1 + 15 + 1 + digits.len();
    Some((&filename[artifact.len() + 1..value_len], ts, build))
}

/// The file name must be `<artifactId>-<version>[-<classifier>].<ext>` (the version timestamped
/// for SNAPSHOTs). Returns (classifier, extension).
pub(crate) fn file_parts(
    artifact: &str,
    version: &str,
    filename: &str,
) -> Option<(Option<String>, String)> {
    let value = match snapshot_parts(artifact, version, filename) {
        Some((value, _, _)) => value.to_string(),
        None => version.to_string(),
    };
    let rest = filename
        .strip_prefix(artifact)?
        .strip_prefix('-')?
        .strip_prefix(value.as_str())?;
    let (classifier, ext) = match rest.strip_prefix('-') {
        Some(r) => {
            let (c, e) = r.split_once('.')?;
            (Some(c.to_string()), e.to_string())
        }
        None => (None, rest.strip_prefix('.')?.to_string()),
    };
    if ext.is_empty() || classifier.as_deref() == Some("") {
        return None;
    }
    Some((classifier, ext))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn maven_time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year][month][day][hour][minute][second]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

#[async_trait]
impl Format for Maven {
    fn package_type(&self) -> PackageType {
        PackageType::Maven
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
            title: "Maven Client Setup",
            sections: vec![
                inline(
                    "Configure settings.xml",
                    vec![step(
                        "Write ~/.m2/settings.xml with the registry's credentials (if you have one, add this <server> to its <servers> instead)",
                        &[(
                            "",
                            write_file(
                                "~/.m2/settings.xml",
                                &format!(
                                    "<settings><servers><server><id>{id}</id><username>{user}</username><password><TOKEN></password></server></servers></settings>"
                                ),
                            ),
                        )],
                    )],
                ),
                inline(
                    "Configure pom.xml",
                    vec![step(
                        "Add inside <project> of the pom.xml of every project that deploys to or resolves from the registry",
                        &[(
                            "pom.xml",
                            format!(
                                "<repositories><repository><id>{id}</id><url>{root}/</url></repository></repositories>\n<distributionManagement><repository><id>{id}</id><url>{root}/</url></repository></distributionManagement>"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Deploy",
                    vec![step(
                        "Deploy (in the project's directory)",
                        &[("", "mvn deploy".to_string())],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Resolve (in the directory of a project whose pom.xml has the <repositories> element above; the artifact is groupId:artifactId)",
                        &[("", format!("mvn dependency:get -Dartifact={art}:{ver}"))],
                    )],
                ),
            ],
        }
    }

    fn pull_command(&self, _c: &SetupContext, name: &str, version: &str) -> String {
        format!("mvn dependency:get -Dartifact={name}:{version}")
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        let segs = req.segments();
        if matches!(req.method, Method::GET | Method::HEAD)
            && (req.path.is_empty() || req.path.ends_with('/'))
        {
            return listing(state, &req, &segs).await;
        }
        let target = parse(&segs)?;
        match (req.method.clone(), target) {
            (
                Method::GET | Method::HEAD,
                Target::ArtifactMetadata {
                    group,
                    artifact,
                    alg,
                },
            ) => {
                let doc = match artifact_metadata(state, &req.registry, &group, &artifact).await? {
                    Some(doc) => doc,
                    None => {
                        // Not an artifact: the group-level metadata of `<group>.<artifact>`.
                        let group_id = join_group(&group, &artifact);
                        group_metadata(state, &req.registry, &group_id)
                            .await?
                            .ok_or_else(|| {
                                ApiError::not_found(format!(
                                    "{group_id} has no artifact or plugin metadata"
                                ))
                            })?
                    }
                };
                metadata_response(&doc, alg, &req)
            }
            (
                Method::GET | Method::HEAD,
                Target::VersionMetadata {
                    group,
                    artifact,
                    version,
                    alg,
                },
            ) => {
                // A SNAPSHOT only the upstream has: its metadata as the upstream wrote it.
                if !hosted_has_version(state, &req.registry, &group, &artifact, &version).await?
                    && let Some(up) =
                        proxy::version_metadata(state, &req.registry, &group, &artifact, &version)
                            .await?
                {
                    let doc = Doc::new(up.body, "application/xml");
                    let mut resp = metadata_response(&doc, alg, &req)?;
                    resp.headers_mut().insert(
                        "x-arca-cache",
                        axum::http::HeaderValue::from_static(up.state.header_value()),
                    );
                    return Ok(resp);
                }
                let doc =
                    version_metadata(state, &req.registry, &group, &artifact, &version).await?;
                metadata_response(&doc, alg, &req)
            }
            (
                Method::GET | Method::HEAD,
                Target::File {
                    group,
                    artifact,
                    version,
                    filename,
                    alg,
                },
            ) => {
                let dir = segs[..segs.len() - 1].join("/");
                let path = format!("{dir}/{filename}");
                let resolver = Resolver { state };
                // The download agrees with the metadata (dependency-confusion guard).
                resolver
                    .guard(&req.registry, &format!("{group}:{artifact}"))
                    .await?;
                let got = match resolver.find_file(&req.registry, &path).await? {
                    Some((_, f)) => crate::proxy::files::Got::Stored(f),
                    None => proxy::file(
                        state,
                        &req.registry,
                        &format!("{group}:{artifact}"),
                        &version,
                        &path,
                    )
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("'{path}' not found")))?,
                };
                match alg {
                    Some(alg) => {
                        let file = got
                            .finished()
                            .await?
                            .ok_or_else(|| ApiError::not_found(format!("'{path}' not found")))?;
                        Ok(text(digest_of(&file, alg)))
                    }
                    None => got.respond(state, &req.method, &req.headers).await,
                }
            }
            (Method::PUT, Target::ArtifactMetadata { .. } | Target::VersionMetadata { .. }) => {
                // Generated by Arca; what the client computed is not trusted.
                Upload::begin(state, &req, Body::Parsed).await?;
                crate::blob::drain(req.into_body_stream()).await;
                Ok(StatusCode::CREATED.into_response())
            }
            (
                Method::PUT,
                Target::File {
                    group,
                    artifact,
                    version,
                    filename,
                    alg: Some(alg),
                },
            ) => {
                // A checksum of a stored file: compared, never stored (Arca computes them).
                let target = Upload::begin(state, &req, Body::Parsed).await?.target;
                let path = format!(
                    "{}/{artifact}/{version}/{filename}",
                    group.replace('.', "/")
                );
                let body = crate::http::read_body(req.take_body(), 1024).await?;
                let given = String::from_utf8_lossy(&body)
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let file = state
                    .db
                    .file_by_path(&target.id, &path)
                    .await?
                    .ok_or_else(|| {
                        ApiError::not_found(format!(
                            "'{filename}' is not stored; upload it before its checksum"
                        ))
                    })?;
                if given != digest_of(&file, alg) {
                    return Err(ApiError::bad(
                        alg,
                        format!("the uploaded {alg} '{given}' does not match '{filename}'"),
                    ));
                }
                Ok(StatusCode::CREATED.into_response())
            }
            (
                Method::PUT,
                Target::File {
                    group,
                    artifact,
                    version,
                    filename,
                    alg: None,
                },
            ) => upload(state, req, &group, &artifact, &version, &filename).await,
            (
                Method::DELETE,
                Target::File {
                    group,
                    artifact,
                    version,
                    filename,
                    alg: None,
                },
            ) => {
                let target = Resolver { state }.write_target(&req.registry).await?;
                req.principal.check(&target, Need::Delete)?;
                let path = format!(
                    "{}/{artifact}/{version}/{filename}",
                    group.replace('.', "/")
                );
                let file = state
                    .db
                    .file_by_path(&target.id, &path)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("'{path}' not found")))?;
                state.db.delete_file(&file).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(ApiError::MethodNotAllowed(
                "use GET, HEAD, PUT or DELETE on files".into(),
            )),
        }
    }
}

fn metadata_response(doc: &Doc, alg: Option<&str>, req: &NativeRequest) -> ApiResult<Response> {
    match alg {
        Some(alg) => Ok(text(digest_bytes(&doc.body, alg))),
        None => Ok(doc.respond(&req.headers, req.method == Method::HEAD)),
    }
}

async fn upload(
    state: &AppState,
    req: NativeRequest,
    group: &str,
    artifact: &str,
    version: &str,
    filename: &str,
) -> ApiResult<Response> {
    let (classifier, ext) = file_parts(artifact, version, filename).ok_or_else(|| {
        ApiError::bad("path", format!("'{filename}' is not named <artifactId>-<version>[-<classifier>].<extension> for {artifact} {version}"))
    })?;
    // POMs are small and checked in memory before they are stored; everything else streams.
    let pom = ext == "pom";
    let mut up =
        Upload::begin(state, &req, if pom { Body::Parsed } else { Body::Streamed }).await?;
    // SNAPSHOTs may always be redeployed; releases follow the registry's setting.
    if is_snapshot(version) {
        up.target.reupload = Reupload::Override;
    }
    let coordinate = format!("{group}:{artifact}:{version}");
    let path = format!(
        "{}/{artifact}/{version}/{filename}",
        group.replace('.', "/")
    );
    let registry = up.target.identifier.clone();
    let exists = || {
        ApiError::conflict(format!(
            "{coordinate} is released and '{filename}' exists; redeploying releases is not allowed in '{registry}'"
        ))
    };
    up.check_new(&coordinate, &path, exists).await?;
    let staged = if pom {
        let body = crate::http::read_body(req.take_body(), MAX_POM).await?;
        check_pom(&body, group, artifact, version)?;
        up.stage_bytes(body).await?
    } else {
        up.stage(req.into_body_stream()).await?
    };
    // A plugin's main jar names its prefix, which the group-level metadata lists.
    let mut metadata = json!({});
    if ext == "jar" && classifier.is_none() {
        let jar = staged.path().to_path_buf();
        let plugin = tokio::task::spawn_blocking(move || plugin_descriptor(&jar))
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("plugin.xml reader panicked: {e}")))?;
        if let Some((prefix, name)) = plugin {
            metadata = json!({"goalPrefix": prefix, "pluginName": name});
        }
    }
    let package = format!("{group}:{artifact}");
    up.record(
        staged,
        FileSpec {
            package: &package,
            version,
            path: &path,
            name: filename,
            content_type: None,
            metadata,
        },
        exists,
    )
    .await?;
    Ok(StatusCode::CREATED.into_response())
}

/// Reads groupId, artifactId and version of a POM (falling back to the parent's) and compares them
/// with the path.
pub(crate) fn check_pom(body: &[u8], group: &str, artifact: &str, version: &str) -> ApiResult<()> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let mut found: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned())
            }
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let key = path.join("/");
                if matches!(
                    key.as_str(),
                    "project/groupId"
                        | "project/artifactId"
                        | "project/version"
                        | "project/parent/groupId"
                        | "project/parent/version"
                ) {
                    let v = t
                        .unescape()
                        .map_err(|e| ApiError::bad("pom", format!("malformed POM: {e}")))?;
                    found.insert(key, v.trim().to_string());
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(ApiError::bad("pom", format!("malformed POM: {e}"))),
            _ => {}
        }
        buf.clear();
    }
    if !path.is_empty() {
        return Err(ApiError::bad("pom", "malformed POM: unclosed elements"));
    }
    let get = |k: &str, parent: &str| found.get(k).or_else(|| found.get(parent)).cloned();
    let (g, a, v) = (
        get("project/groupId", "project/parent/groupId"),
        found.get("project/artifactId").cloned(),
        get("project/version", "project/parent/version"),
    );
    let (Some(g), Some(a), Some(v)) = (g, a, v) else {
        return Err(ApiError::bad(
            "pom",
            "the POM lacks groupId, artifactId or version",
        ));
    };
    if g != group || a != artifact || v != version {
        return Err(ApiError::bad(
            "pom",
            format!("the POM describes {g}:{a}:{v}, not {group}:{artifact}:{version}"),
        ));
    }
    Ok(())
}

async fn chain_packages(
    state: &AppState,
    reg: &Registry,
    group: &str,
    artifact: &str,
) -> ApiResult<Vec<(Registry, PackageRow)>> {
    (Resolver { state })
        .packages(reg, &format!("{group}:{artifact}"))
        .await
}

/// Whether a stored registry of the read chain other than a proxy's cache holds the version.
async fn hosted_has_version(
    state: &AppState,
    reg: &Registry,
    group: &str,
    artifact: &str,
    version: &str,
) -> ApiResult<bool> {
    for (r, p) in chain_packages(state, reg, group, artifact).await? {
        if r.cache_of.is_none() && state.db.version_by_name(&p.id, version).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The artifact-level metadata, or None when no registry of the read chain has the artifact.
async fn artifact_metadata(
    state: &AppState,
    reg: &Registry,
    group: &str,
    artifact: &str,
) -> ApiResult<Option<std::sync::Arc<Doc>>> {
    let chain = chain_packages(state, reg, group, artifact).await?;
    // The upstreams' metadata of the proxies in the chain: their versions join the stored ones.
    let upstream = proxy::artifact_metadata(state, reg, group, artifact).await?;
    if chain.is_empty() && upstream.is_empty() {
        return Ok(None);
    }
    let pkgs: Vec<PackageRow> = chain.iter().map(|(_, p)| p.clone()).collect();
    let upstream_key: String = upstream.iter().map(|(_, d)| d.sha256.as_str()).collect();
    let key = format!("maven|{}|{group}:{artifact}|{upstream_key}", reg.id);
    state
        .docs
        .get_or_build(key, cache::stamp(&pkgs), || async {
            let mut versions: Vec<String> = Vec::new();
            for (_, p) in &chain {
                for v in state.db.all_versions(&p.id).await? {
                    if !versions.contains(&v.version) {
                        versions.push(v.version);
                    }
                }
            }
            for (_, doc) in &upstream {
                for v in proxy::metadata_versions(&doc.body) {
                    if !versions.contains(&v) {
                        versions.push(v);
                    }
                }
            }
            versions.sort_by(|a, b| crate::versions::maven(a, b));
            let latest = versions.last().cloned().unwrap_or_default();
            let release = versions.iter().rev().find(|v| !is_snapshot(v)).cloned();
            let updated = pkgs.iter().map(|p| p.updated_at).max().unwrap_or(0);
            let mut x = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n  <groupId>{}</groupId>\n  <artifactId>{}</artifactId>\n  <versioning>\n    <latest>{}</latest>\n",
                xml_escape(group),
                xml_escape(artifact),
                xml_escape(&latest)
            );
            if let Some(r) = release {
                x.push_str(&format!("    <release>{}</release>\n", xml_escape(&r)));
            }
            x.push_str("    <versions>\n");
            for v in &versions {
                x.push_str(&format!("      <version>{}</version>\n", xml_escape(v)));
            }
            x.push_str(&format!("    </versions>\n    <lastUpdated>{}</lastUpdated>\n  </versioning>\n</metadata>\n", maven_time(updated)));
            Ok::<_, ApiError>(Doc::new(x, "application/xml"))
        })
        .await
        .map(Some)
}

async fn version_metadata(
    state: &AppState,
    reg: &Registry,
    group: &str,
    artifact: &str,
    version: &str,
) -> ApiResult<std::sync::Arc<Doc>> {
    let chain = chain_packages(state, reg, group, artifact).await?;
    let pkgs: Vec<PackageRow> = chain.iter().map(|(_, p)| p.clone()).collect();
    let key = format!("maven|{}|{group}:{artifact}:{version}", reg.id);
    state
        .docs
        .get_or_build(key, cache::stamp(&pkgs), || async {
            // (timestamp, build) of the newest build, and per (classifier, extension) its value.
            let mut newest: Option<(String, u32)> = None;
            let mut entries: std::collections::BTreeMap<(String, String), (String, u32, i64)> = Default::default();
            let mut updated = 0;
            for (_, p) in &chain {
                for (v, f) in state.db.package_files(&p.id).await? {
                    if v != version {
                        continue;
                    }
                    updated = updated.max(f.updated_at);
                    let Some((value, ts, build)) = snapshot_parts(artifact, version, &f.name) else { continue };
                    let Some((classifier, ext)) = file_parts(artifact, version, &f.name) else { continue };
                    if newest.as_ref().is_none_or(|(_, b)| build > *b) {
                        newest = Some((ts.to_string(), build));
                    }
                    let k = (classifier.unwrap_or_default(), ext);
                    if entries.get(&k).is_none_or(|(_, b, _)| build > *b) {
                        entries.insert(k, (value.to_string(), build, f.updated_at));
                    }
                }
            }
            if updated == 0 {
                return Err(ApiError::not_found(format!("{group}:{artifact}:{version} not found")));
            }
            let mut x = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata modelVersion=\"1.1.0\">\n  <groupId>{}</groupId>\n  <artifactId>{}</artifactId>\n  <version>{}</version>\n  <versioning>\n",
                xml_escape(group),
                xml_escape(artifact),
                xml_escape(version)
            );
            match &newest {
                Some((ts, build)) => x.push_str(&format!("    <snapshot>\n      <timestamp>{ts}</timestamp>\n      <buildNumber>{build}</buildNumber>\n    </snapshot>\n")),
                None => x.push_str("    <snapshot>\n      <localCopy>true</localCopy>\n    </snapshot>\n"),
            }
            x.push_str(&format!("    <lastUpdated>{}</lastUpdated>\n    <snapshotVersions>\n", maven_time(updated)));
            for ((classifier, ext), (value, _, at)) in &entries {
                x.push_str("      <snapshotVersion>\n");
                if !classifier.is_empty() {
                    x.push_str(&format!("        <classifier>{}</classifier>\n", xml_escape(classifier)));
                }
                x.push_str(&format!(
                    "        <extension>{}</extension>\n        <value>{}</value>\n        <updated>{}</updated>\n      </snapshotVersion>\n",
                    xml_escape(ext),
                    xml_escape(value),
                    maven_time(*at)
                ));
            }
            x.push_str("    </snapshotVersions>\n  </versioning>\n</metadata>\n");
            Ok(Doc::new(x, "application/xml"))
        })
        .await
}

fn join_group(group: &str, segment: &str) -> String {
    if group.is_empty() {
        segment.to_string()
    } else {
        format!("{group}.{segment}")
    }
}

/// `goalPrefix` and `name` from a jar's `META-INF/maven/plugin.xml`; None for a jar that is not a
/// Maven plugin (or not a zip: Maven does not require jars to be, so nothing is refused here).
pub(crate) fn plugin_descriptor(jar: &std::path::Path) -> Option<(String, String)> {
    use quick_xml::events::Event;
    const DESCRIPTOR: &str = "META-INF/maven/plugin.xml";
    let xml = crate::archive::zip_entry(
        jar,
        |names| {
            names
                .contains(&DESCRIPTOR)
                .then(|| DESCRIPTOR.to_string())
                .ok_or_else(String::new)
        },
        MAX_POM as u64,
    )
    .ok()?;
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    let mut path: Vec<String> = Vec::new();
    let (mut prefix, mut name) = (None, None);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned())
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) if path.len() == 2 && path[0] == "plugin" => {
                let v = t.unescape().ok()?.trim().to_string();
                match path[1].as_str() {
                    "goalPrefix" => prefix = Some(v),
                    "name" => name = Some(v),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let prefix = prefix.filter(|p| !p.is_empty())?;
    Some((prefix.clone(), name.unwrap_or(prefix)))
}

/// The plugins (artifactId, prefix, name) deployed in exactly the group `group_id` along the read
/// chain (first registry wins per artifact), with the packages they come from.
async fn group_plugins(
    state: &AppState,
    reg: &Registry,
    group_id: &str,
) -> ApiResult<(Vec<(String, String, String)>, Vec<PackageRow>)> {
    let prefix = format!("{group_id}:");
    let mut plugins: std::collections::BTreeMap<String, (String, String)> = Default::default();
    let mut pkgs = Vec::new();
    for r in (Resolver { state }).read_chain(reg).await? {
        for p in state.db.packages_with_prefix(&r.id, &prefix).await? {
            let Some(artifact) = p.name.strip_prefix(&prefix).map(str::to_string) else {
                continue;
            };
            // The newest deployed jar that describes a plugin names the prefix.
            let described = state
                .db
                .package_files(&p.id)
                .await?
                .into_iter()
                .rev()
                .find_map(|(_, f)| {
                    let m = &f.metadata;
                    Some((
                        m.get("goalPrefix")?.as_str()?.to_string(),
                        m.get("pluginName")?.as_str()?.to_string(),
                    ))
                });
            if let Some(d) = described {
                plugins.entry(artifact).or_insert(d);
            }
            pkgs.push(p);
        }
    }
    Ok((
        plugins.into_iter().map(|(a, (p, n))| (a, p, n)).collect(),
        pkgs,
    ))
}

/// Group-level `maven-metadata.xml` (the `<plugins>` list), merged along the read chain; None when
/// the group has no plugin.
async fn group_metadata(
    state: &AppState,
    reg: &Registry,
    group_id: &str,
) -> ApiResult<Option<std::sync::Arc<Doc>>> {
    let (plugins, pkgs) = group_plugins(state, reg, group_id).await?;
    if plugins.is_empty() {
        return Ok(None);
    }
    let key = format!("maven|{}|group|{group_id}", reg.id);
    let doc = state
        .docs
        .get_or_build(key, cache::stamp(&pkgs), || async {
            let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n  <plugins>\n");
            for (artifact, prefix, name) in &plugins {
                x.push_str(&format!(
                    "    <plugin>\n      <name>{}</name>\n      <prefix>{}</prefix>\n      <artifactId>{}</artifactId>\n    </plugin>\n",
                    xml_escape(name),
                    xml_escape(prefix),
                    xml_escape(artifact)
                ));
            }
            x.push_str("  </plugins>\n</metadata>\n");
            Ok::<_, ApiError>(Doc::new(x, "application/xml"))
        })
        .await?;
    Ok(Some(doc))
}

/// An HTML index of a directory of the repository layout, merged along the read chain: a
/// version directory lists its files, an artifact directory its versions, a group directory its
/// artifacts and subgroups (each with `maven-metadata.xml` where one is served).
async fn listing(state: &AppState, req: &NativeRequest, segs: &[String]) -> ApiResult<Response> {
    if let Some(bad) = segs.iter().find(|s| !valid_segment(s)) {
        return Err(ApiError::bad(
            "path",
            format!("invalid path segment '{bad}'"),
        ));
    }
    let n = segs.len();
    let group_id = segs.join(".");
    let mut children = std::collections::BTreeSet::new();
    let chain = (Resolver { state }).read_chain(&req.registry).await?;
    // As a group: artifacts named `<group>:<a>` and subgroups `<group>.<x>...`.
    let prefix = if group_id.is_empty() {
        String::new()
    } else {
        format!("{group_id}.")
    };
    for r in &chain {
        let mut rows = state.db.packages_with_prefix(&r.id, &prefix).await?;
        if !group_id.is_empty() {
            rows.extend(
                state
                    .db
                    .packages_with_prefix(&r.id, &format!("{group_id}:"))
                    .await?,
            );
        }
        for p in rows {
            let Some((g, a)) = p.name.split_once(':') else {
                continue;
            };
            let gsegs: Vec<&str> = g.split('.').collect();
            if gsegs.len() == n {
                children.insert(format!("{a}/"));
            } else if let Some(next) = gsegs.get(n) {
                children.insert(format!("{next}/"));
            }
        }
    }
    if n >= 1
        && !group_plugins(state, &req.registry, &group_id)
            .await?
            .0
            .is_empty()
    {
        children.insert(METADATA.to_string());
    }
    // As an artifact: its versions.
    if n >= 2 {
        let (group, artifact) = (segs[..n - 1].join("."), &segs[n - 1]);
        for (_, p) in chain_packages(state, &req.registry, &group, artifact).await? {
            for v in state.db.all_versions(&p.id).await? {
                children.insert(format!("{}/", v.version));
            }
            children.insert(METADATA.to_string());
        }
    }
    // As a version: its files.
    if n >= 3 {
        let (group, artifact, version) = (segs[..n - 2].join("."), &segs[n - 2], &segs[n - 1]);
        for (_, p) in chain_packages(state, &req.registry, &group, artifact).await? {
            for (v, f) in state.db.package_files(&p.id).await? {
                if &v == version {
                    children.insert(f.name);
                }
            }
        }
        if is_snapshot(version) && !children.is_empty() {
            children.insert(METADATA.to_string());
        }
    }
    if children.is_empty() && n > 0 {
        return Err(ApiError::not_found(format!(
            "'{}/' does not exist",
            segs.join("/")
        )));
    }
    let title = format!(
        "/{}",
        segs.iter().map(|s| format!("{s}/")).collect::<String>()
    );
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><title>Index of {0}</title></head><body><h1>Index of {0}</h1>\n<pre>\n",
        xml_escape(&title)
    );
    if n > 0 {
        html.push_str("<a href=\"../\">../</a>\n");
    }
    for c in &children {
        let href: String =
            percent_encoding::utf8_percent_encode(c, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%2F", "/")
                .replace("%2E", ".")
                .replace("%2D", "-")
                .replace("%5F", "_");
        html.push_str(&format!("<a href=\"{href}\">{}</a>\n", xml_escape(c)));
    }
    html.push_str("</pre></body></html>\n");
    Ok(
        Doc::new(html, "text/html; charset=utf-8")
            .respond(&req.headers, req.method == Method::HEAD),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_snapshots() {
        assert_eq!(
            file_parts("lib", "1.0", "lib-1.0.jar"),
            Some((None, "jar".into()))
        );
        assert_eq!(
            file_parts("lib", "1.0", "lib-1.0-sources.jar"),
            Some((Some("sources".into()), "jar".into()))
        );
        assert_eq!(
            file_parts("lib", "1.0", "lib-1.0.pom.asc"),
            Some((None, "pom.asc".into()))
        );
        assert_eq!(file_parts("lib", "1.0", "other-1.0.jar"), None);
        assert_eq!(file_parts("lib", "1.0", "lib-2.0.jar"), None);
        let f = "lib-1.1-20261123.083012-3-sources.jar";
        assert_eq!(
            snapshot_parts("lib", "1.1-SNAPSHOT", f),
            Some(("1.1-20261123.083012-3", "20261123.083012", 3))
        );
        assert_eq!(
            file_parts("lib", "1.1-SNAPSHOT", f),
            Some((Some("sources".into()), "jar".into()))
        );
        assert_eq!(
            file_parts("lib", "1.1-SNAPSHOT", "lib-1.1-SNAPSHOT.jar"),
            Some((None, "jar".into()))
        );
        assert_eq!(checksum_of("a.jar.sha256"), Some(("a.jar", "sha256")));
    }

    #[test]
    fn poms_must_match_their_path() {
        let pom = br#"<project><parent><groupId>com.acme</groupId><version>1.0</version></parent><artifactId>lib</artifactId></project>"#;
        assert!(check_pom(pom, "com.acme", "lib", "1.0").is_ok());
        assert!(check_pom(pom, "com.acme", "other", "1.0").is_err());
        assert!(check_pom(b"<project><groupId>x", "x", "y", "1").is_err());
        assert!(check_pom(b"not xml at all <<", "x", "y", "1").is_err());
    }
}

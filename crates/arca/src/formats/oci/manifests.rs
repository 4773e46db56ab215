//! Manifests, tags, referrers and the catalog.

use crate::http::header_value;
use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Caller, Ctx, OciError, OciResult, Repo, empty, parse_digest};
use crate::auth::Need;
use crate::blob::{BlobInfo, ByteStream};
use crate::formats::Resolver;
use crate::model::{Registry, RegistryKind, Reupload};
use crate::state::AppState;
use crate::store::artifacts::{FileRow, NewFile};

const MAX_MANIFEST: usize = 4 << 20;
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub(crate) fn is_digest(reference: &str) -> bool {
    reference.contains(':')
}

/// Tags: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub(crate) fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn manifest_path(image: &str, version: &str) -> String {
    format!("{image}/{version}/manifest")
}

pub(super) async fn handle(
    ctx: &Ctx<'_>,
    repo: &Repo,
    reference: &str,
    body: Body,
) -> OciResult<Response> {
    if is_digest(reference) {
        parse_digest(reference)?;
    } else if !valid_tag(reference) {
        return Err(OciError::new(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            format!("'{reference}' is not a valid tag"),
        ));
    }
    match ctx.method {
        Method::GET | Method::HEAD => get(ctx, repo, reference).await,
        Method::PUT => put(ctx, repo, reference, body).await,
        Method::DELETE => delete(ctx, repo, reference).await,
        _ => Err(OciError::unsupported(
            "manifests support GET, HEAD, PUT and DELETE",
        )),
    }
}

/// The manifest file `reference` names in one registry.
async fn find_in(
    state: &AppState,
    reg: &Registry,
    image: &str,
    reference: &str,
) -> OciResult<Option<FileRow>> {
    if is_digest(reference) {
        let (alg, hex) = parse_digest(reference)?;
        if alg != "sha256" {
            return Ok(None);
        }
        Ok(state
            .db
            .manifests_by_sha256(&reg.id, image, &hex)
            .await?
            .into_iter()
            .next())
    } else {
        Ok(state
            .db
            .file_by_path(&reg.id, &manifest_path(image, reference))
            .await?)
    }
}

/// The manifest in the stored registries of the read chain; a proxy's cached tags are left to
/// the proxy (they are revalidated), its cached digests are content like any other.
async fn find(ctx: &Ctx<'_>, repo: &Repo, reference: &str) -> OciResult<Option<FileRow>> {
    for r in (Resolver { state: ctx.state })
        .read_chain(&repo.registry)
        .await?
    {
        if r.kind == RegistryKind::Cache && !is_digest(reference) {
            continue;
        }
        if let Some(f) = find_in(ctx.state, &r, &repo.image, reference).await? {
            (Resolver { state: ctx.state })
                .served_from(&repo.registry, &r.id)
                .await?;
            return Ok(Some(f));
        }
    }
    Ok(None)
}

async fn get(ctx: &Ctx<'_>, repo: &Repo, reference: &str) -> OciResult<Response> {
    ctx.who.check(repo, Need::Read)?;
    // An image a hosted member holds is never pulled from a proxy member (unless allow-listed).
    (Resolver { state: ctx.state })
        .guard(&repo.registry, &repo.image)
        .await?;
    let (file, how) = match find(ctx, repo, reference).await? {
        Some(f) => (f, None),
        None => {
            let found = super::proxy::manifest(ctx.state, &repo.registry, &repo.image, reference)
                .await?
                .ok_or_else(|| OciError::manifest_unknown(reference))?;
            (found.file, Some(found.state))
        }
    };
    let digest = format!("sha256:{}", file.sha256);
    let mut resp = crate::download::serve_file(ctx.state, &file, &ctx.method, &ctx.headers).await?;
    let h = resp.headers_mut();
    h.insert("docker-content-digest", header_value(&digest));
    h.insert(header::ETAG, header_value(&format!("\"{digest}\"")));
    if let Some(how) = how {
        h.insert("x-arca-cache", HeaderValue::from_static(how.header_value()));
    }
    for k in [
        "x-checksum-sha256",
        "x-checksum-sha1",
        "x-checksum-md5",
        "accept-ranges",
    ] {
        h.remove(k);
    }
    Ok(resp)
}

/// What a manifest references, for validation and for the version's files.
pub(crate) struct Parsed {
    pub media_type: String,
    /// Blobs (config and layers) that must be in the repository.
    pub blobs: Vec<(String, i64)>,
    /// Manifests (an index's children) that must be in the repository.
    pub children: Vec<String>,
    pub subject: Option<String>,
    pub artifact_type: Option<String>,
    pub annotations: Value,
}

pub(crate) fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> OciResult<Parsed> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| OciError::manifest_invalid(format!("the manifest is not valid JSON: {e}")))?;
    if v.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
        return Err(OciError::manifest_invalid(
            "only schemaVersion 2 manifests are accepted",
        ));
    }
    let body_type = v.get("mediaType").and_then(Value::as_str);
    let media_type = match (content_type, body_type) {
        (Some(c), Some(b)) if c != b => {
            return Err(OciError::manifest_invalid(format!(
                "Content-Type '{c}' does not match the manifest's mediaType '{b}'"
            )));
        }
        (Some(c), _) => c.to_string(),
        (None, Some(b)) => b.to_string(),
        (None, None) => {
            if v.get("manifests").is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        }
    };
    let descriptor = |d: &Value| -> OciResult<(String, i64)> {
        let digest = d
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| OciError::manifest_invalid("a descriptor has no digest"))?;
        parse_digest(digest)
            .map_err(|_| OciError::manifest_invalid(format!("'{digest}' is not a valid digest")))?;
        let size = d.get("size").and_then(Value::as_i64).unwrap_or(0);
        Ok((digest.to_string(), size))
    };
    let mut parsed = Parsed {
        media_type,
        blobs: vec![],
        children: vec![],
        subject: None,
        artifact_type: v
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_string),
        annotations: v.get("annotations").cloned().unwrap_or(Value::Null),
    };
    if let Some(s) = v.get("subject") {
        parsed.subject = Some(descriptor(s)?.0);
    }
    if let Some(list) = v.get("manifests") {
        let list = list
            .as_array()
            .ok_or_else(|| OciError::manifest_invalid("'manifests' must be an array"))?;
        for m in list {
            parsed.children.push(descriptor(m)?.0);
        }
    } else {
        let config = v
            .get("config")
            .ok_or_else(|| OciError::manifest_invalid("the manifest has no config"))?;
        let c = descriptor(config)?;
        if parsed.artifact_type.is_none() {
            parsed.artifact_type = config
                .get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        parsed.blobs.push(c);
        let layers = v
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| OciError::manifest_invalid("the manifest has no layers array"))?;
        for l in layers {
            // Foreign layers live elsewhere (their `urls`); everything else must be here.
            if l.get("urls")
                .is_some_and(|u| u.as_array().is_some_and(|a| !a.is_empty()))
            {
                continue;
            }
            parsed.blobs.push(descriptor(l)?);
        }
    }
    Ok(parsed)
}

fn blob_unknown(d: &str) -> OciError {
    OciError::new(
        StatusCode::BAD_REQUEST,
        "MANIFEST_BLOB_UNKNOWN",
        format!("the manifest references {d}, which is not in this repository"),
    )
}

pub(super) async fn blob_info(state: &AppState, sha256: &str) -> OciResult<BlobInfo> {
    let f = state
        .db
        .blob_as_file(sha256, "")
        .await?
        .ok_or_else(|| blob_unknown(&format!("sha256:{sha256}")))?;
    Ok(BlobInfo {
        sha256: f.sha256,
        sha1: f.sha1,
        md5: f.md5,
        sha512: f.sha512,
        size: f.size as u64,
    })
}

async fn put(ctx: &Ctx<'_>, repo: &Repo, reference: &str, body: Body) -> OciResult<Response> {
    let state = ctx.state;
    let target = (Resolver { state }).write_target(&repo.registry).await?;
    ctx.who.check(repo, Need::Write)?;
    let bytes = crate::http::read_body(body, MAX_MANIFEST)
        .await
        .map_err(|e| match e {
            crate::error::ApiError::PayloadTooLarge(m) => {
                OciError::new(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", m)
            }
            other => other.into(),
        })?;
    let content_type = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/octet-stream");
    let parsed = parse_manifest(&bytes, content_type.as_deref())?;
    let len = bytes.len() as i64;
    let stream: ByteStream = Box::pin(futures::stream::once({
        let b = bytes.clone();
        async move { Ok::<_, std::io::Error>(b) }
    }));
    let blob = state
        .blobs
        .put(stream, Some(MAX_MANIFEST as u64), None)
        .await?;
    let digest = format!("sha256:{}", blob.sha256);
    if is_digest(reference) {
        let (alg, hex) = parse_digest(reference)?;
        let actual = if alg == "sha256" {
            &blob.sha256
        } else {
            &blob.sha512
        };
        if *actual != hex {
            return Err(OciError::digest_invalid(format!(
                "the manifest's digest is {alg}:{actual}, not {reference}"
            )));
        }
    }
    // Everything it references must be here already.
    let mut referenced = Vec::new();
    for (d, _) in &parsed.blobs {
        let b = state
            .db
            .repo_blob(&target.id, &repo.image, d)
            .await?
            .ok_or_else(|| blob_unknown(d))?;
        if !referenced.iter().any(|(x, _): &(String, String)| x == d) {
            referenced.push((d.clone(), b.sha256));
        }
    }
    for child in &parsed.children {
        if find_in(state, &target, &repo.image, child).await?.is_none() {
            return Err(blob_unknown(child));
        }
    }
    let name = format!("{}:{}", repo.image, reference);
    target.check_patterns(&name)?;
    state.commit_blob(&blob).await?;

    let version = reference.to_string();
    let path = manifest_path(&repo.image, &version);
    // Pushed by digest while a tag already holds it: reachable by digest through the tag, so no
    // second version named by the digest.
    if is_digest(reference)
        && !state
            .db
            .manifests_by_sha256(&target.id, &repo.image, &blob.sha256)
            .await?
            .is_empty()
    {
        return Ok(created(repo, &digest, parsed.subject.as_deref()));
    }
    if let Some(existing) = state.db.file_by_path(&target.id, &path).await? {
        if existing.sha256 == blob.sha256 {
            return Ok(created(repo, &digest, parsed.subject.as_deref()));
        }
        if target.reupload == Reupload::None {
            return Err(OciError::denied(format!(
                "tag '{reference}' of {} already points to sha256:{} and tags are immutable in this registry",
                repo.name, existing.sha256
            )));
        }
        move_tag_away(state, &target, repo, &version, &existing).await?;
    }
    let meta = json!({"kind": "manifest", "mediaType": parsed.media_type, "digest": digest,
                      "artifactType": parsed.artifact_type, "subject": parsed.subject});
    let file = put_version_file(
        state,
        &target,
        &repo.image,
        &version,
        &path,
        &blob,
        &parsed.media_type,
        meta.clone(),
    )
    .await?;
    for (d, sha) in &referenced {
        let info = blob_info(state, sha).await?;
        let p = format!("{}/{version}/blobs/{d}", repo.image);
        put_version_file(
            state,
            &target,
            &repo.image,
            &version,
            &p,
            &info,
            "application/octet-stream",
            json!({"kind": "blob", "digest": d}),
        )
        .await?;
    }
    let total: i64 = len + parsed.blobs.iter().map(|(_, s)| *s).sum::<i64>();
    // Merged: a Helm chart uploaded to the classic repository keeps its index entry.
    state
        .db
        .merge_version_metadata(
            &file.version_id,
            &json!({"digest": digest, "mediaType": parsed.media_type, "size": total,
                                                       "artifactType": parsed.artifact_type}),
        )
        .await?;
    // Clients push by digest first and then by tag: the version named by the digest is
    // redundant once the tag holds the same manifest.
    if !is_digest(reference)
        && let Some(pkg) = state.db.package_by_name(&target.id, &repo.image).await?
        && let Some(v) = state.db.version_by_name(&pkg.id, &digest).await?
    {
        state.db.purge_version(&pkg, &v).await?;
    }
    if let Some(subject) = &parsed.subject {
        let mut d = json!({"mediaType": parsed.media_type, "digest": digest, "size": len});
        if let Some(t) = &parsed.artifact_type {
            d["artifactType"] = json!(t);
        }
        if parsed.annotations.is_object() {
            d["annotations"] = parsed.annotations.clone();
        }
        state
            .db
            .add_referrer(&target.id, &repo.image, subject, &digest, &d)
            .await?;
    }
    Ok(created(repo, &digest, parsed.subject.as_deref()))
}

#[allow(clippy::too_many_arguments)]
async fn put_version_file(
    state: &AppState,
    target: &Registry,
    image: &str,
    version: &str,
    path: &str,
    blob: &BlobInfo,
    content_type: &str,
    metadata: Value,
) -> OciResult<FileRow> {
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    let r = state
        .db
        .record_file(
            target,
            NewFile {
                package: image,
                version,
                path,
                name: &name,
                blob,
                content_type: Some(content_type),
                metadata,
            },
        )
        .await;
    match r {
        Ok(f) => Ok(f),
        // Already there with the same content (a repeated push).
        Err(crate::store::StoreError::Conflict(_)) => state
            .db
            .file_by_path(&target.id, path)
            .await?
            .ok_or_else(|| OciError::denied("concurrent push of the same tag")),
        Err(e) => Err(e.into()),
    }
}

/// Before a tag moves (OVERRIDE), its old manifest stays reachable by digest: it becomes a
/// version named by its digest unless one exists already. Then the tag's version is emptied.
async fn move_tag_away(
    state: &AppState,
    target: &Registry,
    repo: &Repo,
    tag: &str,
    old: &FileRow,
) -> OciResult<()> {
    let old_digest = format!("sha256:{}", old.sha256);
    let others = state
        .db
        .manifests_by_sha256(&target.id, &repo.image, &old.sha256)
        .await?;
    if !others.iter().any(|f| f.id != old.id) {
        let info = blob_info(state, &old.sha256).await?;
        let path = manifest_path(&repo.image, &old_digest);
        let media = old.content_type.clone().unwrap_or_default();
        put_version_file(
            state,
            target,
            &repo.image,
            &old_digest,
            &path,
            &info,
            &media,
            old.metadata.clone(),
        )
        .await?;
        if let Some(pkg) = state.db.package_by_name(&target.id, &repo.image).await? {
            for (_, file) in state.db.package_files(&pkg.id).await? {
                let prefix = format!("{}/{tag}/blobs/", repo.image);
                if let Some(d) = file.path.strip_prefix(&prefix) {
                    let info = blob_info(state, &file.sha256).await?;
                    let p = format!("{}/{old_digest}/blobs/{d}", repo.image);
                    put_version_file(
                        state,
                        target,
                        &repo.image,
                        &old_digest,
                        &p,
                        &info,
                        "application/octet-stream",
                        json!({"kind": "blob", "digest": d}),
                    )
                    .await?;
                }
            }
            if let Some(v) = state.db.version_by_name(&pkg.id, &old_digest).await?
                && let Some(tv) = state.db.version_by_name(&pkg.id, tag).await?
            {
                state.db.set_version_metadata(&v.id, &tv.metadata).await?;
            }
        }
    }
    if let Some(pkg) = state.db.package_by_name(&target.id, &repo.image).await?
        && let Some(v) = state.db.version_by_name(&pkg.id, tag).await?
    {
        state.db.purge_version(&pkg, &v).await?;
    }
    Ok(())
}

fn created(repo: &Repo, digest: &str, subject: Option<&str>) -> Response {
    let mut resp = empty(StatusCode::CREATED);
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{}/manifests/{digest}", repo.name)),
    );
    h.insert("docker-content-digest", header_value(digest));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    if let Some(s) = subject {
        h.insert("oci-subject", header_value(s));
    }
    resp
}

async fn delete(ctx: &Ctx<'_>, repo: &Repo, reference: &str) -> OciResult<Response> {
    let state = ctx.state;
    let target = (Resolver { state }).write_target(&repo.registry).await?;
    ctx.who.check(repo, Need::Delete)?;
    let versions: Vec<String> = if is_digest(reference) {
        let (alg, hex) = parse_digest(reference)?;
        if alg != "sha256" {
            return Err(OciError::manifest_unknown(reference));
        }
        state
            .db
            .manifests_by_sha256(&target.id, &repo.image, &hex)
            .await?
            .iter()
            .filter_map(|f| {
                f.path
                    .strip_prefix(&format!("{}/", repo.image))
                    .and_then(|p| p.strip_suffix("/manifest"))
                    .map(str::to_string)
            })
            .collect()
    } else {
        match state
            .db
            .file_by_path(&target.id, &manifest_path(&repo.image, reference))
            .await?
        {
            Some(_) => vec![reference.to_string()],
            None => vec![],
        }
    };
    if versions.is_empty() {
        return Err(OciError::manifest_unknown(reference));
    }
    for v in &versions {
        crate::service::trash_versions(state, &target, &repo.image, Some(v)).await?;
    }
    if is_digest(reference) {
        state
            .db
            .remove_referrer(&target.id, &repo.image, reference)
            .await?;
    }
    Ok(empty(StatusCode::ACCEPTED))
}

pub(super) async fn tags(ctx: &Ctx<'_>, repo: &Repo) -> OciResult<Response> {
    if ctx.method != Method::GET && ctx.method != Method::HEAD {
        return Err(OciError::unsupported("tags/list supports GET"));
    }
    ctx.who.check(repo, Need::Read)?;
    let chain = (Resolver { state: ctx.state })
        .packages(&repo.registry, &repo.image)
        .await?;
    // What the proxies' upstreams list (the images they cached are listed through them).
    let mut tags = super::proxy::tags(ctx.state, &repo.registry, &repo.image).await?;
    if chain.is_empty() && tags.is_empty() {
        return Err(OciError::name_unknown(&repo.name));
    }
    for (_, pkg) in &chain {
        for v in ctx.state.db.all_versions(&pkg.id).await? {
            if !is_digest(&v.version) && !tags.contains(&v.version) {
                tags.push(v.version);
            }
        }
    }
    tags.sort();
    if let Some(last) = ctx.query("last") {
        tags.retain(|t| *t > last);
    }
    let mut link = None;
    if let Some(n) = ctx.query("n") {
        let n: usize = n.parse().map_err(|_| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("invalid n '{n}'"),
            )
        })?;
        if tags.len() > n {
            tags.truncate(n);
            if let Some(last) = tags.last() {
                link = Some(format!(
                    "</v2/{}/tags/list?n={n}&last={last}>; rel=\"next\"",
                    repo.name
                ));
            }
        }
    }
    let mut resp = axum::Json(json!({"name": repo.name, "tags": tags})).into_response();
    if let Some(l) = link {
        resp.headers_mut().insert(header::LINK, header_value(&l));
    }
    Ok(resp)
}

pub(super) async fn referrers(ctx: &Ctx<'_>, repo: &Repo, digest: &str) -> OciResult<Response> {
    if ctx.method != Method::GET {
        return Err(OciError::unsupported("referrers supports GET"));
    }
    parse_digest(digest)?;
    ctx.who.check(repo, Need::Read)?;
    let filter = ctx.query("artifactType");
    let mut manifests = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let resolver = Resolver { state: ctx.state };
    // An image a hosted member holds lists no referrers a proxy member cached (the guard).
    resolver.guard(&repo.registry, &repo.image).await?;
    for r in resolver.read_chain(&repo.registry).await? {
        for (d, desc) in ctx.state.db.referrers(&r.id, &repo.image, digest).await? {
            // A referrer whose manifest was deleted is gone.
            if find_in(ctx.state, &r, &repo.image, &d).await?.is_none() || !seen.insert(d) {
                continue;
            }
            if let Some(f) = &filter
                && desc.get("artifactType").and_then(Value::as_str) != Some(f.as_str())
            {
                continue;
            }
            manifests.push(desc);
        }
    }
    let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let mut resp = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX))],
        body.to_string(),
    )
        .into_response();
    if filter.is_some() {
        resp.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}

pub(super) async fn catalog(
    state: &AppState,
    who: &Caller,
    query: Option<&str>,
) -> OciResult<Response> {
    let q = crate::http::query_pairs(query);
    let get = |k: &str| q.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let mut names = Vec::new();
    for id in state.db.oci_registry_ids().await? {
        let Some(reg) = state.db.registry_by_id(&id).await? else {
            continue;
        };
        if !who.principal.can(&reg, Need::Read) {
            continue;
        }
        for image in state
            .db
            .package_names(std::slice::from_ref(&reg.id))
            .await?
        {
            names.push(format!("{}/{image}", reg.oci_prefix()));
        }
    }
    names.sort();
    if let Some(last) = get("last") {
        names.retain(|n| *n > last);
    }
    let mut link = None;
    if let Some(n) = get("n") {
        let n: usize = n.parse().map_err(|_| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("invalid n '{n}'"),
            )
        })?;
        if names.len() > n {
            names.truncate(n);
            if let Some(last) = names.last() {
                link = Some(format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\""));
            }
        }
    }
    let mut resp = axum::Json(json!({"repositories": names})).into_response();
    if let Some(l) = link {
        resp.headers_mut().insert(header::LINK, header_value(&l));
    }
    Ok(resp)
}

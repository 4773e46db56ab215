//! OCI / Docker through a proxy, on the shared engine. Blobs and manifests asked for by digest
//! are immutable: fetched once, verified against the digest, kept in the proxy's cache. A tag is
//! a mutable pointer: it is fresh for the proxy's metadata interval, then revalidated with an
//! upstream `HEAD` (which registries do not count as a pull) comparing `Docker-Content-Digest`;
//! only a moved tag costs a `GET`. When the upstream fails (5xx, 429, timeout) or has dropped the
//! tag, the copy already served stays in service (`X-Arca-Cache: STALE`).
//!
//! The upstream is a registry root, optionally with a namespace path: `https://host` or
//! `https://host/team/mirror`, under which image `<image>` is `/v2/<namespace>/<image>`. With the
//! Docker Hub rule on (`dockerLibraryPrefix`, the default for the source `Dockerhub`), a
//! single-segment image asked of a root is `library/<image>`. Authentication is the engine's:
//! the Bearer token dance with the proxy's credentials (never the client's).

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Method, header};
use bytes::Bytes;
use futures::FutureExt;
use serde_json::json;
use sha2::Digest;

use super::manifests::{is_digest, parse_manifest};
use crate::blob::{BlobInfo, ByteStream};
use crate::error::{ApiError, ApiResult};
use crate::formats::Resolver;
use crate::model::{ProxySettings, Registry, now_ms};
use crate::proxy::documents::CacheState;
use crate::proxy::files::{self, Got, Wanted};
use crate::proxy::{Failure, transport_failure};
use crate::state::AppState;
use crate::store::artifacts::FileRow;
use crate::store::proxy::ProxyDocument;

/// Every manifest type a client may be given; the stored media type is what is served back.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Manifests are small: anything larger is refused rather than held in memory.
const MAX_MANIFEST: u64 = 4 << 20;

/// A manifest found through a proxy.
pub(super) struct Found {
    pub file: FileRow,
    pub state: CacheState,
}

/// The upstream URL of `tail` (`manifests/<ref>`, `blobs/<digest>`) for `image`.
pub(crate) fn upstream_url(settings: &ProxySettings, image: &str, tail: &str) -> Option<String> {
    let url = url::Url::parse(settings.url.trim()).ok()?;
    let origin = url.origin().ascii_serialization();
    let prefix = url.path().trim_matches('/');
    let prefix = prefix
        .strip_suffix("v2")
        .unwrap_or(prefix)
        .trim_matches('/');
    let name = if !prefix.is_empty() {
        format!("{prefix}/{image}")
    } else if !image.contains('/') && settings.uses_library_prefix() {
        format!("library/{image}")
    } else {
        image.to_string()
    };
    Some(format!("{origin}/v2/{name}/{tail}"))
}

fn settings_of(proxy: &Registry) -> ApiResult<&ProxySettings> {
    proxy
        .proxy
        .as_ref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("not a proxy registry")))
}

/// The manifest `reference` of `image` through the proxies a read of `reg` reaches, in order.
pub(super) async fn manifest(
    state: &AppState,
    reg: &Registry,
    image: &str,
    reference: &str,
) -> ApiResult<Option<Found>> {
    for proxy in (Resolver { state }).proxies(reg).await? {
        let found = if is_digest(reference) {
            by_digest(state, &proxy, image, reference).await?
        } else {
            by_tag(state, &proxy, image, reference).await?
        };
        if found.is_some() {
            crate::formats::members::served_by(&proxy.identifier);
            return Ok(found);
        }
    }
    Ok(None)
}

/// A manifest by digest: from the cache, else fetched once and verified.
async fn by_digest(
    state: &AppState,
    proxy: &Registry,
    image: &str,
    digest: &str,
) -> ApiResult<Option<Found>> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Ok(None);
    };
    let cache = state.db.cache_of_proxy(&proxy.id).await?;
    if let Some(c) = &cache
        && let Some(f) = state
            .db
            .manifests_by_sha256(&c.id, image, hex)
            .await?
            .into_iter()
            .next()
    {
        return Ok(Some(Found {
            file: f,
            state: CacheState::Hit,
        }));
    }
    let Some(cache) = cache else {
        return Err(no_cache(proxy));
    };
    let settings = settings_of(proxy)?;
    let Some(url) = upstream_url(settings, image, &format!("manifests/{digest}")) else {
        return Ok(None);
    };
    if settings.offline || state.proxy.known_missing(proxy, &url) {
        return Ok(None);
    }
    check_circuit(state, proxy)?;
    let key = format!("{}|{image}@{digest}", proxy.id);
    let work = {
        let (state, proxy, image, digest) = (
            state.clone(),
            proxy.clone(),
            image.to_string(),
            digest.to_string(),
        );
        async move {
            let (bytes, media) = match get_manifest(&state, &proxy, &url).await? {
                Some(m) => m,
                None => return Ok(None),
            };
            let actual = hex::encode(sha2::Sha256::digest(&bytes));
            if format!("sha256:{actual}") != digest {
                return Err(Failure::Upstream(format!(
                    "the upstream's manifest {digest} does not match its digest; nothing was kept"
                )));
            }
            store_manifest(&state, &cache, &image, &digest, bytes, &media)
                .await
                .map(Some)
        }
        .boxed()
    };
    match state.proxy.manifests.run(&key, work).await {
        Ok(Some(f)) => Ok(Some(Found {
            file: f,
            state: CacheState::Miss,
        })),
        Ok(None) | Err(Failure::NotFound(_)) => Ok(None),
        Err(f) => Err(f.into()),
    }
}

/// A tag: fresh from the cache, else revalidated with a `HEAD`, else the stale copy.
async fn by_tag(
    state: &AppState,
    proxy: &Registry,
    image: &str,
    tag: &str,
) -> ApiResult<Option<Found>> {
    let settings = settings_of(proxy)?;
    let cache = state.db.cache_of_proxy(&proxy.id).await?;
    let Some(cache) = cache else {
        return Err(no_cache(proxy));
    };
    let path = format!("{image}/{tag}/manifest");
    let cached = state.db.file_by_path(&cache.id, &path).await?;
    let key = format!("oci-tag|{image}|{tag}");
    let checked = state.db.proxy_document(&proxy.id, &key).await?;
    let found = |file: FileRow, how: CacheState| Ok(Some(Found { file, state: how }));
    if settings.offline {
        return match cached {
            Some(f) => found(f, CacheState::Hit),
            None => Ok(None),
        };
    }
    if let (Some(f), Some(d)) = (&cached, &checked)
        && d.sha256 == f.sha256
        && now_ms() - d.fetched_at < settings.metadata_interval_secs.saturating_mul(1000)
    {
        return found(f.clone(), CacheState::Hit);
    }
    let Some(url) = upstream_url(settings, image, &format!("manifests/{tag}")) else {
        return Ok(None);
    };
    if cached.is_none() && state.proxy.known_missing(proxy, &url) {
        return Ok(None);
    }
    if state.proxy.circuit_open(proxy) {
        return match cached {
            Some(f) => found(f, CacheState::Stale),
            None => Err(circuit_error(proxy)),
        };
    }
    let work = revalidate_tag(
        state.clone(),
        proxy.clone(),
        cache,
        image.to_string(),
        tag.to_string(),
        url,
        key,
        cached.clone(),
    )
    .boxed();
    let flight = format!("{}|{image}:{tag}", proxy.id);
    match state.proxy.manifests.run(&flight, work).await {
        Ok(Some(f)) => {
            let how = match &cached {
                Some(c) if c.sha256 == f.sha256 => CacheState::Revalidated,
                _ => CacheState::Miss,
            };
            found(f, how)
        }
        Ok(None) => Ok(None),
        // The upstream dropped the tag or failed: the copy already served stays in service.
        Err(failure) => match cached {
            Some(f) => {
                tracing::warn!(proxy = %proxy.identifier, image, tag, ?failure, "serving a stale tag");
                found(f, CacheState::Stale)
            }
            None if matches!(failure, Failure::NotFound(_)) => Ok(None),
            None => Err(failure.into()),
        },
    }
}

/// One revalidation of a tag: `HEAD`, then a `GET` only if the digest moved.
#[allow(clippy::too_many_arguments)]
async fn revalidate_tag(
    state: AppState,
    proxy: Registry,
    cache: Registry,
    image: String,
    tag: String,
    url: String,
    key: String,
    cached: Option<FileRow>,
) -> Result<Option<FileRow>, Failure> {
    let engine = &state.proxy;
    let settings = proxy
        .proxy
        .clone()
        .ok_or_else(|| Failure::Internal("not a proxy registry".into()))?;
    let creds = crate::proxy::credentials(&state, &proxy, &settings).await?;
    let resp = engine
        .send(&proxy, &creds, Method::HEAD, &url, accept_headers())
        .await
        .map_err(|e| {
            engine.record_outcome(&proxy, false);
            transport_failure(&url, &e)
        })?;
    let status = resp.status();
    if matches!(status.as_u16(), 404 | 410) {
        engine.record_outcome(&proxy, true);
        engine.remember_missing(&proxy, &url);
        return Err(Failure::NotFound(format!("tag '{tag}' not found upstream")));
    }
    if !status.is_success() {
        engine.record_outcome(&proxy, false);
        return Err(Failure::Upstream(format!(
            "the upstream answered {status} for tag '{tag}'"
        )));
    }
    engine.record_outcome(&proxy, true);
    let upstream_digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mark = |sha256: &str| ProxyDocument {
        sha256: sha256.to_string(),
        content_type: None,
        etag: None,
        last_modified: None,
        url: url.clone(),
        fetched_at: now_ms(),
    };
    if let (Some(c), Some(d)) = (&cached, &upstream_digest)
        && *d == format!("sha256:{}", c.sha256)
    {
        state
            .db
            .put_proxy_document(&proxy.id, &key, &mark(&c.sha256))
            .await
            .map_err(|e| Failure::Internal(e.to_string()))?;
        return Ok(Some(c.clone()));
    }
    // Moved (or the upstream does not say): fetch what the tag names now.
    let Some((bytes, media)) = get_manifest(&state, &proxy, &url).await? else {
        return Err(Failure::NotFound(format!("tag '{tag}' not found upstream")));
    };
    let actual = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    if let Some(d) = &upstream_digest
        && *d != actual
        && d.starts_with("sha256:")
    {
        // The tag moved between the HEAD and the GET: what the GET returned is what it names.
        tracing::debug!(image, tag, head = %d, get = %actual, "tag moved during revalidation");
    }
    let file = store_manifest(&state, &cache, &image, &tag, bytes, &media).await?;
    state
        .db
        .put_proxy_document(&proxy.id, &key, &mark(&file.sha256))
        .await
        .map_err(|e| Failure::Internal(e.to_string()))?;
    Ok(Some(file))
}

fn accept_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
    h
}

/// GETs a manifest: its bytes and media type, `None` on 404/410.
async fn get_manifest(
    state: &AppState,
    proxy: &Registry,
    url: &str,
) -> Result<Option<(Bytes, String)>, Failure> {
    let engine = &state.proxy;
    let settings = proxy
        .proxy
        .clone()
        .ok_or_else(|| Failure::Internal("not a proxy registry".into()))?;
    let creds = crate::proxy::credentials(state, proxy, &settings).await?;
    let resp = engine
        .send(proxy, &creds, Method::GET, url, accept_headers())
        .await
        .map_err(|e| {
            engine.record_outcome(proxy, false);
            transport_failure(url, &e)
        })?;
    let status = resp.status();
    if matches!(status.as_u16(), 404 | 410) {
        engine.record_outcome(proxy, true);
        engine.remember_missing(proxy, url);
        return Ok(None);
    }
    if status != reqwest::StatusCode::OK {
        engine.record_outcome(proxy, false);
        return Err(Failure::Upstream(format!(
            "the upstream answered {status} for a manifest"
        )));
    }
    if resp.content_length().is_some_and(|l| l > MAX_MANIFEST) {
        return Err(Failure::Upstream(
            "the upstream's manifest is too large".into(),
        ));
    }
    let media = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let bytes = resp.bytes().await.map_err(|e| {
        engine.record_outcome(proxy, false);
        transport_failure(url, &e)
    })?;
    if bytes.is_empty() || bytes.len() as u64 > MAX_MANIFEST {
        engine.record_outcome(proxy, false);
        return Err(Failure::Upstream(
            "the upstream sent an empty or oversized manifest".into(),
        ));
    }
    engine.record_outcome(proxy, true);
    Ok(Some((bytes, media)))
}

/// Keeps a fetched manifest in the cache as version `version` (a tag, or the digest) of
/// `image`; a tag that moved loses its old manifest (cache content, not trashed).
async fn store_manifest(
    state: &AppState,
    cache: &Registry,
    image: &str,
    version: &str,
    bytes: Bytes,
    media: &str,
) -> Result<FileRow, Failure> {
    let internal = |e: &dyn std::fmt::Display| Failure::Internal(e.to_string());
    let media = Some(media).filter(|m| !m.is_empty() && *m != "application/octet-stream");
    let parsed = parse_manifest(&bytes, media).map_err(|e| {
        Failure::Upstream(format!(
            "the upstream sent an invalid manifest: {}",
            e.message
        ))
    })?;
    let len = bytes.len() as i64;
    let stream: ByteStream = Box::pin(futures::stream::once(async move {
        Ok::<_, std::io::Error>(bytes)
    }));
    let blob = state
        .blobs
        .put(stream, Some(MAX_MANIFEST), None)
        .await
        .map_err(|e| internal(&e))?;
    state.commit_blob(&blob).await.map_err(Failure::from)?;
    let digest = format!("sha256:{}", blob.sha256);
    let path = format!("{image}/{version}/manifest");
    if !is_digest(version) {
        if let Some(old) = state
            .db
            .file_by_path(&cache.id, &path)
            .await
            .map_err(|e| internal(&e))?
        {
            if old.sha256 == blob.sha256 {
                return Ok(old);
            }
            if let Some(pkg) = state
                .db
                .package_by_name(&cache.id, image)
                .await
                .map_err(|e| internal(&e))?
                && let Some(v) = state
                    .db
                    .version_by_name(&pkg.id, version)
                    .await
                    .map_err(|e| internal(&e))?
            {
                state
                    .db
                    .purge_version(&pkg, &v)
                    .await
                    .map_err(|e| internal(&e))?;
            }
        }
    } else if let Some(f) = state
        .db
        .manifests_by_sha256(&cache.id, image, &blob.sha256)
        .await
        .map_err(|e| internal(&e))?
        .into_iter()
        .next()
    {
        return Ok(f);
    }
    let blobs: Vec<&String> = parsed.blobs.iter().map(|(d, _)| d).collect();
    let wanted = Wanted {
        url: String::new(),
        sha256: None,
        sha512: None,
        sha1: None,
        package: image.to_string(),
        version: version.to_string(),
        path: path.clone(),
        name: "manifest".into(),
        content_type: Some(parsed.media_type.clone()),
        metadata: json!({"kind": "manifest", "mediaType": parsed.media_type, "digest": digest,
                         "artifactType": parsed.artifact_type, "subject": parsed.subject,
                         "blobs": blobs}),
    };
    let file = files::record_file(state, cache, &wanted, &blob).await?;
    let total: i64 = len + parsed.blobs.iter().map(|(_, s)| *s).sum::<i64>();
    state
        .db
        .merge_version_metadata(
            &file.version_id,
            &json!({"digest": digest, "mediaType": parsed.media_type, "size": total,
                    "artifactType": parsed.artifact_type}),
        )
        .await
        .map_err(|e| internal(&e))?;
    // Blobs fetched before this manifest was: listed under it too.
    for (d, _) in &parsed.blobs {
        if let Some(b) = state
            .db
            .repo_blob(&cache.id, image, d)
            .await
            .map_err(|e| internal(&e))?
        {
            let info = super::manifests::blob_info(state, &b.sha256)
                .await
                .map_err(|e| Failure::Internal(e.message))?;
            record_blob_file(state, cache, image, version, d, &info).await?;
        }
    }
    Ok(file)
}

/// The tags the upstreams of the proxies reached through `reg` list for `image` (revalidated per
/// the proxy's interval, the last list served while the upstream fails).
pub(super) async fn tags(state: &AppState, reg: &Registry, image: &str) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for proxy in (Resolver { state }).proxies(reg).await? {
        let settings = settings_of(&proxy)?;
        let Some(url) = upstream_url(settings, image, "tags/list") else {
            continue;
        };
        let key = format!("oci-tags/{image}");
        let req = crate::proxy::documents::Request {
            path: &key,
            accept: "application/json",
            revalidate: false,
        };
        if let Some(doc) = crate::proxy::documents::document_at(state, &proxy, req, url).await? {
            let listed: serde_json::Value = serde_json::from_slice(&doc.body).unwrap_or_default();
            for t in listed["tags"].as_array().into_iter().flatten() {
                if let Some(t) = t.as_str()
                    && super::manifests::valid_tag(t)
                    && !out.iter().any(|o| o == t)
                {
                    out.push(t.to_string());
                }
            }
        }
    }
    Ok(out)
}

/// A blob through the proxies a read of `reg` reaches: streamed on a miss, verified against
/// its digest, then kept (linked to the image in the cache and listed under the cached
/// manifests that reference it).
pub(super) async fn blob(
    state: &AppState,
    reg: &Registry,
    image: &str,
    digest: &str,
) -> ApiResult<Option<Got>> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Ok(None);
    };
    for proxy in (Resolver { state }).proxies(reg).await? {
        let settings = settings_of(&proxy)?;
        let Some(url) = upstream_url(settings, image, &format!("blobs/{digest}")) else {
            continue;
        };
        let wanted = Wanted {
            url,
            sha256: Some(hex.to_string()),
            sha512: None,
            sha1: None,
            package: image.to_string(),
            version: String::new(),
            // Never recorded under this path (blobs belong to manifests): the fetch's key.
            path: format!("{image}/blobs/{digest}"),
            name: digest.to_string(),
            content_type: Some("application/octet-stream".into()),
            metadata: json!({}),
        };
        let (image, digest) = (image.to_string(), digest.to_string());
        let (image2, digest2) = (image.clone(), digest.clone());
        let on_commit: files::OnCommit = Arc::new(move |state, cache, _wanted, blob| {
            let (image, digest) = (image.clone(), digest.clone());
            async move { keep_blob(&state, &cache, &image, &digest, &blob).await }.boxed()
        });
        // Layers need only their content address (as pushed ones do).
        let mut keep = files::Keep::new(on_commit, crate::blob::Digests::Sha256);
        keep.probe = Arc::new(move |state, cache, _wanted| {
            let (image, digest) = (image2.clone(), digest2.clone());
            async move {
                let internal = |e: crate::store::StoreError| Failure::Internal(e.to_string());
                match state
                    .db
                    .repo_blob(&cache.id, &image, &digest)
                    .await
                    .map_err(internal)?
                {
                    Some(b) => state
                        .db
                        .blob_as_file(&b.sha256, &digest)
                        .await
                        .map_err(internal),
                    None => Ok(None),
                }
            }
            .boxed()
        });
        if let Some(got) = files::open_with(state, &proxy, wanted, keep).await? {
            return Ok(Some(got));
        }
    }
    Ok(None)
}

async fn keep_blob(
    state: &AppState,
    cache: &Registry,
    image: &str,
    digest: &str,
    blob: &BlobInfo,
) -> Result<FileRow, Failure> {
    let internal = |e: &dyn std::fmt::Display| Failure::Internal(e.to_string());
    state
        .db
        .link_blob(&cache.id, image, digest, blob)
        .await
        .map_err(|e| internal(&e))?;
    if let Some(pkg) = state
        .db
        .package_by_name(&cache.id, image)
        .await
        .map_err(|e| internal(&e))?
    {
        for v in state
            .db
            .package_versions(&pkg.id)
            .await
            .map_err(|e| internal(&e))?
        {
            let listed = v.metadata["blobs"]
                .as_array()
                .is_some_and(|l| l.iter().any(|d| d == digest));
            let manifest_listed = state
                .db
                .file_by_path(&cache.id, &format!("{image}/{}/manifest", v.version))
                .await
                .map_err(|e| internal(&e))?
                .is_some_and(|f| {
                    f.metadata["blobs"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|d| d == digest))
                });
            if listed || manifest_listed {
                record_blob_file(state, cache, image, &v.version, digest, blob).await?;
            }
        }
    }
    state
        .db
        .blob_as_file(&blob.sha256, digest)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| Failure::Internal("a kept blob vanished".into()))
}

async fn record_blob_file(
    state: &AppState,
    cache: &Registry,
    image: &str,
    version: &str,
    digest: &str,
    blob: &BlobInfo,
) -> Result<(), Failure> {
    let wanted = Wanted {
        url: String::new(),
        sha256: None,
        sha512: None,
        sha1: None,
        package: image.to_string(),
        version: version.to_string(),
        path: format!("{image}/{version}/blobs/{digest}"),
        name: digest.to_string(),
        content_type: Some("application/octet-stream".into()),
        metadata: json!({"kind": "blob", "digest": digest}),
    };
    files::record_file(state, cache, &wanted, blob)
        .await
        .map(|_| ())
}

fn check_circuit(state: &AppState, proxy: &Registry) -> ApiResult<()> {
    if state.proxy.circuit_open(proxy) {
        return Err(circuit_error(proxy));
    }
    Ok(())
}

fn circuit_error(proxy: &Registry) -> ApiError {
    ApiError::BadGateway(format!(
        "the upstream of '{}' failed repeatedly and is not asked again for a moment",
        proxy.identifier
    ))
}

fn no_cache(proxy: &Registry) -> ApiError {
    ApiError::BadGateway(format!(
        "container proxy '{}' keeps manifests in its cache, and it has none (isCaching is false)",
        proxy.identifier
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, source: Option<&str>, prefix: Option<bool>) -> ProxySettings {
        ProxySettings {
            url: url.into(),
            source: source.map(str::to_string),
            library_prefix: prefix,
            ..Default::default()
        }
    }

    #[test]
    fn upstream_names() {
        let hub = settings("https://hub.test", Some("Dockerhub"), None);
        assert_eq!(
            upstream_url(&hub, "alpine", "manifests/3").unwrap(),
            "https://hub.test/v2/library/alpine/manifests/3"
        );
        assert_eq!(
            upstream_url(&hub, "team/app", "blobs/sha256:00").unwrap(),
            "https://hub.test/v2/team/app/blobs/sha256:00"
        );
        let off = settings("https://hub.test/", Some("Dockerhub"), Some(false));
        assert_eq!(
            upstream_url(&off, "alpine", "manifests/3").unwrap(),
            "https://hub.test/v2/alpine/manifests/3"
        );
        let custom = settings("http://127.0.0.1:9/acme/up/", None, None);
        assert_eq!(
            upstream_url(&custom, "alpine", "manifests/3").unwrap(),
            "http://127.0.0.1:9/v2/acme/up/alpine/manifests/3"
        );
        let with_v2 = settings("http://127.0.0.1:9/v2/", Some("Custom"), Some(true));
        assert_eq!(
            upstream_url(&with_v2, "alpine", "manifests/3").unwrap(),
            "http://127.0.0.1:9/v2/library/alpine/manifests/3"
        );
    }
}

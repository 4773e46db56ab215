//! Blobs and blob uploads.

use crate::http::header_value;
use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures::TryStreamExt;

use super::{Ctx, OciError, OciResult, Repo, empty, parse_digest, resolve_repo};
use crate::auth::Need;
use crate::blob::{BlobError, BlobInfo, ByteStream, Digests};
use crate::formats::Resolver;
use crate::model::Registry;
use crate::proxy::files::Got;
use crate::store::oci::RepoBlob;

/// The blob as seen through the repository's read chain (a group sees its members' blobs).
pub(super) async fn find_blob(
    ctx: &Ctx<'_>,
    repo: &Repo,
    digest: &str,
) -> OciResult<Option<(Registry, RepoBlob)>> {
    let resolver = Resolver { state: ctx.state };
    // An image a hosted member holds is never pulled from a proxy member (unless allow-listed).
    resolver.guard(&repo.registry, &repo.image).await?;
    for r in resolver.read_chain(&repo.registry).await? {
        if let Some(b) = ctx.state.db.repo_blob(&r.id, &repo.image, digest).await? {
            resolver.served_from(&repo.registry, &r.id).await?;
            return Ok(Some((r, b)));
        }
    }
    Ok(None)
}

pub(super) async fn blob(ctx: &Ctx<'_>, repo: &Repo, digest: &str) -> OciResult<Response> {
    parse_digest(digest)?;
    match ctx.method {
        Method::GET | Method::HEAD => {
            ctx.who.check(repo, Need::Read)?;
            let got = match find_blob(ctx, repo, digest).await? {
                Some((_, b)) => Got::Stored(
                    ctx.state
                        .db
                        .blob_as_file(&b.sha256, digest)
                        .await?
                        .ok_or_else(|| OciError::blob_unknown(digest))?,
                ),
                None => super::proxy::blob(ctx.state, &repo.registry, &repo.image, digest)
                    .await?
                    .ok_or_else(|| OciError::blob_unknown(digest))?,
            };
            let mut resp = match got {
                // Blob rows are synthetic (no file to count downloads on).
                Got::Stored(file) => {
                    crate::download::serve_blob(ctx.state, &file, &ctx.method, &ctx.headers).await?
                }
                live => live.respond(ctx.state, &ctx.method, &ctx.headers).await?,
            };
            let h = resp.headers_mut();
            h.insert("docker-content-digest", header_value(digest));
            h.insert(header::ETAG, header_value(&format!("\"{digest}\"")));
            Ok(resp)
        }
        Method::DELETE => {
            let target = (Resolver { state: ctx.state })
                .write_target(&repo.registry)
                .await?;
            ctx.who.check(repo, Need::Delete)?;
            if !ctx
                .state
                .db
                .unlink_blob(&target.id, &repo.image, digest)
                .await?
            {
                return Err(OciError::blob_unknown(digest));
            }
            Ok(empty(StatusCode::ACCEPTED))
        }
        _ => Err(OciError::unsupported("blobs support GET, HEAD and DELETE")),
    }
}

fn location(repo: &Repo, id: &str) -> String {
    format!("/v2/{}/blobs/uploads/{id}", repo.name)
}

/// 202 with the upload's location and the bytes received so far.
fn accepted(repo: &Repo, id: &str, size: i64, status: StatusCode) -> Response {
    let mut resp = empty(status);
    let h = resp.headers_mut();
    h.insert(header::LOCATION, header_value(&location(repo, id)));
    h.insert("docker-upload-uuid", header_value(id));
    h.insert(
        header::RANGE,
        header_value(&format!("0-{}", (size - 1).max(0))),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

fn created(repo: &Repo, digest: &str) -> Response {
    let mut resp = empty(StatusCode::CREATED);
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{}/blobs/{digest}", repo.name)),
    );
    h.insert("docker-content-digest", header_value(digest));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// Stores a stream as the blob `digest`, verifying it; nothing is kept when it does not match.
async fn store_verified(ctx: &Ctx<'_>, stream: ByteStream, digest: &str) -> OciResult<BlobInfo> {
    let (alg, hex) = parse_digest(digest)?;
    let expected = (alg == "sha256").then_some(hex.as_str());
    let blob = ctx
        .state
        .blobs
        .put_with(
            stream,
            Some(ctx.state.config.max_upload_bytes),
            expected,
            digests_for(alg),
        )
        .await
        .map_err(|e| mismatch(e, digest))?;
    check_sha512(&blob, alg, &hex, digest)?;
    Ok(blob)
}

/// SHA-256 digests need only SHA-256 (the other digests are filled in if another format ever
/// stores the same content); SHA-512 digests need SHA-512 too.
fn digests_for(alg: &str) -> Digests {
    if alg == "sha256" {
        Digests::Sha256
    } else {
        Digests::All
    }
}

fn mismatch(e: BlobError, digest: &str) -> OciError {
    match e {
        BlobError::DigestMismatch { actual, .. } => OciError::digest_invalid(format!(
            "the content's digest is sha256:{actual}, not {digest}"
        )),
        other => other.into(),
    }
}

fn check_sha512(blob: &BlobInfo, alg: &str, hex: &str, digest: &str) -> OciResult<()> {
    if alg == "sha512" && blob.sha512 != hex {
        return Err(OciError::digest_invalid(format!(
            "the content's digest is sha512:{}, not {digest}",
            blob.sha512
        )));
    }
    Ok(())
}

pub(super) async fn upload(
    ctx: &Ctx<'_>,
    repo: &Repo,
    session: &str,
    body: Body,
) -> OciResult<Response> {
    let target = (Resolver { state: ctx.state })
        .write_target(&repo.registry)
        .await?;
    ctx.who.check(repo, Need::Write)?;
    if matches!(ctx.method, Method::POST | Method::PATCH | Method::PUT) {
        crate::formats::upload::check_free_space(ctx.state, &ctx.headers).await?;
    }
    if session.is_empty() {
        if ctx.method != Method::POST {
            return Err(OciError::unsupported("start an upload with POST"));
        }
        return start(ctx, repo, &target, body).await;
    }
    if session.contains('/') {
        return Err(OciError::upload_unknown());
    }
    let up = ctx
        .state
        .db
        .upload(session)
        .await?
        .filter(|u| u.registry_id == target.id && u.image == repo.image)
        .ok_or_else(OciError::upload_unknown)?;
    match ctx.method {
        Method::GET => Ok(accepted(repo, &up.id, up.size, StatusCode::NO_CONTENT)),
        Method::PATCH => {
            let size = append(ctx, &up.id, up.size, body, true).await?;
            Ok(accepted(repo, &up.id, size, StatusCode::ACCEPTED))
        }
        Method::PUT => {
            let digest = ctx
                .query("digest")
                .ok_or_else(|| OciError::digest_invalid("the final PUT needs ?digest="))?;
            let (alg, hex) = parse_digest(&digest)?;
            let result = if up.size == 0 {
                // Monolithic: the body is the whole blob; store it in one pass.
                let r = store_verified(ctx, body_stream(body), &digest).await;
                ctx.state.blobs.session_abort(&up.id).await?;
                r
            } else {
                let size = append(ctx, &up.id, up.size, body, false).await?;
                let expected = (alg == "sha256").then_some(hex.as_str());
                match ctx
                    .state
                    .blobs
                    .session_finish(&up.id, size as u64, expected, digests_for(alg))
                    .await
                {
                    Ok(b) => check_sha512(&b, alg, &hex, &digest).map(|_| b),
                    Err(e) => Err(mismatch(e, &digest)),
                }
            };
            // The session ends either way: a failed upload leaves nothing behind.
            ctx.state.db.delete_upload(&up.id).await?;
            let blob = result?;
            ctx.state.commit_blob(&blob).await?;
            ctx.state
                .db
                .link_blob(&target.id, &repo.image, &digest, &blob)
                .await?;
            Ok(created(repo, &digest))
        }
        Method::DELETE => {
            ctx.state.db.delete_upload(&up.id).await?;
            ctx.state.blobs.session_abort(&up.id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(OciError::unsupported(
            "uploads support GET, PATCH, PUT and DELETE",
        )),
    }
}

/// `POST .../blobs/uploads/`: a cross-repository mount, a single-request upload with `?digest=`,
/// or a new session.
async fn start(ctx: &Ctx<'_>, repo: &Repo, target: &Registry, body: Body) -> OciResult<Response> {
    if let (Some(digest), Some(from)) = (ctx.query("mount"), ctx.query("from")) {
        parse_digest(&digest)?;
        // Mount only what the caller may read; otherwise fall back to a normal upload.
        if let Ok(source) = resolve_repo(ctx.state, &from).await
            && ctx.who.check(&source, Need::Read).is_ok()
            && let Some((_, b)) = find_blob(ctx, &source, &digest).await?
        {
            let info = BlobInfo {
                sha256: b.sha256.clone(),
                sha1: String::new(),
                md5: String::new(),
                sha512: String::new(),
                size: b.size as u64,
            };
            // The blob row exists already; link_blob's insert of it is a no-op.
            ctx.state.commit_blob(&info).await?;
            ctx.state
                .db
                .link_blob(&target.id, &repo.image, &digest, &info)
                .await?;
            return Ok(created(repo, &digest));
        }
    } else if let Some(digest) = ctx.query("digest") {
        let blob = store_verified(ctx, body_stream(body), &digest).await?;
        ctx.state.commit_blob(&blob).await?;
        ctx.state
            .db
            .link_blob(&target.id, &repo.image, &digest, &blob)
            .await?;
        return Ok(created(repo, &digest));
    }
    let id = uuid::Uuid::new_v4().to_string();
    ctx.state.blobs.session_create(&id).await?;
    ctx.state
        .db
        .create_upload(&id, &target.id, &repo.image)
        .await?;
    Ok(accepted(repo, &id, 0, StatusCode::ACCEPTED))
}

/// The first offset of a PATCH's `Content-Range` (`<start>-<end>`, optionally `bytes` first).
pub(crate) fn content_range_start(cr: &str) -> Option<i64> {
    let cr = cr
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches([' ', '=']);
    cr.split_once('-')
        .and_then(|(a, _)| a.trim().parse::<i64>().ok())
}

/// Appends a request body to an upload; `Content-Range` (PATCH) must continue where it stopped.
async fn append(ctx: &Ctx<'_>, id: &str, size: i64, body: Body, patch: bool) -> OciResult<i64> {
    let range_error = |m: String| {
        let mut e = OciError::new(StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID", m);
        e.scope = None;
        e
    };
    if patch
        && let Some(cr) = ctx
            .headers
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
    {
        let start = content_range_start(cr)
            .ok_or_else(|| range_error(format!("malformed Content-Range '{cr}'")))?;
        if start != size {
            return Err(range_error(format!(
                "the chunk starts at {start}, but the upload has {size} bytes"
            )));
        }
    }
    // Chunks go at the end of what was received; a chunk another process appended meanwhile
    // shows up as a size mismatch below.
    let written = ctx
        .state
        .blobs
        .session_append(
            id,
            size as u64,
            body_stream(body),
            ctx.state.config.max_upload_bytes,
        )
        .await
        .map_err(|e| match e {
            BlobError::TooLarge(limit) => OciError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("the blob is larger than {limit} bytes"),
            ),
            BlobError::Body(e) => OciError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                format!("reading the chunk: {e}"),
            ),
            BlobError::NotFound(_) => OciError::upload_unknown(),
            other => other.into(),
        })? as i64;
    if written > 0
        && !ctx
            .state
            .db
            .advance_upload(id, size, size + written)
            .await?
    {
        return Err(range_error("the upload moved on concurrently".into()));
    }
    Ok(size + written)
}

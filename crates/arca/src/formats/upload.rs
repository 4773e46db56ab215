//! The one upload pipeline the formats' uploads go through (all but Maven's deploy, which still
//! runs its own sequence, and OCI's blob sessions, which live outside the blob store), in order:
//!
//! 1. [`Upload::begin`], *before the first body byte is read*: the registry's write target,
//!    write permission on it, and the declared `Content-Length` against the cap of the way the
//!    body is going to be read ([`Body::Streamed`] to the blob store, or [`Body::Parsed`] in
//!    memory). A refused request therefore costs the server nothing but its headers, whoever
//!    sends it (an anonymous caller may read a public registry, never write it);
//! 2. the body: streamed into a staged blob ([`Upload::stage`], capped at `max_upload_bytes`) or
//!    read into memory ([`Upload::read_parsed`], capped at the much smaller
//!    `max_parsed_body_bytes`);
//! 3. the checks that need the body, done by the format (name and version from the package),
//!    then the registry's rules on them in [`Upload::check_new`] (allowed/blocked patterns,
//!    re-upload policy);
//! 4. [`Upload::record`]: the staged blob committed and recorded in the metadata store, then the
//!    file row written (the row's unique index settles concurrent uploads). A staged blob that is
//!    dropped instead (any error on the way) leaves nothing behind.

use axum::http::HeaderMap;
use bytes::Bytes;
use futures::TryStreamExt;

use super::{NativeRequest, Resolver};
use crate::auth::{Need, Principal};
use crate::blob::{ByteStream, Digests, StagedBlob};
use crate::error::{ApiError, ApiResult};
use crate::model::{Registry, Reupload};
use crate::state::AppState;
use crate::store::artifacts::{FileRow, NewFile};

/// How an upload's body is going to be read, which decides the cap its size is held against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Streamed to the blob store: `max_upload_bytes`.
    Streamed,
    /// Held in memory to be parsed: `max_parsed_body_bytes` (and no more than the upload cap
    /// plus some metadata).
    Parsed,
    /// Both in one body: a document parsed in memory around a file streamed out of it (npm
    /// publish, whose tarball is base64 inside the JSON, 4 bytes for 3).
    ParsedAround,
}

/// The part of a file row an upload describes; the blob comes from the staged upload.
pub struct FileSpec<'a> {
    pub package: &'a str,
    pub version: &'a str,
    pub path: &'a str,
    pub name: &'a str,
    pub content_type: Option<&'a str>,
    pub metadata: serde_json::Value,
}

/// An upload that passed the checks that need no body. See the module documentation.
pub struct Upload<'a> {
    state: &'a AppState,
    /// Where the upload lands: the registry itself, or a group's deployment member.
    pub target: Registry,
}

impl<'a> Upload<'a> {
    /// Checks write target, write permission and declared size before the body is touched. On
    /// refusal the body is drained in the background (bounded), so that a client still sending
    /// reads the error instead of a reset connection, while the error is answered at once.
    pub async fn begin(
        state: &'a AppState,
        req: &NativeRequest,
        body: Body,
    ) -> ApiResult<Upload<'a>> {
        match Self::authorize(state, &req.registry, &req.principal, &req.headers, body).await {
            Ok(u) => Ok(u),
            Err(e) => {
                let stream = stream_of(req.take_body());
                tokio::spawn(crate::blob::drain(stream));
                Err(e)
            }
        }
    }

    async fn authorize(
        state: &'a AppState,
        reg: &Registry,
        principal: &Principal,
        headers: &HeaderMap,
        body: Body,
    ) -> ApiResult<Upload<'a>> {
        let target = Resolver { state }.write_target(reg).await?;
        principal.check(&target, Need::Write)?;
        crate::http::check_length(headers, cap(state, body))?;
        check_free_space(state, headers).await?;
        Ok(Upload { state, target })
    }

    /// Streams a body into a staged blob, capped at `max_upload_bytes`.
    pub async fn stage(&self, body: ByteStream) -> ApiResult<StagedBlob> {
        Ok(self
            .state
            .blobs
            .stage(body, Some(self.state.config.max_upload_bytes), Digests::All)
            .await?)
    }

    /// Stages content that is already in memory (a parsed body, or a part of one).
    pub async fn stage_bytes(&self, bytes: Bytes) -> ApiResult<StagedBlob> {
        self.stage(Box::pin(futures::stream::once(async move {
            Ok::<_, std::io::Error>(bytes)
        })))
        .await
    }

    /// A staged blob fed piece by piece (a file decoded out of a larger body): send its bytes,
    /// drop the sender, then await the handle. Sending fails once the blob store has given up
    /// (the file is larger than `max_upload_bytes`); the handle then says why.
    pub fn stage_piecewise(
        &self,
    ) -> (
        futures::channel::mpsc::Sender<std::io::Result<Bytes>>,
        tokio::task::JoinHandle<ApiResult<StagedBlob>>,
    ) {
        let (tx, rx) = futures::channel::mpsc::channel(2);
        let blobs = self.state.blobs.clone();
        let limit = self.state.config.max_upload_bytes;
        let handle =
            tokio::spawn(
                async move { Ok(blobs.stage(Box::pin(rx), Some(limit), Digests::All).await?) },
            );
        (tx, handle)
    }

    /// Runs a blocking parser over a staged upload's file (archives need to seek). What it
    /// reports is the client's fault: a 400 naming `field`.
    pub async fn inspect<T: Send + 'static>(
        &self,
        staged: &StagedBlob,
        field: &'static str,
        parse: impl FnOnce(&std::path::Path) -> Result<T, String> + Send + 'static,
    ) -> ApiResult<T> {
        let path = staged.path().to_path_buf();
        tokio::task::spawn_blocking(move || parse(&path))
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("package reader panicked: {e}")))?
            .map_err(|e| ApiError::bad(field, e))
    }

    /// Reads a body that is parsed in memory, capped at `max_parsed_body_bytes`.
    pub async fn read_parsed(&self, body: axum::body::Body) -> ApiResult<Bytes> {
        let limit = self.parsed_limit();
        crate::http::read_body(body, limit).await
    }

    /// The in-memory cap as a `usize`.
    pub fn parsed_limit(&self) -> usize {
        cap(self.state, Body::Parsed).min(usize::MAX as u64) as usize
    }

    /// The registry's rules on what the body turned out to hold: allowed/blocked patterns on
    /// `subject` (`name:version`), and with re-upload NONE an existing `path` is refused with
    /// `conflict` (the format's own wording). The file row's unique index still decides races.
    pub async fn check_new(
        &self,
        subject: &str,
        path: &str,
        conflict: impl FnOnce() -> ApiError,
    ) -> ApiResult<()> {
        self.target.check_patterns(subject)?;
        if self.target.reupload == Reupload::None
            && self
                .state
                .db
                .file_by_path(&self.target.id, path)
                .await?
                .is_some()
        {
            return Err(conflict());
        }
        Ok(())
    }

    /// Commits a staged blob no file row points at (a document referenced from metadata, like
    /// PEP 658's METADATA next to a wheel).
    pub async fn commit(&self, staged: StagedBlob) -> ApiResult<crate::blob::BlobInfo> {
        let blob = self.state.blobs.commit(staged).await?;
        self.state.commit_blob(&blob).await?;
        Ok(blob)
    }

    /// Commits the staged blob and records the file; a conflicting concurrent upload is reported
    /// with `conflict`.
    pub async fn record(
        &self,
        staged: StagedBlob,
        file: FileSpec<'_>,
        conflict: impl FnOnce() -> ApiError,
    ) -> ApiResult<FileRow> {
        // Every format's names pass here, before anything is committed: a refusal leaves
        // nothing behind. (Formats whose names come from the URL check them early as well.)
        for (field, value) in [
            ("package", file.package),
            ("version", file.version),
            ("path", file.path),
            ("file name", file.name),
        ] {
            crate::model::check_visible(field, value)?;
        }
        let blob = self.commit(staged).await?;
        self.state
            .db
            .record_file(
                &self.target,
                NewFile {
                    package: file.package,
                    version: file.version,
                    path: file.path,
                    name: file.name,
                    blob: &blob,
                    content_type: file.content_type,
                    metadata: file.metadata,
                },
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => conflict(),
                other => other.into(),
            })
    }
}

/// Refuses (507) an upload the blob store's disk has no room for: less free than the declared
/// `Content-Length` (0 for a chunked body) plus the `min_free_bytes` reserve, which keeps room for
/// the metadata store, logs and the uploads already streaming. Checked before the body is read,
/// so a client learns it at once instead of after sending gigabytes that end in a full disk.
pub async fn check_free_space(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let free = match state.blobs.free_space().await {
        Ok(Some(free)) => free,
        // A store that cannot tell is never full from here.
        Ok(None) => return Ok(()),
        Err(e) => {
            // Not knowing is no reason to refuse; a full disk still answers 507 when written.
            tracing::warn!("checking the blob store's free space: {e}");
            return Ok(());
        }
    };
    let declared = crate::http::declared_length(headers).unwrap_or(0);
    let needed = declared.saturating_add(state.config.min_free_bytes);
    if free < needed {
        tracing::warn!(
            free,
            declared,
            reserve = state.config.min_free_bytes,
            "upload refused: the blob store's disk is (nearly) full"
        );
        return Err(ApiError::InsufficientStorage(match declared {
            0 => "the registry's storage is out of free space; try again later".into(),
            n => format!(
                "the registry's storage has not enough free space for an upload of {n} bytes; try again later"
            ),
        }));
    }
    Ok(())
}

/// What a parsed body may hold beyond the file it carries (Cargo's JSON metadata).
const METADATA_ALLOWANCE: u64 = 16 << 20;

/// The cap a body read the given way is held against.
fn cap(state: &AppState, body: Body) -> u64 {
    let c = &state.config;
    match body {
        Body::Streamed => c.max_upload_bytes,
        // A parsed body carries a file (a chart, a .crate), which is an upload like any other:
        // the in-memory cap never lets it past the upload cap.
        Body::Parsed => c
            .max_parsed_body_bytes
            .min(c.max_upload_bytes.saturating_add(METADATA_ALLOWANCE)),
        Body::ParsedAround => (c.max_upload_bytes.saturating_mul(4) / 3)
            .saturating_add(4)
            .saturating_add(c.max_parsed_body_bytes),
    }
}

fn stream_of(body: axum::body::Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    use crate::http::check_length;
    use axum::http::header;

    #[test]
    fn declared_length_is_checked_against_the_cap() {
        let mut h = HeaderMap::new();
        assert!(
            check_length(&h, 10).is_ok(),
            "no Content-Length: capped while reading"
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert!(check_length(&h, 10).is_ok());
        h.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from_static("10737418240"),
        );
        assert!(matches!(
            check_length(&h, 10),
            Err(ApiError::PayloadTooLarge(_))
        ));
    }
}

//! Content-addressed blob store.
//!
//! Every file body is streamed into a temporary object while all the digests any format needs
//! (MD5, SHA-1, SHA-256, SHA-512) are computed in the same pass, then committed under its SHA-256
//! by an atomic rename. A killed upload leaves only a temporary file (swept at start-up), never a
//! half-written blob; the same content uploaded twice, to any registry, is stored once.
//!
//! Uploads that must be inspected before they are accepted are *staged*: [`BlobStore::stage`]
//! streams the body aside (hashed, readable as a local file, invisible to readers), and the
//! format then either [`BlobStore::commit`]s it or drops it, which leaves nothing behind.
//!
//! Uploads that arrive over several requests (OCI chunked uploads), possibly at different server
//! processes, are *sessions* kept by the store, as distribution's storage driver keeps them:
//! [`BlobStore::session_create`], [`BlobStore::session_append`] at the offset the metadata store
//! says was reached, then [`BlobStore::session_finish`] into a verified blob or
//! [`BlobStore::session_abort`]. Handlers never touch the session's bytes themselves, so a second
//! backend (S3 multipart uploads) is a second implementation of these operations.
//!
//! The local backend is written against `tokio::fs` on purpose: `object_store`'s local backend
//! streams reads in 8 KiB chunks, which costs an order of magnitude more CPU per byte than the 1 MiB
//! chunks used here. S3-compatible storage (scale-out, several servers on one bucket) is a second
//! implementation of the same trait, in [`s3`].

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

pub mod s3;
pub use s3::S3BlobStore;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Digests and size of a stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub sha256: String,
    pub sha1: String,
    pub md5: String,
    pub sha512: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("body larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("reading request body: {0}")]
    Body(std::io::Error),
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
}

impl From<BlobError> for crate::error::ApiError {
    fn from(e: BlobError) -> Self {
        use crate::error::ApiError;
        match e {
            BlobError::TooLarge(_) => ApiError::PayloadTooLarge(e.to_string()),
            BlobError::DigestMismatch { .. } => ApiError::bad("digest", e.to_string()),
            BlobError::Body(_) => ApiError::bad_request(e.to_string()),
            BlobError::NotFound(_) => ApiError::not_found(e.to_string()),
            BlobError::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => io.into(),
            BlobError::Io(io) => ApiError::Internal(anyhow::Error::new(io).context("blob storage")),
        }
    }
}

/// What a reader gets back: the stream of the requested range and the blob's full size.
pub struct BlobRead {
    pub stream: ByteStream,
    pub total_size: u64,
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Streams a body into the store. `limit` caps the size; `expected_sha256` (hex) is verified
    /// before the blob becomes visible.
    async fn put(
        &self,
        body: ByteStream,
        limit: Option<u64>,
        expected_sha256: Option<&str>,
    ) -> Result<BlobInfo, BlobError> {
        self.put_with(body, limit, expected_sha256, Digests::All)
            .await
    }
    /// [`BlobStore::put`] computing only `digests`: staged, checked against `expected_sha256`,
    /// then committed (one sequence for every store).
    async fn put_with(
        &self,
        body: ByteStream,
        limit: Option<u64>,
        expected_sha256: Option<&str>,
        digests: Digests,
    ) -> Result<BlobInfo, BlobError> {
        let staged = self.stage(body, limit, digests).await?;
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&staged.info.sha256)
        {
            return Err(BlobError::DigestMismatch {
                expected: expected.to_string(),
                actual: staged.info.sha256.clone(),
            });
        }
        self.commit(staged).await
    }
    /// Streams a body aside into a staged blob, capped at `limit` bytes. Nothing is visible until
    /// [`BlobStore::commit`]; dropping the staged blob discards it.
    async fn stage(
        &self,
        body: ByteStream,
        limit: Option<u64>,
        digests: Digests,
    ) -> Result<StagedBlob, BlobError>;
    /// Makes a staged blob visible under its SHA-256 (deduplicated against stored content).
    async fn commit(&self, staged: StagedBlob) -> Result<BlobInfo, BlobError>;
    /// Opens an empty upload session under `id` (letters, digits and `-` only).
    async fn session_create(&self, id: &str) -> Result<(), BlobError>;
    /// Appends `body` to the session after its first `offset` bytes (the size the metadata store
    /// recorded; bytes beyond it, left by a chunk that failed half-way, are cut first) and returns
    /// the number of bytes written. A session may not grow past `limit` bytes: `TooLarge`, with
    /// the rest of the body drained so that the client reads the answer.
    async fn session_append(
        &self,
        id: &str,
        offset: u64,
        body: ByteStream,
        limit: u64,
    ) -> Result<u64, BlobError>;
    /// Ends a session by storing its first `size` bytes as a blob, verified against
    /// `expected_sha256`. The session is gone afterwards, whether the blob was stored or not.
    async fn session_finish(
        &self,
        id: &str,
        size: u64,
        expected_sha256: Option<&str>,
        digests: Digests,
    ) -> Result<BlobInfo, BlobError>;
    /// Ends a session, discarding its bytes (no error if it is already gone).
    async fn session_abort(&self, id: &str) -> Result<(), BlobError>;
    /// Up to `limit` stored blobs whose SHA-256 sorts after `after`, in order: the garbage
    /// collector's resumable listing pass over the store (on S3, a continuation of
    /// `ListObjectsV2`), which finds content no metadata row knows.
    async fn list_blobs(&self, after: Option<&str>, limit: usize)
    -> Result<Vec<Listed>, BlobError>;
    /// The ids of the sessions the store holds, with their last modification.
    async fn list_sessions(&self) -> Result<Vec<Listed>, BlobError>;
    /// Removes what interrupted writes left in the temporary area (a crash between streaming and
    /// renaming) that has not been written to since `cutoff_ms`; returns (files, bytes).
    async fn sweep_temporaries(&self, cutoff_ms: i64) -> Result<(u64, u64), BlobError>;
    /// Reads a blob, optionally only the byte range `start..end` (end exclusive).
    async fn get(&self, sha256: &str, range: Option<(u64, u64)>) -> Result<BlobRead, BlobError>;
    async fn exists(&self, sha256: &str) -> Result<bool, BlobError>;
    async fn delete(&self, sha256: &str) -> Result<(), BlobError>;
    /// Garbage collection, step 1: moves the blob out of reach (false when it is not stored).
    /// A concurrent `put` of the same content stores it afresh.
    async fn quarantine(&self, sha256: &str) -> Result<bool, BlobError>;
    /// Step 2a: the blob turned out to be needed after all; put it back.
    async fn restore(&self, sha256: &str) -> Result<(), BlobError>;
    /// Step 2b: the blob is gone for good.
    async fn discard(&self, sha256: &str) -> Result<(), BlobError>;
    /// Bytes that can still be written where blobs are stored, checked before an upload is
    /// accepted; None when the store cannot tell (object storage has no such bound).
    async fn free_space(&self) -> Result<Option<u64>, BlobError>;
    /// Reachable and writable (for `/ready`).
    async fn ready(&self) -> bool;
    /// A URL from which a client can fetch the whole blob directly (a presigned S3 GET, valid a
    /// few minutes), answered with these response headers (`content-type`,
    /// `content-disposition`); None when the store serves downloads itself.
    async fn download_url(
        &self,
        _sha256: &str,
        _headers: &[(&str, &str)],
    ) -> Result<Option<String>, BlobError> {
        Ok(None)
    }
    /// The blob as a local file, for parsers that need to seek (zip, ar): the blob itself where the
    /// store is a local disk, a temporary copy otherwise.
    async fn local_file(&self, sha256: &str) -> Result<BlobFile, BlobError>;
}

/// An entry of a listing: a blob's SHA-256 (or a session's id), its size and when it was last
/// written (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified_ms: i64,
}

/// A staged upload: its digests and a local file holding it, removed on drop unless committed.
pub struct StagedBlob {
    pub info: BlobInfo,
    guard: TmpGuard,
}

impl StagedBlob {
    /// The staged content as a local file, for parsers that need to read or seek it.
    pub fn path(&self) -> &Path {
        // The guard holds the path until the blob is committed, which consumes `self`.
        self.guard.0.as_deref().unwrap_or(Path::new(""))
    }
}

/// A blob readable as a file; a temporary copy is removed on drop.
pub struct BlobFile {
    pub path: PathBuf,
    _tmp: Option<tempfile::TempPath>,
}

/// Which digests a write computes. Every format needs SHA-256 (the content address); Maven
/// sidecars, npm and NuGet also need MD5, SHA-1 and SHA-512. OCI blobs skip those: they are
/// filled in (`record_blob`) if a format that needs them ever stores the same content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digests {
    All,
    Sha256,
}

/// Computes the chosen digests in one pass.
pub struct MultiHasher {
    sha256: Sha256,
    others: Option<(Sha1, Md5, Sha512)>,
    size: u64,
}

impl Default for MultiHasher {
    fn default() -> Self {
        Self::new(Digests::All)
    }
}

impl MultiHasher {
    pub fn new(digests: Digests) -> Self {
        MultiHasher {
            sha256: Sha256::default(),
            others: (digests == Digests::All)
                .then(|| (Sha1::default(), Md5::default(), Sha512::default())),
            size: 0,
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        if let Some((sha1, md5, sha512)) = &mut self.others {
            sha1.update(data);
            md5.update(data);
            sha512.update(data);
        }
        self.size += data.len() as u64;
    }
    pub fn finish(self) -> BlobInfo {
        let (sha1, md5, sha512) = match self.others {
            Some((a, b, c)) => (
                hex::encode(a.finalize()),
                hex::encode(b.finalize()),
                hex::encode(c.finalize()),
            ),
            None => Default::default(),
        };
        BlobInfo {
            sha256: hex::encode(self.sha256.finalize()),
            sha1,
            md5,
            sha512,
            size: self.size,
        }
    }
}

const READ_CHUNK: usize = 1 << 20;

/// How much of a refused body is still read (and discarded) so that the client, which is still
/// sending, gets to read the error response instead of a reset connection.
pub const DRAIN_LIMIT: u64 = 64 << 20;

/// Reads and discards up to [`DRAIN_LIMIT`] more bytes of a body.
pub async fn drain(mut body: ByteStream) {
    let mut left = DRAIN_LIMIT;
    while let Some(Ok(chunk)) = body.next().await {
        left = left.saturating_sub(chunk.len() as u64);
        if left == 0 {
            break;
        }
    }
}

pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub async fn open(root: &Path) -> std::io::Result<LocalBlobStore> {
        tokio::fs::create_dir_all(root.join("sha256")).await?;
        tokio::fs::create_dir_all(root.join("tmp")).await?;
        tokio::fs::create_dir_all(root.join("sessions")).await?;
        let store = LocalBlobStore {
            root: root.to_path_buf(),
        };
        store.sweep_tmp().await;
        Ok(store)
    }

    /// Removes temporary files of uploads that died more than an hour ago.
    async fn sweep_tmp(&self) {
        let Ok(mut dir) = tokio::fs::read_dir(self.root.join("tmp")).await else {
            return;
        };
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        while let Ok(Some(entry)) = dir.next_entry().await {
            let old = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .map(|t| t < cutoff)
                .unwrap_or(false);
            if old {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }

    fn blob_path(&self, sha256: &str) -> Option<PathBuf> {
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return None;
        }
        Some(self.root.join("sha256").join(&sha256[..2]).join(sha256))
    }

    /// Where a session's bytes live; None for an id that is not a plain token.
    fn session_path(&self, id: &str) -> Option<PathBuf> {
        (!id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then(|| self.root.join("sessions").join(id))
    }

    fn quarantine_path(&self, sha256: &str) -> Option<PathBuf> {
        self.blob_path(sha256)
            .map(|_| self.root.join("quarantine").join(sha256))
    }
}

/// The files of a directory (not recursive into files' contents), with size and modification
/// time; a directory that does not exist is empty.
async fn list_dir(dir: &Path) -> Result<Vec<Listed>, BlobError> {
    let mut out = Vec::new();
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    while let Some(entry) = rd.next_entry().await? {
        let Ok(meta) = entry.metadata().await else {
            // Removed while listing.
            continue;
        };
        let modified_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        out.push(Listed {
            key: entry.file_name().to_string_lossy().into_owned(),
            size: meta.len(),
            modified_ms,
        });
    }
    Ok(out)
}

/// Removes a file; one that is already gone is not an error (deletes are idempotent).
async fn remove_if_present(path: &Path) -> Result<(), BlobError> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Streams a body into a new file of `tmp` while hashing it: the staging step of every backend
/// (the S3 backend then sends the hashed file to its content address).
async fn stage_in(
    tmp: &Path,
    mut body: ByteStream,
    limit: Option<u64>,
    digests: Digests,
) -> Result<StagedBlob, BlobError> {
    let path = tmp.join(uuid::Uuid::new_v4().to_string());
    let guard = TmpGuard(Some(path.clone()));
    let mut file = tokio::fs::File::create(&path).await?;
    let mut hasher = MultiHasher::new(digests);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(BlobError::Body)?;
        if let Some(max) = limit
            && hasher.size + chunk.len() as u64 > max
        {
            drain(body).await;
            return Err(BlobError::TooLarge(max));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    drop(file);
    Ok(StagedBlob {
        info: hasher.finish(),
        guard,
    })
}

/// Removes the files of `dir` not written to since `cutoff_ms`; returns (files, bytes).
async fn sweep_dir(dir: &Path, cutoff_ms: i64) -> Result<(u64, u64), BlobError> {
    let (mut files, mut bytes) = (0, 0);
    for e in list_dir(dir).await? {
        if e.modified_ms < cutoff_ms && tokio::fs::remove_file(dir.join(&e.key)).await.is_ok() {
            files += 1;
            bytes += e.size;
        }
    }
    Ok((files, bytes))
}

/// Deletes the temporary file unless the upload was committed.
struct TmpGuard(Option<PathBuf>);
impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn stage(
        &self,
        body: ByteStream,
        limit: Option<u64>,
        digests: Digests,
    ) -> Result<StagedBlob, BlobError> {
        stage_in(&self.root.join("tmp"), body, limit, digests).await
    }

    async fn commit(&self, mut staged: StagedBlob) -> Result<BlobInfo, BlobError> {
        let info = staged.info.clone();
        let dest = self
            .blob_path(&info.sha256)
            .ok_or_else(|| BlobError::NotFound(info.sha256.clone()))?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        if tokio::fs::try_exists(&dest).await? {
            // Deduplicated: the content is already stored; the guard removes the staged copy.
            return Ok(info);
        }
        let tmp = staged.path().to_path_buf();
        tokio::fs::rename(&tmp, &dest).await?;
        staged.guard.0 = None;
        Ok(info)
    }

    async fn session_create(&self, id: &str) -> Result<(), BlobError> {
        let path = self
            .session_path(id)
            .ok_or_else(|| BlobError::NotFound(id.into()))?;
        tokio::fs::File::create(path).await?;
        Ok(())
    }

    async fn session_append(
        &self,
        id: &str,
        offset: u64,
        body: ByteStream,
        limit: u64,
    ) -> Result<u64, BlobError> {
        let path = self
            .session_path(id)
            .ok_or_else(|| BlobError::NotFound(id.into()))?;
        let mut file = match tokio::fs::OpenOptions::new().append(true).open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(id.into()));
            }
            Err(e) => return Err(e.into()),
        };
        file.set_len(offset).await?;
        let mut body = body;
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(BlobError::Body)?;
            written += chunk.len() as u64;
            if offset + written > limit {
                drain(body).await;
                return Err(BlobError::TooLarge(limit));
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(written)
    }

    async fn session_finish(
        &self,
        id: &str,
        size: u64,
        expected_sha256: Option<&str>,
        digests: Digests,
    ) -> Result<BlobInfo, BlobError> {
        let path = self
            .session_path(id)
            .ok_or_else(|| BlobError::NotFound(id.into()))?;
        // Take the file over first so that it is removed whatever happens next; on one disk it
        // is hashed in place and moved, not copied.
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        match tokio::fs::rename(&path, &tmp).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(id.into()));
            }
            Err(e) => return Err(e.into()),
        }
        let mut guard = TmpGuard(Some(tmp.clone()));
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tmp)
            .await?;
        file.set_len(size).await?;
        let mut hasher = MultiHasher::new(digests);
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let info = hasher.finish();
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&info.sha256)
        {
            return Err(BlobError::DigestMismatch {
                expected: expected.to_string(),
                actual: info.sha256,
            });
        }
        file.sync_all().await?;
        let dest = self
            .blob_path(&info.sha256)
            .ok_or_else(|| BlobError::NotFound(info.sha256.clone()))?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        if tokio::fs::try_exists(&dest).await? {
            return Ok(info);
        }
        tokio::fs::rename(&tmp, &dest).await?;
        guard.0 = None;
        Ok(info)
    }

    async fn list_blobs(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Listed>, BlobError> {
        let after = after.unwrap_or("");
        let mut out = Vec::new();
        let first = after.get(..2).unwrap_or("");
        let mut prefixes: Vec<String> = list_dir(&self.root.join("sha256"))
            .await?
            .into_iter()
            .map(|e| e.key)
            .filter(|p| p.len() == 2 && p.as_str() >= first)
            .collect();
        prefixes.sort();
        for prefix in prefixes {
            let mut names = list_dir(&self.root.join("sha256").join(&prefix)).await?;
            names.retain(|e| e.key.as_str() > after && self.blob_path(&e.key).is_some());
            names.sort_by(|a, b| a.key.cmp(&b.key));
            for e in names {
                out.push(e);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    async fn list_sessions(&self) -> Result<Vec<Listed>, BlobError> {
        list_dir(&self.root.join("sessions")).await
    }

    async fn sweep_temporaries(&self, cutoff_ms: i64) -> Result<(u64, u64), BlobError> {
        sweep_dir(&self.root.join("tmp"), cutoff_ms).await
    }

    async fn session_abort(&self, id: &str) -> Result<(), BlobError> {
        if let Some(path) = self.session_path(id) {
            remove_if_present(&path).await?;
        }
        Ok(())
    }

    async fn get(&self, sha256: &str, range: Option<(u64, u64)>) -> Result<BlobRead, BlobError> {
        let path = self
            .blob_path(sha256)
            .ok_or_else(|| BlobError::NotFound(sha256.into()))?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(sha256.into()));
            }
            Err(e) => return Err(e.into()),
        };
        let total_size = file.metadata().await?.len();
        let stream: ByteStream = match range {
            Some((start, end)) => {
                file.seek(SeekFrom::Start(start)).await?;
                let reader = file.take(end.saturating_sub(start));
                Box::pin(tokio_util::io::ReaderStream::with_capacity(
                    reader, READ_CHUNK,
                ))
            }
            None => Box::pin(tokio_util::io::ReaderStream::with_capacity(
                file, READ_CHUNK,
            )),
        };
        Ok(BlobRead { stream, total_size })
    }

    async fn exists(&self, sha256: &str) -> Result<bool, BlobError> {
        match self.blob_path(sha256) {
            Some(p) => Ok(tokio::fs::try_exists(p).await?),
            None => Ok(false),
        }
    }

    async fn delete(&self, sha256: &str) -> Result<(), BlobError> {
        if let Some(p) = self.blob_path(sha256) {
            remove_if_present(&p).await?;
        }
        Ok(())
    }

    async fn quarantine(&self, sha256: &str) -> Result<bool, BlobError> {
        let (Some(path), Some(q)) = (self.blob_path(sha256), self.quarantine_path(sha256)) else {
            return Ok(false);
        };
        tokio::fs::create_dir_all(self.root.join("quarantine")).await?;
        match tokio::fs::rename(&path, &q).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn restore(&self, sha256: &str) -> Result<(), BlobError> {
        let (Some(path), Some(q)) = (self.blob_path(sha256), self.quarantine_path(sha256)) else {
            return Ok(());
        };
        if tokio::fs::try_exists(&path).await? {
            // Stored again meanwhile (same content): the quarantined copy is redundant.
            let _ = tokio::fs::remove_file(&q).await;
            return Ok(());
        }
        match tokio::fs::rename(&q, &path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn discard(&self, sha256: &str) -> Result<(), BlobError> {
        if let Some(q) = self.quarantine_path(sha256) {
            remove_if_present(&q).await?;
        }
        Ok(())
    }

    async fn local_file(&self, sha256: &str) -> Result<BlobFile, BlobError> {
        let path = self
            .blob_path(sha256)
            .ok_or_else(|| BlobError::NotFound(sha256.into()))?;
        if !tokio::fs::try_exists(&path).await? {
            return Err(BlobError::NotFound(sha256.into()));
        }
        Ok(BlobFile { path, _tmp: None })
    }

    async fn free_space(&self) -> Result<Option<u64>, BlobError> {
        // statvfs is a blocking system call (a slow or remote filesystem can stall it).
        let root = self.root.clone();
        let st = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&root))
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::from)?;
        // Blocks available to unprivileged writers, not those kept for root.
        Ok(Some(st.f_bavail.saturating_mul(st.f_frsize)))
    }

    async fn ready(&self) -> bool {
        let probe = self
            .root
            .join("tmp")
            .join(format!(".ready-{}", uuid::Uuid::new_v4()));
        let ok = tokio::fs::write(&probe, b"ok").await.is_ok();
        let _ = tokio::fs::remove_file(&probe).await;
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, std::io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn put_hashes_dedups_and_reads_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        let a = store
            .put(body(&[b"hello ", b"world"]), None, None)
            .await
            .unwrap();
        assert_eq!(
            a.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(a.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(a.size, 11);
        let b = store
            .put(body(&[b"hello world"]), None, None)
            .await
            .unwrap();
        assert_eq!(a, b);
        let read = store.get(&a.sha256, Some((6, 11))).await.unwrap();
        let bytes: Vec<u8> = read.stream.map(|c| c.unwrap().to_vec()).concat().await;
        assert_eq!(bytes, b"world");
        assert_eq!(read.total_size, 11);
        // Only the committed blob remains; no temporary files.
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn staged_blobs_are_invisible_until_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        let staged = store
            .stage(body(&[b"hello ", b"world"]), None, Digests::All)
            .await
            .unwrap();
        let sha = staged.info.sha256.clone();
        assert_eq!(std::fs::read(staged.path()).unwrap(), b"hello world");
        assert!(!store.exists(&sha).await.unwrap());
        // Aborted: dropped, nothing left.
        drop(staged);
        assert!(!store.exists(&sha).await.unwrap());
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let staged = store
            .stage(body(&[b"hello world"]), Some(11), Digests::All)
            .await
            .unwrap();
        assert_eq!(store.commit(staged).await.unwrap().sha256, sha);
        assert!(store.exists(&sha).await.unwrap());
        assert!(matches!(
            store
                .stage(body(&[b"hello world"]), Some(10), Digests::All)
                .await,
            Err(BlobError::TooLarge(10))
        ));
    }

    #[tokio::test]
    async fn sessions_append_at_offsets_and_finish_or_abort() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        store.session_create("s-1").await.unwrap();
        assert_eq!(
            store
                .session_append("s-1", 0, body(&[b"hello "]), 100)
                .await
                .unwrap(),
            6
        );
        // A chunk that failed half-way left bytes past the recorded size: they are cut.
        assert_eq!(
            store
                .session_append("s-1", 6, body(&[b"wor"]), 100)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            store
                .session_append("s-1", 6, body(&[b"world"]), 100)
                .await
                .unwrap(),
            5
        );
        // Too large: refused, and the session keeps what it had.
        assert!(matches!(
            store.session_append("s-1", 11, body(&[b"!!!!"]), 12).await,
            Err(BlobError::TooLarge(12))
        ));
        let want = hex::encode(Sha256::digest(b"hello world"));
        let wrong = "0".repeat(64);
        // A wrong digest stores nothing and ends the session.
        assert!(matches!(
            store
                .session_finish("s-1", 11, Some(&wrong), Digests::All)
                .await,
            Err(BlobError::DigestMismatch { .. })
        ));
        assert!(!store.exists(&want).await.unwrap());
        assert!(matches!(
            store.session_append("s-1", 0, body(&[b"x"]), 100).await,
            Err(BlobError::NotFound(_))
        ));
        store.session_create("s-2").await.unwrap();
        store
            .session_append("s-2", 0, body(&[b"hello world"]), 100)
            .await
            .unwrap();
        let info = store
            .session_finish("s-2", 11, Some(&want), Digests::All)
            .await
            .unwrap();
        assert_eq!((info.sha256.as_str(), info.size), (want.as_str(), 11));
        assert!(store.exists(&want).await.unwrap());
        // Aborting removes the bytes; ids that are not plain tokens never reach the disk.
        store.session_create("s-3").await.unwrap();
        store.session_abort("s-3").await.unwrap();
        store.session_abort("s-3").await.unwrap();
        assert!(store.session_create("../escape").await.is_err());
        let left = std::fs::read_dir(dir.path().join("sessions"))
            .unwrap()
            .count();
        let tmp = std::fs::read_dir(dir.path().join("tmp")).unwrap().count();
        assert_eq!((left, tmp), (0, 0));
    }

    #[tokio::test]
    async fn listing_resumes_after_the_last_key_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        let mut want = Vec::new();
        for data in [&b"a"[..], b"b", b"c", b"d", b"e"] {
            want.push(store.put(body(&[data]), None, None).await.unwrap().sha256);
        }
        want.sort();
        let mut got = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list_blobs(after.as_deref(), 2).await.unwrap();
            let Some(last) = page.last() else { break };
            assert!(page.len() <= 2);
            after = Some(last.key.clone());
            got.extend(page.into_iter().map(|l| l.key));
        }
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn limit_and_digest_mismatch_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        assert!(matches!(
            store.put(body(&[b"0123456789"]), Some(5), None).await,
            Err(BlobError::TooLarge(5))
        ));
        let wrong = "0".repeat(64);
        assert!(matches!(
            store.put(body(&[b"abc"]), None, Some(&wrong)).await,
            Err(BlobError::DigestMismatch { .. })
        ));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert!(
            std::fs::read_dir(dir.path().join("sha256"))
                .unwrap()
                .next()
                .is_none()
        );
    }
}

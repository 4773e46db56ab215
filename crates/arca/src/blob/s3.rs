//! The blob store on an S3-compatible bucket (Garage, MinIO, Ceph, AWS): what lets several
//! servers share one store with no shared filesystem.
//!
//! Layout under the configured prefix, all content-addressed or keyed by session id:
//! - `sha256/<first two hex>/<sha256>`: committed blobs, written only under their digest, so a
//!   reader never sees another content under a key and writing the same content twice is a no-op;
//! - `quarantine/<sha256>`: blobs the garbage collector took out of reach (copy, then delete);
//! - `sessions/<id>/open` and `sessions/<id>/p<offset>`: an OCI chunked upload, one object per
//!   chunk named by the offset it starts at, so any server can append or finish it (its size lives
//!   in the metadata store, which says which parts count).
//!
//! Writes are hashed on the way through a node-local scratch file (all four digests in the same
//! pass as the local store; parsers that need to seek read that file; `free_space` reports that
//! disk, checked before an upload is accepted), then sent to their content
//! address: in one PUT up to [`PART`] bytes, else as a multipart upload with at most
//! `upload::IN_FLIGHT` parts in memory. S3 makes an object visible only when its PUT or its multipart
//! upload completes, so a killed writer never exposes a partial blob; an aborted or abandoned
//! multipart upload is invisible (a bucket lifecycle rule removes the parts of one abandoned by a
//! killed process). Reads stream ranged GETs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore};
use tokio::io::AsyncWriteExt;

use super::{
    BlobError, BlobFile, BlobInfo, BlobRead, BlobStore, ByteStream, Digests, Listed, StagedBlob,
    stage_in, sweep_dir,
};
use crate::config::S3Config;

mod presign;
mod upload;

/// Size of a multipart upload's parts (S3's minimum is 5 MiB) and the largest single PUT.
pub const PART: usize = 8 << 20;

pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// What presigned download URLs need, when they are enabled.
    presign: Option<PresignConfig>,
    /// Node-local scratch directory for staged uploads.
    tmp: PathBuf,
}

/// The bucket's coordinates for presigned URLs (static credentials, an explicit endpoint).
struct PresignConfig {
    /// `scheme://host[:port]` clients fetch from.
    origin: String,
    /// Path before the key: `/bucket/` path-style, `/` virtual-hosted.
    base_path: String,
    region: String,
    key_id: String,
    secret: String,
}

fn presign_config(cfg: &S3Config) -> Option<PresignConfig> {
    if !cfg.presigned_redirects {
        return None;
    }
    let endpoint = url::Url::parse(cfg.endpoint.as_deref()?).ok()?;
    let host = endpoint.host_str()?;
    let port = endpoint.port().map(|p| format!(":{p}")).unwrap_or_default();
    let (origin, base_path) = if cfg.path_style {
        (
            format!("{}://{host}{port}", endpoint.scheme()),
            format!("/{}/", cfg.bucket),
        )
    } else {
        (
            format!("{}://{}.{host}{port}", endpoint.scheme(), cfg.bucket),
            "/".to_string(),
        )
    };
    Some(PresignConfig {
        origin,
        base_path,
        region: cfg.region.clone(),
        key_id: cfg.access_key_id.clone()?,
        secret: cfg.secret_access_key.clone()?,
    })
}

fn io_err(e: object_store::Error) -> BlobError {
    BlobError::Io(std::io::Error::other(e))
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

fn valid_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn valid_session(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl S3BlobStore {
    /// Connects to the bucket; `scratch` is a node-local directory for staged uploads.
    pub async fn open(cfg: &S3Config, scratch: &Path) -> anyhow::Result<S3BlobStore> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_allow_http(cfg.allow_http)
            .with_virtual_hosted_style_request(!cfg.path_style)
            // Tags are never set; some S3 implementations reject the header.
            .with_disable_tagging(true)
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_allow_http(cfg.allow_http)
                    // A whole-request timeout would cut long blob downloads; a stalled
                    // connection is caught by the server's own idle timeout instead.
                    .with_timeout_disabled()
                    .with_connect_timeout(std::time::Duration::from_secs(5)),
            );
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(k) = &cfg.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &cfg.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        let store = b.build()?;
        let tmp = scratch.join("tmp");
        tokio::fs::create_dir_all(&tmp).await?;
        // Scratch files of uploads this node was running when it died.
        let _ = sweep_dir(&tmp, crate::model::now_ms() - 3_600_000).await;
        let presign = presign_config(cfg);
        if cfg.presigned_redirects && presign.is_none() {
            anyhow::bail!(
                "s3_presigned_redirects needs s3_endpoint and static credentials (s3_access_key_id, s3_secret_access_key)"
            );
        }
        Ok(S3BlobStore {
            store: Arc::new(store),
            prefix: cfg.prefix.clone(),
            presign,
            tmp,
        })
    }

    fn key(&self, rest: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rest)
        } else {
            Key::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn blob_key(&self, sha256: &str) -> Option<Key> {
        valid_sha256(sha256).then(|| self.key(&format!("sha256/{}/{sha256}", &sha256[..2])))
    }

    fn quarantine_key(&self, sha256: &str) -> Option<Key> {
        valid_sha256(sha256).then(|| self.key(&format!("quarantine/{sha256}")))
    }

    fn session_marker(&self, id: &str) -> Key {
        self.key(&format!("sessions/{id}/open"))
    }

    fn part_key(&self, id: &str, offset: u64) -> Key {
        self.key(&format!("sessions/{id}/p{offset:020}"))
    }

    async fn present(&self, key: &Key) -> Result<bool, BlobError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(io_err(e)),
        }
    }

    /// The session's parts as (start offset, key, size), in offset order.
    async fn parts(&self, id: &str) -> Result<Vec<(u64, Key, u64)>, BlobError> {
        let prefix = self.key(&format!("sessions/{id}"));
        let mut out: Vec<(u64, Key, u64)> = self
            .store
            .list(Some(&prefix))
            .map_err(io_err)
            .try_filter_map(|m| async move {
                let start = m
                    .location
                    .filename()
                    .and_then(|n| n.strip_prefix('p'))
                    .and_then(|n| n.parse::<u64>().ok());
                Ok(start.map(|s| (s, m.location, m.size)))
            })
            .try_collect()
            .await?;
        out.sort_by_key(|p| p.0);
        Ok(out)
    }

    /// A stream of the session's first `size` bytes, read from its parts in order.
    async fn session_stream(&self, id: &str, size: u64) -> Result<ByteStream, BlobError> {
        let mut pieces = Vec::new();
        let mut pos = 0u64;
        for (start, key, len) in self.parts(id).await? {
            if pos >= size {
                break;
            }
            if start > pos {
                break;
            }
            let from = pos - start;
            let to = len.min(size - start);
            if from >= to {
                continue;
            }
            pieces.push((key, from, to));
            pos = start + to;
        }
        if pos < size {
            return Err(BlobError::Io(std::io::Error::other(format!(
                "upload session {id} holds {pos} of its {size} bytes"
            ))));
        }
        let store = self.store.clone();
        let stream = futures::stream::iter(pieces)
            .then(move |(key, from, to)| {
                let store = store.clone();
                async move {
                    let r = store
                        .get_opts(
                            &key,
                            GetOptions {
                                range: Some(GetRange::Bounded(from..to)),
                                ..Default::default()
                            },
                        )
                        .await
                        .map_err(std::io::Error::other)?;
                    Ok::<_, std::io::Error>(r.into_stream().map_err(std::io::Error::other))
                }
            })
            .try_flatten();
        Ok(Box::pin(stream))
    }

    /// Deletes every object under `prefix`.
    async fn delete_prefix(&self, prefix: &Key) -> Result<(), BlobError> {
        let keys: Vec<Key> = self
            .store
            .list(Some(prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(io_err)?;
        for k in keys {
            self.delete_key(&k).await?;
        }
        Ok(())
    }

    async fn delete_key(&self, key: &Key) -> Result<(), BlobError> {
        match self.store.delete(key).await {
            Err(e) if !is_not_found(&e) => Err(io_err(e)),
            _ => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for S3BlobStore {
    async fn stage(
        &self,
        body: ByteStream,
        limit: Option<u64>,
        digests: Digests,
    ) -> Result<StagedBlob, BlobError> {
        stage_in(&self.tmp, body, limit, digests).await
    }

    async fn commit(&self, staged: StagedBlob) -> Result<BlobInfo, BlobError> {
        let info = staged.info.clone();
        let key = self
            .blob_key(&info.sha256)
            .ok_or_else(|| BlobError::NotFound(info.sha256.clone()))?;
        // Deduplicated: the same content is already stored (the staged copy goes with `staged`).
        if !self.present(&key).await? {
            self.upload_file(staged.path(), &key, info.size).await?;
        }
        Ok(info)
    }

    async fn session_create(&self, id: &str) -> Result<(), BlobError> {
        if !valid_session(id) {
            return Err(BlobError::NotFound(id.into()));
        }
        self.store
            .put(&self.session_marker(id), Bytes::new().into())
            .await
            .map_err(io_err)?;
        Ok(())
    }

    async fn session_append(
        &self,
        id: &str,
        offset: u64,
        body: ByteStream,
        limit: u64,
    ) -> Result<u64, BlobError> {
        if !valid_session(id) || !self.present(&self.session_marker(id)).await? {
            return Err(BlobError::NotFound(id.into()));
        }
        // Parts at or past the recorded size were left by a chunk whose record failed: the
        // client sends those bytes again.
        for (start, key, _) in self.parts(id).await? {
            if start >= offset {
                self.delete_key(&key).await?;
            }
        }
        let room = limit.saturating_sub(offset);
        match self
            .upload_stream(&self.part_key(id, offset), body, room)
            .await
        {
            Err(BlobError::TooLarge(_)) => Err(BlobError::TooLarge(limit)),
            r => r,
        }
    }

    async fn session_finish(
        &self,
        id: &str,
        size: u64,
        expected_sha256: Option<&str>,
        digests: Digests,
    ) -> Result<BlobInfo, BlobError> {
        if !valid_session(id) || !self.present(&self.session_marker(id)).await? {
            return Err(BlobError::NotFound(id.into()));
        }
        let staged = match self.session_stream(id, size).await {
            Ok(stream) => stage_in(&self.tmp, stream, None, digests)
                .await
                .map_err(|e| match e {
                    // The bytes came from the bucket, not from a client.
                    BlobError::Body(io) => BlobError::Io(io),
                    e => e,
                }),
            Err(e) => Err(e),
        };
        // The session is gone afterwards, whether the blob was stored or not.
        let gone = self
            .delete_prefix(&self.key(&format!("sessions/{id}")))
            .await;
        let staged = staged?;
        gone?;
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

    async fn session_abort(&self, id: &str) -> Result<(), BlobError> {
        if valid_session(id) {
            self.delete_prefix(&self.key(&format!("sessions/{id}")))
                .await?;
        }
        Ok(())
    }

    async fn list_blobs(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Listed>, BlobError> {
        let prefix = self.key("sha256");
        let offset = match after.filter(|a| a.len() >= 2) {
            Some(a) => self.key(&format!("sha256/{}/{a}", &a[..2])),
            None => self.key("sha256/"),
        };
        let mut stream = self.store.list_with_offset(Some(&prefix), &offset);
        let mut out = Vec::new();
        while let Some(m) = stream.next().await {
            let m = m.map_err(io_err)?;
            let Some(name) = m.location.filename() else {
                continue;
            };
            if !valid_sha256(name) || after.is_some_and(|a| name <= a) {
                continue;
            }
            out.push(Listed {
                key: name.to_string(),
                size: m.size,
                modified_ms: m.last_modified.timestamp_millis(),
            });
            if out.len() >= limit {
                break;
            }
        }
        // The listing is in key order, which for `sha256/<xx>/<sha256>` is SHA-256 order.
        Ok(out)
    }

    async fn list_sessions(&self) -> Result<Vec<Listed>, BlobError> {
        let prefix = self.key("sessions");
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(io_err)?;
        let mut by_id: std::collections::BTreeMap<String, Listed> = Default::default();
        for m in metas {
            let parts: Vec<_> = m.location.parts().collect();
            // .../sessions/<id>/<name>
            let Some(id) = parts.len().checked_sub(2).and_then(|i| parts.get(i)) else {
                continue;
            };
            let e = by_id.entry(id.as_ref().to_string()).or_insert(Listed {
                key: id.as_ref().to_string(),
                size: 0,
                modified_ms: 0,
            });
            e.size += m.size;
            e.modified_ms = e.modified_ms.max(m.last_modified.timestamp_millis());
        }
        Ok(by_id.into_values().collect())
    }

    async fn sweep_temporaries(&self, cutoff_ms: i64) -> Result<(u64, u64), BlobError> {
        sweep_dir(&self.tmp, cutoff_ms).await
    }

    async fn get(&self, sha256: &str, range: Option<(u64, u64)>) -> Result<BlobRead, BlobError> {
        let key = self
            .blob_key(sha256)
            .ok_or_else(|| BlobError::NotFound(sha256.into()))?;
        let not_found = |e: object_store::Error| {
            if is_not_found(&e) {
                BlobError::NotFound(sha256.into())
            } else {
                io_err(e)
            }
        };
        // S3 refuses an empty range: answer it from the object's size alone.
        if let Some((start, end)) = range
            && start >= end
        {
            let meta = self.store.head(&key).await.map_err(not_found)?;
            return Ok(BlobRead {
                stream: Box::pin(futures::stream::empty()),
                total_size: meta.size,
            });
        }
        let opts = GetOptions {
            range: range.map(|(s, e)| GetRange::Bounded(s..e)),
            ..Default::default()
        };
        let r = self.store.get_opts(&key, opts).await.map_err(not_found)?;
        let total_size = r.meta.size;
        Ok(BlobRead {
            stream: Box::pin(r.into_stream().map_err(std::io::Error::other)),
            total_size,
        })
    }

    async fn exists(&self, sha256: &str) -> Result<bool, BlobError> {
        match self.blob_key(sha256) {
            Some(k) => self.present(&k).await,
            None => Ok(false),
        }
    }

    async fn delete(&self, sha256: &str) -> Result<(), BlobError> {
        if let Some(k) = self.blob_key(sha256) {
            self.delete_key(&k).await?;
        }
        Ok(())
    }

    async fn quarantine(&self, sha256: &str) -> Result<bool, BlobError> {
        let (Some(k), Some(q)) = (self.blob_key(sha256), self.quarantine_key(sha256)) else {
            return Ok(false);
        };
        // S3 has no rename: copy aside, then delete. One collector runs at a time (the lease in
        // `crate::gc`), so the copy and the delete are not interleaved with another's.
        match self.store.copy(&k, &q).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(io_err(e)),
        }
        self.delete_key(&k).await?;
        Ok(true)
    }

    async fn restore(&self, sha256: &str) -> Result<(), BlobError> {
        let (Some(k), Some(q)) = (self.blob_key(sha256), self.quarantine_key(sha256)) else {
            return Ok(());
        };
        if !self.present(&k).await? {
            match self.store.copy(&q, &k).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(io_err(e)),
            }
        }
        self.delete_key(&q).await
    }

    async fn discard(&self, sha256: &str) -> Result<(), BlobError> {
        if let Some(q) = self.quarantine_key(sha256) {
            self.delete_key(&q).await?;
        }
        Ok(())
    }

    async fn free_space(&self) -> Result<Option<u64>, BlobError> {
        // The bucket has no such bound, but every upload passes through the node's scratch
        // directory whole before it is sent: that disk is what fills up.
        let tmp = self.tmp.clone();
        let st = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&tmp))
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::from)?;
        Ok(Some(st.f_bavail.saturating_mul(st.f_frsize)))
    }

    async fn ready(&self) -> bool {
        let probe = self.key(&format!("probe/{}", uuid::Uuid::new_v4()));
        let ok = self
            .store
            .put(&probe, Bytes::from_static(b"ok").into())
            .await
            .is_ok();
        let _ = self.store.delete(&probe).await;
        ok
    }

    async fn download_url(
        &self,
        sha256: &str,
        headers: &[(&str, &str)],
    ) -> Result<Option<String>, BlobError> {
        let (Some(p), Some(key)) = (&self.presign, self.blob_key(sha256)) else {
            return Ok(None);
        };
        let amz_date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .map_err(std::io::Error::other)?;
        let extra: Vec<(String, &str)> = headers
            .iter()
            .map(|(k, v)| (format!("response-{}", k.to_ascii_lowercase()), *v))
            .collect();
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let path = format!("{}{}", p.base_path, key.as_ref());
        Ok(Some(
            presign::Presign {
                origin: &p.origin,
                path: &path,
                region: &p.region,
                key_id: &p.key_id,
                secret: &p.secret,
                amz_date: &amz_date,
                expires_secs: 300,
                extra: &extra,
            }
            .url(),
        ))
    }

    async fn local_file(&self, sha256: &str) -> Result<BlobFile, BlobError> {
        let read = self.get(sha256, None).await?;
        let tmp = tempfile::Builder::new()
            .prefix("read-")
            .tempfile_in(&self.tmp)?
            .into_temp_path();
        let mut file = tokio::fs::File::create(&tmp).await?;
        let mut stream = read.stream;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?).await?;
        }
        file.flush().await?;
        Ok(BlobFile {
            path: tmp.to_path_buf(),
            _tmp: Some(tmp),
        })
    }
}

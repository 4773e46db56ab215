//! Sending content to the bucket with bounded memory: one PUT for what fits in a part, else a
//! multipart upload with at most [`IN_FLIGHT`] parts buffered, aborted on failure so that nothing
//! partial is ever visible.

use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::{PART, S3BlobStore, io_err};
use crate::blob::{BlobError, ByteStream, drain};

/// Parts of one upload sent at once (memory per upload: about this many parts).
const IN_FLIGHT: usize = 2;

impl S3BlobStore {
    /// Sends a local file to `key`: one PUT when small, else a multipart upload that becomes
    /// visible only when complete (aborted on failure).
    pub(super) async fn upload_file(
        &self,
        path: &Path,
        key: &Key,
        size: u64,
    ) -> Result<(), BlobError> {
        if size <= PART as u64 {
            let data = tokio::fs::read(path).await?;
            self.store
                .put(key, Bytes::from(data).into())
                .await
                .map_err(io_err)?;
            return Ok(());
        }
        let upload = self.store.put_multipart(key).await.map_err(io_err)?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut file = tokio::fs::File::open(path).await?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(e.into());
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = w.wait_for_capacity(IN_FLIGHT).await {
                let _ = w.abort().await;
                return Err(io_err(e));
            }
            w.write(&buf[..n]);
        }
        w.finish().await.map_err(io_err)?;
        Ok(())
    }

    /// Streams a body to `key` (one PUT when it fits one part, else multipart), failing with
    /// `TooLarge` past `limit` bytes; returns the bytes written. Nothing is visible on failure.
    pub(super) async fn upload_stream(
        &self,
        key: &Key,
        mut body: ByteStream,
        limit: u64,
    ) -> Result<u64, BlobError> {
        let mut first: Vec<u8> = Vec::new();
        let mut written: u64 = 0;
        let mut writer: Option<WriteMultipart> = None;
        let fail = |w: Option<WriteMultipart>| async move {
            if let Some(w) = w {
                let _ = w.abort().await;
            }
        };
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    fail(writer).await;
                    return Err(BlobError::Body(e));
                }
            };
            written += chunk.len() as u64;
            if written > limit {
                fail(writer).await;
                drain(body).await;
                return Err(BlobError::TooLarge(limit));
            }
            match &mut writer {
                Some(w) => {
                    if let Err(e) = w.wait_for_capacity(IN_FLIGHT).await {
                        fail(writer).await;
                        return Err(io_err(e));
                    }
                    w.put(chunk);
                }
                None => {
                    first.extend_from_slice(&chunk);
                    if first.len() > PART {
                        let upload = self.store.put_multipart(key).await.map_err(io_err)?;
                        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
                        w.put(Bytes::from(std::mem::take(&mut first)));
                        writer = Some(w);
                    }
                }
            }
        }
        match writer {
            Some(w) => {
                w.finish().await.map_err(io_err)?;
            }
            None => {
                self.store
                    .put(key, Bytes::from(first).into())
                    .await
                    .map_err(io_err)?;
            }
        }
        Ok(written)
    }
}

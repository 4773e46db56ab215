//! Shared, cheaply clonable application state. Servers keep nothing else between requests:
//! everything lives in the metadata store and the blob store.

use std::sync::Arc;

use axum::http::HeaderMap;

use crate::auth::{PasswordCache, Principal, authenticate};
use crate::blob::BlobStore;
use crate::config::Config;
use crate::error::ApiResult;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub blobs: Arc<dyn BlobStore>,
    pub password_cache: PasswordCache,
    pub throttle: crate::throttle::Throttle,
    pub docs: crate::doc_cache::DocCache,
    pub downloads: crate::download_counter::DownloadCounter,
    pub proxy: crate::proxy::ProxyEngine,
    /// Group member walks remembered across requests (see `formats::members::Walks`).
    pub walks: crate::formats::members::Walks,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Records stored content in the metadata store (refreshing its garbage-collection clock)
    /// and checks it is still there: a collector that quarantined it just before cannot then
    /// take it, and if it already did, the write fails instead of pointing at nothing.
    ///
    /// A collector that quarantined the content before it was recorded puts it back as soon as
    /// it sees the record, so a missing blob is looked for again for a moment; if it stays gone
    /// (collected just before the record), the client is told to retry (503): nothing it had
    /// stored before was lost, and sending the same content again stores it afresh.
    pub async fn commit_blob(&self, blob: &crate::blob::BlobInfo) -> ApiResult<()> {
        self.db.record_blob(blob).await?;
        for _ in 0..20 {
            if self.blobs.exists(&blob.sha256).await? {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        tracing::warn!(sha256 = %blob.sha256, "content collected while being stored");
        Err(crate::error::ApiError::Unavailable(format!(
            "blob {} was garbage-collected while being stored; retry the upload",
            blob.sha256
        )))
    }

    /// Counts a download; the count is written shortly after, batched with others.
    pub fn record_download(&self, file: &crate::store::artifacts::FileRow) {
        if self.downloads.add(file) {
            let state = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(crate::download_counter::FLUSH_DELAY).await;
                if let Err(e) = state.flush_downloads().await {
                    tracing::warn!(error = %e, "writing download counts failed");
                }
            });
        }
    }

    /// Writes the download counts this process has not written yet.
    pub async fn flush_downloads(&self) -> ApiResult<()> {
        let counts = self.downloads.take();
        Ok(self.db.count_downloads(&counts).await?)
    }

    pub async fn principal(&self, headers: &HeaderMap) -> ApiResult<Principal> {
        authenticate(&self.db, &self.password_cache, &self.throttle, headers).await
    }
}

#[cfg(test)]
mod tests {
    use crate::error::ApiError;
    use crate::testing::state;

    fn body(data: &'static [u8]) -> crate::blob::ByteStream {
        Box::pin(futures::stream::once(async move {
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(data))
        }))
    }

    #[tokio::test]
    async fn commit_waits_for_a_collector_that_puts_the_blob_back() {
        let t = state().await;
        let s = t.state.clone();
        let blob = s.blobs.put(body(b"racing"), None, None).await.unwrap();
        // A collector quarantined it just before the writer recorded it; it restores it when it
        // sees the record.
        assert!(s.blobs.quarantine(&blob.sha256).await.unwrap());
        let collector = {
            let s = s.clone();
            let sha = blob.sha256.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                s.blobs.restore(&sha).await
            })
        };
        s.commit_blob(&blob).await.unwrap();
        collector.await.unwrap().unwrap();
        // Collected for good before the record: the client is asked to retry, not given a 500.
        assert!(s.blobs.quarantine(&blob.sha256).await.unwrap());
        s.blobs.discard(&blob.sha256).await.unwrap();
        let e = s.commit_blob(&blob).await.unwrap_err();
        assert!(matches!(e, ApiError::Unavailable(_)), "{e:?}");
        assert_eq!(e.status(), 503);
    }
}

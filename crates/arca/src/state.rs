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
    pub docs: crate::formats::cache::DocCache,
    pub downloads: crate::download::DownloadCounter,
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
    pub async fn commit_blob(&self, blob: &crate::blob::BlobInfo) -> ApiResult<()> {
        self.db.record_blob(blob).await?;
        if !self.blobs.exists(&blob.sha256).await? {
            return Err(crate::error::ApiError::Internal(anyhow::anyhow!(
                "blob {} was garbage-collected while being stored; retry the upload",
                blob.sha256
            )));
        }
        Ok(())
    }

    /// Counts a download; the count is written shortly after, batched with others.
    pub fn record_download(&self, file: &crate::store::artifacts::FileRow) {
        if self.downloads.add(file) {
            let state = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(crate::download::FLUSH_DELAY).await;
                if let Err(e) = state.flush_downloads().await {
                    tracing::warn!(error = %e, "writing download counts failed");
                }
            });
        }
    }

    /// Writes the download counts this process has not written yet.
    pub async fn flush_downloads(&self) -> ApiResult<()> {
        let counts = self.downloads.take();
        self.db.count_downloads(&counts).await
    }

    pub async fn principal(&self, headers: &HeaderMap) -> ApiResult<Principal> {
        authenticate(&self.db, &self.password_cache, headers).await
    }
}

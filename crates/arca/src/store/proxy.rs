//! What proxies keep about their upstreams' metadata documents (see `crate::proxy`).

use sqlx::Row;

use super::{Db, StoreResult};

/// A stored upstream document: where its body is and how to revalidate it.
#[derive(Debug, Clone)]
pub struct ProxyDocument {
    pub sha256: String,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The upstream URL the body came from (after redirects): relative links resolve against it.
    pub url: String,
    pub fetched_at: i64,
}

impl Db {
    pub async fn proxy_document(
        &self,
        registry_id: &str,
        key: &str,
    ) -> StoreResult<Option<ProxyDocument>> {
        let row = sqlx::query(
            "SELECT sha256, content_type, etag, last_modified, url, fetched_at FROM proxy_documents \
             WHERE registry_id = $1 AND doc_key = $2",
        )
        .bind(registry_id)
        .bind(key)
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(ProxyDocument {
            sha256: r.try_get("sha256")?,
            content_type: r.try_get("content_type")?,
            etag: r.try_get("etag")?,
            last_modified: r.try_get("last_modified")?,
            url: r.try_get("url")?,
            fetched_at: r.try_get("fetched_at")?,
        }))
    }

    /// Stores (or replaces) a document fetched from upstream.
    pub async fn put_proxy_document(
        &self,
        registry_id: &str,
        key: &str,
        doc: &ProxyDocument,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO proxy_documents (registry_id, doc_key, sha256, content_type, etag, last_modified, url, fetched_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (registry_id, doc_key) DO UPDATE SET \
             sha256 = excluded.sha256, content_type = excluded.content_type, etag = excluded.etag, \
             last_modified = excluded.last_modified, url = excluded.url, fetched_at = excluded.fetched_at",
        )
        .bind(registry_id)
        .bind(key)
        .bind(&doc.sha256)
        .bind(doc.content_type.clone())
        .bind(doc.etag.clone())
        .bind(doc.last_modified.clone())
        .bind(&doc.url)
        .bind(doc.fetched_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// A 304 from upstream: the stored copy is fresh again.
    pub async fn touch_proxy_document(
        &self,
        registry_id: &str,
        key: &str,
        fetched_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE proxy_documents SET fetched_at = $1 WHERE registry_id = $2 AND doc_key = $3",
        )
        .bind(fetched_at)
        .bind(registry_id)
        .bind(key)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Forgets a document the upstream no longer has (404/410).
    pub async fn delete_proxy_document(&self, registry_id: &str, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM proxy_documents WHERE registry_id = $1 AND doc_key = $2")
            .bind(registry_id)
            .bind(key)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Forgets every document kept for the proxy `registry_id` (its upstream or the key its
    /// documents were verified with changed: none of them is known good any more).
    pub async fn delete_proxy_documents(&self, registry_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM proxy_documents WHERE registry_id = $1")
            .bind(registry_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}

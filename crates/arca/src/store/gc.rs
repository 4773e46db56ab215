//! Queries for the blob garbage collector (see `crate::gc`).

use sqlx::Row;

use super::Db;
use super::StoreResult;

/// A blob nothing refers to: no file of any registry (the trash can included) and no OCI
/// repository link.
const UNREFERENCED: &str = "NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = blobs.sha256) \
     AND NOT EXISTS (SELECT 1 FROM oci_blobs o WHERE o.sha256 = blobs.sha256) \
     AND NOT EXISTS (SELECT 1 FROM proxy_documents d WHERE d.sha256 = blobs.sha256)";

impl Db {
    /// OCI repository links older than `cutoff` that no manifest of their registry uses any more
    /// (blobs uploaded for a manifest that never came, or whose manifests were deleted).
    pub async fn expire_oci_links(&self, cutoff: i64) -> StoreResult<u64> {
        let r = sqlx::query(
            "DELETE FROM oci_blobs WHERE created_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM files f WHERE f.registry_id = oci_blobs.registry_id AND f.sha256 = oci_blobs.sha256)",
        )
        .bind(cutoff)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected())
    }

    /// Upload sessions untouched since `cutoff` (their ids, so their bytes can be removed).
    pub async fn expire_uploads(&self, cutoff: i64) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM oci_uploads WHERE updated_at < $1")
            .bind(cutoff)
            .fetch_all(&self.read)
            .await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        for id in &ids {
            self.delete_upload(id).await?;
        }
        Ok(ids)
    }

    pub async fn gc_candidates(&self, cutoff: i64, limit: i64) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query(&format!(
            "SELECT sha256, size FROM blobs WHERE touched_at < $1 AND created_at < $1 AND {UNREFERENCED} LIMIT $2"
        ))
        .bind(cutoff)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("sha256")?, r.try_get("size")?)))
            .collect()
    }

    /// Forgets a blob if it is still unreferenced and untouched since `cutoff`; false when a
    /// writer stored or referenced it meanwhile.
    pub async fn gc_forget(&self, sha256: &str, cutoff: i64) -> StoreResult<bool> {
        let r = sqlx::query(&format!(
            "DELETE FROM blobs WHERE sha256 = $1 AND touched_at < $2 AND created_at < $2 AND {UNREFERENCED}"
        ))
        .bind(sha256)
        .bind(cutoff)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Where the collector's listing pass named `pass` stopped (None: at the start).
    pub async fn gc_cursor(&self, pass: &str) -> StoreResult<Option<String>> {
        let position: Option<String> =
            sqlx::query("SELECT position FROM gc_progress WHERE pass = $1")
                .bind(pass)
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.try_get("position"))
                .transpose()?;
        Ok(position.filter(|p| !p.is_empty()))
    }

    /// Records where a listing pass stopped; None starts the next run from the beginning.
    pub async fn set_gc_cursor(&self, pass: &str, position: Option<&str>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO gc_progress (pass, position, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (pass) DO UPDATE SET position = $2, updated_at = $3",
        )
        .bind(pass)
        .bind(position.unwrap_or(""))
        .bind(crate::model::now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Whether an upload session is recorded (its bytes in the blob store are then not orphans).
    pub async fn upload_known(&self, id: &str) -> StoreResult<bool> {
        Ok(
            sqlx::query("SELECT 1 AS one FROM oci_uploads WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.write)
                .await?
                .is_some(),
        )
    }

    /// Whether the blob is known again (a writer recorded it after the collector forgot it).
    pub async fn blob_known(&self, sha256: &str) -> StoreResult<bool> {
        Ok(sqlx::query("SELECT 1 AS one FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.write)
            .await?
            .is_some())
    }

    /// Files a proxy cached that nobody fetched for the proxy's `expireHours` (0: never): last
    /// served (or, never served, stored) before `now` less that many hours.
    pub async fn expired_cache_files(
        &self,
        now: i64,
    ) -> StoreResult<Vec<crate::store::artifacts::FileRow>> {
        let sql = format!(
            "{} JOIN registries c ON c.id = f.registry_id JOIN registries p ON p.id = c.cache_of \
             WHERE c.kind = 'CACHE' AND p.proxy_expire_hours > 0 \
             AND COALESCE(f.accessed_at, f.created_at) < $1 - p.proxy_expire_hours * 3600000",
            crate::store::artifacts::FILE_SELECT
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(&self.read).await?;
        Ok(rows
            .iter()
            .map(crate::store::artifacts::row_to_file)
            .collect::<Result<_, _>>()?)
    }
}

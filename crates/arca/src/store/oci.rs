//! OCI distribution state: upload sessions, the blobs each repository holds, referrers, and the
//! token signing key shared by every server process.

use sqlx::Row;

use super::StoreResult;
use super::{Db, is_unique_violation};
use crate::blob::BlobInfo;
use crate::model::now_ms;
use crate::store::artifacts::FileRow;

#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    pub registry_id: String,
    pub image: String,
    pub size: i64,
}

#[derive(Debug, Clone)]
pub struct RepoBlob {
    pub digest: String,
    pub sha256: String,
    pub size: i64,
}

impl Db {
    pub async fn create_upload(&self, id: &str, registry_id: &str, image: &str) -> StoreResult<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO oci_uploads (id, registry_id, image, size, created_at, updated_at) VALUES ($1, $2, $3, 0, $4, $4)",
        )
        .bind(id)
        .bind(registry_id)
        .bind(image)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn upload(&self, id: &str) -> StoreResult<Option<Upload>> {
        let row = sqlx::query("SELECT * FROM oci_uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(match row {
            Some(r) => Some(Upload {
                id: r.try_get("id")?,
                registry_id: r.try_get("registry_id")?,
                image: r.try_get("image")?,
                size: r.try_get("size")?,
            }),
            None => None,
        })
    }

    /// Moves an upload's size from `old` to `new`; false when another request got there first.
    pub async fn advance_upload(&self, id: &str, old: i64, new: i64) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE oci_uploads SET size = $1, updated_at = $2 WHERE id = $3 AND size = $4",
        )
        .bind(new)
        .bind(now_ms())
        .bind(id)
        .bind(old)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn delete_upload(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM oci_uploads WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Records that a repository holds a blob (idempotent).
    pub async fn link_blob(
        &self,
        registry_id: &str,
        image: &str,
        digest: &str,
        blob: &BlobInfo,
    ) -> StoreResult<()> {
        self.record_blob(blob).await?;
        let r = sqlx::query(
            "INSERT INTO oci_blobs (registry_id, image, digest, sha256, size, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (registry_id, image, digest) DO NOTHING",
        )
        .bind(registry_id)
        .bind(image)
        .bind(digest)
        .bind(&blob.sha256)
        .bind(blob.size as i64)
        .bind(now_ms())
        .execute(&self.write)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn repo_blob(
        &self,
        registry_id: &str,
        image: &str,
        digest: &str,
    ) -> StoreResult<Option<RepoBlob>> {
        let row = sqlx::query(
            "SELECT digest, sha256, size FROM oci_blobs WHERE registry_id = $1 AND image = $2 AND digest = $3",
        )
        .bind(registry_id)
        .bind(image)
        .bind(digest)
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            Some(r) => Some(RepoBlob {
                digest: r.try_get("digest")?,
                sha256: r.try_get("sha256")?,
                size: r.try_get("size")?,
            }),
            None => None,
        })
    }

    pub async fn unlink_blob(
        &self,
        registry_id: &str,
        image: &str,
        digest: &str,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "DELETE FROM oci_blobs WHERE registry_id = $1 AND image = $2 AND digest = $3",
        )
        .bind(registry_id)
        .bind(image)
        .bind(digest)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The stored blob with this SHA-256, as a file row that the download helpers can serve.
    pub async fn blob_as_file(&self, sha256: &str, name: &str) -> StoreResult<Option<FileRow>> {
        let row = sqlx::query("SELECT * FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.read)
            .await?;
        Ok(match row {
            Some(r) => {
                let created: i64 = r.try_get("created_at")?;
                Some(FileRow {
                    id: String::new(),
                    version_id: String::new(),
                    registry_id: String::new(),
                    path: name.to_string(),
                    name: name.to_string(),
                    size: r.try_get("size")?,
                    sha256: r.try_get("sha256")?,
                    md5: r.try_get("md5")?,
                    sha1: r.try_get("sha1")?,
                    sha512: r.try_get("sha512")?,
                    content_type: Some("application/octet-stream".into()),
                    metadata: serde_json::json!({}),
                    download_count: 0,
                    created_at: created,
                    updated_at: created,
                })
            }
            None => None,
        })
    }

    /// Manifest files of a repository whose content has this SHA-256.
    pub async fn manifests_by_sha256(
        &self,
        registry_id: &str,
        image: &str,
        sha256: &str,
    ) -> StoreResult<Vec<FileRow>> {
        let prefix = format!("{image}/");
        let rows = sqlx::query(&format!(
            "{} WHERE f.sha256 = $1 AND f.registry_id = $2",
            super::artifacts::FILE_SELECT
        ))
        .bind(sha256)
        .bind(registry_id)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let f = super::artifacts::row_to_file(r)?;
            if f.path.starts_with(&prefix)
                && f.path.ends_with("/manifest")
                && f.path[prefix.len()..].matches('/').count() == 1
            {
                out.push(f);
            }
        }
        Ok(out)
    }

    pub async fn add_referrer(
        &self,
        registry_id: &str,
        image: &str,
        subject: &str,
        digest: &str,
        descriptor: &serde_json::Value,
    ) -> StoreResult<()> {
        let r = sqlx::query(
            "INSERT INTO oci_referrers (registry_id, image, subject, digest, descriptor, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (registry_id, image, subject, digest) DO NOTHING",
        )
        .bind(registry_id)
        .bind(image)
        .bind(subject)
        .bind(digest)
        .bind(descriptor.to_string())
        .bind(now_ms())
        .execute(&self.write)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn referrers(
        &self,
        registry_id: &str,
        image: &str,
        subject: &str,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        let rows = sqlx::query(
            "SELECT digest, descriptor FROM oci_referrers WHERE registry_id = $1 AND image = $2 AND subject = $3 ORDER BY created_at",
        )
        .bind(registry_id)
        .bind(image)
        .bind(subject)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let d: String = r.try_get("descriptor")?;
            out.push((
                r.try_get("digest")?,
                serde_json::from_str(&d).unwrap_or(serde_json::Value::Null),
            ));
        }
        Ok(out)
    }

    pub async fn remove_referrer(
        &self,
        registry_id: &str,
        image: &str,
        digest: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM oci_referrers WHERE registry_id = $1 AND image = $2 AND digest = $3",
        )
        .bind(registry_id)
        .bind(image)
        .bind(digest)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// A secret shared by all server processes, created by whichever process asks first.
    pub async fn shared_secret(&self, name: &str, fresh: &str) -> StoreResult<String> {
        let r = sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .execute(&self.write)
        .await;
        if let Err(e) = r
            && !is_unique_violation(&e)
        {
            return Err(e.into());
        }
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.write)
            .await?;
        Ok(row.try_get("value")?)
    }

    /// Ids of every DOCKER and HELM registry (for `_catalog`, which filters by access).
    pub async fn oci_registry_ids(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM registries WHERE package_type IN ('DOCKER', 'HELM') ORDER BY account, identifier",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?)
    }
}

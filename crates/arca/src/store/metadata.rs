//! The format-specific attributes (`metadata` JSON) of packages, versions and files: set whole, or
//! changed atomically where several writers meet (npm dist-tags, deprecations, yank flags).

use sqlx::Row;

use super::{Db, StoreError, StoreResult};
use crate::model::now_ms;

impl Db {
    /// Sets some of a file's attributes atomically (PyPI's yank flag), keeping the others.
    pub async fn merge_file_metadata(
        &self,
        file_id: &str,
        fields: &serde_json::Value,
    ) -> StoreResult<()> {
        self.update_metadata("files", file_id, |m| {
            merge_fields(m, fields);
            Ok::<_, StoreError>(())
        })
        .await
    }

    /// Sets a package's format-specific attributes.
    pub async fn set_package_metadata(
        &self,
        package_id: &str,
        metadata: &serde_json::Value,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE packages SET metadata = $1, updated_at = $2, revision = revision + 1 WHERE id = $3")
            .bind(metadata.to_string())
            .bind(now_ms())
            .bind(package_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Sets a version's format-specific attributes.
    pub async fn set_version_metadata(
        &self,
        version_id: &str,
        metadata: &serde_json::Value,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE versions SET metadata = $1 WHERE id = $2")
            .bind(metadata.to_string())
            .bind(version_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE packages SET revision = revision + 1 WHERE id = (SELECT package_id FROM versions WHERE id = $1)")
            .bind(version_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes a package's format-specific attributes atomically: `change` edits the stored
    /// value inside one transaction, under a row lock on PostgreSQL and behind SQLite's single
    /// writer, so concurrent updates (npm dist-tags from parallel publishes) compose instead of
    /// overwriting each other. An error from `change` writes nothing.
    pub async fn update_package_metadata<T, E: From<StoreError>>(
        &self,
        package_id: &str,
        change: impl FnOnce(&mut serde_json::Value) -> Result<T, E>,
    ) -> Result<T, E> {
        self.update_metadata("packages", package_id, change).await
    }

    /// [`Db::update_package_metadata`] for a version's attributes; the package's revision moves
    /// too, since its generated documents show them.
    pub async fn update_version_metadata<T, E: From<StoreError>>(
        &self,
        version_id: &str,
        change: impl FnOnce(&mut serde_json::Value) -> Result<T, E>,
    ) -> Result<T, E> {
        self.update_metadata("versions", version_id, change).await
    }

    /// Sets some of a version's attributes, keeping the others: one version can be written by two
    /// protocols (a Helm chart uploaded to the classic repository and pushed over OCI).
    /// Top-level keys of `fields` replace the stored ones.
    pub async fn merge_version_metadata(
        &self,
        version_id: &str,
        fields: &serde_json::Value,
    ) -> StoreResult<()> {
        self.update_version_metadata(version_id, |m| {
            merge_fields(m, fields);
            Ok::<_, StoreError>(())
        })
        .await
    }

    /// The read-modify-write of a `metadata` column (`table` is `packages`, `versions` or
    /// `files`, never input). The stored value is always handed to `change` as a JSON object.
    async fn update_metadata<T, E: From<StoreError>>(
        &self,
        table: &'static str,
        id: &str,
        change: impl FnOnce(&mut serde_json::Value) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut tx = self.write.begin().await.map_err(StoreError::from)?;
        // PostgreSQL locks the row; SQLite writes through one connection.
        let lock = if self.is_postgres { " FOR UPDATE" } else { "" };
        let row = sqlx::query(&format!("SELECT metadata FROM {table} WHERE id = $1{lock}"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .ok_or_else(|| StoreError::not_found("the package or version is gone"))?;
        let text: String = row.try_get("metadata").map_err(StoreError::from)?;
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if !value.is_object() {
            value = serde_json::json!({});
        }
        let out = change(&mut value)?;
        // The row's new value; then the package's revision and time, since its generated
        // documents show what changed.
        let package_of = match table {
            "packages" => "$2",
            "versions" => "(SELECT package_id FROM versions WHERE id = $2)",
            _ => {
                "(SELECT v.package_id FROM files f JOIN versions v ON v.id = f.version_id WHERE f.id = $2)"
            }
        };
        sqlx::query(&format!("UPDATE {table} SET metadata = $1 WHERE id = $2"))
            .bind(value.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        sqlx::query(&format!(
            "UPDATE packages SET updated_at = $1, revision = revision + 1 WHERE id = {package_of}"
        ))
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(out)
    }
}

/// Top-level keys of `fields` replace those of `target` (both JSON objects).
fn merge_fields(target: &mut serde_json::Value, fields: &serde_json::Value) {
    if let Some(f) = fields.as_object() {
        for (k, v) in f {
            target[k] = v.clone();
        }
    }
}

//! Secret values by (space, identifier), for upstream credentials referred to by name.

use sqlx::Row;

use super::{Db, StoreResult};
use crate::model::now_ms;

/// A secret as listed: never its value.
#[derive(Debug, Clone)]
pub struct SecretInfo {
    pub scope_path: String,
    pub identifier: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Db {
    /// Sets (or replaces) a secret's value.
    pub async fn set_secret(
        &self,
        scope_path: &str,
        identifier: &str,
        value: &str,
    ) -> StoreResult<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO secrets (scope_path, identifier, value, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (scope_path, identifier) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(scope_path)
        .bind(identifier)
        .bind(value)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The secrets of a space (names and times only).
    pub async fn list_secrets(&self, scope_path: &str) -> StoreResult<Vec<SecretInfo>> {
        let rows = sqlx::query(
            "SELECT scope_path, identifier, created_at, updated_at FROM secrets WHERE scope_path = $1 ORDER BY identifier",
        )
        .bind(scope_path)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SecretInfo {
                    scope_path: r.try_get("scope_path")?,
                    identifier: r.try_get("identifier")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Deletes a secret; false when there was none.
    pub async fn delete_secret(&self, scope_path: &str, identifier: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM secrets WHERE scope_path = $1 AND identifier = $2")
            .bind(scope_path)
            .bind(identifier)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// A secret's value, for the server's own use (upstream credentials).
    pub async fn secret_value(
        &self,
        scope_path: &str,
        identifier: &str,
    ) -> StoreResult<Option<String>> {
        let row =
            sqlx::query("SELECT value FROM secrets WHERE scope_path = $1 AND identifier = $2")
                .bind(scope_path)
                .bind(identifier)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }
}

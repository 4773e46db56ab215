//! Per-registry OpenPGP keys (`registry_keys`): the armored secret and public key a registry signs
//! its metadata with. Generating and using keys is `signing.rs`'s job; this room only stores them.

use sqlx::Row;

use super::Db;
use super::StoreResult;
use crate::model::now_ms;

impl Db {
    /// The registry's (secret, public) armored key, if it has one. Read from the writer so that
    /// a key just stored by [`Db::insert_registry_key`] is seen at once.
    pub async fn registry_key(&self, registry_id: &str) -> StoreResult<Option<(String, String)>> {
        let row =
            sqlx::query("SELECT secret_key, public_key FROM registry_keys WHERE registry_id = $1")
                .bind(registry_id)
                .fetch_optional(&self.write)
                .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("secret_key")?, r.try_get("public_key")?)),
            None => None,
        })
    }

    /// Stores a registry's first key; a key stored concurrently wins (nothing is replaced).
    pub async fn insert_registry_key(
        &self,
        registry_id: &str,
        secret: &str,
        public: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO registry_keys (registry_id, secret_key, public_key, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (registry_id) DO NOTHING",
        )
        .bind(registry_id)
        .bind(secret)
        .bind(public)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Stores a registry's key, replacing the one it had.
    pub async fn replace_registry_key(
        &self,
        registry_id: &str,
        secret: &str,
        public: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO registry_keys (registry_id, secret_key, public_key, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (registry_id) DO UPDATE SET secret_key = $2, public_key = $3, created_at = $4",
        )
        .bind(registry_id)
        .bind(secret)
        .bind(public)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }
}

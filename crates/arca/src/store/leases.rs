//! Leases: one holder at a time across every process sharing the metadata store (see
//! `migrations/0025_leases.sql`).

use super::{Db, StoreResult};

impl Db {
    /// Takes (or renews) the lease `name` for `holder` until `until` (epoch ms): true when this
    /// holder has it now, false while another holder's lease has not expired.
    pub async fn lease_acquire(&self, name: &str, holder: &str, until: i64) -> StoreResult<bool> {
        let now = crate::model::now_ms();
        let r = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3 \
             WHERE leases.holder = $2 OR leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Gives the lease up (if this holder still has it).
    pub async fn lease_release(&self, name: &str, holder: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Forgets leases that expired before `before` (left by holders that died).
    pub async fn leases_expire(&self, before: i64) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM leases WHERE expires_at < $1")
            .bind(before)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected())
    }
}

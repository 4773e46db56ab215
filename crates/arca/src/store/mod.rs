//! Metadata store: sqlx over SQLite or PostgreSQL, chosen at run time by the database URL.
//!
//! One schema and one set of queries serve both engines (`sqlx::Any`, `$n` placeholders, TEXT and
//! BIGINT columns only). SQLite gets one writer connection and a pool of readers, which is how
//! SQLite wants to be used under WAL (no lock upgrades inside transactions); PostgreSQL uses one pool.

pub mod artifacts;
pub mod auth;
pub mod gc;
pub mod keys;
pub mod leases;
pub mod metadata;
pub mod oci;
pub mod paging;
pub mod proxy;
pub mod registries;
pub mod scopes;
pub mod secrets;
pub mod trash;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// What the metadata store reports. Its own type, as a model layer's should be: the store knows
/// nothing of HTTP, and `error.rs` maps these to statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata store: {0}")]
    Db(#[from] sqlx::Error),
    /// A uniqueness rule refused the write (a duplicate name, a re-upload under NONE, a
    /// concurrent insert of the same thing).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// Input the store cannot hold (an invalid scope path), naming the field.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// An invariant the store keeps was broken under it (a row vanished mid-transaction).
    #[error("{0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A write transaction, for the store functions that compose into one (`*_in`).
pub(crate) type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

impl StoreError {
    pub fn conflict(message: impl Into<String>) -> Self {
        StoreError::Conflict(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        StoreError::NotFound(message.into())
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct Db {
    /// Reads.
    pub read: AnyPool,
    /// Writes and transactions. The same pool as `read` on PostgreSQL.
    pub write: AnyPool,
    pub is_postgres: bool,
}

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = AnyConnectOptions::from_str(url).context("parsing database URL")?;
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .context("connecting to PostgreSQL")?;
            let db = Db {
                read: pool.clone(),
                write: pool,
                is_postgres: true,
            };
            db.migrate().await?;
            return Ok(db);
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unsupported database URL '{url}': use sqlite://... or postgres://..."
                )
            })?;
        let (file, _) = path.split_once('?').unwrap_or((path, ""));
        if let Some(dir) = std::path::Path::new(file).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let full = if url.contains('?') {
            url.to_string()
        } else {
            format!("{url}?mode=rwc")
        };
        let opts = AnyConnectOptions::from_str(&full).context("parsing database URL")?;
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(sqlite_setup)
            .connect_with(opts.clone())
            .await
            .context("opening SQLite database")?;
        let db_tmp = Db {
            read: write.clone(),
            write: write.clone(),
            is_postgres: false,
        };
        db_tmp.migrate().await?;
        let read = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(sqlite_setup)
            .connect_with(opts)
            .await
            .context("opening SQLite database")?;
        Ok(Db {
            read,
            write,
            is_postgres: false,
        })
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.write)
            .await
            .context("running migrations")?;
        Ok(())
    }

    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.read).await.is_ok()
    }
}

/// Per-connection SQLite settings (WAL itself persists in the file; the rest is per connection).
fn sqlite_setup(
    conn: &mut sqlx::AnyConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;")
            .await?;
        Ok(())
    })
}

/// True when the error is a unique-constraint violation (a concurrent writer won the race).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

/// A `LIKE` pattern matching `term` anywhere, with its wildcards escaped (use with `ESCAPE '\'`).
pub(crate) fn like_pattern(term: &str) -> String {
    format!(
        "%{}%",
        term.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

pub(crate) fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

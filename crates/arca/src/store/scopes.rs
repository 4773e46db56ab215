//! Scopes: a tree account → org → project, addressed by slash paths ("acct/org/proj").
//! Ancestry is read off the path itself, so no recursive queries are needed.

use sqlx::Row;

use super::{Db, Tx};
use super::{StoreError, StoreResult};
use crate::model::{Scope, new_id, now_ms, validate_scope_id};

fn row_to_scope(r: &sqlx::any::AnyRow) -> Result<Scope, sqlx::Error> {
    Ok(Scope {
        id: r.try_get("id")?,
        parent_id: r.try_get("parent_id")?,
        path: r.try_get("path")?,
        depth: r.try_get("depth")?,
    })
}

/// Validates a scope path of one to three segments.
pub fn validate_path(field: &str, path: &str) -> StoreResult<()> {
    let segs: Vec<&str> = path.split('/').collect();
    if segs.is_empty() || segs.len() > 3 {
        return Err(StoreError::invalid(
            field,
            format!("invalid {field} '{path}': expected account[/org[/project]]"),
        ));
    }
    for s in segs {
        validate_scope_id(field, s).map_err(|e| StoreError::invalid(field, e.to_string()))?;
    }
    Ok(())
}

/// Whether two scope paths name the same scope: scope ids compare case-insensitively.
pub fn same_path(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// All ancestor paths of a scope path, itself included, nearest first.
pub fn ancestor_paths(path: &str) -> Vec<String> {
    let segs: Vec<&str> = path.split('/').collect();
    (1..=segs.len())
        .rev()
        .map(|n| segs[..n].join("/"))
        .collect()
}

impl Db {
    /// The scope a path names, in any spelling (ids compare case-insensitively); the scope's
    /// `path` is the spelling it was created with.
    pub async fn scope_by_path(&self, path: &str) -> StoreResult<Option<Scope>> {
        let row = sqlx::query(
            "SELECT id, parent_id, path, depth FROM scopes WHERE LOWER(path) = LOWER($1)",
        )
        .bind(path)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| row_to_scope(&r)).transpose()?)
    }

    /// Creates the scope and any missing ancestors. Returns the scope. An existing scope spelled
    /// differently is the same scope; a new child keeps its parent's stored spelling.
    pub async fn ensure_scope(&self, path: &str) -> StoreResult<Scope> {
        let mut tx = self.write.begin().await?;
        let scope = Self::ensure_scope_in(&mut tx, path).await?;
        tx.commit().await?;
        Ok(scope)
    }

    /// [`Db::ensure_scope`] inside a transaction, so that what fails later in it (a registry that
    /// cannot be created) leaves no scope behind. A new scope gets its trash registry in it too.
    pub(crate) async fn ensure_scope_in(tx: &mut Tx<'_>, path: &str) -> StoreResult<Scope> {
        validate_path("scope", path)?;
        let segs: Vec<&str> = path.split('/').collect();
        let mut last: Option<Scope> = None;
        for (n, seg) in segs.iter().enumerate() {
            let p = match &last {
                Some(l) => format!("{}/{seg}", l.path),
                None => seg.to_string(),
            };
            let scope = match Self::scope_in(tx, &p).await? {
                Some(s) => s,
                None => {
                    // A concurrent creator may win: then its row is the scope.
                    sqlx::query(
                        "INSERT INTO scopes (id, parent_id, path, depth, created_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(new_id())
                    .bind(last.as_ref().map(|l| l.id.clone()))
                    .bind(&p)
                    .bind(n as i64 + 1)
                    .bind(now_ms())
                    .execute(&mut **tx)
                    .await?;
                    let s = Self::scope_in(tx, &p)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt(format!("scope {p} vanished")))?;
                    // Every scope (a GitFlic owner) has its trash.
                    Self::ensure_trash_can_in(tx, &s).await?;
                    s
                }
            };
            last = Some(scope);
        }
        last.ok_or_else(|| StoreError::invalid("scope", "empty scope path"))
    }

    async fn scope_in(tx: &mut Tx<'_>, path: &str) -> StoreResult<Option<Scope>> {
        let row = sqlx::query(
            "SELECT id, parent_id, path, depth FROM scopes WHERE LOWER(path) = LOWER($1)",
        )
        .bind(path)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.map(|r| row_to_scope(&r)).transpose()?)
    }

    /// Direct children paths of a scope (for `scope=descendants`): prefix match on the indexed path.
    /// `path` and every scope below it, as (id, path); paths compare case-insensitively.
    pub async fn descendant_scopes(&self, path: &str) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, path FROM scopes WHERE LOWER(path) = LOWER($1) OR LOWER(path) LIKE LOWER($2) ESCAPE '\\'",
        )
        .bind(path)
        .bind(format!(
            "{}/%",
            path.replace('%', "\\%").replace('_', "\\_")
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("path")?)))
            .collect()
    }
}

//! Users, API tokens (stored as SHA-256 of the secret) and role bindings per scope.

use sqlx::Row;

use super::{Db, is_unique_violation};
use super::{StoreError, StoreResult};
use crate::model::{Role, new_id, now_ms};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: String,
    pub user_name: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub limit: TokenLimit,
    pub created_by: Option<String>,
}

/// What narrows a token below its user's rights: only at or below `scope`, at most `role`, and
/// only until `expires_at` (epoch milliseconds). The default limits nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenLimit {
    pub scope: Option<String>,
    pub role: Option<Role>,
    pub expires_at: Option<i64>,
}

/// A token to store: its owner, name, the SHA-256 of its secret, its limits and its maker.
pub struct NewToken<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub limit: &'a TokenLimit,
    pub created_by: Option<&'a str>,
}

fn row_to_token(r: &sqlx::any::AnyRow) -> Result<TokenInfo, sqlx::Error> {
    Ok(TokenInfo {
        id: r.try_get("id")?,
        user_name: r.try_get("user_name")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
        limit: row_to_limit(r)?,
        created_by: r.try_get("created_by")?,
    })
}

fn row_to_limit(r: &sqlx::any::AnyRow) -> Result<TokenLimit, sqlx::Error> {
    let role: Option<String> = r.try_get("role")?;
    Ok(TokenLimit {
        scope: r.try_get("scope_path")?,
        role: role.as_deref().and_then(Role::parse),
        expires_at: r.try_get("expires_at")?,
    })
}

fn row_to_user(r: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        is_admin: r.try_get::<i64, _>("is_admin")? != 0,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    pub async fn user_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.read)
            .await?
            .try_get("n")?)
    }

    pub async fn create_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        is_admin: bool,
    ) -> StoreResult<User> {
        let id = new_id();
        let now = now_ms();
        let res = sqlx::query("INSERT INTO users (id, name, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(name)
            .bind(password_hash)
            .bind(is_admin as i64)
            .bind(now)
            .execute(&self.write)
            .await;
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::conflict(format!(
                    "user '{name}' already exists"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(User {
            id,
            name: name.into(),
            password_hash: password_hash.map(Into::into),
            is_admin,
            created_at: now,
        })
    }

    pub async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| row_to_user(&r)).transpose()?)
    }

    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| row_to_user(&r)).transpose()?)
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(row_to_user).collect::<Result<_, _>>()?)
    }

    /// Stores an unlimited token (bootstrap, CLI, npm login).
    pub async fn insert_token(
        &self,
        user_id: &str,
        name: &str,
        token_hash: &str,
    ) -> StoreResult<String> {
        self.insert_limited_token(&NewToken {
            user_id,
            name,
            token_hash,
            limit: &TokenLimit::default(),
            created_by: None,
        })
        .await
    }

    pub async fn insert_limited_token(&self, t: &NewToken<'_>) -> StoreResult<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO tokens (id, user_id, name, token_hash, created_at, scope_path, role, expires_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(t.user_id)
        .bind(t.name)
        .bind(t.token_hash)
        .bind(now_ms())
        .bind(t.limit.scope.as_deref())
        .bind(t.limit.role.map(Role::as_str))
        .bind(t.limit.expires_at)
        .bind(t.created_by)
        .execute(&self.write)
        .await?;
        Ok(id)
    }

    /// The user owning a live token (neither revoked nor expired), with the token's limits.
    pub async fn user_by_token_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(User, TokenLimit)>> {
        let row = sqlx::query(
            "SELECT u.*, t.scope_path, t.role, t.expires_at FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.read)
        .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((row_to_user(&r)?, row_to_limit(&r)?)))
            .transpose()?)
    }

    /// Tokens, oldest first: every user's, or one user's.
    pub async fn list_tokens(&self, user: Option<&str>) -> StoreResult<Vec<TokenInfo>> {
        let rows = sqlx::query(
            "SELECT t.id, u.name AS user_name, t.name, t.created_at, t.revoked_at, t.scope_path, t.role, \
             t.expires_at, t.created_by FROM tokens t \
             JOIN users u ON u.id = t.user_id WHERE ($1 = '' OR u.name = $1) ORDER BY t.created_at, t.id",
        )
        .bind(user.unwrap_or(""))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(row_to_token)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// One token by id (revoked ones too), never its secret.
    pub async fn token_by_id(&self, id: &str) -> StoreResult<Option<TokenInfo>> {
        let row = sqlx::query(
            "SELECT t.id, u.name AS user_name, t.name, t.created_at, t.revoked_at, t.scope_path, t.role, \
             t.expires_at, t.created_by FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| row_to_token(&r)).transpose()?)
    }

    pub async fn revoke_token(&self, id: &str) -> StoreResult<bool> {
        let res =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&self.write)
                .await?;
        Ok(res.rows_affected() > 0)
    }

    pub async fn grant_role(&self, user_id: &str, scope_id: &str, role: Role) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO role_bindings (user_id, scope_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, scope_id) DO UPDATE SET role = excluded.role",
        )
        .bind(user_id)
        .bind(scope_id)
        .bind(role.as_str())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Roles of a user keyed by scope path.
    pub async fn roles_of(&self, user_id: &str) -> StoreResult<Vec<(String, Role)>> {
        let rows = sqlx::query(
            "SELECT s.path, b.role FROM role_bindings b JOIN scopes s ON s.id = b.scope_id WHERE b.user_id = $1",
        )
        .bind(user_id)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let path: String = r.try_get("path")?;
            let role: String = r.try_get("role")?;
            if let Some(role) = Role::parse(&role) {
                out.push((path, role));
            }
        }
        Ok(out)
    }
}

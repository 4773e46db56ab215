//! The trash: deleted versions, kept until purged so that they can be restored.
//!
//! Every scope (account, org, project: a GitFlic owner) has one trash registry of kind TRASH, made
//! by the server with the internal identifier `~trash~<scope id>`, which no user name can take.
//! A deleted version moves into the trash of its registry's scope, under the package
//! `<registry id>/<package>` and with its files' paths prefixed `<registry id>/`: entries refer to
//! their original registry by id, never by name, and a version is restored into that registry.
//! Trash cans made before that lived one per account (`trash-can`); migration 0012 renamed them and
//! their entries, and they are the trash of their account's scope.

use sqlx::Row;

use super::artifacts::{PackageRow, VersionRow, row_to_package, row_to_version};
use super::{Db, StoreError, StoreResult, Tx};
use crate::model::{PackageType, Registry, RegistryKind, Scope, new_id, now_ms};

/// The internal identifier of a scope's trash registry.
pub fn trash_identifier(scope_id: &str) -> String {
    format!("~trash~{scope_id}")
}

/// The internal identifier of a caching proxy's cache registry.
pub fn cache_identifier(proxy_id: &str) -> String {
    format!("~cache~{proxy_id}")
}

/// The name a package of registry `registry_id` has in the trash.
pub fn trash_package_name(registry_id: &str, package: &str) -> String {
    format!("{registry_id}/{package}")
}

impl Db {
    /// Creates the scope's trash registry if it has none yet.
    pub async fn ensure_trash_can(&self, scope: &Scope) -> StoreResult<Registry> {
        let mut tx = self.write.begin().await?;
        Self::ensure_trash_can_in(&mut tx, scope).await?;
        tx.commit().await?;
        self.trash_of_scope(&scope.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("trash of {} vanished", scope.path)))
    }

    pub(crate) async fn ensure_trash_can_in(tx: &mut Tx<'_>, scope: &Scope) -> StoreResult<()> {
        let found = sqlx::query("SELECT id FROM registries WHERE scope_id = $1 AND kind = 'TRASH'")
            .bind(&scope.id)
            .fetch_optional(&mut **tx)
            .await?;
        if found.is_some() {
            return Ok(());
        }
        // Deleting in the trash purges.
        let reg = Registry {
            scope_id: scope.id.clone(),
            delete_allowed: true,
            ..Registry::new(
                &scope.path,
                trash_identifier(&scope.id),
                PackageType::Generic,
                RegistryKind::Trash,
            )
        };
        Self::insert_registry_in(tx, &reg).await
    }

    /// Gives every scope without one its trash registry (scopes made before there was one per scope).
    pub async fn ensure_trash_cans(&self) -> StoreResult<()> {
        let rows = sqlx::query(
            "SELECT s.id, s.parent_id, s.path, s.depth FROM scopes s WHERE NOT EXISTS \
             (SELECT 1 FROM registries r WHERE r.scope_id = s.id AND r.kind = 'TRASH')",
        )
        .fetch_all(&self.read)
        .await?;
        for r in &rows {
            let scope = Scope {
                id: r.try_get("id")?,
                parent_id: r.try_get("parent_id")?,
                path: r.try_get("path")?,
                depth: r.try_get("depth")?,
            };
            self.ensure_trash_can(&scope).await?;
        }
        Ok(())
    }

    /// The trash registry of a scope.
    pub async fn trash_of_scope(&self, scope_id: &str) -> StoreResult<Option<Registry>> {
        let (_, regs) = self
            .list_registries(
                &super::registries::RegistryFilter {
                    scope_ids: vec![scope_id.to_string()],
                    kinds: vec![RegistryKind::Trash],
                    ..Default::default()
                },
                &super::paging::Page::new(0, 1, super::paging::SortField::Created, false, None),
            )
            .await?;
        Ok(regs.into_iter().next())
    }

    /// The deleted versions of package `package` of `reg`: its package in whichever trash holds it.
    pub async fn deleted_package(
        &self,
        reg: &Registry,
        package: &str,
    ) -> StoreResult<Option<PackageRow>> {
        let row = sqlx::query(
            "SELECT p.* FROM packages p JOIN registries t ON t.id = p.registry_id \
             WHERE t.kind = 'TRASH' AND p.name = $1 AND p.origin_registry_id = $2",
        )
        .bind(trash_package_name(&reg.id, package))
        .bind(&reg.id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| row_to_package(&r)).transpose()?)
    }

    /// Every version of a package, oldest first.
    pub async fn package_versions(&self, package_id: &str) -> StoreResult<Vec<VersionRow>> {
        let rows =
            sqlx::query("SELECT * FROM versions WHERE package_id = $1 ORDER BY created_at, id")
                .bind(package_id)
                .fetch_all(&self.read)
                .await?;
        Ok(rows.iter().map(row_to_version).collect::<Result<_, _>>()?)
    }

    /// Moves a version (with its files) into `trash`, under `<registry id>/<package>`. A version
    /// of that name already in the trash is replaced. Its `updated_at` is when it was deleted.
    pub async fn trash_version(
        &self,
        reg: &Registry,
        package: &PackageRow,
        version: &VersionRow,
        trash: &Registry,
    ) -> StoreResult<()> {
        let now = now_ms();
        let trash_name = trash_package_name(&reg.id, &package.name);
        let mut tx = self.write.begin().await?;
        let trash_pkg = Self::package_in(&mut tx, &trash.id, &trash_name, Some(&reg.id)).await?;
        if let Some(old) =
            sqlx::query("SELECT id, size FROM versions WHERE package_id = $1 AND version = $2")
                .bind(&trash_pkg)
                .bind(&version.version)
                .fetch_optional(&mut *tx)
                .await?
        {
            let old_id: String = old.try_get("id")?;
            let old_size: i64 = old.try_get("size")?;
            sqlx::query(
                "UPDATE packages SET size = size - $1, revision = revision + 1 WHERE id = $2",
            )
            .bind(old_size)
            .bind(&trash_pkg)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM files WHERE version_id = $1")
                .bind(&old_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM versions WHERE id = $1")
                .bind(&old_id)
                .execute(&mut *tx)
                .await?;
        }
        Self::move_version(&mut tx, version, package, &trash_pkg, &trash.id, now).await?;
        sqlx::query("UPDATE files SET path = $1 || path WHERE version_id = $2")
            .bind(format!("{}/", reg.id))
            .bind(&version.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Versions that entered a trash before `cutoff` (epoch ms; a trashed version's `updated_at`
    /// is when it was deleted), with their packages: what the retention purges.
    pub async fn trashed_before(&self, cutoff: i64) -> StoreResult<Vec<(PackageRow, VersionRow)>> {
        let rows = sqlx::query(
            "SELECT v.* FROM versions v JOIN registries r ON r.id = v.registry_id \
             WHERE r.kind = 'TRASH' AND v.updated_at < $1 ORDER BY v.updated_at, v.id",
        )
        .bind(cutoff)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let v = row_to_version(r)?;
            if let Some(p) = self.package_by_id(&v.package_id).await? {
                out.push((p, v));
            }
        }
        Ok(out)
    }

    /// Moves a deleted version back into `reg`, the registry it was deleted from. A live version
    /// of that name, or a live file at one of its paths, is a conflict.
    pub async fn restore_version(
        &self,
        reg: &Registry,
        name: &str,
        trash_pkg: &PackageRow,
        version: &VersionRow,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let pkg = Self::package_in(&mut tx, &reg.id, name, None).await?;
        let live = sqlx::query("SELECT id FROM versions WHERE package_id = $1 AND version = $2")
            .bind(&pkg)
            .bind(&version.version)
            .fetch_optional(&mut *tx)
            .await?;
        if live.is_some() {
            return Err(StoreError::conflict(format!(
                "version '{}' of '{name}' exists in registry '{}': delete it first",
                version.version, reg.identifier
            )));
        }
        Self::move_version(&mut tx, version, trash_pkg, &pkg, &reg.id, now_ms()).await?;
        let prefix = format!("{}/", reg.id);
        let res = sqlx::query(
            "UPDATE files SET path = SUBSTR(path, CAST($1 AS INTEGER)) WHERE version_id = $2 AND path LIKE $3",
        )
        .bind(prefix.len() as i64 + 1)
        .bind(&version.id)
        .bind(format!("{prefix}%"))
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if super::is_unique_violation(&e) => {
                return Err(StoreError::conflict(format!(
                    "a file of version '{}' of '{name}' exists again in registry '{}'",
                    version.version, reg.identifier
                )));
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(())
    }

    /// The id of package `name` in a registry, created if missing.
    async fn package_in(
        tx: &mut Tx<'_>,
        registry_id: &str,
        name: &str,
        origin: Option<&str>,
    ) -> StoreResult<String> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO packages (id, registry_id, name, origin_registry_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (registry_id, name) DO NOTHING",
        )
        .bind(new_id())
        .bind(registry_id)
        .bind(name)
        .bind(origin)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(
            sqlx::query("SELECT id FROM packages WHERE registry_id = $1 AND name = $2")
                .bind(registry_id)
                .bind(name)
                .fetch_one(&mut **tx)
                .await?
                .try_get("id")?,
        )
    }

    /// Moves a version and its files from one package to another (in another registry), keeping
    /// both packages' sizes and latest versions right.
    async fn move_version(
        tx: &mut Tx<'_>,
        version: &VersionRow,
        from: &PackageRow,
        to_package: &str,
        to_registry: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE versions SET package_id = $1, registry_id = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(to_package)
        .bind(to_registry)
        .bind(now)
        .bind(&version.id)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE files SET registry_id = $1 WHERE version_id = $2")
            .bind(to_registry)
            .bind(&version.id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE packages SET updated_at = $1, size = size + $2, revision = revision + 1 WHERE id = $3")
            .bind(now)
            .bind(version.size)
            .bind(to_package)
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE packages SET size = size - $1, revision = revision + 1 WHERE id = $2")
            .bind(version.size)
            .bind(&from.id)
            .execute(&mut **tx)
            .await?;
        Self::refresh_package(tx, to_package).await?;
        Self::refresh_package(tx, &from.id).await?;
        Ok(())
    }
}

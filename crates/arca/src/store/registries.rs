//! Registry rows and their ordered member lists.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::paging::{Filter, List, Page, SortField};
use super::{Db, Tx, json_list};
use super::{StoreError, StoreResult};
use crate::model::{
    CleanupPolicy, PackageType, ProxySettings, Registry, RegistryKind, Reupload, now_ms,
};

const SELECT: &str =
    "SELECT r.*, s.path AS scope_path FROM registries r JOIN scopes s ON s.id = r.scope_id";

fn flag(r: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    Ok(r.try_get::<i64, _>(col)? != 0)
}

fn row_to_registry(r: &AnyRow) -> Result<Registry, sqlx::Error> {
    let kind_s: String = r.try_get("kind")?;
    let pt_s: String = r.try_get("package_type")?;
    let decode =
        |what: &str, v: &str| sqlx::Error::Decode(format!("bad {what} '{v}' in registries").into());
    let kind = RegistryKind::parse(&kind_s).ok_or_else(|| decode("kind", &kind_s))?;
    let package_type =
        PackageType::from_harness(&pt_s).ok_or_else(|| decode("package_type", &pt_s))?;
    let reupload_s: String = r.try_get("reupload")?;
    let proxy_url: Option<String> = r.try_get("proxy_url")?;
    let proxy = match proxy_url {
        Some(url) if kind == RegistryKind::Proxy => Some(ProxySettings {
            url,
            username: r.try_get("proxy_username")?,
            secret: r.try_get("proxy_secret")?,
            caching: flag(r, "proxy_caching")?,
            offline: flag(r, "proxy_offline")?,
            expire_hours: r.try_get("proxy_expire_hours")?,
            metadata_interval_secs: r.try_get("proxy_metadata_interval")?,
            source: r.try_get("proxy_source")?,
            harness_auth: r
                .try_get::<Option<String>, _>("proxy_harness_auth")?
                .and_then(|s| serde_json::from_str(&s).ok()),
            library_prefix: r
                .try_get::<Option<i64>, _>("proxy_library_prefix")?
                .map(|v| v != 0),
            negative_ttl_secs: r.try_get("proxy_negative_ttl")?,
            upstream_key: r.try_get("proxy_upstream_key")?,
            distributions: r
                .try_get::<Option<String>, _>("proxy_distributions")?
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
        }),
        _ => None,
    };
    let cleanup: String = r.try_get("cleanup_policies")?;
    let scanners: String = r.try_get("scanners")?;
    Ok(Registry {
        id: r.try_get("id")?,
        // The account is the scope's first segment; the column is the name's namespace.
        account: {
            let path: String = r.try_get("scope_path")?;
            path.split('/').next().unwrap_or(&path).to_string()
        },
        namespace: r.try_get("account")?,
        scope_id: r.try_get("scope_id")?,
        scope_path: r.try_get("scope_path")?,
        identifier: r.try_get("identifier")?,
        package_type,
        kind,
        description: r.try_get("description")?,
        labels: json_list(&r.try_get::<String, _>("labels")?),
        allowed_patterns: json_list(&r.try_get::<String, _>("allowed_patterns")?),
        blocked_patterns: json_list(&r.try_get::<String, _>("blocked_patterns")?),
        cleanup_policies: serde_json::from_str::<Vec<CleanupPolicy>>(&cleanup).unwrap_or_default(),
        scanners: serde_json::from_str(&scanners).unwrap_or_default(),
        anonymous: flag(r, "anonymous")?,
        delete_allowed: flag(r, "delete_allowed")?,
        reupload: Reupload::parse(&reupload_s).unwrap_or(Reupload::Override),
        proxy,
        cache_of: r.try_get("cache_of")?,
        allow_remote_proxying: flag(r, "allow_remote_proxying")?,
        allow_public_groups: flag(r, "allow_public_groups")?,
        dc_allow_list: json_list(&r.try_get::<String, _>("dc_allow_list")?),
        deployment_registry_id: r.try_get("deployment_registry_id")?,
        members: Vec::new(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Which registries a list holds; paging, sort and search term come as a [`Page`].
#[derive(Debug, Default)]
pub struct RegistryFilter {
    pub scope_ids: Vec<String>,
    pub package_types: Vec<PackageType>,
    pub kinds: Vec<RegistryKind>,
    /// When set, only public registries and those in these scopes: what a caller with roles on
    /// part of the listed scopes may see, filtered in the query so that counts stay honest.
    pub readable_scope_ids: Option<Vec<String>>,
}

/// Summary numbers of a registry, from its packages' running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryStats {
    pub artifacts: i64,
    pub bytes: i64,
    pub downloads: i64,
}

/// The statistics as columns of the list query: one indexed pass over each listed registry's
/// packages (not its files). The aliases are what `SortField` sorts registries by.
const STATS: &str = "(SELECT COUNT(*) FROM packages p WHERE p.registry_id = r.id) AS artifact_count, \
     (SELECT CAST(COALESCE(SUM(p.size), 0) AS BIGINT) FROM packages p WHERE p.registry_id = r.id) AS total_size, \
     (SELECT CAST(COALESCE(SUM(p.download_count), 0) AS BIGINT) FROM packages p WHERE p.registry_id = r.id) \
     AS total_downloads";

fn b(v: bool) -> i64 {
    v as i64
}

impl Db {
    async fn load_members(&self, mut reg: Registry) -> StoreResult<Registry> {
        let rows = sqlx::query(
            "SELECT member_id FROM registry_members WHERE registry_id = $1 ORDER BY position",
        )
        .bind(&reg.id)
        .fetch_all(&self.read)
        .await?;
        reg.members = rows
            .iter()
            .map(|r| r.try_get::<String, _>("member_id"))
            .collect::<Result<_, _>>()?;
        Ok(reg)
    }

    /// The registries of `ids` that exist, in the order of `ids`, with their members: one query
    /// whatever the number (a group's members are loaded at once on every read through it).
    pub async fn registries_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Registry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let params = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        // One row per (registry, member), members in order; a registry without members once.
        let sql = format!(
            "SELECT r.*, s.path AS scope_path, m.member_id AS member_id FROM registries r \
             JOIN scopes s ON s.id = r.scope_id LEFT JOIN registry_members m ON m.registry_id = r.id \
             WHERE r.id IN ({params}) ORDER BY r.id, m.position"
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        let mut found: Vec<Registry> = Vec::new();
        for row in q.fetch_all(&self.read).await? {
            let id: String = row.try_get("id")?;
            let member: Option<String> = row.try_get("member_id")?;
            if found.last().is_none_or(|r| r.id != id) {
                found.push(row_to_registry(&row)?);
            }
            if let (Some(m), Some(r)) = (member, found.last_mut()) {
                r.members.push(m);
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| {
                let i = found.iter().position(|r| r.id == *id)?;
                Some(found.swap_remove(i))
            })
            .collect())
    }

    pub async fn registry_by_id(&self, id: &str) -> StoreResult<Option<Registry>> {
        let sql = format!("{SELECT} WHERE r.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(r) => Ok(Some(self.load_members(row_to_registry(&r)?).await?)),
            None => Ok(None),
        }
    }

    /// The registry an account-level name means (the native shorthand `/pkg/<account>/<name>/`,
    /// OCI's `<account>/<name>/...`, Harness identifiers): the one named per account (unique by
    /// the store's index, so these addresses never change meaning), else the only registry of
    /// that name anywhere in the account. Names and ids match in any spelling.
    pub async fn registry_by_identifier(
        &self,
        account: &str,
        identifier: &str,
    ) -> StoreResult<Option<Registry>> {
        let sql = format!(
            "{SELECT} WHERE LOWER(r.account) = LOWER($1) AND LOWER(r.identifier) = LOWER($2)"
        );
        let row = sqlx::query(&sql)
            .bind(account)
            .bind(identifier)
            .fetch_optional(&self.read)
            .await?;
        if let Some(r) = row {
            return Ok(Some(self.load_members(row_to_registry(&r)?).await?));
        }
        let mut all = self.registries_named(account, identifier).await?;
        Ok(if all.len() == 1 { all.pop() } else { None })
    }

    /// Every registry of the account with that name (names per owner may repeat).
    pub async fn registries_named(
        &self,
        account: &str,
        identifier: &str,
    ) -> StoreResult<Vec<Registry>> {
        let sql = format!(
            "{SELECT} WHERE LOWER(r.identifier) = LOWER($1) AND (LOWER(s.path) = LOWER($2) \
             OR LOWER(s.path) LIKE LOWER($3) ESCAPE '\\')"
        );
        let rows = sqlx::query(&sql)
            .bind(identifier)
            .bind(account)
            .bind(format!(
                "{}/%",
                account.replace('%', "\\%").replace('_', "\\_")
            ))
            .fetch_all(&self.read)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.load_members(row_to_registry(r)?).await?);
        }
        Ok(out)
    }

    /// The registry of that name in exactly that scope (any spelling).
    pub async fn registry_in_scope(
        &self,
        scope_path: &str,
        identifier: &str,
    ) -> StoreResult<Option<Registry>> {
        let sql =
            format!("{SELECT} WHERE LOWER(s.path) = LOWER($1) AND LOWER(r.identifier) = LOWER($2)");
        let row = sqlx::query(&sql)
            .bind(scope_path)
            .bind(identifier)
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(r) => Ok(Some(self.load_members(row_to_registry(&r)?).await?)),
            None => Ok(None),
        }
    }

    /// Inserts a registry and its members. A duplicate identifier in the account is a 409.
    pub async fn insert_registry(&self, reg: &Registry) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        Self::insert_registry_in(&mut tx, reg).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates a registry, and the cache of a caching proxy, in one transaction with the scopes
    /// they need: a refusal (a duplicate name) leaves nothing behind, not even a new account.
    /// Sets the registries' scope ids, and their scope path and account to the stored spelling.
    pub async fn create_registry(
        &self,
        scope_path: &str,
        reg: &mut Registry,
        cache: Option<&mut Registry>,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let scope = Self::ensure_scope_in(&mut tx, scope_path).await?;
        for r in std::iter::once(reg).chain(cache) {
            let per_owner = r.named_per_owner();
            r.scope_id = scope.id.clone();
            r.scope_path = scope.path.clone();
            r.account = scope.account().to_string();
            r.namespace = if per_owner {
                scope.path.clone()
            } else {
                r.account.clone()
            };
            Self::insert_registry_in(&mut tx, r).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn insert_registry_in(tx: &mut Tx<'_>, reg: &Registry) -> StoreResult<()> {
        bump_generation();
        let p = reg.proxy.clone().unwrap_or_default();
        let res = sqlx::query(
            "INSERT INTO registries (id, account, scope_id, identifier, package_type, kind, description, labels, \
             allowed_patterns, blocked_patterns, cleanup_policies, scanners, anonymous, delete_allowed, reupload, \
             proxy_url, proxy_username, proxy_secret, proxy_caching, proxy_offline, proxy_expire_hours, \
             proxy_metadata_interval, proxy_source, proxy_harness_auth, cache_of, allow_remote_proxying, \
             deployment_registry_id, created_at, updated_at, allow_public_groups, proxy_library_prefix, proxy_negative_ttl, \
             proxy_upstream_key, dc_allow_list, proxy_distributions) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35)",
        )
        .bind(&reg.id)
        .bind(&reg.namespace)
        .bind(&reg.scope_id)
        .bind(&reg.identifier)
        .bind(reg.package_type.harness())
        .bind(reg.kind.as_str())
        .bind(reg.description.clone())
        .bind(serde_json::to_string(&reg.labels).unwrap_or_default())
        .bind(serde_json::to_string(&reg.allowed_patterns).unwrap_or_default())
        .bind(serde_json::to_string(&reg.blocked_patterns).unwrap_or_default())
        .bind(serde_json::to_string(&reg.cleanup_policies).unwrap_or_default())
        .bind(serde_json::to_string(&reg.scanners).unwrap_or_default())
        .bind(b(reg.anonymous))
        .bind(b(reg.delete_allowed))
        .bind(reg.reupload.as_str())
        .bind(reg.proxy.as_ref().map(|p| p.url.clone()))
        .bind(p.username.clone())
        .bind(p.secret.clone())
        .bind(b(p.caching))
        .bind(b(p.offline))
        .bind(p.expire_hours)
        .bind(p.metadata_interval_secs)
        .bind(p.source.clone())
        .bind(p.harness_auth.as_ref().map(|v| v.to_string()))
        .bind(reg.cache_of.clone())
        .bind(b(reg.allow_remote_proxying))
        .bind(reg.deployment_registry_id.clone())
        .bind(reg.created_at)
        .bind(reg.updated_at)
        .bind(b(reg.allow_public_groups))
        .bind(p.library_prefix.map(b))
        .bind(p.negative_ttl_secs)
        .bind(p.upstream_key.clone())
        .bind(serde_json::to_string(&reg.dc_allow_list).unwrap_or_default())
        .bind(distributions_column(&p))
        .execute(&mut **tx)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if super::is_unique_violation(&e) => {
                return Err(StoreError::conflict(format!(
                    "registry '{}' already exists in '{}'",
                    reg.identifier, reg.namespace
                )));
            }
            Err(e) => return Err(e.into()),
        }
        for (i, m) in reg.members.iter().enumerate() {
            sqlx::query("INSERT INTO registry_members (registry_id, position, member_id) VALUES ($1, $2, $3)")
                .bind(&reg.id)
                .bind(i as i64)
                .bind(m)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Writes every mutable field of a registry and replaces its member list.
    pub async fn update_registry(&self, reg: &Registry) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let p = reg.proxy.clone().unwrap_or_default();
        sqlx::query(
            "UPDATE registries SET description = $1, labels = $2, allowed_patterns = $3, blocked_patterns = $4, \
             cleanup_policies = $5, scanners = $6, anonymous = $7, delete_allowed = $8, reupload = $9, proxy_url = $10, \
             proxy_username = $11, proxy_secret = $12, proxy_caching = $13, proxy_offline = $14, \
             proxy_expire_hours = $15, proxy_metadata_interval = $16, proxy_source = $17, proxy_harness_auth = $18, \
             allow_remote_proxying = $19, deployment_registry_id = $20, updated_at = $21, \
             allow_public_groups = $22, proxy_library_prefix = $23, proxy_negative_ttl = $24, proxy_upstream_key = $25, \
             dc_allow_list = $26, proxy_distributions = $27 \
             WHERE id = $28",
        )
        .bind(reg.description.clone())
        .bind(serde_json::to_string(&reg.labels).unwrap_or_default())
        .bind(serde_json::to_string(&reg.allowed_patterns).unwrap_or_default())
        .bind(serde_json::to_string(&reg.blocked_patterns).unwrap_or_default())
        .bind(serde_json::to_string(&reg.cleanup_policies).unwrap_or_default())
        .bind(serde_json::to_string(&reg.scanners).unwrap_or_default())
        .bind(b(reg.anonymous))
        .bind(b(reg.delete_allowed))
        .bind(reg.reupload.as_str())
        .bind(reg.proxy.as_ref().map(|p| p.url.clone()))
        .bind(p.username.clone())
        .bind(p.secret.clone())
        .bind(b(p.caching))
        .bind(b(p.offline))
        .bind(p.expire_hours)
        .bind(p.metadata_interval_secs)
        .bind(p.source.clone())
        .bind(p.harness_auth.as_ref().map(|v| v.to_string()))
        .bind(b(reg.allow_remote_proxying))
        .bind(reg.deployment_registry_id.clone())
        .bind(now_ms())
        .bind(b(reg.allow_public_groups))
        .bind(p.library_prefix.map(b))
        .bind(p.negative_ttl_secs)
        .bind(p.upstream_key.clone())
        .bind(serde_json::to_string(&reg.dc_allow_list).unwrap_or_default())
        .bind(distributions_column(&p))
        .bind(&reg.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM registry_members WHERE registry_id = $1")
            .bind(&reg.id)
            .execute(&mut *tx)
            .await?;
        for (i, m) in reg.members.iter().enumerate() {
            sqlx::query("INSERT INTO registry_members (registry_id, position, member_id) VALUES ($1, $2, $3)")
                .bind(&reg.id)
                .bind(i as i64)
                .bind(m)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        bump_generation();
        Ok(())
    }

    /// Deletes a registry with its packages, versions and file rows. Blobs stay (deduplicated and
    /// possibly shared); unreferenced ones are left for garbage collection.
    pub async fn delete_registry(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        for sql in [
            "DELETE FROM files WHERE registry_id = $1",
            "DELETE FROM versions WHERE registry_id = $1",
            "DELETE FROM packages WHERE registry_id = $1",
            "DELETE FROM registry_members WHERE registry_id = $1",
            "DELETE FROM oci_blobs WHERE registry_id = $1",
            "DELETE FROM oci_uploads WHERE registry_id = $1",
            "DELETE FROM oci_referrers WHERE registry_id = $1",
            "DELETE FROM registry_keys WHERE registry_id = $1",
            "UPDATE registries SET deployment_registry_id = NULL WHERE deployment_registry_id = $1",
            "DELETE FROM registries WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        bump_generation();
        Ok(())
    }

    /// Ids of the registries (hosted or group) whose member list includes `member_id`.
    pub async fn registry_ids_including(&self, member_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT registry_id FROM registry_members WHERE member_id = $1 ORDER BY registry_id",
        )
        .bind(member_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>("registry_id").ok())
            .collect())
    }

    /// Registries (hosted or group) whose member list includes `member_id`.
    pub async fn registries_including(&self, member_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.identifier FROM registry_members m JOIN registries r ON r.id = m.registry_id \
             WHERE m.member_id = $1 ORDER BY r.identifier",
        )
        .bind(member_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>("identifier").ok())
            .collect())
    }

    /// Identifiers of the public registries (groups, or hosted registries with upstreams) that
    /// include `member_id`: those a member may not leave by turning private.
    pub async fn public_registries_including(&self, member_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.identifier FROM registry_members m JOIN registries r ON r.id = m.registry_id \
             WHERE m.member_id = $1 AND r.anonymous <> 0 ORDER BY r.identifier",
        )
        .bind(member_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>("identifier").ok())
            .collect())
    }

    /// The cache registry of a proxy, if it has one.
    pub async fn cache_of_proxy(&self, proxy_id: &str) -> StoreResult<Option<Registry>> {
        let sql = format!("{SELECT} WHERE r.cache_of = $1");
        let row = sqlx::query(&sql)
            .bind(proxy_id)
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(r) => Ok(Some(row_to_registry(&r)?)),
            None => Ok(None),
        }
    }

    /// A page of the registries `f` selects.
    pub async fn list_registries(
        &self,
        f: &RegistryFilter,
        page: &Page,
    ) -> StoreResult<(i64, Vec<Registry>)> {
        let (total, rows) = self.registry_rows(f, page, false).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.load_members(row_to_registry(r)?).await?);
        }
        Ok((total, out))
    }

    /// A page of the registries `f` selects, each with its statistics (in the same query).
    pub async fn list_registries_with_stats(
        &self,
        f: &RegistryFilter,
        page: &Page,
    ) -> StoreResult<(i64, Vec<(Registry, RegistryStats)>)> {
        let (total, rows) = self.registry_rows(f, page, true).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let stats = RegistryStats {
                artifacts: r.try_get("artifact_count")?,
                bytes: r.try_get("total_size")?,
                downloads: r.try_get("total_downloads")?,
            };
            out.push((self.load_members(row_to_registry(r)?).await?, stats));
        }
        Ok((total, out))
    }

    async fn registry_rows(
        &self,
        f: &RegistryFilter,
        page: &Page,
        stats: bool,
    ) -> StoreResult<(i64, Vec<AnyRow>)> {
        let mut filter = Filter::default();
        filter.any_of("r.scope_id", f.scope_ids.iter().cloned());
        if !f.package_types.is_empty() {
            filter.any_of(
                "r.package_type",
                f.package_types.iter().map(|t| t.harness().to_string()),
            );
        }
        if !f.kinds.is_empty() {
            filter.any_of("r.kind", f.kinds.iter().map(|k| k.as_str().to_string()));
        }
        if let Some(ids) = &f.readable_scope_ids {
            filter.public_or_in("r.anonymous", "r.scope_id", ids.iter().cloned());
        }
        // Sorting by a statistic needs its column even where the caller does not want it.
        let stats = stats
            || matches!(
                page.sort,
                SortField::Artifacts | SortField::Size | SortField::Downloads
            );
        let select = if stats {
            format!(
                "SELECT r.*, s.path AS scope_path, {STATS} FROM registries r JOIN scopes s ON s.id = r.scope_id"
            )
        } else {
            SELECT.to_string()
        };
        self.paged(List::Registries, &select, "r.identifier", filter, page)
            .await
    }
}

/// `proxy_distributions`: a JSON list, NULL when none are declared.
fn distributions_column(p: &ProxySettings) -> Option<String> {
    (!p.distributions.is_empty())
        .then(|| serde_json::to_string(&p.distributions).unwrap_or_default())
}

/// Changes whenever this process writes a registry row (create, update, delete): what a
/// process-local memory of registry rows (a group's member walk) checks before it is trusted.
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn registries_generation() -> u64 {
    GENERATION.load(std::sync::atomic::Ordering::Acquire)
}

fn bump_generation() {
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

//! Packages (artifacts), versions and files, and the blobs they point at.

use sqlx::Row;
use sqlx::any::AnyRow;

pub use super::paging::Page;
use super::paging::{Filter, List};
use super::{Db, is_unique_violation, json_list};
use super::{StoreError, StoreResult};
use crate::blob::BlobInfo;
use crate::model::{PackageType, Registry, Reupload, new_id, now_ms};

#[derive(Debug, Clone)]
pub struct PackageRow {
    pub id: String,
    pub registry_id: String,
    pub name: String,
    pub labels: Vec<String>,
    pub latest_version: Option<String>,
    pub download_count: i64,
    /// Sum of the sizes of its versions.
    pub size: i64,
    /// Format-specific attributes of the package.
    pub metadata: serde_json::Value,
    /// Changes whenever the package's generated documents would.
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct VersionRow {
    pub id: String,
    pub package_id: String,
    pub registry_id: String,
    pub version: String,
    pub size: i64,
    pub file_count: i64,
    pub metadata: serde_json::Value,
    pub download_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct FileRow {
    pub id: String,
    pub version_id: String,
    pub registry_id: String,
    pub path: String,
    pub name: String,
    pub size: i64,
    pub sha256: String,
    pub md5: String,
    pub sha1: String,
    pub sha512: String,
    pub content_type: Option<String>,
    /// Format-specific attributes of the file.
    pub metadata: serde_json::Value,
    pub download_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(super) fn row_to_package(r: &AnyRow) -> Result<PackageRow, sqlx::Error> {
    Ok(PackageRow {
        id: r.try_get("id")?,
        registry_id: r.try_get("registry_id")?,
        name: r.try_get("name")?,
        labels: json_list(&r.try_get::<String, _>("labels")?),
        latest_version: r.try_get("latest_version")?,
        download_count: r.try_get("download_count")?,
        size: r.try_get("size")?,
        metadata: serde_json::from_str(&r.try_get::<String, _>("metadata")?).unwrap_or_default(),
        revision: r.try_get("revision")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(super) fn row_to_version(r: &AnyRow) -> Result<VersionRow, sqlx::Error> {
    Ok(VersionRow {
        id: r.try_get("id")?,
        package_id: r.try_get("package_id")?,
        registry_id: r.try_get("registry_id")?,
        version: r.try_get("version")?,
        size: r.try_get("size")?,
        file_count: r.try_get("file_count")?,
        metadata: serde_json::from_str(&r.try_get::<String, _>("metadata")?).unwrap_or_default(),
        download_count: r.try_get("download_count")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const FILE_COLUMNS: &str = "f.*, b.md5, b.sha1, b.sha512";
pub(crate) const FILE_SELECT: &str =
    "SELECT f.*, b.md5, b.sha1, b.sha512 FROM files f JOIN blobs b ON b.sha256 = f.sha256";

pub(crate) fn row_to_file(r: &AnyRow) -> Result<FileRow, sqlx::Error> {
    Ok(FileRow {
        id: r.try_get("id")?,
        version_id: r.try_get("version_id")?,
        registry_id: r.try_get("registry_id")?,
        path: r.try_get("path")?,
        name: r.try_get("name")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        md5: r.try_get("md5")?,
        sha1: r.try_get("sha1")?,
        sha512: r.try_get("sha512")?,
        content_type: r.try_get("content_type")?,
        metadata: serde_json::from_str(&r.try_get::<String, _>("metadata")?).unwrap_or_default(),
        download_count: r.try_get("download_count")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A file to record under (package, version) at a registry-unique path.
pub struct NewFile<'a> {
    pub package: &'a str,
    pub version: &'a str,
    pub path: &'a str,
    pub name: &'a str,
    pub blob: &'a BlobInfo,
    pub content_type: Option<&'a str>,
    /// Format-specific attributes (JSON object).
    pub metadata: serde_json::Value,
}

impl Db {
    /// Records a blob's digests (idempotent: blobs are content-addressed).
    pub async fn record_blob(&self, b: &BlobInfo) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO blobs (sha256, size, md5, sha1, sha512, created_at, touched_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (sha256) DO UPDATE SET touched_at = $6, \
             md5 = CASE WHEN blobs.md5 = '' THEN excluded.md5 ELSE blobs.md5 END, \
             sha1 = CASE WHEN blobs.sha1 = '' THEN excluded.sha1 ELSE blobs.sha1 END, \
             sha512 = CASE WHEN blobs.sha512 = '' THEN excluded.sha512 ELSE blobs.sha512 END",
        )
        .bind(&b.sha256)
        .bind(b.size as i64)
        .bind(&b.md5)
        .bind(&b.sha1)
        .bind(&b.sha512)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Adds (or with OVERRIDE replaces) a file of a version, creating package and version as needed.
    /// With re-upload NONE an existing path is a 409; of concurrent uploads exactly one wins
    /// (the unique index on (registry, path) decides).
    pub async fn record_file(&self, reg: &Registry, f: NewFile<'_>) -> StoreResult<FileRow> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        // Package.
        sqlx::query(
            "INSERT INTO packages (id, registry_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (registry_id, name) DO NOTHING",
        )
        .bind(new_id())
        .bind(&reg.id)
        .bind(f.package)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let package_id: String =
            sqlx::query("SELECT id FROM packages WHERE registry_id = $1 AND name = $2")
                .bind(&reg.id)
                .bind(f.package)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;
        // Version.
        sqlx::query(
            "INSERT INTO versions (id, package_id, registry_id, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (package_id, version) DO NOTHING",
        )
        .bind(new_id())
        .bind(&package_id)
        .bind(&reg.id)
        .bind(f.version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let version_id: String =
            sqlx::query("SELECT id FROM versions WHERE package_id = $1 AND version = $2")
                .bind(&package_id)
                .bind(f.version)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;
        // File.
        let existing = sqlx::query(
            "SELECT id, version_id, size FROM files WHERE registry_id = $1 AND path = $2",
        )
        .bind(&reg.id)
        .bind(f.path)
        .fetch_optional(&mut *tx)
        .await?;
        let size = f.blob.size as i64;
        let mut replaced_size = 0;
        let file_id = match existing {
            Some(row) => {
                if reg.reupload == Reupload::None {
                    return Err(StoreError::conflict(format!(
                        "'{}' already exists in registry '{}' and re-upload is not allowed (packageReuploadType NONE)",
                        f.path, reg.identifier
                    )));
                }
                let id: String = row.try_get("id")?;
                let old_version: String = row.try_get("version_id")?;
                let old_size: i64 = row.try_get("size")?;
                replaced_size = old_size;
                sqlx::query(
                    "UPDATE files SET sha256 = $1, size = $2, content_type = $3, updated_at = $4, version_id = $5, \
                     metadata = $7 WHERE id = $6",
                )
                .bind(&f.blob.sha256)
                .bind(size)
                .bind(f.content_type)
                .bind(now)
                .bind(&version_id)
                .bind(&id)
                .bind(f.metadata.to_string())
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE versions SET size = size - $1, file_count = file_count - 1 WHERE id = $2")
                    .bind(old_size)
                    .bind(&old_version)
                    .execute(&mut *tx)
                    .await?;
                id
            }
            None => {
                let id = new_id();
                let res = sqlx::query(
                    "INSERT INTO files (id, version_id, registry_id, path, name, size, sha256, content_type, \
                     created_at, updated_at, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
                )
                .bind(&id)
                .bind(&version_id)
                .bind(&reg.id)
                .bind(f.path)
                .bind(f.name)
                .bind(size)
                .bind(&f.blob.sha256)
                .bind(f.content_type)
                .bind(now)
                .bind(f.metadata.to_string())
                .execute(&mut *tx)
                .await;
                match res {
                    Ok(_) => id,
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::conflict(format!(
                            "'{}' was uploaded concurrently to registry '{}'",
                            f.path, reg.identifier
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        sqlx::query("UPDATE versions SET size = size + $1, file_count = file_count + 1, updated_at = $2 WHERE id = $3")
            .bind(size)
            .bind(now)
            .bind(&version_id)
            .execute(&mut *tx)
            .await?;
        // The newest version by the format's order (upload order where it has none).
        let current: Option<String> =
            sqlx::query("SELECT latest_version FROM packages WHERE id = $1")
                .bind(&package_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("latest_version")?;
        let latest = match current {
            Some(c)
                if crate::versions::compare(reg.package_type, f.version, &c)
                    == Some(std::cmp::Ordering::Less) =>
            {
                c
            }
            _ => f.version.to_string(),
        };
        sqlx::query("UPDATE packages SET latest_version = $1, updated_at = $2, size = size + $3, revision = revision + 1 WHERE id = $4")
            .bind(&latest)
            .bind(now)
            .bind(size - replaced_size)
            .bind(&package_id)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!("{FILE_SELECT} WHERE f.id = $1"))
            .bind(&file_id)
            .fetch_one(&mut *tx)
            .await?;
        let file = row_to_file(&row)?;
        tx.commit().await?;
        Ok(file)
    }

    pub async fn file_by_path(
        &self,
        registry_id: &str,
        path: &str,
    ) -> StoreResult<Option<FileRow>> {
        let row = sqlx::query(&format!(
            "{FILE_SELECT} WHERE f.registry_id = $1 AND f.path = $2"
        ))
        .bind(registry_id)
        .bind(path)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| row_to_file(&r)).transpose()?)
    }

    /// The file called exactly `name` (case-sensitive, no pattern) in a version.
    pub async fn file_by_name(&self, version_id: &str, name: &str) -> StoreResult<Option<FileRow>> {
        let row = sqlx::query(&format!(
            "{FILE_SELECT} WHERE f.version_id = $1 AND f.name = $2"
        ))
        .bind(version_id)
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| row_to_file(&r)).transpose()?)
    }

    /// Adds batched download counts: `(file id, version id, downloads)`.
    pub async fn count_downloads(&self, counts: &[(String, String, i64)]) -> StoreResult<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await?;
        let now = now_ms();
        for (file_id, version_id, n) in counts {
            // The access time rides along: a proxy's expireHours evicts by it.
            sqlx::query("UPDATE files SET download_count = download_count + $1, accessed_at = $3 WHERE id = $2")
                .bind(n)
                .bind(file_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE versions SET download_count = download_count + $1 WHERE id = $2")
                .bind(n)
                .bind(version_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE packages SET download_count = download_count + $1 WHERE id = \
                 (SELECT package_id FROM versions WHERE id = $2)",
            )
            .bind(n)
            .bind(version_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Files of a registry whose path starts with `prefix` (which must not contain `%` or `_`).
    pub async fn files_with_prefix(
        &self,
        registry_id: &str,
        prefix: &str,
    ) -> StoreResult<Vec<FileRow>> {
        let rows = sqlx::query(&format!(
            "{FILE_SELECT} WHERE f.registry_id = $1 AND f.path LIKE $2 ORDER BY f.path"
        ))
        .bind(registry_id)
        .bind(format!("{prefix}%"))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(row_to_file).collect::<Result<_, _>>()?)
    }

    /// Packages of a registry whose name starts with `prefix` (any characters: compared with
    /// `SUBSTR`, not `LIKE`), by name. Used for Maven's group-level metadata and directory pages.
    pub async fn packages_with_prefix(
        &self,
        registry_id: &str,
        prefix: &str,
    ) -> StoreResult<Vec<PackageRow>> {
        let rows = sqlx::query(
            "SELECT * FROM packages WHERE registry_id = $1 AND SUBSTR(name, 1, CAST($2 AS INTEGER)) = $3 ORDER BY name",
        )
        .bind(registry_id)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(row_to_package).collect::<Result<_, _>>()?)
    }

    /// The package name and version name of a version.
    pub async fn version_names(&self, version_id: &str) -> StoreResult<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT p.name AS package, v.version AS version FROM versions v JOIN packages p ON p.id = v.package_id WHERE v.id = $1",
        )
        .bind(version_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("package")?, r.try_get("version")?)),
            None => None,
        })
    }

    pub async fn package_by_id(&self, id: &str) -> StoreResult<Option<PackageRow>> {
        let row = sqlx::query("SELECT * FROM packages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| row_to_package(&r)).transpose()?)
    }

    pub async fn package_by_name(
        &self,
        registry_id: &str,
        name: &str,
    ) -> StoreResult<Option<PackageRow>> {
        let row = sqlx::query("SELECT * FROM packages WHERE registry_id = $1 AND name = $2")
            .bind(registry_id)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| row_to_package(&r)).transpose()?)
    }

    /// The package called `name` in each of `registry_ids` that has one (one query; in no
    /// particular order).
    pub async fn packages_by_name(
        &self,
        registry_ids: &[String],
        name: &str,
    ) -> StoreResult<Vec<PackageRow>> {
        if registry_ids.is_empty() {
            return Ok(Vec::new());
        }
        let params = (2..=registry_ids.len() + 1)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT * FROM packages WHERE name = $1 AND registry_id IN ({params})");
        let mut q = sqlx::query(&sql).bind(name);
        for id in registry_ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.read).await?;
        Ok(rows.iter().map(row_to_package).collect::<Result<_, _>>()?)
    }

    pub async fn version_by_name(
        &self,
        package_id: &str,
        version: &str,
    ) -> StoreResult<Option<VersionRow>> {
        let row = sqlx::query("SELECT * FROM versions WHERE package_id = $1 AND version = $2")
            .bind(package_id)
            .bind(version)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| row_to_version(&r)).transpose()?)
    }

    /// Packages of some registries, with an optional label filter.
    pub async fn list_packages(
        &self,
        registry_ids: &[String],
        labels: &[String],
        page: &Page,
    ) -> StoreResult<(i64, Vec<PackageRow>)> {
        if registry_ids.is_empty() {
            return Ok((0, vec![]));
        }
        let mut filter = Filter::default();
        filter.any_of("registry_id", registry_ids.iter().cloned());
        // Labels are stored as a JSON list: a label matches as its quoted JSON string.
        for l in labels {
            filter.contains("labels", &serde_json::to_string(l).unwrap_or_default());
        }
        let (total, rows) = self
            .paged(
                List::Packages,
                "SELECT * FROM packages",
                "name",
                filter,
                page,
            )
            .await?;
        Ok((
            total,
            rows.iter().map(row_to_package).collect::<Result<_, _>>()?,
        ))
    }

    pub async fn list_versions(
        &self,
        package_id: &str,
        page: &Page,
    ) -> StoreResult<(i64, Vec<VersionRow>)> {
        let mut filter = Filter::default();
        filter.eq("package_id", package_id);
        let (total, rows) = self
            .paged(
                List::Versions,
                "SELECT * FROM versions",
                "version",
                filter,
                page,
            )
            .await?;
        Ok((
            total,
            rows.iter().map(row_to_version).collect::<Result<_, _>>()?,
        ))
    }

    pub async fn list_files(
        &self,
        version_id: &str,
        page: &Page,
    ) -> StoreResult<(i64, Vec<FileRow>)> {
        let mut filter = Filter::default();
        filter.eq("f.version_id", version_id);
        let (total, rows) = self
            .paged(List::Files, FILE_SELECT, "f.name", filter, page)
            .await?;
        Ok((
            total,
            rows.iter().map(row_to_file).collect::<Result<_, _>>()?,
        ))
    }

    pub async fn set_package_labels(&self, package_id: &str, labels: &[String]) -> StoreResult<()> {
        sqlx::query("UPDATE packages SET labels = $1, updated_at = $2, revision = revision + 1 WHERE id = $3")
            .bind(serde_json::to_string(labels).unwrap_or_default())
            .bind(now_ms())
            .bind(package_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Distinct labels used by packages of a registry.
    pub async fn package_labels(&self, registry_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT labels FROM packages WHERE registry_id = $1")
            .bind(registry_id)
            .fetch_all(&self.read)
            .await?;
        let mut set = std::collections::BTreeSet::new();
        for r in rows {
            for l in json_list(&r.try_get::<String, _>("labels")?) {
                set.insert(l);
            }
        }
        Ok(set.into_iter().collect())
    }

    /// Removes one file; an emptied version and package disappear with it.
    pub async fn delete_file(&self, file: &FileRow) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM files WHERE id = $1")
            .bind(&file.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE versions SET size = size - $1, file_count = file_count - 1 WHERE id = $2",
        )
        .bind(file.size)
        .bind(&file.version_id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT package_id, file_count FROM versions WHERE id = $1")
            .bind(&file.version_id)
            .fetch_one(&mut *tx)
            .await?;
        let package_id: String = row.try_get("package_id")?;
        let left: i64 = row.try_get("file_count")?;
        sqlx::query("UPDATE packages SET size = size - $1, revision = revision + 1 WHERE id = $2")
            .bind(file.size)
            .bind(&package_id)
            .execute(&mut *tx)
            .await?;
        if left <= 0 {
            sqlx::query("DELETE FROM versions WHERE id = $1")
                .bind(&file.version_id)
                .execute(&mut *tx)
                .await?;
            Self::refresh_package(&mut tx, &package_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Keeps `latest_version` right after versions left a package, and drops an empty package.
    pub(super) async fn refresh_package(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        package_id: &str,
    ) -> StoreResult<()> {
        let kind = sqlx::query(
            "SELECT r.package_type FROM packages p JOIN registries r ON r.id = p.registry_id WHERE p.id = $1",
        )
        .bind(package_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(kind) = kind else { return Ok(()) };
        let kind: String = kind.try_get("package_type")?;
        let versions: Vec<String> = sqlx::query(
            "SELECT version FROM versions WHERE package_id = $1 ORDER BY created_at, id",
        )
        .bind(package_id)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("version"))
        .collect::<Result<_, _>>()?;
        // The newest by the format's order; the trash can (any type) keeps upload order.
        let latest = match PackageType::from_harness(&kind) {
            Some(t) => crate::versions::newest(t, versions.iter().map(String::as_str)),
            None => versions.last().map(String::as_str),
        };
        match latest {
            Some(v) => {
                sqlx::query("UPDATE packages SET latest_version = $1, revision = revision + 1 WHERE id = $2")
                    .bind(v)
                    .bind(package_id)
                    .execute(&mut **tx)
                    .await?;
            }
            None => {
                sqlx::query("DELETE FROM packages WHERE id = $1")
                    .bind(package_id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Purges a version for good (used for the trash can itself).
    pub async fn purge_version(
        &self,
        package: &PackageRow,
        version: &VersionRow,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM files WHERE version_id = $1")
            .bind(&version.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM versions WHERE id = $1")
            .bind(&version.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE packages SET size = size - $1, revision = revision + 1 WHERE id = $2")
            .bind(version.size)
            .bind(&package.id)
            .execute(&mut *tx)
            .await?;
        Self::refresh_package(&mut tx, &package.id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every file of a package, oldest first (for generated indexes; indexed by version).
    pub async fn package_files(&self, package_id: &str) -> StoreResult<Vec<(String, FileRow)>> {
        let rows = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS}, v.version AS version_name FROM files f JOIN blobs b ON b.sha256 = f.sha256 \
             JOIN versions v ON v.id = f.version_id WHERE v.package_id = $1 ORDER BY f.created_at, f.id"
        ))
        .bind(package_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("version_name")?, row_to_file(r)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Another package of the registry whose name, with `_` read as `-`, is `canonical` (Cargo's
    /// crate-name equivalence). Publish-only, so a scan of the registry's names is acceptable.
    pub async fn package_with_canonical_name(
        &self,
        registry_id: &str,
        canonical: &str,
        except: &str,
    ) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT name FROM packages WHERE registry_id = $1 AND REPLACE(name, '_', '-') = $2 AND name <> $3")
            .bind(registry_id)
            .bind(canonical)
            .bind(except)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("name")).transpose()?)
    }

    /// Package names containing `term` in these registries, each name once, sorted and paged:
    /// the number of distinct names, and every row (of any of these registries) of the names on
    /// the page. What a search through a group counts and lists.
    pub async fn search_names(
        &self,
        registry_ids: &[String],
        term: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<PackageRow>)> {
        if registry_ids.is_empty() {
            return Ok((0, vec![]));
        }
        let mut filter = Filter::default();
        filter.any_of("registry_id", registry_ids.iter().cloned());
        if !term.is_empty() {
            filter.contains("name", term);
        }
        let where_ = filter.sql();
        let total: i64 = filter
            .query(&format!(
                "SELECT COUNT(DISTINCT name) AS n FROM packages WHERE {where_}"
            ))
            .fetch_one(&self.read)
            .await?
            .try_get("n")?;
        let sql = format!(
            "SELECT DISTINCT name FROM packages WHERE {where_} ORDER BY name LIMIT {} OFFSET {}",
            limit.max(0),
            offset.max(0)
        );
        let names: Vec<String> = filter
            .query(&sql)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| r.try_get("name"))
            .collect::<Result<_, _>>()?;
        if names.is_empty() {
            return Ok((total, vec![]));
        }
        let mut rows = Filter::default();
        rows.any_of("registry_id", registry_ids.iter().cloned());
        rows.any_of("name", names);
        let sql = format!("SELECT * FROM packages WHERE {} ORDER BY name", rows.sql());
        let found = rows.query(&sql).fetch_all(&self.read).await?;
        Ok((
            total,
            found.iter().map(row_to_package).collect::<Result<_, _>>()?,
        ))
    }

    /// Names of the packages in these registries, sorted and without duplicates.
    pub async fn package_names(&self, registry_ids: &[String]) -> StoreResult<Vec<String>> {
        if registry_ids.is_empty() {
            return Ok(vec![]);
        }
        let ph: Vec<String> = (1..=registry_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT DISTINCT name FROM packages WHERE registry_id IN ({}) ORDER BY name",
            ph.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in registry_ids {
            q = q.bind(id.clone());
        }
        let rows = q.fetch_all(&self.read).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("name"))
            .collect::<Result<_, _>>()?)
    }

    pub async fn all_versions(&self, package_id: &str) -> StoreResult<Vec<VersionRow>> {
        let rows = sqlx::query("SELECT * FROM versions WHERE package_id = $1 ORDER BY created_at")
            .bind(package_id)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(row_to_version).collect::<Result<_, _>>()?)
    }
}

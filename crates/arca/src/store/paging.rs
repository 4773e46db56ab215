//! Paged list queries: the fields a list can be sorted by, turned into SQL here and nowhere else,
//! and one helper that counts the matching rows and fetches a page of them with the same WHERE
//! clause and binds (registries, packages, versions and files all page this way).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, like_pattern};
use super::{StoreError, StoreResult};

/// What a list can be sorted by. Callers name the field; each list decides which column (or
/// computed value) that is, so no SQL is written outside `store/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortField {
    /// The registry identifier, package name, version string or file name.
    Name,
    #[default]
    Created,
    Updated,
    /// Bytes stored (for a registry: the sum over its packages).
    Size,
    /// Downloads (for a registry: the sum over its packages).
    Downloads,
    /// A registry's kind.
    Kind,
    /// A registry's number of packages.
    Artifacts,
}

impl SortField {
    #[cfg(test)]
    const ALL: [SortField; 7] = [
        SortField::Name,
        SortField::Created,
        SortField::Updated,
        SortField::Size,
        SortField::Downloads,
        SortField::Kind,
        SortField::Artifacts,
    ];

    /// The stable name of the field (in error messages; it reads like the packages' columns).
    pub fn key(self) -> &'static str {
        match self {
            SortField::Name => "name",
            SortField::Created => "created_at",
            SortField::Updated => "updated_at",
            SortField::Size => "size",
            SortField::Downloads => "download_count",
            SortField::Kind => "kind",
            SortField::Artifacts => "artifacts",
        }
    }

    /// The ORDER BY expression of this field in a list, if the list has it.
    fn sql(self, list: List) -> Option<&'static str> {
        use SortField::*;
        Some(match (list, self) {
            (List::Registries, Name) => "r.identifier",
            (List::Registries, Created) => "r.created_at",
            (List::Registries, Updated) => "r.updated_at",
            (List::Registries, Kind) => "r.kind",
            // Aliases of the statistics the registry list selects (`registries::STATS`).
            (List::Registries, Artifacts) => "artifact_count",
            (List::Registries, Size) => "total_size",
            (List::Registries, Downloads) => "total_downloads",
            (List::Packages, Name) => "name",
            (List::Packages, Created) => "created_at",
            (List::Packages, Updated) => "updated_at",
            (List::Packages, Size) => "size",
            (List::Packages, Downloads) => "download_count",
            (List::Versions, Name) => "version",
            (List::Versions, Created) => "created_at",
            (List::Versions, Updated) => "updated_at",
            (List::Versions, Size) => "size",
            (List::Versions, Downloads) => "download_count",
            (List::Files, Name) => "f.name",
            (List::Files, Created) => "f.created_at",
            (List::Files, Updated) => "f.updated_at",
            (List::Files, Size) => "f.size",
            (List::Files, Downloads) => "f.download_count",
            _ => return None,
        })
    }
}

/// Paging and sorting shared by every list query.
#[derive(Debug, Clone)]
pub struct Page {
    pub offset: i64,
    pub limit: i64,
    /// What to sort by (ties broken by id); the store maps it to SQL per list and refuses a
    /// field the list cannot sort by.
    pub sort: SortField,
    pub descending: bool,
    /// Substring of the listed thing's name to filter on (empty: no filter).
    pub search: Option<String>,
}

impl Page {
    pub fn new(
        offset: i64,
        limit: i64,
        sort: SortField,
        descending: bool,
        search: Option<String>,
    ) -> Page {
        Page {
            offset,
            limit,
            sort,
            descending,
            search,
        }
    }

    /// The search term, if there is a non-empty one.
    fn term(&self) -> Option<&str> {
        self.search.as_deref().filter(|t| !t.is_empty())
    }
}

/// The lists that page, each with its table (as the count query names it) and id column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Registries,
    Packages,
    Versions,
    Files,
}

impl List {
    fn table(self) -> &'static str {
        match self {
            List::Registries => "registries r",
            List::Packages => "packages",
            List::Versions => "versions",
            List::Files => "files f",
        }
    }

    fn id(self) -> &'static str {
        match self {
            List::Registries => "r.id",
            List::Files => "f.id",
            List::Packages | List::Versions => "id",
        }
    }

    fn name(self) -> &'static str {
        match self {
            List::Registries => "registries",
            List::Packages => "packages",
            List::Versions => "versions",
            List::Files => "files",
        }
    }
}

/// A WHERE clause built with its binds, so that the count and the page run the same condition.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    conds: Vec<String>,
    binds: Vec<String>,
}

impl Filter {
    fn next(&mut self, v: String) -> String {
        self.binds.push(v);
        format!("${}", self.binds.len())
    }

    /// `col` equals `val`.
    pub fn eq(&mut self, col: &str, val: &str) -> &mut Self {
        let ph = self.next(val.to_string());
        self.conds.push(format!("{col} = {ph}"));
        self
    }

    /// `col` is one of `vals`. No values match nothing (as SQLite's `IN ()` would; PostgreSQL
    /// refuses an empty list).
    pub fn any_of(&mut self, col: &str, vals: impl IntoIterator<Item = String>) -> &mut Self {
        let ph: Vec<String> = vals.into_iter().map(|v| self.next(v)).collect();
        if ph.is_empty() {
            self.conds.push("1 = 0".into());
        } else {
            self.conds.push(format!("{col} IN ({})", ph.join(", ")));
        }
        self
    }

    /// The flag column `public` is set, or `col` is one of `vals`.
    pub fn public_or_in(
        &mut self,
        public: &str,
        col: &str,
        vals: impl IntoIterator<Item = String>,
    ) -> &mut Self {
        let ph: Vec<String> = vals.into_iter().map(|v| self.next(v)).collect();
        if ph.is_empty() {
            self.conds.push(format!("{public} <> 0"));
        } else {
            self.conds
                .push(format!("({public} <> 0 OR {col} IN ({}))", ph.join(", ")));
        }
        self
    }

    /// `col` contains `term` literally (LIKE wildcards in it are escaped).
    pub fn contains(&mut self, col: &str, term: &str) -> &mut Self {
        let ph = self.next(like_pattern(term));
        self.conds.push(format!("{col} LIKE {ph} ESCAPE '\\'"));
        self
    }

    pub(super) fn sql(&self) -> String {
        if self.conds.is_empty() {
            "1 = 1".into()
        } else {
            self.conds.join(" AND ")
        }
    }

    pub(super) fn query<'q>(
        &'q self,
        sql: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let mut q = sqlx::query(sql);
        for v in &self.binds {
            q = q.bind(v.as_str());
        }
        q
    }
}

impl Db {
    /// Counts the rows of `list` matching `filter` (plus the page's search term on `search_col`)
    /// and fetches the page of them that `select` (a `SELECT ... FROM ...` without WHERE) reads.
    pub(crate) async fn paged(
        &self,
        list: List,
        select: &str,
        search_col: &str,
        mut filter: Filter,
        page: &Page,
    ) -> StoreResult<(i64, Vec<AnyRow>)> {
        if let Some(term) = page.term() {
            filter.contains(search_col, term);
        }
        let sort = page.sort;
        let order = sort.sql(list).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{} cannot be sorted by {}",
                list.name(),
                sort.key()
            ))
        })?;
        let where_ = filter.sql();
        let count_sql = format!("SELECT COUNT(*) AS n FROM {} WHERE {where_}", list.table());
        let total: i64 = filter
            .query(&count_sql)
            .fetch_one(&self.read)
            .await?
            .try_get("n")?;
        let dir = if page.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "{select} WHERE {where_} ORDER BY {order} {dir}, {} {dir} LIMIT {} OFFSET {}",
            list.id(),
            page.limit,
            page.offset
        );
        let rows = filter.query(&sql).fetch_all(&self.read).await?;
        Ok((total, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_sorts_by_name_and_creation_and_keys_are_distinct() {
        let keys: std::collections::HashSet<&str> =
            SortField::ALL.iter().map(|f| f.key()).collect();
        assert_eq!(keys.len(), SortField::ALL.len());
        for list in [
            List::Registries,
            List::Packages,
            List::Versions,
            List::Files,
        ] {
            assert!(SortField::Name.sql(list).is_some());
            assert!(SortField::Created.sql(list).is_some());
        }
        assert!(
            SortField::Kind.sql(List::Packages).is_none(),
            "packages have no kind"
        );
    }

    #[test]
    fn filter_numbers_binds_and_never_builds_an_empty_in() {
        let mut f = Filter::default();
        f.any_of("r.scope_id", vec!["a".into(), "b".into()])
            .contains("r.identifier", "50%_x");
        assert_eq!(
            f.sql(),
            "r.scope_id IN ($1, $2) AND r.identifier LIKE $3 ESCAPE '\\'"
        );
        assert_eq!(f.binds, ["a", "b", "%50\\%\\_x%"]);
        let mut empty = Filter::default();
        empty.any_of("registry_id", Vec::new());
        assert_eq!(empty.sql(), "1 = 0");
        assert_eq!(Filter::default().sql(), "1 = 1");
    }
}

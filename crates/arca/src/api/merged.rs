//! The merged view of a group's artifacts for the management dialects (Harness artifact lists,
//! GitFlic package lists): every package name once, from the member that serves it to the native
//! protocols (the first member that has it; a proxy's cache never for a name a hosted member owns
//! unless the group's allow-list names it), each row naming that member (`servedBy`).

use std::collections::HashMap;

use crate::error::ApiResult;
use crate::formats::{Resolver, members};
use crate::model::{Registry, RegistryKind};
use crate::state::AppState;
use crate::store::artifacts::PackageRow;
use crate::store::paging::Page;

/// Which stored rows a group shows, and as served by whom.
pub struct Merged {
    /// Where the group's members store their packages (hosted members, proxies' caches).
    pub stores: Vec<String>,
    /// The winning row of each name: row id → the serving member's name.
    pub winners: HashMap<String, String>,
}

impl Merged {
    /// The serving member of `row`, when the row is in the group's merged view.
    pub fn served_by(&self, row: &PackageRow) -> Option<&str> {
        self.winners.get(&row.id).map(String::as_str)
    }
}

/// The merged view of `group`.
pub async fn of_group(state: &AppState, group: &Registry) -> ApiResult<Merged> {
    let reached = (Resolver { state }).reached(group).await?;
    let stored: Vec<&members::Reached> = reached
        .iter()
        .filter(|r| matches!(r.reg.kind, RegistryKind::Hosted | RegistryKind::Cache))
        .collect();
    let stores: Vec<String> = stored.iter().map(|r| r.reg.id.clone()).collect();
    let all = Page::new(
        0,
        i64::MAX,
        crate::store::paging::SortField::Name,
        false,
        None,
    );
    let (_, rows) = state.db.list_packages(&stores, &[], &all).await?;
    let rank: HashMap<&str, usize> = stored
        .iter()
        .enumerate()
        .map(|(i, r)| (r.reg.id.as_str(), i))
        .collect();
    let kind_of = |row: &PackageRow| {
        rank.get(row.registry_id.as_str())
            .map(|i| stored[*i].reg.kind)
    };
    let owned: std::collections::HashSet<&str> = rows
        .iter()
        .filter(|r| kind_of(r) == Some(RegistryKind::Hosted))
        .map(|r| r.name.as_str())
        .collect();
    let mut best: HashMap<&str, (usize, &PackageRow)> = HashMap::new();
    for row in &rows {
        let Some(&i) = rank.get(row.registry_id.as_str()) else {
            continue;
        };
        let hidden = kind_of(row) == Some(RegistryKind::Cache)
            && owned.contains(row.name.as_str())
            && !members::allow_listed(&group.dc_allow_list, &row.name);
        if hidden {
            continue;
        }
        if best.get(row.name.as_str()).is_none_or(|(j, _)| i < *j) {
            best.insert(row.name.as_str(), (i, row));
        }
    }
    let winners = best
        .into_values()
        .map(|(i, row)| (row.id.clone(), stored[i].label.clone()))
        .collect();
    Ok(Merged { stores, winners })
}

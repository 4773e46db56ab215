//! Helpers shared by both dialects.

use crate::error::{ApiError, ApiResult};
use crate::model::{Registry, RegistryKind};
use crate::state::AppState;
use crate::store::registries::TRASH_IDENTIFIER;

/// Query string as ordered pairs; repeated keys (`package_type=A&package_type=B`) are kept.
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub fn query_all<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// Parses a non-negative integer query parameter.
pub fn query_int(pairs: &[(String, String)], key: &str) -> ApiResult<Option<i64>> {
    match query_get(pairs, key) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad(
                    key,
                    format!("{key} must be a non-negative integer, got '{v}'"),
                )
            }),
    }
}

pub const MAX_PAGE_SIZE: i64 = 1000;

pub fn check_size(size: i64) -> ApiResult<i64> {
    if size == 0 || size > MAX_PAGE_SIZE {
        return Err(ApiError::bad(
            "size",
            format!("size must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    Ok(size)
}

/// The row offset of a 0-based `page` of `size` rows. Both come from the client, so the product
/// can overflow an `i64` (a wrapped, negative OFFSET is refused by PostgreSQL): that is a 400.
pub fn page_offset(page: i64, size: i64) -> ApiResult<i64> {
    page.checked_mul(size).ok_or_else(|| {
        ApiError::bad(
            "page",
            format!("page {page} of size {size} is out of range"),
        )
    })
}

/// Moves one version, or all versions of a package, to the account's trash can. In the trash can
/// itself, deleting purges.
pub async fn trash_versions(
    state: &AppState,
    reg: &Registry,
    package: &str,
    version: Option<&str>,
) -> ApiResult<()> {
    let pkg = state
        .db
        .package_by_name(&reg.id, package)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "artifact '{package}' not found in registry '{}'",
                reg.identifier
            ))
        })?;
    let versions = match version {
        Some(v) => vec![state.db.version_by_name(&pkg.id, v).await?.ok_or_else(|| {
            ApiError::not_found(format!("version '{v}' of '{package}' not found"))
        })?],
        None => state.db.all_versions(&pkg.id).await?,
    };
    if reg.kind == RegistryKind::Trash {
        for v in &versions {
            state.db.purge_version(&pkg, v).await?;
        }
        return Ok(());
    }
    let account_scope = state.db.scope_by_path(&reg.account).await?.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("account scope {} missing", reg.account))
    })?;
    state.db.ensure_trash_can(&account_scope).await?;
    let trash = state
        .db
        .registry_by_identifier(&reg.account, TRASH_IDENTIFIER)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("trash can of {} missing", reg.account))
        })?;
    for v in &versions {
        state.db.trash_version(reg, &pkg, v, &trash).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_offset_refuses_overflow() {
        assert_eq!(page_offset(3, 20).unwrap(), 60);
        assert!(matches!(
            page_offset(i64::MAX / 2, 10),
            Err(ApiError::BadRequest { .. })
        ));
    }
}

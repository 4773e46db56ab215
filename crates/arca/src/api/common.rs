//! Paging rules shared by both management dialects.

use crate::error::{ApiError, ApiResult};

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

/// Where a registry's clients point: `<base>/pkg/<account>/<registry>/<format>`, or
/// `<base>/<account>/<registry>` for the OCI formats (their clients add `/v2`). Both dialects
/// answer with it as `url`.
pub fn native_url(state: &crate::state::AppState, reg: &crate::model::Registry) -> String {
    use crate::model::PackageType;
    let base = &state.config.base_url;
    match reg.package_type {
        PackageType::Docker | PackageType::Helm => {
            format!("{base}/{}", reg.oci_prefix())
        }
        _ => crate::formats::native_root(state, reg),
    }
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

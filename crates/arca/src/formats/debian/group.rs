//! A Debian group's proxy members: a distribution no hosted member holds is passed through from
//! the proxy member that serves it (its declared `distributions`, or any when it declares none;
//! `service` refuses two that serve one distribution), and its pool files are fetched by the
//! group's proxy members, behind the dependency-confusion guard.

use super::proxy;
use crate::error::ApiResult;
use crate::formats::Resolver;
use crate::model::Registry;
use crate::state::AppState;
use crate::store::artifacts::FileRow;

/// The proxy member of group `group` that serves distribution `dist` (one that declares it, else
/// one that declares none: at most one can, see `service::refuse_shared_debian_distribution`).
/// Through a group that does not allow remote proxying, the member answers from what it has
/// cached only (as every proxy member then does), so it is handed back offline.
pub(super) async fn proxy_for(
    state: &AppState,
    group: &Registry,
    dist: &str,
) -> ApiResult<Option<Registry>> {
    let reached = (Resolver { state }).reached(group).await?;
    let proxies: Vec<Registry> = reached
        .iter()
        .filter(|r| r.reg.kind == crate::model::RegistryKind::Proxy)
        .map(|r| {
            let mut reg = r.reg.clone();
            if !r.live
                && let Some(settings) = reg.proxy.as_mut()
            {
                settings.offline = true;
            }
            reg
        })
        .collect();
    let declared = |p: &Registry| {
        p.proxy
            .as_ref()
            .map(|s| s.distributions.clone())
            .unwrap_or_default()
    };
    Ok(proxies
        .iter()
        .find(|p| declared(p).iter().any(|d| d == dist))
        .or_else(|| proxies.iter().find(|p| declared(p).is_empty()))
        .cloned())
}

/// A pool file through a group that no stored member has: fetched by the group's proxy members
/// in order (the distributions they pass through list it).
pub(super) async fn pool_file(
    state: &AppState,
    group: &Registry,
    path: &str,
) -> ApiResult<Option<FileRow>> {
    if group.kind != crate::model::RegistryKind::Group {
        return Ok(None);
    }
    let resolver = Resolver { state };
    // `<package>_<version>_<arch>.deb`: a package a hosted member holds is never downloaded from
    // a proxy member (the dependency-confusion guard, unless allow-listed).
    let file = path.rsplit('/').next().unwrap_or(path);
    if let Some((package, _)) = file.split_once('_') {
        resolver.guard(group, package).await?;
    }
    for p in resolver.proxies(group).await? {
        if let Some(f) = proxy::pool_file(state, &p, path).await? {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

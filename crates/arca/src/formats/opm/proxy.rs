//! OPM (OneScript) through a proxy. The proxy's URL is the upstream hub root (where `list.txt`
//! is). `list.txt` and `<name>/<name>.ospx` (the latest version) are metadata, revalidated per
//! the proxy's interval and relayed as they came; `<name>/<name>-<version>.ospx` is immutable,
//! fetched once into the cache. Nothing is rewritten: OPM metadata names no URLs.

use bytes::Bytes;

use crate::error::ApiResult;
use crate::formats::Resolver;
use crate::model::Registry;
use crate::proxy::documents::{self, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

/// The upstream `list.txt` of each proxy reached through `reg`, in order.
pub(super) async fn lists(state: &AppState, reg: &Registry) -> ApiResult<Vec<(Registry, Fetched)>> {
    documents::from_each_proxy(state, reg, "text/plain, */*;q=0.1", false, |_| {
        "list.txt".to_string()
    })
    .await
}

/// The names of a `list.txt`, in its order.
pub(super) fn names(doc: &Fetched) -> Vec<String> {
    String::from_utf8_lossy(&doc.body)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The latest package `name` of each proxy reached through `reg` (the upstream's
/// `<name>/<name>.ospx`, as it came), in order.
pub(super) async fn latest(
    state: &AppState,
    reg: &Registry,
    name: &str,
) -> ApiResult<Vec<(Registry, Fetched)>> {
    let path = format!("{name}/{name}.ospx");
    documents::from_each_proxy(state, reg, "application/octet-stream, */*", false, |_| {
        path.clone()
    })
    .await
}

/// The body of a document (what the latest package is served as).
pub(super) fn body(doc: &Fetched) -> Bytes {
    doc.body.clone()
}

/// Fetches `<name>/<name>-<version>.ospx` from the first upstream that has it, into that
/// proxy's cache (name and version were validated: the path stays below the upstream's URL).
pub(super) async fn fetch(
    state: &AppState,
    reg: &Registry,
    name: &str,
    version: &str,
) -> ApiResult<Option<FileRow>> {
    let file = format!("{name}-{version}.ospx");
    let path = format!("{name}/{file}");
    for proxy in (Resolver { state }).proxies(reg).await? {
        let Some(settings) = &proxy.proxy else {
            continue;
        };
        let wanted = Wanted {
            url: crate::proxy::join(&settings.url, &path),
            sha256: None,
            sha512: None,
            sha1: None,
            package: name.to_string(),
            version: version.to_string(),
            path: path.clone(),
            name: file.clone(),
            content_type: Some("application/zip".into()),
            metadata: serde_json::json!({}),
        };
        if let Some(row) = files::file(state, &proxy, wanted).await? {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

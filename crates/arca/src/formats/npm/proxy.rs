//! npm through a proxy: the upstream's full packument is fetched (the abbreviated one is derived
//! here, since it lacks `time`) and its versions merged after the stored ones, each relayed as
//! the upstream wrote it but for `dist.tarball`, which points at Arca in the public registry's
//! path shape (`<root>/<name>/-/<file>.tgz`). A tarball is fetched from the URL the upstream's
//! packument names for that version and verified against its `dist.integrity` (or `shasum`)
//! before it is kept; the version's manifest is kept with it, for when the upstream is gone.

use base64::Engine;
use serde_json::Value;

use crate::error::ApiResult;
use crate::model::Registry;
use crate::proxy::documents::{self, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;
use futures::FutureExt;

/// The packument path of `name` below an upstream's URL (a scope's slash encoded, as the public
/// registry's clients send it).
fn packument_path(name: &str) -> String {
    name.replace('/', "%2f")
}

/// The upstream packuments of the proxies reached through `reg`, in order (upstreams that do
/// not have the package are left out).
pub(super) async fn packuments(
    state: &AppState,
    reg: &Registry,
    name: &str,
    revalidate: bool,
) -> ApiResult<Vec<(Registry, Fetched)>> {
    let path = packument_path(name);
    documents::from_each_proxy(state, reg, "application/json", revalidate, |_| path.clone()).await
}

/// Fetches tarball `file` of `name` from the first upstream whose packument lists it, into that
/// proxy's cache. A tarball the fresh packuments do not list makes them be revalidated once
/// (rate limited): a version published upstream a moment ago installs at once.
pub(super) async fn tarball(
    state: &AppState,
    reg: &Registry,
    name: &str,
    file: &str,
) -> ApiResult<Option<files::Got>> {
    for revalidate in [false, true] {
        let docs = packuments(state, reg, name, revalidate).await?;
        for (proxy, doc) in &docs {
            let Some((version, manifest, url)) = find_version(doc, name, file) else {
                continue;
            };
            let dist = &manifest["dist"];
            let sha512 = dist["integrity"]
                .as_str()
                .and_then(|i| i.strip_prefix("sha512-"))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(hex::encode);
            let wanted = Wanted {
                url,
                sha256: None,
                sha1: dist["shasum"].as_str().map(str::to_ascii_lowercase),
                sha512,
                package: name.to_string(),
                version: version.clone(),
                path: format!("{name}/-/{file}"),
                name: file.to_string(),
                content_type: Some("application/octet-stream".into()),
                metadata: serde_json::json!({}),
            };
            // The manifest goes with the tarball: the cache alone can then list the version.
            let mut stored = manifest.clone();
            if let Some(d) = stored.get_mut("dist").and_then(Value::as_object_mut) {
                d.remove("tarball");
            }
            let on_commit: files::OnCommit =
                std::sync::Arc::new(move |state, cache, wanted, blob| {
                    let stored = stored.clone();
                    async move {
                        let row = files::record_file(&state, &cache, &wanted, &blob).await?;
                        state
                            .db
                            .set_version_metadata(&row.version_id, &stored)
                            .await
                            .map_err(|e| crate::proxy::Failure::Internal(e.to_string()))?;
                        Ok(row)
                    }
                    .boxed()
                });
            let keep = files::Keep::new(on_commit, crate::blob::Digests::All);
            return files::open_with(state, proxy, wanted, keep).await;
        }
        let may_retry = docs
            .iter()
            .any(|(p, _)| state.proxy.may_revalidate_on_miss(p, name));
        if !may_retry {
            break;
        }
    }
    Ok(None)
}

/// The version of an upstream packument whose tarball is called `file` (upstream, or in the
/// `<name>-<version>.tgz` form Arca's rewritten URLs use): (version, manifest, absolute URL).
fn find_version(doc: &Fetched, name: &str, file: &str) -> Option<(String, Value, String)> {
    let v: Value = serde_json::from_slice(&doc.body).ok()?;
    let base = url::Url::parse(&doc.url).ok()?;
    v["versions"]
        .as_object()?
        .iter()
        .find_map(|(ver, manifest)| {
            let tarball = manifest.pointer("/dist/tarball")?.as_str()?;
            let url = base.join(tarball).ok()?;
            let last = url.path_segments()?.next_back()?.to_string();
            let arca_name = format!("{}-{ver}.tgz", super::basename(name));
            (last == file || arca_name == file)
                .then(|| (ver.clone(), manifest.clone(), url.to_string()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::documents::CacheState;

    #[test]
    fn tarballs_are_found_by_file_name_and_resolved_against_the_packument() {
        let doc = Fetched {
            body: bytes::Bytes::from(
                r#"{"name":"@s/lib","versions":{
                    "1.0.0":{"dist":{"tarball":"http://up.test/@s/lib/-/lib-1.0.0.tgz"}},
                    "1.1.0":{"dist":{"tarball":"../other/lib-1.1.0.tgz"}}}}"#,
            ),
            content_type: Some("application/json".into()),
            url: "http://up.test/reg/@s%2flib".into(),
            sha256: String::new(),
            state: CacheState::Miss,
        };
        let (v, _, url) = find_version(&doc, "@s/lib", "lib-1.1.0.tgz").unwrap();
        assert_eq!(v, "1.1.0");
        assert_eq!(url, "http://up.test/other/lib-1.1.0.tgz");
        assert_eq!(
            find_version(&doc, "@s/lib", "lib-1.0.0.tgz").unwrap().0,
            "1.0.0"
        );
        assert!(find_version(&doc, "@s/lib", "lib-2.0.0.tgz").is_none());
        assert_eq!(packument_path("@s/lib"), "@s%2flib");
    }
}

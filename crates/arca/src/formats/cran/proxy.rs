//! CRAN through a proxy. The proxy's URL is the upstream repository root (the one holding
//! `src/contrib/`). `src/contrib/PACKAGES` is metadata, revalidated per the proxy's interval;
//! its stanzas are relayed verbatim (no field dropped: `OS_type` decides what clients see)
//! after the stored packages'. A source package is fetched into the cache at its Archive path,
//! so once cached it is served at both `src/contrib/<file>` and `Archive/<pkg>/<file>` however
//! the upstream moves it; on a miss, a version the upstream's PACKAGES lists is asked for at
//! `src/contrib/`, any other at `src/contrib/Archive/<pkg>/` (where CRAN moves superseded
//! versions), each place tried after the other, and checked against the `MD5sum` PACKAGES lists
//! for it before it is kept. `PACKAGES.rds` is relayed as the upstream has it.

use std::sync::Arc;

use futures::FutureExt;
use serde_json::{Map, Value, json};

use crate::error::ApiResult;
use crate::formats::Resolver;
use crate::model::Registry;
use crate::proxy::Failure;
use crate::proxy::documents::{self, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

/// The upstream `PACKAGES` of each proxy reached through `reg`, in order.
pub(super) async fn indexes(
    state: &AppState,
    reg: &Registry,
    revalidate: bool,
) -> ApiResult<Vec<(Registry, Fetched)>> {
    documents::from_each_proxy(state, reg, "text/plain, */*;q=0.1", revalidate, |_| {
        "src/contrib/PACKAGES".to_string()
    })
    .await
}

/// The upstream's `src/contrib/PACKAGES.rds` of `proxy` (metadata, revalidated per the interval).
pub(super) async fn packages_rds(state: &AppState, proxy: &Registry) -> ApiResult<Option<Fetched>> {
    let req = documents::Request {
        path: "src/contrib/PACKAGES.rds",
        accept: "*/*",
        revalidate: false,
    };
    documents::document(state, proxy, req).await
}

/// The stanzas of a PACKAGES document: (package name, the stanza's text as it came).
pub(super) fn stanzas(doc: &Fetched) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(&doc.body).replace("\r\n", "\n");
    text.split("\n\n")
        .map(|s| s.trim_matches('\n'))
        .filter(|s| !s.trim().is_empty())
        .filter_map(|s| {
            let name = s
                .lines()
                .find_map(|l| l.strip_prefix("Package:"))?
                .trim()
                .to_string();
            Some((name, s.to_string()))
        })
        .collect()
}

/// The field `key` of a stanza.
fn field<'a>(stanza: &'a str, key: &str) -> Option<&'a str> {
    stanza.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// Fetches `<pkg>_<version>.tar.gz` from the first upstream that has it, into that proxy's cache
/// at `path` (the Archive path).
pub(super) async fn fetch(
    state: &AppState,
    reg: &Registry,
    pkg: &str,
    version: &str,
    path: &str,
) -> ApiResult<Option<FileRow>> {
    let file = format!("{pkg}_{version}.tar.gz");
    let current = format!("src/contrib/{file}");
    let archived = format!("src/contrib/Archive/{pkg}/{file}");
    for revalidate in [false, true] {
        let docs = indexes(state, reg, revalidate).await?;
        let mut listed_anywhere = false;
        for proxy in (Resolver { state }).proxies(reg).await? {
            let Some(settings) = &proxy.proxy else {
                continue;
            };
            let stanza = docs
                .iter()
                .filter(|(p, _)| p.id == proxy.id)
                .flat_map(|(_, d)| stanzas(d))
                .find(|(n, s)| n == pkg && field(s, "Version") == Some(version))
                .map(|(_, s)| s);
            listed_anywhere |= stanza.is_some();
            let order = if stanza.is_some() {
                [&current, &archived]
            } else {
                [&archived, &current]
            };
            // PACKAGES publishes an MD5 only: checked before the file is recorded.
            let md5 = stanza
                .as_deref()
                .and_then(|s| field(s, "MD5sum"))
                .map(str::to_ascii_lowercase);
            for at in order {
                let wanted = Wanted {
                    url: crate::proxy::join(&settings.url, at),
                    sha256: None,
                    sha512: None,
                    sha1: None,
                    package: pkg.to_string(),
                    version: version.to_string(),
                    path: path.to_string(),
                    name: file.clone(),
                    content_type: Some("application/gzip".into()),
                    metadata: json!({}),
                };
                let keep = files::Keep::new(md5_checked(md5.clone()), crate::blob::Digests::All);
                let got = match files::open_with(state, &proxy, wanted, keep).await? {
                    Some(got) => got.finished().await?,
                    None => None,
                };
                if let Some(row) = got {
                    describe(state, &row, pkg, version, stanza.as_deref()).await?;
                    return Ok(Some(row));
                }
            }
        }
        // A version the (fresh) indexes do not list may have been published a moment ago.
        let may_retry = !listed_anywhere
            && docs
                .iter()
                .any(|(p, _)| state.proxy.may_revalidate_on_miss(p, pkg));
        if !may_retry {
            break;
        }
    }
    Ok(None)
}

/// Records a fetched source package only when its MD5 is the one PACKAGES lists (if it lists
/// one): other bytes are refused (502) and not kept.
fn md5_checked(md5: Option<String>) -> files::OnCommit {
    Arc::new(move |state, cache, wanted, blob| {
        let md5 = md5.clone();
        async move {
            if let Some(want) = md5
                && want != blob.md5
            {
                return Err(Failure::Upstream(format!(
                    "'{}' from upstream does not match the MD5sum its PACKAGES lists; nothing was kept",
                    wanted.name
                )));
            }
            files::record_file(&state, &cache, &wanted, &blob).await
        }
        .boxed()
    })
}

/// Gives a cached version the PACKAGES fields a stored one has (from the upstream's stanza where
/// it lists the version), so the cache alone can list it.
async fn describe(
    state: &AppState,
    row: &FileRow,
    pkg: &str,
    version: &str,
    stanza: Option<&str>,
) -> ApiResult<()> {
    let mut meta = Map::new();
    if let Some(fields) = stanza.and_then(|s| crate::dcf::parse(s).ok()) {
        for (k, v) in fields {
            meta.insert(k, json!(crate::dcf::folded(&v)));
        }
    }
    meta.insert("Package".into(), json!(pkg));
    meta.insert("Version".into(), json!(version));
    meta.insert("MD5sum".into(), json!(row.md5));
    state
        .db
        .set_version_metadata(
            &row.version_id,
            &json!({"description": Value::Object(meta)}),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::documents::CacheState;

    #[test]
    fn stanzas_are_kept_verbatim() {
        let d = Fetched {
            body: bytes::Bytes::from(
                "Package: a\nVersion: 1.0\nOS_type: unix\nDepends: R (>= 3.5),\n    b\n\nPackage: b\r\nVersion: 2.0-1\r\n\r\n",
            ),
            content_type: None,
            url: "http://up.test/src/contrib/PACKAGES".into(),
            sha256: String::new(),
            state: CacheState::Miss,
        };
        let s = stanzas(&d);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, "a");
        assert_eq!(
            s[0].1,
            "Package: a\nVersion: 1.0\nOS_type: unix\nDepends: R (>= 3.5),\n    b"
        );
        assert_eq!(field(&s[1].1, "Version"), Some("2.0-1"));
    }
}

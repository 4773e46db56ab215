//! Cargo through a proxy: the upstream's sparse index files are relayed line for line after the
//! stored versions (a line is never re-serialised: fields Arca does not know, like
//! `rust_version`, stay), and a `.crate` is fetched from the upstream's `dl` (its `config.json`,
//! markers substituted) and verified against the index line's `cksum` before it is kept, with
//! that line, for when the upstream is gone. The proxy's URL is its index root.

use serde_json::Value;

use super::index_path;
use crate::error::ApiResult;
use crate::model::Registry;
use crate::proxy::documents::{self, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;
use futures::FutureExt;

/// The index files of `name` from the proxies reached through `reg`, in order. A proxy's URL is
/// its index root (cargo's `sparse+` prefix is dropped when the URL is stored).
pub(super) async fn index_files(
    state: &AppState,
    reg: &Registry,
    name: &str,
    revalidate: bool,
) -> ApiResult<Vec<(Registry, Fetched)>> {
    let path = index_path(name);
    documents::from_each_proxy(state, reg, "*/*", revalidate, |_| path.clone()).await
}

/// The lines of an index file as (version, the line exactly as it came).
pub(super) fn index_lines(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            Some((v["vers"].as_str()?.to_string(), l.to_string()))
        })
        .collect()
}

/// Fetches `name`@`version` from the first upstream whose index lists it, into that proxy's
/// cache; an unlisted version makes the index be revalidated once (rate limited).
pub(super) async fn download(
    state: &AppState,
    reg: &Registry,
    name: &str,
    version: &str,
    path: &str,
) -> ApiResult<Option<files::Got>> {
    for revalidate in [false, true] {
        let files = index_files(state, reg, name, revalidate).await?;
        for (proxy, doc) in &files {
            let Some((_, line)) = index_lines(&doc.body)
                .into_iter()
                .find(|(v, _)| v == version)
            else {
                continue;
            };
            let entry: Value = serde_json::from_str(&line).unwrap_or_default();
            let req = documents::Request {
                path: "config.json",
                accept: "application/json",
                revalidate: false,
            };
            let Some(config) = documents::document(state, proxy, req).await? else {
                continue;
            };
            let dl = serde_json::from_slice::<Value>(&config.body)
                .ok()
                .and_then(|c| c["dl"].as_str().map(str::to_string));
            let Some(dl) = dl else { continue };
            let cksum = entry["cksum"].as_str().map(str::to_ascii_lowercase);
            let Some(url) = download_url(&config.url, &dl, name, version, cksum.as_deref()) else {
                continue;
            };
            let wanted = Wanted {
                url,
                sha256: cksum,
                sha512: None,
                sha1: None,
                package: name.to_string(),
                version: version.to_string(),
                path: path.to_string(),
                name: format!("{name}-{version}.crate"),
                content_type: Some("application/x-tar".into()),
                metadata: serde_json::json!({}),
            };
            // The index line goes with the crate: the cache alone can then list the version.
            let yanked = entry["yanked"].as_bool().unwrap_or(false);
            let meta = serde_json::json!({"index": entry, "yanked": yanked});
            let on_commit: files::OnCommit =
                std::sync::Arc::new(move |state, cache, wanted, blob| {
                    let meta = meta.clone();
                    async move {
                        let row = files::record_file(&state, &cache, &wanted, &blob).await?;
                        state
                            .db
                            .merge_version_metadata(&row.version_id, &meta)
                            .await
                            .map_err(|e| crate::proxy::Failure::Internal(e.to_string()))?;
                        Ok(row)
                    }
                    .boxed()
                });
            let keep = files::Keep::new(on_commit, crate::blob::Digests::All);
            return files::open_with(state, proxy, wanted, keep).await;
        }
        let may_retry = files
            .iter()
            .any(|(p, _)| state.proxy.may_revalidate_on_miss(p, name));
        if !may_retry {
            break;
        }
    }
    Ok(None)
}

/// The download URL from an index's `dl`: its markers substituted, or the default
/// `<dl>/<name>/<version>/download`; relative to the config's own URL if it is relative.
fn download_url(
    config_url: &str,
    dl: &str,
    name: &str,
    version: &str,
    cksum: Option<&str>,
) -> Option<String> {
    let prefix = match name.len() {
        1 => "1".to_string(),
        2 => "2".to_string(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    };
    const MARKERS: [&str; 5] = [
        "{crate}",
        "{version}",
        "{prefix}",
        "{lowerprefix}",
        "{sha256-checksum}",
    ];
    let url = if MARKERS.iter().any(|m| dl.contains(m)) {
        dl.replace("{crate}", name)
            .replace("{version}", version)
            .replace("{prefix}", &prefix)
            .replace("{lowerprefix}", &prefix.to_ascii_lowercase())
            .replace("{sha256-checksum}", cksum.unwrap_or(""))
    } else {
        format!("{}/{name}/{version}/download", dl.trim_end_matches('/'))
    };
    let base = url::Url::parse(config_url).ok()?;
    base.join(&url).ok().map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_urls_follow_the_dl_template() {
        let cfg = "http://up.test/index/config.json";
        assert_eq!(
            download_url(cfg, "http://dl.test/api/v1/crates", "serde", "1.0.0", None).unwrap(),
            "http://dl.test/api/v1/crates/serde/1.0.0/download"
        );
        assert_eq!(
            download_url(
                cfg,
                "http://dl.test/{prefix}/{crate}/{crate}-{version}.crate",
                "serde",
                "1.0.0",
                None
            )
            .unwrap(),
            "http://dl.test/se/rd/serde/serde-1.0.0.crate"
        );
        assert_eq!(
            download_url(
                cfg,
                "/files/{crate}/{sha256-checksum}",
                "abc",
                "0.1.0",
                Some("ff")
            )
            .unwrap(),
            "http://up.test/files/abc/ff"
        );
    }

    #[test]
    fn index_lines_are_kept_verbatim() {
        let body = b"{\"name\":\"a\",\"vers\":\"1.0.0\",\"rust_version\":\"1.70\",\"cksum\":\"x\"}\n\n{\"vers\":\"1.1.0\"}\n";
        let lines = index_lines(body);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, "1.0.0");
        assert!(lines[0].1.contains("rust_version"));
    }
}

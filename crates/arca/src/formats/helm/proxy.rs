//! Helm chart repositories through a proxy. The proxy's URL is the upstream repository (where
//! its `index.yaml` is); the index is metadata, revalidated by its validators (a large index is
//! not fetched again while it is unchanged). Each entry is relayed as the upstream wrote it but
//! for `urls`, which become one absolute Arca URL, `<root>/charts/<name>-<version>.tgz`. A chart
//! is fetched from the upstream's own URL for it, resolved against the index URL first (relative
//! URLs are relative to the index, not to Arca), on the upstream's origin or another one the
//! index names, and verified against the entry's `digest` before it is kept, with the entry, for
//! when the upstream is gone.

use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::model::Registry;
use crate::proxy::documents::{self, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

const YAML: &str = "application/yaml, application/x-yaml, text/yaml;q=0.9, */*;q=0.1";

/// The index of each proxy reached through `reg`, in order (upstreams without one left out).
pub(super) async fn indexes(
    state: &AppState,
    reg: &Registry,
    revalidate: bool,
) -> ApiResult<Vec<(Registry, Fetched)>> {
    let path = |p: &Registry| {
        // A URL given as the index itself means its repository.
        let url = p.proxy.as_ref().map(|s| s.url.as_str()).unwrap_or("");
        if url.trim_end_matches('/').ends_with("/index.yaml") {
            "../index.yaml".to_string()
        } else {
            "index.yaml".to_string()
        }
    };
    documents::from_each_proxy(state, reg, YAML, revalidate, path).await
}

/// The `entries` of an index document (empty when it is not a chart index).
pub(super) fn entries(doc: &Fetched) -> serde_json::Map<String, Value> {
    let text = String::from_utf8_lossy(&doc.body);
    serde_saphyr::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("entries").and_then(Value::as_object).cloned())
        .unwrap_or_default()
}

/// An upstream entry as Arca lists it: its `urls` on Arca, every other field as it came.
pub(super) fn served(root: &str, name: &str, mut entry: Value) -> Option<Value> {
    let version = entry["version"].as_str()?.to_string();
    entry["urls"] = json!([format!("{root}/charts/{name}-{version}.tgz")]);
    Some(entry)
}

/// Fetches `file` (`<name>-<version>.tgz`, or its `.prov`) from the first upstream whose index
/// lists that chart, into that proxy's cache; an unlisted chart makes the indexes be revalidated
/// once (rate limited).
pub(super) async fn fetch(
    state: &AppState,
    reg: &Registry,
    file: &str,
) -> ApiResult<Option<FileRow>> {
    let (chart_file, prov) = match file.strip_suffix(".prov") {
        Some(c) => (c, true),
        None => (file, false),
    };
    for revalidate in [false, true] {
        let docs = indexes(state, reg, revalidate).await?;
        for (proxy, doc) in &docs {
            let Some((name, entry)) = find(doc, chart_file) else {
                continue;
            };
            let Some(url) = entry["urls"]
                .as_array()
                .and_then(|u| u.first())
                .and_then(Value::as_str)
                .and_then(|u| url::Url::parse(&doc.url).ok()?.join(u).ok())
            else {
                continue;
            };
            let version = entry["version"].as_str().unwrap_or("").to_string();
            let digest = entry["digest"]
                .as_str()
                .map(|d| d.trim_start_matches("sha256:").to_ascii_lowercase())
                .filter(|d| d.len() == 64);
            let wanted = Wanted {
                url: if prov {
                    format!("{url}.prov")
                } else {
                    url.to_string()
                },
                // The provenance file has no digest of its own in the index.
                sha256: if prov { None } else { digest.clone() },
                sha512: None,
                sha1: None,
                package: name.clone(),
                version,
                path: format!("charts/{file}"),
                name: file.to_string(),
                content_type: Some(if prov {
                    "application/octet-stream".into()
                } else {
                    "application/gzip".into()
                }),
                metadata: json!({}),
            };
            let Some(row) = files::file(state, proxy, wanted).await? else {
                return Ok(None);
            };
            if !prov {
                // The entry goes with the chart: the cache alone can then list it.
                let mut chart = entry.clone();
                if let Some(o) = chart.as_object_mut() {
                    for k in ["urls", "digest", "created"] {
                        o.remove(k);
                    }
                }
                state
                    .db
                    .merge_version_metadata(
                        &row.version_id,
                        &json!({"chart": chart, "chartDigest": row.sha256}),
                    )
                    .await?;
            }
            return Ok(Some(row));
        }
        let may_retry = docs
            .iter()
            .any(|(p, _)| state.proxy.may_revalidate_on_miss(p, chart_file));
        if !may_retry {
            break;
        }
    }
    Ok(None)
}

/// The chart an index lists as `<name>-<version>.tgz`: (name, entry).
fn find(doc: &Fetched, file: &str) -> Option<(String, Value)> {
    let stem = file.strip_suffix(".tgz")?;
    entries(doc).into_iter().find_map(|(name, versions)| {
        let version = stem.strip_prefix(&name)?.strip_prefix('-')?;
        versions
            .as_array()?
            .iter()
            .find(|e| e["version"].as_str() == Some(version))
            .map(|e| (name.clone(), e.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::documents::CacheState;

    fn doc(body: &str) -> Fetched {
        Fetched {
            body: bytes::Bytes::from(body.to_string()),
            content_type: None,
            url: "http://up.test/repo/index.yaml".into(),
            sha256: String::new(),
            state: CacheState::Miss,
        }
    }

    #[test]
    fn charts_are_found_by_file_name_and_urls_point_at_arca() {
        let d = doc(
            "apiVersion: v1\nentries:\n  my-chart:\n  - name: my-chart\n    version: 1.2.0\n    digest: abc\n    urls:\n    - charts/my-chart-1.2.0.tgz\n    annotations:\n      x: z\n",
        );
        let (name, e) = find(&d, "my-chart-1.2.0.tgz").unwrap();
        assert_eq!(name, "my-chart");
        assert!(find(&d, "my-chart-1.3.0.tgz").is_none());
        let s = served("http://arca.test/pkg/a/h/helm", &name, e).unwrap();
        assert_eq!(
            s["urls"],
            json!(["http://arca.test/pkg/a/h/helm/charts/my-chart-1.2.0.tgz"])
        );
        assert_eq!(s["annotations"]["x"], "z");
    }
}

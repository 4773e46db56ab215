//! Composer v2 through a proxy. The proxy's URL is the upstream repository root (where its
//! `packages.json` is). Arca serves its own `packages.json` (its own `metadata-url`; the
//! upstream's `notify-batch` and `metadata-changes-url` are never relayed) and, per package, the
//! upstream's `p2` file found through the upstream's `metadata-url`: expanded from the minified
//! `composer/2.0` form, every field relayed (`source` untouched) but `dist.url`, which becomes an
//! absolute Arca URL (a relative one makes composer fall back to a git clone):
//! `<root>/dists/<vendor>/<package>/<version_normalized>/<reference>.zip`. A dist archive is
//! keyed by name, normalised version and reference, fetched from the URL the upstream's p2 names
//! (redirects followed), verified against `shasum` when the upstream publishes one, and kept with
//! the version's metadata, for when the upstream is gone.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::ApiResult;
use crate::formats::Resolver;
use crate::model::Registry;
use crate::proxy::documents::{self, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

const JSON: &str = "application/json";

/// The path below a proxy's URL that reaches `target` on the same origin (`..` is resolved by
/// the URL parser); `None` for another origin.
fn path_to(proxy_url: &str, target: &str) -> Option<String> {
    let dir = url::Url::parse(&format!("{}/", proxy_url.trim_end_matches('/'))).ok()?;
    let target = url::Url::parse(target).ok()?;
    let rel = dir.make_relative(&target)?;
    let back = url::Url::parse(&crate::proxy::join(proxy_url, &rel)).ok()?;
    (back == target).then_some(rel)
}

/// The upstream's `packages.json`, and its content parsed (kept per document digest: it is read
/// on every request for a package).
async fn root_document(
    state: &AppState,
    proxy: &Registry,
) -> ApiResult<Option<(Fetched, Arc<Value>)>> {
    let req = documents::Request {
        path: "packages.json",
        accept: JSON,
        revalidate: false,
    };
    Ok(documents::document(state, proxy, req).await?.map(|doc| {
        let v = state
            .proxy
            .memo
            .derived(&doc.sha256, doc.body.len(), "composer-root", || {
                serde_json::from_slice::<Value>(&doc.body).unwrap_or_default()
            });
        (doc, v)
    }))
}

/// The names each proxy reached through `reg` says it has (`available-packages`), or `None` when
/// one of them does not say (then a client must ask for any name).
pub(super) async fn available(state: &AppState, reg: &Registry) -> ApiResult<Option<Vec<String>>> {
    let mut names = Vec::new();
    for proxy in (Resolver { state }).proxies(reg).await? {
        let Some((_, v)) = root_document(state, &proxy).await? else {
            continue;
        };
        match v["available-packages"].as_array() {
            Some(list) => names.extend(list.iter().filter_map(Value::as_str).map(str::to_string)),
            None => return Ok(None),
        }
    }
    Ok(Some(names))
}

/// The p2 file of `name` (`~dev` for dev versions) from each proxy reached through `reg`, in
/// order: (proxy, the document, its versions expanded, `dist.url` still the upstream's, resolved;
/// kept per document digest, so a warm hit parses nothing).
pub(super) async fn p2_files(
    state: &AppState,
    reg: &Registry,
    name: &str,
    dev: bool,
    revalidate: bool,
) -> ApiResult<Vec<(Registry, Fetched, Arc<Vec<Value>>)>> {
    let mut out = Vec::new();
    for proxy in (Resolver { state }).proxies(reg).await? {
        let Some(settings) = &proxy.proxy else {
            continue;
        };
        let Some((root, v)) = root_document(state, &proxy).await? else {
            continue;
        };
        let Some(template) = v["metadata-url"].as_str() else {
            tracing::warn!(proxy = %proxy.identifier, "the upstream has no metadata-url (Composer 1 only): not read");
            continue;
        };
        let file = if dev {
            format!("{name}~dev")
        } else {
            name.to_string()
        };
        let Some(url) = url::Url::parse(&root.url)
            .ok()
            .and_then(|b| b.join(&template.replace("%package%", &file)).ok())
        else {
            continue;
        };
        let Some(path) = path_to(&settings.url, url.as_str()) else {
            tracing::warn!(proxy = %proxy.identifier, %url, "a metadata-url on another origin is not read");
            continue;
        };
        let req = documents::Request {
            path: &path,
            accept: JSON,
            revalidate,
        };
        if let Some(doc) = documents::document(state, &proxy, req).await? {
            let versions = state.proxy.memo.derived(
                &doc.sha256,
                doc.body.len(),
                &format!("composer-p2|{}|{name}", doc.url),
                || versions(&doc, name),
            );
            if !versions.is_empty() {
                crate::formats::members::served_by(&proxy.identifier);
            }
            out.push((proxy, doc, versions));
        }
    }
    Ok(out)
}

/// The versions of `name` in a p2 document, expanded, each `dist.url` made absolute against the
/// document's URL.
fn versions(doc: &Fetched, name: &str) -> Vec<Value> {
    let Ok(v) = serde_json::from_slice::<Value>(&doc.body) else {
        return Vec::new();
    };
    let list = v["packages"][name].as_array().cloned().unwrap_or_default();
    let mut list = if v["minified"].as_str() == Some("composer/2.0") {
        expand(list)
    } else {
        list
    };
    let base = url::Url::parse(&doc.url).ok();
    for entry in &mut list {
        if let Some(u) = entry.pointer("/dist/url").and_then(Value::as_str)
            && let Some(abs) = base.as_ref().and_then(|b| b.join(u).ok())
        {
            entry["dist"]["url"] = json!(abs.to_string());
        }
    }
    list
}

/// Composer's `MetadataMinifier::expand`: each entry holds only what changed from the one
/// before; `"__unset"` removes a field.
pub(super) fn expand(minified: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(minified.len());
    let mut current: Option<Map<String, Value>> = None;
    for entry in minified {
        let Value::Object(fields) = entry else {
            continue;
        };
        let next = match current.take() {
            None => fields,
            Some(mut prev) => {
                for (k, v) in fields {
                    if v.as_str() == Some("__unset") {
                        prev.remove(&k);
                    } else {
                        prev.insert(k, v);
                    }
                }
                prev
            }
        };
        out.push(Value::Object(next.clone()));
        current = Some(next);
    }
    out
}

/// The file part of an Arca dist URL: the reference where there is one (a commit, usually),
/// made safe for a path segment.
pub(super) fn dist_file(entry: &Value) -> String {
    let reference = entry
        .pointer("/dist/reference")
        .and_then(Value::as_str)
        .unwrap_or("");
    let safe: String = reference
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() {
        "dist.zip".to_string()
    } else {
        format!("{safe}.zip")
    }
}

/// The path (below the registry root) where Arca serves an upstream version's dist.
pub(super) fn dist_path(name: &str, entry: &Value) -> Option<String> {
    let norm = entry["version_normalized"].as_str()?;
    let safe = norm.replace('/', "-");
    Some(format!("dists/{name}/{safe}/{}", dist_file(entry)).to_ascii_lowercase())
}

/// An upstream version as Arca serves it: `dist.url` on Arca, everything else as it came.
pub(super) fn served(root: &str, name: &str, mut entry: Value) -> Option<Value> {
    let path = dist_path(name, &entry)?;
    if entry.get("dist").is_some_and(Value::is_object) {
        entry["dist"]["url"] = json!(format!("{root}/{path}"));
    }
    Some(entry)
}

/// Fetches the dist at `path` (an Arca dist path, lower case) of `name` from the first upstream
/// whose p2 lists it, into that proxy's cache; an unlisted one makes the p2 files be
/// revalidated once (rate limited).
pub(super) async fn fetch(
    state: &AppState,
    reg: &Registry,
    name: &str,
    path: &str,
) -> ApiResult<Option<FileRow>> {
    for dev in [false, true] {
        for revalidate in [false, true] {
            let docs = p2_files(state, reg, name, dev, revalidate).await?;
            for (proxy, _, versions) in &docs {
                let Some(entry) = versions
                    .iter()
                    .find(|e| dist_path(name, e).as_deref() == Some(path))
                else {
                    continue;
                };
                let Some(url) = entry.pointer("/dist/url").and_then(Value::as_str) else {
                    continue;
                };
                let sha1 = entry
                    .pointer("/dist/shasum")
                    .and_then(Value::as_str)
                    .filter(|s| s.len() == 40)
                    .map(str::to_ascii_lowercase);
                let version = entry["version"].as_str().unwrap_or("").to_string();
                let wanted = Wanted {
                    url: url.to_string(),
                    sha256: None,
                    sha512: None,
                    sha1,
                    package: name.to_string(),
                    version: version.clone(),
                    path: path.to_string(),
                    name: path.rsplit('/').next().unwrap_or(path).to_string(),
                    content_type: Some("application/zip".into()),
                    metadata: json!({}),
                };
                let Some(row) = files::file(state, proxy, wanted).await? else {
                    return Ok(None);
                };
                // The version's metadata goes with the archive: the cache alone can list it.
                let mut composer = entry.as_object().cloned().unwrap_or_default();
                for k in ["name", "version", "version_normalized", "dist"] {
                    composer.remove(k);
                }
                let mut upstream_dist = entry["dist"].clone();
                if let Some(d) = upstream_dist.as_object_mut() {
                    d.remove("url");
                }
                state
                    .db
                    .set_version_metadata(
                        &row.version_id,
                        &json!({"composer": composer,
                                "version_normalized": entry["version_normalized"],
                                "dist": path, "sha1": row.sha1, "upstreamDist": upstream_dist}),
                    )
                    .await?;
                return Ok(Some(row));
            }
            let may_retry = docs
                .iter()
                .any(|(p, _, _)| state.proxy.may_revalidate_on_miss(p, name));
            if !may_retry {
                break;
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minified_metadata_is_expanded() {
        let min = vec![
            json!({"name": "a/b", "version": "2.0.0", "require": {"php": ">=8"}, "license": ["MIT"]}),
            json!({"version": "1.0.0", "require": "__unset"}),
            json!({"version": "0.9.0"}),
        ];
        let out = expand(min);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1]["name"], "a/b");
        assert_eq!(out[1]["license"], json!(["MIT"]));
        assert!(out[1].get("require").is_none());
        assert_eq!(out[2]["version"], "0.9.0");
        assert!(out[2].get("require").is_none());
        assert_eq!(out[0]["require"]["php"], ">=8");
    }

    #[test]
    fn dist_urls_are_absolute_on_arca_and_keyed_by_reference() {
        let e = json!({"version": "1.0.0", "version_normalized": "1.0.0.0",
            "source": {"type": "git", "url": "https://git.test/a/b.git", "reference": "abc"},
            "dist": {"type": "zip", "url": "https://up.test/zip/abc", "reference": "ABC123", "shasum": ""}});
        let s = served("http://arca.test/pkg/a/p/composer", "a/b", e).unwrap();
        assert_eq!(
            s["dist"]["url"],
            "http://arca.test/pkg/a/p/composer/dists/a/b/1.0.0.0/abc123.zip"
        );
        assert_eq!(s["source"]["url"], "https://git.test/a/b.git");
        let doc = Fetched {
            body: bytes::Bytes::from(
                r#"{"minified":"composer/2.0","packages":{"a/b":[{"name":"a/b","version":"1.0.0","dist":{"url":"../../dl/b.zip"}}]}}"#,
            ),
            content_type: None,
            url: "http://up.test/repo/p2/a/b.json".into(),
            sha256: String::new(),
            state: crate::proxy::documents::CacheState::Miss,
        };
        assert_eq!(
            versions(&doc, "a/b")[0]["dist"]["url"],
            "http://up.test/repo/dl/b.zip"
        );
    }
}

//! NuGet v3 through a proxy. The proxy's URL is the upstream's service index (or the directory
//! holding `index.json`); Arca reads from it the `PackageBaseAddress` (flat container) and a
//! `RegistrationsBaseUrl` hive, but serves its *own* generated service index, so nothing the
//! upstream advertises leaks. Flat version lists and registrations are metadata (revalidated per
//! the proxy's interval; a gzip-encoded hive is decoded here); their items are relayed as the
//! upstream wrote them but for the URLs in them (`@id`, `packageContent`, `registration`, page
//! and dependency links), which point at Arca. `.nupkg` and `.nuspec` are fetched once and kept
//! byte for byte (a repository signature lives inside the package); the nuspec gives the cached
//! version the metadata a pushed one has, so the cache alone can list it when the upstream is gone.

use std::io::Read;
use std::sync::Arc;

use serde_json::{Value, json};

use super::Urls;
use super::version::NuVersion;
use crate::error::ApiResult;
use crate::formats::Resolver;
use crate::model::Registry;
use crate::proxy::documents::{self, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

const JSON: &str = "application/json";

/// Registration hives in order of preference: SemVer 2 first (it lists every version).
const HIVES: [&str; 4] = [
    "RegistrationsBaseUrl/3.6.0",
    "RegistrationsBaseUrl/Versioned",
    "RegistrationsBaseUrl/3.4.0",
    "RegistrationsBaseUrl",
];

/// The path below a proxy's URL that reaches `target` (an absolute URL on the same origin); the
/// engine joins paths to the URL as to a directory, and `..` segments are resolved by the URL
/// parser. `None` for another origin: documents are only read from the upstream itself.
fn path_to(proxy_url: &str, target: &str) -> Option<String> {
    let dir = url::Url::parse(&format!("{}/", proxy_url.trim_end_matches('/'))).ok()?;
    let target = url::Url::parse(target).ok()?;
    let rel = dir.make_relative(&target)?;
    let back = url::Url::parse(&crate::proxy::join(proxy_url, &rel)).ok()?;
    (back == target).then_some(rel)
}

/// The service index below a proxy's URL: the URL itself when it names a `.json` document, else
/// its `index.json`.
fn index_path(proxy_url: &str) -> String {
    let trimmed = proxy_url.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, last)) if last.ends_with(".json") => format!("../{last}"),
        _ => "index.json".to_string(),
    }
}

/// A document body, gunzipped when the upstream stored it gzip-encoded (the `-gz` hives).
fn decoded(body: &[u8]) -> Option<Value> {
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(256 << 20)
            .read_to_end(&mut out)
            .ok()?;
        return serde_json::from_slice(&out).ok();
    }
    serde_json::from_slice(body).ok()
}

/// What Arca uses of an upstream's service index: absolute URLs, each ending in `/`.
#[derive(Clone)]
struct Resources {
    base_address: Option<String>,
    registrations: Option<String>,
    search: Option<String>,
    autocomplete: Option<String>,
}

async fn resources(state: &AppState, proxy: &Registry) -> ApiResult<Option<Resources>> {
    let Some(settings) = &proxy.proxy else {
        return Ok(None);
    };
    let path = index_path(&settings.url);
    let req = documents::Request {
        path: &path,
        accept: JSON,
        revalidate: false,
    };
    let Some(doc) = documents::document(state, proxy, req).await? else {
        return Ok(None);
    };
    // Read on every request for a package: parsed once per stored document (and its URL).
    let found = state.proxy.memo.derived(
        &doc.sha256,
        doc.body.len(),
        &format!("nuget-resources|{}", doc.url),
        || service_resources(&doc),
    );
    Ok(Option::clone(&found))
}

/// The resources Arca uses, from a service index `doc`.
fn service_resources(doc: &Fetched) -> Option<Resources> {
    let index = decoded(&doc.body)?;
    let base = url::Url::parse(&doc.url).ok();
    let find = |types: &[&str]| -> Option<String> {
        let all = index["resources"].as_array()?;
        types.iter().find_map(|t| {
            all.iter()
                .find(|r| r["@type"].as_str() == Some(t))
                .and_then(|r| r["@id"].as_str())
                .and_then(|id| match &base {
                    Some(b) => b.join(id).ok().map(|u| u.to_string()),
                    None => Some(id.to_string()),
                })
                .map(|u| format!("{}/", u.trim_end_matches('/')))
        })
    };
    Some(Resources {
        base_address: find(&["PackageBaseAddress/3.0.0"]),
        registrations: find(&HIVES),
        search: find(&[
            "SearchQueryService/3.5.0",
            "SearchQueryService/3.0.0-rc",
            "SearchQueryService/3.0.0-beta",
            "SearchQueryService",
        ]),
        autocomplete: find(&[
            "SearchAutocompleteService/3.5.0",
            "SearchAutocompleteService/3.0.0-rc",
            "SearchAutocompleteService/3.0.0-beta",
            "SearchAutocompleteService",
        ]),
    })
}

/// What the upstreams' search services answered a query: the proxies that answered, their
/// total of hits, and their results (for a search with every URL pointing at Arca, `root`).
pub(super) struct UpstreamHits {
    pub answered: Vec<String>,
    pub total: i64,
    pub data: Vec<Value>,
}

/// Which search service of the upstreams a query is passed to.
#[derive(Clone, Copy)]
pub(super) enum Service {
    /// `SearchQueryService`: package results, their URLs rewritten to Arca.
    Search,
    /// `SearchAutocompleteService`: ids (`q=`) or versions (`id=`), relayed as they are.
    Autocomplete,
}

/// The query passed through to the search service of each proxy reached through `reg` (not
/// stored: a search is answered live; an upstream that fails or is offline is left out, and
/// the packages cached from it stand for it). `query` is the client's query string.
pub(super) async fn search(
    state: &AppState,
    reg: &Registry,
    service: Service,
    query: Option<&str>,
    root: &str,
) -> ApiResult<UpstreamHits> {
    let mut out = UpstreamHits {
        answered: Vec::new(),
        total: 0,
        data: Vec::new(),
    };
    for proxy in (Resolver { state }).proxies(reg).await? {
        if proxy.proxy.as_ref().is_none_or(|p| p.offline) || state.proxy.circuit_open(&proxy) {
            continue;
        }
        let Some(resources) = resources(state, &proxy).await? else {
            continue;
        };
        let url = match service {
            Service::Search => resources.search,
            Service::Autocomplete => resources.autocomplete,
        };
        let Some(url) = url else { continue };
        let mut url = url.trim_end_matches('/').to_string();
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            url = format!("{url}?{q}");
        }
        let body = match documents::upstream_bytes(state, &proxy, &url).await {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(failure) => {
                state.proxy.record_outcome(&proxy, false);
                tracing::warn!(proxy = %proxy.identifier, %failure, "upstream search failed; cached packages stand for it");
                continue;
            }
        };
        let Some(answer) = decoded(&body) else {
            continue;
        };
        out.answered.push(proxy.id.clone());
        out.total += answer["totalHits"].as_i64().unwrap_or(0);
        for item in answer["data"].as_array().into_iter().flatten() {
            let item = match service {
                Service::Search => search_item(root, item.clone()),
                Service::Autocomplete => Some(item.clone()),
            };
            out.data.extend(item);
        }
    }
    Ok(out)
}

/// An upstream search result with its URLs on Arca (registration index, version leaves).
fn search_item(root: &str, mut item: Value) -> Option<Value> {
    let lid = item["id"].as_str()?.to_ascii_lowercase();
    let urls = Urls {
        root: root.to_string(),
        lid,
    };
    item["@id"] = json!(urls.index());
    item["registration"] = json!(urls.index());
    if let Some(versions) = item["versions"].as_array_mut() {
        for v in versions {
            let Some(lver) = v["version"]
                .as_str()
                .and_then(NuVersion::parse)
                .map(|n| n.normalized().to_ascii_lowercase())
            else {
                continue;
            };
            v["@id"] = json!(urls.leaf(&lver));
        }
    }
    Some(item)
}

/// The document at absolute `url` (on the upstream's origin) from `proxy`.
async fn document_at(
    state: &AppState,
    proxy: &Registry,
    url: &str,
    revalidate: bool,
) -> ApiResult<Option<Fetched>> {
    let Some(settings) = &proxy.proxy else {
        return Ok(None);
    };
    let Some(path) = path_to(&settings.url, url) else {
        tracing::warn!(proxy = %proxy.identifier, url, "a NuGet resource on another origin is not read");
        return Ok(None);
    };
    let req = documents::Request {
        path: &path,
        accept: JSON,
        revalidate,
    };
    documents::document(state, proxy, req).await
}

/// The flat-container version lists of `lid` from the proxies reached through `reg`, in order:
/// (proxy, the document, its lower-case normalised versions, kept per document digest).
pub(super) async fn flat_versions(
    state: &AppState,
    reg: &Registry,
    lid: &str,
    revalidate: bool,
) -> ApiResult<Vec<(Registry, Fetched, Arc<Vec<String>>)>> {
    let mut out = Vec::new();
    for proxy in (Resolver { state }).proxies(reg).await? {
        let Some(base) = resources(state, &proxy).await?.and_then(|r| r.base_address) else {
            continue;
        };
        let url = format!("{base}{lid}/index.json");
        if let Some(doc) = document_at(state, &proxy, &url, revalidate).await? {
            let versions =
                state
                    .proxy
                    .memo
                    .derived(&doc.sha256, doc.body.len(), "nuget-flat", || {
                        decoded(&doc.body)
                            .and_then(|v| v["versions"].as_array().cloned())
                            .unwrap_or_default()
                            .iter()
                            .filter_map(Value::as_str)
                            .filter_map(NuVersion::parse)
                            .map(|v| v.normalized().to_ascii_lowercase())
                            .collect::<Vec<String>>()
                    });
            out.push((proxy, doc, versions));
        }
    }
    Ok(out)
}

/// One version an upstream's registration lists, its item already pointing at Arca.
pub(super) struct UpstreamItem {
    pub(super) version: NuVersion,
    pub(super) lver: String,
    pub(super) item: Value,
}

/// Each proxy's registration of one package: (proxy, its index document, its items page by page).
pub(super) type Registrations = Vec<(Registry, Fetched, Vec<Arc<Vec<UpstreamItem>>>)>;

/// A page of an upstream's registration index: its items (inlined, already rewritten), or where
/// the page is.
enum Page {
    Items(Arc<Vec<UpstreamItem>>),
    At(String),
}

/// The registrations of `lid` from the proxies reached through `reg`, in order: every item of
/// every page (pages not inlined are fetched), rewritten for `urls`, page by page. The rewritten
/// items are kept per document digest, hive and `urls`: a warm hit rewrites nothing.
pub(super) async fn registrations(
    state: &AppState,
    reg: &Registry,
    lid: &str,
    urls: &Urls,
) -> ApiResult<Registrations> {
    let mut out = Vec::new();
    for proxy in (Resolver { state }).proxies(reg).await? {
        let Some(hive) = resources(state, &proxy)
            .await?
            .and_then(|r| r.registrations)
        else {
            continue;
        };
        let url = format!("{hive}{lid}/index.json");
        let Some(doc) = document_at(state, &proxy, &url, false).await? else {
            continue;
        };
        let what = format!("{hive}|{}|{}", urls.root, urls.lid);
        let rewritten = |items: Vec<Value>| -> Vec<UpstreamItem> {
            items
                .into_iter()
                .filter_map(|item| rewrite_item(item, &hive, urls))
                .collect()
        };
        let pages = state.proxy.memo.derived(
            &doc.sha256,
            doc.body.len(),
            &format!("nuget-reg|{what}"),
            || -> Option<Vec<Page>> {
                let index = decoded(&doc.body)?;
                let pages = index["items"].as_array().into_iter().flatten();
                Some(
                    pages
                        .filter_map(|page| match page["items"].as_array() {
                            Some(inline) => Some(Page::Items(Arc::new(rewritten(inline.clone())))),
                            None => page["@id"].as_str().map(|at| Page::At(at.to_string())),
                        })
                        .collect(),
                )
            },
        );
        let Some(pages) = pages.as_ref() else {
            continue;
        };
        let mut items = Vec::new();
        for page in pages {
            match page {
                Page::Items(inline) => items.push(inline.clone()),
                Page::At(at) => {
                    let Some(pdoc) = document_at(state, &proxy, at, false).await? else {
                        continue;
                    };
                    items.push(state.proxy.memo.derived(
                        &pdoc.sha256,
                        pdoc.body.len(),
                        &format!("nuget-page|{what}"),
                        || {
                            rewritten(
                                decoded(&pdoc.body)
                                    .and_then(|p| p["items"].as_array().cloned())
                                    .unwrap_or_default(),
                            )
                        },
                    ));
                }
            }
        }
        out.push((proxy, doc, items));
    }
    Ok(out)
}

/// A registration item of an upstream pointed at Arca: the leaf, content and registration URLs,
/// and every `@id` or `registration` below the upstream's hive; all other fields as they came.
fn rewrite_item(mut item: Value, hive: &str, urls: &Urls) -> Option<UpstreamItem> {
    let version = NuVersion::parse(item.pointer("/catalogEntry/version")?.as_str()?)?;
    let lver = version.normalized().to_ascii_lowercase();
    rewrite_links(&mut item, hive, &urls.root);
    let leaf = urls.leaf(&lver);
    item["@id"] = json!(leaf);
    item["packageContent"] = json!(urls.content(&lver));
    item["registration"] = json!(urls.index());
    if let Some(entry) = item.get_mut("catalogEntry").and_then(Value::as_object_mut) {
        entry.insert("@id".into(), json!(leaf));
        entry.insert("packageContent".into(), json!(urls.content(&lver)));
    }
    Some(UpstreamItem {
        version,
        lver,
        item,
    })
}

/// Every `@id` / `registration` string below the upstream's registration hive, recursively,
/// moved to Arca's (dependency groups, dependencies, deprecations keep their shape).
fn rewrite_links(v: &mut Value, hive: &str, root: &str) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if (k == "@id" || k == "registration")
                    && let Some(s) = val.as_str()
                    && let Some(rest) = s.strip_prefix(hive)
                {
                    *val = json!(format!("{root}/registration/{rest}"));
                } else {
                    rewrite_links(val, hive, root);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_links(x, hive, root)),
        _ => {}
    }
}

/// Fetches `lfile` (the `.nupkg` or `.nuspec`) of `lid` `lver` from the first upstream whose
/// flat container lists the version, into that proxy's cache. An unlisted version makes the
/// lists be revalidated once (rate limited).
pub(super) async fn fetch(
    state: &AppState,
    reg: &Registry,
    lid: &str,
    lver: &str,
    lfile: &str,
) -> ApiResult<Option<FileRow>> {
    for revalidate in [false, true] {
        let lists = flat_versions(state, reg, lid, revalidate).await?;
        for (proxy, _, versions) in &lists {
            if !versions.iter().any(|v| v == lver) {
                continue;
            }
            let Some(base) = resources(state, proxy).await?.and_then(|r| r.base_address) else {
                continue;
            };
            let Some(row) = fetch_one(state, proxy, &base, lid, lver, lfile).await? else {
                return Ok(None);
            };
            if lfile.ends_with(".nupkg") {
                describe(state, proxy, &base, lid, lver, &row).await?;
            }
            return Ok(Some(row));
        }
        let may_retry = lists
            .iter()
            .any(|(p, _, _)| state.proxy.may_revalidate_on_miss(p, lid));
        if !may_retry {
            break;
        }
    }
    Ok(None)
}

async fn fetch_one(
    state: &AppState,
    proxy: &Registry,
    base: &str,
    lid: &str,
    lver: &str,
    lfile: &str,
) -> ApiResult<Option<FileRow>> {
    let wanted = Wanted {
        url: format!("{base}{lid}/{lver}/{lfile}"),
        // The flat container publishes no digest; the package's own signature is inside it.
        sha256: None,
        sha512: None,
        sha1: None,
        package: lid.to_string(),
        version: lver.to_string(),
        path: format!("package/{lid}/{lver}/{lfile}"),
        name: lfile.to_string(),
        content_type: Some(if lfile.ends_with(".nuspec") {
            "application/xml".into()
        } else {
            "application/octet-stream".into()
        }),
        metadata: json!({}),
    };
    files::file(state, proxy, wanted).await
}

/// Gives a cached version the metadata a pushed one has (from its `.nuspec`, fetched into the
/// cache too), so that the cache alone lists it; a version already described is left alone.
async fn describe(
    state: &AppState,
    proxy: &Registry,
    base: &str,
    lid: &str,
    lver: &str,
    nupkg: &FileRow,
) -> ApiResult<()> {
    let Some(pkg) = state.db.package_by_name(&nupkg.registry_id, lid).await? else {
        return Ok(());
    };
    let described = state
        .db
        .version_by_name(&pkg.id, lver)
        .await?
        .is_some_and(|v| v.metadata.get("fullVersion").is_some());
    if described {
        return Ok(());
    }
    let spec_name = format!("{lid}.nuspec");
    let Some(spec_row) = fetch_one(state, proxy, base, lid, lver, &spec_name).await? else {
        return Ok(());
    };
    let read = state.blobs.get(&spec_row.sha256, None).await?;
    let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(read.stream).await?;
    let Ok(spec) = super::nuspec::parse(&chunks.concat()) else {
        return Ok(());
    };
    let meta = super::version_metadata(&spec, nupkg.size, &nupkg.sha512);
    state
        .db
        .set_version_metadata(&nupkg.version_id, &meta)
        .await?;
    if pkg.metadata.get("id").is_none() {
        state
            .db
            .set_package_metadata(&pkg.id, &json!({"id": spec.id}))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_resources_of_the_same_origin_only() {
        let up = "http://up.test/v3/index.json";
        assert_eq!(index_path(up), "../index.json");
        assert_eq!(index_path("http://up.test/feed/"), "index.json");
        let p = path_to(up, "http://up.test/v3-flat/a/index.json").unwrap();
        assert_eq!(
            url::Url::parse(&crate::proxy::join(up, &p))
                .unwrap()
                .as_str(),
            "http://up.test/v3-flat/a/index.json"
        );
        assert!(path_to(up, "http://other.test/v3-flat/a/index.json").is_none());
        let p = path_to(up, up).unwrap();
        assert_eq!(
            url::Url::parse(&crate::proxy::join(up, &p))
                .unwrap()
                .as_str(),
            up
        );
    }

    #[test]
    fn registration_items_point_at_arca_and_keep_other_fields() {
        let hive = "http://up.test/reg/";
        let urls = Urls {
            root: "http://arca.test/pkg/a/p/nuget".into(),
            lid: "lib".into(),
        };
        let item = json!({
            "@id": "http://up.test/reg/lib/1.0.0.json",
            "packageContent": "http://up.test/flat/lib/1.0.0/lib.1.0.0.nupkg",
            "registration": "http://up.test/reg/lib/index.json",
            "commitId": "c1",
            "catalogEntry": {
                "@id": "http://up.test/catalog/lib.1.0.0.json",
                "version": "1.0.0", "authors": "Acme", "vulnerabilities": [],
                "dependencyGroups": [{"@id": "http://up.test/reg/lib/1.0.0.json#dependencygroup",
                    "dependencies": [{"id": "Dep", "range": "[1.0, )",
                        "registration": "http://up.test/reg/dep/index.json"}]}]
            }
        });
        let u = rewrite_item(item, hive, &urls).unwrap();
        assert_eq!(u.lver, "1.0.0");
        let text = u.item.to_string();
        assert!(!text.contains("up.test"), "{text}");
        assert_eq!(u.item["commitId"], "c1");
        assert_eq!(u.item["catalogEntry"]["authors"], "Acme");
        assert_eq!(
            u.item["catalogEntry"]["dependencyGroups"][0]["dependencies"][0]["registration"],
            "http://arca.test/pkg/a/p/nuget/registration/dep/index.json"
        );
        assert_eq!(
            u.item["packageContent"],
            "http://arca.test/pkg/a/p/nuget/package/lib/1.0.0/lib.1.0.0.nupkg"
        );
    }

    #[test]
    fn gzip_encoded_hives_are_decoded() {
        let gz = crate::archive::gzip(br#"{"items":[]}"#).unwrap();
        assert_eq!(decoded(&gz).unwrap(), json!({"items": []}));
        assert_eq!(decoded(br#"{"a":1}"#).unwrap(), json!({"a": 1}));
    }
}

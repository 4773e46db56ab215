//! RPM (dnf) through a proxy. The proxy's URL is the upstream repository root (holding
//! `repodata/`), or a `metalink` / `mirrorlist` document naming mirrors of it: that is resolved
//! here, server-side (revalidated per the interval like any metadata), so clients only ever see
//! Arca. `repomd.xml` is asked of the mirrors in the list's order (at most [`MIRRORS_TRIED`]),
//! the next one when a mirror fails, lacks it or offers one the checks below refuse; a metalink's
//! `sha256` hashes of `repomd.xml` are checked too, as dnf checks them. Repodata and packages
//! come from the mirror that served the repomd in service (mirrors may be at other
//! generations), the others after it.
//!
//! `repodata/repomd.xml` is metadata, revalidated per the proxy's interval and relayed byte for
//! byte, so dnf verifies it with the upstream's key (`repo_gpgcheck=1`) and no Arca key is
//! involved. A new `repomd.xml` is stored only after it passed two checks: it is not older than
//! the one served so far (an upstream that rolls back is not followed: dnf refuses an older
//! repomd), and, when the proxy has the upstream's key, it verifies against the `repomd.xml.asc`
//! fetched with it. That signature is kept *with* its `repomd.xml` (one generation, keyed by the
//! repomd's SHA-256), so `repomd.xml.asc` is always the one of the `repomd.xml` served.
//!
//! Every other repodata file is immutable: it is verified against the checksum the last served
//! `repomd.xml` lists for it (or, for an older generation, the checksum its name starts with)
//! and kept under its name (a name without its checksum, `--simple-md-filenames`, under its
//! SHA-256 as well, and fetched as soon as a new repomd is accepted), so the repodata of a
//! previous `repomd.xml` stays available after the upstream replaces it. Packages are kept by
//! path (dnf checks them against `primary`).

use std::sync::Arc;

use futures::FutureExt;

use crate::error::{ApiError, ApiResult};
use crate::model::Registry;
use crate::proxy::documents::{self, CacheState, Candidate, Check, Companion, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::proxy::join;
use crate::state::AppState;
use crate::store::artifacts::FileRow;

const ACCEPT: &str = "*/*";
const REPOMD: &str = "repodata/repomd.xml";

/// `repodata/repomd.xml` or `repomd.xml.asc` of the upstream: the repomd revalidated per the
/// interval (see the module documentation), the signature the one of that repomd.
pub(super) async fn repomd(
    state: &AppState,
    proxy: &Registry,
    file: &str,
) -> ApiResult<Option<Fetched>> {
    let upstream = upstream(state, proxy).await?;
    let mut outcome: ApiResult<Option<Fetched>> = Ok(None);
    for (i, base) in upstream.bases.iter().enumerate() {
        let req = documents::Request {
            path: REPOMD,
            accept: ACCEPT,
            // A later mirror is asked although the stored copy was just served stale.
            revalidate: i > 0,
        };
        let check = repomd_check(state, proxy, base, &upstream.repomd_sha256);
        let got = documents::document_checked(state, proxy, req, join(base, REPOMD), check).await;
        let done = matches!(&got, Ok(Some(d)) if d.state != CacheState::Stale);
        // What a later mirror could not better: a stale copy beats an error or nothing.
        if done || !matches!(outcome, Ok(Some(_))) {
            outcome = got;
        }
        if done || proxy.proxy.as_ref().is_some_and(|p| p.offline) {
            break;
        }
    }
    let Some(doc) = outcome? else {
        return Ok(None);
    };
    if file == "repomd.xml" {
        return Ok(Some(doc));
    }
    let url = join(&base_of(&doc.url), "repodata/repomd.xml.asc");
    documents::companion(
        state,
        proxy,
        &doc,
        &signature_path(&doc.sha256),
        ACCEPT,
        &url,
        |repomd, sig| verify(proxy, repomd, sig),
    )
    .await
}

/// The repository base URL of a `…/repodata/repomd.xml` URL.
fn base_of(repomd_url: &str) -> String {
    repomd_url
        .trim_end_matches(REPOMD)
        .trim_end_matches('/')
        .to_string()
}

/// Where the signature of the repomd with this SHA-256 is kept.
fn signature_path(repomd_sha256: &str) -> String {
    format!("repodata/repomd.xml.asc@{repomd_sha256}")
}

/// Checks `repomd` against `sig` with the proxy's upstream key, if it has one.
fn verify(proxy: &Registry, repomd: &[u8], sig: &[u8]) -> Result<(), String> {
    let Some(key) = proxy.proxy.as_ref().and_then(|p| p.upstream_key.as_deref()) else {
        return Ok(());
    };
    crate::signing::verify_detached(key, &String::from_utf8_lossy(sig), repomd).map_err(|e| {
        format!(
            "repodata/repomd.xml from the upstream of '{}' is not signed by its configured key: {e}",
            proxy.identifier
        )
    })
}

/// What a new repomd.xml must pass before it is stored: one of the `sha256` hashes a metalink
/// lists for it (when it lists any), not older than the served one, signed (with the proxy's
/// key), its signature fetched to be kept with it.
fn repomd_check(state: &AppState, proxy: &Registry, base: &str, listed: &[String]) -> Arc<Check> {
    let (state, proxy, base) = (state.clone(), proxy.clone(), base.to_string());
    let listed = listed.to_vec();
    Arc::new(move |c: Candidate| {
        let (state, proxy, base) = (state.clone(), proxy.clone(), base.clone());
        let listed = listed.clone();
        async move {
            if !listed.is_empty() && !listed.contains(&c.sha256) {
                return Err(format!(
                    "repodata/repomd.xml from {base} is none of those the metalink of '{}' lists",
                    proxy.identifier
                ));
            }
            if let Some(old) = &c.stored
                && older(&c.body, old)
            {
                return Err(format!(
                    "the upstream of '{}' rolled repodata/repomd.xml back (revision {} after {}); \
                     the newer copy stays in service",
                    proxy.identifier,
                    generation(&c.body).0.unwrap_or_default(),
                    generation(old).0.unwrap_or_default()
                ));
            }
            let url = join(&base, "repodata/repomd.xml.asc");
            let sig = documents::upstream_bytes(&state, &proxy, &url)
                .await
                .map_err(|f| f.to_string())?;
            verify(&proxy, &c.body, sig.as_deref().unwrap_or_default())?;
            if let Some(old) = &c.stored {
                prefetch(&state, &proxy, &base, old, &c.body).await;
            }
            Ok(sig
                .map(|body| Companion {
                    path: signature_path(&c.sha256),
                    body,
                })
                .into_iter()
                .collect())
        }
        .boxed()
    })
}

/// A repomd's `<revision>` (when numeric) and its newest `<timestamp>`.
fn generation(repomd: &[u8]) -> (Option<u64>, Option<u64>) {
    let text = String::from_utf8_lossy(repomd);
    let values = |tag: &str| -> Vec<u64> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        text.split(open.as_str())
            .skip(1)
            .filter_map(|rest| rest.split(close.as_str()).next()?.trim().parse().ok())
            .collect()
    };
    (
        values("revision").first().copied(),
        values("timestamp").into_iter().max(),
    )
}

/// Whether repomd `new` is of an older generation than `old`: by revision where both have a
/// numeric one that differs, else by their newest timestamp.
fn older(new: &[u8], old: &[u8]) -> bool {
    let (n, o) = (generation(new), generation(old));
    match (n.0, o.0) {
        (Some(a), Some(b)) if a != b => a < b,
        _ => matches!((n.1, o.1), (Some(a), Some(b)) if a < b),
    }
}

/// Where the upstream repository is: its base URLs in the order to ask them (one, unless the
/// proxy's URL is a mirror list), and the `repomd.xml` hashes a metalink lists.
struct Upstream {
    bases: Vec<String>,
    repomd_sha256: Vec<String>,
}

/// How many mirrors of a list one request asks at most.
const MIRRORS_TRIED: usize = 3;

/// The proxy's upstream: its URL, or the usable base URLs of the metalink / mirrorlist
/// document it names.
async fn upstream(state: &AppState, proxy: &Registry) -> ApiResult<Upstream> {
    let Some(settings) = &proxy.proxy else {
        return Err(ApiError::Internal(anyhow::anyhow!("not a proxy registry")));
    };
    if !names_mirror_list(&settings.url) {
        return Ok(Upstream {
            bases: vec![settings.url.clone()],
            repomd_sha256: Vec::new(),
        });
    }
    let req = documents::Request {
        path: "@mirrors",
        accept: ACCEPT,
        revalidate: false,
    };
    let doc = documents::document_at(state, proxy, req, settings.url.clone())
        .await?
        .ok_or_else(|| {
            ApiError::BadGateway(format!(
                "the mirror list of '{}' is not found upstream",
                proxy.identifier
            ))
        })?;
    let mut bases = mirror_bases(&doc.body);
    if bases.is_empty() {
        return Err(ApiError::BadGateway(format!(
            "the mirror list of '{}' names no usable base URL",
            proxy.identifier
        )));
    }
    bases.truncate(MIRRORS_TRIED);
    Ok(Upstream {
        bases,
        repomd_sha256: metalink_sha256(&doc.body),
    })
}

/// The base URLs to fetch repodata and packages from: the one the stored repomd came from
/// first (a mirror at another generation would not match it), then the other mirrors.
async fn file_bases(state: &AppState, proxy: &Registry) -> ApiResult<Vec<String>> {
    let mut bases = upstream(state, proxy).await?.bases;
    if bases.len() < 2 {
        return Ok(bases);
    }
    if let Some(doc) = documents::stored(state, proxy, REPOMD, ACCEPT).await? {
        let served = base_of(&doc.url);
        bases.retain(|b| *b != served);
        bases.insert(0, served);
    }
    Ok(bases)
}

/// `wanted(base)` from the first of `bases` that has it; the last failure if none has and one
/// failed.
async fn file_from_mirrors(
    state: &AppState,
    proxy: &Registry,
    bases: &[String],
    wanted: impl Fn(&str) -> Wanted,
) -> ApiResult<Option<FileRow>> {
    let mut failure = None;
    for base in bases {
        match files::file(state, proxy, wanted(base)).await {
            Ok(Some(f)) => return Ok(Some(f)),
            Ok(None) => {}
            Err(e) => failure = Some(e),
        }
    }
    failure.map_or(Ok(None), Err)
}

/// Whether a configured URL names a metalink or mirrorlist document rather than a repository.
fn names_mirror_list(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        let last = u
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        last.contains("metalink") || last.contains("mirrorlist")
    })
}

/// The http(s) base URLs of a metalink (its `<url>`s name `…/repodata/repomd.xml`) or of a
/// mirrorlist (one base URL a line, `#` comments), in the document's order.
fn mirror_bases(list: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(list);
    let usable = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    let urls: Vec<String> = if text.contains("<metalink") {
        text.split("<url")
            .skip(1)
            .filter_map(|rest| {
                let body = rest.split_once('>')?.1;
                Some(body.split("</url>").next()?.trim().replace("&amp;", "&"))
            })
            .collect()
    } else {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    urls.into_iter()
        .filter(|u| usable(u))
        .map(|u| base_of(&u))
        .collect()
}

/// The `sha256` hashes a metalink lists for `repomd.xml` (its own and its `alternates`').
fn metalink_sha256(list: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(list);
    if !text.contains("<metalink") {
        return Vec::new();
    }
    text.split("<hash")
        .skip(1)
        .filter_map(|rest| {
            let (attrs, body) = rest.split_once('>')?;
            let sha256 = attrs.contains("type=\"sha256\"") || attrs.contains("type='sha256'");
            let value = body.split('<').next()?.trim().to_ascii_lowercase();
            (sha256 && value.len() == 64).then_some(value)
        })
        .collect()
}

/// Every `repodata/<file>` a repomd lists, with its SHA-256.
fn listed(repomd: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(repomd);
    text.split("<data ")
        .skip(1)
        .filter_map(|data| {
            let href = data.split("href=\"repodata/").nth(1)?.split('"').next()?;
            let start =
                data.find("<checksum type=\"sha256\">")? + "<checksum type=\"sha256\">".len();
            let end = data[start..].find('<')? + start;
            Some((
                href.to_string(),
                data[start..end].trim().to_ascii_lowercase(),
            ))
        })
        .collect()
}

/// The SHA-256 the repomd lists for `repodata/<file>` (by its `location href`).
fn listed_sha256(repomd: &[u8], file: &str) -> Option<String> {
    listed(repomd)
        .into_iter()
        .find_map(|(f, sha)| (f == file).then_some(sha))
}

/// The checksum a repodata file's name starts with (`<sha256>-primary.xml.gz`), if it has one.
fn named_sha256(file: &str) -> Option<String> {
    let prefix = file.split('-').next().unwrap_or("");
    (prefix.len() == 64 && prefix.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| prefix.to_ascii_lowercase())
}

/// What a repodata file is fetched as: its upstream URL, digest and cache path. A file without
/// its checksum in its name (`--simple-md-filenames`) changes under one name from one repomd to
/// the next: it is kept under its SHA-256 (`repodata/by-sha256/<sha256>/<file>`), so each
/// generation's copy is its own.
fn repodata_wanted(base: &str, file: &str, sha256: Option<String>) -> Wanted {
    let path = match (&sha256, named_sha256(file)) {
        (Some(sha), None) => format!("repodata/by-sha256/{sha}/{file}"),
        _ => format!("repodata/{file}"),
    };
    Wanted {
        url: join(base, &format!("repodata/{file}")),
        sha256,
        sha512: None,
        sha1: None,
        package: "repodata".into(),
        version: "repodata".into(),
        path,
        name: file.to_string(),
        content_type: Some("application/octet-stream".into()),
        metadata: serde_json::json!({}),
    }
}

/// When a new repomd is accepted, its repodata without a checksum in the name that clients read
/// (the previous generation's copy is cached) is fetched at once, before the upstream's file by
/// that name moves on to a later generation. Failures are only logged.
async fn prefetch(state: &AppState, proxy: &Registry, base: &str, old: &[u8], new: &[u8]) {
    let Ok(Some(cache)) = state.db.cache_of_proxy(&proxy.id).await else {
        return;
    };
    let before = listed(old);
    for (file, sha) in listed(new) {
        if named_sha256(&file).is_some() {
            continue;
        }
        let Some((_, old_sha)) = before.iter().find(|(f, _)| *f == file) else {
            continue;
        };
        let cached = format!("repodata/by-sha256/{old_sha}/{file}");
        if *old_sha == sha
            || !matches!(state.db.file_by_path(&cache.id, &cached).await, Ok(Some(_)))
        {
            continue;
        }
        if let Err(e) = files::file(state, proxy, repodata_wanted(base, &file, Some(sha))).await {
            tracing::warn!(
                proxy = %proxy.identifier, %file, error = %e,
                "prefetching repodata of a new repomd failed"
            );
        }
    }
}

/// A repodata file other than repomd.xml: verified, kept under its name.
pub(super) async fn repodata(
    state: &AppState,
    proxy: &Registry,
    file: &str,
) -> ApiResult<Option<FileRow>> {
    let bases = file_bases(state, proxy).await?;
    let served = documents::stored(state, proxy, REPOMD, ACCEPT).await?;
    let sha256 = served
        .as_ref()
        .and_then(|d| listed_sha256(&d.body, file))
        .or_else(|| named_sha256(file));
    file_from_mirrors(state, proxy, &bases, |base| {
        repodata_wanted(base, file, sha256.clone())
    })
    .await
}

/// A package (any path outside `repodata/`), kept by path.
pub(super) async fn package(
    state: &AppState,
    proxy: &Registry,
    path: &str,
) -> ApiResult<Option<FileRow>> {
    // A hit is served without working out where a miss would come from.
    if let Some(f) = files::cached(state, proxy, path).await? {
        return Ok(Some(f));
    }
    let bases = file_bases(state, proxy).await?;
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    // `<name>-<version>-<release>.<arch>.rpm`: the package is what precedes the version.
    let stem = name.trim_end_matches(".rpm");
    let mut parts: Vec<&str> = stem.rsplitn(3, '-').collect();
    parts.reverse();
    let (package, version) = match parts.as_slice() {
        [n, v, r] => (n.to_string(), format!("{v}-{r}")),
        _ => (stem.to_string(), "0".to_string()),
    };
    file_from_mirrors(state, proxy, &bases, |base| {
        Wanted::at_upstream_path(
            base,
            path,
            package.clone(),
            version.clone(),
            "application/x-rpm",
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repomd_lists_checksums_by_location() {
        let x = br#"<repomd><revision>5</revision><data type="primary"><checksum type="sha256">AB12</checksum><location href="repodata/ab12-primary.xml.gz"/></data><data type="other"><checksum type="sha256">cd</checksum><location href="repodata/cd-other.xml.gz"/></data></repomd>"#;
        assert_eq!(
            listed_sha256(x, "ab12-primary.xml.gz").as_deref(),
            Some("ab12")
        );
        assert_eq!(listed_sha256(x, "cd-other.xml.gz").as_deref(), Some("cd"));
        assert_eq!(listed_sha256(x, "zz-other.xml.gz"), None);
    }

    #[test]
    fn a_repomd_is_older_by_revision_else_by_newest_timestamp() {
        let r = |rev: &str, ts: &[u64]| {
            let data: String = ts
                .iter()
                .map(|t| format!("<data><timestamp>{t}</timestamp></data>"))
                .collect();
            format!("<repomd><revision>{rev}</revision>{data}</repomd>").into_bytes()
        };
        assert!(older(&r("5", &[900]), &r("6", &[100])));
        assert!(!older(&r("7", &[100]), &r("6", &[900])));
        assert!(older(&r("x", &[100, 200]), &r("x", &[300])));
        assert!(
            !older(&r("6", &[300]), &r("6", &[300])),
            "the same generation"
        );
        assert!(!older(b"<repomd/>", &r("6", &[300])), "nothing to compare");
    }

    #[test]
    fn mirror_lists_resolve_to_their_usable_base_urls_in_order() {
        let metalink = br#"<?xml version="1.0"?><metalink version="3.0"><files><file name="repomd.xml">
            <verification><hash type="md5">0123</hash>
            <hash type="sha256">AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA</hash></verification>
            <mm0:alternates><mm0:alternate><verification>
            <hash type="sha256">bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb</hash>
            </verification></mm0:alternate></mm0:alternates><resources>
            <url protocol="rsync" type="rsync" preference="100">rsync://m1/repo/repodata/repomd.xml</url>
            <url protocol="https" type="https" preference="99">https://m2/fedora/os/repodata/repomd.xml</url>
            <url protocol="http" type="http" preference="98">http://m3/os/repodata/repomd.xml</url>
        </resources></file></files></metalink>"#;
        assert_eq!(
            mirror_bases(metalink),
            ["https://m2/fedora/os", "http://m3/os"]
        );
        assert_eq!(
            metalink_sha256(metalink),
            ["a".repeat(64), "b".repeat(64)],
            "sha256 hashes only, lower-cased, alternates too"
        );
        let mirrorlist = b"# repo = fedora\nftp://m0/os/\nhttp://m1/os/\nhttp://m2/os/\n";
        assert_eq!(mirror_bases(mirrorlist), ["http://m1/os", "http://m2/os"]);
        assert!(metalink_sha256(mirrorlist).is_empty());
        assert!(mirror_bases(b"# nothing\n").is_empty());
        assert!(names_mirror_list("http://h/metalink?repo=f39&arch=x86_64"));
        assert!(names_mirror_list("http://h/pub/mirrorlist"));
        assert!(!names_mirror_list("http://h/pkg/acme/rpm/rpm"));
    }
}

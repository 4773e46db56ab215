//! RPM (dnf) through a proxy. The proxy's URL is the upstream repository root (holding
//! `repodata/`), or a `metalink` / `mirrorlist` document naming mirrors of it: that is resolved
//! here, server-side, to the first base URL it lists (revalidated per the interval like any
//! metadata), so clients only ever see Arca.
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
use crate::proxy::documents::{self, Candidate, Check, Companion, Fetched};
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
    let base = base(state, proxy).await?;
    let req = documents::Request {
        path: REPOMD,
        accept: ACCEPT,
        revalidate: false,
    };
    let check = repomd_check(state, proxy, &base);
    let doc = documents::document_checked(state, proxy, req, join(&base, REPOMD), check).await?;
    let Some(doc) = doc else {
        return Ok(None);
    };
    if file == "repomd.xml" {
        return Ok(Some(doc));
    }
    let url = join(&base, "repodata/repomd.xml.asc");
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

/// What a new repomd.xml must pass before it is stored: not older than the served one, signed
/// (with the proxy's key), its signature fetched to be kept with it.
fn repomd_check(state: &AppState, proxy: &Registry, base: &str) -> Arc<Check> {
    let (state, proxy, base) = (state.clone(), proxy.clone(), base.to_string());
    Arc::new(move |c: Candidate| {
        let (state, proxy, base) = (state.clone(), proxy.clone(), base.clone());
        async move {
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

/// The upstream repository's base URL: the proxy's URL, or the first usable base URL of the
/// metalink / mirrorlist document it names.
async fn base(state: &AppState, proxy: &Registry) -> ApiResult<String> {
    let Some(settings) = &proxy.proxy else {
        return Err(ApiError::Internal(anyhow::anyhow!("not a proxy registry")));
    };
    if !names_mirror_list(&settings.url) {
        return Ok(settings.url.clone());
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
    first_base(&doc.body).ok_or_else(|| {
        ApiError::BadGateway(format!(
            "the mirror list of '{}' names no usable base URL",
            proxy.identifier
        ))
    })
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

/// The first http(s) base URL of a metalink (its `<url>`s name `…/repodata/repomd.xml`) or of a
/// mirrorlist (one base URL a line, `#` comments).
fn first_base(list: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(list);
    let usable = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    let found = if text.contains("<metalink") {
        text.split("<url").skip(1).find_map(|rest| {
            let body = rest.split_once('>')?.1;
            let url = body.split("</url>").next()?.trim().replace("&amp;", "&");
            usable(&url).then_some(url)
        })?
    } else {
        text.lines()
            .map(str::trim)
            .find(|l| !l.starts_with('#') && usable(l))?
            .to_string()
    };
    let base = found.trim_end_matches(REPOMD).trim_end_matches('/');
    Some(base.to_string())
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
    let base = base(state, proxy).await?;
    let served = documents::stored(state, proxy, REPOMD, ACCEPT).await?;
    let sha256 = served
        .as_ref()
        .and_then(|d| listed_sha256(&d.body, file))
        .or_else(|| named_sha256(file));
    files::file(state, proxy, repodata_wanted(&base, file, sha256)).await
}

/// A package (any path outside `repodata/`), kept by path.
pub(super) async fn package(
    state: &AppState,
    proxy: &Registry,
    path: &str,
) -> ApiResult<Option<FileRow>> {
    let base = base(state, proxy).await?;
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    // `<name>-<version>-<release>.<arch>.rpm`: the package is what precedes the version.
    let stem = name.trim_end_matches(".rpm");
    let mut parts: Vec<&str> = stem.rsplitn(3, '-').collect();
    parts.reverse();
    let (package, version) = match parts.as_slice() {
        [n, v, r] => (n.to_string(), format!("{v}-{r}")),
        _ => (stem.to_string(), "0".to_string()),
    };
    let wanted = Wanted::at_upstream_path(&base, path, package, version, "application/x-rpm");
    files::file(state, proxy, wanted).await
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
    fn mirror_lists_resolve_to_the_first_usable_base_url() {
        let metalink = br#"<?xml version="1.0"?><metalink version="3.0"><files><file name="repomd.xml"><resources>
            <url protocol="rsync" type="rsync" preference="100">rsync://m1/repo/repodata/repomd.xml</url>
            <url protocol="https" type="https" preference="99">https://m2/fedora/os/repodata/repomd.xml</url>
            <url protocol="http" type="http" preference="98">http://m3/os/repodata/repomd.xml</url>
        </resources></file></files></metalink>"#;
        assert_eq!(
            first_base(metalink).as_deref(),
            Some("https://m2/fedora/os")
        );
        let mirrorlist = b"# repo = fedora\nftp://m0/os/\nhttp://m1/os/\nhttp://m2/os/\n";
        assert_eq!(first_base(mirrorlist).as_deref(), Some("http://m1/os"));
        assert_eq!(first_base(b"# nothing\n"), None);
        assert!(names_mirror_list("http://h/metalink?repo=f39&arch=x86_64"));
        assert!(names_mirror_list("http://h/pub/mirrorlist"));
        assert!(!names_mirror_list("http://h/pkg/acme/rpm/rpm"));
    }
}

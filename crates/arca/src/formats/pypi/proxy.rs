//! PyPI through a proxy: the upstream's project pages (PEP 691 JSON preferred, PEP 503 HTML
//! understood) are read for their files; the files are listed on Arca's own page under Arca's
//! URLs (the same `files/<project>/<version>/<file>` as stored files) with the upstream's
//! `#sha256`, `requires-python` and yank reason kept, and fetched on first download, verified
//! against that SHA-256. Core-metadata links are not relayed: Arca would have to serve them.

use serde_json::{Value, json};

use super::{PageFile, file_url, parse_filename};
use crate::error::ApiResult;
use crate::model::Registry;
use crate::proxy::documents::{self, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;

/// What Arca asks an upstream's project page for: JSON first, HTML understood.
const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1";

/// The project page path below a proxy's URL: a URL given with or without its `/simple` suffix
/// means the same repository.
fn page_path(proxy: &Registry, norm: &str) -> String {
    let base = proxy
        .proxy
        .as_ref()
        .map(|p| p.url.trim_end_matches('/'))
        .unwrap_or("");
    if base.ends_with("/simple") {
        format!("{norm}/")
    } else {
        format!("simple/{norm}/")
    }
}

/// The upstream project pages of the proxies reached through `reg`, in order (upstreams that
/// do not have the project are left out).
pub(super) async fn pages(
    state: &AppState,
    reg: &Registry,
    norm: &str,
    revalidate: bool,
) -> ApiResult<Vec<(Registry, Fetched)>> {
    documents::from_each_proxy(state, reg, ACCEPT, revalidate, |p| page_path(p, norm)).await
}

/// A file an upstream page lists: its absolute upstream URL and what the page says about it.
struct Listed {
    filename: String,
    url: String,
    sha256: Option<String>,
    requires_python: Option<String>,
    yanked: Value,
    size: Option<i64>,
    upload_time: Option<String>,
}

/// The files of an upstream page, as Arca's page lists them. Files without a SHA-256 or with a
/// name that is not a distribution's are left out: Arca could not verify or place them.
pub(super) fn page_files(page: &Fetched, norm: &str) -> Vec<PageFile> {
    listed(page)
        .into_iter()
        .filter_map(|l| {
            let (_, _, version) = parse_filename(&l.filename).ok()?;
            Some(PageFile {
                url: file_url(norm, &version, &l.filename),
                sha256: l.sha256?,
                filename: l.filename,
                version,
                requires_python: l.requires_python,
                yanked: l.yanked,
                core_sha256: None,
                size: l.size,
                upload_time: l.upload_time,
            })
        })
        .collect()
}

/// Fetches `filename` of `project` from the first upstream that lists it, into that proxy's
/// cache. A file the (fresh) pages do not list makes the pages be revalidated once (rate
/// limited): a version published upstream a moment ago installs at once.
pub(super) async fn fetch(
    state: &AppState,
    reg: &Registry,
    norm: &str,
    version: &str,
    filename: &str,
) -> ApiResult<Option<files::Got>> {
    for revalidate in [false, true] {
        let pages = pages(state, reg, norm, revalidate).await?;
        for (proxy, page) in &pages {
            let Some(l) = listed(page).into_iter().find(|l| l.filename == filename) else {
                continue;
            };
            let Some(sha256) = l.sha256 else { continue };
            let mut metadata = json!({ "yanked": l.yanked });
            if let Some(rp) = &l.requires_python {
                metadata["requiresPython"] = json!(rp);
            }
            let wanted = Wanted {
                metadata,
                url: l.url,
                sha256: Some(sha256),
                sha512: None,
                sha1: None,
                package: norm.to_string(),
                version: version.to_string(),
                path: format!("files/{norm}/{version}/{filename}"),
                name: filename.to_string(),
                content_type: None,
            };
            return files::open(state, proxy, wanted).await;
        }
        let may_retry = pages
            .iter()
            .any(|(p, _)| state.proxy.may_revalidate_on_miss(p, norm));
        if !may_retry {
            break;
        }
    }
    Ok(None)
}

/// Parses an upstream page in whichever representation it came.
fn listed(page: &Fetched) -> Vec<Listed> {
    let is_json = page
        .content_type
        .as_deref()
        .is_some_and(|t| t.contains("json"));
    let base = url::Url::parse(&page.url).ok();
    let absolute = |href: &str| -> Option<String> {
        match &base {
            Some(b) => b.join(href).ok().map(|u| {
                let mut u = u;
                u.set_fragment(None);
                u.to_string()
            }),
            None => url::Url::parse(href).ok().map(|u| u.to_string()),
        }
    };
    if is_json {
        let Ok(v) = serde_json::from_slice::<Value>(&page.body) else {
            return Vec::new();
        };
        return v["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                Some(Listed {
                    filename: f["filename"].as_str()?.to_string(),
                    url: absolute(f["url"].as_str()?)?,
                    sha256: f["hashes"]["sha256"].as_str().map(str::to_ascii_lowercase),
                    requires_python: f["requires-python"].as_str().map(str::to_string),
                    yanked: match &f["yanked"] {
                        Value::String(r) => json!(r),
                        Value::Bool(true) => json!(true),
                        _ => json!(false),
                    },
                    size: f["size"].as_i64(),
                    upload_time: f["upload-time"].as_str().map(str::to_string),
                })
            })
            .collect();
    }
    let text = String::from_utf8_lossy(&page.body);
    anchors(&text)
        .into_iter()
        .filter_map(|(attrs, filename)| {
            let href = attr(&attrs, "href")?;
            let sha256 = href
                .split_once("#sha256=")
                .map(|(_, h)| h.to_ascii_lowercase());
            Some(Listed {
                filename: normalize_filename(&filename),
                url: absolute(&href)?,
                sha256,
                requires_python: attr(&attrs, "data-requires-python"),
                yanked: match attr(&attrs, "data-yanked") {
                    Some(r) if !r.is_empty() => json!(r),
                    Some(_) => json!(true),
                    None => json!(false),
                },
                size: None,
                upload_time: None,
            })
        })
        .collect()
}

/// The text of a link is the file name; whitespace around it is not part of it.
fn normalize_filename(s: &str) -> String {
    s.trim().to_string()
}

/// `<a ...>text</a>` elements of an HTML page: (attribute text, unescaped link text). A simple
/// scan is enough for the simple API's one-element-per-line pages; no HTML parser crate needed.
fn anchors(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<a ") {
        rest = &rest[start + 3..];
        let Some(close) = rest.find('>') else { break };
        let attrs = rest[..close].to_string();
        rest = &rest[close + 1..];
        let Some(end) = rest.find("</a>") else { break };
        out.push((attrs, unescape(&rest[..end])));
        rest = &rest[end + 4..];
    }
    out
}

/// The unescaped value of attribute `name` in an element's attribute text.
fn attr(attrs: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut search = attrs;
    loop {
        let at = search.find(&needle)?;
        // A whole attribute name: start of the text or after whitespace.
        let whole = at == 0 || search[..at].ends_with(char::is_whitespace);
        let after = &search[at + needle.len()..];
        if whole {
            let end = after.find('"')?;
            return Some(unescape(&after[..end]));
        }
        search = after;
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::documents::CacheState;

    fn page(body: &str, content_type: &str) -> Fetched {
        Fetched {
            body: bytes::Bytes::from(body.to_string()),
            content_type: Some(content_type.into()),
            url: "http://up.test/simple/demo/".into(),
            sha256: String::new(),
            state: CacheState::Miss,
        }
    }

    #[test]
    fn html_pages_keep_hash_requires_python_and_yank_reason() {
        let p = page(
            r#"<html><body>
<a href="../../packages/ab/demo-1.0-py3-none-any.whl#sha256=ABCD" data-requires-python="&gt;=3.8" data-yanked="broken &amp; bad">demo-1.0-py3-none-any.whl</a><br/>
<a data-x="1" href="https://files.test/demo-0.9.tar.gz#sha256=ef01">demo-0.9.tar.gz</a>
<a href="demo-0.8.tar.gz">demo-0.8.tar.gz</a>
</body></html>"#,
            "text/html",
        );
        let files = page_files(&p, "demo");
        assert_eq!(files.len(), 2, "the file without a hash is left out");
        assert_eq!(files[0].filename, "demo-1.0-py3-none-any.whl");
        assert_eq!(files[0].version, "1.0");
        assert_eq!(files[0].sha256, "abcd");
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(files[0].yanked, json!("broken & bad"));
        assert_eq!(
            files[0].url,
            "../../files/demo/1.0/demo-1.0-py3-none-any.whl"
        );
        assert_eq!(files[1].yanked, json!(false));
        let l = listed(&p);
        assert_eq!(
            l[0].url,
            "http://up.test/packages/ab/demo-1.0-py3-none-any.whl"
        );
        assert_eq!(l[1].url, "https://files.test/demo-0.9.tar.gz");
    }

    #[test]
    fn json_pages_resolve_relative_urls() {
        let p = page(
            r#"{"meta":{"api-version":"1.1"},"name":"demo","files":[
                {"filename":"demo-2.0.tar.gz","url":"../../files/demo/2.0/demo-2.0.tar.gz","hashes":{"sha256":"AA"},
                 "requires-python":">=3.9","yanked":true,"size":12,"upload-time":"2026-01-01T00:00:00.000Z"}]}"#,
            "application/vnd.pypi.simple.v1+json",
        );
        let l = listed(&p);
        assert_eq!(l[0].url, "http://up.test/files/demo/2.0/demo-2.0.tar.gz");
        let f = page_files(&p, "demo");
        assert_eq!(f[0].yanked, json!(true));
        assert_eq!(f[0].size, Some(12));
        assert_eq!(f[0].sha256, "aa");
    }

    #[test]
    fn the_simple_suffix_of_a_url_is_optional() {
        let mut p = Registry::new(
            "acme",
            "p",
            crate::model::PackageType::Python,
            crate::model::RegistryKind::Proxy,
        );
        for (url, path) in [
            ("http://up.test/simple", "demo/"),
            ("http://up.test/simple/", "demo/"),
            ("http://up.test/pypi", "simple/demo/"),
        ] {
            p.proxy = Some(crate::model::ProxySettings {
                url: url.into(),
                ..Default::default()
            });
            assert_eq!(page_path(&p, "demo"), path, "{url}");
        }
    }
}

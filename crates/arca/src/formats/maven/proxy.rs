//! Maven through a proxy: files are fetched from the same path below the upstream's URL and,
//! where the upstream publishes a `.sha1` sidecar, verified against it before they are kept
//! (Arca then computes every sidecar it serves from the kept bytes, so they always agree);
//! artifact-level `maven-metadata.xml` is revalidated per the proxy's interval and its versions
//! merged into the one Arca generates. Version-level (SNAPSHOT) metadata names the newest build
//! of a SNAPSHOT, which only the upstream knows: it is revalidated the same way and relayed as
//! the upstream wrote it (its timestamped files are immutable and fetched like any other).

use crate::error::ApiResult;
use crate::formats::Resolver;
use crate::model::Registry;
use crate::proxy::documents::{self, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;

/// The artifact-level metadata of `group:artifact` from the proxies reached through `reg`.
pub(super) async fn artifact_metadata(
    state: &AppState,
    reg: &Registry,
    group: &str,
    artifact: &str,
) -> ApiResult<Vec<(Registry, Fetched)>> {
    let path = format!("{}/{artifact}/maven-metadata.xml", group.replace('.', "/"));
    let mut out = Vec::new();
    for proxy in (Resolver { state }).proxies(reg).await? {
        let req = documents::Request {
            path: &path,
            accept: "application/xml, text/xml;q=0.9, */*;q=0.1",
            revalidate: false,
        };
        if let Some(doc) = documents::document(state, &proxy, req).await? {
            out.push((proxy, doc));
        }
    }
    Ok(out)
}

/// The version-level metadata of `group:artifact:version` (a SNAPSHOT) from the first proxy
/// reached through `reg` whose upstream has it.
pub(super) async fn version_metadata(
    state: &AppState,
    reg: &Registry,
    group: &str,
    artifact: &str,
    version: &str,
) -> ApiResult<Option<Fetched>> {
    let path = format!(
        "{}/{artifact}/{version}/maven-metadata.xml",
        group.replace('.', "/")
    );
    for proxy in (Resolver { state }).proxies(reg).await? {
        let req = documents::Request {
            path: &path,
            accept: "application/xml, text/xml;q=0.9, */*;q=0.1",
            revalidate: false,
        };
        if let Some(doc) = documents::document(state, &proxy, req).await? {
            return Ok(Some(doc));
        }
    }
    Ok(None)
}

/// The `<version>` entries of a `maven-metadata.xml`.
pub(super) fn metadata_versions(xml: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(xml);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find("<version>") {
        rest = &rest[start + "<version>".len()..];
        let Some(end) = rest.find("</version>") else {
            break;
        };
        let v = rest[..end].trim();
        if !v.is_empty() && !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
        rest = &rest[end..];
    }
    out
}

/// Fetches the file at `path` from the first proxy's upstream that has it, into that proxy's
/// cache.
pub(super) async fn file(
    state: &AppState,
    reg: &Registry,
    package: &str,
    version: &str,
    path: &str,
) -> ApiResult<Option<files::Got>> {
    for proxy in (Resolver { state }).proxies(reg).await? {
        let Some(settings) = &proxy.proxy else {
            continue;
        };
        // The upstream's own checksum, where it publishes one (metadata-sized, kept as such).
        let sidecar = format!("{path}.sha1");
        let req = documents::Request {
            path: &sidecar,
            accept: "*/*",
            revalidate: false,
        };
        let sha1 = documents::document(state, &proxy, req)
            .await?
            .and_then(|d| sha1_of(&d.body));
        let wanted = Wanted {
            url: crate::proxy::join(&settings.url, path),
            sha256: None,
            sha512: None,
            sha1,
            package: package.to_string(),
            version: version.to_string(),
            path: path.to_string(),
            name: path.rsplit('/').next().unwrap_or(path).to_string(),
            content_type: None,
            metadata: serde_json::json!({}),
        };
        if let Some(f) = files::open(state, &proxy, wanted).await? {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// The hex digest at the start of a `.sha1` file (some tools append the file name).
fn sha1_of(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let first = text.split_whitespace().next()?.to_ascii_lowercase();
    (first.len() == 40 && first.bytes().all(|b| b.is_ascii_hexdigit())).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_sidecars_are_read() {
        let xml = b"<metadata><versioning><versions><version>1.0</version>\n<version> 1.1 </version><version>1.0</version></versions></versioning></metadata>";
        assert_eq!(metadata_versions(xml), ["1.0", "1.1"]);
        let sha = "a".repeat(40);
        assert_eq!(
            sha1_of(format!("{sha}  core-1.0.jar\n").as_bytes()),
            Some(sha)
        );
        assert_eq!(sha1_of(b"<html>not found</html>"), None);
    }
}

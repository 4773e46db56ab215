//! RPM (dnf) through a proxy. The proxy's URL is the upstream repository root (holding
//! `repodata/`). `repodata/repomd.xml` and `repomd.xml.asc` are metadata, revalidated per the
//! proxy's interval and relayed byte for byte, so dnf verifies them with the upstream's key
//! (`repo_gpgcheck=1`) and no Arca key is involved. Every other repodata file is immutable: it is
//! verified against the checksum the last served `repomd.xml` lists for it (or, for an older
//! generation, the checksum its name starts with) and kept under its name, so the repodata of a
//! previous `repomd.xml` stays available after the upstream replaces it. Packages are kept by
//! path (dnf checks them against `primary`).

use crate::error::ApiResult;
use crate::model::Registry;
use crate::proxy::documents::{self, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

const ACCEPT: &str = "*/*";

/// `repodata/repomd.xml` or `repomd.xml.asc` of the upstream, revalidated per the interval.
pub(super) async fn repomd(
    state: &AppState,
    proxy: &Registry,
    file: &str,
) -> ApiResult<Option<Fetched>> {
    let path = format!("repodata/{file}");
    let req = documents::Request {
        path: &path,
        accept: ACCEPT,
        revalidate: false,
    };
    let Some(doc) = documents::document(state, proxy, req).await? else {
        return Ok(None);
    };
    // With the upstream's key, repomd.xml and its signature are served only when they verify.
    if let Some(key) = proxy.proxy.as_ref().and_then(|p| p.upstream_key.clone()) {
        let other = if file == "repomd.xml" {
            "repomd.xml.asc"
        } else {
            "repomd.xml"
        };
        let opath = format!("repodata/{other}");
        let oreq = documents::Request {
            path: &opath,
            accept: ACCEPT,
            revalidate: false,
        };
        let o = documents::document(state, proxy, oreq).await?;
        let (data, sig) = match (&o, file == "repomd.xml") {
            (Some(o), true) => (doc.body.clone(), o.body.clone()),
            (Some(o), false) => (o.body.clone(), doc.body.clone()),
            (None, _) => (doc.body.clone(), bytes::Bytes::new()),
        };
        crate::signing::verify_detached(&key, &String::from_utf8_lossy(&sig), &data).map_err(|e| {
            crate::error::ApiError::BadGateway(format!(
                "repodata/{file} from the upstream of '{}' is not signed by its configured key: {e}",
                proxy.identifier
            ))
        })?;
    }
    Ok(Some(doc))
}

/// The SHA-256 the repomd lists for `repodata/<file>` (by its `location href`).
fn listed_sha256(repomd: &[u8], file: &str) -> Option<String> {
    let text = String::from_utf8_lossy(repomd);
    let want = format!("href=\"repodata/{file}\"");
    text.split("<data ").skip(1).find_map(|data| {
        if !data.contains(&want) {
            return None;
        }
        let start = data.find("<checksum type=\"sha256\">")? + "<checksum type=\"sha256\">".len();
        let end = data[start..].find('<')? + start;
        Some(data[start..end].trim().to_ascii_lowercase())
    })
}

/// A repodata file other than repomd.xml: verified, kept under its name.
pub(super) async fn repodata(
    state: &AppState,
    proxy: &Registry,
    file: &str,
) -> ApiResult<Option<FileRow>> {
    let Some(settings) = &proxy.proxy else {
        return Ok(None);
    };
    let served = documents::stored(state, proxy, "repodata/repomd.xml", ACCEPT).await?;
    let prefix = file.split('-').next().unwrap_or("");
    let named = (prefix.len() == 64 && prefix.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| prefix.to_ascii_lowercase());
    let sha256 = served
        .as_ref()
        .and_then(|d| listed_sha256(&d.body, file))
        .or(named);
    let wanted = Wanted {
        url: crate::proxy::join(&settings.url, &format!("repodata/{file}")),
        sha256,
        sha512: None,
        sha1: None,
        package: "repodata".into(),
        version: "repodata".into(),
        path: format!("repodata/{file}"),
        name: file.to_string(),
        content_type: Some("application/octet-stream".into()),
        metadata: serde_json::json!({}),
    };
    files::file(state, proxy, wanted).await
}

/// A package (any path outside `repodata/`), kept by path.
pub(super) async fn package(
    state: &AppState,
    proxy: &Registry,
    path: &str,
) -> ApiResult<Option<FileRow>> {
    let Some(settings) = &proxy.proxy else {
        return Ok(None);
    };
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    // `<name>-<version>-<release>.<arch>.rpm`: the package is what precedes the version.
    let stem = name.trim_end_matches(".rpm");
    let mut parts: Vec<&str> = stem.rsplitn(3, '-').collect();
    parts.reverse();
    let (package, version) = match parts.as_slice() {
        [n, v, r] => (n.to_string(), format!("{v}-{r}")),
        _ => (stem.to_string(), "0".to_string()),
    };
    let wanted =
        Wanted::at_upstream_path(&settings.url, path, package, version, "application/x-rpm");
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
}

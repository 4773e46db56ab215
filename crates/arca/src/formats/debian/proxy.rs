//! Debian (apt) through a proxy. The proxy's URL is the upstream archive root (holding `dists/`
//! and `pool/`). Nothing is rewritten or re-signed: every file is served byte for byte, so apt
//! verifies the upstream's signature with the upstream's key and no Arca key is involved.
//!
//! `InRelease`, `Release` and `Release.gpg` are metadata, revalidated per the proxy's interval.
//! Every other file of a distribution is served as part of the *generation* of the `Release`
//! Arca served last: an index asked for by name is the blob whose SHA-256 that `Release` lists
//! (fetched by hash where the upstream offers `by-hash`, verified, kept under its hash), so a
//! client never gets an index of another generation than its `Release` ("Hash Sum mismatch");
//! `by-hash` files are immutable and stay in the cache when the upstream republishes, so the
//! previous generation stays available. Where the upstream has no `by-hash`, the indexes clients
//! read are fetched by name as soon as a new release is accepted (against its hashes), before the
//! upstream's files by name move on to a later generation. Pool files are immutable, kept by
//! path, and fetched against the SHA-256 the cached `Packages` index of a served release lists.
//!
//! A new `InRelease`, or `Release` with its `Release.gpg`, replaces the served one only after it
//! verified with the upstream's key (where the proxy has one); `Release.gpg` is kept with the
//! `Release` it signs.

use std::sync::Arc;

use futures::FutureExt;

use crate::error::{ApiError, ApiResult};
use crate::model::Registry;
use crate::proxy::documents::{self, Candidate, Check, Companion, Fetched};
use crate::proxy::files::{self, Wanted};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

const ACCEPT: &str = "*/*";

/// The signed release files, relayed as the upstream has them.
pub(super) const RELEASE_FILES: [&str; 3] = ["InRelease", "Release", "Release.gpg"];

/// `dists/<dist>/<file>` of the upstream (a release file), revalidated per the interval. A new
/// `InRelease`, or `Release` with the `Release.gpg` fetched alongside it, is stored only when it
/// verifies with the upstream's key (where the proxy has one): a bad new generation leaves the
/// good one in service (stale, logged). `Release.gpg` is kept with its `Release` (keyed by the
/// release's SHA-256), so the two served are always of one generation.
pub(super) async fn release_file(
    state: &AppState,
    proxy: &Registry,
    dist: &str,
    file: &str,
) -> ApiResult<Option<Fetched>> {
    let Some(settings) = &proxy.proxy else {
        return Ok(None);
    };
    let signed = if file == "Release.gpg" {
        "Release"
    } else {
        file
    };
    let path = format!("dists/{dist}/{signed}");
    let req = documents::Request {
        path: &path,
        accept: ACCEPT,
        revalidate: false,
    };
    let url = crate::proxy::join(&settings.url, &path);
    let check = release_check(state, proxy, dist, signed);
    let Some(doc) = documents::document_checked(state, proxy, req, url, check).await? else {
        return Ok(None);
    };
    if file != "Release.gpg" {
        return Ok(Some(doc));
    }
    let url = crate::proxy::join(&settings.url, &format!("dists/{dist}/Release.gpg"));
    documents::companion(
        state,
        proxy,
        &doc,
        &signature_path(dist, &doc.sha256),
        ACCEPT,
        &url,
        |release, sig| verify(proxy, dist, "Release", release, Some(sig)),
    )
    .await
}

/// Where the `Release.gpg` of the release with this SHA-256 is kept.
fn signature_path(dist: &str, release_sha256: &str) -> String {
    format!("dists/{dist}/Release.gpg@{release_sha256}")
}

/// What a new `InRelease` / `Release` must pass before it is stored (see [`release_file`]).
fn release_check(state: &AppState, proxy: &Registry, dist: &str, file: &str) -> Arc<Check> {
    let (state, proxy, dist, file) = (
        state.clone(),
        proxy.clone(),
        dist.to_string(),
        file.to_string(),
    );
    Arc::new(move |c: Candidate| {
        let (state, proxy, dist, file) = (state.clone(), proxy.clone(), dist.clone(), file.clone());
        async move {
            if file == "InRelease" {
                verify(&proxy, &dist, &file, &c.body, None)?;
                prefetch(&state, &proxy, &dist, c.stored.as_deref(), &c.body).await;
                return Ok(Vec::new());
            }
            let url = proxy
                .proxy
                .as_ref()
                .map(|s| crate::proxy::join(&s.url, &format!("dists/{dist}/Release.gpg")))
                .unwrap_or_default();
            let sig = documents::upstream_bytes(&state, &proxy, &url)
                .await
                .map_err(|f| f.to_string())?;
            verify(
                &proxy,
                &dist,
                &file,
                &c.body,
                Some(sig.as_deref().unwrap_or_default()),
            )?;
            prefetch(&state, &proxy, &dist, c.stored.as_deref(), &c.body).await;
            Ok(sig
                .map(|body| Companion {
                    path: signature_path(&dist, &c.sha256),
                    body,
                })
                .into_iter()
                .collect())
        }
        .boxed()
    })
}

/// When a new release of an upstream without `by-hash` is accepted, the indexes its clients read
/// (those of the previous release Arca has cached) are fetched at once by name, against the new
/// release's hashes: by the time a client asks for them, the upstream's files by name may already
/// belong to a later generation. Failures are only logged (the index is then fetched on request,
/// as without this).
async fn prefetch(state: &AppState, proxy: &Registry, dist: &str, old: Option<&[u8]>, new: &[u8]) {
    let (Some(old), Some(settings)) = (old, &proxy.proxy) else {
        return;
    };
    let new = listing(new);
    if new.by_hash {
        return;
    }
    let cached = match state.db.cache_of_proxy(&proxy.id).await {
        Ok(Some(cache)) => state
            .db
            .files_with_prefix(&cache.id, &format!("dists/{dist}/by-hash/SHA256/"))
            .await
            .unwrap_or_default(),
        _ => return,
    };
    for (name, old_hash) in listing(old).sha256 {
        let used = cached
            .iter()
            .any(|f| f.path.ends_with(&format!("/{old_hash}")));
        let Some((_, hash)) = new.sha256.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        if !used || *hash == old_hash {
            continue;
        }
        let url = crate::proxy::join(&settings.url, &format!("dists/{dist}/{name}"));
        if let Err(e) = by_hash(state, proxy, dist, &url, hash).await {
            tracing::warn!(
                proxy = %proxy.identifier, dist, index = %name, error = %e,
                "prefetching an index of a new release failed"
            );
        }
    }
}

/// Checks a release file against the proxy's upstream key, if it has one: `InRelease` alone,
/// `Release` with its detached signature `sig`.
fn verify(
    proxy: &Registry,
    dist: &str,
    file: &str,
    body: &[u8],
    sig: Option<&[u8]>,
) -> Result<(), String> {
    let Some(key) = proxy.proxy.as_ref().and_then(|p| p.upstream_key.as_deref()) else {
        return Ok(());
    };
    let checked = match sig {
        None => crate::signing::verify_clearsigned(key, &String::from_utf8_lossy(body)),
        Some(sig) => crate::signing::verify_detached(key, &String::from_utf8_lossy(sig), body),
    };
    checked.map_err(|e| {
        format!(
            "dists/{dist}/{file} from the upstream of '{}' is not signed by its configured key: {e}",
            proxy.identifier
        )
    })
}

/// The release Arca served last for `dist` (InRelease, else Release), without asking upstream
/// (it was verified before it was stored); fetched if there is none yet.
async fn served_release(
    state: &AppState,
    proxy: &Registry,
    dist: &str,
) -> ApiResult<Option<Fetched>> {
    for file in ["InRelease", "Release"] {
        let path = format!("dists/{dist}/{file}");
        if let Some(d) = documents::stored(state, proxy, &path, ACCEPT).await? {
            return Ok(Some(d));
        }
    }
    for file in ["InRelease", "Release"] {
        if let Some(d) = release_file(state, proxy, dist, file).await? {
            return Ok(Some(d));
        }
    }
    Ok(None)
}

/// What a release says: whether it offers `by-hash`, and the SHA-256 of each file it lists.
struct Listing {
    by_hash: bool,
    sha256: Vec<(String, String)>,
}

fn listing(release: &[u8]) -> Listing {
    let text = String::from_utf8_lossy(release);
    let mut by_hash = false;
    let mut sha256 = Vec::new();
    let mut in_sha = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN PGP SIGNATURE") {
            break;
        }
        if !line.starts_with(' ') {
            in_sha = line.trim_end() == "SHA256:";
            if let Some(v) = line.strip_prefix("Acquire-By-Hash:") {
                by_hash = v.trim().eq_ignore_ascii_case("yes");
            }
            continue;
        }
        if in_sha {
            let mut parts = line.split_whitespace();
            if let (Some(h), Some(_size), Some(name)) = (parts.next(), parts.next(), parts.next()) {
                sha256.push((name.to_string(), h.to_ascii_lowercase()));
            }
        }
    }
    Listing { by_hash, sha256 }
}

/// A file of `dists/<dist>/` other than the release files: an index by name (the one the served
/// release lists) or a `by-hash` file.
pub(super) async fn dist_index(
    state: &AppState,
    proxy: &Registry,
    dist: &str,
    rest: &str,
) -> ApiResult<Option<FileRow>> {
    let Some(settings) = &proxy.proxy else {
        return Ok(None);
    };
    // `…/by-hash/SHA256/<hash>`: immutable, the name is the digest.
    let hashed = rest
        .rsplit_once("/by-hash/SHA256/")
        .map(|(_, h)| h)
        .or_else(|| rest.strip_prefix("by-hash/SHA256/"));
    if let Some(hash) = hashed {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let url = crate::proxy::join(&settings.url, &format!("dists/{dist}/{rest}"));
        return by_hash(state, proxy, dist, &url, &hash.to_ascii_lowercase()).await;
    }
    let Some(release) = served_release(state, proxy, dist).await? else {
        return Ok(None);
    };
    let listed = listing(&release.body);
    let Some((_, hash)) = listed.sha256.iter().find(|(n, _)| n == rest) else {
        return Err(ApiError::not_found(format!(
            "dists/{dist}/{rest} is not listed in the distribution's Release"
        )));
    };
    let url = if listed.by_hash {
        let dir = rest
            .rsplit_once('/')
            .map(|(d, _)| format!("{d}/"))
            .unwrap_or_default();
        crate::proxy::join(
            &settings.url,
            &format!("dists/{dist}/{dir}by-hash/SHA256/{hash}"),
        )
    } else {
        crate::proxy::join(&settings.url, &format!("dists/{dist}/{rest}"))
    };
    by_hash(state, proxy, dist, &url, hash).await
}

/// Fetches the index with SHA-256 `hash` from `url` into the cache, under its hash.
async fn by_hash(
    state: &AppState,
    proxy: &Registry,
    dist: &str,
    url: &str,
    hash: &str,
) -> ApiResult<Option<FileRow>> {
    let wanted = Wanted {
        url: url.to_string(),
        sha256: Some(hash.to_string()),
        sha512: None,
        sha1: None,
        package: format!("dists/{dist}"),
        version: "indexes".into(),
        path: format!("dists/{dist}/by-hash/SHA256/{hash}"),
        name: hash.to_string(),
        content_type: Some("application/octet-stream".into()),
        metadata: serde_json::json!({}),
    };
    files::file(state, proxy, wanted).await
}

/// A pool file (`pool/…`), kept by path (pool files are immutable: a rebuild gets a new
/// version). Where a `Packages` index of a served release lists it (and Arca has that index
/// cached), a miss is fetched against the SHA-256 listed there: a file whose bytes differ is
/// refused (502) and nothing kept. A file no readable index lists is fetched as is (apt checks
/// it against its own index). A hit is served without reading the indexes.
pub(super) async fn pool_file(
    state: &AppState,
    proxy: &Registry,
    path: &str,
) -> ApiResult<Option<FileRow>> {
    let Some(settings) = &proxy.proxy else {
        return Ok(None);
    };
    if let Some(f) = files::cached(state, proxy, path).await? {
        return Ok(Some(f));
    }
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    // `<package>_<version>_<arch>.deb` names the package and version it is listed under.
    let mut parts = name.trim_end_matches(".deb").splitn(3, '_');
    let package = parts.next().unwrap_or(&name).to_string();
    let version = parts.next().unwrap_or("0").to_string();
    let mut wanted = Wanted::at_upstream_path(
        &settings.url,
        path,
        package,
        version,
        "application/vnd.debian.binary-package",
    );
    wanted.sha256 = listed_pool_sha256(state, proxy, path).await?;
    files::file(state, proxy, wanted).await
}

/// The SHA-256 the `Packages` indexes of the served releases list for `pool_path`, read from
/// the indexes Arca has cached (the ones its clients read).
async fn listed_pool_sha256(
    state: &AppState,
    proxy: &Registry,
    pool_path: &str,
) -> ApiResult<Option<String>> {
    let Some(cache) = state.db.cache_of_proxy(&proxy.id).await? else {
        return Ok(None);
    };
    let cached = state.db.files_with_prefix(&cache.id, "dists/").await?;
    // Cached indexes are kept as `dists/<dist>/by-hash/SHA256/<hash>`.
    let mut dists: Vec<&str> = cached
        .iter()
        .filter_map(|f| {
            let rest = f.path.strip_prefix("dists/")?;
            rest.split_once("/by-hash/SHA256/").map(|(d, _)| d)
        })
        .collect();
    dists.dedup();
    for dist in dists {
        let mut release = None;
        for file in ["InRelease", "Release"] {
            let path = format!("dists/{dist}/{file}");
            if let Some(d) = documents::stored(state, proxy, &path, ACCEPT).await? {
                release = Some(d);
                break;
            }
        }
        let Some(release) = release else { continue };
        for (name, hash) in listing(&release.body).sha256 {
            let file = name.rsplit('/').next().unwrap_or(&name);
            if !file.starts_with("Packages") {
                continue;
            }
            let at = format!("dists/{dist}/by-hash/SHA256/{hash}");
            let Some(index) = cached.iter().find(|f| f.path == at) else {
                continue;
            };
            let Some(text) = read_index(state, index, file).await? else {
                continue;
            };
            if let Some(sha) = pool_entry(&text, pool_path) {
                return Ok(Some(sha));
            }
        }
    }
    Ok(None)
}

/// A cached `Packages` index as text (decompressed as its name says), if it can be read.
async fn read_index(state: &AppState, index: &FileRow, name: &str) -> ApiResult<Option<String>> {
    use futures::TryStreamExt;
    use std::io::Read;
    if index.size > state.config.max_parsed_body_bytes as i64 {
        return Ok(None);
    }
    let read = state.blobs.get(&index.sha256, None).await?;
    let chunks: Vec<bytes::Bytes> = read.stream.try_collect().await?;
    let body = chunks.concat();
    let mut text = String::new();
    let decoded = if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text)
    } else if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(&body[..]).read_to_string(&mut text)
    } else if name == "Packages" {
        String::from_utf8(body)
            .map(|t| {
                text = t;
                text.len()
            })
            .map_err(std::io::Error::other)
    } else {
        return Ok(None);
    };
    Ok(decoded.ok().map(|_| text))
}

/// The `SHA256` of the stanza of a `Packages` index whose `Filename` is `pool_path`.
fn pool_entry(packages: &str, pool_path: &str) -> Option<String> {
    packages.split("\n\n").find_map(|stanza| {
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix(':').map(str::trim))
        };
        (field("Filename")? == pool_path)
            .then(|| field("SHA256").map(str::to_ascii_lowercase))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_indexes_give_a_pool_file_its_sha256() {
        let p = "Package: a\nFilename: pool/main/a/a_1_all.deb\nSize: 3\nSHA256: AA\n\nPackage: b\nFilename: pool/main/b/b_1_all.deb\nSHA256: bb\n";
        assert_eq!(
            pool_entry(p, "pool/main/b/b_1_all.deb").as_deref(),
            Some("bb")
        );
        assert_eq!(
            pool_entry(p, "pool/main/a/a_1_all.deb").as_deref(),
            Some("aa")
        );
        assert_eq!(pool_entry(p, "pool/main/c/c_1_all.deb"), None);
    }

    #[test]
    fn releases_list_their_indexes_by_sha256() {
        let r = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: x\nAcquire-By-Hash: yes\nMD5Sum:\n 0123 10 main/binary-all/Packages\nSHA256:\n ABCD 10 main/binary-all/Packages\n ef01 20 main/binary-all/Packages.gz\n-----BEGIN PGP SIGNATURE-----\n\nxx\n";
        let l = listing(r);
        assert!(l.by_hash);
        assert_eq!(
            l.sha256,
            [
                ("main/binary-all/Packages".to_string(), "abcd".to_string()),
                (
                    "main/binary-all/Packages.gz".to_string(),
                    "ef01".to_string()
                )
            ]
        );
    }
}

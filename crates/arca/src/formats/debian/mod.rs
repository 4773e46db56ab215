//! Debian (DEBIAN registries): a signed apt repository.
//!
//! Layout under `<base>/pkg/<account>/<registry>/debian/`:
//! * `PUT <file>.deb?distribution=<dist>&component=<comp>` (defaults `stable`/`main`): upload; the
//!   control data is read from the package (`control.tar.gz` or `.xz`);
//! * `pool/<component>/<initial>/<source>/<file>.deb`;
//! * `dists/<dist>/Release`, `InRelease` (clear-signed), `Release.gpg`, and per component and
//!   architecture `binary-<arch>/Packages`, `Packages.gz`, `Packages.xz`, with `by-hash/SHA256/<digest>` copies
//!   (`Acquire-By-Hash: yes`);
//! * `public.key`: the registry's armored OpenPGP key (`signed-by=` it).
//!
//! A distribution's files are generated together from the metadata store when one of its
//! packages changed (validated per package revision, like every generated document), never on
//! every request, and signed with the registry's key.

mod group;
mod proxy;

use crate::formats::setup::{Setup, SetupContext, inline, step};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::upload::{Body, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver};
use crate::archive::{Limits, tar_find};
use crate::doc_cache::{self as cache, Doc};
use crate::download::serve_file;
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

pub struct Debian;

/// Largest control member read from a package.
const MAX_CONTROL: u64 = 16 << 20;

#[async_trait]
impl Format for Debian {
    fn package_type(&self) -> PackageType {
        PackageType::Debian
    }

    fn signs_metadata(&self) -> bool {
        true
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            base,
            id,
            root,
            user,
            art,
            ..
        } = c;
        let auth = format!("/etc/apt/auth.conf.d/{id}.conf");
        Setup {
            title: "Debian Client Setup",
            sections: vec![
                inline(
                    "Add the repository",
                    vec![step(
                        "Key, sources.list and credentials (as root)",
                        &[
                            (
                                "",
                                format!(
                                    "mkdir -p /etc/apt/keyrings && curl -fsS -u {user}:<TOKEN> -o /etc/apt/keyrings/{id}.asc {root}/public.key"
                                ),
                            ),
                            (
                                "",
                                format!(
                                    "echo 'deb [signed-by=/etc/apt/keyrings/{id}.asc] {root} stable main' > /etc/apt/sources.list.d/{id}.list"
                                ),
                            ),
                            (
                                "",
                                // apt applies auth.conf entries to http only with the scheme; the
                                // file holds the token, so only root may read it.
                                format!(
                                    "touch {auth} && chmod 600 {auth} && printf 'machine {base}\\nlogin {user}\\npassword <TOKEN>\\n' > {auth}"
                                ),
                            ),
                        ],
                    )],
                ),
                inline(
                    "Upload",
                    vec![step(
                        "Upload with curl",
                        &[(
                            "",
                            format!(
                                "curl --fail-with-body -u {user}:<TOKEN> -T <FILE>.deb '{root}/<FILE>.deb?distribution=stable&component=main'"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Install (as root)",
                        &[("", format!("apt-get update && apt-get install -y {art}"))],
                    )],
                ),
            ],
        }
    }

    fn pull_command(&self, _c: &SetupContext, name: &str, version: &str) -> String {
        format!("apt-get install {name}={version}")
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let get = req.method == Method::GET || req.method == Method::HEAD;
        if req.registry.kind == crate::model::RegistryKind::Proxy {
            return proxied(state, &req, &req.registry, &segs).await;
        }
        match (&req.method, segs.as_slice()) {
            (_, ["public.key"]) if get => super::public_key_response(state, &req.registry).await,
            (_, ["dists", dist, rest @ ..]) if get && !rest.is_empty() => {
                dist_file(state, &req, dist, &rest.join("/")).await
            }
            (_, ["pool", ..]) if get => {
                let path = segs.join("/");
                let f = match (Resolver { state }).find_file(&req.registry, &path).await? {
                    Some((_, f)) => f,
                    // Through a group: a pool file of a distribution a proxy member passes
                    // through, fetched by that proxy.
                    None => group::pool_file(state, &req.registry, &path)
                        .await?
                        .ok_or_else(|| ApiError::not_found(format!("no package at {path}")))?,
                };
                serve_file(state, &f, &req.method, &req.headers).await
            }
            (&Method::PUT, [file]) if file.ends_with(".deb") => upload(state, req).await,
            (&Method::PUT, _) => Err(ApiError::bad(
                "file",
                "upload packages as PUT <root>/<file>.deb?distribution=<dist>&component=<component>",
            )),
            _ => Err(ApiError::not_found("no such apt repository path")),
        }
    }
}

/// A read of a Debian proxy (addressed directly, or the proxy member of a group that passes a
/// distribution through): the upstream's files byte for byte (see [`proxy`]); the proxy's cache
/// first for immutable files.
async fn proxied(
    state: &AppState,
    req: &NativeRequest,
    proxy: &Registry,
    segs: &[&str],
) -> ApiResult<Response> {
    let get = req.method == Method::GET || req.method == Method::HEAD;
    if !get {
        return Err(ApiError::MethodNotAllowed(format!(
            "registry '{}' is a proxy; uploads are not possible",
            req.registry.identifier
        )));
    }
    let stored = |path: String| async move {
        Ok::<_, ApiError>(
            (Resolver { state })
                .find_file(proxy, &path)
                .await?
                .map(|(_, f)| f),
        )
    };
    let file = match segs {
        ["public.key"] => return upstream_key_response(proxy),
        ["dists", dist, file] if proxy::RELEASE_FILES.contains(file) && valid_word(dist) => {
            let doc = proxy::release_file(state, proxy, dist, file)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("dists/{dist}/{file} not found upstream"))
                })?;
            let mut resp = (
                [(axum::http::header::CONTENT_TYPE, "text/plain")],
                doc.body.clone(),
            )
                .into_response();
            if doc.state == crate::proxy::documents::CacheState::Stale {
                resp.headers_mut().insert(
                    "x-arca-cache",
                    axum::http::HeaderValue::from_static("STALE"),
                );
            }
            return Ok(resp);
        }
        ["dists", dist, rest @ ..] if !rest.is_empty() && valid_word(dist) => {
            let rest = rest.join("/");
            match rest.rsplit_once("/by-hash/SHA256/") {
                Some((_, h)) => match stored(format!("dists/{dist}/by-hash/SHA256/{h}")).await? {
                    Some(f) => Some(f),
                    None => proxy::dist_index(state, proxy, dist, &rest).await?,
                },
                None => proxy::dist_index(state, proxy, dist, &rest).await?,
            }
        }
        ["pool", ..] => {
            let path = segs.join("/");
            match stored(path.clone()).await? {
                Some(f) => Some(f),
                None => proxy::pool_file(state, proxy, &path).await?,
            }
        }
        _ => return Err(ApiError::not_found("no such apt repository path")),
    };
    let f = file.ok_or_else(|| ApiError::not_found(format!("{} not found", segs.join("/"))))?;
    serve_file(state, &f, &req.method, &req.headers).await
}

/// `public.key` of a Debian/RPM proxy: the upstream's key it was given (the files it serves are
/// the upstream's, signed with that key; a proxy has no key of its own).
pub(crate) fn upstream_key_response(proxy: &Registry) -> ApiResult<Response> {
    let key = proxy
        .proxy
        .as_ref()
        .and_then(|p| p.upstream_key.clone())
        .ok_or_else(|| {
            ApiError::not_found(
                "this proxy serves its upstream's signed files and was given no upstream key \
                 (upstreamPublicKey): trust the upstream's own key",
            )
        })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/pgp-keys")],
        key,
    )
        .into_response())
}

/// Distribution, component and architecture names.
pub(crate) fn valid_word(w: &str) -> bool {
    !w.is_empty()
        && w.len() <= 64
        && w.as_bytes()[0].is_ascii_alphanumeric()
        && w.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b'_')
        })
}

/// Debian package names: lowercase letters, digits, `+`, `-`, `.`, at least two characters.
pub(crate) fn valid_package(p: &str) -> bool {
    p.len() >= 2
        && p.as_bytes()[0].is_ascii_alphanumeric()
        && p.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.')
        })
}

/// Debian versions: `[epoch:]upstream[-revision]`, upstream starting with a digit.
pub(crate) fn valid_version(v: &str) -> bool {
    let upstream = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => rest,
        Some(_) => return false,
        None => v,
    };
    !upstream.is_empty()
        && upstream.as_bytes()[0].is_ascii_digit()
        && upstream
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'~' | b'-' | b':'))
}

/// Walks the `ar` member headers before the `ar` crate reads them and refuses extended member
/// names (GNU `/...` entries, BSD `#1/...`): a `.deb`'s members have short names (dpkg reads
/// nothing else), and the crate panics on a GNU long-name reference past its name table and
/// allocates whatever size a GNU name table or a BSD long name claims. Anything else that is
/// wrong is left to the crate to report.
fn check_members(r: &mut (impl Read + std::io::Seek)) -> Result<(), String> {
    let mut magic = [0u8; 8];
    if r.read_exact(&mut magic).is_err() || &magic != b"!<arch>\n" {
        return Ok(());
    }
    loop {
        let mut h = [0u8; 60];
        if r.read_exact(&mut h).is_err() {
            return Ok(());
        }
        if h[0] == b'/' || h.starts_with(b"#1/") {
            return Err(format!(
                "not a Debian package: member '{}' has an extended name",
                String::from_utf8_lossy(&h[..16]).trim_end()
            ));
        }
        let Some(size) = std::str::from_utf8(&h[48..58])
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|s| *s >= 0)
        else {
            return Ok(());
        };
        if r.seek(std::io::SeekFrom::Current(size + size % 2)).is_err() {
            return Ok(());
        }
    }
}

/// Reads `control` out of a `.deb` (an `ar` archive holding `control.tar.{gz,xz}`).
pub(crate) fn read_control(path: &std::path::Path) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    check_members(&mut file)?;
    std::io::Seek::rewind(&mut file).map_err(|e| e.to_string())?;
    let mut ar = ar::Archive::new(file);
    let mut seen_binary = false;
    while let Some(entry) = ar.next_entry() {
        let mut entry = entry.map_err(|e| format!("not a Debian package (ar archive): {e}"))?;
        let name = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_string();
        if name == "debian-binary" {
            seen_binary = true;
            continue;
        }
        let Some(compression) = name.strip_prefix("control.tar") else {
            continue;
        };
        if !seen_binary {
            return Err("not a Debian package: debian-binary must come first".into());
        }
        let mut raw = Vec::new();
        (&mut entry)
            .take(MAX_CONTROL + 1)
            .read_to_end(&mut raw)
            .map_err(|e| e.to_string())?;
        if raw.len() as u64 > MAX_CONTROL {
            return Err("the control member is too large".into());
        }
        let want = |p: &std::path::Path| {
            let s = p.to_string_lossy();
            s == "control" || s == "./control"
        };
        let limits = Limits {
            total: 64 << 20,
            ..Limits::default()
        };
        let found = match compression {
            ".gz" => tar_find(flate2::read::GzDecoder::new(&raw[..]), want, limits),
            ".xz" => tar_find(liblzma::read::XzDecoder::new(&raw[..]), want, limits),
            "" => tar_find(&raw[..], want, limits),
            other => {
                return Err(format!(
                    "control.tar{other} is not supported (gz and xz are)"
                ));
            }
        }?;
        let (_, bytes) = found.ok_or("the package has no control file")?;
        return String::from_utf8(bytes).map_err(|_| "the control file is not UTF-8".into());
    }
    Err("not a Debian package: no control member".into())
}

async fn upload(state: &AppState, req: NativeRequest) -> ApiResult<Response> {
    let up = Upload::begin(state, &req, Body::Streamed).await?;
    let q = crate::http::query_pairs(req.query.as_deref());
    let dist = crate::http::query_get(&q, "distribution")
        .unwrap_or("stable")
        .to_string();
    let component = crate::http::query_get(&q, "component")
        .unwrap_or("main")
        .to_string();
    if !valid_word(&dist) || !valid_word(&component) {
        return Err(ApiError::bad(
            "distribution",
            format!("'{dist}/{component}' is not a valid distribution/component"),
        ));
    }
    let staged = up.stage(req.into_body_stream()).await?;
    let control = up.inspect(&staged, "file", read_control).await?;
    let fields = crate::dcf::parse(&control)
        .map_err(|e| ApiError::bad("file", format!("control file: {e}")))?;
    let field = |k: &str| {
        fields
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let (Some(package), Some(version), Some(arch)) =
        (field("Package"), field("Version"), field("Architecture"))
    else {
        return Err(ApiError::bad(
            "file",
            "the control file lacks Package, Version or Architecture",
        ));
    };
    if !valid_package(&package) || !valid_version(&version) || !valid_word(&arch) {
        return Err(ApiError::bad(
            "file",
            format!("invalid Package/Version/Architecture: {package} {version} {arch}"),
        ));
    }
    let source = field("Source")
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .filter(|s| valid_package(s))
        .unwrap_or_else(|| package.clone());
    let initial = if source.starts_with("lib") && source.len() > 3 {
        &source[..4]
    } else {
        &source[..1]
    };
    let file_version = version.split_once(':').map(|(_, v)| v).unwrap_or(&version);
    let name = format!("{package}_{file_version}_{arch}.deb");
    let pool_path = format!("pool/{component}/{initial}/{source}/{name}");
    let exists = || {
        ApiError::conflict(format!(
            "{name} already exists and this registry does not allow re-uploads"
        ))
    };
    up.check_new(&format!("{package}:{version}"), &pool_path, exists)
        .await?;
    let mut control_map = Map::new();
    for (k, v) in &fields {
        control_map.insert(k.clone(), json!(v));
    }
    up.record(
        staged,
        FileSpec {
            package: &package,
            version: &version,
            path: &pool_path,
            name: &name,
            content_type: Some("application/vnd.debian.binary-package"),
            metadata: json!({"distribution": dist, "component": component, "architecture": arch, "control": fields}),
        },
        exists,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        format!("{name} added to {dist}/{component}\n"),
    )
        .into_response())
}

fn hash_hex<D: sha2::Digest>(data: &[u8]) -> String {
    hex::encode(D::digest(data))
}

async fn dist_file(
    state: &AppState,
    req: &NativeRequest,
    dist: &str,
    rest: &str,
) -> ApiResult<Response> {
    if !valid_word(dist) {
        return Err(ApiError::not_found("no such distribution"));
    }
    // The packages of the read chain validate the cache (one query per registry).
    let (chain, pkgs) = (Resolver { state }).all_packages(&req.registry).await?;
    let key = crate::signing::key_for(&state.db, &req.registry).await?;
    let stamp = format!("{}|{}", cache::stamp(&pkgs), crate::signing::stamp(&key));
    let modified = pkgs.iter().map(|p| p.updated_at).max().unwrap_or(0);
    let built = state
        .docs
        .get_or_build_set(
            &format!("deb|{}|{dist}", req.registry.id),
            &stamp,
            rest,
            || async {
                // The Date comes from the data, so every process generates the same Release.
                let snap = build(state, &req.registry, &chain, dist, &key, modified).await?;
                Ok::<_, ApiError>(snap.into_iter().collect())
            },
        )
        .await;
    // A distribution no hosted member holds: a group passes it through from the proxy member
    // that serves it, unmerged, with the upstream's signatures.
    let doc = match built {
        Err(ApiError::NotFound(_)) if req.registry.kind == crate::model::RegistryKind::Group => {
            if let Some(proxy) = group::proxy_for(state, &req.registry, dist).await? {
                let path = format!("dists/{dist}/{rest}");
                let segs: Vec<&str> = path.split('/').collect();
                crate::formats::members::served_by(&proxy.identifier);
                return proxied(state, req, &proxy, &segs).await;
            }
            return Err(ApiError::not_found(format!(
                "distribution '{dist}' has no packages"
            )));
        }
        other => other?,
    };
    let doc =
        doc.ok_or_else(|| ApiError::not_found(format!("dists/{dist}/{rest} does not exist")))?;
    // apt revalidates with If-Modified-Since.
    Ok(doc.respond_dated(&req.headers, req.method == Method::HEAD))
}

/// Generates `Packages`, `Packages.gz` (and their by-hash copies) for every component and
/// architecture of `dist`, then `Release`, `InRelease` and `Release.gpg`.
async fn build(
    state: &AppState,
    reg: &Registry,
    chain: &[Registry],
    dist: &str,
    key: &crate::signing::RepoKey,
    modified_ms: i64,
) -> ApiResult<BTreeMap<String, Doc>> {
    // (component, architecture) → stanzas; "all" packages go into every architecture.
    let mut entries: Vec<(String, String, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for r in chain {
        for f in state.db.files_with_prefix(&r.id, "pool/").await? {
            if f.metadata.get("distribution").and_then(Value::as_str) != Some(dist)
                || !seen.insert(f.path.clone())
            {
                continue;
            }
            let comp = f
                .metadata
                .get("component")
                .and_then(Value::as_str)
                .unwrap_or("main")
                .to_string();
            let arch = f
                .metadata
                .get("architecture")
                .and_then(Value::as_str)
                .unwrap_or("all")
                .to_string();
            entries.push((comp, arch, stanza(&f)));
        }
    }
    if entries.is_empty() {
        return Err(ApiError::not_found(format!(
            "distribution '{dist}' has no packages"
        )));
    }
    let components: BTreeSet<String> = entries.iter().map(|e| e.0.clone()).collect();
    let mut archs: BTreeSet<String> = entries
        .iter()
        .map(|e| e.1.clone())
        .filter(|a| a != "all")
        .collect();
    if archs.is_empty() {
        archs.insert("amd64".into());
    }
    let mut files: BTreeMap<String, Doc> = BTreeMap::new();
    let mut sums: Vec<(String, usize, String, String)> = Vec::new();
    let mut add =
        |files: &mut BTreeMap<String, Doc>, path: String, body: Vec<u8>, ct: &'static str| {
            let sha256 = hash_hex::<sha2::Sha256>(&body);
            let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(&body));
            sums.push((path.clone(), body.len(), md5, sha256.clone()));
            let dir = path
                .rsplit_once('/')
                .map(|(d, _)| d.to_string())
                .unwrap_or_default();
            let doc = Doc::new(body, ct);
            files.insert(format!("{dir}/by-hash/SHA256/{sha256}"), doc.clone());
            files.insert(path, doc);
        };
    for comp in &components {
        for arch in &archs {
            let text: String = entries
                .iter()
                .filter(|e| &e.0 == comp && (&e.1 == arch || e.1 == "all"))
                .map(|e| e.2.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            let base = format!("{comp}/binary-{arch}/Packages");
            add(
                &mut files,
                format!("{base}.gz"),
                crate::archive::gzip(text.as_bytes()).map_err(|e| ApiError::Internal(e.into()))?,
                "application/gzip",
            );
            add(
                &mut files,
                format!("{base}.xz"),
                crate::archive::xz(text.as_bytes()).map_err(|e| ApiError::Internal(e.into()))?,
                "application/x-xz",
            );
            add(
                &mut files,
                base,
                text.into_bytes(),
                "text/plain; charset=utf-8",
            );
        }
    }
    let date = time::OffsetDateTime::from_unix_timestamp(modified_ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default()
        .replace("+0000", "UTC");
    let mut release = format!(
        "Origin: Arca\nLabel: {}/{}\nSuite: {dist}\nCodename: {dist}\nDate: {date}\nArchitectures: {}\nComponents: {}\nAcquire-By-Hash: yes\n",
        reg.account,
        reg.identifier,
        archs.iter().cloned().collect::<Vec<_>>().join(" "),
        components.iter().cloned().collect::<Vec<_>>().join(" "),
    );
    sums.sort();
    release.push_str("MD5Sum:\n");
    for (p, len, md5, _) in &sums {
        release.push_str(&format!(" {md5} {len:>16} {p}\n"));
    }
    release.push_str("SHA256:\n");
    for (p, len, _, sha) in &sums {
        release.push_str(&format!(" {sha} {len:>16} {p}\n"));
    }
    let in_release = key.clearsign(&release)?;
    let release_gpg = key.detached(release.as_bytes())?;
    files.insert(
        "InRelease".into(),
        Doc::new(in_release, "text/plain; charset=utf-8"),
    );
    files.insert(
        "Release.gpg".into(),
        Doc::new(release_gpg, "application/pgp-signature"),
    );
    files.insert(
        "Release".into(),
        Doc::new(release, "text/plain; charset=utf-8"),
    );
    Ok(files)
}

/// A package's `Packages` stanza: its control fields plus where and what the file is.
fn stanza(f: &FileRow) -> String {
    let mut s = String::new();
    if let Some(fields) = f.metadata.get("control").and_then(Value::as_array) {
        for pair in fields {
            let (Some(k), Some(v)) = (
                pair.get(0).and_then(Value::as_str),
                pair.get(1).and_then(Value::as_str),
            ) else {
                continue;
            };
            // Fields describing the file are Arca's to write.
            if matches!(
                k,
                "Filename" | "Size" | "MD5sum" | "SHA1" | "SHA256" | "SHA512"
            ) {
                continue;
            }
            s.push_str(&format!("{k}: {v}\n"));
        }
    }
    s.push_str(&format!(
        "Filename: {}\nSize: {}\nMD5sum: {}\nSHA1: {}\nSHA256: {}\n",
        f.path, f.size, f.md5, f.sha1, f.sha256
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert!(
            valid_package("hello-deb")
                && valid_package("libc6")
                && !valid_package("A")
                && !valid_package("x")
        );
        assert!(
            valid_version("1.0.0")
                && valid_version("2:1.2-3~bpo1")
                && !valid_version("abc")
                && !valid_version("x:1.0")
        );
        assert!(
            valid_word("bookworm")
                && valid_word("main")
                && !valid_word("../x")
                && !valid_word("Main")
        );
    }

    fn read(bytes: &[u8]) -> Result<String, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.deb");
        std::fs::write(&path, bytes).unwrap();
        read_control(&path)
    }

    /// An `ar` archive of (60-byte header name, data) members.
    fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, data) in members {
            let header = format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                644,
                data.len()
            );
            out.extend(header.as_bytes());
            out.extend(*data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    fn control_tar() -> Vec<u8> {
        let mut t = tar::Builder::new(Vec::new());
        let text = b"Package: hello\nVersion: 1.0\nArchitecture: all\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_path("./control").unwrap();
        h.set_cksum();
        t.append(&h, &text[..]).unwrap();
        t.into_inner().unwrap()
    }

    #[test]
    fn reads_the_control_member() {
        let deb = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar/", &control_tar()),
            ("data.tar", b""),
        ]);
        assert!(read(&deb).unwrap().starts_with("Package: hello\n"));
    }

    /// Found by fuzzing (`fuzz/run.sh`, target `debian`): the `ar` crate sliced its GNU name table
    /// at a member's `/<offset>` name unchecked and panicked on an offset past its end.
    #[test]
    fn refuses_extended_member_names() {
        let tar = control_tar();
        for name in ["/70000000000000", "//", "#1/20"] {
            let deb = ar(&[
                ("debian-binary", b"2.0\n"),
                (name, b"xx"),
                ("control.tar", &tar),
            ]);
            assert!(read(&deb).unwrap_err().contains("extended name"), "{name}");
        }
        // Also after the control member, and with a name table claiming gigabytes.
        let deb = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", &tar),
            ("/9", b""),
        ]);
        assert!(read(&deb).unwrap_err().contains("extended name"));
        let mut deb = ar(&[("debian-binary", b"2.0\n"), ("//", b"")]);
        let size = deb.len() - 12;
        deb[size..size + 10].copy_from_slice(b"9999999999");
        assert!(read(&deb).unwrap_err().contains("extended name"));
    }
}

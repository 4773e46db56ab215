//! RPM (RPM registries): a yum/dnf repository with signed metadata.
//!
//! Layout under `<base>/pkg/<account>/<registry>/rpm/`:
//! * `PUT <file>.rpm`: upload; the header is parsed (name, epoch, version, release, arch, provides,
//!   requires, files) and the package's own signatures are kept as they are (Arca signs the
//!   repository metadata, not packages);
//! * `Packages/<name>/<file>.rpm`;
//! * `repodata/repomd.xml`, `repomd.xml.asc` (signed with the registry's OpenPGP key) and
//!   `<sha256>-primary.xml.gz`, `-filelists.xml.gz`, `-other.xml.gz`;
//! * `public.key`: the registry's armored key (`gpgkey=` with `repo_gpgcheck=1`).
//!
//! Repository metadata is generated from the metadata store when a package changed (validated per
//! package revision) and is identical on every server process (timestamps come from the data).

mod proxy;

use crate::formats::setup::{Setup, SetupContext, inline, step, write_private_file};
use std::collections::BTreeMap;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;
use serde_json::{Value, json};

use super::upload::{Body, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver};
use crate::doc_cache::{self as cache, Doc};
use crate::download::serve_file;
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

pub struct Rpm;

#[async_trait]
impl Format for Rpm {
    fn package_type(&self) -> PackageType {
        PackageType::Rpm
    }

    fn signs_metadata(&self) -> bool {
        true
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            id,
            root,
            user,
            art,
            ver,
            ..
        } = c;
        let file = format!("/etc/yum.repos.d/{id}.repo");
        Setup {
            title: "RPM Client Setup",
            sections: vec![
                inline(
                    "Add a .repo file",
                    vec![step(
                        "The repository with its key and credentials (as root; the file holds the token, so only root may read it)",
                        &[(
                            "",
                            write_private_file(
                                &file,
                                &format!(
                                    "[{id}]\nname={id}\nbaseurl={root}\nenabled=1\ngpgcheck=0\nrepo_gpgcheck=1\ngpgkey={root}/public.key\nusername={user}\npassword=<TOKEN>"
                                ),
                            ),
                        )],
                    )],
                ),
                inline(
                    "Upload",
                    vec![step(
                        "Upload with curl",
                        &[(
                            "",
                            format!(
                                "curl --fail-with-body -u {user}:<TOKEN> -T <FILE>.rpm {root}/<FILE>.rpm"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Install (as root)",
                        &[("", format!("dnf install -y {art}-{ver}"))],
                    )],
                ),
            ],
        }
    }

    fn pull_command(&self, _c: &SetupContext, name: &str, version: &str) -> String {
        format!("yum install {name}-{version}")
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let get = req.method == Method::GET || req.method == Method::HEAD;
        if get && req.registry.kind == crate::model::RegistryKind::Proxy {
            return proxied(state, &req, &segs).await;
        }
        match (&req.method, segs.as_slice()) {
            (_, ["public.key"]) if get => super::public_key_response(state, &req.registry).await,
            (_, ["repodata", file]) if get => repodata(state, &req, file).await,
            (_, ["Packages", _, _]) if get => {
                let path = segs.join("/");
                let (_, f) = (Resolver { state })
                    .find_file(&req.registry, &path)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("no package at {path}")))?;
                serve_file(state, &f, &req.method, &req.headers).await
            }
            (&Method::PUT, [file]) if file.ends_with(".rpm") => upload(state, req).await,
            (&Method::PUT, _) => Err(ApiError::bad(
                "file",
                "upload packages as PUT <root>/<file>.rpm",
            )),
            _ => Err(ApiError::not_found("no such RPM repository path")),
        }
    }
}

/// A read of an RPM proxy: the upstream's files byte for byte (see [`proxy`]); the proxy's cache
/// first for immutable files.
async fn proxied(state: &AppState, req: &NativeRequest, segs: &[&str]) -> ApiResult<Response> {
    let proxy = &req.registry;
    let path = segs.join("/");
    let stored = (Resolver { state })
        .find_file(&req.registry, &path)
        .await?
        .map(|(_, f)| f);
    let file = match (segs, stored) {
        (["public.key"], _) => return super::debian::upstream_key_response(proxy),
        (["repodata", file @ ("repomd.xml" | "repomd.xml.asc")], _) => {
            let doc = proxy::repomd(state, proxy, file).await?.ok_or_else(|| {
                ApiError::not_found(format!("repodata/{file} not found upstream"))
            })?;
            let mut resp = (
                [(axum::http::header::CONTENT_TYPE, "application/xml")],
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
        (_, Some(f)) => Some(f),
        (["repodata", file], None) => proxy::repodata(state, proxy, file).await?,
        ([.., last], None) if last.ends_with(".rpm") => proxy::package(state, proxy, &path).await?,
        _ => None,
    };
    let f = file.ok_or_else(|| ApiError::not_found(format!("{path} not found")))?;
    serve_file(state, &f, &req.method, &req.headers).await
}

/// A dependency as primary.xml writes it.
fn dep_json(d: &rpm::Dependency) -> Value {
    let f = d.flags;
    let flags = if f.contains(rpm::DependencyFlags::LE) {
        "LE"
    } else if f.contains(rpm::DependencyFlags::GE) {
        "GE"
    } else if f.contains(rpm::DependencyFlags::EQUAL) {
        "EQ"
    } else if f.contains(rpm::DependencyFlags::LESS) {
        "LT"
    } else if f.contains(rpm::DependencyFlags::GREATER) {
        "GT"
    } else {
        ""
    };
    let (epoch, rest) = match d.version.split_once(':') {
        Some((e, r)) => (e.to_string(), r.to_string()),
        None => ("0".into(), d.version.clone()),
    };
    let (ver, rel) = match rest.rsplit_once('-') {
        Some((v, r)) => (v.to_string(), r.to_string()),
        None => (rest, String::new()),
    };
    let pre = f.intersects(
        rpm::DependencyFlags::PREREQ
            | rpm::DependencyFlags::SCRIPT_PRE
            | rpm::DependencyFlags::SCRIPT_POST,
    );
    json!({"name": d.name, "flags": flags, "epoch": epoch, "ver": ver, "rel": rel, "pre": pre})
}

/// Checks the lead and both header structures the way rpm itself does before the `rpm` crate
/// sees them: that crate indexes its data store with unchecked offsets and counts and panics (or
/// allocates gigabytes) on a header whose entries point outside it. Limits are rpm's own
/// (`hdrchkTags`, `hdrchkData`): fewer than 65536 entries, less than 16 MiB of data.
fn check_layout(r: &mut impl std::io::Read) -> Result<(), String> {
    fn be32(b: &[u8]) -> u32 {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    let io = |e: std::io::Error| format!("not an RPM package: {e}");
    let mut lead = [0u8; 96];
    r.read_exact(&mut lead).map_err(io)?;
    if lead[..4] != [0xed, 0xab, 0xee, 0xdb] {
        return Err("not an RPM package: bad lead magic".into());
    }
    for section in ["signature", "header"] {
        let bad = |m: &str| format!("not an RPM package: {section} {m}");
        let mut intro = [0u8; 16];
        r.read_exact(&mut intro).map_err(io)?;
        if intro[..3] != [0x8e, 0xad, 0xe8] || intro[3] != 1 {
            return Err(bad("has a bad magic"));
        }
        let (count, size) = (be32(&intro[8..12]), be32(&intro[12..16]));
        if count >= 0x1_0000 || size >= 0x100_0000 {
            return Err(bad("is too large"));
        }
        let mut index = vec![0u8; count as usize * 16];
        r.read_exact(&mut index).map_err(io)?;
        let mut store = vec![0u8; size as usize];
        r.read_exact(&mut store).map_err(io)?;
        for e in index.chunks_exact(16) {
            let (kind, offset, n) = (be32(&e[4..8]), be32(&e[8..12]) as usize, be32(&e[12..16]));
            if offset > store.len() {
                return Err(bad("has an entry outside its data"));
            }
            let width: usize = match kind {
                0 => 0,
                1 | 2 | 7 => 1,
                3 => 2,
                4 => 4,
                5 => 8,
                6 | 8 | 9 => {
                    // Strings: `n` (at least one) NUL-terminated strings inside the data.
                    let mut rest = &store[offset..];
                    for _ in 0..n.max(1) {
                        let nul = rest
                            .iter()
                            .position(|&b| b == 0)
                            .ok_or_else(|| bad("has an unterminated string"))?;
                        rest = &rest[nul + 1..];
                    }
                    continue;
                }
                _ => return Err(bad("has an entry of unknown type")),
            };
            if (n as usize)
                .checked_mul(width)
                .and_then(|len| len.checked_add(offset))
                .is_none_or(|end| end > store.len())
            {
                return Err(bad("has an entry outside its data"));
            }
        }
        if section == "signature" {
            // The signature header is padded to a multiple of 8 bytes.
            let mut pad = vec![0u8; (8 - size as usize % 8) % 8];
            r.read_exact(&mut pad).map_err(io)?;
        }
    }
    Ok(())
}

/// Everything the repodata needs from a package header.
pub(crate) fn read_header(path: &std::path::Path) -> Result<Value, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    check_layout(&mut std::io::BufReader::new(file))?;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut reader = std::io::BufReader::new(file);
    let m =
        rpm::PackageMetadata::parse(&mut reader).map_err(|e| format!("not an RPM package: {e}"))?;
    let text = |r: Result<&str, rpm::Error>| r.unwrap_or("").to_string();
    let name = m
        .get_name()
        .map_err(|e| format!("the header has no name: {e}"))?
        .to_string();
    let version = m
        .get_version()
        .map_err(|e| format!("the header has no version: {e}"))?
        .to_string();
    let release = m
        .get_release()
        .map_err(|e| format!("the header has no release: {e}"))?
        .to_string();
    let arch = m
        .get_arch()
        .map_err(|e| format!("the header has no arch: {e}"))?
        .to_string();
    let deps = |r: Result<Vec<rpm::Dependency>, rpm::Error>| -> Vec<Value> {
        r.unwrap_or_default()
            .iter()
            .filter(|d| !d.name.starts_with("rpmlib("))
            .map(dep_json)
            .collect()
    };
    let files: Vec<String> = m
        .get_file_paths()
        .unwrap_or_default()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let offsets = m.get_package_segment_offsets();
    Ok(json!({
        "name": name, "epoch": m.get_epoch().unwrap_or(0), "version": version, "release": release, "arch": arch,
        "summary": text(m.get_summary()), "description": text(m.get_description()), "url": text(m.get_url()),
        "license": text(m.get_license()), "vendor": text(m.get_vendor()), "group": text(m.get_group()),
        "packager": text(m.get_packager()), "buildhost": text(m.get_build_host()), "sourcerpm": text(m.get_source_rpm()),
        "buildtime": m.get_build_time().unwrap_or(0), "installed": m.get_installed_size().unwrap_or(0),
        "headerStart": offsets.header, "headerEnd": offsets.payload,
        "provides": deps(m.get_provides()), "requires": deps(m.get_requires()),
        "conflicts": deps(m.get_conflicts()), "obsoletes": deps(m.get_obsoletes()),
        "files": files,
    }))
}

fn valid_field(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-~^".contains(c))
}

async fn upload(state: &AppState, req: NativeRequest) -> ApiResult<Response> {
    let up = Upload::begin(state, &req, Body::Streamed).await?;
    let staged = up.stage(req.into_body_stream()).await?;
    let header = up.inspect(&staged, "file", read_header).await?;
    let get = |k: &str| {
        header
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (name, version, release, arch) = (get("name"), get("version"), get("release"), get("arch"));
    if ![&name, &version, &release, &arch]
        .iter()
        .all(|f| valid_field(f))
    {
        return Err(ApiError::bad(
            "file",
            format!("invalid name/version/release/arch: {name} {version} {release} {arch}"),
        ));
    }
    let evr = match header.get("epoch").and_then(Value::as_u64).unwrap_or(0) {
        0 => format!("{version}-{release}"),
        e => format!("{e}:{version}-{release}"),
    };
    let file = format!("{name}-{version}-{release}.{arch}.rpm");
    let pkg_path = format!("Packages/{name}/{file}");
    let exists = || {
        ApiError::conflict(format!(
            "{file} already exists and this registry does not allow re-uploads"
        ))
    };
    up.check_new(&format!("{name}:{evr}"), &pkg_path, exists)
        .await?;
    up.record(
        staged,
        FileSpec {
            package: &name,
            version: &format!("{evr}.{arch}"),
            path: &pkg_path,
            name: &file,
            content_type: Some("application/x-rpm"),
            metadata: json!({"header": header}),
        },
        exists,
    )
    .await?;
    Ok((StatusCode::CREATED, format!("{file} added\n")).into_response())
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data))
}

async fn repodata(state: &AppState, req: &NativeRequest, file: &str) -> ApiResult<Response> {
    let (chain, pkgs) = (Resolver { state }).all_packages(&req.registry).await?;
    let key = crate::signing::key_for(&state.db, &req.registry).await?;
    let stamp = format!("{}|{}", cache::stamp(&pkgs), crate::signing::stamp(&key));
    let modified = pkgs.iter().map(|p| p.updated_at).max().unwrap_or(0) / 1000;
    let doc = state
        .docs
        .get_or_build_set(
            &format!("rpm|{}", req.registry.id),
            &stamp,
            file,
            || async {
                Ok::<_, ApiError>(
                    build(state, &chain, modified, &key)
                        .await?
                        .into_iter()
                        .collect(),
                )
            },
        )
        .await?;
    let doc = doc.ok_or_else(|| ApiError::not_found(format!("repodata/{file} does not exist")))?;
    Ok(doc.respond(&req.headers, req.method == Method::HEAD))
}

fn version_xml(h: &Value) -> String {
    format!(
        "<version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
        h.get("epoch").and_then(Value::as_u64).unwrap_or(0),
        escape(h.get("version").and_then(Value::as_str).unwrap_or("")),
        escape(h.get("release").and_then(Value::as_str).unwrap_or(""))
    )
}

fn entries_xml(h: &Value, kind: &str) -> String {
    let list = h
        .get(kind)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        return String::new();
    }
    let mut s = format!("<rpm:{kind}>");
    for d in &list {
        let g = |k: &str| escape(d.get(k).and_then(Value::as_str).unwrap_or("")).into_owned();
        let mut e = format!("<rpm:entry name=\"{}\"", g("name"));
        if !g("flags").is_empty() {
            e.push_str(&format!(
                " flags=\"{}\" epoch=\"{}\" ver=\"{}\"",
                g("flags"),
                g("epoch"),
                g("ver")
            ));
            if !g("rel").is_empty() {
                e.push_str(&format!(" rel=\"{}\"", g("rel")));
            }
        }
        if kind == "requires" && d.get("pre").and_then(Value::as_bool) == Some(true) {
            e.push_str(" pre=\"1\"");
        }
        e.push_str("/>");
        s.push_str(&e);
    }
    s.push_str(&format!("</rpm:{kind}>"));
    s
}

/// Files dnf needs in primary.xml (the rest are in filelists.xml), as createrepo selects them.
fn primary_file(p: &str) -> bool {
    p.starts_with("/etc/") || p.contains("/bin/") || p == "/usr/lib/sendmail"
}

/// The repodata files (by name below `repodata/`).
async fn build(
    state: &AppState,
    chain: &[Registry],
    timestamp: i64,
    key: &crate::signing::RepoKey,
) -> ApiResult<BTreeMap<String, Doc>> {
    let mut rows: Vec<FileRow> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in chain {
        for f in state.db.files_with_prefix(&r.id, "Packages/").await? {
            if seen.insert(f.path.clone()) {
                rows.push(f);
            }
        }
    }
    let n = rows.len();
    let (mut primary, mut filelists, mut other) = (
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{n}\">\n"
        ),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{n}\">\n"
        ),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"{n}\">\n"
        ),
    );
    for f in &rows {
        let h = f.metadata.get("header").cloned().unwrap_or(Value::Null);
        let t = |k: &str| escape(h.get(k).and_then(Value::as_str).unwrap_or("")).into_owned();
        let num = |k: &str| h.get(k).and_then(Value::as_u64).unwrap_or(0);
        let files: Vec<String> = h
            .get("files")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let ver = version_xml(&h);
        let id = format!(
            "pkgid=\"{}\" name=\"{}\" arch=\"{}\"",
            f.sha256,
            t("name"),
            t("arch")
        );
        primary.push_str(&format!(
            "<package type=\"rpm\"><name>{}</name><arch>{}</arch>{ver}<checksum type=\"sha256\" pkgid=\"YES\">{}</checksum>\
             <summary>{}</summary><description>{}</description><packager>{}</packager><url>{}</url>\
             <time file=\"{}\" build=\"{}\"/><size package=\"{}\" installed=\"{}\" archive=\"0\"/><location href=\"{}\"/>\
             <format><rpm:license>{}</rpm:license><rpm:vendor>{}</rpm:vendor><rpm:group>{}</rpm:group><rpm:buildhost>{}</rpm:buildhost>\
             <rpm:sourcerpm>{}</rpm:sourcerpm><rpm:header-range start=\"{}\" end=\"{}\"/>{}{}{}{}",
            t("name"), t("arch"), f.sha256, t("summary"), t("description"), t("packager"), t("url"),
            f.created_at / 1000, num("buildtime"), f.size, num("installed"), escape(&f.path),
            t("license"), t("vendor"), t("group"), t("buildhost"), t("sourcerpm"), num("headerStart"), num("headerEnd"),
            entries_xml(&h, "provides"), entries_xml(&h, "requires"), entries_xml(&h, "conflicts"), entries_xml(&h, "obsoletes"),
        ));
        for p in files.iter().filter(|p| primary_file(p)) {
            primary.push_str(&format!("<file>{}</file>", escape(p)));
        }
        primary.push_str("</format></package>\n");
        filelists.push_str(&format!("<package {id}>{ver}"));
        for p in &files {
            filelists.push_str(&format!("<file>{}</file>", escape(p)));
        }
        filelists.push_str("</package>\n");
        other.push_str(&format!("<package {id}>{ver}</package>\n"));
    }
    primary.push_str("</metadata>\n");
    filelists.push_str("</filelists>\n");
    other.push_str("</otherdata>\n");

    let mut out: BTreeMap<String, Doc> = BTreeMap::new();
    let mut repomd = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n  <revision>{timestamp}</revision>\n"
    );
    for (kind, xml) in [
        ("primary", primary),
        ("filelists", filelists),
        ("other", other),
    ] {
        let gz = crate::archive::gzip(xml.as_bytes()).map_err(|e| ApiError::Internal(e.into()))?;
        let gz_sum = sha256_hex(&gz);
        let name = format!("{gz_sum}-{kind}.xml.gz");
        repomd.push_str(&format!(
            "  <data type=\"{kind}\">\n    <checksum type=\"sha256\">{gz_sum}</checksum>\n    <open-checksum type=\"sha256\">{}</open-checksum>\n    \
             <location href=\"repodata/{name}\"/>\n    <timestamp>{timestamp}</timestamp>\n    <size>{}</size>\n    <open-size>{}</open-size>\n  </data>\n",
            sha256_hex(xml.as_bytes()), gz.len(), xml.len()
        ));
        out.insert(name, Doc::new(gz, "application/gzip"));
    }
    repomd.push_str("</repomd>\n");
    let signature = key.detached(repomd.as_bytes())?;
    out.insert(
        "repomd.xml.asc".into(),
        Doc::new(signature, "application/pgp-signature"),
    );
    out.insert("repomd.xml".into(), Doc::new(repomd, "application/xml"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_entries() {
        let d = rpm::Dependency {
            name: "hello-lib".into(),
            flags: rpm::DependencyFlags::GE,
            version: "1:1.0-2".into(),
        };
        assert_eq!(
            dep_json(&d),
            json!({"name": "hello-lib", "flags": "GE", "epoch": "1", "ver": "1.0", "rel": "2", "pre": false})
        );
        let any = rpm::Dependency {
            name: "/bin/sh".into(),
            flags: rpm::DependencyFlags::ANY,
            version: String::new(),
        };
        assert_eq!(dep_json(&any)["flags"], "");
        assert!(
            primary_file("/usr/bin/hello")
                && primary_file("/etc/x.conf")
                && !primary_file("/usr/share/doc/x")
        );
    }

    /// One header structure: (tag, type, offset, count) entries and the data they point into.
    fn header(entries: &[(u32, u32, u32, u32)], store: &[u8]) -> Vec<u8> {
        let mut out = vec![0x8e, 0xad, 0xe8, 1, 0, 0, 0, 0];
        out.extend((entries.len() as u32).to_be_bytes());
        out.extend((store.len() as u32).to_be_bytes());
        for (tag, kind, offset, count) in entries {
            for v in [tag, kind, offset, count] {
                out.extend(v.to_be_bytes());
            }
        }
        out.extend_from_slice(store);
        out
    }

    /// A package: lead, signature (padded to 8 bytes), then the main header.
    fn package(signature: Vec<u8>, main: Vec<u8>) -> Vec<u8> {
        let mut out = vec![0u8; 96];
        out[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
        let data = u32::from_be_bytes([signature[12], signature[13], signature[14], signature[15]]);
        out.extend(signature);
        out.extend(vec![0u8; (8 - data as usize % 8) % 8]);
        out.extend(main);
        out
    }

    fn read(bytes: &[u8]) -> Result<Value, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.rpm");
        std::fs::write(&path, bytes).unwrap();
        read_header(&path)
    }

    fn nevra_header() -> Vec<u8> {
        // NAME 1000, VERSION 1001, RELEASE 1002 (strings), ARCH 1022.
        header(
            &[
                (1000, 6, 0, 1),
                (1001, 6, 6, 1),
                (1002, 6, 10, 1),
                (1022, 6, 12, 1),
            ],
            b"hello\x001.0\x001\x00noarch\x00",
        )
    }

    #[test]
    fn reads_a_minimal_header() {
        let pkg = package(header(&[(1000, 4, 0, 1)], &[0, 0, 0, 7]), nevra_header());
        let h = read(&pkg).unwrap();
        assert_eq!(
            (&h["name"], &h["version"], &h["release"], &h["arch"]),
            (
                &json!("hello"),
                &json!("1.0"),
                &json!("1"),
                &json!("noarch")
            )
        );
    }

    /// Found by fuzzing (`fuzz/run.sh`, target `rpm`): the `rpm` crate slices its data store at
    /// an entry's offset unchecked and panicked on an offset past the end.
    #[test]
    fn refuses_headers_pointing_outside_their_data() {
        let past_end = package(header(&[(1000, 4, 100, 1)], &[0; 4]), nevra_header());
        assert!(read(&past_end).unwrap_err().contains("outside its data"));
        // Counts that run past the end, overflow, or strings without their NUL.
        let long = package(header(&[(1000, 4, 0, 2)], &[0; 4]), nevra_header());
        assert!(read(&long).unwrap_err().contains("outside its data"));
        let huge = package(header(&[(1000, 5, 0, u32::MAX)], &[0; 8]), nevra_header());
        assert!(read(&huge).unwrap_err().contains("outside its data"));
        let unterminated = package(header(&[(1000, 6, 0, 1)], b"abc"), nevra_header());
        assert!(read(&unterminated).unwrap_err().contains("unterminated"));
        let strings = package(header(&[(1000, 8, 0, 3)], b"a\0b\0"), nevra_header());
        assert!(read(&strings).unwrap_err().contains("unterminated"));
        // The main header is checked as well as the signature.
        let sig = || header(&[(1000, 4, 0, 1)], &[0; 4]);
        let main = header(&[(1000, 6, 9, 1)], b"hello\0");
        assert!(read(&package(sig(), main)).unwrap_err().contains("header"));
        // Sizes beyond rpm's own limits are refused before anything is allocated.
        let mut big = header(&[], &[]);
        big[12..16].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
        assert!(
            read(&package(big, nevra_header()))
                .unwrap_err()
                .contains("too large")
        );
    }
}

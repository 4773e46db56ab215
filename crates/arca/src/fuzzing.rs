//! Entry points for the `cargo fuzz` targets under `fuzz/` (not part of the public API): one
//! function per parser family that reads client bytes, each taking the raw fuzzer input and
//! running it through the same parser calls, in the same order, as the upload or request
//! handler does. Nothing here may panic on its own; a panic is a bug in the parser it calls.
//!
//! Targets whose parser reads a file (archives) write the input to a scratch file first. Targets
//! for a file inside an archive take a leading mode byte: `0` means the rest is the whole archive,
//! anything else means the rest is the inner file, which is wrapped into a well-formed archive so
//! the fuzzer reaches the inner parser without having to learn gzip and tar checksums.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use crate::archive::{Limits, tar_find, tar_gz_find, zip_entry};
use crate::formats;

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A scratch file per process and target, overwritten on every call (archive readers take paths).
fn with_file<T>(tag: &str, data: &[u8], f: impl FnOnce(&Path) -> T) -> T {
    let path: PathBuf =
        std::env::temp_dir().join(format!("arca-fuzz-{}-{tag}", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        // The harness cannot do its job without a scratch file: say so loudly.
        panic!("cannot write the scratch file {}", path.display());
    }
    f(&path)
}

fn split_mode(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(m, rest)| (*m, rest))
}

/// A tar stream holding `data` at `path`.
fn tar_of(path: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut t = tar::Builder::new(&mut out);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if h.set_path(path).is_err() {
            return Vec::new();
        }
        h.set_cksum();
        if t.append(&h, data).is_err() || t.finish().is_err() {
            return Vec::new();
        }
    }
    out
}

fn gzip_fast(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if enc.write_all(data).is_err() {
        return Vec::new();
    }
    enc.finish().unwrap_or_default()
}

/// A `.tar.gz` holding `data` at `path`.
fn tgz_of(path: &str, data: &[u8]) -> Vec<u8> {
    gzip_fast(&tar_of(path, data))
}

/// A zip archive holding `data` at `name` (stored, uncompressed).
fn zip_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    if z.start_file(name, opts).is_err() || z.write_all(data).is_err() {
        return Vec::new();
    }
    z.finish().map(|c| c.into_inner()).unwrap_or_default()
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Targets.

/// OCI image manifests and indexes; the mode byte picks the request's Content-Type.
pub fn oci_manifest(data: &[u8]) {
    let Some((mode, body)) = split_mode(data) else {
        return;
    };
    let content_type = match mode % 5 {
        0 => None,
        1 => Some("application/vnd.oci.image.manifest.v1+json"),
        2 => Some("application/vnd.oci.image.index.v1+json"),
        3 => Some("application/vnd.docker.distribution.manifest.v2+json"),
        _ => Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    };
    let _ = formats::oci::manifests::parse_manifest(body, content_type);
}

/// An npm publish document: the JSON body, its one version, the base64 tarball and the
/// tarball's `package/package.json`.
pub fn npm_publish(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return;
    };
    if !formats::npm::valid_name(name) {
        return;
    }
    let (versions, attachments) = formats::npm::publish_parts(&body);
    let Some((version, manifest)) = versions.into_iter().next() else {
        return;
    };
    let Ok(parsed) = semver::Version::parse(&version) else {
        return;
    };
    if parsed.to_string() != version
        || manifest.get("name").and_then(Value::as_str) != Some(name)
        || manifest.get("version").and_then(Value::as_str) != Some(version.as_str())
    {
        return;
    }
    let file_name = format!("{}-{version}.tgz", formats::npm::basename(name));
    let Some(data) = attachments
        .iter()
        .find(|(k, _)| k.ends_with(&file_name) || attachments.len() == 1)
        .and_then(|(_, v)| v.get("data"))
        .and_then(Value::as_str)
    else {
        return;
    };
    let Ok(tgz) = base64::engine::general_purpose::STANDARD.decode(data.trim()) else {
        return;
    };
    if let Ok(Some((_, pj))) = tar_gz_find(
        &tgz[..],
        |p| p.components().count() == 2 && p.ends_with("package.json"),
        Limits::default(),
    ) {
        let _ = serde_json::from_slice::<Value>(&pj);
    }
}

/// PyPI core metadata: mode 0 a wheel, 1 a `.tar.gz` sdist, 2 a `.zip` sdist (whole archives),
/// anything else the METADATA text itself, wrapped in a wheel.
pub fn pypi_metadata(data: &[u8]) {
    use formats::pypi::{Dist, parse_core_metadata, read_core_metadata};
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let (archive, dist, filename) = match mode {
        0 => (rest.to_vec(), Dist::Wheel, "demo-1.0-py3-none-any.whl"),
        1 => (rest.to_vec(), Dist::Sdist, "demo-1.0.tar.gz"),
        2 => (rest.to_vec(), Dist::Sdist, "demo-1.0.zip"),
        _ => (
            zip_of("demo-1.0.dist-info/METADATA", rest),
            Dist::Wheel,
            "demo-1.0-py3-none-any.whl",
        ),
    };
    let Ok(meta) = with_file("pypi", &archive, |p| read_core_metadata(p, &dist, filename)) else {
        return;
    };
    let fields = parse_core_metadata(&meta);
    for key in ["name", "version"] {
        for v in fields.get(key).into_iter().flatten() {
            let _ = formats::pypi::valid_name(v);
            let _ = formats::pypi::normalize(v);
            let _ = formats::pypi::normalize_version(key, v);
        }
    }
}

/// PyPI uploads: a `multipart/form-data` body (boundary `X`) read with the upload's reader; the
/// `content` part's file name and the `name` / `version` fields go through their parsers.
pub fn pypi_multipart(data: &[u8]) {
    let body = bytes::Bytes::copy_from_slice(data);
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, "X");
    futures::executor::block_on(async {
        while let Ok(Some(mut field)) = multipart.next_field().await {
            let name = field.name().unwrap_or("").to_string();
            if let Some(f) = field.file_name() {
                let _ = formats::pypi::parse_filename(f);
            }
            let mut text = Vec::new();
            while let Ok(Some(chunk)) = field.chunk().await {
                text.extend_from_slice(&chunk);
            }
            let value = String::from_utf8_lossy(&text);
            match name.as_str() {
                "name" => {
                    let _ = formats::pypi::valid_name(&value);
                    let _ = formats::pypi::normalize(&value);
                }
                "version" => {
                    let _ = formats::pypi::normalize_version("version", &value);
                }
                _ => {}
            }
        }
    });
}

/// A Cargo publish body: length-prefixed JSON metadata and `.crate`, the crate's `Cargo.toml`.
pub fn cargo_publish(data: &[u8]) {
    let Ok((meta, krate)) = formats::cargo::split_publish(bytes::Bytes::copy_from_slice(data))
    else {
        return;
    };
    for d in meta
        .get("deps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = formats::cargo::index_dep(d);
    }
    let (Some(name), Some(vers)) = (
        meta.get("name").and_then(Value::as_str),
        meta.get("vers").and_then(Value::as_str),
    ) else {
        return;
    };
    if !formats::cargo::valid_name(name) || semver::Version::parse(vers).is_err() {
        return;
    }
    let manifest_path = format!("{name}-{vers}/Cargo.toml");
    if let Ok(Some((_, toml))) = tar_gz_find(
        &krate[..],
        |p| p.to_str() == Some(manifest_path.as_str()),
        Limits::default(),
    ) {
        let _ = toml::from_str::<toml::Value>(&String::from_utf8_lossy(&toml));
    }
}

/// Maven: mode 0 a jar (its plugin descriptor), anything else `path\npom`: the request path
/// and a POM checked against it.
pub fn maven(data: &[u8]) {
    use formats::maven::{Target, check_pom, file_parts, parse, plugin_descriptor};
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    if mode == 0 {
        let _ = with_file("maven", rest, plugin_descriptor);
        return;
    }
    let (path, pom) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let segs: Vec<String> = text(path).split('/').map(str::to_string).collect();
    let (group, artifact, version) = match parse(&segs) {
        Ok(Target::File {
            group,
            artifact,
            version,
            filename,
            ..
        }) => {
            let _ = file_parts(&artifact, &version, &filename);
            (group, artifact, version)
        }
        _ => ("g".to_string(), "a".to_string(), "1".to_string()),
    };
    let _ = check_pom(pom, &group, &artifact, &version);
}

/// NuGet: mode 0 a `.nupkg` (zip), anything else a `.nuspec`; then its version and ranges.
pub fn nuget(data: &[u8]) {
    use formats::nuget::{nuspec, version};
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let xml = if mode == 0 {
        match with_file("nuget", rest, formats::nuget::read_manifest) {
            Ok(x) => x,
            Err(_) => return,
        }
    } else {
        rest.to_vec()
    };
    if let Ok(n) = nuspec::parse(&xml) {
        let _ = (
            n.version.normalized(),
            n.version.full(),
            n.version.is_semver2(),
        );
    }
    // The same bytes as a version and a range (the parsers also see untrusted query strings).
    let s = text(rest);
    if let Some(v) = version::NuVersion::parse(&s) {
        let _ = (v.normalized(), v.full(), v.is_prerelease());
        let _ = v.cmp(&v);
    }
    let _ = version::normalize_range(&s);
}

/// Composer: mode 0 a package zip, anything else its `composer.json`; name and version checks.
pub fn composer(data: &[u8]) {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let archive = if mode == 0 {
        rest.to_vec()
    } else {
        zip_of("pkg/composer.json", rest)
    };
    let Ok(raw) = with_file("composer", &archive, formats::composer::read_composer_json) else {
        return;
    };
    let Ok(manifest) = serde_json::from_slice::<serde_json::Map<String, Value>>(&raw) else {
        return;
    };
    if let Some(name) = manifest.get("name").and_then(Value::as_str) {
        let _ = formats::composer::valid_name(name);
    }
    if let Some(version) = manifest.get("version").and_then(Value::as_str) {
        let _ = formats::composer::normalize_version(version);
    }
}

/// Helm: mode 0 a chart archive, 1 a provenance file, anything else `Chart.yaml` (wrapped).
pub fn helm(data: &[u8]) {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    if mode == 1 {
        let _ = formats::helm::prov_name_from(rest);
        return;
    }
    let chart = if mode == 0 {
        rest.to_vec()
    } else {
        tgz_of("demo/Chart.yaml", rest)
    };
    let Ok(meta) = formats::helm::chart_metadata(&chart[..]) else {
        return;
    };
    if let Some(name) = meta.get("name").and_then(Value::as_str) {
        let _ = formats::helm::valid_chart_name(name);
    }
    if let Some(version) = meta.get("version").and_then(Value::as_str) {
        let _ = semver::Version::parse(version.trim_start_matches('v'));
    }
}

/// Debian: mode 0 a whole `.deb` (ar), 1 a `control.tar.xz` member, anything else the `control`
/// text in a `control.tar.gz`; then the stanza and its Package/Version/Architecture checks.
pub fn debian(data: &[u8]) {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let deb = match mode {
        0 => rest.to_vec(),
        1 => deb_of("control.tar.xz", rest),
        _ => deb_of("control.tar.gz", &tgz_of("./control", rest)),
    };
    let Ok(control) = with_file("debian", &deb, formats::debian::read_control) else {
        return;
    };
    check_stanza(&control);
}

fn check_stanza(control: &str) {
    let Ok(fields) = crate::dcf::parse(control) else {
        return;
    };
    for (k, v) in &fields {
        let _ = crate::dcf::folded(v);
        match k.to_ascii_lowercase().as_str() {
            "package" | "source" => {
                let _ = formats::debian::valid_package(v);
            }
            "version" => {
                let _ = formats::debian::valid_version(v);
            }
            "architecture" => {
                let _ = formats::debian::valid_word(v);
            }
            _ => {}
        }
    }
}

/// A `.deb`: `debian-binary` then one control member.
fn deb_of(member: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut b = ar::Builder::new(&mut out);
        let bin = ar::Header::new(b"debian-binary".to_vec(), 4);
        if b.append(&bin, &b"2.0\n"[..]).is_err() {
            return Vec::new();
        }
        let h = ar::Header::new(member.as_bytes().to_vec(), data.len() as u64);
        if b.append(&h, data).is_err() {
            return Vec::new();
        }
    }
    out
}

/// An RPM package's lead, signature and header.
pub fn rpm(data: &[u8]) {
    let _ = with_file("rpm", data, formats::rpm::read_header);
}

/// CRAN: mode 0 a source package (`.tar.gz`), anything else its `DESCRIPTION` (wrapped); the
/// upload's file name rules see the same bytes.
pub fn cran(data: &[u8]) {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let _ = formats::cran::split_file(&text(rest));
    let archive = if mode == 0 {
        rest.to_vec()
    } else {
        tgz_of("demo/DESCRIPTION", rest)
    };
    let found = with_file("cran", &archive, |p| {
        let f = std::fs::File::open(p).map_err(|e| e.to_string())?;
        tar_gz_find(
            f,
            |p| p.to_str() == Some("demo/DESCRIPTION"),
            Limits::default(),
        )
    });
    if let Ok(Some((_, d))) = found
        && let Ok(text) = String::from_utf8(d)
        && let Ok(fields) = crate::dcf::parse(&text)
    {
        for (_, v) in &fields {
            let _ = crate::dcf::folded(v);
        }
    }
}

/// OneScript (OPM): mode 0 a package zip, 1 `opm-metadata.xml`, anything else a `packagedef`.
pub fn opm(data: &[u8]) {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    match mode {
        0 => {
            let _ = with_file("opm", rest, formats::opm::read_identity);
        }
        1 => {
            let _ = formats::opm::from_metadata(rest);
        }
        _ => {
            let _ = formats::opm::from_packagedef(&text(rest));
        }
    }
}

/// The archive readers themselves: mode 0 `.tar.gz`, 1 `.tar.xz`, 2 plain tar, anything else zip.
pub fn archive(data: &[u8]) {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let limits = Limits {
        entry: 1 << 20,
        total: 16 << 20,
        entries: 1000,
    };
    let want = |p: &Path| p.ends_with("wanted");
    match mode {
        0 => {
            let _ = tar_gz_find(rest, want, limits);
        }
        1 => {
            let _ = tar_find(liblzma::read::XzDecoder::new(rest), want, limits);
        }
        2 => {
            let _ = tar_find(rest, want, limits);
        }
        _ => {
            let _ = with_file("zip", rest, |p| {
                zip_entry(
                    p,
                    |names| names.first().map(|n| n.to_string()).ok_or_default(),
                    1 << 20,
                )
            });
        }
    }
}

trait OkOrDefault<T> {
    fn ok_or_default(self) -> Result<T, String>;
}

impl<T> OkOrDefault<T> for Option<T> {
    fn ok_or_default(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

/// `Range` headers of downloads (against a length from the first 8 bytes) and OCI upload
/// `Content-Range` headers.
pub fn range(data: &[u8]) {
    let (len, header) = if data.len() >= 8 {
        let mut n = [0u8; 8];
        n.copy_from_slice(&data[..8]);
        (u64::from_le_bytes(n), &data[8..])
    } else {
        (0, data)
    };
    let header = text(header);
    if let Ok(Some((a, b))) = crate::download::parse_range(&header, len) {
        // What serve_blob relies on: a non-empty range inside the body.
        assert!(a < b && b <= len, "range {a}..{b} outside 0..{len}");
    }
    let _ = formats::oci::blobs::content_range_start(&header);
}

/// Registry and space refs of the management APIs, OCI repository names, tags and digests.
pub fn refs(data: &[u8]) {
    let s = text(data);
    if let Ok((r, _rest)) = crate::api::harness::split_ref(&s) {
        let _ = crate::api::harness::split_registry_ref(&r);
    }
    let _ = crate::api::harness::requests::strip_terminator(&s);
    if let Ok(after) = crate::api::harness::raw_after_artifact(&s) {
        let _ = crate::api::harness::split_ref(&after);
    }
    let _ = crate::store::scopes::validate_path("ref", &s);
    let _ = s.split('/').all(formats::oci::valid_component);
    let _ = formats::oci::parse_digest(&s);
    let _ = formats::oci::manifests::is_digest(&s);
    let _ = formats::oci::manifests::valid_tag(&s);
}

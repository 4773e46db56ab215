//! Reading one file out of an uploaded archive, safely: sizes are capped (decompression bombs),
//! and archives with absolute or `..` paths are refused outright.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Limits for scanning an archive.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted size of the wanted entry.
    pub entry: u64,
    /// Most decompressed bytes read while scanning.
    pub total: u64,
    /// Most entries looked at.
    pub entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            entry: 8 << 20,
            total: 1 << 30,
            entries: 100_000,
        }
    }
}

/// Stops reading after `left` bytes with an error (not a silent truncation).
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other(
                "archive expands beyond the size limit",
            ));
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn safe(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Finds the first entry of a `.tar.gz` stream for which `want` is true and returns its path and
/// bytes. `Err` explains what is wrong with the archive.
pub fn tar_gz_find(
    reader: impl Read,
    want: impl Fn(&Path) -> bool,
    limits: Limits,
) -> Result<Option<(PathBuf, Vec<u8>)>, String> {
    tar_find(flate2::read::GzDecoder::new(reader), want, limits)
}

/// [`tar_gz_find`] over an already decompressed (or differently compressed) tar stream.
pub fn tar_find(
    decoded: impl Read,
    want: impl Fn(&Path) -> bool,
    limits: Limits,
) -> Result<Option<(PathBuf, Vec<u8>)>, String> {
    let mut archive = tar::Archive::new(Capped {
        inner: decoded,
        left: limits.total,
    });
    let entries = archive
        .entries()
        .map_err(|e| format!("not a compressed tar archive: {e}"))?;
    for (i, entry) in entries.enumerate() {
        if i >= limits.entries {
            return Err(format!("more than {} entries", limits.entries));
        }
        let entry = entry.map_err(|e| format!("not a valid compressed tar archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        if !safe(&path) {
            return Err(format!("unsafe entry path '{}'", path.display()));
        }
        if want(&path) {
            if entry.size() > limits.entry {
                return Err(format!(
                    "'{}' is larger than {} bytes",
                    path.display(),
                    limits.entry
                ));
            }
            let mut buf = Vec::with_capacity(entry.size() as usize);
            entry
                .take(limits.entry)
                .read_to_end(&mut buf)
                .map_err(|e| format!("reading '{}': {e}", path.display()))?;
            return Ok(Some((path, buf)));
        }
    }
    Ok(None)
}

/// Reads one entry of a zip archive, at most `limit` bytes: `select` picks its name from all
/// the archive's names (or says why none fits). Nothing is extracted to disk.
pub fn zip_entry(
    path: &Path,
    select: impl FnOnce(Vec<&str>) -> Result<String, String>,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("the upload is not a zip archive: {e}"))?;
    let name = select(zip.file_names().collect())?;
    let entry = zip.by_name(&name).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("reading {name}: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("{name} is larger than {limit} bytes"));
    }
    Ok(out)
}

/// Gzip-compresses a generated index (Packages.gz, PACKAGES.gz, repodata).
pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data)?;
    enc.finish()
}

/// Xz-compresses a generated index (Packages.xz).
pub fn xz(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(data)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
            let mut t = tar::Builder::new(gz);
            for (p, data) in entries {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                // set_path refuses '..'; write the raw name to build hostile archives.
                let name = h.as_old_mut().name.as_mut();
                name[..p.len()].copy_from_slice(p.as_bytes());
                h.set_cksum();
                t.append(&h, *data).unwrap();
            }
            t.into_inner().unwrap().finish().unwrap();
        }
        out
    }

    #[test]
    fn finds_entries_and_refuses_traversal_and_bombs() {
        let a = tgz(&[("package/README", b"r"), ("package/package.json", b"{}")]);
        let (p, data) = tar_gz_find(&a[..], |p| p.ends_with("package.json"), Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.to_str().unwrap(), data.as_slice()),
            ("package/package.json", &b"{}"[..])
        );
        assert_eq!(
            tar_gz_find(&a[..], |p| p.ends_with("nope"), Limits::default()).unwrap(),
            None
        );
        let evil = tgz(&[("../../etc/passwd", b"x")]);
        assert!(
            tar_gz_find(&evil[..], |_| true, Limits::default())
                .unwrap_err()
                .contains("unsafe")
        );
        let big = tgz(&[("a", &vec![0u8; 100_000]), ("b", b"x")]);
        assert!(
            tar_gz_find(
                &big[..],
                |p| p.ends_with("b"),
                Limits {
                    total: 50_000,
                    ..Limits::default()
                }
            )
            .is_err()
        );
        assert!(tar_gz_find(&b"not gzip"[..], |_| true, Limits::default()).is_err());
    }
}

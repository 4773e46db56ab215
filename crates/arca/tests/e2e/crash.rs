//! The crash test: 100 concurrent uploads in five formats (generic, Maven, npm, PyPI, OCI blobs),
//! the server killed with SIGKILL while many of them are still sending, then restarted on the same
//! data directory and database. Every upload the server acknowledged must download byte-identical,
//! no upload may be visible half-written, and after `arca gc --grace-secs 0` the blob store must
//! hold exactly the blobs the database references: as many files as distinct referenced blobs,
//! and as many bytes as their recorded sizes add up to (upload sessions live apart and are not
//! counted).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use serde_json::json;
use sha2::Digest;

use crate::both_backends;
use crate::common::{Backend, Server};

const UPLOADS: usize = 100;
/// Kill once this many uploads were acknowledged: enough to check, with many still in flight.
const KILL_AFTER_ACKS: usize = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Generic,
    Maven,
    Npm,
    Pypi,
    Oci,
}

/// One upload: how to send it and where its content is read back.
struct Upload {
    format: Format,
    method: reqwest::Method,
    path: String,
    content_type: String,
    /// The request body.
    body: Vec<u8>,
    /// What a download of `download` must return.
    content: Vec<u8>,
    download: String,
}

/// Deterministic, incompressible bytes (xorshift), different for every seed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn npm_tarball(name: &str, payload: &[u8]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let manifest = json!({"name": name, "version": "1.0.0"}).to_string();
    for (path, data) in [
        ("package/package.json", manifest.as_bytes()),
        ("package/data.bin", payload),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn wheel(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(format!("{name}-1.0.dist-info/METADATA"), opts)
        .unwrap();
    write!(zip, "Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n").unwrap();
    zip.start_file(format!("{name}/data.bin"), opts).unwrap();
    zip.write_all(payload).unwrap();
    zip.finish().unwrap().into_inner()
}

fn multipart(boundary: &str, fields: &[(&str, &str)], file: (&str, &[u8])) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        write!(
            b,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        )
        .unwrap();
    }
    write!(b, "--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n", file.0).unwrap();
    b.extend_from_slice(file.1);
    write!(b, "\r\n--{boundary}--\r\n").unwrap();
    b
}

fn upload(i: usize) -> Upload {
    // 64 KiB to 1 MiB, so that uploads take different times.
    let payload = noise(i as u64 + 1, (64 << 10) + (i * 9973 % (960 << 10)));
    let octets = "application/octet-stream".to_string();
    match i % 5 {
        0 => Upload {
            format: Format::Generic,
            method: reqwest::Method::PUT,
            path: format!("/pkg/acme/gen/generic/p{i}/1.0/f.bin"),
            content_type: octets,
            content: payload.clone(),
            body: payload,
            download: format!("/pkg/acme/gen/generic/p{i}/1.0/f.bin"),
        },
        1 => {
            let path = format!("/pkg/acme/mvn/maven/com/acme/lib{i}/1.0/lib{i}-1.0.jar");
            Upload {
                format: Format::Maven,
                method: reqwest::Method::PUT,
                path: path.clone(),
                content_type: octets,
                content: payload.clone(),
                body: payload,
                download: path,
            }
        }
        2 => {
            let name = format!("crash{i}");
            let tgz = npm_tarball(&name, &payload);
            let doc = json!({"name": name, "dist-tags": {"latest": "1.0.0"},
                "versions": {"1.0.0": {"name": name, "version": "1.0.0", "dist": {}}},
                "_attachments": {format!("{name}-1.0.0.tgz"): {"content_type": "application/octet-stream",
                    "data": base64::engine::general_purpose::STANDARD.encode(&tgz), "length": tgz.len()}}});
            Upload {
                format: Format::Npm,
                method: reqwest::Method::PUT,
                path: format!("/pkg/acme/node/npm/{name}"),
                content_type: "application/json".into(),
                body: doc.to_string().into_bytes(),
                download: format!("/pkg/acme/node/npm/{name}/-/{name}-1.0.0.tgz"),
                content: tgz,
            }
        }
        3 => {
            let name = format!("crash{i}");
            let file = format!("{name}-1.0-py3-none-any.whl");
            let whl = wheel(&name, &payload);
            let boundary = format!("crashboundary{i}");
            let sha = hex::encode(sha2::Sha256::digest(&whl));
            let body = multipart(
                &boundary,
                &[
                    (":action", "file_upload"),
                    ("name", &name),
                    ("version", "1.0"),
                    ("sha256_digest", &sha),
                ],
                (&file, &whl),
            );
            Upload {
                format: Format::Pypi,
                method: reqwest::Method::POST,
                path: "/pkg/acme/py/python/".into(),
                content_type: format!("multipart/form-data; boundary={boundary}"),
                body,
                download: format!("/pkg/acme/py/python/files/{name}/1.0/{file}"),
                content: whl,
            }
        }
        _ => {
            let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&payload)));
            Upload {
                format: Format::Oci,
                method: reqwest::Method::POST,
                path: format!("/v2/acme/dock/img{i}/blobs/uploads/?digest={digest}"),
                content_type: octets,
                content: payload.clone(),
                body: payload,
                download: format!("/v2/acme/dock/img{i}/blobs/{digest}"),
            }
        }
    }
}

/// Sends an upload as a slow stream of 16 KiB chunks; true when the server acknowledged it.
async fn send(
    s_client: reqwest::Client,
    base: String,
    token: String,
    i: usize,
    u: Arc<Upload>,
) -> bool {
    // Staggered starts, and every fourth upload dawdles, so that the kill finds uploads at every
    // stage: not started, sending, being committed.
    tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
    let pause = Duration::from_millis(if i % 4 == 3 { 25 } else { 2 });
    let chunks: Vec<Vec<u8>> = u.body.chunks(16 << 10).map(<[u8]>::to_vec).collect();
    let stream = futures::stream::iter(chunks).then(move |c| async move {
        tokio::time::sleep(pause).await;
        Ok::<_, std::io::Error>(c)
    });
    let r = s_client
        .request(u.method.clone(), format!("{base}{}", u.path))
        .header("x-api-key", &token)
        .header("content-type", &u.content_type)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            // Anything the server answered before it died must be a success.
            assert!(
                status.is_success(),
                "upload {i} ({:?}): {status} {text}",
                u.format
            );
            true
        }
        // The connection died with the server.
        Err(_) => false,
    }
}

/// Files (and their bytes) under a directory, recursively.
fn disk_usage(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let mut total = (0, 0);
    for e in entries.flatten() {
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            let (n, b) = disk_usage(&e.path());
            total = (total.0 + n, total.1 + b);
        } else {
            total = (total.0 + 1, total.1 + meta.len());
        }
    }
    total
}

/// The distinct blobs the database references (files of any registry, OCI links): count and the
/// sum of their recorded sizes.
async fn referenced(database_url: &str) -> (u64, u64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .unwrap();
    let row: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs WHERE sha256 IN \
         (SELECT sha256 FROM files UNION SELECT sha256 FROM oci_blobs)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let missing: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM (SELECT sha256 FROM files UNION SELECT sha256 FROM oci_blobs) r \
         WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = r.sha256)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(missing.0, 0, "references to blobs without a blob row");
    pool.close().await;
    (row.0 as u64, row.1 as u64)
}

/// Downloads every upload: acknowledged ones must be intact, others absent or whole.
async fn check_visible(s: &Server, uploads: &[Arc<Upload>], acked: &[bool], formats: &[Format]) {
    for (i, u) in uploads.iter().enumerate() {
        if !formats.contains(&u.format) {
            continue;
        }
        let r = s.get(&u.download).send().await.unwrap();
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        if acked[i] {
            assert_eq!(
                status, 200,
                "acknowledged upload {i} ({:?}) is gone",
                u.format
            );
        }
        if status == 200 {
            assert!(
                bytes[..] == u.content[..],
                "upload {i} ({:?}, acknowledged: {}) is visible with {} of {} bytes, or different ones",
                u.format,
                acked[i],
                bytes.len(),
                u.content.len()
            );
        } else {
            assert_eq!(status, 404, "upload {i} ({:?})", u.format);
        }
    }
}

/// The artifacts each registry lists are exactly the uploads that download (no package without
/// its file).
async fn check_listed(s: &Server, uploads: &[Arc<Upload>]) {
    for (reg, format) in [
        ("gen", Format::Generic),
        ("mvn", Format::Maven),
        ("node", Format::Npm),
        ("py", Format::Pypi),
    ] {
        let (st, v) = crate::common::call(s.get(&format!(
            "/har/api/v1/registry/acme/{reg}/+/artifacts?size=100"
        )))
        .await;
        assert_eq!(st, 200, "{v}");
        let mut listed: Vec<String> = v["data"]["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        listed.sort();
        let mut visible = Vec::new();
        for (i, u) in uploads.iter().enumerate() {
            if u.format == format && s.get(&u.download).send().await.unwrap().status() == 200 {
                visible.push(match format {
                    Format::Generic => format!("p{i}"),
                    Format::Maven => format!("com.acme:lib{i}"),
                    _ => format!("crash{i}"),
                });
            }
        }
        visible.sort();
        assert_eq!(
            listed, visible,
            "{reg}: listed artifacts vs downloadable uploads"
        );
    }
}

async fn kill9_during_uploads_loses_and_leaks_nothing(b: Backend) {
    let mut s = Server::start(b).await;
    for (ident, pt) in [
        ("gen", "GENERIC"),
        ("mvn", "MAVEN"),
        ("node", "NPM"),
        ("py", "PYTHON"),
        ("dock", "DOCKER"),
    ] {
        s.harness_registry(
            "acme",
            json!({"identifier": ident, "packageType": pt, "parentRef": "acme"}),
        )
        .await;
    }
    let uploads: Vec<Arc<Upload>> = (0..UPLOADS).map(|i| Arc::new(upload(i))).collect();
    let acks = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, u) in uploads.iter().enumerate() {
        let (client, base, token, u, acks) = (
            s.client.clone(),
            s.base.clone(),
            s.token.clone(),
            u.clone(),
            acks.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let ok = send(client, base, token, i, u).await;
            if ok {
                acks.fetch_add(1, Ordering::SeqCst);
            }
            ok
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while acks.load(Ordering::SeqCst) < KILL_AFTER_ACKS {
        assert!(std::time::Instant::now() < deadline, "uploads too slow");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    s.kill9();
    let mut acked = Vec::new();
    for t in tasks {
        acked.push(t.await.unwrap());
    }
    let n_acked = acked.iter().filter(|a| **a).count();
    assert!(
        (KILL_AFTER_ACKS..UPLOADS).contains(&n_acked),
        "the kill came mid-flight: {n_acked} of {UPLOADS} acknowledged"
    );

    // Restart on the same data and database.
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let (database_url, token) = (s.database_url.clone(), s.token.clone());
    drop(s);
    let s = Server::start_with(dir, database_url, &[("ARCA_ADMIN_TOKEN", &token)]).await;
    let all = [
        Format::Generic,
        Format::Maven,
        Format::Npm,
        Format::Pypi,
        Format::Oci,
    ];
    check_visible(&s, &uploads, &acked, &all).await;
    check_listed(&s, &uploads).await;

    let out = s.cli(&["gc", "--grace-secs", "0"]);
    let blobs = s.data_dir().join("blobs");
    let on_disk = disk_usage(&blobs.join("sha256"));
    let expected = referenced(&s.database_url).await;
    assert_eq!(
        on_disk, expected,
        "blob files and bytes on disk vs distinct referenced blobs and their sizes (gc said: {out})"
    );
    for leftovers in ["tmp", "quarantine"] {
        assert_eq!(
            disk_usage(&blobs.join(leftovers)).0,
            0,
            "{leftovers}: {out}"
        );
    }
    check_listed(&s, &uploads).await;
    // The collector kept every file: OCI blobs no manifest took up are garbage by design.
    check_visible(&s, &uploads, &acked, &all[..4]).await;
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

both_backends!(kill9_during_uploads_loses_and_leaks_nothing);

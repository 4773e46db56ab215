//! The upload pipeline's order, seen from a client: whatever can be refused from the headers
//! (no write permission, a declared size over the cap) is refused before the body is read, so
//! that a caller who may only read cannot make the server buffer or store anything; and what is
//! refused for what the body holds was only staged, so it leaves nothing in the blob store.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both_backends;
use crate::common::{Backend, Server};

/// Sends the head of a request declaring `content_length` bytes, then only 4 KiB of them, and
/// returns the status the server answers with while the rest is still unsent. A server that
/// read the body first would wait for the missing bytes forever (the timeout only turns that
/// hang into a failure; the assertion is on the status).
pub(crate) async fn status_with_body_unsent(
    s: &Server,
    (method, path): (&str, &str),
    auth: Option<&str>,
    content_length: u64,
) -> u16 {
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {content_length}\r\n"
    );
    if let Some(token) = auth {
        head.push_str(&format!("x-api-key: {token}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&[0u8; 4096]).await.unwrap();
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed without a response");
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read)
        .await
        .unwrap_or_else(|_| panic!("{path}: no response while the body is unsent"));
    let line = String::from_utf8_lossy(&got);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line}"))
}

async fn uploads_refused_before_the_body_is_read(b: Backend) {
    let s = Server::start(b).await;
    for (ident, pt) in [
        ("charts", "HELM"),
        ("node", "NPM"),
        ("crates", "CARGO"),
        ("mvn", "MAVEN"),
    ] {
        s.harness_registry(
            "acme",
            json!({"identifier": ident, "packageType": pt, "parentRef": "acme", "isPublic": true,
                   "config": {"type": "VIRTUAL"}}),
        )
        .await;
    }
    let reader = s.user_with_role("reader", "reader", "acme");
    let writer = s.user_with_role("writer", "deployer", "acme");
    const TEN_GIB: u64 = 10 << 30;
    for path in [
        ("PUT", "/pkg/acme/charts/helm/big-1.0.0.tgz"),
        ("PUT", "/pkg/acme/charts/helm/big-1.0.0.tgz.prov"),
        ("POST", "/pkg/acme/charts/helm/api/charts"),
        ("POST", "/pkg/acme/charts/helm/api/prov"),
        ("PUT", "/pkg/acme/node/npm/big"),
        ("PUT", "/pkg/acme/crates/cargo/api/v1/crates/new"),
        ("PUT", "/pkg/acme/mvn/maven/com/acme/big/1.0/big-1.0.jar"),
        ("PUT", "/pkg/acme/mvn/maven/com/acme/big/1.0/big-1.0.pom"),
    ] {
        // Anonymous callers may read these public registries, not write them.
        assert_eq!(
            status_with_body_unsent(&s, path, None, TEN_GIB).await,
            401,
            "{path:?}"
        );
        assert_eq!(
            status_with_body_unsent(&s, path, Some(&reader), TEN_GIB).await,
            403,
            "{path:?}"
        );
    }
    // A writer's body is parsed in memory here: its declared size is held against the in-memory
    // cap, not the upload cap.
    for path in [
        ("PUT", "/pkg/acme/charts/helm/big-1.0.0.tgz"),
        ("POST", "/pkg/acme/charts/helm/api/charts"),
        ("PUT", "/pkg/acme/crates/cargo/api/v1/crates/new"),
        ("PUT", "/pkg/acme/mvn/maven/com/acme/big/1.0/big-1.0.pom"),
    ] {
        assert_eq!(
            status_with_body_unsent(&s, path, Some(&writer), 300 << 20).await,
            413,
            "{path:?}"
        );
    }
    // npm's document carries the tarball in base64: up to 4/3 of the upload cap, plus the rest.
    assert_eq!(
        status_with_body_unsent(
            &s,
            ("PUT", "/pkg/acme/node/npm/big"),
            Some(&writer),
            2 * TEN_GIB
        )
        .await,
        413
    );
    // Nothing was stored.
    let (st, v) = crate::common::call(s.get("/har/api/v1/spaces/acme/+/artifacts")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["itemCount"], 0, "{v}");
}

/// Files under `<data dir>/blobs/sha256`, recursively.
fn stored_blobs(s: &Server) -> usize {
    let root = s.data_dir().join("blobs/sha256");
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return 0;
    };
    dirs.flatten()
        .map(|d| std::fs::read_dir(d.path()).map(|f| f.count()).unwrap_or(1))
        .sum()
}

/// Uploads refused by what the body holds were staged, never committed: the blob store is left
/// as it was.
async fn refused_uploads_leave_no_blob(b: Backend) {
    let s = Server::start(b).await;
    for (ident, pt) in [
        ("cran", "CRAN"),
        ("rpm", "RPM"),
        ("deb", "DEBIAN"),
        ("php", "COMPOSER"),
        ("os", "OPM"),
        ("nu", "NUGET"),
        ("charts", "HELM"),
        ("crates", "CARGO"),
    ] {
        s.harness_registry(
            "acme",
            json!({"identifier": ident, "packageType": pt, "parentRef": "acme", "config": {"type": "VIRTUAL"}}),
        )
        .await;
    }
    // Not an archive of any kind; each body differs so no upload could deduplicate another.
    let garbage = |i: u8| vec![i; 3000];
    let mut cargo_body = Vec::new();
    let meta = br#"{"name":"x","vers":"1.0.0","deps":[]}"#;
    cargo_body.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    cargo_body.extend_from_slice(meta);
    cargo_body.extend_from_slice(&3000u32.to_le_bytes());
    cargo_body.extend_from_slice(&garbage(9));
    let requests = [
        (
            "PUT",
            "/pkg/acme/cran/cran/src/contrib/x_1.0.tar.gz",
            garbage(1),
        ),
        ("PUT", "/pkg/acme/rpm/rpm/x-1.0-1.noarch.rpm", garbage(2)),
        ("PUT", "/pkg/acme/deb/debian/x_1.0_all.deb", garbage(3)),
        ("PUT", "/pkg/acme/php/composer/x.zip", garbage(4)),
        ("POST", "/pkg/acme/os/opm/push", garbage(5)),
        ("PUT", "/pkg/acme/nu/nuget/", garbage(6)),
        ("PUT", "/pkg/acme/charts/helm/x-1.0.0.tgz", garbage(7)),
        (
            "PUT",
            "/pkg/acme/crates/cargo/api/v1/crates/new",
            cargo_body,
        ),
    ];
    for (method, path, body) in requests {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = s
            .client
            .request(method, s.url(path))
            .header("x-api-key", &s.token)
            .header("authorization", &s.token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "{path}: {text}");
    }
    assert_eq!(stored_blobs(&s), 0, "refused uploads left blobs behind");
}

/// An upload whose declared size does not fit on the blob store's disk (with the configured
/// reserve kept free) is refused with 507 before its body is read, in every upload path; the
/// permission check still comes first, and what fits is stored.
async fn uploads_that_do_not_fit_are_refused_before_the_body_is_read(b: Backend) {
    let start = |env: &'static [(&'static str, &'static str)]| async move {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match b {
            Backend::Sqlite => format!("sqlite://{}/arca.db", dir.path().display()),
            Backend::Postgres => crate::common::postgres_database().await,
        };
        let s = Server::start_with(dir, database_url, env).await;
        for (ident, pt) in [("files", "GENERIC"), ("dock", "DOCKER"), ("node", "NPM")] {
            s.harness_registry(
                "acme",
                json!({"identifier": ident, "packageType": pt, "parentRef": "acme"}),
            )
            .await;
        }
        s
    };
    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let oci = format!("/v2/acme/dock/img/blobs/uploads/?digest={DIGEST}");
    let paths = [
        ("PUT", "/pkg/acme/files/generic/big/1.0/big.bin"),
        ("POST", oci.as_str()),
        ("PUT", "/pkg/acme/node/npm/big"),
    ];
    // No disk has 2 EiB free; the upload cap is raised so that it is the space that refuses.
    let s = start(&[("ARCA_MAX_UPLOAD_BYTES", "4611686018427387904")]).await;
    let reader = s.user_with_role("reader", "reader", "acme");
    for path in paths {
        assert_eq!(
            status_with_body_unsent(&s, path, Some(&reader), 1 << 61).await,
            403,
            "{path:?}"
        );
        assert_eq!(
            status_with_body_unsent(&s, path, Some(&s.token), 1 << 61).await,
            507,
            "{path:?}"
        );
    }
    let r = s
        .client
        .put(s.url("/pkg/acme/files/generic/small/1.0/small.bin"))
        .header("x-api-key", &s.token)
        .body(vec![7u8; 4096]);
    assert_eq!(r.send().await.unwrap().status(), 201, "what fits is stored");
    // The reserve counts too: with 1 EiB to be kept free, even a small upload is refused, and so
    // is one of unknown size (chunked).
    let s = start(&[("ARCA_MIN_FREE_BYTES", "1152921504606846976")]).await;
    for path in paths {
        assert_eq!(
            status_with_body_unsent(&s, path, Some(&s.token), 4096).await,
            507,
            "{path:?}"
        );
    }
    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(vec![1u8; 100])]);
    let r = s
        .client
        .put(s.url("/pkg/acme/files/generic/small/1.0/small.bin"))
        .header("x-api-key", &s.token)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 507);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap_or("").contains("space"), "{v}");
    assert_eq!(stored_blobs(&s), 0);
}

both_backends!(
    uploads_refused_before_the_body_is_read,
    refused_uploads_leave_no_blob,
    uploads_that_do_not_fit_are_refused_before_the_body_is_read
);

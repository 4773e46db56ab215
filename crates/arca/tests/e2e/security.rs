//! Hardening seen from a client: what user content may do on the registry's origin, and how the
//! server treats requests that race its own housekeeping.

use crate::both_backends;
use crate::common::{Backend, Server};

/// Stored files are served with `nosniff` and a sandboxing CSP; HTML, SVG, XML and scripts as
/// attachments, whatever type the uploader claimed, so they never run on the registry's origin.
async fn user_content_cannot_run_on_the_origin(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    for (name, ctype, active) in [
        ("page.html", "text/html", true),
        ("logo.svg", "image/svg+xml", true),
        ("app.js", "application/javascript; charset=utf-8", true),
        ("notes.txt", "text/plain", false),
        ("tool.tar.gz", "application/gzip", false),
    ] {
        let path = format!("/pkg/acme/files/generic/web/1.0/{name}");
        let r = s
            .client
            .put(s.url(&path))
            .header("x-api-key", &s.token)
            .header("content-type", ctype)
            .body("<script>alert(document.cookie)</script>")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}");
        let r = s.get(&path).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{name}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("sandbox") && csp.contains("default-src 'none'"),
            "{name}: {csp}"
        );
        let disposition = h
            .get("content-disposition")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            disposition.is_some_and(|d| d.starts_with("attachment") && d.contains(name)),
            active,
            "{name}: {:?}",
            h.get("content-disposition")
        );
    }
}

/// Every byte in the blob store that nothing refers to is collected: content an upload stored and
/// then had refused, a blob renamed into place by a process that died before recording it, the
/// temporary file of a write that was cut off, a session file without a session; referenced
/// content stays, so that afterwards the store holds exactly the referenced bytes.
async fn garbage_collection_finds_orphaned_bytes(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    let kept = vec![7u8; 300_000];
    let r = s
        .client
        .put(s.url("/pkg/acme/files/generic/keep/1.0/kept.bin"))
        .header("x-api-key", &s.token)
        .body(kept.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let blobs = s.data_dir().join("blobs");
    // What a process killed between the rename and the record leaves: a blob no row knows.
    let orphan = vec![1u8; 200_000];
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&orphan))
    };
    std::fs::create_dir_all(blobs.join("sha256").join(&sha[..2])).unwrap();
    std::fs::write(blobs.join("sha256").join(&sha[..2]).join(&sha), &orphan).unwrap();
    // And a write cut off mid-stream, and session bytes whose session was never recorded.
    std::fs::write(blobs.join("tmp").join("cut-off-upload"), vec![2u8; 100_000]).unwrap();
    std::fs::write(
        blobs.join("sessions").join("0f0e-unrecorded"),
        vec![3u8; 50_000],
    )
    .unwrap();
    let out = s.cli(&["gc", "--grace-secs", "0"]);
    assert!(out.contains("1 unrecorded blobs (200000 bytes)"), "{out}");
    assert!(
        out.contains("2 leftovers of interrupted writes (150000 bytes)"),
        "{out}"
    );
    let mut stored = 0u64;
    for dir in ["sha256", "tmp", "sessions", "quarantine"] {
        stored += du(&blobs.join(dir));
    }
    assert_eq!(
        stored,
        kept.len() as u64,
        "only the referenced bytes remain"
    );
    let r = s
        .client
        .get(s.url("/pkg/acme/files/generic/keep/1.0/kept.bin"))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), kept.as_slice());
    // A second run resumes its listing and finds nothing more.
    let out = s.cli(&["gc", "--grace-secs", "0"]);
    assert!(out.contains("0 unrecorded blobs"), "{out}");
}

/// Bytes of the files under a directory.
fn du(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.map(|e| e.unwrap())
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() { du(&e.path()) } else { m.len() }
        })
        .sum()
}

/// Password guessing backs off: after the configured number of failures an address is refused
/// (429 with Retry-After) without its guesses being checked, while another address, and the
/// right password from it, still gets in (a stranger cannot lock a user out). Addresses come
/// from `X-Forwarded-For` only behind a trusted proxy.
async fn failed_authentications_back_off(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = match b {
        Backend::Sqlite => format!("sqlite://{}/arca.db", dir.path().display()),
        Backend::Postgres => crate::common::postgres_database().await,
    };
    let s = Server::start_with(
        dir,
        url,
        &[
            ("ARCA_AUTH_BACKOFF_AFTER", "3"),
            ("ARCA_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    s.generic_registry("acme", "files").await;
    s.cli(&[
        "user",
        "create",
        "carol",
        "--password",
        "right-horse",
        "--role",
        "reader",
        "--scope",
        "acme",
    ]);
    let get = |client: &'static str, password: &'static str| {
        s.client
            .get(s.url("/pkg/acme/files/generic/"))
            .header("x-forwarded-for", client)
            .basic_auth("carol", Some(password))
            .send()
    };
    let attacker = "203.0.113.66";
    for _ in 0..3 {
        assert_eq!(get(attacker, "wrong").await.unwrap().status(), 401);
    }
    // The third failure was held back (the user's back-off); now the address is refused.
    let r = get(attacker, "right-horse").await.unwrap();
    assert_eq!(
        r.status(),
        429,
        "refused without checking, even the right password"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Carol, from her own address, is not locked out by the stranger.
    assert_eq!(
        get("198.51.100.20", "right-horse").await.unwrap().status(),
        200
    );
    // Without a trusted proxy in front, a forged header changes nothing: the socket decides.
    let forged = s
        .client
        .get(s.url("/pkg/acme/files/generic/"))
        .basic_auth("carol", Some("right-horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 200);
}

/// Waits (bounded) until the server answers something or closes `conn`; returns what it sent.
async fn server_ends(conn: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .expect("the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

async fn server_with(b: Backend, env: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = match b {
        Backend::Sqlite => format!("sqlite://{}/arca.db", dir.path().display()),
        Backend::Postgres => crate::common::postgres_database().await,
    };
    Server::start_with(dir, url, env).await
}

/// Clients cannot hold the server: 300 connections trickling headers do not delay anyone else
/// and are closed after the header-read timeout, as are idle kept-alive connections and stalled
/// uploads; beyond the connection limit new connections get 503 and are closed.
async fn connections_are_bounded(b: Backend) {
    use tokio::io::AsyncWriteExt;
    let s = server_with(
        b,
        &[
            ("ARCA_HEADER_READ_TIMEOUT_SECS", "1"),
            ("ARCA_BODY_IDLE_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(c);
    }
    // Others are served meanwhile.
    for _ in 0..5 {
        assert_eq!(s.get("/health").send().await.unwrap().status(), 200);
    }
    for c in &mut slow {
        server_ends(c).await;
    }
    // An idle kept-alive connection is closed after its response.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = server_ends(&mut c).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // A stalled upload is cut off.
    s.generic_registry("acme", "files").await;
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /pkg/acme/files/generic/p/1/f HTTP/1.1\r\nHost: x\r\nx-api-key: {}\r\nContent-Length: 100000\r\n\r\n",
        s.token
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(&[0u8; 1000]).await.unwrap();
    let got = server_ends(&mut c).await;
    assert!(
        !got.starts_with("HTTP/1.1 201"),
        "a partial body was stored: {got}"
    );
    // (A fresh connection: pooled ones were closed by the 1 s keep-alive bound meanwhile.)
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let (st, v) = crate::common::call(
        fresh
            .get(s.url("/har/api/v1/spaces/acme/+/artifacts"))
            .header("x-api-key", &s.token),
    )
    .await;
    assert_eq!((st, v["data"]["itemCount"].as_i64()), (200, Some(0)), "{v}");

    // Past the connection limit: 503 and closed; a freed slot serves again.
    let s = server_with(b, &[("ARCA_MAX_CONNECTIONS", "3")]).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Accepting takes a moment: the held connections are counted once the server saw them.
    tokio::task::yield_now().await;
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    extra
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = server_ends(&mut extra).await;
    assert!(
        got.starts_with("HTTP/1.1 503") && got.contains("Retry-After"),
        "{got}"
    );
    drop(held);
    let mut ok = false;
    for _ in 0..100 {
        if s.client
            .get(s.url("/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "a freed slot serves again");
}

/// Management requests never make the server hold more than `max_api_body_bytes`: a larger
/// declared body is refused before it is read (after the credentials), wrong credentials are
/// refused before any body is read, and an undeclared (chunked) body is cut off at the limit.
async fn management_bodies_are_small(b: Backend) {
    use crate::uploads::status_with_body_unsent;
    let s = server_with(b, &[]).await;
    const HALF_GIB: u64 = 512 << 20;
    for path in [
        ("POST", "/registry/instance/x/repositories"),
        ("POST", "/har/api/v1/registry?space_ref=acme/+"),
        ("PUT", "/har/api/v1/registry/acme/files/+"),
    ] {
        assert_eq!(
            status_with_body_unsent(&s, path, Some(&s.token), HALF_GIB).await,
            413,
            "{path:?}"
        );
        assert_eq!(
            status_with_body_unsent(&s, path, Some("wrong"), HALF_GIB).await,
            401,
            "{path:?}"
        );
    }
    // Chunked, no Content-Length: read up to the limit, then refused.
    let big = vec![b' '; 2 << 20];
    for url in [
        s.url("/registry/instance/x/repositories"),
        s.url("/har/api/v1/registry?space_ref=acme/+"),
    ] {
        let body = reqwest::Body::wrap_stream(futures::stream::iter(
            big.chunks(64 << 10)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        ));
        // A connection per request: the server closes one whose body it stopped reading.
        let fresh = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let r = fresh
            .post(&url)
            .header("x-api-key", &s.token)
            .header("authorization", format!("token {}", s.token))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{url}");
    }
}

both_backends!(
    management_bodies_are_small,
    connections_are_bounded,
    user_content_cannot_run_on_the_origin,
    garbage_collection_finds_orphaned_bytes,
    failed_authentications_back_off
);

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

both_backends!(
    user_content_cannot_run_on_the_origin,
    garbage_collection_finds_orphaned_bytes,
    failed_authentications_back_off
);

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

both_backends!(
    user_content_cannot_run_on_the_origin,
    garbage_collection_finds_orphaned_bytes
);

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

both_backends!(user_content_cannot_run_on_the_origin);

//! Names that display as something they are not, and labels without bounds: package, version and
//! file names holding Unicode format characters (bidi overrides, zero-width characters, general
//! category Cf) or controls are refused in every format, and labels are bounded in count and size.

use std::io::Write;

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call};

/// Asserts a 400 whose message names the offending character.
fn refused(what: &str, (status, v): (u16, Value), code_point: &str) {
    assert_eq!(status, 400, "{what}: {v}");
    let message = v["message"].as_str().or(v["error"].as_str()).unwrap_or("");
    assert!(message.contains(code_point), "{what}: {v}");
}

async fn invisible_characters_in_names_are_refused(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    for (ident, pt) in [("php", "COMPOSER"), ("mvn", "MAVEN")] {
        s.harness_registry(
            "acme",
            json!({"identifier": ident, "packageType": pt, "parentRef": "acme"}),
        )
        .await;
    }
    let put = |path: &str| {
        s.client
            .put(s.url(&format!("/pkg/acme/files/generic/{path}")))
            .header("x-api-key", &s.token)
            .body("data")
    };
    // A right-to-left override makes `exe.txt` look like `txt.exe`; zero-width and invisible
    // separators make two names look alike.
    for (path, code_point) in [
        ("tool/1.0/%E2%80%AEtxt.exe", "U+202E"),
        ("to%E2%80%8Bol/1.0/f.txt", "U+200B"),
        ("tool/1.0%E2%81%A6/f.txt", "U+2066"),
        ("tool/1.0/f%EF%BB%BF.txt", "U+FEFF"),
        ("tool/1.0/f%C2%AD.txt", "U+00AD"),
        ("tool/1.0/f%E2%80%A8.txt", "U+2028"),
        ("tool/1.0/f%C2%85.txt", "U+0085"),
    ] {
        refused(path, call(put(path)).await, code_point);
    }
    // Other scripts and symbols are names like any other.
    let (st, v) = call(put("outil/1.0/r%C3%A9sum%C3%A9-%E6%97%A5%E6%9C%AC.txt")).await;
    assert_eq!(st, 201, "{v}");

    // The other formats' names are held to the same rule (most of them are ASCII by their own
    // syntax as well): a Composer branch version, a Maven file name.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("composer.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(br#"{"name": "acme/tool"}"#).unwrap();
    let archive = zip.finish().unwrap().into_inner();
    for (path, body) in [
        (
            "/pkg/acme/php/composer/tool.zip?version=dev-main%E2%80%AEtxt.exe",
            archive.clone(),
        ),
        (
            "/pkg/acme/mvn/maven/com/acme/lib/1.0/lib-1.0%E2%80%AE.jar",
            b"jar".to_vec(),
        ),
    ] {
        let r = s
            .client
            .put(s.url(path))
            .header("x-api-key", &s.token)
            .body(body);
        assert_eq!(call(r).await.0, 400, "{path}");
    }
    let r = s
        .client
        .put(s.url("/pkg/acme/php/composer/tool.zip?version=dev-main"))
        .header("x-api-key", &s.token)
        .body(archive);
    let (st, v) = call(r).await;
    assert_eq!(st, 201, "{v}");
    // Nothing was stored for the refused uploads.
    let (_, v) = call(s.get("/har/api/v1/spaces/acme/+/artifacts")).await;
    assert_eq!(v["data"]["itemCount"], 2, "{v}");
}

async fn labels_are_bounded(b: Backend) {
    let s = Server::start(b).await;
    let create = |id: &str, labels: Value| {
        s.post(
            "/har/api/v1/registry?space_ref=acme/+",
            json!({"identifier": id, "packageType": "GENERIC", "parentRef": "acme", "labels": labels}),
        )
    };
    let many: Vec<String> = (0..65).map(|i| format!("l{i}")).collect();
    let (st, v) = call(create("a", json!(many))).await;
    assert_eq!(st, 400, "65 labels: {v}");
    let (st, v) = call(create("b", json!(["x".repeat(129)]))).await;
    assert_eq!(st, 400, "a label of 129 characters: {v}");
    refused(
        "bidi label",
        call(create("c", json!(["prod\u{202e}"]))).await,
        "U+202E",
    );
    // At the bounds: 64 labels of 128 characters (multi-byte ones count as one).
    let full: Vec<String> = (0..64)
        .map(|i| format!("{i:02}{}", "é".repeat(126)))
        .collect();
    let (st, v) = call(create("files", json!(full))).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = call(s.put("/har/api/v1/registry/acme/files/+", json!({"labels": many}))).await;
    assert_eq!(st, 400, "update with 65 labels: {v}");
    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+")).await;
    assert_eq!(v["data"]["labels"], json!(full), "unchanged");

    // Artifact labels.
    let r = s
        .client
        .put(s.url("/pkg/acme/files/generic/tool/1.0/f.txt"))
        .header("x-api-key", &s.token)
        .body("data");
    assert_eq!(call(r).await.0, 201);
    let labels = "/har/api/v1/registry/acme/files/+/artifact/tool/+/labels";
    let (st, v) = call(s.put(labels, json!({"labels": many}))).await;
    assert_eq!(st, 400, "65 artifact labels: {v}");
    let (st, v) = call(s.put(labels, json!({"labels": ["y".repeat(129)]}))).await;
    assert_eq!(st, 400, "an artifact label of 129 characters: {v}");
    refused(
        "bidi artifact label",
        call(s.put(labels, json!({"labels": ["a\u{200f}"]}))).await,
        "U+200F",
    );
    let (st, v) = call(s.put(labels, json!({"labels": full}))).await;
    assert_eq!(st, 200, "{v}");
}

/// Sends a request with its path exactly as written (reqwest keeps `//`, but spell it out with
/// a raw connection so that no client normalization is involved); returns the status.
async fn raw_status(s: &Server, method: &str, path: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nx-api-key: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.token,
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).await.unwrap();
    let text = String::from_utf8_lossy(&got);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"))
}

/// An empty path segment (`//`) is refused, never dropped: dropping it would store or serve the
/// file under another path than the one asked for (`tool/1.0//etc/passwd` as `etc/passwd`).
async fn empty_path_segments_are_refused(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    for (ident, pt) in [("mvn", "MAVEN"), ("node", "NPM"), ("dock", "DOCKER")] {
        s.harness_registry(
            "acme",
            json!({"identifier": ident, "packageType": pt, "parentRef": "acme"}),
        )
        .await;
    }
    assert_eq!(
        raw_status(&s, "PUT", "/pkg/acme/files/generic/tool/1.0/f.txt", b"real").await,
        201
    );
    assert_eq!(
        raw_status(
            &s,
            "PUT",
            "/pkg/acme/mvn/maven/com/acme/lib/1.0/lib-1.0.jar",
            b"jar"
        )
        .await,
        201
    );
    for (method, path) in [
        ("PUT", "/pkg/acme/files/generic/tool/1.0//etc/passwd"),
        ("PUT", "/pkg/acme/files/generic/tool//1.0/g.txt"),
        ("PUT", "/pkg/acme/files/generic//tool/1.0/g.txt"),
        ("GET", "/pkg/acme/files/generic/tool/1.0//f.txt"),
        ("GET", "/pkg/acme/files/generic//tool/1.0/f.txt"),
        ("GET", "/pkg/acme/files/generic/tool//1.0/"),
        ("DELETE", "/pkg/acme/files/generic/tool/1.0//f.txt"),
        ("GET", "/pkg/acme/mvn/maven/com//acme/lib/1.0/lib-1.0.jar"),
        ("PUT", "/pkg/acme/mvn/maven/com/acme//lib/2.0/lib-2.0.jar"),
        ("GET", "/pkg/acme/node/npm//tool"),
        ("GET", "/v2/acme/dock//img/tags/list"),
        (
            "GET",
            "/har/api/v1/registry/acme/files/+/artifact/tool//+/versions",
        ),
        ("DELETE", "/har/api/v1/registry/acme//files/+"),
        ("GET", "/har/api/v1/spaces/acme//+/registries"),
    ] {
        assert_eq!(
            raw_status(&s, method, path, b"x").await,
            400,
            "{method} {path}"
        );
    }
    // Nothing moved: the files are where they were, and no other was stored.
    let (_, v) = call(s.get("/har/api/v1/spaces/acme/+/artifacts")).await;
    assert_eq!(v["data"]["itemCount"], 2, "{v}");
    let r = s
        .get("/pkg/acme/files/generic/tool/1.0/f.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "real");
    let (_, v) = call(s.get("/pkg/acme/files/generic/tool/1.0/")).await;
    assert_eq!(v["files"].as_array().map(Vec::len), Some(1), "{v}");
    // A single trailing slash is part of some protocols (listings, PyPI's simple pages).
    assert_eq!(
        raw_status(&s, "GET", "/pkg/acme/files/generic/tool/", b"").await,
        200
    );
}

both_backends!(
    invisible_characters_in_names_are_refused,
    labels_are_bounded,
    empty_path_segments_are_refused
);

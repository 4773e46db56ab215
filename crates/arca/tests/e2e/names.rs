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

both_backends!(
    invisible_characters_in_names_are_refused,
    labels_are_bounded
);

use std::process::Command;

use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::both_backends;
use crate::common::{Backend, Server, call, stored_blobs};

/// Runs curl (the generic format's real client) and returns (http status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

async fn curl_upload_download_head_range_etag(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    let src = s.dir.path().join("hello.txt");
    std::fs::write(&src, b"hello, arca!\n").unwrap();
    let url = s.url("/pkg/acme/files/generic/tool/1.0/hello.txt");
    let cred = format!("admin:{}", s.token);
    let (st, body) = curl(&["-u", &cred, "-T", src.to_str().unwrap(), &url]);
    assert_eq!(st, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sha = hex::encode(Sha256::digest(b"hello, arca!\n"));
    assert_eq!(v["sha256"], sha.as_str());
    assert_eq!(v["size"], 13);

    let out = s.dir.path().join("out.txt");
    let (st, _) = curl(&["-u", &cred, "-o", out.to_str().unwrap(), &url]);
    assert_eq!(st, 200);
    assert_eq!(std::fs::read(&out).unwrap(), b"hello, arca!\n");

    let r = s
        .client
        .head(&url)
        .basic_auth("admin", Some(&s.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "13");
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.headers()["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert!(r.headers().contains_key("last-modified"));

    for (range, expect, cr) in [
        ("bytes=0-4", "hello", "bytes 0-4/13"),
        ("bytes=7-", "arca!\n", "bytes 7-12/13"),
        ("bytes=-6", "arca!\n", "bytes 7-12/13"),
        ("bytes=7-100", "arca!\n", "bytes 7-12/13"),
    ] {
        let r = s
            .client
            .get(&url)
            .basic_auth("admin", Some(&s.token))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(r.headers()["content-range"], cr);
        assert_eq!(r.text().await.unwrap(), expect);
    }
    let r = s
        .client
        .get(&url)
        .basic_auth("admin", Some(&s.token))
        .header("range", "bytes=20-30")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */13");
    let r = s
        .client
        .get(&url)
        .basic_auth("admin", Some(&s.token))
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = s
        .client
        .get(&url)
        .basic_auth("admin", Some(&s.token))
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Listing.
    let (st, v) = call(
        s.client
            .get(s.url("/pkg/acme/files/generic/tool/1.0/"))
            .header("x-api-key", &s.token),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["files"][0]["path"], "hello.txt");
    let (_, v) = call(
        s.client
            .get(s.url("/pkg/acme/files/generic/tool/"))
            .header("x-api-key", &s.token),
    )
    .await;
    assert_eq!(v["versions"][0]["version"], "1.0");
    let (_, v) = call(
        s.client
            .get(s.url("/pkg/acme/files/generic/"))
            .header("x-api-key", &s.token),
    )
    .await;
    assert_eq!(v["packages"][0]["name"], "tool");
    // Downloads are counted and shown in both dialects' lists.
    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+/artifacts")).await;
    // Full downloads count (the curl download and the GET whose ETag did not match); HEAD, ranges and 304s do not.
    assert_eq!(v["data"]["artifacts"][0]["downloadsCount"], 2);
    // Missing file.
    let (st, _) = curl(&[
        "-u",
        &cred,
        &s.url("/pkg/acme/files/generic/tool/1.0/nope.txt"),
    ]);
    assert_eq!(st, 404);
}

async fn chunked_and_expect_continue_uploads(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    let cred = format!("admin:{}", s.token);
    let src = s.dir.path().join("big.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    // Chunked transfer encoding with Expect: 100-continue, as NuGet and Maven send.
    let (st, body) = curl(&[
        "-u",
        &cred,
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &format!("@{}", src.display()),
        "-X",
        "PUT",
        &s.url("/pkg/acme/files/generic/blob/2/big.bin"),
    ]);
    assert_eq!(st, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["size"], 3_000_000);
    assert_eq!(v["sha256"], hex::encode(Sha256::digest(&data)).as_str());
    let r = s
        .client
        .get(s.url("/pkg/acme/files/generic/blob/2/big.bin"))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
}

async fn reupload_none_and_override(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "strict", "packageType": "GENERIC", "parentRef": "acme", "packageReuploadType": "NONE"})).await;
    s.generic_registry("acme", "loose").await;
    let put = |reg: &str, body: &'static str| {
        s.client
            .put(s.url(&format!("/pkg/acme/{reg}/generic/p/1/f.txt")))
            .header("x-api-key", &s.token)
            .body(body)
            .send()
    };
    assert_eq!(put("strict", "one").await.unwrap().status(), 201);
    let r = put("strict", "two").await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("re-upload is not allowed"));
    let get = |reg: &str| {
        s.client
            .get(s.url(&format!("/pkg/acme/{reg}/generic/p/1/f.txt")))
            .header("x-api-key", &s.token)
            .send()
    };
    assert_eq!(
        get("strict").await.unwrap().text().await.unwrap(),
        "one",
        "nothing stored is lost"
    );
    assert_eq!(put("loose", "one").await.unwrap().status(), 201);
    assert_eq!(put("loose", "two!").await.unwrap().status(), 201);
    assert_eq!(get("loose").await.unwrap().text().await.unwrap(), "two!");
    let (_, v) = call(s.get("/har/api/v1/registry/acme/loose/+/artifact/p/+/versions")).await;
    assert_eq!(
        v["data"]["artifactVersions"][0]["size"], "4 B",
        "size follows the replacement"
    );
    assert_eq!(v["data"]["artifactVersions"][0]["fileCount"], 1);
}

async fn concurrent_uploads_exactly_one_wins(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "strict", "packageType": "GENERIC", "parentRef": "acme", "packageReuploadType": "NONE"})).await;
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let client = s.client.clone();
        let url = s.url("/pkg/acme/strict/generic/race/1.0/file.bin");
        let token = s.token.clone();
        tasks.push(tokio::spawn(async move {
            let body = vec![i; 200_000];
            let r = client
                .put(url)
                .header("x-api-key", token)
                .body(body)
                .send()
                .await
                .unwrap();
            (i, r.status().as_u16())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let winners: Vec<u8> = results
        .iter()
        .filter(|(_, st)| *st == 201)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results.iter().all(|(_, st)| *st == 201 || *st == 409),
        "{results:?}"
    );
    let got = s
        .client
        .get(s.url("/pkg/acme/strict/generic/race/1.0/file.bin"))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        got.as_ref(),
        vec![winners[0]; 200_000].as_slice(),
        "the stored file is the winner's"
    );
}

async fn delete_respects_setting_and_moves_to_trash(b: Backend) {
    let s = Server::start(b).await;
    let reg = s.generic_registry("acme", "files").await;
    let uuid = reg["uuid"].as_str().unwrap().to_string();
    let deployer = s.user_with_role("dep", "deployer", "acme");
    for v in ["1", "2"] {
        let r = s
            .client
            .put(s.url(&format!("/pkg/acme/files/generic/p/{v}/f.txt")))
            .header("x-api-key", &deployer)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // isDeletePackageAllowed is false by default: a deployer may not delete.
    let r = s
        .client
        .delete(s.url("/pkg/acme/files/generic/p/1"))
        .header("x-api-key", &deployer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("isDeletePackageAllowed"));
    // Allow it through the GitFlic dialect.
    let (st, v) = call(
        s.client
            .put(s.url(&format!("/registry/instance/repositories/{uuid}")))
            .header("authorization", format!("token {}", s.token))
            .json(&json!({"type": "LOCAL", "settings": {"isDeletePackageAllowed": true}})),
    )
    .await;
    // The registry lives in account `acme`, not the default account: not found through the instance path.
    assert_eq!(st, 404, "{v}");
    let (st, _) = call(s.put(
        "/har/api/v1/registry/acme/files/+",
        json!({"isDeletePackageAllowed": true}),
    ))
    .await;
    assert_eq!(st, 200);
    let r = s
        .client
        .delete(s.url("/pkg/acme/files/generic/p/1"))
        .header("x-api-key", &deployer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .client
        .get(s.url("/pkg/acme/files/generic/p/1/f.txt"))
        .header("x-api-key", &deployer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .client
        .get(s.url("/pkg/acme/files/generic/p/2/f.txt"))
        .header("x-api-key", &deployer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "other versions stay");
    // The version is kept as deleted (in the trash), and restored with its file.
    let (st, v) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifact/p/versions?deleted=only")).await;
    assert_eq!(
        (st, &v["data"]["artifactVersions"][0]["name"]),
        (200, &json!("1")),
        "{v}"
    );
    let (st, v) = call(s.post(
        "/har/api/v1/registry/acme/files/+/artifact/p/+/version/1/restore",
        json!({}),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    let r = s
        .client
        .get(s.url("/pkg/acme/files/generic/p/1/f.txt"))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "x");
    // Deleting single files (both versions' one file).
    for v in ["1", "2"] {
        let r = s
            .client
            .delete(s.url(&format!("/pkg/acme/files/generic/p/{v}/f.txt")))
            .header("x-api-key", &deployer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+/artifacts")).await;
    assert_eq!(v["data"]["itemCount"], 0, "an emptied package disappears");
}

async fn large_upload_is_streamed(b: Backend) {
    // 1 GiB, generated on the fly by the client and checked by digest on the way back.
    const SIZE: u64 = 1 << 30;
    const CHUNK: usize = 1 << 20;
    let s = Server::start(b).await;
    s.generic_registry("acme", "big").await;
    let chunk = |i: u64| -> Vec<u8> {
        let mut v = vec![0u8; CHUNK];
        for (j, b) in v.iter_mut().enumerate() {
            *b = ((i as usize * 31 + j * 7) % 256) as u8;
        }
        v
    };
    let mut expected = Sha256::new();
    for i in 0..SIZE / CHUNK as u64 {
        expected.update(chunk(i));
    }
    let expected = hex::encode(expected.finalize());
    let stream = futures::stream::iter(0..SIZE / CHUNK as u64)
        .map(move |i| Ok::<_, std::io::Error>(chunk(i)));
    let r = s
        .client
        .put(s.url("/pkg/acme/big/generic/image/1/disk.img"))
        .header("x-api-key", &s.token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["size"], SIZE);
    assert_eq!(v["sha256"], expected.as_str());
    let r = s
        .client
        .get(s.url("/pkg/acme/big/generic/image/1/disk.img"))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-length"], SIZE.to_string().as_str());
    let mut got = Sha256::new();
    let mut n = 0u64;
    let mut body = r.bytes_stream();
    while let Some(c) = body.next().await {
        let c = c.unwrap();
        n += c.len() as u64;
        got.update(&c);
    }
    assert_eq!(n, SIZE);
    assert_eq!(hex::encode(got.finalize()), expected);
    // No temporary files are left behind.
    assert_eq!(
        std::fs::read_dir(s.data_dir().join("blobs/tmp"))
            .unwrap()
            .count(),
        0
    );
}

async fn identical_content_is_stored_once(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "one").await;
    s.generic_registry("acme/x", "two").await;
    for (reg, path) in [("one", "a/1/f"), ("two", "b/9/g"), ("one", "c/2/h")] {
        let r = s
            .client
            .put(s.url(&format!("/pkg/acme/{reg}/generic/{path}")))
            .header("x-api-key", &s.token)
            .body("same bytes")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    assert_eq!(stored_blobs(&s).await, 1);
}

async fn bad_paths_and_mismatched_formats(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    s.harness_registry(
        "acme",
        json!({"identifier": "npmreg", "packageType": "NPM", "parentRef": "acme"}),
    )
    .await;
    let cred = format!("admin:{}", s.token);
    for (path, status) in [
        ("/pkg/acme/files/generic/p/1/..", 400),
        ("/pkg/acme/files/generic/p/1/%2e%2e", 400),
        ("/pkg/acme/files/generic/p/../../x/f", 400),
        ("/pkg/acme/files/generic/p/1/a%2Fb", 400),
        ("/pkg/acme/files/generic/p/1/a%5Cb", 400),
        ("/pkg/acme/files/generic/%2e%2e/1/f", 400),
        ("/pkg/acme/files/generic/p/1/%00x", 400),
        ("/pkg/acme/files/generic/-p/1/f", 400),
        ("/pkg/acme/files/generic/p/1%200/f", 400),
        ("/pkg/acme/npmreg/generic/p/1/f", 404),
        ("/pkg/acme/files/nosuchformat/p/1/f", 404),
        ("/pkg/acme/missing/generic/p/1/f", 404),
        ("/pkg/acme/files/generic/p", 405),
    ] {
        // --path-as-is: send the path exactly, without the client resolving dot segments.
        let (st, body) = curl(&[
            "--path-as-is",
            "-u",
            &cred,
            "-X",
            "PUT",
            "--data-binary",
            "x",
            &s.url(path),
        ]);
        assert_eq!(st, status, "{path}: {body}");
    }
    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+/artifacts")).await;
    assert_eq!(v["data"]["itemCount"], 0, "nothing stored");
}

async fn patterns_and_group_registries(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "default",
        json!({"identifier": "rel", "packageType": "GENERIC", "parentRef": "default",
        "allowedPattern": ["^tool"], "blockedPattern": [":.*-SNAPSHOT$"]}),
    )
    .await;
    let put = |reg: &str, path: &str| {
        s.client
            .put(s.url(&format!("/pkg/default/{reg}/generic/{path}")))
            .header("x-api-key", &s.token)
            .body(path.to_string())
            .send()
    };
    assert_eq!(put("rel", "tool/1.0/a").await.unwrap().status(), 201);
    let r = put("rel", "tool/1.0-SNAPSHOT/a").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("blocked"));
    assert_eq!(put("rel", "other/1.0/a").await.unwrap().status(), 403);

    // A GitFlic VIRTUAL group over two local registries, deploying into the second.
    s.generic_registry("default", "extra").await;
    let ids: Vec<String> = {
        let mut v = Vec::new();
        for r in ["rel", "extra"] {
            let (_, x) = call(s.get(&format!("/har/api/v1/registry/default/{r}/+"))).await;
            v.push(x["data"]["uuid"].as_str().unwrap().to_string());
        }
        v
    };
    let (st, v) = call(s.client.post(s.url("/registry/instance/x/repositories")).header("authorization", format!("token {}", s.token))
        .json(&json!({"type": "VIRTUAL", "repositoryName": "all", "packageType": "generic",
                      "virtualSettings": {"includedRepositoryUuids": ids, "deploymentRepositoryUuid": ids[1]}}))).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(put("all", "thing/2/b").await.unwrap().status(), 201);
    // Reads through the group find files of every member, in order.
    for (path, body) in [("tool/1.0/a", "tool/1.0/a"), ("thing/2/b", "thing/2/b")] {
        let r = s
            .client
            .get(s.url(&format!("/pkg/default/all/generic/{path}")))
            .header("x-api-key", &s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.text().await.unwrap(), body);
    }
    // The upload landed in the deployment member.
    let (_, v) = call(s.get("/har/api/v1/registry/default/extra/+/artifacts")).await;
    assert_eq!(v["data"]["artifacts"][0]["name"], "thing");
}

async fn interrupted_uploads_leave_nothing(b: Backend) {
    let mut s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    let url = s.url("/pkg/acme/files/generic/p/1/f.bin");
    // The client dies after 3 MiB: the body stream fails and the request is abandoned.
    let stream = futures::stream::iter(0..10).map(|i| {
        if i < 3 {
            Ok(vec![7u8; 1 << 20])
        } else {
            Err(std::io::Error::other("client crashed"))
        }
    });
    let r = s
        .client
        .put(&url)
        .header("x-api-key", &s.token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    assert!(r.is_err() || !r.unwrap().status().is_success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        s.client
            .get(&url)
            .header("x-api-key", &s.token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        std::fs::read_dir(s.data_dir().join("blobs/tmp"))
            .unwrap()
            .count(),
        0,
        "temporary data removed"
    );
    assert_eq!(stored_blobs(&s).await, 0, "no blob committed");

    // The server is killed mid-upload: after a restart nothing is visible and no blob exists.
    let slow = futures::stream::iter(0..50).then(|_| async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Ok::<_, std::io::Error>(vec![9u8; 64 * 1024])
    });
    let upload = tokio::spawn(
        s.client
            .put(&url)
            .header("x-api-key", &s.token)
            .body(reqwest::Body::wrap_stream(slow))
            .send(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let pid = s.pid();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(
        upload.await.unwrap().is_err(),
        "the upload cannot have succeeded"
    );
    s.stop();
    let database_url = s.database_url.clone();
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let token = s.token.clone();
    drop(s);
    let s = Server::start_with(dir, database_url, &[("ARCA_ADMIN_TOKEN", token.as_str())]).await;
    let url = s.url("/pkg/acme/files/generic/p/1/f.bin");
    assert_eq!(
        s.client
            .get(&url)
            .header("x-api-key", &s.token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+/artifacts")).await;
    assert_eq!(v["data"]["itemCount"], 0);
    assert_eq!(stored_blobs(&s).await, 0, "no half-written blob");
}

both_backends!(
    interrupted_uploads_leave_nothing,
    curl_upload_download_head_range_etag,
    chunked_and_expect_continue_uploads,
    reupload_none_and_override,
    concurrent_uploads_exactly_one_wins,
    delete_respects_setting_and_moves_to_trash,
    large_upload_is_streamed,
    identical_content_is_stored_once,
    bad_paths_and_mismatched_formats,
    patterns_and_group_registries,
);

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::both_backends;
use crate::common::{Backend, Server, call};

async fn health_ready_openapi(b: Backend) {
    let s = Server::start(b).await;
    let (st, _) = call(s.client.get(s.url("/health"))).await;
    assert_eq!(st, 200);
    let (st, v) = call(s.client.get(s.url("/ready"))).await;
    assert_eq!(
        (st, v["database"].as_bool(), v["blobStore"].as_bool()),
        (200, Some(true), Some(true))
    );
    let (st, v) = call(s.client.get(s.url("/api/openapi.json"))).await;
    assert_eq!(st, 200);
    let paths = v["paths"].as_object().unwrap();
    for p in [
        "/har/api/v1/registry",
        "/har/api/v1/registry/{registry_ref}/artifacts",
        "/har/api/v1/spaces/{space_ref}/registries",
        "/registry/project/{ownerAlias}/{projectAlias}/repositories",
        "/registry/instance/repositories/{uuid}",
        "/registry/company/{companyAlias}/package/{packageUuid}/version-list",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert!(v["components"]["schemas"]["RegistryRequest"].is_object());
    assert!(v["components"]["schemas"]["RepositoryRequest"].is_object());
}

async fn bootstrap_generates_and_stores_admin_token(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match b {
        Backend::Sqlite => format!("sqlite://{}/arca.db", dir.path().display()),
        Backend::Postgres => crate::common::postgres_database().await,
    };
    let mut s = Server::start_with(dir, database_url.clone(), &[("ARCA_ADMIN_TOKEN", "")]).await;
    let token = check_generated_token(&s, true).await;
    // A restart on the same data does not bootstrap again.
    s.stop();
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    let s = Server::start_with(dir, database_url, &[("ARCA_ADMIN_TOKEN", "")]).await;
    assert_eq!(s.cli(&["user", "list"]).lines().count(), 1);
    assert_eq!(check_generated_token(&s, false).await, token);
}

async fn check_generated_token(s: &Server, first_start: bool) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = s.data_dir().join("admin-token");
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(token.starts_with("arca_") && token.len() > 30, "{token}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        s.log().contains(&token),
        first_start,
        "the generated token is printed once, when created"
    );
    if first_start {
        // On a line of its own (stdout), naming the file that holds it too.
        assert!(s.log().lines().any(|l| l == token), "{}", s.log());
        assert!(s.log().contains("admin-token"), "{}", s.log());
    }
    let r = s
        .client
        .get(s.url("/har/api/v1/spaces/default/+/registries"))
        .header("x-api-key", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    token
}

async fn graceful_shutdown_finishes_inflight_upload(b: Backend) {
    let mut s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    // A slow upload: 20 chunks, 100 ms apart.
    let stream = futures::stream::iter(0..20).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(vec![i as u8; 1000])
    });
    let req = s
        .client
        .put(s.url("/pkg/acme/files/generic/slow/1/f"))
        .header("x-api-key", &s.token)
        .body(reqwest::Body::wrap_stream(stream));
    let upload = tokio::spawn(req.send());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = tokio::task::spawn_blocking(move || {
        let st = s.stop();
        (st, s)
    });
    let resp = upload.await.unwrap().unwrap();
    assert_eq!(resp.status(), 201, "the in-flight upload completes");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["size"], 20_000);
    let (exit, _s) = status.await.unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
}

/// Config layering does not involve the metadata store, so this runs once.
#[tokio::test]
async fn config_file_env_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let port_file = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_env = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.path().join("arca.toml");
    std::fs::write(&cfg, format!("listen = \"127.0.0.1:{port_file}\"\ndata_dir = \"{}\"\nbase_url = \"http://file.example:1/\"\n", dir.path().join("d").display())).unwrap();
    // File only.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env_remove("ARCA_LISTEN")
        .env_remove("ARCA_DATA_DIR")
        .env_remove("ARCA_DATABASE_URL")
        .env_remove("ARCA_BASE_URL")
        .env("ARCA_ADMIN_TOKEN", "arca_cfgtest")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port_file}");
    let mut ok = false;
    for _ in 0..100 {
        if client.get(format!("{url}/health")).send().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "listens on the file's address");
    assert!(
        dir.path().join("d/arca.db").exists(),
        "data dir from the file"
    );
    let (_, v) = call(client.post(format!("{url}/har/api/v1/registry")).header("x-api-key", "arca_cfgtest")
        .json(&serde_json::json!({"identifier": "g", "packageType": "GENERIC", "parentRef": "acme"}))).await;
    assert_eq!(
        v["data"]["url"], "http://file.example:1/pkg/acme/g/generic",
        "base URL from the file"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // Environment beats the file, and a flag beats the environment.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args([
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--base-url",
            "http://flag.example",
        ])
        .env("ARCA_LISTEN", format!("127.0.0.1:{port_env}"))
        .env("ARCA_BASE_URL", "http://env.example")
        .env_remove("ARCA_DATA_DIR")
        .env_remove("ARCA_DATABASE_URL")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port_env}");
    let mut ok = false;
    for _ in 0..100 {
        if client.get(format!("{url}/health")).send().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "listens on the environment's address");
    let (_, v) = call(
        client
            .get(format!("{url}/har/api/v1/registry/acme/g/+"))
            .header("x-api-key", "arca_cfgtest"),
    )
    .await;
    assert_eq!(v["data"]["url"], "http://flag.example/pkg/acme/g/generic");
    child.kill().unwrap();
    child.wait().unwrap();
}

both_backends!(
    oversize_uploads_are_refused,
    health_ready_openapi,
    bootstrap_generates_and_stores_admin_token,
    graceful_shutdown_finishes_inflight_upload
);

/// Every upload route refuses bodies over ARCA_MAX_UPLOAD_BYTES with 413 and stores nothing.
async fn oversize_uploads_are_refused(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match b {
        Backend::Sqlite => format!("sqlite://{}/arca.db", dir.path().display()),
        Backend::Postgres => crate::common::postgres_database().await,
    };
    let s = Server::start_with(dir, database_url, &[("ARCA_MAX_UPLOAD_BYTES", "1000")]).await;
    for (id, pt) in [
        ("gen", "GENERIC"),
        ("npmr", "NPM"),
        ("pyr", "PYTHON"),
        ("cr", "CARGO"),
        ("hr", "HELM"),
    ] {
        s.harness_registry(
            "acme",
            serde_json::json!({"identifier": id, "packageType": pt, "parentRef": "acme"}),
        )
        .await;
    }
    let big = vec![b'x'; 5000];
    let r = s
        .client
        .put(s.url("/pkg/acme/gen/generic/p/1/f"))
        .header("x-api-key", &s.token)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = s
        .client
        .put(s.url("/pkg/acme/gen/generic/p/1/f"))
        .header("x-api-key", &s.token)
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "at the limit is fine");
    let doc = serde_json::json!({"name": "p", "versions": {"1.0.0": {"name": "p", "version": "1.0.0"}},
                                 "_attachments": {"p-1.0.0.tgz": {"data": "A".repeat(20 << 20)}}});
    let r = s
        .client
        .put(s.url("/pkg/acme/npmr/npm/p"))
        .header("x-api-key", &s.token)
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let form = reqwest::multipart::Form::new()
        .text(":action", "file_upload")
        .text("name", "p")
        .text("version", "1.0")
        .part(
            "content",
            reqwest::multipart::Part::bytes(big.clone()).file_name("p-1.0-py3-none-any.whl"),
        );
    let r = s
        .client
        .post(s.url("/pkg/acme/pyr/python/"))
        .header("x-api-key", &s.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = s
        .client
        .put(s.url("/pkg/acme/cr/cargo/api/v1/crates/new"))
        .header("authorization", &s.token)
        .body(vec![0u8; 20 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // A chart is parsed under the in-memory cap, but it is still a file held to the upload cap.
    let r = s
        .client
        .put(s.url("/pkg/acme/hr/helm/c-1.0.0.tgz"))
        .header("x-api-key", &s.token)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    for id in ["npmr", "pyr", "cr", "hr"] {
        let (_, v) = call(s.get(&format!("/har/api/v1/registry/acme/{id}/+/artifacts"))).await;
        assert_eq!(v["data"]["itemCount"], 0, "{id}");
    }
}

//! The proxy engine's file path as clients see it: a miss reaches every client while it is still
//! arriving from the upstream (one upstream request for all), and a proxy that keeps nothing
//! (`isCaching: false`) relays the same way. The upstream is the programmable stub, gated so that
//! the tests see bytes arrive before the upstream has finished, without timing anything.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Server, call};
use crate::proxy::gitflic_proxy;
use crate::stub::{Reply, Stub};

/// The repository UUID of the GitFlic repository `title` in company `acme`.
pub(crate) async fn gitflic_repo_id(s: &Server, title: &str) -> String {
    let (st, v) = call(
        s.client
            .get(s.url("/registry/company/acme/repositories"))
            .header("authorization", format!("token {}", s.token)),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v["_embedded"]
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|l| l.as_array())
        .and_then(|l| l.iter().find(|r| r["title"] == title))
        .and_then(|r| r["repositoryUuid"].as_str())
        .unwrap_or_else(|| panic!("no repository '{title}' in {v}"))
        .to_string()
}

/// Reads a response body until at least `n` bytes came (or it ended); fails the test rather
/// than hang when nothing comes.
async fn read_at_least(r: &mut reqwest::Response, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(30), r.chunk())
            .await
            .expect("bytes arrive while the upstream is still sending")
            .expect("the transfer goes on");
        match chunk {
            Some(c) => got.extend_from_slice(&c),
            None => break,
        }
    }
    got
}

async fn a_miss_streams_to_every_client_while_it_arrives(b: Backend) {
    let stub = Stub::start().await;
    let s = Server::start(b).await;
    let files = format!("{}/files", stub.base);
    gitflic_proxy(&s, "gen", "generic", &files, "mirror", "SECRET", 0).await;
    gitflic_proxy(&s, "relay", "generic", &files, "mirror", "SECRET", 0).await;

    let first: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let rest: Vec<u8> = (0..700_000u32).map(|i| (i % 241) as u8).collect();
    let whole = [first.clone(), rest.clone()].concat();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    stub.set(
        "/files/tool/1.0/layer.bin",
        Reply::Gated(first.clone(), rest.clone(), gate.clone()),
    );
    let url = s.url("/pkg/default/gen/generic/tool/1.0/layer.bin");
    // A leader and four followers: each is answered, and gets bytes, while the upstream still
    // holds back most of the file.
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut r = s
            .client
            .get(&url)
            .header("x-api-key", &s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-length"].to_str().unwrap(),
            whole.len().to_string(),
            "the upstream's length is announced"
        );
        assert_eq!(r.headers()["x-arca-cache"], "MISS");
        let early = read_at_least(&mut r, 1000).await;
        assert!(early.len() >= 1000 && early.len() < first.len() + 1);
        clients.push((r, early));
    }
    assert_eq!(
        stub.hits("/files/tool/1.0/layer.bin"),
        1,
        "one upstream request"
    );
    gate.add_permits(100);
    for (mut r, mut got) in clients {
        got.extend(read_at_least(&mut r, usize::MAX).await);
        assert!(got == whole, "each client gets the whole file");
    }
    // Verified and kept: the next request is a hit.
    let r = s
        .get("/pkg/default/gen/generic/tool/1.0/layer.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-arca-cache").is_none());
    assert!(r.bytes().await.unwrap() == whole);
    assert_eq!(stub.hits("/files/tool/1.0/layer.bin"), 1);

    // isCaching: false relays, still coalesced, and keeps nothing.
    let relay = gitflic_repo_id(&s, "relay").await;
    let (st, v) = call(
        s.client
            .put(s.url(&format!("/registry/company/acme/repositories/{relay}")))
            .header("authorization", format!("token {}", s.token))
            .json(&json!({"type": "PROXY", "proxySettings": {"isCaching": false}})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    stub.set(
        "/files/tool/2.0/relayed.bin",
        Reply::Gated(first.clone(), rest.clone(), gate.clone()),
    );
    let url = s.url("/pkg/default/relay/generic/tool/2.0/relayed.bin");
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut r = s
            .client
            .get(&url)
            .header("x-api-key", &s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let early = read_at_least(&mut r, 1000).await;
        clients.push((r, early));
    }
    assert_eq!(stub.hits("/files/tool/2.0/relayed.bin"), 1, "coalesced");
    gate.add_permits(100);
    for (mut r, mut got) in clients {
        got.extend(read_at_least(&mut r, usize::MAX).await);
        assert!(got == whole);
    }
    stub.set(
        "/files/tool/2.0/relayed.bin",
        Reply::Ok(whole.clone(), "application/octet-stream"),
    );
    let r = s
        .get("/pkg/default/relay/generic/tool/2.0/relayed.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap() == whole);
    assert_eq!(
        stub.hits("/files/tool/2.0/relayed.bin"),
        2,
        "nothing was kept: asked again"
    );
    let r = s
        .get("/pkg/default/relay/generic/tool/2.0/relayed.bin")
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(stub.hits("/files/tool/2.0/relayed.bin"), 3);
}

/// Upstreams are reached through the forward proxy the environment names (`HTTP_PROXY`; HTTPS
/// upstreams use `HTTPS_PROXY` the same way), and `NO_PROXY` is honoured. The stub plays the
/// forward proxy: it answers by path, for upstream hosts that do not even resolve.
async fn upstreams_are_reached_through_the_environments_proxy(b: Backend) {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = match b {
        Backend::Sqlite => format!("sqlite://{}/arca.db", dir.path().display()),
        Backend::Postgres => crate::common::postgres_database().await,
    };
    let s = Server::start_with(
        dir,
        db,
        &[
            ("HTTP_PROXY", stub.base.as_str()),
            ("http_proxy", stub.base.as_str()),
            ("NO_PROXY", "127.0.0.1,localhost,bypass.invalid"),
            ("no_proxy", "127.0.0.1,localhost,bypass.invalid"),
        ],
    )
    .await;
    gitflic_proxy(
        &s,
        "via",
        "generic",
        "http://upstream.invalid/files",
        "m",
        "T",
        0,
    )
    .await;
    gitflic_proxy(
        &s,
        "direct",
        "generic",
        "http://bypass.invalid/files",
        "m",
        "T",
        0,
    )
    .await;
    stub.set(
        "/files/tool/1.0/x.bin",
        Reply::Ok(b"through the proxy".to_vec(), "application/octet-stream"),
    );
    let r = s
        .get("/pkg/default/via/generic/tool/1.0/x.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], b"through the proxy");
    assert_eq!(stub.hits("/files/tool/1.0/x.bin"), 1);
    // NO_PROXY: asked directly, and that host does not exist.
    let r = s
        .get("/pkg/default/direct/generic/tool/1.0/x.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502, "{:?}", r.text().await);
    assert_eq!(
        stub.hits("/files/tool/1.0/x.bin"),
        1,
        "not through the proxy"
    );
}

both_backends!(
    a_miss_streams_to_every_client_while_it_arrives,
    upstreams_are_reached_through_the_environments_proxy
);

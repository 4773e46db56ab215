//! Mutable upstream metadata through a proxy, beyond what the real-client tests cover: a Maven
//! SNAPSHOT's version-level `maven-metadata.xml` names the newest build, which only the upstream
//! knows; it is revalidated per the proxy's interval (0 here), relayed as the upstream wrote it,
//! and served stale once the upstream is gone, with its timestamped builds from the cache.

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Server, call};

const POM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.acme</groupId>
  <artifactId>lib</artifactId>
  <version>1.0-SNAPSHOT</version>
</project>
"#;

/// Deploys build `n` of com.acme:lib:1.0-SNAPSHOT to the upstream, as mvn deploy does.
async fn deploy_build(up: &Server, n: u32, jar: &str) {
    let dir = "/pkg/acme/up/maven/com/acme/lib/1.0-SNAPSHOT";
    let stamp = format!("1.0-20261130.0101{n:02}-{n}");
    for (name, body) in [
        (format!("lib-{stamp}.pom"), POM.to_string()),
        (format!("lib-{stamp}.jar"), jar.to_string()),
    ] {
        let r = up
            .client
            .put(up.url(&format!("{dir}/{name}")))
            .basic_auth("admin", Some(&up.token))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{name}: {}", r.status());
    }
}

async fn maven_snapshots_through_a_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "up", "packageType": "MAVEN", "parentRef": "acme"}),
        )
        .await;
    let mirror = upstream.user_with_role("mirror", "reader", "acme");
    deploy_build(&upstream, 1, "build one").await;

    let s = Server::start(b).await;
    let (st, v) = call(
        s.client
            .post(s.url("/har/api/v1/registry"))
            .header("x-api-key", &s.token)
            .json(
                &json!({"identifier": "mp", "packageType": "MAVEN", "parentRef": "acme",
                   "config": {"type": "UPSTREAM", "source": "Custom",
                              "url": upstream.url("/pkg/acme/up/maven"),
                              "authType": "UserPassword",
                              "auth": {"userName": "mirror", "password": mirror},
                              "metadataCacheTTL": 0}}),
            ),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let dir = "/pkg/acme/mp/maven/com/acme/lib/1.0-SNAPSHOT";
    let get = |path: String| {
        let req = s.get(&path);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let cache = r
                .headers()
                .get("x-arca-cache")
                .map(|v| v.to_str().unwrap().to_string());
            (status, r.text().await.unwrap(), cache)
        }
    };

    let (st, meta, _) = get(format!("{dir}/maven-metadata.xml")).await;
    assert_eq!(st, 200, "{meta}");
    assert!(meta.contains("<buildNumber>1</buildNumber>"), "{meta}");
    assert!(
        meta.contains("<value>1.0-20261130.010101-1</value>"),
        "{meta}"
    );
    let (st, jar, _) = get(format!("{dir}/lib-1.0-20261130.010101-1.jar")).await;
    assert_eq!((st, jar.as_str()), (200, "build one"));

    // A new build upstream is seen at once (interval 0), and its jar fetched.
    deploy_build(&upstream, 2, "build two").await;
    let (st, meta, _) = get(format!("{dir}/maven-metadata.xml")).await;
    assert_eq!(st, 200);
    assert!(meta.contains("<buildNumber>2</buildNumber>"), "{meta}");
    let (st, jar, _) = get(format!("{dir}/lib-1.0-20261130.010102-2.jar")).await;
    assert_eq!((st, jar.as_str()), (200, "build two"));
    let (st, sha1, _) = get(format!("{dir}/maven-metadata.xml.sha1")).await;
    assert_eq!(st, 200);
    assert_eq!(
        sha1.trim(),
        hex::encode(<sha1::Sha1 as sha1::Digest>::digest(meta.as_bytes())),
        "the sidecar matches the relayed bytes"
    );

    // The upstream goes away: the last metadata is served stale, the builds from the cache.
    upstream.stop();
    let (st, stale, cache) = get(format!("{dir}/maven-metadata.xml")).await;
    assert_eq!((st, cache.as_deref()), (200, Some("STALE")));
    assert_eq!(stale, meta);
    let (st, jar, _) = get(format!("{dir}/lib-1.0-20261130.010102-2.jar")).await;
    assert_eq!((st, jar.as_str()), (200, "build two"));
}

/// Harness `negativeCacheTTL`: how long an upstream 404 is believed, per proxy (0: never).
async fn negative_cache_ttl_per_proxy(b: Backend) {
    let stub = crate::stub::Stub::start().await;
    let s = Server::start(b).await;
    let body = |ttl: i64| {
        json!({"identifier": "neg", "packageType": "GENERIC", "parentRef": "acme",
               "config": {"type": "UPSTREAM", "source": "Custom", "url": format!("{}/files", stub.base),
                          "authType": "Anonymous", "negativeCacheTTL": ttl}})
    };
    let (st, v) = call(
        s.client
            .post(s.url("/har/api/v1/registry"))
            .header("x-api-key", &s.token)
            .json(&body(0)),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["data"]["config"]["negativeCacheTTL"], 0, "{v}");
    let missing = "/pkg/acme/neg/generic/tool/1.0/gone.bin";
    for _ in 0..2 {
        assert_eq!(s.get(missing).send().await.unwrap().status(), 404);
    }
    assert_eq!(
        stub.hits("/files/tool/1.0/gone.bin"),
        2,
        "0: every miss asks again"
    );
    let (st, v) = call(
        s.client
            .put(s.url("/har/api/v1/registry/acme/neg/+"))
            .header("x-api-key", &s.token)
            .json(&body(300)),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["config"]["negativeCacheTTL"], 300, "{v}");
    for _ in 0..3 {
        assert_eq!(s.get(missing).send().await.unwrap().status(), 404);
    }
    assert_eq!(
        stub.hits("/files/tool/1.0/gone.bin"),
        3,
        "remembered for 300 s"
    );
}

both_backends!(
    maven_snapshots_through_a_proxy,
    negative_cache_ttl_per_proxy
);

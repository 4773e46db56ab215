//! Proxies on several servers sharing the metadata store and the blob store: concurrent cold
//! misses spread over the servers cause one upstream fetch; a metadata document one server
//! refreshed is what every server serves next.

use crate::both_backends;
use crate::common::{Backend, Server};
use crate::proxy::gitflic_proxy;
use crate::stub::{Reply, Stub};
use serde_json::{Value, json};

/// 60 concurrent cold requests for one file, spread over three servers: one upstream request,
/// the whole file for every client.
async fn misses_on_three_servers_fetch_once(b: Backend) {
    let stub = Stub::start().await;
    let a = Server::start(b).await;
    gitflic_proxy(
        &a,
        "gen",
        "generic",
        &format!("{}/files", stub.base),
        "mirror",
        "UPSTREAM-SECRET",
        0,
    )
    .await;
    let data = a.data_dir().display().to_string();
    let mut servers = vec![a];
    for _ in 0..2 {
        let s = Server::start_with(
            tempfile::tempdir().unwrap(),
            servers[0].database_url.clone(),
            &[
                ("ARCA_ADMIN_TOKEN", servers[0].token.as_str()),
                ("ARCA_DATA_DIR", data.as_str()),
            ],
        )
        .await;
        servers.push(s);
    }
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let path = "/files/tool/1.0/big.bin";
    stub.set(
        path,
        Reply::Slow(big.clone(), std::time::Duration::from_millis(400)),
    );
    let all = futures::future::join_all((0..60).map(|i| {
        let s = &servers[i % 3];
        let req = s
            .client
            .get(s.url("/pkg/default/gen/generic/tool/1.0/big.bin"))
            .header("x-api-key", &s.token);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
        }
    }))
    .await;
    for (status, body) in &all {
        assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
        assert!(*body == big, "every client gets the whole file");
    }
    assert_eq!(stub.hits(path), 1, "one upstream request for three servers");
}

/// Servers keep stored upstream documents and what they derive from them (a p2 file's versions,
/// a NuGet registration rewritten, a flat version list) in memory, by digest: a document another
/// server refreshed past the interval is served with its new versions at once by a server that
/// served the old copy a moment before, without that server asking the upstream.
async fn a_document_refreshed_on_another_server_is_served_at_once(b: Backend) {
    let stub = Stub::start().await;
    let a = Server::start(b).await;
    let up = |p: &str| format!("{}/{p}", stub.base);
    gitflic_proxy(&a, "php", "composer", &up("php"), "mirror", "S", 3).await;
    gitflic_proxy(&a, "nu", "nuget", &up("nu"), "mirror", "S", 3).await;
    let data = a.data_dir().display().to_string();
    let other = Server::start_with(
        tempfile::tempdir().unwrap(),
        a.database_url.clone(),
        &[
            ("ARCA_ADMIN_TOKEN", a.token.as_str()),
            ("ARCA_DATA_DIR", data.as_str()),
        ],
    )
    .await;
    let ok = |v: Value| Reply::Ok(v.to_string().into_bytes(), "application/json");
    stub.set(
        "/php/packages.json",
        ok(json!({"packages": [], "metadata-url": "/php/p2/%package%.json"})),
    );
    stub.set(
        "/nu/index.json",
        ok(json!({"version": "3.0.0", "resources": [
            {"@id": up("nu/flat/"), "@type": "PackageBaseAddress/3.0.0"},
            {"@id": up("nu/reg/"), "@type": "RegistrationsBaseUrl/3.6.0"}]})),
    );
    let publish = |versions: &[&str]| {
        let p2: Vec<Value> = versions
            .iter()
            .map(|v| {
                json!({"name": "acme/lib", "version": v, "version_normalized": format!("{v}.0"),
                       "dist": {"type": "zip", "url": format!("/dl/lib-{v}.zip"), "reference": format!("r{v}")}})
            })
            .collect();
        stub.set(
            "/php/p2/acme/lib.json",
            ok(json!({"packages": {"acme/lib": p2}})),
        );
        stub.set("/nu/flat/lib/index.json", ok(json!({"versions": versions})));
        let items: Vec<Value> = versions
            .iter()
            .map(|v| {
                json!({"@id": up(&format!("nu/reg/lib/{v}.json")),
                       "catalogEntry": {"id": "Lib", "version": v,
                                        "@id": up(&format!("nu/reg/lib/{v}.json"))},
                       "packageContent": up(&format!("nu/flat/lib/{v}/lib.{v}.nupkg"))})
            })
            .collect();
        stub.set(
            "/nu/reg/lib/index.json",
            ok(
                json!({"count": 1, "items": [{"@id": up("nu/reg/lib/index.json#page"),
                "lower": versions[0], "upper": versions[versions.len() - 1],
                "count": items.len(), "items": items}]}),
            ),
        );
    };
    let expect = |v: &[&str]| (json!(v).as_array().unwrap().clone(), json!(v), json!(v));
    publish(&["1.0.0"]);
    assert_eq!(listed(&a).await, expect(&["1.0.0"]));
    assert_eq!(listed(&other).await, expect(&["1.0.0"]));
    let fetches = stub.hits("/php/p2/acme/lib.json") + stub.hits("/nu/reg/lib/index.json");
    assert_eq!(fetches, 2, "the second server read what the first stored");

    publish(&["1.0.0", "1.1.0"]);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(listed(&a).await, expect(&["1.0.0", "1.1.0"]));
    assert_eq!(
        listed(&other).await,
        expect(&["1.0.0", "1.1.0"]),
        "the copy the first server refreshed, not the one this server served before"
    );
    let fetches = stub.hits("/php/p2/acme/lib.json") + stub.hits("/nu/reg/lib/index.json");
    assert_eq!(
        fetches, 4,
        "the second server asked no upstream: the row was fresh"
    );
}

/// What `s` serves of the package of [`a_document_refreshed_on_another_server_is_served_at_once`]:
/// the versions of its p2 file, NuGet flat list and NuGet registration, as a client reads them.
async fn listed(s: &Server) -> (Vec<Value>, Value, Value) {
    let get = |path: &str| {
        let req = s
            .client
            .get(s.url(&format!("/pkg/default/acme/-/{path}")))
            .header("x-api-key", &s.token);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let p2 = get("php/composer/p2/acme/lib.json").await;
    let flat = get("nu/nuget/package/lib/index.json").await;
    let reg = get("nu/nuget/registration/lib/index.json").await;
    let reg_versions: Vec<Value> = reg["items"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert!(
                i["packageContent"].as_str().unwrap().starts_with(&s.base),
                "rewritten for this server: {i}"
            );
            i["catalogEntry"]["version"].clone()
        })
        .collect();
    let p2_versions: Vec<Value> = p2["packages"]["acme/lib"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].clone())
        .collect();
    (
        p2_versions,
        flat["versions"].clone(),
        Value::Array(reg_versions),
    )
}

both_backends!(
    misses_on_three_servers_fetch_once,
    a_document_refreshed_on_another_server_is_served_at_once
);

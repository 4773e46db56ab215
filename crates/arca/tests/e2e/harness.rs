use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Server, call};

fn generic(identifier: &str, parent: &str) -> serde_json::Value {
    json!({"identifier": identifier, "packageType": "GENERIC", "parentRef": parent, "config": {"type": "VIRTUAL"}})
}

async fn registry_crud_at_every_depth(b: Backend) {
    let s = Server::start(b).await;
    for (space, ident) in [
        ("acme", "r-acc"),
        ("acme/web", "r-org"),
        ("acme/web/shop", "r-proj"),
    ] {
        let created = s
            .harness_registry(
                space,
                json!({"identifier": ident, "packageType": "GENERIC", "parentRef": space, "description": "d1",
                       "labels": ["a", "b"], "allowedPattern": ["^tool:"], "blockedPattern": [], "isPublic": false,
                       "config": {"type": "VIRTUAL", "upstreamProxies": []}}),
            )
            .await;
        assert_eq!(created["identifier"], ident);
        assert_eq!(created["packageType"], "GENERIC");
        assert_eq!(created["labels"], json!(["a", "b"]));
        assert_eq!(created["config"]["type"], "VIRTUAL");
        assert_eq!(created["url"], s.url(&format!("/pkg/acme/{ident}/generic")));
        assert!(
            created["createdAt"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > 1_600_000_000_000
        );
        let uuid = created["uuid"].as_str().unwrap().to_string();

        // Both ref forms: raw with the /+ terminator, and percent-encoded.
        let (st, v) = call(s.get(&format!("/har/api/v1/registry/{space}/{ident}/+"))).await;
        assert_eq!((st, v["status"].as_str()), (200, Some("SUCCESS")), "{v}");
        assert_eq!(v["data"]["uuid"], uuid.as_str());
        let enc = format!("{space}/{ident}").replace('/', "%2F");
        let (st, v) = call(s.get(&format!("/har/api/v1/registry/{enc}"))).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["data"]["uuid"], uuid.as_str());
        // The terminator percent-encoded, as clients that encode every reserved character send it.
        let (st, v) = call(s.get(&format!("/har/api/v1/registry/{space}/{ident}/%2B"))).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["data"]["uuid"], uuid.as_str());
        // The same routes under /api/v1.
        let (st, _) = call(s.get(&format!("/api/v1/registry/{space}/{ident}/+"))).await;
        assert_eq!(st, 200);
        // Wrong scope in the ref: not found.
        let (st, _) = call(s.get(&format!("/har/api/v1/registry/acme/other/{ident}/+"))).await;
        assert_eq!(st, 404);

        let (st, v) = call(s.put(
            &format!("/har/api/v1/registry/{space}/{ident}/+"),
            json!({"identifier": ident, "packageType": "GENERIC", "description": "d2", "labels": ["c"], "isPublic": true,
                   "cleanupPolicy": [{"name": "old", "expireDays": 30, "packagePrefix": ["x"], "versionPrefix": ["0."]}]}),
        ))
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["data"]["description"], "d2");
        assert_eq!(v["data"]["labels"], json!(["c"]));
        assert_eq!(v["data"]["isPublic"], true);
        assert_eq!(v["data"]["cleanupPolicy"][0]["expireDays"], 30);
        assert_eq!(
            v["data"]["allowedPattern"],
            json!(["^tool:"]),
            "unsent fields are kept"
        );

        let (st, v) = call(s.put(
            &format!("/har/api/v1/registry/{space}/{ident}/+"),
            json!({"identifier": "renamed"}),
        ))
        .await;
        assert_eq!(
            (st, v["details"]["field"].as_str()),
            (400, Some("identifier"))
        );
        let (st, v) = call(s.put(
            &format!("/har/api/v1/registry/{space}/{ident}/+"),
            json!({"packageType": "NPM"}),
        ))
        .await;
        assert_eq!(
            (st, v["details"]["field"].as_str()),
            (400, Some("packageType"))
        );

        let (st, v) = call(s.delete(&format!("/har/api/v1/registry/{space}/{ident}/+"))).await;
        assert_eq!((st, v), (200, json!({"status": "SUCCESS"})));
        let (st, v) = call(s.get(&format!("/har/api/v1/registry/{space}/{ident}/+"))).await;
        assert_eq!(st, 404);
        assert_eq!(v["code"], "404");
    }
}

async fn duplicate_identifier_in_account_is_409(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "dup").await;
    // Identifiers are unique per account, across orgs and projects.
    let (st, v) = call(s.post(
        "/har/api/v1/registry?space_ref=acme/web/+",
        generic("dup", "acme/web"),
    ))
    .await;
    assert_eq!(st, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("dup"));
    // Another account may reuse it.
    let (st, _) = call(s.post(
        "/har/api/v1/registry?space_ref=other/+",
        generic("dup", "other"),
    ))
    .await;
    assert_eq!(st, 201);
}

async fn validation_errors_name_the_field(b: Backend) {
    let s = Server::start(b).await;
    let proxy = s
        .harness_registry(
            "acme",
            json!({"identifier": "npm-proxy", "packageType": "NPM", "parentRef": "acme",
                   "config": {"type": "UPSTREAM", "source": "Custom", "url": "http://127.0.0.1:9/", "authType": "Anonymous"}}),
        )
        .await;
    assert_eq!(proxy["config"]["type"], "UPSTREAM");
    s.generic_registry("acme", "plain").await;
    let long = "a".repeat(256);
    let cases = vec![
        (
            json!({"packageType": "GENERIC", "parentRef": "acme"}),
            "identifier",
        ),
        (generic("Bad_Name!", "acme"), "identifier"),
        (generic("-lead", "acme"), "identifier"),
        (generic(&long, "acme"), "identifier"),
        (
            json!({"identifier": "x1", "packageType": "FOO", "parentRef": "acme"}),
            "packageType",
        ),
        (
            json!({"identifier": "x1", "parentRef": "acme"}),
            "packageType",
        ),
        (
            json!({"identifier": "x1", "packageType": "GENERIC", "parentRef": "acme", "config": {"type": "NOPE"}}),
            "config.type",
        ),
        (
            json!({"identifier": "x1", "packageType": "GENERIC", "parentRef": "acme", "allowedPattern": ["("]}),
            "allowedPattern",
        ),
        (
            json!({"identifier": "x1", "packageType": "GENERIC", "parentRef": "acme", "blockedPattern": ["[a-"]}),
            "blockedPattern",
        ),
        (
            json!({"identifier": "x1", "packageType": "GENERIC", "parentRef": "a/b/c/d"}),
            "parentRef",
        ),
        (
            json!({"identifier": "x1", "packageType": "NPM", "parentRef": "acme",
                "config": {"type": "UPSTREAM", "url": "ftp://127.0.0.1/", "authType": "Anonymous"}}),
            "url",
        ),
        (
            json!({"identifier": "x1", "packageType": "NPM", "parentRef": "acme",
                "config": {"type": "UPSTREAM", "authType": "Anonymous"}}),
            "config.url",
        ),
        (
            json!({"identifier": "x1", "packageType": "NPM", "parentRef": "acme",
                "config": {"type": "UPSTREAM", "url": "http://127.0.0.1/", "authType": "Magic"}}),
            "config.authType",
        ),
        (
            // Every package type can be an UPSTREAM (COMPOSER, OPM, DEBIAN, CRAN as Arca
            // extensions); a Debian proxy's upstream key must be a key.
            json!({"identifier": "x1", "packageType": "DEBIAN", "parentRef": "acme",
                "config": {"type": "UPSTREAM", "url": "http://127.0.0.1/", "authType": "Anonymous",
                           "upstreamPublicKey": "not a key"}}),
            "upstreamPublicKey",
        ),
        (
            json!({"identifier": "x1", "packageType": "NPM", "parentRef": "acme",
                "config": {"type": "VIRTUAL", "upstreamProxies": ["missing"]}}),
            "config.upstreamProxies",
        ),
        (
            json!({"identifier": "x1", "packageType": "GENERIC", "parentRef": "acme",
                "config": {"type": "VIRTUAL", "upstreamProxies": ["npm-proxy"]}}),
            "config.upstreamProxies",
        ),
        (
            json!({"identifier": "x1", "packageType": "GENERIC", "parentRef": "acme",
                "config": {"type": "VIRTUAL", "upstreamProxies": ["plain"]}}),
            "config.upstreamProxies",
        ),
    ];
    for (body, field) in cases {
        let (st, v) = call(s.post("/har/api/v1/registry?space_ref=acme/+", body.clone())).await;
        assert_eq!(st, 400, "{body} -> {v}");
        assert_eq!(v["code"], "400");
        assert_eq!(v["details"]["field"], field, "{body} -> {v}");
        assert!(!v["message"].as_str().unwrap().is_empty());
    }
    let r = s
        .client
        .post(s.url("/har/api/v1/registry"))
        .header("x-api-key", &s.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Nothing of the refused requests was stored.
    let (_, v) = call(s.get("/har/api/v1/spaces/acme/+/registries?size=100")).await;
    let names: Vec<&str> = v["data"]["registries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"x1"), "{names:?}");
}

async fn upstream_cache_and_hosted_with_upstreams(b: Backend) {
    let s = Server::start(b).await;
    let proxy = s
        .harness_registry(
            "acme",
            json!({"identifier": "up", "packageType": "PYTHON", "parentRef": "acme",
                   "config": {"type": "UPSTREAM", "source": "Custom", "url": "http://127.0.0.1:9/simple",
                              "authType": "UserPassword", "auth": {"userName": "bob", "password": "s3cret", "secretIdentifier": "pw"}}}),
        )
        .await;
    assert_eq!(
        proxy["url"], "http://127.0.0.1:9/simple",
        "an upstream's url is its remote"
    );
    assert_eq!(proxy["config"]["auth"]["userName"], "bob");
    assert!(
        !proxy.to_string().contains("s3cret"),
        "secrets are never returned: {proxy}"
    );
    // Its cache is the server's own: the Harness dialect shows neither caches nor trash registries.
    let (st, _) = call(s.get("/har/api/v1/registry/acme/up-cache/+")).await;
    assert_eq!(st, 404);
    let (_, list) = call(s.get("/har/api/v1/spaces/acme/+/registries?size=50")).await;
    let types: Vec<(String, String)> = list["data"]["registries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["identifier"].as_str().unwrap().to_string(),
                r["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(types.contains(&("up".into(), "PROXY".into())), "{types:?}");
    assert!(
        types.iter().all(|(_, k)| k != "CACHE" && k != "TRASH"),
        "{types:?}"
    );

    let hosted = s
        .harness_registry(
            "acme/team",
            json!({"identifier": "py", "packageType": "PYTHON", "parentRef": "acme/team",
                   "config": {"type": "VIRTUAL", "upstreamProxies": ["up"]}}),
        )
        .await;
    assert_eq!(hosted["config"]["upstreamProxies"], json!(["up"]));
    // A proxy in reach is included; deleting it is refused while included.
    let (st, v) = call(s.delete("/har/api/v1/registry/acme/up/+")).await;
    assert_eq!(st, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("'py'"), "{v}");
    let (st, _) = call(s.delete("/har/api/v1/registry/acme/up-cache/+")).await;
    assert_eq!(st, 404, "a cache is not a registry of the dialect");
    // Remove the upstream from the hosted registry, then the proxy (and its cache) can go.
    let (st, v) = call(s.put(
        "/har/api/v1/registry/acme/team/py/+",
        json!({"config": {"type": "VIRTUAL", "upstreamProxies": []}}),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = call(s.delete("/har/api/v1/registry/acme/up/+")).await;
    assert_eq!(st, 200);
    let (st, _) = call(s.get("/har/api/v1/registry/acme/up-cache/+")).await;
    assert_eq!(st, 404);
    // An upstream in a child scope is out of reach for a registry in the parent.
    s.harness_registry(
        "acme/team",
        json!({"identifier": "up2", "packageType": "PYTHON", "parentRef": "acme/team",
               "config": {"type": "UPSTREAM", "url": "http://127.0.0.1:9/", "authType": "Anonymous"}}),
    )
    .await;
    let (st, v) = call(s.post(
        "/har/api/v1/registry?space_ref=acme/+",
        json!({"identifier": "py2", "packageType": "PYTHON", "parentRef": "acme", "config": {"type": "VIRTUAL", "upstreamProxies": ["up2"]}}),
    ))
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("out of reach"));
}

async fn registry_listing_paging_filters_and_scopes(b: Backend) {
    let s = Server::start(b).await;
    for i in 0..5 {
        s.generic_registry("acme/web", &format!("gen-{i}")).await;
    }
    s.harness_registry(
        "acme/web",
        json!({"identifier": "npm-1", "packageType": "NPM", "parentRef": "acme/web"}),
    )
    .await;
    s.harness_registry(
        "acme/web",
        json!({"identifier": "npm-up", "packageType": "NPM", "parentRef": "acme/web",
               "config": {"type": "UPSTREAM", "url": "http://127.0.0.1:9/", "authType": "Anonymous"}}),
    )
    .await;
    s.generic_registry("acme/web/shop", "deep").await;

    // Harness paging: page is 0-based for the offset; pageIndex echoes page (1 when omitted); size defaults to 10.
    let (_, v) = call(s.get("/har/api/v1/spaces/acme/web/+/registries?package_type=GENERIC")).await;
    let d = &v["data"];
    assert_eq!(
        (
            d["itemCount"].as_i64(),
            d["pageSize"].as_i64(),
            d["pageIndex"].as_i64(),
            d["pageCount"].as_i64()
        ),
        (Some(5), Some(10), Some(1), Some(1))
    );
    let mut seen = Vec::new();
    for page in 0..3 {
        let (_, v) = call(s.get(&format!("/har/api/v1/spaces/acme%2Fweb/registries?package_type=GENERIC&size=2&page={page}&sort_field=identifier&sort_order=DESC"))).await;
        let d = &v["data"];
        assert_eq!(d["pageIndex"].as_i64(), Some(page));
        assert_eq!(d["pageCount"].as_i64(), Some(3));
        for r in d["registries"].as_array().unwrap() {
            seen.push(r["identifier"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, vec!["gen-4", "gen-3", "gen-2", "gen-1", "gen-0"]);
    let (_, v) = call(s.get("/har/api/v1/spaces/acme/web/+/registries?size=2&page=9")).await;
    assert_eq!(v["data"]["registries"], json!([]), "past the end is empty");
    // type, repeated package_type, search_term.
    let (_, v) = call(s.get("/har/api/v1/spaces/acme/web/+/registries?type=UPSTREAM")).await;
    assert_eq!(v["data"]["itemCount"], 1);
    assert_eq!(v["data"]["registries"][0]["identifier"], "npm-up");
    let (_, v) = call(s.get("/har/api/v1/spaces/acme/web/+/registries?package_type=NPM&package_type=GENERIC&type=VIRTUAL")).await;
    // Five generic and npm-1 (npm-up's cache and the trash registries are not listed).
    assert_eq!(v["data"]["itemCount"], 6);
    let (_, v) = call(s.get("/har/api/v1/spaces/acme/web/+/registries?search_term=gen-3")).await;
    assert_eq!(v["data"]["itemCount"], 1);
    // Scope: descendants includes the project, ancestors the account (no registry in it).
    let (_, v) =
        call(s.get("/har/api/v1/spaces/acme/web/+/registries?scope=descendants&size=50")).await;
    assert_eq!(v["data"]["itemCount"], 8);
    let (_, v) =
        call(s.get("/har/api/v1/spaces/acme/web/shop/+/registries?scope=ancestors&size=50")).await;
    assert_eq!(v["data"]["itemCount"], 8);
    // Bad paging input.
    for q in [
        "size=0",
        "size=abc",
        "page=-1",
        "sort_order=UP",
        "scope=sideways",
        "type=LOCAL",
        "package_type=FOO",
    ] {
        let (st, _) = call(s.get(&format!("/har/api/v1/spaces/acme/web/+/registries?{q}"))).await;
        assert_eq!(st, 400, "{q}");
    }
    let (st, _) = call(s.get("/har/api/v1/spaces/nowhere/+/registries")).await;
    assert_eq!(st, 404);
}

async fn artifacts_versions_files_labels_and_delete(b: Backend) {
    let s = Server::start(b).await;
    let reg = s
        .harness_registry("acme", json!({"identifier": "files", "packageType": "GENERIC", "parentRef": "acme", "isDeletePackageAllowed": true}))
        .await;
    assert_eq!(reg["isDeletePackageAllowed"], true);
    for (p, v, f, body) in [
        ("alpha", "1.0", "a.txt", "aaaa"),
        ("alpha", "2.0", "a.txt", "bb"),
        ("beta", "1.0", "b.bin", "c"),
        ("gamma", "0.1", "g.txt", "ggg"),
    ] {
        let r = s
            .client
            .put(s.url(&format!("/pkg/acme/files/generic/{p}/{v}/{f}")))
            .header("x-api-key", &s.token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let (_, v) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifacts?size=2&page=0&sort_field=name"))
            .await;
    let d = &v["data"];
    assert_eq!(
        (d["itemCount"].as_i64(), d["pageCount"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(d["artifacts"][0]["name"], "alpha");
    assert_eq!(d["artifacts"][0]["latestVersion"], "2.0");
    assert_eq!(d["artifacts"][0]["registryIdentifier"], "files");
    assert_eq!(d["artifacts"][0]["packageType"], "GENERIC");
    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+/artifacts?search_term=amm")).await;
    assert_eq!(v["data"]["artifacts"][0]["name"], "gamma");

    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+/artifact/alpha/+/versions?sort_field=name&sort_order=DESC")).await;
    let versions: Vec<&str> = v["data"]["artifactVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(versions, vec!["2.0", "1.0"]);
    assert_eq!(v["data"]["artifactVersions"][1]["size"], "4 B");
    assert_eq!(v["data"]["artifactVersions"][1]["fileCount"], 1);

    let (_, v) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifact/alpha/+/version/1.0/files")).await;
    let f = &v["data"]["files"][0];
    assert_eq!(f["name"], "a.txt");
    assert_eq!(
        f["checksums"][1],
        "SHA-256: 61be55a8e2f6b4e172338bddf184d6dbee29c98853e0a0485ecee7f27b9af0b4"
    );
    assert!(
        f["downloadCommand"]
            .as_str()
            .unwrap()
            .contains("/pkg/acme/files/generic/alpha/1.0/a.txt")
    );
    let (st, v) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifact/alpha/+/version/1.0/file/a.txt"))
            .await;
    assert_eq!(st, 200);
    assert_eq!(
        v["downloadUrl"],
        s.url("/pkg/acme/files/generic/alpha/1.0/a.txt")
    );
    let (st, _) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifact/alpha/+/version/9.9/files")).await;
    assert_eq!(st, 404);
    let (st, v) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifact/alpha/+/version/1.0/summary")).await;
    assert_eq!((st, v["data"]["version"].as_str()), (200, Some("1.0")));
    let (st, v) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifact/alpha/+/version/2.0/details")).await;
    assert_eq!((st, v["data"]["size"].as_str()), (200, Some("2 B")));

    // Labels: replace, list distinct, filter by label.
    let (st, v) = call(s.put(
        "/har/api/v1/registry/acme/files/+/artifact/beta/+/labels",
        json!({"labels": ["prod", "x"]}),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["labels"], json!(["prod", "x"]));
    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+/artifact/labels")).await;
    assert_eq!(v["data"]["labels"], json!(["prod", "x"]));
    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+/artifacts?label=prod")).await;
    assert_eq!(v["data"]["itemCount"], 1);
    assert_eq!(v["data"]["artifacts"][0]["name"], "beta");
    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+/artifact/beta/summary")).await;
    assert_eq!(v["data"]["imageName"], "beta");

    // Space-wide artifact list.
    let (_, v) =
        call(s.get("/har/api/v1/spaces/acme/+/artifacts?reg_identifier=files&sort_field=name"))
            .await;
    assert_eq!(v["data"]["itemCount"], 3);
    assert_eq!(v["data"]["artifacts"][0]["version"], "2.0");
    assert!(
        v["data"]["artifacts"][0]["pullCommand"]
            .as_str()
            .unwrap()
            .contains("alpha/2.0")
    );

    let sizes = || async {
        let (_, v) =
            call(s.get("/har/api/v1/spaces/acme/+/registries?sort_field=identifier")).await;
        v["data"]["registries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["identifier"].as_str().unwrap().to_string(),
                    r["registrySize"].as_str().unwrap().to_string(),
                    r["artifactsCount"].as_i64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes().await, vec![("files".into(), "10 B".into(), 3)]);
    // Sorting by a statistic orders by the numbers the list shows (downloads are counted in
    // batches, so both may still be 0 there: only the answer is checked).
    for field in ["artifactsCount", "registrySize", "downloadsCount"] {
        let (st, v) = call(s.get(&format!(
            "/har/api/v1/spaces/acme/+/registries?sort_field={field}&sort_order=DESC"
        )))
        .await;
        assert_eq!(st, 200, "{field}: {v}");
        assert_eq!(v["data"]["itemCount"], 1, "{field}");
        assert_eq!(v["data"]["registries"][0]["identifier"], "files", "{field}");
    }
    // Delete a version: gone from the registry, listed there as deleted, file no longer served.
    let (st, _) =
        call(s.delete("/har/api/v1/registry/acme/files/+/artifact/alpha/+/version/1.0")).await;
    assert_eq!(st, 200);
    assert_eq!(sizes().await, vec![("files".into(), "6 B".into(), 3)]);
    let r = s
        .client
        .get(s.url("/pkg/acme/files/generic/alpha/1.0/a.txt"))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, v) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifact/alpha/versions?deleted=only")).await;
    assert_eq!(v["data"]["artifactVersions"][0]["name"], "1.0");
    assert!(
        v["data"]["artifactVersions"][0]["deletedAt"].is_string(),
        "{v}"
    );
    // Delete a whole artifact.
    let (st, _) = call(s.delete("/har/api/v1/registry/acme/files/+/artifact/gamma")).await;
    assert_eq!(st, 200);
    let (_, v) = call(s.get("/har/api/v1/registry/acme/files/+/artifacts")).await;
    let names: Vec<&str> = v["data"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(!names.contains(&"gamma"));
    // Deleting what is only deleted purges it; then it is gone.
    let (st, _) = call(s.delete("/har/api/v1/registry/acme/files/+/artifact/gamma")).await;
    assert_eq!(st, 200);
    let (st, _) = call(s.delete("/har/api/v1/registry/acme/files/+/artifact/gamma")).await;
    assert_eq!(st, 404);
}

async fn client_setup_details_are_real_commands(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "pub", "packageType": "GENERIC", "parentRef": "acme", "isPublic": true})).await;
    let (st, v) = call(
        s.get("/har/api/v1/registry/acme/pub/+/client-setup-details?artifact=tool&version=1.2"),
    )
    .await;
    assert_eq!(st, 200);
    let text = v["data"].to_string();
    assert_eq!(v["data"]["mainHeader"], "Generic Client Setup");
    assert_eq!(
        v["data"]["sections"][0]["steps"][0]["type"],
        "GenerateToken"
    );
    assert!(
        text.contains(&format!(
            "curl --fail-with-body -u admin:<TOKEN> -T <FILE> {}/pkg/acme/pub/generic/tool/1.2/<FILE>",
            s.base
        )),
        "{text}"
    );
    // Anonymous callers of a public registry get the read-only variant.
    let (st, v) = call(
        s.client
            .get(s.url("/har/api/v1/registry/acme/pub/+/client-setup-details")),
    )
    .await;
    assert_eq!(st, 200);
    let text = v["data"].to_string();
    assert!(
        !text.contains("GenerateToken") && !text.contains("Upload"),
        "{text}"
    );
    assert!(text.contains("Download"));
    // Every package type has its own commands.
    for (pt, needle) in [
        ("NPM", "_authToken"),
        ("PYTHON", "/simple/"),
        ("MAVEN", "<distributionManagement>"),
        ("CARGO", "sparse+"),
        ("NUGET", "index.json"),
        ("DOCKER", "docker login"),
        ("HELM", "helm push"),
        ("RPM", "gpgkey"),
        ("DEBIAN", "signed-by="),
        ("COMPOSER", "http-basic"),
        ("CRAN", "options(repos"),
        ("OPM", "/opm/push"),
    ] {
        let id = format!("setup-{}", pt.to_lowercase());
        s.harness_registry(
            "acme",
            json!({"identifier": id, "packageType": pt, "parentRef": "acme"}),
        )
        .await;
        let (_, v) = call(s.get(&format!(
            "/har/api/v1/registry/acme/{id}/+/client-setup-details"
        )))
        .await;
        let text = v["data"].to_string();
        assert!(text.contains(needle), "{pt}: {text}");
        assert!(text.contains(&id), "{pt}: {text}");
    }
}

/// `space_ref=acme/+` typed into a query string unencoded: form decoding makes the `+` a space.
async fn space_ref_with_unencoded_terminator(b: Backend) {
    let s = Server::start(b).await;
    for (q, ident) in [
        ("acme/+", "plain"),
        ("acme%2F%2B", "encoded"),
        ("acme", "bare"),
    ] {
        let (st, v) = call(s.post(
            &format!("/har/api/v1/registry?space_ref={q}"),
            json!({"identifier": ident, "packageType": "GENERIC", "config": {"type": "VIRTUAL"}}),
        ))
        .await;
        assert_eq!(st, 201, "{q}: {v}");
        let (st, got) = call(s.get(&format!("/har/api/v1/registry/acme/{ident}/+"))).await;
        assert_eq!(st, 200, "{q}: {got}");
        assert_eq!(got["data"]["uuid"], v["data"]["uuid"]);
    }
}

/// A client-supplied page so large that page × size overflows is the client's error.
async fn huge_page_is_400(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    let big = i64::MAX / 2;
    for path in [
        format!("/har/api/v1/spaces/acme/+/registries?page={big}&size=10"),
        format!("/har/api/v1/spaces/acme/+/artifacts?page={big}&size=10"),
        format!("/har/api/v1/registry/acme/files/+/artifacts?page={big}&size=10"),
        format!("/har/api/v1/registry/acme/files/+/artifact/labels?page={big}&size=10"),
    ] {
        let (st, v) = call(s.get(&path)).await;
        assert_eq!(st, 400, "{path}: {v}");
    }
    // The largest page that does not overflow is just empty.
    let (st, v) = call(s.get(&format!(
        "/har/api/v1/spaces/acme/+/registries?page={}&size=1",
        i64::MAX
    )))
    .await;
    assert_eq!(st, 200, "{v}");
}

/// A version's file is found by its exact name, not by the first name containing it.
async fn single_file_lookup_is_exact(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    for (f, body) in [("0a.txt", "zero"), ("A.txt", "upper"), ("a.txt", "lower")] {
        let r = s
            .client
            .put(s.url(&format!("/pkg/acme/files/generic/alpha/1.0/{f}")))
            .header("x-api-key", &s.token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    for f in ["a.txt", "A.txt", "0a.txt"] {
        let (st, v) = call(s.get(&format!(
            "/har/api/v1/registry/acme/files/+/artifact/alpha/+/version/1.0/file/{f}"
        )))
        .await;
        assert_eq!(st, 200, "{f}: {v}");
        assert_eq!(
            v["downloadUrl"],
            s.url(&format!("/pkg/acme/files/generic/alpha/1.0/{f}"))
        );
    }
    let (st, _) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifact/alpha/+/version/1.0/file/.txt"))
            .await;
    assert_eq!(st, 404);
}

both_backends!(
    space_ref_with_unencoded_terminator,
    huge_page_is_400,
    single_file_lookup_is_exact,
    registry_crud_at_every_depth,
    duplicate_identifier_in_account_is_409,
    validation_errors_name_the_field,
    upstream_cache_and_hosted_with_upstreams,
    registry_listing_paging_filters_and_scopes,
    artifacts_versions_files_labels_and_delete,
    client_setup_details_are_real_commands,
);

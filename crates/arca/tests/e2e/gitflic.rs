use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call};

fn auth(s: &Server, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("authorization", format!("token {}", s.token))
}

async fn gf_post(s: &Server, path: &str, body: Value) -> (u16, Value) {
    call(auth(s, s.client.post(s.url(path))).json(&body)).await
}
async fn gf_put(s: &Server, path: &str, body: Value) -> (u16, Value) {
    call(auth(s, s.client.put(s.url(path))).json(&body)).await
}
async fn gf_get(s: &Server, path: &str) -> (u16, Value) {
    call(auth(s, s.client.get(s.url(path)))).await
}
async fn gf_delete(s: &Server, path: &str) -> (u16, Value) {
    call(auth(s, s.client.delete(s.url(path)))).await
}

fn local(name: &str, pt: &str) -> Value {
    json!({"type": "LOCAL", "repositoryName": name, "description": "Local", "packageType": pt,
           "settings": {"hasAnonymousAccess": true, "isDeletePackageAllowed": true, "packageReuploadType": "NONE"}})
}

async fn crud_in_project_company_and_instance(b: Backend) {
    let s = Server::start(b).await;
    // (list/create base, modify/delete base)
    let scopes = [
        (
            "/registry/project/alice/webapp/repositories",
            "/registry/project/alice/webapp/repositories",
        ),
        (
            "/registry/company/acme/repositories",
            "/registry/company/acme/repositories",
        ),
        (
            "/registry/instance/anything/repositories",
            "/registry/instance/repositories",
        ),
    ];
    for (i, (base, mbase)) in scopes.iter().enumerate() {
        let name = format!("generic-local-{i}");
        let (st, v) = gf_post(&s, base, local(&name, "generic")).await;
        assert_eq!(st, 201, "{v}");
        assert_eq!(v["title"], name.as_str());
        assert_eq!(v["repositoryType"], "LOCAL");
        assert_eq!(v["packageType"], "generic");
        assert_eq!(v["description"], "Local");
        let uuid = v["repositoryUuid"].as_str().unwrap().to_string();

        let (st, v) = gf_get(&s, &format!("{base}/{uuid}")).await;
        assert_eq!(st, 200);
        assert_eq!(v["settings"]["packageReuploadType"], "NONE");
        assert_eq!(v["settings"]["hasAnonymousAccess"], true);
        let (st, _) = gf_get(&s, &format!("{mbase}/{uuid}")).await;
        assert_eq!(st, 200);

        let (st, v) = gf_put(&s, &format!("{mbase}/{uuid}"), json!({"type": "LOCAL", "description": "changed",
                                                                   "settings": {"packageReuploadType": "OVERRIDE"}})).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["description"], "changed");
        let (_, v) = gf_get(&s, &format!("{mbase}/{uuid}")).await;
        assert_eq!(v["settings"]["packageReuploadType"], "OVERRIDE");
        assert_eq!(
            v["settings"]["isDeletePackageAllowed"], true,
            "unsent settings are kept"
        );

        let (st, v) = gf_put(
            &s,
            &format!("{mbase}/{uuid}"),
            json!({"type": "PROXY", "proxySettings": {"url": "http://127.0.0.1/"}}),
        )
        .await;
        assert_eq!((st, v["details"]["field"].as_str()), (400, Some("type")));

        let (st, v) = gf_get(&s, base).await;
        assert_eq!(st, 200);
        let list = v["_embedded"]["shortRegistryRepositoryDtoList"]
            .as_array()
            .unwrap();
        assert!(list.iter().any(|r| r["repositoryUuid"] == uuid.as_str()));
        assert_eq!(v["page"]["number"], 0);

        // The uuid is not found under another scope.
        let (st, _) = gf_get(
            &s,
            &format!("/registry/company/elsewhere/repositories/{uuid}"),
        )
        .await;
        assert_eq!(st, 404);

        let r = auth(&s, s.client.delete(s.url(&format!("{mbase}/{uuid}"))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (st, _) = gf_get(&s, &format!("{mbase}/{uuid}")).await;
        assert_eq!(st, 404);
        let (st, _) = gf_delete(&s, &format!("{mbase}/{uuid}")).await;
        assert_eq!(st, 404);
    }
    // Lists of scopes that do not exist are 404.
    let (st, _) = gf_get(&s, "/registry/company/ghost/repositories").await;
    assert_eq!(st, 404);
}

async fn paging_is_spring_style(b: Backend) {
    let s = Server::start(b).await;
    for i in 0..5 {
        let (st, _) = gf_post(
            &s,
            "/registry/company/acme/repositories",
            local(&format!("r{i}"), "npm"),
        )
        .await;
        assert_eq!(st, 201);
        // Lists are in creation order at millisecond resolution (ties by id, in no particular
        // order): give each repository its own millisecond so that the expected page is defined.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // The company's five and its trash can (made with the company, in the same millisecond as r0
    // perhaps: their order is whatever the whole list says).
    let titles = |v: &Value| -> Vec<String> {
        v["_embedded"]["shortRegistryRepositoryDtoList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["title"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, all) = gf_get(&s, "/registry/company/acme/repositories").await;
    let all = titles(&all);
    assert_eq!(all.len(), 6, "{all:?}");
    assert!(all.contains(&"trashCan".to_string()), "{all:?}");
    let (_, v) = gf_get(&s, "/registry/company/acme/repositories?page=1&size=2").await;
    assert_eq!(
        v["page"],
        json!({"size": 2, "totalElements": 6, "totalPages": 3, "number": 1})
    );
    assert_eq!(titles(&v), all[2..4].to_vec());
    let (_, v) = gf_get(&s, "/registry/company/acme/repositories?page=5&size=2").await;
    assert!(
        v.get("_embedded").is_none(),
        "an empty page has no _embedded: {v}"
    );
    let (st, _) = gf_get(&s, "/registry/company/acme/repositories?size=-1").await;
    assert_eq!(st, 400);
    // page × size overflowing is the client's error too, not a 500.
    let big = i64::MAX / 2;
    let (st, v) = gf_get(
        &s,
        &format!("/registry/company/acme/repositories?page={big}&size=10"),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = gf_get(
        &s,
        &format!("/registry/company/acme/package?page={big}&size=10"),
    )
    .await;
    assert_eq!(st, 400, "{v}");
}

async fn proxy_and_cache(b: Backend) {
    let s = Server::start(b).await;
    let (st, v) = gf_post(&s, "/registry/company/acme/repositories", json!({
        "type": "PROXY", "repositoryName": "maven-proxy", "description": "Proxy", "packageType": "maven",
        "proxySettings": {"url": "http://127.0.0.1:9/maven2/", "username": "u", "token": "qwerty123", "isCaching": true,
                          "isOffline": false, "expireHours": 24, "metadataRetrievalIntervalSeconds": 600}})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["repositoryType"], "PROXY");
    let uuid = v["repositoryUuid"].as_str().unwrap().to_string();
    let (_, v) = gf_get(&s, &format!("/registry/company/acme/repositories/{uuid}")).await;
    assert_eq!(v["proxySettings"]["expireHours"], 24);
    assert_eq!(v["proxySettings"]["metadataRetrievalIntervalSeconds"], 600);
    assert!(
        !v.to_string().contains("qwerty123"),
        "token never returned: {v}"
    );
    let (_, list) = gf_get(&s, "/registry/company/acme/repositories").await;
    let cache = list["_embedded"]["shortRegistryRepositoryDtoList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"] == "maven-proxy-cache")
        .cloned()
        .expect("cache listed");
    assert_eq!(cache["repositoryType"], "LOCAL_CACHE");
    assert_eq!(cache["description"], Value::Null);
    // Same registry seen through Harness: UPSTREAM with its remote as url.
    let (_, h) = call(s.get("/har/api/v1/registry/default/acme/maven-proxy/+")).await;
    assert_eq!(h["data"]["config"]["type"], "UPSTREAM");
    assert_eq!(h["data"]["url"], "http://127.0.0.1:9/maven2/");
    // Non-caching proxy: no cache.
    let (st, _) = gf_post(
        &s,
        "/registry/company/acme/repositories",
        json!({"type": "PROXY", "repositoryName": "npm-proxy",
        "packageType": "npm", "proxySettings": {"url": "https://127.0.0.1/"}}),
    )
    .await;
    assert_eq!(st, 201);
    let (st, _) = call(s.get("/har/api/v1/registry/default/acme/npm-proxy-cache/+")).await;
    assert_eq!(st, 404);
    // Package types beyond GitFlic's proxy list are Arca extensions: accepted too.
    let (st, v) = gf_post(
        &s,
        "/registry/company/acme/repositories",
        json!({"type": "PROXY", "repositoryName": "cran-proxy",
        "packageType": "cran", "proxySettings": {"url": "http://127.0.0.1/"}}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    // Bad proxies.
    for (body, field) in [
        (
            json!({"type": "PROXY", "repositoryName": "p1", "packageType": "npm", "proxySettings": {"url": "file:///etc"}}),
            "url",
        ),
        (
            json!({"type": "PROXY", "repositoryName": "p1", "packageType": "npm"}),
            "proxySettings",
        ),
        (
            json!({"type": "PROXY", "repositoryName": "p1", "packageType": "npm", "proxySettings": {}}),
            "proxySettings.url",
        ),
        (
            json!({"type": "LOCAL_CACHE", "repositoryName": "p1", "packageType": "npm"}),
            "type",
        ),
        (
            json!({"type": "LOCAL", "repositoryName": "p1", "packageType": "docker"}),
            "packageType",
        ),
        (
            json!({"type": "LOCAL", "repositoryName": "P 1", "packageType": "npm"}),
            "repositoryName",
        ),
        (
            json!({"type": "LOCAL", "repositoryName": "p1", "packageType": "npm", "settings": {"packageReuploadType": "SOMETIMES"}}),
            "settings.packageReuploadType",
        ),
    ] {
        let (st, v) = gf_post(&s, "/registry/company/acme/repositories", body.clone()).await;
        assert_eq!(st, 400, "{body} -> {v}");
        assert_eq!(v["details"]["field"], field, "{body} -> {v}");
    }
}

async fn virtual_members_and_deployment(b: Backend) {
    let s = Server::start(b).await;
    let base = "/registry/company/acme/repositories";
    let mk = |name: &str, pt: &str| local(name, pt);
    let (_, a) = gf_post(&s, base, mk("m-local", "maven")).await;
    let (_, p) = gf_post(&s, base, json!({"type": "PROXY", "repositoryName": "m-proxy", "packageType": "maven",
                                          "proxySettings": {"url": "http://127.0.0.1:9/", "isCaching": true}})).await;
    let (_, n) = gf_post(&s, base, mk("n-local", "npm")).await;
    let (_, deep) = gf_post(
        &s,
        "/registry/project/acme/app/repositories",
        mk("m-deep", "maven"),
    )
    .await;
    let a = a["repositoryUuid"].as_str().unwrap().to_string();
    let p = p["repositoryUuid"].as_str().unwrap().to_string();
    let n = n["repositoryUuid"].as_str().unwrap().to_string();
    let deep = deep["repositoryUuid"].as_str().unwrap().to_string();
    let virt = |members: Vec<&str>, dep: Option<&str>| {
        json!({"type": "VIRTUAL", "repositoryName": "m-virtual", "packageType": "maven",
        "virtualSettings": {"includedRepositoryUuids": members, "allowRemoteProxying": true, "deploymentRepositoryUuid": dep}})
    };
    for (body, field) in [
        (
            virt(vec![&a, &n], None),
            "virtualSettings.includedRepositoryUuids",
        ),
        (
            virt(vec![&a, "00000000-0000-0000-0000-000000000000"], None),
            "virtualSettings.includedRepositoryUuids",
        ),
        (
            virt(vec![&a, "not-a-uuid"], None),
            "virtualSettings.includedRepositoryUuids",
        ),
        (
            virt(vec![&a, &deep], None),
            "virtualSettings.includedRepositoryUuids",
        ),
        (
            virt(vec![&a, &a], None),
            "virtualSettings.includedRepositoryUuids",
        ),
        (virt(vec![&a], Some(&p)), "deploymentRepositoryUuid"),
        (virt(vec![&a, &p], Some(&p)), "deploymentRepositoryUuid"),
    ] {
        let (st, v) = gf_post(&s, base, body.clone()).await;
        assert_eq!(st, 400, "{body} -> {v}");
        assert_eq!(v["details"]["field"], field, "{body} -> {v}");
    }
    let (st, v) = gf_post(&s, base, virt(vec![&p, &a], Some(&a))).await;
    assert_eq!(st, 201, "{v}");
    let vid = v["repositoryUuid"].as_str().unwrap().to_string();
    let (_, v) = gf_get(&s, &format!("{base}/{vid}")).await;
    assert_eq!(
        v["virtualSettings"]["includedRepositoryUuids"],
        json!([p, a]),
        "order is kept"
    );
    assert_eq!(v["virtualSettings"]["deploymentRepositoryUuid"], a.as_str());
    assert_eq!(v["virtualSettings"]["allowRemoteProxying"], true);
    // Through Harness the group is VIRTUAL with its members in order.
    let (_, h) = call(s.get("/har/api/v1/registry/default/acme/m-virtual/+")).await;
    assert_eq!(
        h["data"]["config"]["upstreamProxies"],
        json!(["m-proxy", "m-local"])
    );
    assert_eq!(h["data"]["kind"], "GROUP");

    // Members and deployment must be modified together.
    let (st, v) = gf_put(
        &s,
        &format!("{base}/{vid}"),
        json!({"type": "VIRTUAL", "virtualSettings": {"includedRepositoryUuids": [a]}}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, _) = gf_put(
        &s,
        &format!("{base}/{vid}"),
        json!({"type": "VIRTUAL", "virtualSettings": {"deploymentRepositoryUuid": a}}),
    )
    .await;
    assert_eq!(st, 400);
    let (st, v) = gf_put(&s, &format!("{base}/{vid}"), json!({"type": "VIRTUAL", "virtualSettings": {"includedRepositoryUuids": [a], "deploymentRepositoryUuid": a}})).await;
    assert_eq!(st, 200, "{v}");
    // A group can include a group, but not in a cycle.
    let (st, v) = gf_post(
        &s,
        base,
        json!({"type": "VIRTUAL", "repositoryName": "outer", "packageType": "maven",
        "virtualSettings": {"includedRepositoryUuids": [vid]}}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let outer = v["repositoryUuid"].as_str().unwrap().to_string();
    let (st, v) = gf_put(&s, &format!("{base}/{vid}"), json!({"type": "VIRTUAL", "virtualSettings": {"includedRepositoryUuids": [a, outer], "deploymentRepositoryUuid": a}})).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("cycle"), "{v}");
    // Deleting an included registry is refused, naming the virtual.
    let (st, v) = gf_delete(&s, &format!("{base}/{a}")).await;
    assert_eq!(st, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("m-virtual"), "{v}");
    let (st, _) = gf_delete(&s, &format!("{base}/{outer}")).await;
    assert_eq!(st, 204);
}

async fn visible_across_dialects(b: Backend) {
    let s = Server::start(b).await;
    // GitFlic → Harness.
    let (_, v) = gf_post(
        &s,
        "/registry/project/bob/tools/repositories",
        local("bin", "generic"),
    )
    .await;
    let uuid = v["repositoryUuid"].as_str().unwrap();
    let (st, h) = call(s.get("/har/api/v1/registry/default/bob/tools/bin/+")).await;
    assert_eq!(st, 200);
    assert_eq!(h["data"]["uuid"], uuid);
    assert_eq!(h["data"]["isPublic"], true);
    assert_eq!(h["data"]["packageReuploadType"], "NONE");
    assert_eq!(h["data"]["config"]["type"], "VIRTUAL");
    assert_eq!(h["data"]["kind"], "HOSTED");
    // Harness → GitFlic.
    let created = s
        .harness_registry(
            "default/acme",
            json!({"identifier": "py-hosted", "packageType": "PYTHON", "parentRef": "default/acme",
        "description": "from harness", "isPublic": false, "isDeletePackageAllowed": true}),
        )
        .await;
    let (st, g) = gf_get(
        &s,
        &format!(
            "/registry/company/acme/repositories/{}",
            created["uuid"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(g["title"], "py-hosted");
    assert_eq!(g["repositoryType"], "LOCAL");
    assert_eq!(g["packageType"], "pypi");
    assert_eq!(g["description"], "from harness");
    assert_eq!(g["settings"]["isDeletePackageAllowed"], true);
    // A change through one dialect shows in the other.
    let (st, _) = gf_put(
        &s,
        &format!(
            "/registry/company/acme/repositories/{}",
            created["uuid"].as_str().unwrap()
        ),
        json!({"type": "LOCAL", "settings": {"hasAnonymousAccess": true}}),
    )
    .await;
    assert_eq!(st, 200);
    let (_, h) = call(s.get("/har/api/v1/registry/default/acme/py-hosted/+")).await;
    assert_eq!(h["data"]["isPublic"], true);
    assert_eq!(h["data"]["description"], "from harness");
    // A GitFlic name is unique per owner: another company may have one of that name (the
    // Harness-made one keeps the account's shorthand URL); the same company may not.
    let (st, _) = gf_post(
        &s,
        "/registry/company/other/repositories",
        local("py-hosted", "pypi"),
    )
    .await;
    assert_eq!(st, 201);
    let (st, _) = gf_post(
        &s,
        "/registry/company/acme/repositories",
        local("py-hosted", "pypi"),
    )
    .await;
    assert_eq!(st, 409);
}

async fn packages_listed_with_versions_and_files(b: Backend) {
    let s = Server::start(b).await;
    let (_, v) = gf_post(
        &s,
        "/registry/company/acme/repositories",
        local("bin", "generic"),
    )
    .await;
    let repo = v["repositoryUuid"].as_str().unwrap().to_string();
    for (p, ver, body) in [
        ("tool", "1.0", "one"),
        ("tool", "2.0", "two!"),
        ("lib", "0.1", "l"),
    ] {
        let r = s
            .client
            .put(s.url(&format!("/pkg/default/bin/generic/{p}/{ver}/{p}.bin")))
            .header("x-api-key", &s.token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let (st, v) = gf_get(&s, "/registry/company/acme/package?size=10").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["page"]["totalElements"], 2);
    let list = v["_embedded"]["simplePackageInfoModelList"]
        .as_array()
        .unwrap();
    let tool = list.iter().find(|p| p["name"] == "tool").unwrap().clone();
    assert_eq!(tool["version"], "2.0");
    assert_eq!(tool["type"], "generic");
    assert_eq!(tool["ownerType"], "REPOSITORY");
    assert_eq!(tool["ownerUuid"], repo.as_str());
    let id = tool["id"].as_str().unwrap();
    let (st, one) = gf_get(&s, &format!("/registry/company/acme/package/{id}")).await;
    assert_eq!((st, one["name"].as_str()), (200, Some("tool")));
    let (_, versions) = gf_get(
        &s,
        &format!("/registry/company/acme/package/{id}/version-list"),
    )
    .await;
    let vs = versions["_embedded"]["packageVersionModelList"]
        .as_array()
        .unwrap();
    assert_eq!(vs.len(), 2);
    let f = &vs[1]["packageFiles"][0];
    assert_eq!(f["name"], "tool.bin");
    assert_eq!(f["size"], 4);
    assert_eq!(
        f["hashSHA256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"two!")).as_str()
    );
    // Another scope does not see it; anonymous callers are challenged.
    let (st, _) = gf_get(&s, &format!("/registry/project/acme/app/package/{id}")).await;
    assert_eq!(st, 404);
    assert_eq!(
        s.client
            .get(s.url("/registry/company/acme/package"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Instance level lists the default account's own registries.
    let (st, v) = gf_get(&s, "/registry/package").await;
    assert_eq!((st, v["page"]["totalElements"].as_i64()), (200, Some(0)));
}

/// Every repository view names its native URL (`url`): where the repository's clients point.
async fn repositories_carry_their_url(b: Backend) {
    let s = Server::start(b).await;
    let (st, v) = gf_post(
        &s,
        "/registry/company/acme/repositories",
        json!({"type": "LOCAL", "repositoryName": "npm-local", "packageType": "npm"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let url = format!("{}/pkg/default/acme/-/npm-local/npm", s.base);
    assert_eq!(v["url"], url.as_str(), "{v}");
    let uuid = v["repositoryUuid"].as_str().unwrap().to_string();
    let (_, one) = gf_get(&s, &format!("/registry/company/acme/repositories/{uuid}")).await;
    assert_eq!(one["url"], url.as_str(), "{one}");
    let (_, list) = gf_get(&s, "/registry/company/acme/repositories").await;
    let rows = list["_embedded"]
        .as_object()
        .and_then(|o| o.values().next())
        .cloned();
    let rows = rows.unwrap_or_default();
    // The owner's TRASH_CAN is listed too (in creation order, possibly first).
    let row = rows
        .as_array()
        .and_then(|l| l.iter().find(|r| r["title"] == "npm-local"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["url"], url.as_str(), "{list}");

    // Package and artifact rows name their registry's URL too, in both dialects.
    let (st, v) = gf_post(
        &s,
        "/registry/company/acme/repositories",
        json!({"type": "LOCAL", "repositoryName": "gen", "packageType": "generic"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let gen_url = format!("{}/pkg/default/acme/-/gen/generic", s.base);
    s.generic_registry("acme", "files").await;
    for path in [
        format!("{gen_url}/tool/1.0/a.txt"),
        s.url("/pkg/acme/files/generic/tool/1.0/a.txt"),
    ] {
        let r = s
            .client
            .put(&path)
            .header("x-api-key", &s.token)
            .body("a")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{path}");
    }
    let (_, pkgs) = gf_get(&s, "/registry/company/acme/package").await;
    let rows = pkgs["_embedded"]
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap_or_default();
    assert_eq!(rows[0]["repositoryUrl"], gen_url.as_str(), "{pkgs}");
    let files_url = s.url("/pkg/acme/files/generic");
    for path in [
        "/har/api/v1/registry/acme/files/+/artifacts",
        "/har/api/v1/spaces/acme/+/artifacts",
    ] {
        let (st, v) = call(s.get(path)).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            v["data"]["artifacts"][0]["registryUrl"],
            files_url.as_str(),
            "{path}: {v}"
        );
    }
}

both_backends!(
    repositories_carry_their_url,
    packages_listed_with_versions_and_files,
    crud_in_project_company_and_instance,
    paging_is_spring_style,
    proxy_and_cache,
    virtual_members_and_deployment,
    visible_across_dialects,
);

//! Seed conformance of the GitFlic dialect (issue 13): names as GitFlic allows them, the seed's
//! own examples, and the server's LOCAL_CACHE and TRASH_CAN as the seed shows them.

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
async fn gf_delete(s: &Server, path: &str) -> (u16, Value) {
    call(auth(s, s.client.delete(s.url(path)))).await
}
async fn gf_get(s: &Server, path: &str) -> (u16, Value) {
    call(auth(s, s.client.get(s.url(path)))).await
}

fn titles(list: &Value) -> Vec<String> {
    list["_embedded"]["shortRegistryRepositoryDtoList"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["title"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A company whose Harness org id has upper case is the same company in every spelling.
async fn gitflic_scope_ids_compare_case_insensitively(b: Backend) {
    let s = Server::start(b).await;
    let (st, v) = call(s.post(
        "/har/api/v1/registry",
        json!({"identifier": "h-files", "packageType": "GENERIC", "parentRef": "default/Org456"}),
    ))
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = gf_post(
        &s,
        "/registry/company/ORG456/repositories",
        json!({"type": "LOCAL", "repositoryName": "g-files", "packageType": "generic"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    for company in ["org456", "Org456", "ORG456"] {
        let (st, v) = gf_get(&s, &format!("/registry/company/{company}/repositories")).await;
        assert_eq!(st, 200, "{v}");
        let t = titles(&v);
        assert!(
            t.contains(&"h-files".to_string()) && t.contains(&"g-files".to_string()),
            "{company}: {v}"
        );
    }
}

/// UUIDs compare case-insensitively: an upper-case repository UUID in a path or in
/// `includedRepositoryUuids` names the same repository.
async fn gitflic_upper_case_uuids(b: Backend) {
    let s = Server::start(b).await;
    let base = "/registry/company/acme/repositories";
    let (st, v) = gf_post(
        &s,
        base,
        json!({"type": "LOCAL", "repositoryName": "m-local", "packageType": "maven"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let uuid = v["repositoryUuid"].as_str().unwrap().to_string();
    let upper = uuid.to_ascii_uppercase();
    let (st, v) = gf_get(&s, &format!("{base}/{upper}")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["repositoryUuid"], uuid.as_str());
    let (st, v) = gf_post(
        &s,
        base,
        json!({"type": "VIRTUAL", "repositoryName": "m-virtual", "packageType": "maven",
               "virtualSettings": {"includedRepositoryUuids": [upper], "deploymentRepositoryUuid": upper}}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let virt = v["repositoryUuid"].as_str().unwrap().to_ascii_uppercase();
    let (st, v) = gf_get(&s, &format!("{base}/{virt}")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["virtualSettings"]["includedRepositoryUuids"],
        json!([uuid])
    );
    let (st, v) = gf_put(
        &s,
        &format!("{base}/{virt}"),
        json!({"type": "VIRTUAL", "description": "d"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = gf_delete(&s, &format!("/registry/company/acme/repositories/{virt}")).await;
    assert_eq!(st, 204);
}

/// Checks the short view the seed documents for every answer: its five fields, nothing missing.
fn short(v: &Value, title: &str, kind: &str, pt: &str, description: Value) -> String {
    assert_eq!(v["title"], title, "{v}");
    assert_eq!(v["repositoryType"], kind, "{v}");
    assert_eq!(v["packageType"], pt, "{v}");
    assert_eq!(v["description"], description, "{v}");
    let uuid = v["repositoryUuid"].as_str().unwrap_or_default().to_string();
    assert_eq!(uuid.len(), 36, "{v}");
    uuid
}

/// Every example body of the seed, verbatim but for the proxy's remote (a local address) and the
/// placeholder UUIDs (the real ones), with the documented status and fields.
async fn gitflic_seed_examples_verbatim(b: Backend) {
    let s = Server::start(b).await;
    let base = "/registry/project/ivan/webapp/repositories";
    let (st, v) = gf_post(
        &s,
        base,
        json!({"type" : "LOCAL", "repositoryName": "generic-local", "description": "Local generic registry repository",
               "packageType": "generic", "settings": {"hasAnonymousAccess": true, "isDeletePackageAllowed": true,
               "packageReuploadType": "OVERRIDE"}}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let gl = short(
        &v,
        "generic-local",
        "LOCAL",
        "generic",
        json!("Local generic registry repository"),
    );
    let remote = "http://127.0.0.1:9/maven2/";
    let proxy = json!({"type" : "PROXY", "repositoryName": "maven-proxy", "description": "Proxy Maven registry repository",
        "packageType": "maven", "proxySettings": {"url": remote, "username": "username", "isCaching": true,
        "token": "qwerty123", "isOffline": false, "expireHours": 24, "metadataRetrievalIntervalSeconds": 7200}});
    let (st, v) = gf_post(&s, base, proxy.clone()).await;
    assert_eq!(st, 201, "{v}");
    let mp = short(
        &v,
        "maven-proxy",
        "PROXY",
        "maven",
        json!("Proxy Maven registry repository"),
    );
    let (st, v) = gf_get(&s, &format!("{base}/{mp}")).await;
    assert_eq!(st, 200, "{v}");
    let mc = v["cacheRepositoryUuid"].as_str().unwrap().to_string();
    // The VIRTUAL example deploys into the proxy's LOCAL_CACHE: refused on purpose (README), saying why.
    let virt = json!({"type" : "VIRTUAL", "repositoryName": "maven-virtual", "description": "Virtual Maven registry repository",
        "packageType": "maven", "virtualSettings": {"includedRepositoryUuids": [mp, mc], "allowRemoteProxying": true,
        "deploymentRepositoryUuid": mc}});
    let (st, v) = gf_post(&s, base, virt.clone()).await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("LOCAL_CACHE"),
        "{v}"
    );
    // The same with a LOCAL to deploy into.
    let (st, v) = gf_post(
        &s,
        base,
        json!({"type": "LOCAL", "repositoryName": "maven-local", "packageType": "maven"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let ml = v["repositoryUuid"].as_str().unwrap().to_string();
    let mut virt_ok = virt.clone();
    virt_ok["virtualSettings"]["includedRepositoryUuids"] = json!([mp, mc, ml]);
    virt_ok["virtualSettings"]["deploymentRepositoryUuid"] = json!(ml);
    let (st, v) = gf_post(&s, base, virt_ok.clone()).await;
    assert_eq!(st, 201, "{v}");
    let mv = short(
        &v,
        "maven-virtual",
        "VIRTUAL",
        "maven",
        json!("Virtual Maven registry repository"),
    );
    // includedRepositoryUuids is required on create.
    let (st, v) = gf_post(
        &s,
        base,
        json!({"type": "VIRTUAL", "repositoryName": "v-noinc", "packageType": "maven", "virtualSettings": {}}),
    )
    .await;
    assert_eq!(
        (st, v["details"]["field"].as_str()),
        (400, Some("virtualSettings.includedRepositoryUuids")),
        "{v}"
    );
    // The list: the seed's entries and its default page size.
    let (st, v) = gf_get(&s, base).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["page"]["size"], 10, "{v}");
    assert_eq!(v["page"]["number"], 0, "{v}");
    let list = v["_embedded"]["shortRegistryRepositoryDtoList"]
        .as_array()
        .unwrap();
    let find = |t: &str| {
        list.iter()
            .find(|r| r["title"] == t)
            .cloned()
            .unwrap_or(Value::Null)
    };
    short(
        &find("generic-local"),
        "generic-local",
        "LOCAL",
        "generic",
        json!("Local generic registry repository"),
    );
    short(
        &find("maven-proxy"),
        "maven-proxy",
        "PROXY",
        "maven",
        json!("Proxy Maven registry repository"),
    );
    short(
        &find("maven-proxy-cache"),
        "maven-proxy-cache",
        "LOCAL_CACHE",
        "maven",
        Value::Null,
    );
    short(
        &find("maven-virtual"),
        "maven-virtual",
        "VIRTUAL",
        "maven",
        json!("Virtual Maven registry repository"),
    );
    // Get by UUID.
    let (st, v) = gf_get(&s, &format!("{base}/{gl}")).await;
    assert_eq!(st, 200, "{v}");
    short(
        &v,
        "generic-local",
        "LOCAL",
        "generic",
        json!("Local generic registry repository"),
    );
    // The modify examples.
    let (st, v) = gf_put(
        &s,
        &format!("{base}/{gl}"),
        json!({"type" : "LOCAL", "description": "Local generic registry repository", "settings": {
               "hasAnonymousAccess": true, "isDeletePackageAllowed": true, "packageReuploadType": "OVERRIDE"}}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    short(
        &v,
        "generic-local",
        "LOCAL",
        "generic",
        json!("Local generic registry repository"),
    );
    let mut put_proxy = proxy.clone();
    if let Some(o) = put_proxy.as_object_mut() {
        o.remove("repositoryName");
        o.remove("packageType");
    }
    let (st, v) = gf_put(&s, &format!("{base}/{mp}"), put_proxy).await;
    assert_eq!(st, 200, "{v}");
    short(
        &v,
        "maven-proxy",
        "PROXY",
        "maven",
        json!("Proxy Maven registry repository"),
    );
    let mut put_virt =
        json!({"type" : "VIRTUAL", "description": "Virtual Maven registry repository"});
    put_virt["virtualSettings"] = virt_ok["virtualSettings"].clone();
    let (st, v) = gf_put(&s, &format!("{base}/{mv}"), put_virt).await;
    assert_eq!(st, 200, "{v}");
    short(
        &v,
        "maven-virtual",
        "VIRTUAL",
        "maven",
        json!("Virtual Maven registry repository"),
    );
    // Delete: 204, then 404.
    let (st, _) = gf_delete(&s, &format!("{base}/{mv}")).await;
    assert_eq!(st, 204);
    let (st, _) = gf_get(&s, &format!("{base}/{mv}")).await;
    assert_eq!(st, 404);
}

/// A refused create leaves no company behind; a wrong method is a JSON 405; both instance forms
/// serve every method; the OpenAPI document pages every list form.
async fn gitflic_side_effects_and_forms(b: Backend) {
    let s = Server::start(b).await;
    let (st, v) = gf_post(
        &s,
        "/registry/company/othercorp/repositories",
        json!({"type": "PROXY", "repositoryName": "p", "packageType": "npm", "proxySettings": {"url": "ftp://127.0.0.1/"}}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = gf_get(&s, "/registry/company/othercorp/repositories").await;
    assert_eq!(st, 404, "the refused create left its company behind: {v}");
    // 405 with a JSON body.
    let r = auth(
        &s,
        s.client.patch(s.url("/registry/company/acme/repositories")),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.expect("a JSON 405 body");
    assert_eq!(v["code"], "405", "{v}");
    // Both instance forms, every method.
    let (st, v) = gf_post(
        &s,
        "/registry/instance/repositories",
        json!({"type": "LOCAL", "repositoryName": "inst", "packageType": "generic"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let uuid = v["repositoryUuid"].as_str().unwrap().to_string();
    let (st, v) = gf_get(&s, "/registry/instance/repositories").await;
    assert_eq!(st, 200, "{v}");
    assert!(titles(&v).contains(&"inst".to_string()), "{v}");
    let (st, _) = gf_get(&s, &format!("/registry/instance/repositories/{uuid}")).await;
    assert_eq!(st, 200);
    let (st, v) = gf_put(
        &s,
        &format!("/registry/instance/alias/repositories/{uuid}"),
        json!({"type": "LOCAL", "description": "changed"}),
    )
    .await;
    assert_eq!((st, &v["description"]), (200, &json!("changed")), "{v}");
    let (st, _) = gf_delete(&s, &format!("/registry/instance/alias/repositories/{uuid}")).await;
    assert_eq!(st, 204);
    // page and size are declared for every repository list form.
    let (st, doc) = call(s.client.get(s.url("/api/openapi.json"))).await;
    assert_eq!(st, 200);
    for path in [
        "/registry/project/{ownerAlias}/{projectAlias}/repositories",
        "/registry/company/{companyAlias}/repositories",
        "/registry/instance/{projectAlias}/repositories",
        "/registry/instance/repositories",
    ] {
        let names: Vec<&str> = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            names.contains(&"page") && names.contains(&"size"),
            "{path}: {names:?}"
        );
    }
    for (path, method) in [
        ("/registry/instance/repositories", "post"),
        (
            "/registry/instance/{projectAlias}/repositories/{uuid}",
            "put",
        ),
        (
            "/registry/instance/{projectAlias}/repositories/{uuid}",
            "delete",
        ),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
}

/// Each owner (project, company, instance) has its TRASH_CAN, listed with its repositories as the
/// seed shows it; server-made repositories never take a user's name.
async fn gitflic_trash_can_per_owner(b: Backend) {
    let s = Server::start(b).await;
    // Names the server used to take are a user's to choose.
    let base = "/registry/project/ivan/webapp/repositories";
    for name in ["trash-can", "maven-proxy-cache"] {
        let (st, v) = gf_post(
            &s,
            base,
            json!({"type": "LOCAL", "repositoryName": name, "packageType": "maven"}),
        )
        .await;
        assert_eq!(st, 201, "{name}: {v}");
    }
    for (i, base) in [
        base,
        "/registry/company/acme/repositories",
        "/registry/instance/x/repositories",
    ]
    .into_iter()
    .enumerate()
    {
        let proxy = if i == 0 {
            "maven-proxy".to_string()
        } else {
            format!("proxy-{i}")
        };
        let (st, v) = gf_post(
            &s,
            base,
            json!({"type": "PROXY", "repositoryName": proxy, "packageType": "maven",
                   "proxySettings": {"url": "http://127.0.0.1:9/", "isCaching": true}}),
        )
        .await;
        assert_eq!(st, 201, "{base}: {v}");
        let (_, v) = gf_get(&s, &format!("{base}?size=50")).await;
        let list = v["_embedded"]["shortRegistryRepositoryDtoList"]
            .as_array()
            .unwrap();
        let trash: Vec<&Value> = list
            .iter()
            .filter(|r| r["repositoryType"] == "TRASH_CAN")
            .collect();
        assert_eq!(trash.len(), 1, "{base}: {v}");
        assert_eq!(trash[0]["title"], "trashCan");
        assert_eq!(trash[0]["packageType"], "generic");
        assert_eq!(trash[0]["description"], Value::Null);
        let cache = format!("{proxy}-cache");
        let caches = list
            .iter()
            .filter(|r| r["title"] == cache.as_str())
            .map(|r| r["repositoryType"].as_str().unwrap())
            .collect::<Vec<_>>();
        if i == 0 {
            assert_eq!(
                caches,
                vec!["LOCAL", "LOCAL_CACHE"],
                "the user's and the proxy's: {v}"
            );
        } else {
            assert_eq!(caches, vec!["LOCAL_CACHE"], "{v}");
        }
        // The trash can is the server's: not deleted through the API.
        let uuid = trash[0]["repositoryUuid"].as_str().unwrap();
        let (st, v) = gf_delete(&s, &format!("{base}/{uuid}")).await;
        assert_eq!(st, 400, "{v}");
    }
}

both_backends!(
    gitflic_trash_can_per_owner,
    gitflic_side_effects_and_forms,
    gitflic_seed_examples_verbatim,
    gitflic_upper_case_uuids,
    gitflic_scope_ids_compare_case_insensitively
);

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

both_backends!(
    gitflic_upper_case_uuids,
    gitflic_scope_ids_compare_case_insensitively
);

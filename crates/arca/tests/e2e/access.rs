//! Who may see what: group membership cannot widen a registry's readers, callers learn nothing
//! about what they cannot read, and no route ever returns a secret.

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Server, call};

const SECRET_FILE: &str = "/generic/secret/1.0/secret.txt";

/// A GitFlic request as `token` sends it.
fn gitflic(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    s.client
        .request(method, s.url(path))
        .header("authorization", format!("token {token}"))
}

/// A Harness request as `token` sends it.
fn harness(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    s.client
        .request(method, s.url(path))
        .header("x-api-key", token)
}

/// The attack of the security review, step by step: a company admin tries to pull a private
/// account-level registry into a group it owns, by name (Harness) and by UUID (GitFlic), and to
/// publish it through a public group. Adding needs read permission on the member; a public group
/// needs the member's own consent (`allowPublicGroups`), which its admin gives or withdraws.
async fn group_membership_needs_read_permission(b: Backend) {
    use reqwest::Method;
    let s = Server::start(b).await;
    let secret = s
        .harness_registry(
            "default",
            json!({"identifier": "instsecret", "packageType": "GENERIC", "parentRef": "default"}),
        )
        .await;
    let secret_id = secret["uuid"].as_str().unwrap().to_string();
    let r = s
        .client
        .put(s.url(&format!("/pkg/default/instsecret{SECRET_FILE}")))
        .header("x-api-key", &s.token)
        .body("TOP-SECRET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let company_admin = s.user_with_role("comp-admin", "admin", "default/comp");
    let (st, grp) = call(
        gitflic(
            &s,
            Method::POST,
            "/registry/company/comp/repositories",
            &company_admin,
        )
        .json(
            &json!({"type": "VIRTUAL", "repositoryName": "grp", "packageType": "generic",
                    "virtualSettings": {"includedRepositoryUuids": []}}),
        ),
    )
    .await;
    assert_eq!(st, 201, "{grp}");
    let grp_id = grp["repositoryUuid"].as_str().unwrap().to_string();
    let harness_grp = "/har/api/v1/registry/default/comp/grp/+";
    let gitflic_grp = format!("/registry/company/comp/repositories/{grp_id}");

    // By name: refused exactly as a name that does not exist is refused.
    let refusal = |name: &str| {
        harness(&s, Method::PUT, harness_grp, &company_admin)
            .json(&json!({"config": {"type": "VIRTUAL", "upstreamProxies": [name]}}))
    };
    let (st, hidden) = call(refusal("instsecret")).await;
    assert_eq!(st, 400, "{hidden}");
    let (st, missing) = call(refusal("no-such-registry")).await;
    assert_eq!(st, 400, "{missing}");
    assert_eq!(
        hidden["message"]
            .as_str()
            .unwrap()
            .replace("instsecret", "X"),
        missing["message"]
            .as_str()
            .unwrap()
            .replace("no-such-registry", "X"),
        "an unreadable registry must answer like a missing one"
    );
    // By UUID, in the GitFlic dialect, and also with the UUID spelled in upper case.
    for id in [secret_id.clone(), secret_id.to_ascii_uppercase()] {
        let (st, v) = call(
            gitflic(&s, Method::PUT, &gitflic_grp, &company_admin).json(&json!({
                "type": "VIRTUAL",
                "virtualSettings": {"includedRepositoryUuids": [id], "deploymentRepositoryUuid": ""}})),
        )
        .await;
        assert_eq!(st, 400, "{v}");
        assert!(v.to_string().contains("does not exist"), "{v}");
    }
    let through_group = format!("/pkg/default/grp{SECRET_FILE}");
    let r = s
        .client
        .get(s.url(&through_group))
        .header("x-api-key", &company_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "nothing was added");

    // The account admin, who can read it, adds it: a private group may include a private member.
    let (st, v) = call(
        harness(&s, Method::PUT, harness_grp, &s.token)
            .json(&json!({"config": {"type": "VIRTUAL", "upstreamProxies": ["instsecret"]}})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    // The company admin keeps editing its group without losing (or being refused) that member.
    let (st, v) = call(harness(&s, Method::PUT, harness_grp, &company_admin).json(
        &json!({"description": "mine", "config": {"type": "VIRTUAL", "upstreamProxies": ["instsecret"]}}),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["data"]["config"]["upstreamProxies"],
        json!(["instsecret"])
    );
    // ...but cannot make the group public while the member does not consent, in either dialect.
    let (st, v) = call(
        harness(&s, Method::PUT, harness_grp, &company_admin).json(&json!({"isPublic": true})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("allowPublicGroups"),
        "{v}"
    );
    let (st, v) = call(
        gitflic(&s, Method::PUT, &gitflic_grp, &company_admin)
            .json(&json!({"type": "VIRTUAL", "settings": {"hasAnonymousAccess": true}})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let r = s.client.get(s.url(&through_group)).send().await.unwrap();
    assert_eq!(r.status(), 401, "the group is still private");

    // The member's admin consents (GitFlic setting); now the group may be public.
    let (st, v) = call(
        gitflic(
            &s,
            Method::PUT,
            &format!("/registry/instance/repositories/{secret_id}"),
            &s.token,
        )
        .json(&json!({"type": "LOCAL", "settings": {"allowPublicGroups": true}})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = call(harness(
        &s,
        Method::GET,
        "/har/api/v1/registry/default/instsecret/+",
        &s.token,
    ))
    .await;
    assert_eq!(v["data"]["allowPublicGroups"], true, "{v}");
    let (st, v) = call(
        harness(&s, Method::PUT, harness_grp, &company_admin).json(&json!({"isPublic": true})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let r = s.client.get(s.url(&through_group)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "TOP-SECRET");
    // Withdrawing the consent while a public group includes it is refused, naming the group.
    let (st, v) = call(
        harness(
            &s,
            Method::PUT,
            "/har/api/v1/registry/default/instsecret/+",
            &s.token,
        )
        .json(&json!({"allowPublicGroups": false})),
    )
    .await;
    assert_eq!(st, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("'grp'"), "{v}");
}

/// Secret references name spaces too: an upstream may only refer to secrets in spaces its
/// creator can read, and a space it cannot read answers like one that does not exist.
async fn secret_references_need_read_permission(b: Backend) {
    use reqwest::Method;
    let s = Server::start(b).await;
    let company_admin = s.user_with_role("comp-admin", "admin", "default/comp");
    let upstream = |path: &str| {
        json!({"identifier": "up", "packageType": "NPM", "parentRef": "default/comp",
               "config": {"type": "UPSTREAM", "url": "http://127.0.0.1:9/", "authType": "UserPassword",
                          "auth": {"userName": "bob", "secretIdentifier": "pat", "secretSpacePath": path}}})
    };
    for path in ["default", "nosuchaccount"] {
        let (st, v) = call(
            harness(
                &s,
                Method::POST,
                "/har/api/v1/registry?space_ref=default/comp/+",
                &company_admin,
            )
            .json(&upstream(path)),
        )
        .await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(
            v["message"],
            format!("space '{path}' does not exist"),
            "{v}"
        );
    }
    let (st, v) = call(
        harness(
            &s,
            Method::POST,
            "/har/api/v1/registry?space_ref=default/comp/+",
            &company_admin,
        )
        .json(&upstream("default/comp")),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(
        v["data"]["config"]["auth"]["secretSpacePath"],
        "default/comp"
    );
}

/// Upstream credentials go in and never come out: every route that shows a registry, in both
/// dialects, to its admin and to a reader, is searched for each secret value.
async fn no_route_returns_a_secret(b: Backend) {
    use reqwest::Method;
    let s = Server::start(b).await;
    let reader = s.user_with_role("reader", "reader", "default/acme");
    const SECRETS: [&str; 3] = [
        "RAW-SECRET-KEY-VALUE",
        "RAW-PASSWORD-VALUE",
        "RAW-TOKEN-VALUE",
    ];
    s.harness_registry(
        "default/acme",
        json!({"identifier": "prox2", "packageType": "NPM", "parentRef": "default/acme",
               "config": {"type": "UPSTREAM", "url": "http://127.0.0.1:9/", "authType": "AccessKeySecretKey",
                          "auth": {"accessKey": "AKID", "secretKeyIdentifier": "ref", "secretKey": SECRETS[0],
                                   "sessionToken": SECRETS[0]}}}),
    )
    .await;
    s.harness_registry(
        "default/acme",
        json!({"identifier": "prox3", "packageType": "NPM", "parentRef": "default/acme",
               "config": {"type": "UPSTREAM", "url": "http://127.0.0.1:9/", "authType": "UserPassword",
                          "auth": {"userName": "bob", "password": SECRETS[1], "extra": SECRETS[1]}}}),
    )
    .await;
    let (st, v) = call(
        gitflic(&s, Method::POST, "/registry/company/acme/repositories", &s.token).json(&json!({
            "type": "PROXY", "repositoryName": "prox4", "packageType": "npm",
            "proxySettings": {"url": "http://127.0.0.1:9/", "username": "bob", "token": SECRETS[2]}})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let mut ids = vec![];
    let (_, list) = call(gitflic(
        &s,
        Method::GET,
        "/registry/company/acme/repositories?size=50",
        &s.token,
    ))
    .await;
    let embedded = list["_embedded"]
        .as_object()
        .and_then(|o| o.values().next().cloned());
    for r in embedded.iter().flat_map(|v| v.as_array()).flatten() {
        ids.push(r["repositoryUuid"].as_str().unwrap_or_default().to_string());
    }
    let mut routes: Vec<(bool, String)> = vec![
        (
            false,
            "/har/api/v1/spaces/default/acme/+/registries?size=50".into(),
        ),
        (
            false,
            "/har/api/v1/spaces/default/acme/+/registries?scope=descendants".into(),
        ),
        (true, "/registry/company/acme/repositories?size=50".into()),
        (true, "/registry/instance/x/repositories?size=50".into()),
        (
            false,
            "/har/api/v1/spaces/default/+/registries?scope=descendants&size=100".into(),
        ),
    ];
    for name in ["prox2", "prox3", "prox4"] {
        routes.push((false, format!("/har/api/v1/registry/default/acme/{name}/+")));
        routes.push((
            false,
            format!("/har/api/v1/registry/default/acme/{name}/+/client-setup-details"),
        ));
    }
    for id in &ids {
        routes.push((true, format!("/registry/company/acme/repositories/{id}")));
    }
    assert!(ids.len() >= 3, "the GitFlic list shows the proxies: {list}");
    for token in [&s.token, &reader] {
        for (is_gitflic, path) in &routes {
            // The reader's role is on the company only, not on the whole instance.
            if *token == reader
                && (path.contains("/instance/") || path.contains("spaces/default/+"))
            {
                continue;
            }
            let req = if *is_gitflic {
                gitflic(&s, Method::GET, path, token)
            } else {
                harness(&s, Method::GET, path, token)
            };
            let r = req.send().await.unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {text}");
            for secret in SECRETS {
                assert!(!text.contains(secret), "{path} returned a secret: {text}");
            }
        }
    }
    let (_, v) = call(harness(
        &s,
        Method::GET,
        "/har/api/v1/registry/default/acme/prox2/+",
        &reader,
    ))
    .await;
    assert_eq!(
        v["data"]["config"]["auth"],
        json!({"accessKey": "AKID", "secretKeyIdentifier": "ref"}),
        "only the references are kept"
    );
}

both_backends!(
    group_membership_needs_read_permission,
    secret_references_need_read_permission,
    no_route_returns_a_secret
);

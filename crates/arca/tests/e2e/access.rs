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

/// A caller who cannot read a registry learns nothing about it or what it holds: anonymous
/// callers get 401 and signed-in ones 404, the same whether the registry, artifact or version
/// exists; the token endpoint answers alike for existing and missing repositories; a space's
/// listing neither counts nor confirms what the caller cannot see.
async fn unreadable_means_not_found(b: Backend) {
    use base64::Engine;
    use reqwest::Method;
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    s.harness_registry(
        "acme",
        json!({"identifier": "dock", "packageType": "DOCKER", "parentRef": "acme"}),
    )
    .await;
    for i in 0..3 {
        s.harness_registry(
            "acme",
            json!({"identifier": format!("more{i}"), "packageType": "GENERIC", "parentRef": "acme"}),
        )
        .await;
    }
    let r = s
        .client
        .put(s.url("/pkg/acme/files/generic/secret/1.0/s.txt"))
        .header("x-api-key", &s.token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let stranger = s.user_with_role("stranger", "admin", "other");
    let probes = [
        "/har/api/v1/registry/acme/files/+/artifact/secret/+/version/1.0/summary",
        "/har/api/v1/registry/acme/files/+/artifact/nope/+/version/1.0/summary",
        "/har/api/v1/registry/acme/files/+/artifact/secret/+/version/9.9/summary",
        "/har/api/v1/registry/acme/files/+/artifact/secret/+/versions",
        "/har/api/v1/registry/acme/nosuch/+/artifact/secret/+/version/1.0/summary",
        "/har/api/v1/registry/acme/files/+/artifacts",
        "/har/api/v1/registry/acme/nosuch/+/artifacts",
    ];
    for (token, status) in [(None, 401), (Some(&stranger), 404)] {
        let mut messages = std::collections::BTreeSet::new();
        for path in probes {
            let mut req = s.client.get(s.url(path));
            if let Some(t) = token {
                req = req.header("x-api-key", t);
            }
            let (st, v) = call(req).await;
            assert_eq!(st, status, "{path}: {v}");
            messages.insert(
                v["message"]
                    .as_str()
                    .unwrap_or_default()
                    .replace("nosuch", "files"),
            );
        }
        assert_eq!(messages.len(), 1, "the answers differ: {messages:?}");
    }
    for (token, status, code) in [
        (None, 401, "UNAUTHORIZED"),
        (Some(&stranger), 404, "NAME_UNKNOWN"),
    ] {
        for path in [
            "/v2/acme/dock/base/tags/list",
            "/v2/acme/nosuch/base/tags/list",
            "/v2/acme/dock/base/manifests/latest",
            "/v2/acme/nosuch/base/manifests/latest",
        ] {
            let mut req = s.client.get(s.url(path));
            if let Some(t) = token {
                req = req.basic_auth("stranger", Some(t));
            }
            let (st, v) = call(req).await;
            assert_eq!(st, status, "{path}: {v}");
            assert_eq!(v["errors"][0]["code"], code, "{path}: {v}");
        }
    }
    let mut grants = vec![];
    for name in ["acme/dock/base", "acme/nosuch/base"] {
        let (st, v) = call(
            s.client
                .get(s.url(&format!(
                    "/v2/token?service=arca&scope=repository:{name}:pull,push"
                )))
                .basic_auth("stranger", Some(&stranger)),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        let token = v["token"].as_str().unwrap();
        let payload = token
            .trim_start_matches("arca_oci.")
            .split('.')
            .next()
            .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        grants.push(claims["access"][0]["actions"].clone());
        assert_eq!(claims["access"][0]["name"], name, "{claims}");
    }
    assert_eq!(grants[0], json!([]));
    assert_eq!(grants[0], grants[1]);

    // Listings: a space the caller has no role on and sees nothing in is not found, whether or
    // not it exists; where it sees something public, the counts are of that alone.
    for space in ["acme", "nosuchaccount"] {
        for sub in ["registries?scope=descendants", "registries", "artifacts"] {
            let (st, v) = call(harness(
                &s,
                Method::GET,
                &format!("/har/api/v1/spaces/{space}/+/{sub}"),
                &stranger,
            ))
            .await;
            assert_eq!(st, 404, "{space} {sub}: {v}");
        }
    }
    for company in ["acme", "nosuchcompany"] {
        let (st, v) = call(gitflic(
            &s,
            Method::GET,
            &format!("/registry/company/{company}/repositories"),
            &stranger,
        ))
        .await;
        assert_eq!(st, 403, "{company}: {v}");
    }
    let (st, v) = call(
        harness(
            &s,
            Method::PUT,
            "/har/api/v1/registry/acme/more0/+",
            &s.token,
        )
        .json(&json!({"isPublic": true})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = call(harness(
        &s,
        Method::GET,
        "/har/api/v1/spaces/acme/+/registries?scope=descendants",
        &stranger,
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["data"]["itemCount"], 1,
        "only the public registry counts: {v}"
    );
    assert_eq!(v["data"]["registries"][0]["identifier"], "more0", "{v}");
}

both_backends!(
    unreadable_means_not_found,
    group_membership_needs_read_permission,
    secret_references_need_read_permission,
    no_route_returns_a_secret
);

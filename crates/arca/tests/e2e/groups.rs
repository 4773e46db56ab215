//! Groups (GitFlic VIRTUAL repositories) over LOCAL and PROXY members, with the real clients:
//! the merge rules per format, the dependency-confusion guard with its allow-list,
//! `allowRemoteProxying`, `X-Arca-Served-By`, and no stale merge after a publish to a member.
//! Upstreams are a second `arca` process. Everything lives in the instance scope (`default`), so
//! that both dialects see the same registries.

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call};
use crate::npm::{Npm, package};

/// A GitFlic call with the admin token.
async fn gf(s: &Server, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = s
        .client
        .request(method, s.url(path))
        .header("authorization", format!("token {}", s.token));
    if let Some(b) = body {
        r = r.json(&b);
    }
    call(r).await
}

/// The uuid of registry `id` in the instance scope.
async fn uuid(s: &Server, id: &str) -> String {
    let (st, v) = call(s.get(&format!("/har/api/v1/registry/default/{id}/+"))).await;
    assert_eq!(st, 200, "{v}");
    v["data"]["uuid"].as_str().unwrap().to_string()
}

/// A hosted registry of `package_type` (Harness spelling) in the instance scope.
pub(crate) async fn hosted(s: &Server, id: &str, package_type: &str) -> String {
    s.harness_registry(
        "default",
        json!({"identifier": id, "packageType": package_type, "parentRef": "default",
               "isDeletePackageAllowed": true}),
    )
    .await;
    uuid(s, id).await
}

/// A Harness UPSTREAM in the instance scope reading `url` as the upstream's user `mirror`, with
/// metadata revalidated on every request (interval 0).
pub(crate) async fn upstream(
    s: &Server,
    id: &str,
    package_type: &str,
    url: &str,
    password: &str,
) -> String {
    s.harness_registry(
        "default",
        json!({"identifier": id, "packageType": package_type, "parentRef": "default",
               "config": {"type": "UPSTREAM", "source": "Custom", "url": url, "metadataCacheTTL": 0,
                          "authType": "UserPassword", "auth": {"userName": "mirror", "password": password}}}),
    )
    .await;
    uuid(s, id).await
}

/// A GitFlic VIRTUAL in the instance scope; returns its uuid.
pub(crate) async fn group(
    s: &Server,
    name: &str,
    package_type: &str,
    members: &[&str],
    deploy: Option<&str>,
    extra: Value,
) -> String {
    let mut settings = json!({"includedRepositoryUuids": members, "deploymentRepositoryUuid": deploy,
                              "allowRemoteProxying": true});
    if let (Some(o), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    let (st, v) = gf(
        s,
        reqwest::Method::POST,
        "/registry/instance/x/repositories",
        Some(json!({"type": "VIRTUAL", "repositoryName": name, "packageType": package_type,
                    "virtualSettings": settings})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    v["repositoryUuid"].as_str().unwrap().to_string()
}

/// Changes a VIRTUAL's settings.
async fn set_virtual(s: &Server, id: &str, settings: Value) {
    let (st, v) = gf(
        s,
        reqwest::Method::PUT,
        &format!("/registry/instance/x/repositories/{id}"),
        Some(json!({"type": "VIRTUAL", "virtualSettings": settings})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
}

async fn get(s: &Server, path: &str) -> reqwest::Response {
    s.client
        .get(s.url(path))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap()
}

/// npm through a group of two LOCALs and a PROXY: `latest` is the highest `latest` among the
/// members whatever their order; versions are unioned; a name a LOCAL owns hides the upstream's
/// versions of it in `npm install` and in a direct tarball GET (`private-x@9.9.9`) until the
/// allow-list names it; a publish through the group lands in the deployment member and installs
/// at once; with `allowRemoteProxying` false the proxy answers from its cache only.
async fn npm_through_a_group_merges_and_guards(b: Backend) {
    let up = Server::start(b).await;
    up.harness_registry(
        "acme",
        json!({"identifier": "up", "packageType": "NPM", "parentRef": "acme"}),
    )
    .await;
    let w = up.dir.path();
    let publisher = Npm::new(&up, "up", &up.token);
    for (name, version) in [
        ("shared", "3.0.0"),
        ("private-x", "9.9.9"),
        ("only-up", "1.0.0"),
        ("later-up", "1.0.0"),
    ] {
        publisher.ok(
            &package(
                &w.join(format!("{name}-{version}")),
                json!({"name": name, "version": version}),
            ),
            &["publish"],
        );
    }
    let mirror = up.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    let a = hosted(&s, "a", "NPM").await;
    let bb = hosted(&s, "b", "NPM").await;
    let p = upstream(&s, "npmup", "NPM", &up.url("/pkg/acme/up/npm/"), &mirror).await;
    let w = s.dir.path();
    // a holds shared@1.0.0 (its latest) and private-x@1.0.0; b holds shared@2.0.0.
    let to_a = Npm::at(&s, "default", "a", &s.token);
    let to_b = Npm::at(&s, "default", "b", &s.token);
    to_a.ok(
        &package(&w.join("s1"), json!({"name": "shared", "version": "1.0.0"})),
        &["publish"],
    );
    to_a.ok(
        &package(&w.join("px"), json!({"name": "private-x", "version": "1.0.0"})),
        &["publish"],
    );
    to_b.ok(
        &package(&w.join("s2"), json!({"name": "shared", "version": "2.0.0"})),
        &["publish"],
    );
    let g = group(&s, "all", "npm", &[&a, &bb, &p], Some(&a), json!({})).await;
    let npm = Npm::at(&s, "default", "all", &s.token);
    let packument = |name: &'static str| {
        let s = &s;
        async move {
            let r = get(s, &format!("/pkg/default/all/npm/{name}")).await;
            assert_eq!(r.status(), 200, "{name}");
            let served = r.headers()["x-arca-served-by"]
                .to_str()
                .unwrap()
                .to_string();
            (r.json::<Value>().await.unwrap(), served)
        }
    };
    // The highest latest among the members (b's, though a comes first); the upstream's 3.0.0 is
    // hidden because LOCAL members own the name.
    let (v, served) = packument("shared").await;
    assert_eq!(v["dist-tags"]["latest"], "2.0.0", "{v}");
    let versions: Vec<&String> = v["versions"].as_object().unwrap().keys().collect();
    assert_eq!(versions, ["1.0.0", "2.0.0"], "{v}");
    assert_eq!(served, "a, b");
    let app = w.join("app");
    package(
        &app,
        json!({"name": "app", "version": "0.0.1", "private": true}),
    );
    npm.ok(&app, &["install", "shared", "private-x", "only-up"]);
    let installed = |name: &str| -> String {
        let m: Value = serde_json::from_str(
            &std::fs::read_to_string(app.join(format!("node_modules/{name}/package.json")))
                .unwrap(),
        )
        .unwrap();
        m["version"].as_str().unwrap().to_string()
    };
    assert_eq!(installed("shared"), "2.0.0");
    // The hosted private-x@1.0.0 beats the upstream's 9.9.9, in the packument and the download.
    assert_eq!(installed("private-x"), "1.0.0");
    assert_eq!(installed("only-up"), "1.0.0");
    let (v, _) = packument("private-x").await;
    assert!(v["versions"].get("9.9.9").is_none(), "{v}");
    let r = get(&s, "/pkg/default/all/npm/private-x/-/private-x-9.9.9.tgz").await;
    assert_eq!(r.status(), 404);
    let r = npm.run(&w.join("app2"), &["install", "private-x@9.9.9"]);
    assert!(!r.ok, "the upstream's private-x@9.9.9 must not install");
    // A name only the upstream has comes through, and says who served it.
    let r = get(&s, "/pkg/default/all/npm/only-up/-/only-up-1.0.0.tgz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-arca-served-by"], "npmup");
    let r = get(&s, "/pkg/default/all/npm/private-x/-/private-x-1.0.0.tgz").await;
    assert_eq!(r.headers()["x-arca-served-by"], "a");

    // Member order does not change latest.
    set_virtual(
        &s,
        &g,
        json!({"includedRepositoryUuids": [&bb, &a, &p], "deploymentRepositoryUuid": &a}),
    )
    .await;
    let (v, served) = packument("shared").await;
    assert_eq!(v["dist-tags"]["latest"], "2.0.0", "{v}");
    assert_eq!(served, "b, a");

    // Allow-listed, the upstream's versions of the name come back (latest 3.0.0).
    set_virtual(
        &s,
        &g,
        json!({"dependencyConfusionAllowList": ["shar*"], "allowRemoteProxying": true}),
    )
    .await;
    let (v, served) = packument("shared").await;
    assert_eq!(v["dist-tags"]["latest"], "3.0.0", "{v}");
    assert_eq!(served, "b, a, npmup");
    let (v, _) = packument("private-x").await;
    assert!(v["versions"].get("9.9.9").is_none(), "{v}");

    // A publish through the group lands in the deployment member and is installed at once.
    npm.ok(
        &package(&w.join("s4"), json!({"name": "shared", "version": "4.0.0"})),
        &["publish"],
    );
    let r = get(&s, "/pkg/default/a/npm/shared").await;
    let v: Value = r.json().await.unwrap();
    assert!(v["versions"].get("4.0.0").is_some(), "{v}");
    let app3 = w.join("app3");
    package(
        &app3,
        json!({"name": "app3", "version": "0.0.1", "private": true}),
    );
    npm.ok(&app3, &["install", "shared"]);
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(app3.join("node_modules/shared/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["version"], "4.0.0");

    // allowRemoteProxying false: the proxy answers from its cache only. What it fetched still
    // installs; a package never fetched is not in this member.
    set_virtual(&s, &g, json!({"allowRemoteProxying": false})).await;
    let r = get(&s, "/pkg/default/all/npm/later-up").await;
    assert_eq!(r.status(), 404);
    let r = get(&s, "/pkg/default/all/npm/only-up/-/only-up-1.0.0.tgz").await;
    assert_eq!(r.status(), 200);
    let r = get(&s, "/pkg/default/npmup/npm/later-up").await;
    assert_eq!(r.status(), 200, "the proxy itself still reads through");
}

both_backends!(npm_through_a_group_merges_and_guards);

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Server, call};

async fn role_matrix(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme/web", "files").await;
    let (_, _) = call(s.put(
        "/har/api/v1/registry/acme/web/files/+",
        json!({"isDeletePackageAllowed": true}),
    ))
    .await;
    let reader = s.user_with_role("reader", "reader", "acme");
    let deployer = s.user_with_role("deployer", "deployer", "acme/web");
    let admin = s.user_with_role("orgadmin", "admin", "acme/web");
    let stranger = s.user_with_role("stranger", "admin", "other");
    let seed = s
        .client
        .put(s.url("/pkg/acme/web/files/generic/p/1/seed"))
        .header("x-api-key", &s.token)
        .body("s")
        .send()
        .await
        .unwrap();
    // The native URL layout carries the account and registry only.
    assert_eq!(seed.status(), 404);
    let seed = s
        .client
        .put(s.url("/pkg/acme/files/generic/p/1/seed"))
        .header("x-api-key", &s.token)
        .body("s")
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), 201);

    struct Who<'a> {
        name: &'a str,
        token: Option<&'a str>,
        read: u16,
        write: u16,
        delete: u16,
        manage: u16,
    }
    let rows = [
        Who {
            name: "anonymous",
            token: None,
            read: 401,
            write: 401,
            delete: 401,
            manage: 401,
        },
        Who {
            name: "reader",
            token: Some(&reader),
            read: 200,
            write: 403,
            delete: 403,
            manage: 403,
        },
        Who {
            name: "deployer",
            token: Some(&deployer),
            read: 200,
            write: 201,
            delete: 204,
            manage: 403,
        },
        Who {
            name: "admin",
            token: Some(&admin),
            read: 200,
            write: 201,
            delete: 204,
            manage: 200,
        },
        Who {
            name: "wrong scope",
            token: Some(&stranger),
            // What a caller cannot read does not exist for it.
            read: 404,
            write: 404,
            delete: 404,
            manage: 404,
        },
    ];
    for (i, w) in rows.iter().enumerate() {
        let with = |r: reqwest::RequestBuilder| match w.token {
            Some(t) => r.header("x-api-key", t),
            None => r,
        };
        let st = with(s.client.get(s.url("/pkg/acme/files/generic/p/1/seed")))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, w.read, "{} read", w.name);
        let path = format!("/pkg/acme/files/generic/q/{i}/f");
        let st = with(s.client.put(s.url(&path)))
            .body("x")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, w.write, "{} write", w.name);
        if w.write != 201 {
            // Give the delete something to act on.
            s.client
                .put(s.url(&path))
                .header("x-api-key", &s.token)
                .body("x")
                .send()
                .await
                .unwrap();
        }
        let st = with(
            s.client
                .delete(s.url(&format!("/pkg/acme/files/generic/q/{i}"))),
        )
        .send()
        .await
        .unwrap()
        .status();
        assert_eq!(st, w.delete, "{} delete", w.name);
        let st = with(s.client.put(s.url("/har/api/v1/registry/acme/web/files/+")))
            .json(&json!({"description": w.name}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, w.manage, "{} manage", w.name);
        let st = with(s.client.get(s.url("/har/api/v1/registry/acme/web/files/+")))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(
            st,
            if w.read == 200 { 200 } else { w.read },
            "{} get registry",
            w.name
        );
    }
    // Creating registries needs admin on the parent scope.
    let body = json!({"identifier": "new-one", "packageType": "GENERIC", "parentRef": "acme/web"});
    for (t, st) in [
        (&reader, 403),
        (&deployer, 403),
        (&stranger, 403),
        (&admin, 201),
    ] {
        let r = s
            .client
            .post(s.url("/har/api/v1/registry?space_ref=acme/web/+"))
            .header("x-api-key", t.as_str())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), st);
    }
    let r = s
        .client
        .post(s.url("/har/api/v1/registry?space_ref=acme/+"))
        .header("x-api-key", admin.as_str())
        .json(&json!({"identifier": "top", "packageType": "GENERIC", "parentRef": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "an org admin is not an account admin");
    // GitFlic dialect, same rules.
    let r = s
        .client
        .get(s.url("/registry/company/acme/repositories"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = s
        .client
        .post(s.url("/registry/company/acme/repositories"))
        .header("authorization", format!("token {reader}"))
        .json(&json!({"type": "LOCAL", "repositoryName": "x", "packageType": "npm"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

async fn credential_forms(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    s.cli(&[
        "user",
        "create",
        "carol",
        "--password",
        "pa55word",
        "--role",
        "reader",
        "--scope",
        "acme",
    ]);
    let carol = s.cli(&["token", "create", "--user", "carol", "--name", "ci"]);
    let url = s.url("/har/api/v1/registry/acme/files/+");
    let ok: Vec<reqwest::RequestBuilder> = vec![
        s.client.get(&url).header("x-api-key", &carol),
        s.client
            .get(&url)
            .header("authorization", format!("token {carol}")),
        s.client
            .get(&url)
            .header("authorization", format!("Bearer {carol}")),
        s.client.get(&url).basic_auth("anything", Some(&carol)),
        s.client.get(&url).basic_auth("carol", Some("pa55word")),
        s.client.get(&url).header("x-nuget-apikey", &carol),
    ];
    for r in ok {
        assert_eq!(r.send().await.unwrap().status(), 200);
    }
    for r in [
        s.client.get(&url).header("x-api-key", "arca_wrong"),
        s.client.get(&url).basic_auth("carol", Some("wrong")),
        s.client.get(&url).basic_auth("nobody", Some("pa55word")),
        s.client.get(&url).header("authorization", "Basic !!!"),
    ] {
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"arca\"");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"], "401");
    }
    // Revoked tokens stop working; listing never shows secrets.
    let list = s.cli(&["token", "list", "--user", "carol"]);
    assert!(!list.contains(&carol));
    let id = list.split('\t').next().unwrap().to_string();
    s.cli(&["token", "revoke", &id]);
    assert_eq!(
        s.client
            .get(&url)
            .header("x-api-key", &carol)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let users = s.cli(&["user", "list"]);
    assert!(users.contains("carol\t-\treader@acme"), "{users}");
    assert!(users.contains("admin\tadmin"), "{users}");
}

async fn anonymous_access_registry(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "pub", "packageType": "GENERIC", "parentRef": "acme", "isPublic": true})).await;
    s.generic_registry("acme", "priv").await;
    for reg in ["pub", "priv"] {
        let r = s
            .client
            .put(s.url(&format!("/pkg/acme/{reg}/generic/p/1/f")))
            .header("x-api-key", &s.token)
            .body("data")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = s
        .client
        .get(s.url("/pkg/acme/pub/generic/p/1/f"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "data");
    let r = s
        .client
        .get(s.url("/pkg/acme/priv/generic/p/1/f"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    // Unknown registries look the same as private ones to anonymous callers.
    assert_eq!(
        s.client
            .get(s.url("/pkg/acme/nope/generic/p/1/f"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = s
        .client
        .put(s.url("/pkg/acme/pub/generic/p/2/f"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "anonymous users never write");
    let r = s
        .client
        .delete(s.url("/pkg/acme/pub/generic/p/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Management reads of a public registry work anonymously, writes do not.
    assert_eq!(
        s.client
            .get(s.url("/har/api/v1/registry/acme/pub/+/artifacts"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.client
            .get(s.url("/har/api/v1/registry/acme/priv/+/artifacts"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        s.client
            .delete(s.url("/har/api/v1/registry/acme/pub/+"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

/// Errors raised before a format's handler runs (unknown registry, bad credentials, no read
/// permission) are already in that format's envelope: npm's `error` field, Cargo's
/// `errors[].detail` with its login challenge; a DOCKER registry's `/pkg` root says where its
/// protocol lives.
async fn errors_before_the_format_use_its_envelope(b: Backend) {
    let s = Server::start(b).await;
    for (id, t) in [("npm", "NPM"), ("crates", "CARGO"), ("img", "DOCKER")] {
        s.harness_registry(
            "acme",
            json!({"identifier": id, "packageType": t, "parentRef": "acme"}),
        )
        .await;
    }
    let stranger = s.user_with_role("stranger", "admin", "other");
    let get = |path: &str, auth: Option<&str>| {
        let mut r = s.client.get(s.url(path));
        if let Some(t) = auth {
            r = r.basic_auth("u", Some(t));
        }
        r.send()
    };
    // A registry the stranger cannot read answers like a missing one (no existence oracle).
    for (path, auth, status) in [
        ("/pkg/acme/npm/npm/left-pad", Some("wrong-token"), 401),
        ("/pkg/acme/npm/npm/left-pad", None, 401),
        ("/pkg/acme/npm/npm/left-pad", Some(stranger.as_str()), 404),
        (
            "/pkg/acme/missing/npm/left-pad",
            Some(stranger.as_str()),
            404,
        ),
    ] {
        let r = get(path, auth).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path} {auth:?}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(
            v["error"].as_str().is_some_and(|m| !m.is_empty()),
            "npm envelope: {v}"
        );
    }
    for (path, auth, status) in [
        (
            "/pkg/acme/crates/cargo/index/config.json",
            Some("wrong-token"),
            401,
        ),
        ("/pkg/acme/crates/cargo/index/config.json", None, 401),
        (
            "/pkg/acme/crates/cargo/index/config.json",
            Some(stranger.as_str()),
            404,
        ),
    ] {
        let r = get(path, auth).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path} {auth:?}");
        if status == 401 {
            let challenges: Vec<&str> = r
                .headers()
                .get_all("www-authenticate")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert!(challenges.contains(&"Cargo"), "{challenges:?}");
        }
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(
            v["errors"][0]["detail"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "cargo envelope: {v}"
        );
    }
    let r = s.get("/pkg/acme/img/docker/").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("/v2/acme/img/"));
}

both_backends!(
    role_matrix,
    credential_forms,
    anonymous_access_registry,
    errors_before_the_format_use_its_envelope
);

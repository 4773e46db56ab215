//! GitFlic repository names (issue 13, item 2): `[A-Za-z0-9._-]` with upper case, unique per owner
//! case-insensitively, and the native and OCI addresses of names per owner.

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call};

fn auth(s: &Server, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("authorization", format!("token {}", s.token))
}

async fn gf_post(s: &Server, path: &str, body: Value) -> (u16, Value) {
    call(auth(s, s.client.post(s.url(path))).json(&body)).await
}

/// GitFlic names: `[A-Za-z0-9._-]` with upper case (the seed's own `trashCan`), kept as written,
/// compared case-insensitively (uniqueness, native URLs); OCI names are their lower case.
async fn gitflic_names_with_upper_case(b: Backend) {
    let s = Server::start(b).await;
    let base = "/registry/company/acme/repositories";
    for name in ["MyRepo", "trashCan", "v1.2_x-Y"] {
        let (st, v) = gf_post(
            &s,
            base,
            json!({"type": "LOCAL", "repositoryName": name, "packageType": "generic"}),
        )
        .await;
        assert_eq!(st, 201, "{name}: {v}");
        assert_eq!(v["title"], name);
    }
    let (st, v) = gf_post(
        &s,
        base,
        json!({"type": "LOCAL", "repositoryName": "MYREPO", "packageType": "generic"}),
    )
    .await;
    assert_eq!(st, 409, "names compare case-insensitively: {v}");
    for bad in ["P 1", "..", "a/b", "ü", ""] {
        let (st, v) = gf_post(
            &s,
            base,
            json!({"type": "LOCAL", "repositoryName": bad, "packageType": "generic"}),
        )
        .await;
        assert_eq!(
            (st, v["details"]["field"].as_str()),
            (400, Some("repositoryName")),
            "{bad}: {v}"
        );
    }
    // Native URLs in any spelling.
    let put = s
        .client
        .put(s.url("/pkg/default/MyRepo/generic/tool/1.0/a.txt"))
        .header("x-api-key", &s.token)
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let got = s
        .get("/pkg/default/myrepo/generic/tool/1.0/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    // The Harness dialect finds it too (its own identifiers stay lower case).
    let (st, v) = call(s.get("/har/api/v1/registry/default/acme/MyRepo/+")).await;
    assert_eq!(
        (st, &v["data"]["identifier"]),
        (200, &json!("MyRepo")),
        "{v}"
    );
    // A container registry is reached through its lower-cased name.
    let (st, v) = gf_post(
        &s,
        base,
        json!({"type": "LOCAL", "repositoryName": "MyImages", "packageType": "container"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (_, v) = call(s.get("/har/api/v1/registry/default/acme/myimages/+")).await;
    assert_eq!(v["data"]["url"], s.url("/default/acme/myimages"), "{v}");
    let data = b"layer".to_vec();
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data))
    );
    let r = s
        .client
        .post(s.url(&format!(
            "/v2/default/myimages/app/blobs/uploads/?digest={digest}"
        )))
        .basic_auth("admin", Some(&s.token))
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // A name that cannot be an OCI repository name is refused for container registries only.
    let (st, v) = gf_post(
        &s,
        base,
        json!({"type": "LOCAL", "repositoryName": "_images", "packageType": "container"}),
    )
    .await;
    assert_eq!(
        (st, v["details"]["field"].as_str()),
        (400, Some("identifier")),
        "{v}"
    );
}

/// GitFlic names are unique per owner: every company and project may have its `generic-local`.
/// Each is reached at `/pkg/<scope path>/-/<name>/<format>/`; the account shorthand
/// `/pkg/<account>/<name>/` keeps meaning the registry named per account (Harness's, and every one
/// made before), or the only one of that name; OCI names go by the longest scope.
async fn gitflic_names_per_owner(b: Backend) {
    let s = Server::start(b).await;
    let owners = [
        ("/registry/company/c1/repositories", "default/c1"),
        ("/registry/company/c2/repositories", "default/c2"),
        (
            "/registry/project/ivan/webapp/repositories",
            "default/ivan/webapp",
        ),
    ];
    for (base, scope) in owners {
        let (st, v) = gf_post(
            &s,
            base,
            json!({"type": "LOCAL", "repositoryName": "generic-local", "packageType": "generic"}),
        )
        .await;
        assert_eq!(st, 201, "{base}: {v}");
        let (st, v) = gf_post(
            &s,
            base,
            json!({"type": "LOCAL", "repositoryName": "Generic-Local", "packageType": "generic"}),
        )
        .await;
        assert_eq!(st, 409, "unique per owner, case-insensitively: {v}");
        let put = s
            .client
            .put(s.url(&format!(
                "/pkg/{scope}/-/generic-local/generic/tool/1.0/a.txt"
            )))
            .header("x-api-key", &s.token)
            .body(scope.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "{scope}");
        // The Harness view of it: its own ref, the scoped native URL.
        let (st, v) = call(s.get(&format!("/har/api/v1/registry/{scope}/generic-local/+"))).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            v["data"]["url"],
            s.url(&format!("/pkg/{scope}/-/generic-local/generic"))
        );
    }
    for (_, scope) in owners {
        let got = s
            .get(&format!(
                "/pkg/{scope}/-/generic-local/generic/tool/1.0/a.txt"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(got.text().await.unwrap(), scope);
    }
    // A project named like a format: its scoped URL is still its own.
    let (st, v) = gf_post(
        &s,
        "/registry/project/ivan/npm/repositories",
        json!({"type": "LOCAL", "repositoryName": "generic-local", "packageType": "generic"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let put = s
        .client
        .put(s.url("/pkg/default/ivan/npm/-/generic-local/generic/tool/1.0/a.txt"))
        .header("x-api-key", &s.token)
        .body("npm project")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    // The shorthand is ambiguous for those: not found.
    let got = s
        .get("/pkg/default/generic-local/generic/tool/1.0/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 404);
    // Harness keeps its rule: an identifier unique in the account.
    let (st, v) = call(s.post(
        "/har/api/v1/registry",
        json!({"identifier": "generic-local", "packageType": "GENERIC", "parentRef": "default/c3"}),
    ))
    .await;
    assert_eq!(st, 409, "{v}");
    // A Harness registry keeps its shorthand URL when a company adds the same name.
    let (st, v) = call(s.post(
        "/har/api/v1/registry",
        json!({"identifier": "files", "packageType": "GENERIC", "parentRef": "default/h"}),
    ))
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["data"]["url"], s.url("/pkg/default/files/generic"));
    let put = s
        .client
        .put(s.url("/pkg/default/files/generic/tool/1.0/a.txt"))
        .header("x-api-key", &s.token)
        .body("harness")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let (st, v) = gf_post(
        &s,
        "/registry/company/c1/repositories",
        json!({"type": "LOCAL", "repositoryName": "files", "packageType": "generic"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let got = s
        .get("/pkg/default/files/generic/tool/1.0/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.text().await.unwrap(), "harness");
    // OCI: `<scope path>/<name>/<image>` by the longest scope.
    for (base, _) in &owners[..2] {
        let (st, v) = gf_post(
            &s,
            base,
            json!({"type": "LOCAL", "repositoryName": "imgs", "packageType": "container"}),
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }
    for scope in ["default/c1", "default/c2"] {
        let data = scope.as_bytes().to_vec();
        let digest = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data))
        );
        let r = s
            .client
            .post(s.url(&format!(
                "/v2/{scope}/imgs/app/blobs/uploads/?digest={digest}"
            )))
            .basic_auth("admin", Some(&s.token))
            .body(data)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{scope}: {}", r.text().await.unwrap());
        let (_, v) = call(s.get(&format!("/har/api/v1/registry/{scope}/imgs/+"))).await;
        assert_eq!(v["data"]["url"], s.url(&format!("/{scope}/imgs")));
    }
}

both_backends!(gitflic_names_with_upper_case, gitflic_names_per_owner);

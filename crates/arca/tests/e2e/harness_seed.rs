//! Seed conformance of the Harness dialect (issue 13): account, org and project ids as Harness
//! accepts them, refs as clients send them, the seed's own request samples, and no registries the
//! server made up in the user's namespace.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both_backends;
use crate::common::{Backend, Server, call};

fn generic(identifier: &str, parent: &str) -> Value {
    json!({"identifier": identifier, "packageType": "GENERIC", "parentRef": parent})
}

async fn create(s: &Server, body: Value) -> (u16, Value) {
    call(s.post("/har/api/v1/registry", body)).await
}

/// Real Harness ids (mixed case, leading `_`) are accepted in parentRef, space_ref and
/// registry_ref, compare case-insensitively, and keep the spelling they were created with.
async fn harness_mixed_case_scope_ids(b: Backend) {
    let s = Server::start(b).await;
    let acct = "px7xd_BFRCi-pfWPYXVjvw";
    for (parent, ident) in [
        (acct, "case1"),
        ("acc123/Org456", "case2"),
        ("acc123/_org", "case3"),
        ("acc123/Org456/Proj$1", "case4"),
    ] {
        let (st, v) = create(&s, generic(ident, parent)).await;
        assert_eq!(st, 201, "{parent}: {v}");
        assert_eq!(v["data"]["parentRef"], parent);
        let (st, v) = call(s.get(&format!("/har/api/v1/registry/{parent}/{ident}/+"))).await;
        assert_eq!(st, 200, "{parent}: {v}");
        // Any spelling of the ids finds the same registry.
        let upper = parent.to_ascii_uppercase();
        let (st, v) = call(s.get(&format!("/har/api/v1/registry/{upper}/{ident}/+"))).await;
        assert_eq!(st, 200, "{upper}: {v}");
        assert_eq!(
            v["data"]["parentRef"], parent,
            "the stored spelling is kept"
        );
    }
    // The same scope in another spelling is the same scope: one identifier per account.
    let (st, v) = create(&s, generic("case1", "PX7XD_bfrci-PFWPYXVJVW")).await;
    assert_eq!(st, 409, "{v}");
    // A registry created through another spelling lands in the existing scope.
    let (st, v) = call(s.post(
        "/har/api/v1/registry?space_ref=ACC123/org456/%2B",
        json!({"identifier": "case5", "packageType": "GENERIC"}),
    ))
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["data"]["parentRef"], "acc123/Org456");
    let (st, v) = call(s.get("/har/api/v1/spaces/ACC123/ORG456/+/registries")).await;
    assert_eq!(st, 200, "{v}");
    let ids: Vec<&str> = v["data"]["registries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["identifier"].as_str())
        .collect();
    assert!(ids.contains(&"case2") && ids.contains(&"case5"), "{v}");
    // Native URLs take the account in any spelling.
    let put = s
        .client
        .put(s.url(&format!("/pkg/{acct}/case1/generic/tool/1.0/a.txt")))
        .header("x-api-key", &s.token)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let got = s
        .get(&format!(
            "/pkg/{}/case1/generic/tool/1.0/a.txt",
            acct.to_ascii_lowercase()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    // Roles granted on one spelling hold for every spelling.
    let ann = s.user_with_role("ann", "reader", &acct.to_ascii_lowercase());
    let (st, v) = call(
        s.client
            .get(s.url(&format!("/har/api/v1/registry/{acct}/case1/+")))
            .header("x-api-key", &ann),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    // Still refused: what neither rule allows.
    for bad in ["-lead", "a.B", "acc/x y", &format!("A{}", "b".repeat(128))] {
        let (st, v) = create(&s, generic("bad", bad)).await;
        assert_eq!(
            (st, v["details"]["field"].as_str()),
            (400, Some("parentRef")),
            "{bad}: {v}"
        );
    }
}

/// OCI repository names are lower case: a DOCKER registry in a mixed-case account is reached
/// through the lower-cased account, and its URL and client setup say so.
async fn harness_oci_account_lower_cased(b: Backend) {
    let s = Server::start(b).await;
    let acct = "px7xd_BFRCi-pfWPYXVjvw";
    let lower = acct.to_ascii_lowercase();
    let (st, v) = create(
        &s,
        json!({"identifier": "img", "packageType": "DOCKER", "parentRef": acct}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["data"]["url"], s.url(&format!("/{lower}/img")));
    let (st, v) = call(s.get(&format!(
        "/har/api/v1/registry/{acct}/img/+/client-setup-details"
    )))
    .await;
    assert_eq!(st, 200, "{v}");
    let text = v["data"].to_string();
    assert!(text.contains(&format!("/{lower}/img/")), "{text}");
    assert!(!text.contains(&format!("/{acct}/img")), "{text}");
    assert!(text.contains("lower case"), "{text}");
    // Push a config blob, a layer and a manifest under the lower-cased name, and read it back.
    let name = format!("{lower}/img/app");
    let mut descs = Vec::new();
    for data in [b"{}".to_vec(), b"layer".to_vec()] {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        let r = s
            .client
            .post(s.url(&format!("/v2/{name}/blobs/uploads/?digest={digest}")))
            .basic_auth("admin", Some(&s.token))
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        descs.push(json!({"digest": digest, "size": data.len()}));
    }
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": descs[0]["digest"], "size": descs[0]["size"]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": descs[1]["digest"], "size": descs[1]["size"]}]});
    let r = s
        .client
        .put(s.url(&format!("/v2/{name}/manifests/1.0")))
        .basic_auth("admin", Some(&s.token))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let (st, v) = call(s.get(&format!("/har/api/v1/registry/{acct}/img/+/artifacts"))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["artifacts"][0]["name"], "app");
}

/// Refs as clients send them: a registry_ref percent-encoded whole (terminator included, either
/// case), `space_ref` with its `/+` typed unencoded, and UUIDs in upper case.
async fn harness_refs_as_clients_send_them(b: Backend) {
    let s = Server::start(b).await;
    for (q, parent, ident) in [
        ("acc123/+", "acc123", "pr-0"),
        ("acc123/org456/+", "acc123/org456", "pr-1"),
        ("acc123/org456/proj789/+", "acc123/org456/proj789", "pr-2"),
    ] {
        let (st, v) = call(s.post(
            &format!("/har/api/v1/registry?space_ref={q}"),
            json!({"identifier": ident, "packageType": "GENERIC"}),
        ))
        .await;
        assert_eq!(st, 201, "{q}: {v}");
        assert_eq!(v["data"]["parentRef"], parent);
        let whole = format!("{parent}/{ident}/+")
            .replace('/', "%2F")
            .replace('+', "%2B");
        for r in [whole.clone(), whole.to_ascii_lowercase()] {
            let (st, v) = call(s.get(&format!("/har/api/v1/registry/{r}"))).await;
            assert_eq!(st, 200, "{r}: {v}");
            assert_eq!(v["data"]["identifier"], ident);
            for sub in ["artifacts", "client-setup-details"] {
                let (st, v) = call(s.get(&format!("/har/api/v1/registry/{r}/{sub}"))).await;
                assert_eq!(st, 200, "{r}/{sub}: {v}");
            }
        }
        let (st, v) = call(s.put(
            &format!("/har/api/v1/registry/{whole}"),
            json!({"description": "via encoded ref"}),
        ))
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["data"]["description"], "via encoded ref");
    }
    // Artifacts under a whole-encoded ref.
    let put = s
        .client
        .put(s.url("/pkg/acc123/pr-0/generic/tool/1.0/a.txt"))
        .header("x-api-key", &s.token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let (st, v) =
        call(s.get("/har/api/v1/registry/acc123%2Fpr-0%2F%2B/artifact/tool/+/version/1.0/files"))
            .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["files"][0]["name"], "a.txt");
    // An upstream named by its UUID in upper case.
    let (st, up) = create(
        &s,
        json!({"identifier": "up", "packageType": "GENERIC", "parentRef": "acc123",
               "config": {"type": "UPSTREAM", "source": "Custom", "url": "http://127.0.0.1:9/", "authType": "Anonymous"}}),
    )
    .await;
    assert_eq!(st, 201, "{up}");
    let upper = up["data"]["uuid"].as_str().unwrap().to_ascii_uppercase();
    let (st, v) = create(
        &s,
        json!({"identifier": "with-up", "packageType": "GENERIC", "parentRef": "acc123",
               "config": {"type": "VIRTUAL", "upstreamProxies": [upper]}}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["data"]["config"]["upstreamProxies"], json!(["up"]));
    let (st, v) = call(s.delete("/har/api/v1/registry/acc123%2Fwith-up%2F%2B")).await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = call(s.get("/har/api/v1/registry/acc123/with-up/+")).await;
    assert_eq!(st, 404);
}

/// The seed's request sample, verbatim (`"config": {}`, `parentRef: "string"`), on every endpoint of
/// the seed with the documented status and fields; then the fields the sample leaves empty.
async fn harness_seed_examples_verbatim(b: Backend) {
    let s = Server::start(b).await;
    let sample = json!({"allowedPattern": [], "blockedPattern": [], "cleanupPolicy": [], "config": {},
        "description": "string", "identifier": "string", "labels": [], "packageType": "DOCKER",
        "parentRef": "string", "scanners": []});
    let (st, v) = call(s.post("/har/api/v1/registry?space_ref=acc123/+", sample.clone())).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["status"], "SUCCESS");
    let d = &v["data"];
    for (k, want) in [
        ("identifier", json!("string")),
        ("packageType", json!("DOCKER")),
        ("description", json!("string")),
        ("parentRef", json!("string")),
        ("isPublic", json!(false)),
        ("labels", json!([])),
        ("scanners", json!([])),
    ] {
        assert_eq!(d[k], want, "{k}: {v}");
    }
    assert_eq!(d["config"]["type"], "VIRTUAL", "{v}");
    assert!(d["uuid"].as_str().is_some_and(|u| u.len() == 36), "{v}");
    assert_eq!(d["url"], s.url("/string/string"));
    let (st, v) = call(s.get("/har/api/v1/registry/string/string/+")).await;
    assert_eq!((st, &v["status"]), (200, &json!("SUCCESS")), "{v}");
    assert_eq!(v["data"]["identifier"], "string");
    let (st, v) = call(s.put("/har/api/v1/registry/string/string/+", sample.clone())).await;
    assert_eq!((st, &v["status"]), (200, &json!("SUCCESS")), "{v}");
    assert_eq!(v["data"]["config"]["type"], "VIRTUAL");
    let (st, v) = call(s.get("/har/api/v1/registry/string/string/+/artifacts")).await;
    assert_eq!((st, &v["status"]), (200, &json!("SUCCESS")), "{v}");
    assert_eq!(v["data"]["itemCount"], 0);
    let (st, v) = call(s.get("/har/api/v1/registry/string/string/+/client-setup-details")).await;
    assert_eq!((st, &v["status"]), (200, &json!("SUCCESS")), "{v}");
    assert!(
        v["data"]["sections"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    let (st, v) = call(s.delete("/har/api/v1/registry/string/string/+")).await;
    assert_eq!((st, v), (200, json!({"status": "SUCCESS"})));
    // The seed's three space_ref forms and registry_ref examples (one identifier per account).
    for (q, ident, r) in [
        ("acc123/+", "registry123", "acc123/registry123/+"),
        (
            "acc123/org456/+",
            "registry456",
            "acc123/org456/registry456/+",
        ),
        (
            "acc123/org456/proj789/+",
            "registry789",
            "acc123/org456/proj789/registry789/+",
        ),
    ] {
        let mut body = sample.clone();
        body["identifier"] = json!(ident);
        body["parentRef"] = json!(q.trim_end_matches("/+"));
        let (st, v) = call(s.post(&format!("/har/api/v1/registry?space_ref={q}"), body)).await;
        assert_eq!(st, 201, "{q}: {v}");
        let (st, v) = call(s.get(&format!("/har/api/v1/registry/{r}"))).await;
        assert_eq!(st, 200, "{r}: {v}");
    }
    // cleanupPolicy is stored on create; scanners are {name} objects of known scanners.
    let policy = json!([{"name": "p", "expireDays": 30, "packagePrefix": ["com.acme"], "versionPrefix": ["0.0."]}]);
    let mut body = sample.clone();
    body["identifier"] = json!("cp-create");
    body["cleanupPolicy"] = policy.clone();
    body["scanners"] = json!([{"name": "AQUA_TRIVY"}]);
    let (st, v) = call(s.post("/har/api/v1/registry", body)).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["data"]["cleanupPolicy"], policy);
    assert_eq!(v["data"]["scanners"], json!([{"name": "AQUA_TRIVY"}]));
    let (_, v) = call(s.get("/har/api/v1/registry/string/cp-create/+")).await;
    assert_eq!(v["data"]["cleanupPolicy"], policy);
    for bad in [json!(["x"]), json!([{"name": "FOO"}]), json!([{}])] {
        let mut body = sample.clone();
        body["identifier"] = json!("bad-scanner");
        body["scanners"] = bad.clone();
        let (st, v) = call(s.post("/har/api/v1/registry", body)).await;
        assert_eq!(
            (st, v["details"]["field"].as_str()),
            (400, Some("scanners")),
            "{bad}: {v}"
        );
    }
    // A config that names no type but says something is still refused.
    let mut body = sample.clone();
    body["identifier"] = json!("half-config");
    body["config"] = json!({"url": "http://127.0.0.1:9/"});
    let (st, v) = call(s.post("/har/api/v1/registry", body)).await;
    assert_eq!(
        (st, v["details"]["field"].as_str()),
        (400, Some("config.type")),
        "{v}"
    );
}

/// A create refused after its scope was resolved leaves no account, org or project behind.
async fn harness_refused_create_leaves_no_scope(b: Backend) {
    let s = Server::start(b).await;
    let (st, v) = create(
        &s,
        json!({"identifier": "x", "packageType": "GENERIC", "parentRef": "newacct/neworg", "allowedPattern": ["("]}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    for space in ["newacct", "newacct/neworg"] {
        let (st, v) = call(s.get(&format!("/har/api/v1/spaces/{space}/+/registries"))).await;
        assert_eq!(st, 404, "{space}: {v}");
    }
    s.generic_registry("acme", "dup").await;
    let (st, v) = create(&s, generic("dup", "acme/neworg")).await;
    assert_eq!(st, 409, "{v}");
    let (st, v) = call(s.get("/har/api/v1/spaces/acme/neworg/+/registries")).await;
    assert_eq!(st, 404, "{v}");
}

/// The server's caches and trash registries take no user name and do not show in the Harness
/// dialect: deleted versions stay on their registry (`deleted=include|only`, `deletedAt`) and are
/// restored there, by the registry's id, not its name.
async fn harness_no_server_made_registries(b: Backend) {
    let s = Server::start(b).await;
    let upstream = |id: &str| {
        json!({"identifier": id, "packageType": "NPM", "parentRef": "acme",
               "config": {"type": "UPSTREAM", "source": "Custom", "url": "http://127.0.0.1:9/", "authType": "Anonymous"}})
    };
    // Names the server used to take: a user's npm-cache before an upstream npm, and after; trash-can.
    let (st, v) = create(
        &s,
        json!({"identifier": "npm-cache", "packageType": "NPM", "parentRef": "acme"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = create(&s, upstream("npm")).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = create(&s, upstream("pypi-like")).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = create(
        &s,
        json!({"identifier": "pypi-like-cache", "packageType": "NPM", "parentRef": "acme"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = create(&s, generic("trash-can", "newacct")).await;
    assert_eq!(st, 201, "{v}");
    for space in ["acme", "newacct"] {
        let (_, v) =
            call(s.get(&format!("/har/api/v1/spaces/{space}/+/registries?size=100"))).await;
        for r in v["data"]["registries"].as_array().unwrap() {
            assert!(
                !["CACHE", "TRASH"].contains(&r["kind"].as_str().unwrap()),
                "{r}"
            );
        }
    }
    // Deleted versions on their registry.
    s.generic_registry("acme", "files").await;
    for v in ["1.0", "2.0"] {
        let put = s
            .client
            .put(s.url(&format!("/pkg/acme/files/generic/tool/{v}/a.txt")))
            .header("x-api-key", &s.token)
            .body(format!("v{v}"))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201);
    }
    let versions = |q: &'static str| {
        let s = &s;
        async move {
            let (st, v) = call(s.get(&format!(
                "/har/api/v1/registry/acme/files/+/artifact/tool/versions{q}"
            )))
            .await;
            assert_eq!(st, 200, "{q}: {v}");
            v["data"]["artifactVersions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    (
                        x["name"].as_str().unwrap().to_string(),
                        x["deletedAt"].is_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let (st, _) =
        call(s.delete("/har/api/v1/registry/acme/files/+/artifact/tool/+/version/1.0")).await;
    assert_eq!(st, 200);
    assert_eq!(versions("").await, vec![("2.0".to_string(), false)]);
    assert_eq!(
        versions("?deleted=exclude").await,
        vec![("2.0".to_string(), false)]
    );
    assert_eq!(
        versions("?deleted=only").await,
        vec![("1.0".to_string(), true)]
    );
    assert_eq!(
        versions("?deleted=include").await,
        vec![("2.0".to_string(), false), ("1.0".to_string(), true)]
    );
    let (st, v) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifact/tool/versions?deleted=maybe")).await;
    assert_eq!(
        (st, v["details"]["field"].as_str()),
        (400, Some("deleted")),
        "{v}"
    );
    // Restore: live again, with its file.
    let restore = "/har/api/v1/registry/acme/files/+/artifact/tool/+/version/1.0/restore";
    let (st, v) = call(s.post(restore, json!({}))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["name"], "1.0");
    assert_eq!(v["data"]["deletedAt"], Value::Null);
    let got = s
        .get("/pkg/acme/files/generic/tool/1.0/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), "v1.0");
    assert_eq!(versions("?deleted=only").await, vec![]);
    let (st, _) = call(s.post(restore, json!({}))).await;
    assert_eq!(st, 404, "nothing deleted to restore");
    // A version uploaded again since it was deleted is not overwritten by a restore.
    let (st, _) =
        call(s.delete("/har/api/v1/registry/acme/files/+/artifact/tool/+/version/1.0")).await;
    assert_eq!(st, 200);
    let put = s
        .client
        .put(s.url("/pkg/acme/files/generic/tool/1.0/a.txt"))
        .header("x-api-key", &s.token)
        .body("again")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let (st, v) = call(s.post(restore, json!({}))).await;
    assert_eq!(st, 409, "{v}");
    // Deleted versions belong to the registry (by id), not to its name.
    let (st, _) = call(s.delete("/har/api/v1/registry/acme/files/+")).await;
    assert_eq!(st, 200);
    s.generic_registry("acme", "files").await;
    let (st, v) =
        call(s.get("/har/api/v1/registry/acme/files/+/artifact/tool/versions?deleted=only")).await;
    assert_eq!(st, 404, "{v}");
}

both_backends!(
    harness_no_server_made_registries,
    harness_refused_create_leaves_no_scope,
    harness_seed_examples_verbatim,
    harness_refs_as_clients_send_them,
    harness_mixed_case_scope_ids,
    harness_oci_account_lower_cased
);

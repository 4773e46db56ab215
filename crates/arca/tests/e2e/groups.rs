//! Groups (GitFlic VIRTUAL repositories) over LOCAL and PROXY members, with the real clients:
//! the merge rules per format, the dependency-confusion guard with its allow-list,
//! `allowRemoteProxying`, `X-Arca-Served-By`, and no stale merge after a publish to a member.
//! Upstreams are a second `arca` process. Everything lives in the instance scope (`default`), so
//! that both dialects see the same registries.

use serde_json::{Value, json};

use crate::both_backends;
use crate::cargo::{CargoClient, krate};
use crate::common::{Backend, Server, call, run};
use crate::maven::{Mvn, project, write};
use crate::npm::{Npm, package};
use crate::pypi::{client_env, make_dists, py, twine};

/// A GitFlic call with the admin token.
pub(crate) async fn gf(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
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
pub(crate) async fn uuid(s: &Server, id: &str) -> String {
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
        Some(
            json!({"type": "VIRTUAL", "repositoryName": name, "packageType": package_type,
                    "virtualSettings": settings}),
        ),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    v["repositoryUuid"].as_str().unwrap().to_string()
}

/// Changes a VIRTUAL's settings.
pub(crate) async fn set_virtual(s: &Server, id: &str, settings: Value) {
    let (st, v) = gf(
        s,
        reqwest::Method::PUT,
        &format!("/registry/instance/x/repositories/{id}"),
        Some(json!({"type": "VIRTUAL", "virtualSettings": settings})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
}

pub(crate) async fn get(s: &Server, path: &str) -> reqwest::Response {
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
        &package(
            &w.join("px"),
            json!({"name": "private-x", "version": "1.0.0"}),
        ),
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

/// pip through a group of two LOCALs and a PROXY: files unioned by filename across the members;
/// a project a LOCAL owns hides the upstream's files of it on the page and at the download URL;
/// an upload through the group lands in the deployment member.
async fn pip_through_a_group_with_a_proxy_member(b: Backend) {
    let up = Server::start(b).await;
    up.harness_registry(
        "acme",
        json!({"identifier": "pyup", "packageType": "PYTHON", "parentRef": "acme"}),
    )
    .await;
    let files = make_dists(
        &up.dir.path().join("dist"),
        json!([
            {"kind": "wheel", "name": "alpha-lib", "version": "1.1"},
            {"kind": "wheel", "name": "beta", "version": "2.0", "deps": ["alpha-lib>=1.1"]},
            {"kind": "wheel", "name": "private-y", "version": "9.9"},
        ]),
    );
    let r = twine(&up, &up.url("/pkg/acme/pyup/python/"), &up.token, &files);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    let mirror = up.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    let a = hosted(&s, "py-a", "PYTHON").await;
    let bb = hosted(&s, "py-b", "PYTHON").await;
    let p = upstream(
        &s,
        "py-up",
        "PYTHON",
        &up.url("/pkg/acme/pyup/python/simple/"),
        &mirror,
    )
    .await;
    group(&s, "py-all", "pypi", &[&a, &bb, &p], Some(&a), json!({})).await;
    let w = s.dir.path();
    let mine = make_dists(
        &w.join("dist-a"),
        json!([{"kind": "wheel", "name": "private-y", "version": "1.0"}]),
    );
    // Uploaded through the group: it lands in py-a.
    let r = twine(&s, &s.url("/pkg/default/py-all/python/"), &s.token, &mine);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    let gamma = make_dists(
        &w.join("dist-b"),
        json!([{"kind": "wheel", "name": "gamma", "version": "1.0"}]),
    );
    let r = twine(&s, &s.url("/pkg/default/py-b/python/"), &s.token, &gamma);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    let r = get(&s, "/pkg/default/py-a/python/simple/private-y/").await;
    assert_eq!(
        r.status(),
        200,
        "the upload landed in the deployment member"
    );

    let host = s.base.trim_start_matches("http://");
    let index = format!(
        "http://u:{}@{host}/pkg/default/py-all/python/simple/",
        s.token
    );
    let site = w.join("site");
    let r = run(
        py("pip"),
        &[
            "install",
            "--index-url",
            &index,
            "--target",
            site.to_str().unwrap(),
            "beta",
            "gamma",
            "private-y",
        ],
        w,
        &client_env(w),
    );
    assert!(
        r.ok,
        "pip install through the group failed:\n{}\n{}",
        r.stdout, r.stderr
    );
    for m in ["alpha_lib.py", "beta.py", "gamma.py"] {
        assert!(site.join(m).exists(), "{m}: {}", r.stdout);
    }
    let private = std::fs::read_to_string(site.join("private_y.py")).unwrap();
    assert!(private.contains("private-y 1.0"), "{private}");

    // The page lists the LOCAL's file only; the upstream's 9.9 is not served either.
    let r = s
        .client
        .get(s.url("/pkg/default/py-all/python/simple/private-y/"))
        .header("x-api-key", &s.token)
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-arca-served-by"], "py-a");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["versions"], json!(["1.0"]), "{v}");
    let r = get(
        &s,
        "/pkg/default/py-all/python/files/private-y/9.9/private_y-9.9-py3-none-any.whl",
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = get(
        &s,
        "/pkg/default/py-all/python/files/alpha-lib/1.1/alpha_lib-1.1-py3-none-any.whl",
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-arca-served-by"], "py-up");
}

/// cargo through a group of two LOCALs and a PROXY: a crate published through the group (into
/// its deployment member) depends on a crate only the upstream has; `cargo run` resolves both
/// through the group's merged index.
async fn cargo_through_a_group_with_a_proxy_member(b: Backend) {
    let up = Server::start(b).await;
    up.harness_registry(
        "acme",
        json!({"identifier": "cup", "packageType": "CARGO", "parentRef": "acme"}),
    )
    .await;
    let publish = [
        "publish",
        "--registry",
        "arca",
        "--allow-dirty",
        "--no-verify",
    ];
    let leaf = krate(
        &up.dir.path().join("leaf"),
        "leaf_util",
        "0.1.0",
        "",
        "pub fn answer() -> u32 { 42 }\n",
    );
    CargoClient::new(&up, "cup", &up.token, "pub").ok(&leaf, &publish);
    let mirror = up.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    let a = hosted(&s, "c-a", "CARGO").await;
    let bb = hosted(&s, "c-b", "CARGO").await;
    let p = upstream(
        &s,
        "c-up",
        "CARGO",
        &format!("sparse+{}", up.url("/pkg/acme/cup/cargo/index/")),
        &mirror,
    )
    .await;
    group(&s, "c-all", "cargo", &[&a, &bb, &p], Some(&a), json!({})).await;
    let w = s.dir.path();
    let through = CargoClient::at(&s, "default", "c-all", &s.token, "grp");
    let mid = krate(
        &w.join("mid"),
        "mid-core",
        "0.2.0",
        "leaf_util = { version = \"0.1\", registry = \"arca\" }\n",
        "pub fn doubled() -> u32 { leaf_util::answer() * 2 }\n",
    );
    through.ok(&mid, &publish);
    let r = get(&s, "/pkg/default/c-a/cargo/index/mi/d-/mid-core").await;
    assert_eq!(r.status(), 200, "published into the deployment member");
    let app = krate(
        &w.join("app"),
        "app-bin",
        "1.0.0",
        "mid-core = { version = \"0.2\", registry = \"arca\" }\n",
        "fn main() { println!(\"doubled={}\", mid_core::doubled()); }\n",
    );
    let out =
        CargoClient::at(&s, "default", "c-all", &s.token, "app").ok(&app, &["run", "--quiet"]);
    assert!(out.contains("doubled=84"), "{out}");
    let r = get(
        &s,
        "/pkg/default/c-all/cargo/api/v1/crates/leaf_util/0.1.0/download",
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-arca-served-by"], "c-up");
}

/// mvn through a group of two LOCALs and a PROXY: `maven-metadata.xml` is the union of the
/// members' versions with `latest`/`release` by Maven's order and a `.sha1` of the merged bytes;
/// the groupId a LOCAL owns hides the upstream's versions (metadata and files, the cached ones
/// too) unless the allow-list names the groupId.
async fn mvn_through_a_group_with_a_proxy_member(b: Backend) {
    use sha1::Digest;
    let up = Server::start(b).await;
    up.harness_registry(
        "acme",
        json!({"identifier": "mup", "packageType": "MAVEN", "parentRef": "acme"}),
    )
    .await;
    let proj = up.dir.path().join("proj");
    project(&proj, &up.url("/pkg/acme/mup/maven/"));
    Mvn::new(&up, "dev", "admin", &up.token).ok(&proj, &["deploy"]);
    let mirror = up.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    let a = hosted(&s, "m-a", "MAVEN").await;
    let bb = hosted(&s, "m-b", "MAVEN").await;
    let p = upstream(&s, "m-up", "MAVEN", &up.url("/pkg/acme/mup/maven"), &mirror).await;
    let g = group(
        &s,
        "m-all",
        "maven",
        &[&a, &bb, &p],
        Some(&a),
        json!({"dependencyConfusionAllowList": ["com.acme"]}),
    )
    .await;
    // m-b holds an older com.acme:util (a bare POM).
    let pom = "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>\
               <groupId>com.acme</groupId><artifactId>util</artifactId><version>0.9</version></project>";
    let r = s
        .client
        .put(s.url("/pkg/default/m-b/maven/com/acme/util/0.9/util-0.9.pom"))
        .header("x-api-key", &s.token)
        .body(pom)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    let meta_url = "/pkg/default/m-all/maven/com/acme/util/maven-metadata.xml";
    let meta = get(&s, meta_url).await.text().await.unwrap();
    for want in [
        "<version>0.9</version>",
        "<version>1.0.0</version>",
        "<latest>1.0.0</latest>",
        "<release>1.0.0</release>",
    ] {
        assert!(meta.contains(want), "{want}: {meta}");
    }
    let sha1 = get(&s, &format!("{meta_url}.sha1"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        sha1.trim(),
        hex::encode(sha1::Sha1::digest(meta.as_bytes()))
    );

    let url = s.url("/pkg/default/m-all/maven/");
    let app = s.dir.path().join("app");
    write(
        &app.join("pom.xml"),
        &format!(
            "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>\
             <groupId>com.example</groupId><artifactId>app</artifactId><version>0.1</version>\
             <properties><maven.compiler.source>11</maven.compiler.source><maven.compiler.target>11</maven.compiler.target></properties>\
             <repositories><repository><id>arca</id><url>{url}</url></repository></repositories>\
             <dependencies><dependency><groupId>com.acme</groupId><artifactId>util</artifactId><version>[0.5,2.0)</version></dependency></dependencies></project>"
        ),
    );
    write(
        &app.join("src/main/java/App.java"),
        "public class App { public static void main(String[] a) { System.out.println(com.acme.util.Util.twice()); } }",
    );
    Mvn::new(&s, "one", "admin", &s.token).ok(&app, &["package"]);
    assert!(
        s.dir
            .path()
            .join("mvn-one/m2/com/acme/util/1.0.0/util-1.0.0.jar")
            .exists(),
        "the highest version, from the upstream"
    );

    // Without the allow-list the LOCAL owns com.acme:util: the upstream's versions are hidden,
    // in the metadata and at the file URL, although the proxy has the jar cached.
    set_virtual(&s, &g, json!({"dependencyConfusionAllowList": []})).await;
    let meta = get(&s, meta_url).await.text().await.unwrap();
    assert!(meta.contains("<version>0.9</version>"), "{meta}");
    assert!(!meta.contains("1.0.0"), "{meta}");
    let r = get(
        &s,
        "/pkg/default/m-all/maven/com/acme/util/1.0.0/util-1.0.0.jar",
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = get(
        &s,
        "/pkg/default/m-all/maven/com/acme/core/1.0.0/core-1.0.0.jar",
    )
    .await;
    assert_eq!(
        r.status(),
        200,
        "a name no LOCAL owns still comes from the proxy"
    );
    assert_eq!(r.headers()["x-arca-served-by"], "m-up");
}

/// Generic listings through a group are merged (a package once, versions from every member,
/// a version's files unioned by path), and so are the management lists of the group: Harness's
/// registry and space artifact lists and GitFlic's package list show each name once with the
/// member serving it. An RPM group mixing LOCAL and PROXY members is refused.
async fn listings_and_artifact_lists_of_a_group(b: Backend) {
    let s = Server::start(b).await;
    let a = hosted(&s, "g-a", "GENERIC").await;
    let bb = hosted(&s, "g-b", "GENERIC").await;
    let put = |reg: &'static str, path: &'static str| {
        let s = &s;
        async move {
            let r = s
                .client
                .put(s.url(&format!("/pkg/default/{reg}/generic/{path}")))
                .header("x-api-key", &s.token)
                .body(format!("{reg}:{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{reg} {path}");
        }
    };
    put("g-a", "tool/1.0/x").await;
    put("g-b", "tool/1.0/x").await;
    put("g-b", "tool/1.0/z").await;
    put("g-b", "tool/2.0/y").await;
    put("g-b", "other/1.0/f").await;
    group(&s, "g-all", "generic", &[&a, &bb], None, json!({})).await;

    let (st, v) = call(s.get("/pkg/default/g-all/generic/")).await;
    assert_eq!(st, 200, "{v}");
    let mut packages = v["packages"].as_array().unwrap().clone();
    packages.sort_by_key(|p| p["name"].as_str().unwrap().to_string());
    // A package once; its latest version the newest upload among the members' (g-a's is 1.0).
    assert_eq!(
        packages,
        [
            json!({"name": "other", "latestVersion": "1.0"}),
            json!({"name": "tool", "latestVersion": "2.0"})
        ],
        "{v}"
    );
    let (_, v) = call(s.get("/pkg/default/g-all/generic/tool")).await;
    let versions: Vec<&str> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions.len(), 2, "{v}");
    assert!(
        versions.contains(&"1.0") && versions.contains(&"2.0"),
        "{v}"
    );
    let (_, v) = call(s.get("/pkg/default/g-all/generic/tool/1.0")).await;
    let mut paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, ["x", "z"], "{v}");
    // The first member wins a path.
    let r = get(&s, "/pkg/default/g-all/generic/tool/1.0/x").await;
    assert_eq!(r.headers()["x-arca-served-by"], "g-a");
    assert_eq!(r.text().await.unwrap(), "g-a:tool/1.0/x");
    let r = get(&s, "/pkg/default/g-all/generic/tool/1.0/z").await;
    assert_eq!(r.headers()["x-arca-served-by"], "g-b");

    let served = |rows: &Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = rows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["registryIdentifier"] == "g-all" || r["repositoryTitle"] == "g-all")
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["servedBy"].as_str().unwrap_or("?").to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let want = vec![
        ("other".to_string(), "g-b".to_string()),
        ("tool".to_string(), "g-a".to_string()),
    ];
    let (st, v) = call(s.get("/har/api/v1/registry/default/g-all/+/artifacts")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["itemCount"], 2, "{v}");
    assert_eq!(served(&v["data"]["artifacts"]), want, "{v}");
    let (st, v) = call(s.get("/har/api/v1/spaces/default/+/artifacts?reg_identifier=g-all")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(served(&v["data"]["artifacts"]), want, "{v}");
    // Unfiltered, the members' own rows are there too (5 files in 3 rows, plus the group's 2).
    let (_, v) = call(s.get("/har/api/v1/spaces/default/+/artifacts?size=50")).await;
    assert_eq!(v["data"]["itemCount"], 5, "{v}");
    let (st, v) = gf(&s, reqwest::Method::GET, "/registry/package?size=50", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        served(&v["_embedded"]["simplePackageInfoModelList"]),
        want,
        "{v}"
    );

    // Writes: without a deployment member a group refuses uploads (405); the deployment member
    // must be a LOCAL (a proxy or its cache is refused with 400).
    let r = s
        .client
        .put(s.url("/pkg/default/g-all/generic/new/1/f"))
        .header("x-api-key", &s.token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.text().await.unwrap().contains("no deployment registry"));

    // RPM: one repomd.xml per root, so LOCAL and PROXY members do not mix.
    let ra = hosted(&s, "r-a", "RPM").await;
    s.harness_registry(
        "default",
        json!({"identifier": "r-up", "packageType": "RPM", "parentRef": "default",
               "config": {"type": "UPSTREAM", "source": "Custom", "url": "http://127.0.0.1:9/"}}),
    )
    .await;
    let rp = uuid(&s, "r-up").await;
    let (st, v) = gf(
        &s,
        reqwest::Method::POST,
        "/registry/instance/x/repositories",
        Some(
            json!({"type": "VIRTUAL", "repositoryName": "r-all", "packageType": "rpm",
                    "virtualSettings": {"includedRepositoryUuids": [&ra, &rp]}}),
        ),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(v.to_string().contains("cannot mix"), "{v}");
    let (st, v) = gf(
        &s,
        reqwest::Method::POST,
        "/registry/instance/x/repositories",
        Some(
            json!({"type": "VIRTUAL", "repositoryName": "r-all", "packageType": "rpm",
                    "virtualSettings": {"includedRepositoryUuids": [&ra]}}),
        ),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = gf(
        &s,
        reqwest::Method::POST,
        "/registry/instance/x/repositories",
        Some(json!({"type": "VIRTUAL", "repositoryName": "r-dep", "packageType": "rpm",
                    "virtualSettings": {"includedRepositoryUuids": [&rp], "deploymentRepositoryUuid": &rp}})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["details"]["field"], "deploymentRepositoryUuid", "{v}");
}

/// Helm's SDK through a group of two LOCALs: `index.yaml` lists a chart's versions from both
/// members (before, the first member's entry stood for the chart), and a version only the second
/// member has is pulled through the group.
async fn helm_index_through_a_group_merges_versions(b: Backend) {
    let s = Server::start(b).await;
    let a = hosted(&s, "h-a", "HELM").await;
    let bb = hosted(&s, "h-b", "HELM").await;
    group(&s, "h-all", "helm", &[&a, &bb], None, json!({})).await;
    let w = s.dir.path().join("helm");
    std::fs::create_dir_all(w.join("out")).unwrap();
    let python = |script: &str| {
        let r = run(
            crate::common::tools().join("py/bin/python"),
            &["-c", script],
            &w,
            &[],
        );
        assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
        r.stdout
    };
    python(
        "import helm_python as helm\n\
         helm.Chart.create('hellochart', '.')\n\
         helm.package('hellochart', destination='pkgs')\n\
         helm.package('hellochart', destination='pkgs', version='0.2.0')\n",
    );
    for (reg, file) in [
        ("h-a", "hellochart-0.1.0.tgz"),
        ("h-b", "hellochart-0.2.0.tgz"),
    ] {
        let r = s
            .client
            .put(s.url(&format!("/pkg/default/{reg}/helm/{file}")))
            .basic_auth("u", Some(&s.token))
            .body(std::fs::read(w.join("pkgs").join(file)).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{reg} {file}");
    }
    let url = s.url("/pkg/default/h-all/helm");
    let token = &s.token;
    let out = python(&format!(
        "import helm_python as helm, json\n\
         idx = helm.repo_index('{url}', username='u', password='{token}')\n\
         print(json.dumps([e['version'] for e in idx['entries']['hellochart']]))\n\
         helm.pull('hellochart', repo_url='{url}', version='0.2.0', destination='out', username='u', password='{token}')\n"
    ));
    let versions: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(versions, json!(["0.2.0", "0.1.0"]), "{out}");
    assert_eq!(
        std::fs::read(w.join("out/hellochart-0.2.0.tgz")).unwrap(),
        std::fs::read(w.join("pkgs/hellochart-0.2.0.tgz")).unwrap()
    );
}

both_backends!(
    helm_index_through_a_group_merges_versions,
    listings_and_artifact_lists_of_a_group,
    npm_through_a_group_merges_and_guards,
    pip_through_a_group_with_a_proxy_member,
    cargo_through_a_group_with_a_proxy_member,
    mvn_through_a_group_with_a_proxy_member
);

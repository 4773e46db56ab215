//! Pull-through proxies with real clients: the upstream is a second `arca` process (a private
//! hosted registry, so the proxy's own credentials are exercised), never the internet.

use serde_json::json;

use crate::both_backends;
use crate::cargo::{CargoClient, krate};
use crate::common::{Backend, Server, call, run};
use crate::maven::{Mvn, project, write};
use crate::npm::{Npm, package};
use crate::pypi::{client_env, make_dists, py, twine};
use crate::stub::{Reply, Stub};

/// A GitFlic PROXY in company `acme` (scope `default/acme`) reading from `url` as `user`.
pub(crate) async fn gitflic_proxy(
    s: &Server,
    name: &str,
    package_type: &str,
    url: &str,
    user: &str,
    token: &str,
    interval: i64,
) {
    let (st, v) = call(
        s.client
            .post(s.url("/registry/company/acme/repositories"))
            .header("authorization", format!("token {}", s.token))
            .json(&json!({
                "type": "PROXY", "repositoryName": name, "packageType": package_type,
                "proxySettings": {"url": url, "username": user, "token": token, "isCaching": true,
                                  "metadataRetrievalIntervalSeconds": interval}})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
}

/// A Harness UPSTREAM in account `acme` reading from `url` as the upstream's user `mirror`.
pub(crate) async fn harness_upstream(
    s: &Server,
    id: &str,
    package_type: &str,
    url: &str,
    password: &str,
) {
    s.harness_registry(
        "acme",
        json!({"identifier": id, "packageType": package_type, "parentRef": "acme",
               "config": {"type": "UPSTREAM", "source": "Custom", "url": url,
                          "authType": "UserPassword", "auth": {"userName": "mirror", "password": password}}}),
    )
    .await;
}

/// pip and uv install a dependency tree through a PyPI proxy whose upstream needs credentials;
/// every file is verified and kept, so with the upstream gone the same installs work from the
/// cache, the pages served stale (the interval is 0: every page request revalidates).
async fn pip_and_uv_install_through_a_pypi_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "up", "packageType": "PYTHON", "parentRef": "acme"}),
        )
        .await;
    let dist = upstream.dir.path().join("dist");
    let files = make_dists(
        &dist,
        json!([
            {"kind": "wheel", "name": "alpha-lib", "version": "1.1"},
            {"kind": "sdist", "name": "alpha-lib", "version": "1.1"},
            {"kind": "wheel", "name": "beta", "version": "2.0", "deps": ["alpha-lib>=1.1"], "requires_python": ">=3.8"},
        ]),
    );
    let r = twine(
        &upstream,
        &upstream.url("/pkg/acme/up/python/"),
        &upstream.token,
        &files,
    );
    assert!(r.ok, "twine upload failed:\n{}\n{}", r.stdout, r.stderr);
    let mirror = upstream.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    // Given with its `/simple` suffix: the same repository as without.
    gitflic_proxy(
        &s,
        "pyproxy",
        "pypi",
        &upstream.url("/pkg/acme/up/python/simple/"),
        "mirror",
        &mirror,
        0,
    )
    .await;
    let reader = s.user_with_role("ro", "reader", "default/acme");
    let host = s.base.trim_start_matches("http://");
    let index = format!("http://u:{reader}@{host}/pkg/default/pyproxy/python/simple/");
    let work = s.dir.path();
    let install = |tool: &str, target: &std::path::Path| {
        let target = target.to_str().unwrap().to_string();
        let args: Vec<&str> = match tool {
            "pip" => vec![
                "install",
                "--index-url",
                &index,
                "--target",
                &target,
                "beta",
            ],
            _ => vec![
                "pip",
                "install",
                "--index-url",
                &index,
                "--target",
                &target,
                "beta",
            ],
        };
        run(py(tool), &args, work, &client_env(work))
    };
    let site = work.join("site-pip");
    let r = install("pip", &site);
    assert!(
        r.ok,
        "pip install through the proxy failed:\n{}\n{}",
        r.stdout, r.stderr
    );
    assert!(
        site.join("beta.py").exists() && site.join("alpha_lib.py").exists(),
        "{}",
        r.stdout
    );

    // The page keeps what the upstream said and points at Arca only.
    let page = s
        .client
        .get(s.url("/pkg/default/pyproxy/python/simple/beta/"))
        .basic_auth("u", Some(&reader))
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let v: serde_json::Value = page.json().await.unwrap();
    let file = &v["files"][0];
    assert_eq!(file["requires-python"], ">=3.8", "{v}");
    assert_eq!(
        file["url"], "../../files/beta/2.0/beta-2.0-py3-none-any.whl",
        "{v}"
    );
    assert!(
        !v.to_string().contains(&upstream.base),
        "no upstream address is served: {v}"
    );

    // The upstream goes away: the installs keep working, from the cache.
    upstream.stop();
    let r = install("pip", &work.join("site-pip-offline"));
    assert!(
        r.ok,
        "pip install from the cache failed:\n{}\n{}",
        r.stdout, r.stderr
    );
    let r = install("uv", &work.join("site-uv-offline"));
    assert!(
        r.ok,
        "uv pip install from the cache failed:\n{}\n{}",
        r.stdout, r.stderr
    );
    assert!(
        work.join("site-uv-offline").join("alpha_lib.py").exists(),
        "{}",
        r.stderr
    );
    let page = s
        .client
        .get(s.url("/pkg/default/pyproxy/python/simple/alpha-lib/"))
        .basic_auth("u", Some(&reader))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-arca-cache"], "STALE");
    // A project never fetched has nothing to fall back on: a gateway error, quickly.
    let r = s
        .client
        .get(s.url("/pkg/default/pyproxy/python/simple/never-seen/"))
        .basic_auth("u", Some(&reader))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
}

/// npm install and npm ci through an npm proxy whose upstream needs credentials: only
/// `dist.tarball` is rewritten (to Arca, in the public registry's path shape, so lockfiles point
/// at Arca), tarballs are verified against `dist.integrity`; with the upstream gone, `npm ci`
/// installs again from a clean cache.
async fn npm_install_and_ci_through_an_npm_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "up", "packageType": "NPM", "parentRef": "acme"}),
        )
        .await;
    let publisher = Npm::new(&upstream, "up", &upstream.token);
    let w = upstream.dir.path();
    publisher.ok(
        &package(
            &w.join("dep"),
            json!({"name": "leftish", "version": "1.0.0"}),
        ),
        &["publish"],
    );
    publisher.ok(
        &package(&w.join("scoped"), json!({"name": "@acme/util", "version": "2.1.0", "dependencies": {"leftish": "^1.0.0"}})),
        &["publish"],
    );
    let mirror = upstream.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    harness_upstream(
        &s,
        "npmproxy",
        "NPM",
        &upstream.url("/pkg/acme/up/npm/"),
        &mirror,
    )
    .await;
    let reader = s.user_with_role("ro", "reader", "acme");
    let npm = Npm::new(&s, "npmproxy", &reader);
    let app = s.dir.path().join("app");
    package(
        &app,
        json!({"name": "app", "version": "0.0.1", "private": true}),
    );
    npm.ok(&app, &["install", "@acme/util"]);
    assert!(app.join("node_modules/leftish/package.json").exists());
    assert!(app.join("node_modules/@acme/util/package.json").exists());
    let lock = std::fs::read_to_string(app.join("package-lock.json")).unwrap();
    assert!(
        lock.contains(&format!(
            "{}/pkg/acme/npmproxy/npm/leftish/-/leftish-1.0.0.tgz",
            s.base
        )),
        "{lock}"
    );
    assert!(
        !lock.contains(&upstream.base),
        "no upstream address in the lockfile: {lock}"
    );

    // The packument relays the upstream's integrity; the abbreviated form is derived here.
    let v: serde_json::Value = s
        .client
        .get(s.url("/pkg/acme/npmproxy/npm/@acme%2futil"))
        .header("x-api-key", &reader)
        .header("accept", "application/vnd.npm.install-v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["dist-tags"]["latest"], "2.1.0", "{v}");
    assert!(
        v["versions"]["2.1.0"]["dist"]["integrity"]
            .as_str()
            .unwrap()
            .starts_with("sha512-"),
        "{v}"
    );

    // What the proxy keeps is ordinary content, listed under the UPSTREAM itself (Harness has no
    // cache registries) with its size.
    let (st, v) = call(s.get("/har/api/v1/registry/acme/npmproxy/+/artifacts")).await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["data"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        names.contains(&"leftish") && names.contains(&"@acme/util"),
        "{v}"
    );

    // Upstream gone, caches cleared: npm ci installs from what Arca kept.
    upstream.stop();
    std::fs::remove_dir_all(app.join("node_modules")).unwrap();
    let fresh = Npm::new(&s, "npmproxy", &s.token);
    fresh.ok(&app, &["ci"]);
    assert!(app.join("node_modules/leftish/package.json").exists());
}

/// The engine's rules against an upstream that misbehaves on purpose (the stub counts every
/// request): one upstream request for 20 concurrent misses; nothing kept from a truncated body,
/// a digest mismatch or an error status (each answered 502); 404s remembered; metadata served
/// stale while the upstream fails; the proxy's own credentials upstream, never the client's;
/// offline, not one upstream request.
async fn the_engine_against_a_faulty_upstream(b: Backend) {
    use sha2::Digest;
    let stub = Stub::start().await;
    let s = Server::start(b).await;
    gitflic_proxy(
        &s,
        "gen",
        "generic",
        &format!("{}/files", stub.base),
        "mirror",
        "UPSTREAM-SECRET",
        0,
    )
    .await;
    gitflic_proxy(
        &s,
        "pyp",
        "pypi",
        &stub.base,
        "mirror",
        "UPSTREAM-SECRET",
        0,
    )
    .await;
    let get = |path: String| {
        let req = s.client.get(s.url(&path)).header("x-api-key", &s.token);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let cache = r
                .headers()
                .get("x-arca-cache")
                .map(|v| v.to_str().unwrap().to_string());
            // A transfer Arca aborts (a failed check after the first bytes) ends in an error.
            let (body, complete) = match r.bytes().await {
                Ok(b) => (b.to_vec(), true),
                Err(_) => (Vec::new(), false),
            };
            (status, body, cache, complete)
        }
    };

    // Single flight: 20 concurrent cold requests, one upstream request, the same bytes for all.
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    stub.set(
        "/files/tool/1.0/big.bin",
        Reply::Slow(big.clone(), std::time::Duration::from_millis(400)),
    );
    let all = futures::future::join_all(
        (0..20).map(|_| get("/pkg/default/gen/generic/tool/1.0/big.bin".into())),
    )
    .await;
    for (status, body, _, complete) in &all {
        assert_eq!(
            *status,
            200,
            "{} (upstream asked for {:?})",
            String::from_utf8_lossy(body),
            stub.paths()
        );
        assert!(
            *complete && *body == big,
            "every follower gets the whole file"
        );
    }
    assert_eq!(
        stub.hits("/files/tool/1.0/big.bin"),
        1,
        "one upstream request"
    );
    let (status, body, _, _) = get("/pkg/default/gen/generic/tool/1.0/big.bin".into()).await;
    assert_eq!((status, body == big), (200, true));
    assert_eq!(
        stub.hits("/files/tool/1.0/big.bin"),
        1,
        "served from the cache"
    );
    // The proxy's credentials went upstream, never the client's token.
    let auth = stub.authorization();
    assert!(
        !auth.is_empty() && auth.iter().all(|a| a.starts_with("Basic ")),
        "{auth:?}"
    );
    assert!(auth.iter().all(|a| !a.contains(&s.token)), "{auth:?}");

    // A 404 is remembered for a while: asked once.
    for _ in 0..3 {
        assert_eq!(
            get("/pkg/default/gen/generic/tool/1.0/nope.bin".into())
                .await
                .0,
            404
        );
    }
    assert_eq!(stub.hits("/files/tool/1.0/nope.bin"), 1);

    // A truncated body: the client's transfer is aborted (or refused with 502 when the verdict
    // came before the answer), nothing kept (the next request asks again). An error status: 502.
    stub.set(
        "/files/tool/1.0/cut.bin",
        Reply::Truncated(vec![1; 1000], 5000),
    );
    stub.set("/files/tool/1.0/err.bin", Reply::Status(500));
    stub.set(
        "/files/tool/1.0/ok.bin",
        Reply::Ok(b"fine".to_vec(), "text/plain"),
    );
    for round in 1..=2 {
        let (status, body, _, complete) =
            get("/pkg/default/gen/generic/tool/1.0/cut.bin".into()).await;
        assert!(
            status == 502 || (status == 200 && !complete),
            "{status} {complete} {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(
            stub.hits("/files/tool/1.0/cut.bin"),
            round,
            "the cut file was not kept"
        );
    }
    // A success between failures keeps the circuit closed...
    assert_eq!(
        get("/pkg/default/gen/generic/tool/1.0/ok.bin".into())
            .await
            .0,
        200
    );
    for round in 1..=3 {
        let (status, body, _, _) = get("/pkg/default/gen/generic/tool/1.0/err.bin".into()).await;
        assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
        assert!(
            String::from_utf8_lossy(&body).contains("500"),
            "names the upstream's status"
        );
        assert_eq!(
            stub.hits("/files/tool/1.0/err.bin"),
            round,
            "the error was not kept"
        );
    }
    // ...three failures in a row open it: the upstream is not asked for a while.
    assert_eq!(
        get("/pkg/default/gen/generic/tool/1.0/err.bin".into())
            .await
            .0,
        502
    );
    assert_eq!(stub.hits("/files/tool/1.0/err.bin"), 3, "circuit open");

    // A digest mismatch (PyPI publishes the SHA-256): 502, nothing kept.
    let good = b"the real sdist".to_vec();
    let sha = hex::encode(sha2::Sha256::digest(&good));
    let page = json!({"meta": {"api-version": "1.1"}, "name": "demo", "files": [
        {"filename": "demo-1.0.tar.gz", "url": "/dl/demo-1.0.tar.gz", "hashes": {"sha256": sha}}]});
    stub.set(
        "/simple/demo/",
        Reply::Ok(
            page.to_string().into_bytes(),
            "application/vnd.pypi.simple.v1+json",
        ),
    );
    stub.set(
        "/dl/demo-1.0.tar.gz",
        Reply::Ok(b"tampered bytes".to_vec(), "application/gzip"),
    );
    let file = "/pkg/default/pyp/python/files/demo/1.0/demo-1.0.tar.gz".to_string();
    let (status, _, _, complete) = get(file.clone()).await;
    assert!(
        status == 502 || (status == 200 && !complete),
        "a mismatching file is never delivered whole: {status} {complete}"
    );
    stub.set(
        "/dl/demo-1.0.tar.gz",
        Reply::Ok(good.clone(), "application/gzip"),
    );
    let (status, body, _, _) = get(file.clone()).await;
    assert_eq!(
        (status, body),
        (200, good.clone()),
        "the right bytes are kept once they come"
    );

    // Metadata: revalidated on every request (interval 0), a 304 keeps the copy; the upstream
    // failing leaves it in service, marked stale.
    let page_path = "/pkg/default/pyp/python/simple/demo/".to_string();
    let hits = stub.hits("/simple/demo/");
    let (status, _, cache, _) = get(page_path.clone()).await;
    assert_eq!((status, cache), (200, None));
    assert_eq!(stub.hits("/simple/demo/"), hits + 1, "revalidated");
    stub.set("/simple/demo/", Reply::Status(503));
    let (status, body, cache, _) = get(page_path.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(cache.as_deref(), Some("STALE"));
    assert!(String::from_utf8_lossy(&body).contains("demo-1.0.tar.gz"));

    // Offline: what is cached is served, the rest is not found, and the upstream hears nothing.
    let (st, v) = call(
        s.client
            .get(s.url("/registry/company/acme/repositories"))
            .header("authorization", format!("token {}", s.token)),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let gen_id = v["_embedded"]
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|l| l.as_array())
        .and_then(|l| l.iter().find(|r| r["title"] == "gen"))
        .and_then(|r| r["repositoryUuid"].as_str())
        .unwrap()
        .to_string();
    let (st, v) = call(
        s.client
            .put(s.url(&format!("/registry/company/acme/repositories/{gen_id}")))
            .header("authorization", format!("token {}", s.token))
            .json(&json!({"type": "PROXY", "proxySettings": {"isOffline": true}})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let before = stub.total();
    let (status, body, _, _) = get("/pkg/default/gen/generic/tool/1.0/big.bin".into()).await;
    assert_eq!((status, body == big), (200, true));
    assert_eq!(
        get("/pkg/default/gen/generic/tool/1.0/other.bin".into())
            .await
            .0,
        404
    );
    assert_eq!(stub.total(), before, "offline: no upstream request at all");
}

/// cargo builds a crate whose dependency tree lives behind a Cargo proxy (given with cargo's
/// `sparse+` prefix); index lines are relayed verbatim, crates verified against `cksum`; with
/// the upstream gone a fresh CARGO_HOME builds again from the cache.
async fn cargo_build_through_a_cargo_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "up", "packageType": "CARGO", "parentRef": "acme"}),
        )
        .await;
    let publisher = CargoClient::new(&upstream, "up", &upstream.token, "pub");
    let w = upstream.dir.path();
    let publish = [
        "publish",
        "--registry",
        "arca",
        "--allow-dirty",
        "--no-verify",
    ];
    let leaf = krate(
        &w.join("leaf"),
        "leaf_util",
        "0.1.0",
        "",
        "pub fn answer() -> u32 { 42 }\n",
    );
    publisher.ok(&leaf, &publish);
    let mid = krate(
        &w.join("mid"),
        "mid-core",
        "0.2.0",
        "leaf_util = { version = \"0.1\", registry = \"arca\" }\n",
        "pub fn doubled() -> u32 { leaf_util::answer() * 2 }\n",
    );
    publisher.ok(&mid, &publish);
    let mirror = upstream.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    harness_upstream(
        &s,
        "cproxy",
        "CARGO",
        &format!("sparse+{}", upstream.url("/pkg/acme/up/cargo/index/")),
        &mirror,
    )
    .await;
    let reader = s.user_with_role("ro", "reader", "acme");
    let app = krate(
        &s.dir.path().join("app"),
        "app-bin",
        "1.0.0",
        "mid-core = { version = \"0.2\", registry = \"arca\" }\n",
        "fn main() { println!(\"doubled={}\", mid_core::doubled()); }\n",
    );
    let cargo = CargoClient::new(&s, "cproxy", &reader, "one");
    let out = cargo.ok(&app, &["run", "--quiet"]);
    assert!(out.contains("doubled=84"), "{out}");

    upstream.stop();
    let _ = std::fs::remove_file(app.join("Cargo.lock"));
    let fresh = CargoClient::new(&s, "cproxy", &reader, "two");
    let out = fresh.ok(&app, &["run", "--quiet"]);
    assert!(out.contains("doubled=84"), "{out}");
}

/// mvn resolves a dependency tree through a Maven proxy whose upstream needs credentials
/// (files checked against the upstream's `.sha1`, metadata merged); with the upstream gone, a
/// fresh local repository resolves again from the cache.
async fn mvn_resolves_through_a_maven_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "up", "packageType": "MAVEN", "parentRef": "acme"}),
        )
        .await;
    let deployer = Mvn::new(&upstream, "dev", "admin", &upstream.token);
    let proj = upstream.dir.path().join("proj");
    project(&proj, &upstream.url("/pkg/acme/up/maven/"));
    deployer.ok(&proj, &["deploy"]);
    let mirror = upstream.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    harness_upstream(
        &s,
        "mproxy",
        "MAVEN",
        &upstream.url("/pkg/acme/up/maven"),
        &mirror,
    )
    .await;
    let reader = s.user_with_role("ro", "reader", "acme");
    let url = s.url("/pkg/acme/mproxy/maven/");
    let app = s.dir.path().join("app");
    write(
        &app.join("pom.xml"),
        &format!(
            "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>\
             <groupId>com.example</groupId><artifactId>app</artifactId><version>0.1</version>\
             <properties><maven.compiler.source>11</maven.compiler.source><maven.compiler.target>11</maven.compiler.target></properties>\
             <repositories><repository><id>arca</id><url>{url}</url></repository></repositories>\
             <dependencies><dependency><groupId>com.acme</groupId><artifactId>util</artifactId><version>[1.0,2.0)</version></dependency></dependencies></project>"
        ),
    );
    write(
        &app.join("src/main/java/App.java"),
        "public class App { public static void main(String[] a) { System.out.println(com.acme.util.Util.twice()); } }",
    );
    Mvn::new(&s, "one", "ro", &reader).ok(&app, &["package"]);
    assert!(
        s.dir
            .path()
            .join("mvn-one/m2/com/acme/core/1.0.0/core-1.0.0.jar")
            .exists(),
        "transitive dependency"
    );
    let meta = s
        .client
        .get(format!("{url}com/acme/util/maven-metadata.xml"))
        .basic_auth("ro", Some(&reader))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(meta.contains("<version>1.0.0</version>"), "{meta}");

    upstream.stop();
    std::fs::remove_dir_all(app.join("target")).unwrap();
    Mvn::new(&s, "two", "ro", &reader).ok(&app, &["package"]);
    assert!(app.join("target/app-0.1.jar").exists());
}

/// A Harness UPSTREAM of a well-known source takes its URL from the configuration when it gives
/// none (and says which setting is missing otherwise); the proxy settings Harness has no field
/// for round-trip as extensions on `config`.
async fn upstream_sources_and_config_extensions(b: Backend) {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let database_url = match b {
        Backend::Sqlite => format!("sqlite://{}/arca.db", dir.path().display()),
        Backend::Postgres => crate::common::postgres_database().await,
    };
    let pypi_default = format!("{}/pypi", stub.base);
    let s = Server::start_with(dir, database_url, &[("ARCA_UPSTREAM_PYPI", &pypi_default)]).await;
    let create = |id: &str, config: serde_json::Value| {
        s.post("/har/api/v1/registry?space_ref=acme/+", json!({"identifier": id, "packageType": "PYTHON",
                                                             "parentRef": "acme", "config": config}))
    };
    let (st, v) = call(create("py", json!({"type": "UPSTREAM", "source": "PyPi"}))).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["data"]["config"]["url"], pypi_default, "{v}");
    let (st, v) = call(create("np", json!({"type": "UPSTREAM", "source": "NpmJs"}))).await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("ARCA_UPSTREAM_NPMJS"),
        "{v}"
    );
    let (st, v) = call(create(
        "cu",
        json!({"type": "UPSTREAM", "source": "Custom"}),
    ))
    .await;
    assert_eq!(st, 400, "{v}");
    // Extensions round-trip, and a PUT without a url keeps the stored one.
    let (st, v) = call(create(
        "ext",
        json!({"type": "UPSTREAM", "source": "Custom", "url": stub.base,
        "metadataCacheTTL": 60, "isOffline": true, "expireHours": 24, "isCaching": true}),
    ))
    .await;
    assert_eq!(st, 201, "{v}");
    let c = &v["data"]["config"];
    assert_eq!(
        (
            c["metadataCacheTTL"].as_i64(),
            c["isOffline"].as_bool(),
            c["expireHours"].as_i64()
        ),
        (Some(60), Some(true), Some(24)),
        "{v}"
    );
    let (st, v) = call(s.put(
        "/har/api/v1/registry/acme/ext/+",
        json!({"config": {"type": "UPSTREAM", "isOffline": false, "metadataCacheTTL": 0}}),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
    let c = &v["data"]["config"];
    assert_eq!(
        (
            c["url"].as_str(),
            c["isOffline"].as_bool(),
            c["metadataCacheTTL"].as_i64(),
            c["expireHours"].as_i64()
        ),
        (Some(stub.base.as_str()), Some(false), Some(0), Some(24)),
        "{v}"
    );
    let (st, v) = call(s.put(
        "/har/api/v1/registry/acme/ext/+",
        json!({"config": {"type": "UPSTREAM", "metadataCacheTTL": -1}}),
    ))
    .await;
    assert_eq!(st, 400, "{v}");
}

/// Harness secret references resolve against Arca's secret store: an admin sets the upstream's
/// token once (HTTP or `arca secret`), proxies name it, and no route ever shows the value.
async fn upstream_credentials_from_the_secret_store(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream.generic_registry("acme", "files").await;
    for name in ["a.txt", "b.txt"] {
        let r = upstream
            .client
            .put(upstream.url(&format!("/pkg/acme/files/generic/tool/1.0/{name}")))
            .header("x-api-key", &upstream.token)
            .body(format!("content of {name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let mirror = upstream.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    let reader = s.user_with_role("ro", "reader", "acme");
    let secret = |token: Option<&str>, body: serde_json::Value| {
        let mut r = s.client.post(s.url("/arca/v1/secrets")).json(&body);
        if let Some(t) = token {
            r = r.header("x-api-key", t);
        }
        r
    };
    let body = json!({"space": "acme", "identifier": "up-pat", "value": mirror});
    assert_eq!(call(secret(None, body.clone())).await.0, 401);
    assert_eq!(call(secret(Some(&reader), body.clone())).await.0, 403);
    let (st, v) = call(secret(Some(&s.token), body)).await;
    assert_eq!(st, 201, "{v}");
    assert!(!v.to_string().contains(&mirror), "{v}");
    s.cli(&["secret", "set", "acme", "spare", "--value", "SPARE-VALUE"]);
    let listed = s.cli(&["secret", "list", "acme"]);
    assert!(
        listed.contains("up-pat") && listed.contains("spare") && !listed.contains("SPARE-VALUE"),
        "{listed}"
    );
    let (st, v) = call(s.get("/arca/v1/secrets?space=acme")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["secrets"].as_array().unwrap().len(), 2, "{v}");
    assert!(
        !v.to_string().contains(&mirror) && !v.to_string().contains("SPARE-VALUE"),
        "{v}"
    );

    s.harness_registry(
        "acme",
        json!({"identifier": "gproxy", "packageType": "GENERIC", "parentRef": "acme",
               "config": {"type": "UPSTREAM", "source": "Custom", "url": upstream.url("/pkg/acme/files/generic"),
                          "authType": "UserPassword",
                          "auth": {"userName": "mirror", "secretIdentifier": "up-pat", "secretSpacePath": "acme"}}}),
    )
    .await;
    let (st, v) = call(s.get("/har/api/v1/registry/acme/gproxy/+")).await;
    assert_eq!(st, 200);
    assert!(!v.to_string().contains(&mirror), "{v}");
    let r = s
        .get("/pkg/acme/gproxy/generic/tool/1.0/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "content of a.txt");
    // Without the secret, the upstream cannot be asked: a clear 502, and cached files still serve.
    let r = s
        .delete("/arca/v1/secrets?space=acme&identifier=up-pat")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, v) = call(s.get("/pkg/acme/gproxy/generic/tool/1.0/b.txt")).await;
    assert_eq!(st, 502, "{v}");
    assert!(v.to_string().contains("up-pat"), "{v}");
    assert_eq!(
        s.get("/pkg/acme/gproxy/generic/tool/1.0/a.txt")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    upstream.stop();
}

/// `expireHours` evicts cached files nobody fetched for that long (access times are recorded with
/// the download counts), and `arca gc` then frees their bytes; recently fetched files and proxies
/// without expiry keep theirs; an evicted file is fetched again on the next request.
async fn expire_hours_evicts_what_nobody_fetched(b: Backend) {
    let stub = Stub::start().await;
    stub.set(
        "/files/tool/1.0/old.bin",
        Reply::Ok(vec![1; 50_000], "application/octet-stream"),
    );
    stub.set(
        "/files/tool/1.0/new.bin",
        Reply::Ok(vec![2; 50_000], "application/octet-stream"),
    );
    let s = Server::start(b).await;
    let (st, v) = call(
        s.client
            .post(s.url("/registry/company/acme/repositories"))
            .header("authorization", format!("token {}", s.token))
            .json(&json!({"type": "PROXY", "repositoryName": "exp", "packageType": "generic",
                          "proxySettings": {"url": format!("{}/files", stub.base), "isCaching": true, "expireHours": 1}})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    gitflic_proxy(
        &s,
        "keep",
        "generic",
        &format!("{}/files", stub.base),
        "u",
        "t",
        7200,
    )
    .await;
    for path in [
        "/pkg/default/exp/generic/tool/1.0/old.bin",
        "/pkg/default/exp/generic/tool/1.0/new.bin",
        "/pkg/default/keep/generic/tool/1.0/old.bin",
    ] {
        assert_eq!(s.get(path).send().await.unwrap().status(), 200, "{path}");
    }
    // Two hours pass for old.bin (in the database's clock), and it was never fetched since.
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&s.database_url)
        .await
        .unwrap();
    let two_hours_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 7_200_000;
    sqlx::query(&format!(
        "UPDATE files SET created_at = {two_hours_ago}, accessed_at = {two_hours_ago} WHERE name = 'old.bin'"
    ))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let out = s.cli(&["gc", "--grace-secs", "0"]);
    assert!(out.contains("1 expired proxy cache files"), "{out}");
    let hits = stub.hits("/files/tool/1.0/old.bin");
    // The proxy without expiry kept its copy; the one with expiry fetches it again.
    assert_eq!(
        s.get("/pkg/default/keep/generic/tool/1.0/old.bin")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(stub.hits("/files/tool/1.0/old.bin"), hits);
    assert_eq!(
        s.get("/pkg/default/exp/generic/tool/1.0/new.bin")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        stub.hits("/files/tool/1.0/new.bin"),
        1,
        "recent content stays"
    );
    let r = s
        .get("/pkg/default/exp/generic/tool/1.0/old.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 50_000);
    assert_eq!(
        stub.hits("/files/tool/1.0/old.bin"),
        hits + 1,
        "evicted, so fetched again"
    );
}

both_backends!(
    expire_hours_evicts_what_nobody_fetched,
    upstream_credentials_from_the_secret_store,
    upstream_sources_and_config_extensions,
    mvn_resolves_through_a_maven_proxy,
    cargo_build_through_a_cargo_proxy,
    the_engine_against_a_faulty_upstream,
    pip_and_uv_install_through_a_pypi_proxy,
    npm_install_and_ci_through_an_npm_proxy
);

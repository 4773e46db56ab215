use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Run, Server, call, run};

pub(crate) struct Npm {
    rc: PathBuf,
    cache: PathBuf,
    /// The npm executable (the installed one unless [`Npm::with_program`] says otherwise).
    program: PathBuf,
}

impl Npm {
    pub(crate) fn new(s: &Server, reg: &str, token: &str) -> Npm {
        Npm::at(s, "acme", reg, token)
    }

    /// npm pointed at registry `reg` of account `account`.
    pub(crate) fn at(s: &Server, account: &str, reg: &str, token: &str) -> Npm {
        let dir = s.dir.path().join(match account {
            // The directory every test used before registries in other accounts.
            "acme" => format!("npm-{}", &token[token.len() - 6..]),
            _ => format!("npm-{account}-{reg}-{}", &token[token.len() - 6..]),
        });
        std::fs::create_dir_all(&dir).unwrap();
        let host = s.base.trim_start_matches("http://");
        let rc = dir.join("npmrc");
        std::fs::write(&rc, format!("registry=http://{host}/pkg/{account}/{reg}/npm/\n//{host}/pkg/{account}/{reg}/npm/:_authToken={token}\n")).unwrap();
        Npm {
            rc,
            cache: dir.join("cache"),
            program: PathBuf::from("npm"),
        }
    }

    /// The same configuration driven by another npm (e.g. the oldest one still shipped).
    pub(crate) fn with_program(self, program: PathBuf) -> Npm {
        Npm { program, ..self }
    }

    pub(crate) fn run(&self, cwd: &Path, args: &[&str]) -> Run {
        std::fs::create_dir_all(cwd).unwrap();
        let env = [
            ("npm_config_userconfig", self.rc.display().to_string()),
            ("npm_config_globalconfig", "/dev/null".to_string()),
            ("npm_config_cache", self.cache.display().to_string()),
            ("npm_config_audit", "false".into()),
            ("npm_config_fund", "false".into()),
            ("npm_config_update_notifier", "false".into()),
            ("npm_config_loglevel", "warn".into()),
        ];
        run(&self.program, args, cwd, &env)
    }

    pub(crate) fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let r = self.run(cwd, args);
        assert!(r.ok, "npm {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }
}

pub(crate) fn package(dir: &Path, manifest: Value) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("index.js"),
        format!(
            "module.exports = {:?};\n",
            manifest["version"].as_str().unwrap()
        ),
    )
    .unwrap();
    dir.to_path_buf()
}

async fn publish_install_ci_view_tags_deprecate_unpublish(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "npmreg", "packageType": "NPM", "parentRef": "acme", "isDeletePackageAllowed": true})).await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let npm = Npm::new(&s, "npmreg", &dev);
    let w = s.dir.path();

    let a = package(
        &w.join("lib-a"),
        json!({"name": "lib-a", "version": "1.0.0", "description": "first library", "keywords": ["alpha"]}),
    );
    npm.ok(&a, &["publish"]);
    let b2 = package(
        &w.join("lib-b"),
        json!({"name": "@acme/lib-b", "version": "1.0.0", "dependencies": {"lib-a": "^1.0.0"}}),
    );
    npm.ok(&b2, &["publish"]);

    // Install a tree that lives entirely in Arca, then reproduce it from the lockfile.
    let app = package(
        &w.join("app"),
        json!({"name": "app", "version": "0.0.1", "private": true, "dependencies": {"@acme/lib-b": "^1.0.0"}}),
    );
    npm.ok(&app, &["install"]);
    assert!(app.join("node_modules/@acme/lib-b/package.json").exists());
    assert!(app.join("node_modules/lib-a/index.js").exists());
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(app.join("package-lock.json")).unwrap())
            .unwrap();
    let entry = &lock["packages"]["node_modules/lib-a"];
    assert!(
        entry["resolved"]
            .as_str()
            .unwrap()
            .starts_with(&s.url("/pkg/acme/npmreg/npm/lib-a/-/lib-a-1.0.0.tgz")),
        "{entry}"
    );
    assert!(entry["integrity"].as_str().unwrap().starts_with("sha512-"));
    std::fs::remove_dir_all(app.join("node_modules")).unwrap();
    npm.ok(&app, &["ci"]);
    assert!(app.join("node_modules/lib-a/index.js").exists());

    // view, new version, immutability.
    assert_eq!(npm.ok(w, &["view", "lib-a", "version"]).trim(), "1.0.0");
    let a11 = package(
        &w.join("lib-a-11"),
        json!({"name": "lib-a", "version": "1.1.0"}),
    );
    npm.ok(&a11, &["publish"]);
    let versions: Value =
        serde_json::from_str(&npm.ok(w, &["view", "lib-a", "versions", "--json"])).unwrap();
    assert_eq!(versions, json!(["1.0.0", "1.1.0"]));
    let r = npm.run(&a11, &["publish"]);
    assert!(!r.ok);
    assert!(
        r.stderr
            .contains("You cannot publish over the previously published versions: 1.1.0"),
        "{}",
        r.stderr
    );

    // dist-tags.
    npm.ok(w, &["dist-tag", "add", "lib-a@1.0.0", "stable"]);
    let tags = npm.ok(w, &["dist-tag", "ls", "lib-a"]);
    assert!(
        tags.contains("stable: 1.0.0") && tags.contains("latest: 1.1.0"),
        "{tags}"
    );
    npm.ok(w, &["dist-tag", "rm", "lib-a", "stable"]);
    assert!(!npm.ok(w, &["dist-tag", "ls", "lib-a"]).contains("stable"));

    // deprecate.
    npm.ok(w, &["deprecate", "lib-a@1.0.0", "use 1.1"]);
    assert_eq!(
        npm.ok(w, &["view", "lib-a@1.0.0", "deprecated"]).trim(),
        "use 1.1"
    );
    assert_eq!(npm.ok(w, &["view", "lib-a@1.1.0", "deprecated"]).trim(), "");

    // whoami, search.
    assert_eq!(npm.ok(w, &["whoami"]).trim(), "dev");
    let found: Value = serde_json::from_str(&npm.ok(w, &["search", "lib", "--json"])).unwrap();
    let names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"lib-a") && names.contains(&"@acme/lib-b"),
        "{names:?}"
    );

    // unpublish one version: gone from the packument, kept as deleted.
    npm.ok(w, &["unpublish", "lib-a@1.1.0", "--force"]);
    let versions: Value =
        serde_json::from_str(&npm.ok(w, &["view", "lib-a", "versions", "--json"])).unwrap();
    assert_eq!(versions, json!(["1.0.0"]));
    let (_, v) =
        call(s.get("/har/api/v1/registry/acme/npmreg/+/artifact/lib-a/versions?deleted=only"))
            .await;
    assert_eq!(v["data"]["artifactVersions"][0]["name"], "1.1.0");

    // Both dialects list the packages.
    let (_, v) = call(s.get("/har/api/v1/registry/acme/npmreg/+/artifacts?sort_field=name")).await;
    let names: Vec<&str> = v["data"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["@acme/lib-b", "lib-a"]);
}

async fn protocol_details_and_bad_input(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "npmreg", "packageType": "NPM", "parentRef": "acme", "blockedPattern": ["^evil"]})).await;
    let npm = Npm::new(&s, "npmreg", &s.token);
    let w = s.dir.path();
    let p = package(
        &w.join("pkg"),
        json!({"name": "thing", "version": "2.0.0", "scripts": {"postinstall": "true"}}),
    );
    npm.ok(&p, &["publish"]);

    // Abbreviated metadata.
    let r = s
        .client
        .get(s.url("/pkg/acme/npmreg/npm/thing"))
        .header("x-api-key", &s.token)
        .header("accept", "application/vnd.npm.install-v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.npm.install-v1+json"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["dist-tags"]["latest"], "2.0.0");
    assert_eq!(v["versions"]["2.0.0"]["hasInstallScript"], true);
    assert!(v["versions"]["2.0.0"].get("scripts").is_none());
    let tarball_url = v["versions"]["2.0.0"]["dist"]["tarball"]
        .as_str()
        .unwrap()
        .to_string();
    let integrity = v["versions"]["2.0.0"]["dist"]["integrity"]
        .as_str()
        .unwrap()
        .to_string();
    let tgz = s
        .client
        .get(&tarball_url)
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let digest = <sha2::Sha512 as sha2::Digest>::digest(&tgz);
    assert_eq!(
        integrity,
        format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    );
    // Full packument, single-version manifest, dist-tag lookup, encoded scoped names.
    let (st, v) = call(
        s.client
            .get(s.url("/pkg/acme/npmreg/npm/thing/latest"))
            .header("x-api-key", &s.token),
    )
    .await;
    assert_eq!((st, v["version"].as_str()), (200, Some("2.0.0")));
    let (st, _) = call(
        s.client
            .get(s.url("/pkg/acme/npmreg/npm/%40nope%2Fx"))
            .header("x-api-key", &s.token),
    )
    .await;
    assert_eq!(st, 404);

    // Legacy login returns a token that npm then uses.
    s.cli(&[
        "user",
        "create",
        "carol",
        "--password",
        "pw-123456",
        "--role",
        "reader",
        "--scope",
        "acme",
    ]);
    let (st, v) = call(
        s.client
            .put(s.url("/pkg/acme/npmreg/npm/-/user/org.couchdb.user:carol"))
            .json(&json!({"name": "carol", "password": "pw-123456"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let carol = Npm::new(&s, "npmreg", v["token"].as_str().unwrap());
    assert_eq!(carol.ok(w, &["whoami"]).trim(), "carol");
    let (st, _) = call(
        s.client
            .put(s.url("/pkg/acme/npmreg/npm/-/user/org.couchdb.user:carol"))
            .json(&json!({"name": "carol", "password": "wrong"})),
    )
    .await;
    assert_eq!(st, 401);
    // A reader cannot publish; the message reaches the npm user.
    let p2 = package(
        &w.join("pkg2"),
        json!({"name": "other", "version": "1.0.0"}),
    );
    let r = carol.run(&p2, &["publish"]);
    assert!(!r.ok && r.stderr.contains("403"), "{}", r.stderr);

    // Hand-made publishes: a tarball that disagrees with the document, bad JSON, bad versions, blocked names.
    let packed = npm.ok(&p2, &["pack", "--json"]);
    let packed: Value = serde_json::from_str(&packed).unwrap();
    let tgz = std::fs::read(p2.join(packed[0]["filename"].as_str().unwrap())).unwrap();
    let doc = |name: &str, version: &str| {
        json!({"name": name, "dist-tags": {"latest": version}, "versions": {version: {"name": name, "version": version, "dist": {}}},
               "_attachments": {format!("{name}-{version}.tgz"): {"content_type": "application/octet-stream",
                                "data": base64::engine::general_purpose::STANDARD.encode(&tgz), "length": tgz.len()}}})
    };
    for (name, body, status) in [
        ("impostor", doc("impostor", "1.0.0"), 400),
        ("other", doc("other", "1.0"), 400),
        ("other", doc("other", "2.0.0"), 400),
        ("evil-pkg", doc("evil-pkg", "1.0.0"), 403),
        ("Other", doc("Other", "1.0.0"), 400),
    ] {
        let (st, v) = call(
            s.client
                .put(s.url(&format!("/pkg/acme/npmreg/npm/{name}")))
                .header("x-api-key", &s.token)
                .json(&body),
        )
        .await;
        assert_eq!(st, status, "{name}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let (st, _) = call(
        s.client
            .put(s.url("/pkg/acme/npmreg/npm/other"))
            .header("x-api-key", &s.token)
            .body("{oops"),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = call(
        s.client
            .put(s.url("/pkg/acme/npmreg/npm/other"))
            .json(&doc("other", "1.0.0")),
    )
    .await;
    assert_eq!(st, 401);
    // The good document goes through, once.
    let (st, v) = call(
        s.client
            .put(s.url("/pkg/acme/npmreg/npm/other"))
            .header("x-api-key", &s.token)
            .json(&doc("other", "1.0.0")),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (_, v) = call(s.get("/har/api/v1/registry/acme/npmreg/+/artifacts")).await;
    assert_eq!(v["data"]["itemCount"], 2);
}

/// Parallel writers of one package's attributes compose: 20 concurrent publishes, each adding
/// its version and two tags, then 20 concurrent `dist-tag add`s: every version and every tag
/// survives (the lost-update race of the security review), on both databases.
async fn concurrent_publishes_keep_every_tag(b: Backend) {
    use base64::Engine;
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "npmreg", "packageType": "NPM", "parentRef": "acme"}),
    )
    .await;
    let doc = |i: usize| {
        let version = format!("1.0.{i}");
        let mut tgz = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let manifest = json!({"name": "cc", "version": version}).to_string();
        let mut h = tar::Header::new_gnu();
        h.set_size(manifest.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tgz.append_data(&mut h, "package/package.json", manifest.as_bytes())
            .unwrap();
        let tgz = tgz.into_inner().unwrap().finish().unwrap();
        json!({
            "_id": "cc", "name": "cc",
            "dist-tags": {"latest": version, format!("tag{i}"): version},
            "versions": {version.clone(): {"name": "cc", "version": version, "dist": {"tarball": "x"}}},
            "_attachments": {format!("cc-{version}.tgz"): {
                "content_type": "application/octet-stream", "length": tgz.len(),
                "data": base64::engine::general_purpose::STANDARD.encode(&tgz)}}
        })
    };
    let publishes = (0..20).map(|i| {
        let req = s.put("/pkg/acme/npmreg/npm/cc", doc(i));
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(publishes).await;
    assert!(statuses.iter().all(|st| *st == 201), "{statuses:?}");
    let adds = (0..20).map(|i| {
        let req = s.put(
            &format!("/pkg/acme/npmreg/npm/-/package/cc/dist-tags/extra{i}"),
            json!(format!("1.0.{}", 19 - i)),
        );
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(adds).await;
    assert!(statuses.iter().all(|st| *st == 201), "{statuses:?}");
    let v: Value = s
        .get("/pkg/acme/npmreg/npm/cc")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tags = v["dist-tags"].as_object().unwrap();
    assert_eq!(v["versions"].as_object().unwrap().len(), 20, "{v}");
    for i in 0..20 {
        assert_eq!(tags[&format!("tag{i}")], format!("1.0.{i}"), "{tags:?}");
        assert_eq!(
            tags[&format!("extra{i}")],
            format!("1.0.{}", 19 - i),
            "{tags:?}"
        );
    }
    // `latest` is the one the last committed publish named: one of them, whichever it was.
    let latest = tags["latest"].as_str().unwrap();
    assert!(v["versions"].get(latest).is_some(), "{latest}");
    assert_eq!(tags.len(), 41, "{tags:?}");
}

both_backends!(
    concurrent_publishes_keep_every_tag,
    publish_install_ci_view_tags_deprecate_unpublish,
    protocol_details_and_bad_input
);

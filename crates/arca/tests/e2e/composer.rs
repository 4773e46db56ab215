use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Run, Server, call, run};

/// A zip with the given files; `prefix` puts them in one top-level directory as VCS archives do.
pub(crate) fn archive(prefix: &str, files: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in files {
        zip.start_file(
            format!("{prefix}{name}"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

pub(crate) async fn upload(s: &Server, token: &str, file: &str, body: Vec<u8>) -> (u16, Value) {
    call(
        s.client
            .put(s.url(&format!("/pkg/acme/php/composer/{file}")))
            .basic_auth("u", Some(token))
            .body(body),
    )
    .await
}

pub(crate) fn composer(cwd: &Path, home: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--no-interaction", "--no-ansi"];
    all.extend_from_slice(args);
    run(
        "composer",
        &all,
        cwd,
        &[(
            "COMPOSER_HOME",
            home.join("composer-home").display().to_string(),
        )],
    )
}

/// Upload two packages (one depending on the other) and `composer require` the dependent one with
/// `http-basic` credentials; the autoloaded code runs.
async fn require_with_composer(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "php", "packageType": "COMPOSER", "parentRef": "acme", "packageReuploadType": "NONE"}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let lib = archive(
        "",
        &[
            (
                "composer.json",
                r#"{"name":"acme/lib","version":"1.0.0","type":"library","description":"Greeting library","autoload":{"psr-4":{"Acme\\Lib\\":"src/"}}}"#,
            ),
            (
                "src/Greeter.php",
                r#"<?php namespace Acme\Lib; class Greeter { public static function hi() { return "hi from lib"; } }"#,
            ),
        ],
    );
    // Built from a VCS tag: files in one top-level directory, version given by the uploader.
    let app = archive(
        "acme-app-3f2a1b/",
        &[
            (
                "composer.json",
                r#"{"name":"acme/app","type":"library","require":{"acme/lib":"^1.0"},"autoload":{"psr-4":{"Acme\\App\\":"src/"}}}"#,
            ),
            (
                "src/App.php",
                r#"<?php namespace Acme\App; class App { public static function run() { return \Acme\Lib\Greeter::hi() . " via app"; } }"#,
            ),
        ],
    );
    assert_eq!(
        upload(&s, &dev, "acme-lib-1.0.0.zip", lib.clone()).await.0,
        201
    );
    let (st, v) = upload(&s, &dev, "acme-app.zip?version=v1.2", app).await;
    assert_eq!(
        (st, v["version_normalized"].as_str()),
        (201, Some("1.2.0.0")),
        "{v}"
    );

    let home = s.dir.path().join("php");
    let project = home.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let root = s.url("/pkg/acme/php/composer");
    std::fs::write(
        project.join("composer.json"),
        json!({"repositories": [{"type": "composer", "url": root}, {"packagist.org": false}],
               "config": {"secure-http": false}})
        .to_string(),
    )
    .unwrap();
    let host = root.split('/').nth(2).unwrap().to_string();
    // Without credentials composer cannot read the private registry.
    let r = composer(&project, &home, &["require", "acme/app"]);
    assert!(!r.ok, "{}", r.stdout);
    std::fs::write(
        project.join("auth.json"),
        json!({"http-basic": {host: {"username": "ro", "password": ro}}}).to_string(),
    )
    .unwrap();
    let r = composer(&project, &home, &["require", "acme/app"]);
    assert!(r.ok, "composer require failed:\n{}\n{}", r.stdout, r.stderr);
    let out = run(
        "php",
        &[
            "-r",
            r#"require "vendor/autoload.php"; echo \Acme\App\App::run();"#,
        ],
        &project,
        &[],
    );
    assert_eq!(out.stdout, "hi from lib via app", "{}", out.stderr);
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("composer.lock")).unwrap())
            .unwrap();
    let lib_lock = lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "acme/lib")
        .unwrap();
    assert_eq!(
        lib_lock["dist"]["shasum"].as_str().unwrap(),
        hex::encode(<sha1::Sha1 as sha2::Digest>::digest(&lib))
    );
    let r = composer(&project, &home, &["search", "greeting"]);
    assert!(r.stdout.contains("acme/lib"), "{}\n{}", r.stdout, r.stderr);

    // The artifacts and their downloads appear in the management API.
    let (_, v) = call(s.get("/har/api/v1/registry/acme/php/+/artifacts?sort_field=name")).await;
    let arts = v["data"]["artifacts"].as_array().unwrap();
    let names: Vec<&str> = arts.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["acme/app", "acme/lib"]);
    assert!(
        arts.iter().all(|a| a["downloadsCount"].as_i64() == Some(1)),
        "{arts:?}"
    );
}

/// Metadata documents, version rules and every refusal.
async fn metadata_and_bad_input(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "php", "packageType": "COMPOSER", "parentRef": "acme", "packageReuploadType": "NONE",
               "blockedPattern": ["acme/blocked:*"]}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let pkg = |name: &str, version: Option<&str>| {
        let mut m = json!({"name": name, "type": "library"});
        if let Some(v) = version {
            m["version"] = json!(v);
        }
        archive("", &[("composer.json", &m.to_string())])
    };
    assert_eq!(
        upload(&s, &dev, "a.zip", pkg("acme/tool", Some("1.0")))
            .await
            .0,
        201
    );
    assert_eq!(
        upload(&s, &dev, "b.zip", pkg("acme/tool", Some("dev-main")))
            .await
            .0,
        201
    );
    // 1.0.0 is 1.0 again; the same version twice is refused without OVERRIDE.
    let (st, v) = upload(&s, &dev, "c.zip", pkg("acme/tool", Some("1.0.0"))).await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(
        upload(&s, &dev, "a.zip", pkg("acme/tool", Some("1.0")))
            .await
            .0,
        409
    );

    let (_, root) = call(s.get("/pkg/acme/php/composer/packages.json")).await;
    assert_eq!(root["available-packages"], json!(["acme/tool"]));
    assert!(
        root["metadata-url"]
            .as_str()
            .unwrap()
            .ends_with("/p2/%package%.json")
    );
    let (_, tagged) = call(s.get("/pkg/acme/php/composer/p2/acme/tool.json")).await;
    let versions: Vec<&str> = tagged["packages"]["acme/tool"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(versions, ["1.0"]);
    let (_, dev_file) = call(s.get("/pkg/acme/php/composer/p2/acme/tool~dev.json")).await;
    assert_eq!(
        dev_file["packages"]["acme/tool"][0]["version_normalized"],
        "dev-main"
    );
    assert_eq!(
        call(s.get("/pkg/acme/php/composer/p2/acme/none.json"))
            .await
            .0,
        404
    );
    let r = s
        .client
        .post(s.url("/pkg/acme/php/composer/downloads"))
        .basic_auth("ro", Some(&ro))
        .json(&json!({"downloads": [{"name": "acme/tool", "version": "1.0.0.0"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (_, before) = call(s.get("/har/api/v1/registry/acme/php/+/artifacts")).await;
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("not a zip", "x.zip", b"hello".to_vec(), 400),
        (
            "no composer.json",
            "x.zip",
            archive("", &[("README", "x")]),
            400,
        ),
        (
            "deeply nested composer.json",
            "x.zip",
            archive(
                "a/b/",
                &[("composer.json", r#"{"name":"acme/x","version":"1.0"}"#)],
            ),
            400,
        ),
        (
            "invalid JSON",
            "x.zip",
            archive("", &[("composer.json", "{nope")]),
            400,
        ),
        (
            "no name",
            "x.zip",
            archive("", &[("composer.json", r#"{"version":"1.0"}"#)]),
            400,
        ),
        ("bad name", "x.zip", pkg("Acme/Tool", Some("1.0")), 400),
        ("no version", "x.zip", pkg("acme/other", None), 400),
        (
            "bad version",
            "x.zip",
            pkg("acme/other", Some("1.0-gamma")),
            400,
        ),
        ("not .zip", "x.tar", pkg("acme/other", Some("1.0")), 400),
        ("blocked", "x.zip", pkg("acme/blocked", Some("1.0")), 403),
    ];
    for (what, file, body, want) in cases {
        let (st, v) = upload(&s, &dev, file, body).await;
        assert_eq!(st, want, "{what}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {v}"
        );
    }
    assert_eq!(
        upload(&s, &ro, "r.zip", pkg("acme/other", Some("1.0")))
            .await
            .0,
        403
    );
    let r = s
        .client
        .put(s.url("/pkg/acme/php/composer/x.zip"))
        .body(pkg("acme/other", Some("1.0")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    // Path traversal in the file name (curl keeps the dots as sent).
    let out = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--path-as-is",
            "-u",
            &format!("dev:{dev}"),
            "-T",
            "/dev/null",
            &s.url("/pkg/acme/php/composer/../../../x.zip"),
        ],
        s.dir.path(),
        &[],
    );
    assert!(out.stdout.starts_with('4'), "{}", out.stdout);
    let (_, after) = call(s.get("/har/api/v1/registry/acme/php/+/artifacts")).await;
    assert_eq!(before["data"]["itemCount"], after["data"]["itemCount"]);
}

both_backends!(require_with_composer, metadata_and_bad_input);

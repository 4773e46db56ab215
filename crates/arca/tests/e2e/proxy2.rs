//! Pull-through proxies, part 2 (NuGet, Composer, Helm, CRAN, OPM) with their real clients where
//! the machine has them: the upstream is a second `arca` process (a private hosted registry, so
//! the proxy's own credentials are exercised) or the programmable stub, never the internet.

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call, run};
use crate::composer::{archive, composer, upload as composer_upload};
use crate::nuget::{NugetExe, nupkg, push_raw, spec};
use crate::proxy::{gitflic_proxy, harness_upstream};

/// GET with a reader's Basic credentials: (status, X-Arca-Cache, body).
async fn read(s: &Server, user: &str, secret: &str, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let r = s
        .client
        .get(s.url(path))
        .basic_auth(user, Some(secret))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("x-arca-cache")
        .map(|v| v.to_str().unwrap().to_string());
    (status, cache, r.bytes().await.unwrap().to_vec())
}

/// NuGet.exe installs a package with a dependency through a NuGet proxy (GitFlic PROXY) whose
/// upstream needs credentials: Arca's own service index, registrations relayed with their URLs
/// on Arca; with the upstream gone a fresh client installs again from the cache.
async fn nuget_exe_installs_through_a_nuget_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "nu", "packageType": "NUGET", "parentRef": "acme"}),
        )
        .await;
    let w = upstream.dir.path().join("work");
    let lib = nupkg(
        &w,
        "Acme.Lib.1.0.0.nupkg",
        &spec("Acme.Lib", "1.0.0", ""),
        &[("content/lib.txt", "lib")],
    );
    let app = nupkg(
        &w,
        "Acme.App.2.0.0.nupkg",
        &spec(
            "Acme.App",
            "2.0.0",
            "<dependencies><group targetFramework=\"net45\"><dependency id=\"Acme.Lib\" version=\"1.0\" /></group></dependencies>",
        ),
        &[("content/app.txt", "app")],
    );
    for p in [&lib, &app] {
        let (st, v) = push_raw(&upstream, &upstream.token, std::fs::read(p).unwrap()).await;
        assert_eq!(st, 201, "{v}");
    }
    let mirror = upstream.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    gitflic_proxy(
        &s,
        "nuproxy",
        "nuget",
        &upstream.url("/pkg/acme/nu/nuget/index.json"),
        "mirror",
        &mirror,
        0,
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "default/acme");
    let source = s.url("/pkg/default/acme/-/nuproxy/nuget/index.json");
    let install = |tag: &str| {
        let client = NugetExe::for_source(&s, tag, &source, "ro", &ro);
        client.ok(&[
            "install", "Acme.App", "-Version", "2.0.0", "-Source", "arca", "-OutputDirectory",
            "pkgs",
        ]);
        let pkgs = client.home.join("pkgs");
        assert_eq!(
            std::fs::read_to_string(pkgs.join("Acme.App.2.0.0/content/app.txt")).unwrap(),
            "app"
        );
        assert_eq!(
            std::fs::read_to_string(pkgs.join("Acme.Lib.1.0.0/content/lib.txt")).unwrap(),
            "lib"
        );
    };
    install("first");

    // Arca's own service index (no push resources on a proxy), registrations naming only Arca,
    // the package kept byte for byte.
    let (st, _, body) = read(&s, "ro", &ro, "/pkg/default/acme/-/nuproxy/nuget/index.json").await;
    assert_eq!(st, 200);
    let index: Value = serde_json::from_slice(&body).unwrap();
    let types: Vec<&str> = index["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["@type"].as_str())
        .collect();
    assert!(!types.iter().any(|t| t.starts_with("PackagePublish")), "{types:?}");
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/nuproxy/nuget/registration/acme.app/index.json",
    )
    .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(!text.contains(&upstream.base), "no upstream address: {text}");
    let reg: Value = serde_json::from_slice(&body).unwrap();
    let entry = &reg["items"][0]["items"][0];
    assert_eq!(
        entry["packageContent"],
        s.url("/pkg/default/acme/-/nuproxy/nuget/package/acme.app/2.0.0/acme.app.2.0.0.nupkg")
    );
    assert_eq!(
        entry["catalogEntry"]["dependencyGroups"][0]["dependencies"][0]["registration"],
        s.url("/pkg/default/acme/-/nuproxy/nuget/registration/acme.lib/index.json")
    );
    let (st, _, kept) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/nuproxy/nuget/package/acme.lib/1.0.0/acme.lib.1.0.0.nupkg",
    )
    .await;
    assert_eq!((st, kept), (200, std::fs::read(&lib).unwrap()));
    // Cached packages are listed under the proxy's cache like any other content.
    let (_, v) = call(s.get("/har/api/v1/registry/default/acme/nuproxy/+/artifacts")).await;
    let names: Vec<&str> = v["data"]["artifacts"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"acme.app") && names.contains(&"acme.lib"), "{v}");

    // The upstream goes away: a fresh client installs again, from the cache; the metadata is
    // served stale.
    upstream.stop();
    install("offline");
    let (st, cache, _) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/nuproxy/nuget/package/acme.app/index.json",
    )
    .await;
    assert_eq!((st, cache.as_deref()), (200, Some("STALE")));
}


/// `composer require` of a package with a dependency through a Composer proxy (Harness
/// UPSTREAM): Arca's own packages.json, p2 files whose `dist.url` are absolute Arca URLs; with
/// the upstream gone a fresh project and composer home install again from the cache.
async fn composer_requires_through_a_composer_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "php", "packageType": "COMPOSER", "parentRef": "acme"}),
        )
        .await;
    let lib = archive(
        "",
        &[
            (
                "composer.json",
                r#"{"name":"acme/lib","version":"1.0.0","type":"library","autoload":{"psr-4":{"Acme\\Lib\\":"src/"}}}"#,
            ),
            (
                "src/Greeter.php",
                r#"<?php namespace Acme\Lib; class Greeter { public static function hi() { return "hi from lib"; } }"#,
            ),
        ],
    );
    let app = archive(
        "",
        &[
            (
                "composer.json",
                r#"{"name":"acme/app","version":"1.2.0","type":"library","require":{"acme/lib":"^1.0"},"autoload":{"psr-4":{"Acme\\App\\":"src/"}}}"#,
            ),
            (
                "src/App.php",
                r#"<?php namespace Acme\App; class App { public static function run() { return \Acme\Lib\Greeter::hi() . " via app"; } }"#,
            ),
        ],
    );
    for (file, body) in [("acme-lib-1.0.0.zip", lib.clone()), ("acme-app-1.2.0.zip", app)] {
        let (st, v) = composer_upload(&upstream, &upstream.token, file, body).await;
        assert_eq!(st, 201, "{v}");
    }
    let mirror = upstream.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    harness_upstream(
        &s,
        "phpproxy",
        "COMPOSER",
        &upstream.url("/pkg/acme/php/composer"),
        &mirror,
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "acme");
    let root = s.url("/pkg/acme/phpproxy/composer");
    let host = root.split('/').nth(2).unwrap().to_string();
    let require = |tag: &str| {
        let home = s.dir.path().join(format!("php-{tag}"));
        let project = home.join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            project.join("composer.json"),
            json!({"repositories": [{"type": "composer", "url": root}, {"packagist.org": false}],
                   "config": {"secure-http": false}})
            .to_string(),
        )
        .unwrap();
        std::fs::write(
            project.join("auth.json"),
            json!({"http-basic": {host.clone(): {"username": "ro", "password": ro}}}).to_string(),
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
    };
    require("first");

    let (st, _, body) = read(&s, "ro", &ro, "/pkg/acme/phpproxy/composer/packages.json").await;
    assert_eq!(st, 200);
    let index: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        index["metadata-url"],
        format!("{root}/p2/%package%.json"),
        "{index}"
    );
    assert!(!index.to_string().contains(&upstream.base), "{index}");
    let (st, _, body) = read(&s, "ro", &ro, "/pkg/acme/phpproxy/composer/p2/acme/lib.json").await;
    assert_eq!(st, 200);
    let p2: Value = serde_json::from_slice(&body).unwrap();
    let url = p2["packages"]["acme/lib"][0]["dist"]["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{root}/dists/acme/lib/")), "{p2}");
    assert!(!p2.to_string().contains(&upstream.base), "{p2}");
    let r = s.client.get(&url).basic_auth("ro", Some(&ro)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), lib, "kept byte for byte");

    upstream.stop();
    require("offline");
}

both_backends!(
    nuget_exe_installs_through_a_nuget_proxy,
    composer_requires_through_a_composer_proxy,
);

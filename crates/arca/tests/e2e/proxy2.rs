//! Pull-through proxies, part 2 (NuGet, Composer, Helm, CRAN, OPM) with their real clients where
//! the machine has them: the upstream is a second `arca` process (a private hosted registry, so
//! the proxy's own credentials are exercised) or the programmable stub, never the internet.

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call, run, tools};
use crate::composer::{archive, composer, upload as composer_upload};
use crate::cran::{build_package, put as cran_put};
use crate::debian::{Apt, build_deb, put_deb};
use crate::nuget::{NugetExe, nupkg, push_raw, spec};
use crate::opm::{ospx, push as opm_push};
use crate::proxy::{gitflic_proxy, harness_upstream};
use crate::proxy3::read;
use crate::rpm::{build_rpm, dnf, packager, put_rpm};
use crate::stub::{Dead, Reply, Stub};

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
            "install",
            "Acme.App",
            "-Version",
            "2.0.0",
            "-Source",
            "arca",
            "-OutputDirectory",
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
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/nuproxy/nuget/index.json",
    )
    .await;
    assert_eq!(st, 200);
    let index: Value = serde_json::from_slice(&body).unwrap();
    let types: Vec<&str> = index["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["@type"].as_str())
        .collect();
    assert!(
        !types.iter().any(|t| t.starts_with("PackagePublish")),
        "{types:?}"
    );
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/nuproxy/nuget/registration/acme.app/index.json",
    )
    .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(
        !text.contains(&upstream.base),
        "no upstream address: {text}"
    );
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
    assert!(
        names.contains(&"acme.app") && names.contains(&"acme.lib"),
        "{v}"
    );

    // The upstream goes away (its address now refuses every connection, counted): a fresh
    // client installs again, from the cache; the metadata, past its interval, is served stale.
    upstream.stop();
    let dead = Dead::at(&upstream.base).await;
    install("offline");
    let (st, cache, _) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/nuproxy/nuget/package/acme.app/index.json",
    )
    .await;
    assert_eq!((st, cache.as_deref()), (200, Some("STALE")));
    assert!(dead.count() > 0, "the stale path asked the upstream first");
    // isOffline: the same install without a single upstream connection.
    gitflic_offline(&s, "nuproxy").await;
    dead.reset();
    install("isoffline");
    assert_eq!(dead.count(), 0, "offline: no upstream connection");
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
    for (file, body) in [
        ("acme-lib-1.0.0.zip", lib.clone()),
        ("acme-app-1.2.0.zip", app),
    ] {
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
    short_interval(&s, "phpproxy", &mirror).await;
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
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/acme/phpproxy/composer/p2/acme/lib.json",
    )
    .await;
    assert_eq!(st, 200);
    let p2: Value = serde_json::from_slice(&body).unwrap();
    let url = p2["packages"]["acme/lib"][0]["dist"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.starts_with(&format!("{root}/dists/acme/lib/")), "{p2}");
    assert!(!p2.to_string().contains(&upstream.base), "{p2}");
    let r = s
        .client
        .get(&url)
        .basic_auth("ro", Some(&ro))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), lib, "kept byte for byte");

    // Past the interval, the upstream gone (its address refusing connections, counted): a fresh
    // project installs from the cache, the metadata served stale.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    upstream.stop();
    let dead = Dead::at(&upstream.base).await;
    require("offline");
    let (st, cache, _) = read(
        &s,
        "ro",
        &ro,
        "/pkg/acme/phpproxy/composer/p2/acme/lib.json",
    )
    .await;
    assert_eq!((st, cache.as_deref()), (200, Some("STALE")));
    assert!(dead.count() > 0, "the stale path asked the upstream first");
    harness_offline(&s, "phpproxy", &mirror).await;
    dead.reset();
    require("isoffline");
    assert_eq!(dead.count(), 0, "offline: no upstream connection");
}

both_backends!(
    nuget_exe_installs_through_a_nuget_proxy,
    composer_requires_through_a_composer_proxy,
    helm_sdk_pulls_through_a_helm_proxy,
    r_installs_through_a_cran_proxy,
    opm_client_requests_through_an_opm_proxy,
    apt_get_through_a_debian_proxy,
    dnf_through_an_rpm_proxy,
);

/// Sets the metadata interval of the Harness UPSTREAM `id` of account `acme` (reading as the
/// upstream's user `mirror`) to one second.
async fn short_interval(s: &Server, id: &str, password: &str) {
    let (st, v) = call(s.put(
        &format!("/har/api/v1/registry/acme/{id}/+"),
        json!({"config": {"type": "UPSTREAM", "metadataCacheTTL": 1, "authType": "UserPassword",
                          "auth": {"userName": "mirror", "password": password}}}),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
}

/// Turns on `isOffline` of the Harness UPSTREAM `id` of account `acme` (as in [`short_interval`]).
async fn harness_offline(s: &Server, id: &str, password: &str) {
    let (st, v) = call(s.put(
        &format!("/har/api/v1/registry/acme/{id}/+"),
        json!({"config": {"type": "UPSTREAM", "isOffline": true, "authType": "UserPassword",
                          "auth": {"userName": "mirror", "password": password}}}),
    ))
    .await;
    assert_eq!(st, 200, "{v}");
}

/// Turns on `isOffline` of the GitFlic proxy titled `title` in company `acme`.
async fn gitflic_offline(s: &Server, title: &str) {
    let auth = format!("token {}", s.token);
    let (st, v) = call(
        s.client
            .get(s.url("/registry/company/acme/repositories"))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let id = v["_embedded"]
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|l| l.as_array())
        .and_then(|l| l.iter().find(|r| r["title"] == title))
        .and_then(|r| r["repositoryUuid"].as_str())
        .unwrap()
        .to_string();
    let (st, v) = call(
        s.client
            .put(s.url(&format!("/registry/company/acme/repositories/{id}")))
            .header("authorization", &auth)
            .json(&json!({"type": "PROXY", "proxySettings": {"isOffline": true}})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
}

fn helm_python(w: &std::path::Path, script: &str) -> crate::common::Run {
    run(tools().join("py/bin/python"), &["-c", script], w, &[])
}

/// Helm's SDK (the helm_python binding; there is no helm CLI here) reads the index of a Helm
/// proxy whose upstream index uses relative chart URLs and names a chart on another origin, and
/// pulls both charts; every chart is verified against its `digest` (a wrong one is refused and
/// not kept). Offline, nothing reaches the upstream; with the upstream gone, the charts are
/// pulled again from the cache.
async fn helm_sdk_pulls_through_a_helm_proxy(b: Backend) {
    use sha2::Digest;
    let up = Stub::start().await;
    let releases = Stub::start().await;
    let s = Server::start(b).await;
    let w = s.dir.path().join("helm");
    std::fs::create_dir_all(&w).unwrap();
    let out = helm_python(
        &w,
        "import helm_python as helm\n\
        helm.Chart.create('hellochart', '.')\n\
        print(helm.package('hellochart', destination='pkgs'))\n\
        helm.Chart.create('other', '.')\n\
        print(helm.package('other', destination='pkgs', version='1.0.0'))\n",
    );
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let hello = std::fs::read(w.join("pkgs/hellochart-0.1.0.tgz")).unwrap();
    let other = std::fs::read(w.join("pkgs/other-1.0.0.tgz")).unwrap();
    let sha = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    let index = format!(
        "apiVersion: v1\nentries:\n  hellochart:\n  - apiVersion: v2\n    name: hellochart\n    version: 0.1.0\n    \
         description: relative\n    digest: {}\n    created: \"2026-01-01T00:00:00Z\"\n    urls:\n    - charts/hellochart-0.1.0.tgz\n  \
         other:\n  - apiVersion: v2\n    name: other\n    version: 1.0.0\n    digest: {}\n    urls:\n    - {}/releases/other-1.0.0.tgz\n  \
         broken:\n  - apiVersion: v2\n    name: broken\n    version: 1.0.0\n    digest: \"{}\"\n    urls:\n    - charts/broken-1.0.0.tgz\n\
         generated: \"2026-01-01T00:00:00Z\"\n",
        sha(&hello),
        sha(&other),
        releases.base,
        "0".repeat(64)
    );
    up.set(
        "/repo/index.yaml",
        Reply::Ok(index.into_bytes(), "application/yaml"),
    );
    up.set(
        "/repo/charts/hellochart-0.1.0.tgz",
        Reply::Ok(hello.clone(), "application/gzip"),
    );
    up.set(
        "/repo/charts/broken-1.0.0.tgz",
        Reply::Ok(b"not the chart".to_vec(), "application/gzip"),
    );
    releases.set(
        "/releases/other-1.0.0.tgz",
        Reply::Ok(other.clone(), "application/gzip"),
    );
    gitflic_proxy(
        &s,
        "helmproxy",
        "helm",
        &format!("{}/repo", up.base),
        "mirror",
        "secret",
        0,
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "default/acme");
    let url = s.url("/pkg/default/acme/-/helmproxy/helm");
    let pull = |dest: &str| {
        let script = format!(
            "import helm_python as helm, json\n\
             idx = helm.repo_index('{url}', username='ro', password='{ro}')\n\
             print(json.dumps({{n: [[e['version'], e['digest'], e['urls'][0]] for e in v] for n, v in idx['entries'].items()}}))\n\
             helm.pull('hellochart', repo_url='{url}', version='0.1.0', destination='{dest}', username='ro', password='{ro}')\n\
             helm.pull('other', repo_url='{url}', version='1.0.0', destination='{dest}', username='ro', password='{ro}')\n"
        );
        let out = helm_python(&w, &script);
        assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
        assert_eq!(
            std::fs::read(w.join(dest).join("hellochart-0.1.0.tgz")).unwrap(),
            hello
        );
        assert_eq!(
            std::fs::read(w.join(dest).join("other-1.0.0.tgz")).unwrap(),
            other
        );
        serde_json::from_str::<Value>(out.stdout.lines().next().unwrap()).unwrap()
    };
    std::fs::create_dir_all(w.join("out")).unwrap();
    let entries = pull("out");
    // Every URL is Arca's, whatever the upstream wrote; the rest of each entry as it came.
    for (name, versions) in entries.as_object().unwrap() {
        let u = versions[0][2].as_str().unwrap();
        assert_eq!(
            u,
            format!(
                "{url}/charts/{name}-{}.tgz",
                versions[0][0].as_str().unwrap()
            )
        );
    }
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/helmproxy/helm/index.yaml",
    )
    .await;
    assert_eq!(st, 200);
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(
        !text.contains(&up.base) && !text.contains(&releases.base),
        "{text}"
    );
    assert!(text.contains("description: relative"), "{text}");
    // The index goes gzip-compressed to a client that accepts it; the upstream's index was
    // revalidated (304), not fetched again.
    let r = s
        .client
        .get(s.url("/pkg/default/acme/-/helmproxy/helm/index.yaml"))
        .basic_auth("ro", Some(&ro))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    let gz = r.bytes().await.unwrap();
    let mut unzipped = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped)
        .unwrap();
    assert_eq!(unzipped, text);
    assert!(gz.len() < body.len());
    assert!(
        up.not_modified("/repo/index.yaml") >= 2,
        "revalidated, not refetched"
    );
    assert_eq!(
        up.hits("/repo/index.yaml") - up.not_modified("/repo/index.yaml"),
        1
    );
    // A chart that does not match its digest: 502, nothing kept, asked again next time.
    for round in 1..=2 {
        let (st, _, _) = read(
            &s,
            "ro",
            &ro,
            "/pkg/default/acme/-/helmproxy/helm/charts/broken-1.0.0.tgz",
        )
        .await;
        assert_eq!(st, 502);
        assert_eq!(up.hits("/repo/charts/broken-1.0.0.tgz"), round);
    }
    // The index was revalidated (interval 0), the charts fetched once.
    assert_eq!(up.hits("/repo/charts/hellochart-0.1.0.tgz"), 1);
    assert_eq!(releases.hits("/releases/other-1.0.0.tgz"), 1);

    // Offline: served from the cache without a single upstream request.
    gitflic_offline(&s, "helmproxy").await;
    let before = up.total() + releases.total();
    std::fs::create_dir_all(w.join("offline")).unwrap();
    pull("offline");
    let (st, _, _) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/helmproxy/helm/charts/broken-1.0.0.tgz",
    )
    .await;
    assert_eq!(st, 404);
    assert_eq!(
        up.total() + releases.total(),
        before,
        "offline: no upstream request"
    );
}

/// R `install.packages` through a CRAN proxy (Harness UPSTREAM) pulls a package and its
/// dependency; an archived version (only under `Archive/` upstream) installs through the proxy
/// too; with the upstream gone, a fresh library installs again from the cache.
async fn r_installs_through_a_cran_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "cran", "packageType": "CRAN", "parentRef": "acme"}),
        )
        .await;
    let w = upstream.dir.path().join("r");
    std::fs::create_dir_all(&w).unwrap();
    let greetr = build_package(
        &w,
        "greetr",
        "1.0.0",
        "",
        "greet <- function(who) paste(\"hello\", who)\n",
    );
    let hellor1 = build_package(
        &w,
        "hellor",
        "0.1.0",
        "greetr",
        "hello <- function() greet(\"old\")\n",
    );
    std::fs::remove_dir_all(w.join("src/hellor")).unwrap();
    let hellor2 = build_package(
        &w,
        "hellor",
        "0.2.0",
        "greetr (>= 1.0.0)",
        "hello <- function() greet(\"from hellor\")\n",
    );
    for (file, body) in [
        ("greetr_1.0.0.tar.gz", &greetr),
        ("hellor_0.1.0.tar.gz", &hellor1),
        ("hellor_0.2.0.tar.gz", &hellor2),
    ] {
        let (st, v) = cran_put(&upstream, &upstream.token, file, body.clone()).await;
        assert_eq!(st, 201, "{file}: {v}");
    }
    let mirror = upstream.user_with_role("mirror", "reader", "acme");

    let s = Server::start(b).await;
    harness_upstream(
        &s,
        "cranproxy",
        "CRAN",
        &upstream.url("/pkg/acme/cran/cran"),
        &mirror,
    )
    .await;
    short_interval(&s, "cranproxy", &mirror).await;
    let ro = s.user_with_role("ro", "reader", "acme");
    let host = s
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let repo = format!("http://ro:{ro}@{host}/pkg/acme/cranproxy/cran");
    let work = s.dir.path().join("r");
    let install = |lib: &str| {
        std::fs::create_dir_all(work.join(lib)).unwrap();
        let script = format!(
            ".libPaths(c(normalizePath('{lib}'), .libPaths()))\n\
             options(repos = c(arca = '{repo}'))\n\
             install.packages('hellor', lib = '{lib}', quiet = TRUE)\n\
             library(hellor, lib.loc = '{lib}')\n\
             cat('RESULT:', hello(), '\\n')\n"
        );
        let out = run("Rscript", &["-e", &script], &work, &[]);
        assert!(
            out.stdout.contains("RESULT: hello from hellor"),
            "{}\n{}",
            out.stdout,
            out.stderr
        );
        assert!(
            work.join(lib).join("greetr").is_dir(),
            "the dependency came through the proxy"
        );
    };
    std::fs::create_dir_all(&work).unwrap();
    install("lib");
    // An archived version, by its Archive URL, through the proxy.
    std::fs::create_dir_all(work.join("old")).unwrap();
    let script = format!(
        ".libPaths(c(normalizePath('old'), normalizePath('lib'), .libPaths()))\n\
         download.file('{repo}/src/contrib/Archive/hellor/hellor_0.1.0.tar.gz', 'hellor_0.1.0.tar.gz', quiet = TRUE)\n\
         install.packages('hellor_0.1.0.tar.gz', repos = NULL, type = 'source', lib = 'old', quiet = TRUE)\n\
         library(hellor, lib.loc = 'old')\n\
         cat('RESULT:', hello(), '\\n')\n"
    );
    let out = run("Rscript", &["-e", &script], &work, &[]);
    assert!(
        out.stdout.contains("RESULT: hello old"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    // PACKAGES relays the upstream's stanzas; no upstream address anywhere.
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/acme/cranproxy/cran/src/contrib/PACKAGES",
    )
    .await;
    assert_eq!(st, 200);
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(text.contains("Package: hellor\nVersion: 0.2.0"), "{text}");

    // Past the interval, the upstream gone (its address refusing connections, counted): a fresh
    // library installs from the cache, the stored PACKAGES served stale.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    upstream.stop();
    let dead = Dead::at(&upstream.base).await;
    install("again");
    let (st, cache, again) = read(
        &s,
        "ro",
        &ro,
        "/pkg/acme/cranproxy/cran/src/contrib/PACKAGES",
    )
    .await;
    assert_eq!(
        (
            st,
            cache.as_deref(),
            String::from_utf8_lossy(&again).to_string()
        ),
        (200, Some("STALE"), text)
    );
    assert!(dead.count() > 0, "the stale path asked the upstream first");
    harness_offline(&s, "cranproxy", &mirror).await;
    dead.reset();
    install("isoffline");
    assert_eq!(dead.count(), 0, "offline: no upstream connection");
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/acme/cranproxy/cran/src/contrib/Archive/hellor/hellor_0.1.0.tar.gz",
    )
    .await;
    assert_eq!((st, body), (200, hellor1));
}

/// The opm client's requests through an OPM proxy (GitFlic PROXY, metadata revalidated on every
/// request): `list.txt`, the latest package by `<name>/<name>.ospx` (a version published upstream
/// shows at once), a version by `<name>/<name>-<version>.ospx`, each byte for byte; with the
/// upstream gone, what was fetched is served from the cache.
async fn opm_client_requests_through_an_opm_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "opm", "packageType": "OPM", "parentRef": "acme"}),
        )
        .await;
    let (v1, v2, v3) = (
        ospx("gitrunner", "1.6.0", true),
        ospx("gitrunner", "1.10.0", true),
        ospx("gitrunner", "1.11.0", true),
    );
    for (file, body) in [
        ("gitrunner-1.6.0.ospx", &v1),
        ("gitrunner-1.10.0.ospx", &v2),
    ] {
        let (st, msg) = opm_push(
            &upstream,
            Some(&upstream.token),
            file,
            "stable",
            body.clone(),
        )
        .await;
        assert_eq!(st, 200, "{msg}");
    }
    let mirror = upstream.user_with_role("mirror", "reader", "acme");
    let s = Server::start(b).await;
    gitflic_proxy(
        &s,
        "opmproxy",
        "opm",
        &upstream.url("/pkg/acme/opm/opm"),
        "mirror",
        &mirror,
        0,
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "default/acme");
    let root = "/pkg/default/acme/-/opmproxy/opm";
    let get = |path: String| {
        let s = &s;
        let ro = ro.clone();
        async move { read(s, "ro", &ro, &format!("{root}/{path}")).await }
    };
    let (st, _, list) = get("list.txt".into()).await;
    assert_eq!(
        (st, String::from_utf8_lossy(&list).trim()),
        (200, "gitrunner")
    );
    let (st, _, latest) = get("gitrunner/gitrunner.ospx".into()).await;
    assert_eq!(
        (st, latest == v2),
        (200, true),
        "the latest is 1.10.0 (numeric order)"
    );
    let (st, _, old) = get("gitrunner/gitrunner-1.6.0.ospx".into()).await;
    assert_eq!((st, old == v1), (200, true));
    // Published upstream a moment ago: the latest follows at once (interval 0).
    let (st, msg) = opm_push(
        &upstream,
        Some(&upstream.token),
        "gitrunner-1.11.0.ospx",
        "stable",
        v3.clone(),
    )
    .await;
    assert_eq!(st, 200, "{msg}");
    let (st, _, latest) = get("gitrunner/gitrunner.ospx".into()).await;
    assert_eq!((st, latest == v3), (200, true));

    upstream.stop();
    let (st, cache, list) = get("list.txt".into()).await;
    assert_eq!(
        (st, cache.as_deref(), String::from_utf8_lossy(&list).trim()),
        (200, Some("STALE"), "gitrunner")
    );
    let (st, cache, latest) = get("gitrunner/gitrunner.ospx".into()).await;
    assert_eq!(
        (st, cache.as_deref(), latest == v3),
        (200, Some("STALE"), true)
    );
    let (st, _, old) = get("gitrunner/gitrunner-1.6.0.ospx".into()).await;
    assert_eq!((st, old == v1), (200, true), "from the cache");
    let (st, _, _) = get("gitrunner/gitrunner-1.10.0.ospx".into()).await;
    assert_eq!(st, 502, "never fetched, upstream gone: a gateway error");
}

/// apt-get update and install through a Debian proxy (metadata revalidated on every request),
/// trusting only the upstream's key (no warnings: every file is the upstream's, byte for byte);
/// the upstream republishes and apt updates again without a hash mismatch; with the upstream
/// gone, a fresh apt updates and downloads from the cache.
async fn apt_get_through_a_debian_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "deb", "packageType": "DEBIAN", "parentRef": "acme"}),
        )
        .await;
    let w = upstream.dir.path().join("debs");
    std::fs::create_dir_all(&w).unwrap();
    let lib = build_deb(&w, "hello-lib", "1.0.0", None);
    let app = build_deb(&w, "hello-app", "2.0.0", Some("hello-lib (>= 1.0)"));
    for f in [&lib, &app] {
        let name = f.file_name().unwrap().to_str().unwrap();
        let (st, msg) = put_deb(
            &upstream,
            &upstream.token,
            name,
            std::fs::read(f).unwrap(),
            "",
        )
        .await;
        assert_eq!(st, 201, "{msg}");
    }
    let mirror = upstream.user_with_role("mirror", "reader", "acme");
    // The user trusts the upstream's key, as published by the upstream itself.
    let armored = upstream
        .get("/pkg/acme/deb/debian/public.key")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let s = Server::start(b).await;
    let key = s.dir.path().join("upstream.asc");
    std::fs::write(&key, &armored).unwrap();
    gitflic_proxy(
        &s,
        "debproxy",
        "debian",
        &upstream.url("/pkg/acme/deb/debian"),
        "mirror",
        &mirror,
        0,
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "default/acme");
    let root = s.url("/pkg/default/acme/-/debproxy/debian/");
    let clean = |r: &crate::common::Run| {
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            r.ok && !all.contains("W:")
                && !all.contains("E:")
                && !all.contains("Hash Sum")
                && !all.contains("unexpected size"),
            "{all}"
        );
    };
    let apt = Apt::for_root(&s, "apt-proxy", &root, "ro", &ro, &key);
    clean(&apt.run(&["update"]));
    clean(&apt.run(&["install", "-y", "--download-only", "hello-app"]));
    assert_eq!(
        std::fs::read(apt.dir.join("cache/archives/hello-lib_1.0.0_all.deb")).unwrap(),
        std::fs::read(&lib).unwrap(),
        "byte for byte"
    );
    // The upstream republishes: a new Release generation, read consistently.
    let lib2 = build_deb(&w, "hello-lib", "1.1.0", None);
    let (st, msg) = put_deb(
        &upstream,
        &upstream.token,
        "hello-lib_1.1.0_all.deb",
        std::fs::read(&lib2).unwrap(),
        "",
    )
    .await;
    assert_eq!(st, 201, "{msg}");
    clean(&apt.run(&["update"]));
    clean(&apt.run(&["download", "hello-lib"]));
    assert_eq!(
        std::fs::read(apt.dir.join("out/hello-lib_1.1.0_all.deb")).unwrap(),
        std::fs::read(&lib2).unwrap()
    );
    // Release files are relayed as the upstream signed them.
    let (st, _, inrelease) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/debproxy/debian/dists/stable/InRelease",
    )
    .await;
    assert_eq!(st, 200);
    let up_inrelease = upstream
        .get("/pkg/acme/deb/debian/dists/stable/InRelease")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(inrelease, up_inrelease.to_vec());

    // A proxy given the upstream's key verifies InRelease with it and serves it as its
    // public.key (what its client setup points at); one given another key serves nothing signed.
    let stranger = s.dir.path().join("stranger.asc");
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "deb2", "packageType": "DEBIAN", "parentRef": "acme"}),
        )
        .await;
    let other_key = upstream
        .get("/pkg/acme/deb2/debian/public.key")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(&stranger, &other_key).unwrap();
    for (name, given) in [("debkeyed", &armored), ("debwrong", &other_key)] {
        let (st, v) = call(
            s.client
                .post(s.url("/registry/company/acme/repositories"))
                .header("authorization", format!("token {}", s.token))
                .json(&json!({"type": "PROXY", "repositoryName": name, "packageType": "debian",
                    "proxySettings": {"url": upstream.url("/pkg/acme/deb/debian"), "username": "mirror",
                        "token": mirror, "isCaching": true, "metadataRetrievalIntervalSeconds": 0,
                        "upstreamPublicKey": given}})),
        )
        .await;
        assert_eq!(st, 201, "{v}");
        // The key reads back in the other dialect too.
        let (_, h) = call(s.get(&format!("/har/api/v1/registry/default/acme/{name}/+"))).await;
        assert_eq!(
            h["data"]["config"]["upstreamPublicKey"].as_str(),
            Some(given.trim()),
            "{h}"
        );
    }
    let (st, _, served_key) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/debkeyed/debian/public.key",
    )
    .await;
    assert_eq!(
        (st, String::from_utf8_lossy(&served_key).trim()),
        (200, armored.trim())
    );
    let keyed = Apt::for_root(
        &s,
        "apt-keyed",
        &s.url("/pkg/default/acme/-/debkeyed/debian/"),
        "ro",
        &ro,
        &key,
    );
    clean(&keyed.run(&["update"]));
    let (st, _, _) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/debwrong/debian/dists/stable/InRelease",
    )
    .await;
    assert_eq!(
        st, 502,
        "a release not signed by the configured key is not served"
    );
    let (st, _) = call(
        s.client
            .post(s.url("/registry/company/acme/repositories"))
            .header("authorization", format!("token {}", s.token))
            .json(&json!({"type": "PROXY", "repositoryName": "debbad", "packageType": "debian",
                "proxySettings": {"url": upstream.url("/pkg/acme/deb/debian"), "upstreamPublicKey": "not a key"}})),
    )
    .await;
    assert_eq!(st, 400);

    upstream.stop();
    let offline = Apt::for_root(&s, "apt-offline", &root, "ro", &ro, &key);
    clean(&offline.run(&["update"]));
    clean(&offline.run(&["install", "-y", "--download-only", "hello-app"]));
    assert!(
        offline
            .dir
            .join("cache/archives/hello-app_2.0.0_all.deb")
            .exists()
    );
}

/// dnf makecache and install through an RPM proxy with `repo_gpgcheck=1` against the upstream's
/// key (repomd.xml and its signature relayed byte for byte); the upstream republishes and dnf
/// refreshes; with the upstream gone, a fresh installroot installs from the cache.
async fn dnf_through_an_rpm_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "rpm", "packageType": "RPM", "parentRef": "acme"}),
        )
        .await;
    let s = Server::start(b).await;
    let w = s.dir.path().join("rpm");
    let (gnupg, key_id, packager_key) = packager(&w);
    let lib = build_rpm(&w, &gnupg, &key_id, "hello-lib", "");
    let app = build_rpm(&w, &gnupg, &key_id, "hello-app", "hello-lib >= 1.0");
    for f in [&lib, &app] {
        let name = f.file_name().unwrap().to_str().unwrap();
        let (st, msg) = put_rpm(&upstream, &upstream.token, name, std::fs::read(f).unwrap()).await;
        assert_eq!(st, 201, "{msg}");
    }
    let mirror = upstream.user_with_role("mirror", "reader", "acme");
    // The upstream's key, as the upstream publishes it: the only repository key dnf trusts.
    let armored = upstream
        .get("/pkg/acme/rpm/rpm/public.key")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The proxy is given the upstream's key: it verifies repomd.xml with it and serves it as its
    // own public.key, which the client then trusts.
    let (st, v) = call(
        s.client
            .post(s.url("/registry/company/acme/repositories"))
            .header("authorization", format!("token {}", s.token))
            .json(
                &json!({"type": "PROXY", "repositoryName": "rpmproxy", "packageType": "rpm",
                "proxySettings": {"url": upstream.url("/pkg/acme/rpm/rpm"), "username": "mirror",
                    "token": mirror, "isCaching": true, "metadataRetrievalIntervalSeconds": 0,
                    "upstreamPublicKey": armored}}),
            ),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let ro = s.user_with_role("ro", "reader", "default/acme");
    let (st, _, served_key) =
        read(&s, "ro", &ro, "/pkg/default/acme/-/rpmproxy/rpm/public.key").await;
    assert_eq!(
        (st, String::from_utf8_lossy(&served_key).trim()),
        (200, armored.trim())
    );
    let upstream_key = w.join("RPM-GPG-KEY-upstream");
    std::fs::write(&upstream_key, &served_key).unwrap();
    let keys = format!(
        "file://{} file://{}",
        packager_key.display(),
        upstream_key.display()
    );
    let url = s.url("/pkg/default/acme/-/rpmproxy/rpm/");
    let ok = |r: crate::common::Run, what: &str| {
        assert!(r.ok, "dnf {what}:\n{}\n{}", r.stdout, r.stderr)
    };
    ok(
        dnf(&w, "root", &url, "ro", &ro, &keys, &["makecache"]),
        "makecache",
    );
    ok(
        dnf(
            &w,
            "root",
            &url,
            "ro",
            &ro,
            &keys,
            &["install", "hello-app"],
        ),
        "install",
    );
    assert!(
        w.join("root/usr/share/hello-lib/README").exists(),
        "dependency installed"
    );
    let (st, _, repomd) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/rpmproxy/rpm/repodata/repomd.xml",
    )
    .await;
    assert_eq!(st, 200);
    let up_repomd = upstream
        .get("/pkg/acme/rpm/rpm/repodata/repomd.xml")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(repomd, up_repomd.to_vec(), "byte for byte");

    // The upstream republishes (a new package): dnf refreshes through the proxy.
    std::fs::remove_dir_all(w.join("rpmbuild")).unwrap();
    let extra = build_rpm(&w, &gnupg, &key_id, "hello-extra", "");
    let (st, msg) = put_rpm(
        &upstream,
        &upstream.token,
        "hello-extra-1.0-1.noarch.rpm",
        std::fs::read(&extra).unwrap(),
    )
    .await;
    assert_eq!(st, 201, "{msg}");
    ok(
        dnf(
            &w,
            "root",
            &url,
            "ro",
            &ro,
            &keys,
            &["--refresh", "install", "hello-extra"],
        ),
        "refresh + install",
    );

    upstream.stop();
    ok(
        dnf(
            &w,
            "root2",
            &url,
            "ro",
            &ro,
            &keys,
            &["install", "hello-app"],
        ),
        "install from the cache",
    );
    assert!(w.join("root2/usr/share/hello-app/README").exists());
}

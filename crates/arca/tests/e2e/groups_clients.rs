//! The real clients through a group of two LOCALs and one PROXY (upstream = a second `arca`), the
//! same package name in several members, for Composer, NuGet.exe, R, skopeo and the OPM client's
//! requests: the client installs through the group and gets the merged result (a name the LOCALs
//! hold hides the upstream's versions of it), a name only the upstream has comes through the
//! proxy, and a publish to a member is installed at once. SQLite only (the merge and the guard
//! run on both backends in `groups2.rs`).

use serde_json::{Value, json};

use crate::common::{Backend, Server, run};
use crate::composer::{composer, upload as composer_upload};
use crate::cran::{build_package, put as cran_put};
use crate::groups::{get, group, hosted, set_virtual, upstream};
use crate::groups2::{composer_package, nuget_package, publish};
use crate::nuget::{NugetExe, push_raw};
use crate::oci::{host, layout_digest, ok, skopeo, umoci_image};
use crate::opm::{ospx, push as opm_push};

/// An upstream `arca` with one registry `id` of `package_type` in `acme`, and the password of
/// its reader `mirror`.
async fn upstream_server(id: &str, package_type: &str) -> (Server, String) {
    let up = Server::start(Backend::Sqlite).await;
    up.harness_registry(
        "acme",
        json!({"identifier": id, "packageType": package_type, "parentRef": "acme"}),
    )
    .await;
    let mirror = up.user_with_role("mirror", "reader", "acme");
    (up, mirror)
}

/// `composer require` through the group: `acme/shared` is held by both LOCALs (1.0.0, 2.0.0) and
/// the upstream (3.0.0, hidden); `acme/only-up` only upstream. A version published into a member
/// is what `composer update` takes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composer_through_a_group_with_a_proxy_member() {
    let (up, mirror) = upstream_server("php", "COMPOSER").await;
    for (name, version) in [("acme/shared", "3.0.0"), ("acme/only-up", "1.0.0")] {
        let (st, v) = composer_upload(
            &up,
            &up.token,
            &format!("{}-{version}.zip", name.replace('/', "-")),
            composer_package(name, version),
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }
    let s = Server::start(Backend::Sqlite).await;
    let a = hosted(&s, "php-a", "COMPOSER").await;
    let b = hosted(&s, "php-b", "COMPOSER").await;
    let p = upstream(
        &s,
        "php-up",
        "COMPOSER",
        &up.url("/pkg/acme/php/composer"),
        &mirror,
    )
    .await;
    let g = group(
        &s,
        "php-all",
        "composer",
        &[&a, &b, &p],
        Some(&a),
        json!({}),
    )
    .await;
    let put = |reg: &'static str, version: &'static str| {
        let s = &s;
        async move {
            publish(
                s,
                reg,
                "composer",
                &format!("acme-shared-{version}.zip"),
                composer_package("acme/shared", version),
            )
            .await
        }
    };
    put("php-a", "1.0.0").await;
    put("php-b", "2.0.0").await;

    let root = s.url("/pkg/default/php-all/composer");
    let host = root.split('/').nth(2).unwrap().to_string();
    let home = s.dir.path().join("php");
    let project = home.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("composer.json"),
        json!({"repositories": [{"type": "composer", "url": root}, {"packagist.org": false}],
               "config": {"secure-http": false}, "minimum-stability": "stable"})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        project.join("auth.json"),
        json!({"http-basic": {host: {"username": "u", "password": s.token}}}).to_string(),
    )
    .unwrap();
    let php = |expr: &str| {
        let out = run(
            "php",
            &[
                "-r",
                &format!("require \"vendor/autoload.php\"; echo {expr};"),
            ],
            &project,
            &[],
        );
        out.stdout
    };
    let r = composer(&project, &home, &["require", "acme/shared", "acme/only-up"]);
    assert!(r.ok, "composer require:\n{}\n{}", r.stdout, r.stderr);
    assert_eq!(php(r"\Acme\Shared\AcmeShared::v()"), "acme/shared 2.0.0");
    assert_eq!(php(r"\Acme\Onlyup\AcmeOnlyup::v()"), "acme/only-up 1.0.0");

    // The merged p2 file: both LOCALs' versions, not the upstream's.
    let r = get(&s, "/pkg/default/php-all/composer/p2/acme/shared.json").await;
    assert_eq!(r.headers()["x-arca-served-by"], "php-a, php-b");
    let v: Value = r.json().await.unwrap();
    let mut versions: Vec<&str> = v["packages"]["acme/shared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_str().unwrap())
        .collect();
    versions.sort();
    assert_eq!(versions, ["1.0.0", "2.0.0"], "{v}");

    // Published into a member: `composer update` takes it at once.
    put("php-b", "2.1.0").await;
    let r = composer(&project, &home, &["update", "acme/shared"]);
    assert!(r.ok, "composer update:\n{}\n{}", r.stdout, r.stderr);
    assert_eq!(php(r"\Acme\Shared\AcmeShared::v()"), "acme/shared 2.1.0");

    // Allow-listed, the upstream's 3.0.0 is listed and installs through the group.
    set_virtual(
        &s,
        &g,
        json!({"dependencyConfusionAllowList": ["acme/shared"], "allowRemoteProxying": true}),
    )
    .await;
    let r = get(&s, "/pkg/default/php-all/composer/p2/acme/shared.json").await;
    let served = r.headers()["x-arca-served-by"]
        .to_str()
        .unwrap()
        .to_string();
    let v: Value = r.json().await.unwrap();
    assert!(v.to_string().contains("\"3.0.0\""), "{v}");
    assert_eq!(served, "php-a, php-b, php-up");
    // (`composer require` wrote `^2.0`: ask for the new major.)
    let r = composer(&project, &home, &["require", "acme/shared:^3.0"]);
    assert!(r.ok, "composer update:\n{}\n{}", r.stdout, r.stderr);
    assert_eq!(php(r"\Acme\Shared\AcmeShared::v()"), "acme/shared 3.0.0");
}

/// NuGet.exe through the group: `Shared.Lib` 1.0.0 (LOCAL a), 2.0.0 (LOCAL b), 3.0.0 (upstream,
/// hidden); `Only.Up` upstream only. The flat container and the registration index list the
/// merged versions with counts and bounds recomputed; a push through the group lands in the
/// deployment member and installs at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nuget_exe_through_a_group_with_a_proxy_member() {
    let (up, mirror) = upstream_server("nu", "NUGET").await;
    let w = up.dir.path().join("pkgs");
    for (id, v) in [("Shared.Lib", "3.0.0"), ("Only.Up", "1.0.0")] {
        let (st, body) = push_raw(&up, &up.token, nuget_package(&w, id, v)).await;
        assert_eq!(st, 201, "{body}");
    }
    let s = Server::start(Backend::Sqlite).await;
    let a = hosted(&s, "nu-a", "NUGET").await;
    let b = hosted(&s, "nu-b", "NUGET").await;
    let p = upstream(
        &s,
        "nu-up",
        "NUGET",
        &up.url("/pkg/acme/nu/nuget/index.json"),
        &mirror,
    )
    .await;
    group(&s, "nu-all", "nuget", &[&a, &b, &p], Some(&a), json!({})).await;
    let w = s.dir.path().join("pkgs");
    publish(
        &s,
        "nu-a",
        "nuget",
        "",
        nuget_package(&w, "Shared.Lib", "1.0.0"),
    )
    .await;
    publish(
        &s,
        "nu-b",
        "nuget",
        "",
        nuget_package(&w, "Shared.Lib", "2.0.0"),
    )
    .await;

    let (st, v) =
        crate::common::call(s.get("/pkg/default/nu-all/nuget/package/shared.lib/index.json")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["versions"], json!(["1.0.0", "2.0.0"]), "{v}");
    let (st, v) =
        crate::common::call(s.get("/pkg/default/nu-all/nuget/registration/shared.lib/index.json"))
            .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["count"], 1, "{v}");
    let page = &v["items"][0];
    assert_eq!(
        (&page["count"], &page["lower"], &page["upper"]),
        (&json!(2), &json!("1.0.0"), &json!("2.0.0")),
        "{v}"
    );

    let source = s.url("/pkg/default/nu-all/nuget/index.json");
    let install = |tag: &str, id: &str| {
        let client = NugetExe::for_source(&s, tag, &source, "u", &s.token);
        client.ok(&["install", id, "-Source", "arca", "-OutputDirectory", "pkgs"]);
        let mut got: Vec<String> = std::fs::read_dir(client.home.join("pkgs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        got.sort();
        got
    };
    let r = get(&s, "/pkg/default/nu-all/nuget/package/only.up/index.json").await;
    assert_eq!(r.headers()["x-arca-served-by"], "nu-up");
    let r = get(
        &s,
        "/pkg/default/nu-all/nuget/registration/only.up/index.json",
    )
    .await;
    assert_eq!(r.headers()["x-arca-served-by"], "nu-up");
    assert_eq!(install("one", "Shared.Lib"), ["Shared.Lib.2.0.0"]);
    assert_eq!(install("two", "Only.Up"), ["Only.Up.1.0.0"]);

    // Pushed through the group (into nu-a), installed at once.
    let client = NugetExe::for_source(&s, "push", &source, "u", &s.token);
    let pkg = w.join("Shared.Lib.2.1.0.nupkg");
    std::fs::write(&pkg, nuget_package(&w, "Shared.Lib", "2.1.0")).unwrap();
    client.ok(&[
        "push",
        pkg.to_str().unwrap(),
        "-Source",
        "arca",
        "-ApiKey",
        &s.token,
    ]);
    let r = get(&s, "/pkg/default/nu-a/nuget/package/shared.lib/index.json").await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["versions"], json!(["1.0.0", "2.1.0"]), "{v}");
    assert_eq!(install("three", "Shared.Lib"), ["Shared.Lib.2.1.0"]);
}

/// R `install.packages` through the group: `sharedr` is in LOCAL a (1.0), LOCAL b (2.0) and the
/// upstream (3.0): PACKAGES takes the first member's stanza, so R installs a's 1.0; `onlyr` comes
/// from the upstream. A newer version published into a is installed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_through_a_group_with_a_proxy_member() {
    let (up, mirror) = upstream_server("cran", "CRAN").await;
    let w = up.dir.path().join("r");
    let build = |w: &std::path::Path, name: &str, version: &str| {
        let dir = w.join(format!("{name}-{version}"));
        std::fs::create_dir_all(&dir).unwrap();
        build_package(
            &dir,
            name,
            version,
            "",
            &format!("which <- function() \"{name} {version}\"\n"),
        )
    };
    for (name, version) in [("sharedr", "3.0"), ("onlyr", "1.0")] {
        let (st, v) = cran_put(
            &up,
            &up.token,
            &format!("{name}_{version}.tar.gz"),
            build(&w, name, version),
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }
    let s = Server::start(Backend::Sqlite).await;
    let a = hosted(&s, "r-a", "CRAN").await;
    let b = hosted(&s, "r-b", "CRAN").await;
    let p = upstream(&s, "r-up", "CRAN", &up.url("/pkg/acme/cran/cran"), &mirror).await;
    group(&s, "r-all", "cran", &[&a, &b, &p], Some(&a), json!({})).await;
    let w = s.dir.path().join("r");
    for (reg, version) in [("r-a", "1.0"), ("r-b", "2.0")] {
        publish(
            &s,
            reg,
            "cran",
            &format!("sharedr_{version}.tar.gz"),
            build(&w, "sharedr", version),
        )
        .await;
    }
    let host = s.base.trim_start_matches("http://").to_string();
    let repo = format!("http://u:{}@{host}/pkg/default/r-all/cran", s.token);
    let install = |lib: &str, pkg: &str| -> String {
        std::fs::create_dir_all(w.join(lib)).unwrap();
        let script = format!(
            ".libPaths(c(normalizePath('{lib}'), .libPaths()))\n\
             options(repos = c(arca = '{repo}'))\n\
             install.packages('{pkg}', lib = '{lib}', quiet = TRUE)\n\
             library({pkg}, lib.loc = '{lib}')\n\
             cat('RESULT:', which(), '\\n')\n"
        );
        let out = run("Rscript", &["-e", &script], &w, &[]);
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT: "))
            .unwrap_or_else(|| panic!("{}\n{}", out.stdout, out.stderr))
            .trim()
            .to_string()
    };
    assert_eq!(install("lib1", "sharedr"), "sharedr 1.0");
    assert_eq!(install("lib1", "onlyr"), "onlyr 1.0");
    let r = get(&s, "/pkg/default/r-all/cran/src/contrib/PACKAGES").await;
    let text = r.text().await.unwrap();
    assert!(text.contains("Package: sharedr\nVersion: 1.0"), "{text}");
    assert!(!text.contains("Version: 3.0"), "{text}");
    assert!(text.contains("Package: onlyr\nVersion: 1.0"), "{text}");

    publish(
        &s,
        "r-a",
        "cran",
        "sharedr_1.5.tar.gz",
        build(&w, "sharedr", "1.5"),
    )
    .await;
    assert_eq!(install("lib2", "sharedr"), "sharedr 1.5");
}

/// skopeo through the group: image `shared` is in LOCAL a (tag v1), LOCAL b (tags v1, v2) and the
/// upstream (v1, v9: hidden); `only-up` is upstream only. A tag comes from the first member that
/// has it, the tag list is merged, a digest from any member; a push through the group lands in the
/// deployment member and pulls at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_through_a_group_with_a_proxy_member() {
    let (up, mirror) = upstream_server("up", "DOCKER").await;
    let s = Server::start(Backend::Sqlite).await;
    let w = s.dir.path().join("oci");
    std::fs::create_dir_all(&w).unwrap();
    for t in ["a1", "b1", "b2", "u1", "u9", "o1", "a3"] {
        umoci_image(&w, t, "amd64");
    }
    let copy = |src: &str, dst: &str, creds: &str| {
        ok(
            skopeo(
                &w,
                &[
                    "copy",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                    "--src-creds",
                    creds,
                    "--dest-creds",
                    creds,
                    src,
                    dst,
                ],
            ),
            &format!("skopeo copy {src} {dst}"),
        )
    };
    let up_creds = format!("admin:{}", up.token);
    let uh = host(&up);
    copy(
        "oci:layout:u1",
        &format!("docker://{uh}/acme/up/shared:v1"),
        &up_creds,
    );
    copy(
        "oci:layout:u9",
        &format!("docker://{uh}/acme/up/shared:v9"),
        &up_creds,
    );
    copy(
        "oci:layout:o1",
        &format!("docker://{uh}/acme/up/only-up:v1"),
        &up_creds,
    );

    let a = hosted(&s, "o-a", "DOCKER").await;
    let b = hosted(&s, "o-b", "DOCKER").await;
    let p = upstream(
        &s,
        "o-up",
        "DOCKER",
        &format!("{}/acme/up", up.url("").trim_end_matches('/')),
        &mirror,
    )
    .await;
    let g = group(&s, "o-all", "container", &[&a, &b, &p], Some(&a), json!({})).await;
    let creds = format!("admin:{}", s.token);
    let h = host(&s);
    copy(
        "oci:layout:a1",
        &format!("docker://{h}/default/o-a/shared:v1"),
        &creds,
    );
    copy(
        "oci:layout:b1",
        &format!("docker://{h}/default/o-b/shared:v1"),
        &creds,
    );
    copy(
        "oci:layout:b2",
        &format!("docker://{h}/default/o-b/shared:v2"),
        &creds,
    );

    let list = ok(
        skopeo(
            &w,
            &[
                "list-tags",
                "--tls-verify=false",
                "--creds",
                &creds,
                &format!("docker://{h}/default/o-all/shared"),
            ],
        ),
        "skopeo list-tags",
    );
    let tags: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(tags["Tags"], json!(["v1", "v2"]), "{tags}");
    let pull = |image: &str, dest: &str| {
        copy(
            &format!("docker://{h}/default/o-all/{image}"),
            &format!("oci:pulled:{dest}"),
            &creds,
        );
        layout_digest(&w.join("pulled"), dest)
    };
    let layout = |t: &str| layout_digest(&w.join("layout"), t);
    assert_eq!(
        pull("shared:v1", "s1"),
        layout("a1"),
        "the first member's v1"
    );
    assert_eq!(pull("shared:v2", "s2"), layout("b2"));
    assert_eq!(pull("only-up:v1", "o1"), layout("o1"), "through the proxy");
    // The upstream's shared:v9 is hidden (the LOCALs hold `shared`), by tag and by digest.
    let r = skopeo(
        &w,
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &creds,
            &format!("docker://{h}/default/o-all/shared:v9"),
        ],
    );
    assert!(
        !r.ok,
        "the upstream's shared:v9 must not be pulled through the group"
    );
    let r = s
        .client
        .get(s.url(&format!(
            "/v2/default/o-all/shared/manifests/{}",
            layout("u9")
        )))
        .basic_auth("admin", Some(&s.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A digest from any member: b's v1 by digest.
    let r = s
        .client
        .get(s.url(&format!(
            "/v2/default/o-all/shared/manifests/{}",
            layout("b1")
        )))
        .basic_auth("admin", Some(&s.token))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-arca-served-by"], "o-b");

    // Pushed through the group: into o-a, pulled at once.
    copy(
        "oci:layout:a3",
        &format!("docker://{h}/default/o-all/shared:v3"),
        &creds,
    );
    let r = get(&s, "/v2/default/o-a/shared/tags/list").await;
    let v: Value = r.json().await.unwrap();
    assert!(v["tags"].as_array().unwrap().contains(&json!("v3")), "{v}");
    assert_eq!(pull("shared:v3", "s3"), layout("a3"));

    // Allow-listed, the upstream's shared:v9 pulls through the group (from the proxy).
    set_virtual(
        &s,
        &g,
        json!({"dependencyConfusionAllowList": ["shared"], "allowRemoteProxying": true}),
    )
    .await;
    assert_eq!(pull("shared:v9", "s9"), layout("u9"));
    let r = s
        .client
        .head(s.url(&format!(
            "/v2/default/o-all/shared/manifests/{}",
            layout("u9")
        )))
        .basic_auth("admin", Some(&s.token))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-arca-served-by"], "o-up");
}

/// The OPM client's requests through the group: `list.txt` is the union of the members' (the
/// upstream's names included), `<name>/<name>.ospx` is the newest version the members hold of a
/// name the LOCALs own (not the upstream's newer one), a name only the upstream has comes through
/// the proxy; a push into a member shows at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opm_requests_through_a_group_with_a_proxy_member() {
    let (up, mirror) = upstream_server("opm", "OPM").await;
    let body = |name: &str, version: &str| ospx(name, version, true);
    let (shared9, only1) = (body("sharedx", "9.0.0"), body("onlyx", "1.0.0"));
    for (file, bytes) in [
        ("sharedx-9.0.0.ospx", &shared9),
        ("onlyx-1.0.0.ospx", &only1),
    ] {
        let (st, msg) = opm_push(&up, Some(&up.token), file, "stable", bytes.clone()).await;
        assert_eq!(st, 200, "{msg}");
    }
    let s = Server::start(Backend::Sqlite).await;
    let a = hosted(&s, "opm-a", "OPM").await;
    let b = hosted(&s, "opm-b", "OPM").await;
    let p = upstream(&s, "opm-up", "OPM", &up.url("/pkg/acme/opm/opm"), &mirror).await;
    group(&s, "opm-all", "opm", &[&a, &b, &p], Some(&a), json!({})).await;
    let (shared10, shared12, shared13) = (
        body("sharedx", "1.0.0"),
        body("sharedx", "1.2.0"),
        body("sharedx", "1.3.0"),
    );
    for (reg, file, bytes) in [
        ("opm-a", "sharedx-1.0.0.ospx", &shared10),
        ("opm-b", "sharedx-1.2.0.ospx", &shared12),
    ] {
        publish(&s, reg, "opm", file, bytes.clone()).await;
    }
    let fetch = |path: &'static str| {
        let s = &s;
        async move {
            let r = get(s, &format!("/pkg/default/opm-all/opm/{path}")).await;
            let st = r.status().as_u16();
            (st, r.bytes().await.unwrap().to_vec())
        }
    };
    let (st, list) = fetch("list.txt").await;
    assert_eq!(st, 200);
    let mut names: Vec<String> = String::from_utf8_lossy(&list)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, ["onlyx", "sharedx"]);
    let (st, latest) = fetch("sharedx/sharedx.ospx").await;
    assert_eq!((st, latest == shared12), (200, true));
    let (st, only) = fetch("onlyx/onlyx.ospx").await;
    assert_eq!((st, only == only1), (200, true));
    let (st, _) = fetch("sharedx/sharedx-9.0.0.ospx").await;
    assert_eq!(st, 404, "the upstream's sharedx 9.0.0 is hidden");
    publish(&s, "opm-a", "opm", "sharedx-1.3.0.ospx", shared13.clone()).await;
    let (st, latest) = fetch("sharedx/sharedx.ospx").await;
    assert_eq!((st, latest == shared13), (200, true));
}

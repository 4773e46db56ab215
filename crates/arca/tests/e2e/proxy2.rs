//! Pull-through proxies, part 2 (NuGet, Composer, Helm, CRAN, OPM) with their real clients where
//! the machine has them: the upstream is a second `arca` process (a private hosted registry, so
//! the proxy's own credentials are exercised) or the programmable stub, never the internet.

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call};
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

both_backends!(nuget_exe_installs_through_a_nuget_proxy);

//! apt-get through a Debian group of LOCAL members and a PROXY member (upstream = a second
//! `arca`): merged distributions signed by the group, a proxy's distribution passed through with
//! the upstream's signature, one proxy member per distribution, and the guard on pool downloads.
//! SQLite only.

use serde_json::{Value, json};

use crate::common::{Backend, Server};
use crate::groups::{get, group, hosted, set_virtual};

/// An upstream `arca` with one DEBIAN registry `deb` in `acme`, and its reader's password.
async fn upstream_server() -> (Server, String) {
    let up = Server::start(Backend::Sqlite).await;
    up.harness_registry(
        "acme",
        json!({"identifier": "deb", "packageType": "DEBIAN", "parentRef": "acme"}),
    )
    .await;
    let mirror = up.user_with_role("mirror", "reader", "acme");
    (up, mirror)
}

/// apt-get through a Debian group of two LOCALs and a PROXY that serves distribution `stable`:
/// `local` (held by the LOCALs) is merged and signed with the group's key, `stable` is passed
/// through from the proxy unmerged with the upstream's signature (InRelease byte for byte), and
/// apt trusts each with its own key. A second proxy member for the same distribution (declared,
/// or declaring none) is refused with 400 when the group is configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_get_through_a_debian_group_with_a_proxy_member() {
    use crate::debian::{Apt, build_deb, put_deb};
    let (up, mirror) = upstream_server().await;
    let w = up.dir.path().join("debs");
    std::fs::create_dir_all(&w).unwrap();
    let up_app = build_deb(&w, "up-app", "1.0.0", None);
    let (st, msg) = put_deb(
        &up,
        &up.token,
        "up-app_1.0.0_all.deb",
        std::fs::read(&up_app).unwrap(),
        "",
    )
    .await;
    assert_eq!(st, 201, "{msg}");
    let up_key = up
        .get("/pkg/acme/deb/debian/public.key")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let s = Server::start(Backend::Sqlite).await;
    let a = hosted(&s, "deb-a", "DEBIAN").await;
    let b = hosted(&s, "deb-b", "DEBIAN").await;
    let proxy = |id: &'static str, dists: Value| {
        let s = &s;
        let url = up.url("/pkg/acme/deb/debian");
        let mirror = mirror.clone();
        async move {
            s.harness_registry(
                "default",
                json!({"identifier": id, "packageType": "DEBIAN", "parentRef": "default",
                       "config": {"type": "UPSTREAM", "source": "Custom", "url": url, "metadataCacheTTL": 0,
                                  "distributions": dists, "authType": "UserPassword",
                                  "auth": {"userName": "mirror", "password": mirror}}}),
            )
            .await;
            crate::groups::uuid(s, id).await
        }
    };
    let p = proxy("deb-up", json!(["stable"])).await;
    let sw = s.dir.path().join("debs");
    std::fs::create_dir_all(&sw).unwrap();
    let tool = build_deb(&sw, "local-tool", "1.0.0", Some("local-lib"));
    let lib = build_deb(&sw, "local-lib", "2.0.0", None);
    for (reg, f) in [("deb-a", &tool), ("deb-b", &lib)] {
        let name = f.file_name().unwrap().to_str().unwrap();
        let r = s
            .client
            .put(s.url(&format!(
                "/pkg/default/{reg}/debian/{name}?distribution=local&component=main"
            )))
            .basic_auth("u", Some(&s.token))
            .body(std::fs::read(f).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let gid = group(&s, "deb-all", "debian", &[&a, &b, &p], None, json!({})).await;

    // One proxy member per distribution, checked when the group is configured.
    let any = proxy("deb-any", json!([])).await;
    let same = proxy("deb-same", json!(["stable", "extra"])).await;
    let other = proxy("deb-other", json!(["other"])).await;
    for bad in [&any, &same] {
        let (st, v) = crate::groups::gf(
            &s,
            reqwest::Method::POST,
            "/registry/instance/x/repositories",
            Some(
                json!({"type": "VIRTUAL", "repositoryName": "deb-bad", "packageType": "debian",
                        "virtualSettings": {"includedRepositoryUuids": [&a, &p, bad]}}),
            ),
        )
        .await;
        assert_eq!(st, 400, "{v}");
        assert!(
            v.to_string().contains("one proxy member per distribution"),
            "{v}"
        );
    }
    group(&s, "deb-two", "debian", &[&a, &p, &other], None, json!({})).await;
    // Nor may a member proxy take a distribution another member proxy serves later on.
    let (st, v) = crate::groups::gf(
        &s,
        reqwest::Method::PUT,
        &format!("/registry/instance/repositories/{other}"),
        Some(json!({"type": "PROXY", "proxySettings": {"distributions": ["stable"]}})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v.to_string().contains("one proxy member per distribution"),
        "{v}"
    );
    let (st, v) = crate::groups::gf(
        &s,
        reqwest::Method::PUT,
        &format!("/registry/instance/repositories/{other}"),
        Some(json!({"type": "PROXY", "proxySettings": {"distributions": ["other", "more"]}})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = crate::groups::gf(
        &s,
        reqwest::Method::GET,
        &format!("/registry/instance/x/repositories/{other}"),
        None,
    )
    .await;
    assert_eq!(
        v["proxySettings"]["distributions"],
        json!(["other", "more"]),
        "{v}"
    );
    let (_, h) = crate::common::call(s.get("/har/api/v1/registry/default/deb-other/+")).await;
    assert_eq!(
        h["data"]["config"]["distributions"],
        json!(["other", "more"]),
        "{h}"
    );

    let group_key = get(&s, "/pkg/default/deb-all/debian/public.key")
        .await
        .text()
        .await
        .unwrap();
    let keys = s.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("group.asc"), &group_key).unwrap();
    std::fs::write(keys.join("up.asc"), &up_key).unwrap();
    let root = s.url("/pkg/default/deb-all/debian/");
    let apt = Apt::for_root(
        &s,
        "apt-group",
        &root,
        "u",
        &s.token,
        &keys.join("group.asc"),
    );
    std::fs::write(
        apt.dir.join("sources.list"),
        format!(
            "deb [signed-by={}] {root} local main\ndeb [signed-by={}] {root} stable main\n",
            keys.join("group.asc").display(),
            keys.join("up.asc").display()
        ),
    )
    .unwrap();
    let clean = |r: &crate::common::Run| {
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            r.ok && !all.contains("W:") && !all.contains("E:") && !all.contains("Hash Sum"),
            "{all}"
        );
    };
    clean(&apt.run(&["update"]));
    clean(&apt.run(&["install", "-y", "--download-only", "local-tool", "up-app"]));
    for (file, want) in [
        ("local-tool_1.0.0_all.deb", &tool),
        ("local-lib_2.0.0_all.deb", &lib),
        ("up-app_1.0.0_all.deb", &up_app),
    ] {
        assert_eq!(
            std::fs::read(apt.dir.join("cache/archives").join(file)).unwrap(),
            std::fs::read(want).unwrap(),
            "{file}"
        );
    }
    // `stable` is the upstream's, as it signed it; `local` is the group's own.
    let through = get(&s, "/pkg/default/deb-all/debian/dists/stable/InRelease").await;
    assert_eq!(through.headers()["x-arca-served-by"], "deb-up");
    let upstream_release = up
        .get("/pkg/acme/deb/debian/dists/stable/InRelease")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(through.bytes().await.unwrap(), upstream_release);
    let local = get(&s, "/pkg/default/deb-all/debian/dists/local/Release")
        .await
        .text()
        .await
        .unwrap();
    assert!(!local.contains("up-app"), "{local}");
    let r = get(&s, "/pkg/default/deb-all/debian/dists/nowhere/InRelease").await;
    assert_eq!(r.status(), 404);

    // The guard: the upstream's `local-lib` (a name the LOCALs hold) is not downloaded through
    // the group, though `stable` lists it, until the allow-list names it.
    let theirs = build_deb(&w, "local-lib", "9.0.0", None);
    let (st, msg) = put_deb(
        &up,
        &up.token,
        "local-lib_9.0.0_all.deb",
        std::fs::read(&theirs).unwrap(),
        "",
    )
    .await;
    assert_eq!(st, 201, "{msg}");
    let pool = "/pkg/default/deb-all/debian/pool/main/l/local-lib/local-lib_9.0.0_all.deb";
    let upstream_pool = up
        .get("/pkg/acme/deb/debian/dists/stable/main/binary-amd64/Packages")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        upstream_pool.contains("pool/main/l/local-lib/local-lib_9.0.0_all.deb"),
        "{upstream_pool}"
    );
    assert_eq!(get(&s, pool).await.status(), 404);
    set_virtual(
        &s,
        &gid,
        json!({"dependencyConfusionAllowList": ["local-*"], "allowRemoteProxying": true}),
    )
    .await;
    let r = get(&s, pool).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), std::fs::read(&theirs).unwrap());

    // `allowRemoteProxying: false`: the proxy member answers from its cache only. What it has
    // cached is still served (apt updates and installs cleanly); what it has not is not fetched.
    set_virtual(
        &s,
        &gid,
        json!({"dependencyConfusionAllowList": ["local-*"], "allowRemoteProxying": false}),
    )
    .await;
    let late = build_deb(&w, "late-app", "1.0.0", None);
    let (st, msg) = put_deb(
        &up,
        &up.token,
        "late-app_1.0.0_all.deb",
        std::fs::read(&late).unwrap(),
        "",
    )
    .await;
    assert_eq!(st, 201, "{msg}");
    let cached = get(&s, "/pkg/default/deb-all/debian/dists/stable/InRelease").await;
    assert_eq!(cached.status(), 200);
    let upstream_now = up
        .get("/pkg/acme/deb/debian/dists/stable/InRelease")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // The release cached before, not the upstream's new one.
    assert_eq!(cached.bytes().await.unwrap(), upstream_release);
    assert_ne!(upstream_now, upstream_release);
    clean(&apt.run(&["update"]));
    std::fs::remove_file(apt.dir.join("cache/archives/up-app_1.0.0_all.deb")).unwrap();
    clean(&apt.run(&["install", "-y", "--download-only", "up-app"]));
    let r = get(
        &s,
        "/pkg/default/deb-all/debian/pool/main/l/late-app/late-app_1.0.0_all.deb",
    )
    .await;
    assert_eq!(r.status(), 404);
}

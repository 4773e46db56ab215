//! Pull-through proxies, part 2, format details checked against the programmable stub: a CRAN
//! proxy's `MD5sum` check and `PACKAGES.rds` relay, NuGet search passed through to the upstream.

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Server, run};
use crate::proxy3::read;
use crate::stub::{Reply, Stub};

/// A CRAN proxy checks a source package against the `MD5sum` its upstream's PACKAGES lists
/// (other bytes: 502, nothing kept) and relays the upstream's `PACKAGES.rds` byte for byte;
/// a hosted registry has none (R then reads PACKAGES.gz).
async fn cran_proxy_checks_md5sums_and_relays_packages_rds(b: Backend) {
    let stub = Stub::start().await;
    let s = Server::start(b).await;
    let good = b"the real source package".to_vec();
    let md5 = {
        let f = s.dir.path().join("pkg.tar.gz");
        std::fs::write(&f, &good).unwrap();
        let out = run("md5sum", &[&f.display().to_string()], s.dir.path(), &[]);
        out.stdout.split_whitespace().next().unwrap().to_string()
    };
    stub.set(
        "/cran/src/contrib/PACKAGES",
        Reply::Ok(
            format!("Package: hellor\nVersion: 0.1.0\nMD5sum: {md5}\n\n").into_bytes(),
            "text/plain",
        ),
    );
    let rds = b"X\n\x00\x00\x00\x03 not really R serialization".to_vec();
    stub.set(
        "/cran/src/contrib/PACKAGES.rds",
        Reply::Ok(rds.clone(), "application/octet-stream"),
    );
    stub.set(
        "/cran/src/contrib/hellor_0.1.0.tar.gz",
        Reply::Ok(b"tampered".to_vec(), "application/gzip"),
    );
    crate::proxy::harness_upstream(&s, "cranp", "CRAN", &format!("{}/cran", stub.base), "x").await;
    s.harness_registry(
        "acme",
        json!({"identifier": "hosted", "packageType": "CRAN", "parentRef": "acme"}),
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "acme");
    let file = "/pkg/acme/cranp/cran/src/contrib/hellor_0.1.0.tar.gz";
    let (st, _, _) = read(&s, "ro", &ro, file).await;
    assert_eq!(st, 502, "bytes other than PACKAGES lists");
    stub.set(
        "/cran/src/contrib/hellor_0.1.0.tar.gz",
        Reply::Ok(good.clone(), "application/gzip"),
    );
    let (st, _, body) = read(&s, "ro", &ro, file).await;
    assert_eq!((st, body == good), (200, true));
    assert_eq!(
        stub.hits("/cran/src/contrib/hellor_0.1.0.tar.gz"),
        2,
        "nothing was kept the first time"
    );
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/acme/cranp/cran/src/contrib/PACKAGES.rds",
    )
    .await;
    assert_eq!((st, body == rds), (200, true));
    let (st, _, _) = read(
        &s,
        "ro",
        &ro,
        "/pkg/acme/hosted/cran/src/contrib/PACKAGES.rds",
    )
    .await;
    assert_eq!(st, 404);
}

/// NuGet search through a proxy is passed through to the upstream's SearchQueryService, its
/// URLs rewritten to Arca; an upstream whose search fails leaves a working (local) search.
async fn nuget_search_passes_through_a_nuget_proxy(b: Backend) {
    let stub = Stub::start().await;
    let s = Server::start(b).await;
    let index = json!({"version": "3.0.0", "resources": [
        {"@id": format!("{}/nu/flat/", stub.base), "@type": "PackageBaseAddress/3.0.0"},
        {"@id": format!("{}/nu/reg/", stub.base), "@type": "RegistrationsBaseUrl/3.6.0"},
        {"@id": format!("{}/nu/query", stub.base), "@type": "SearchQueryService/3.5.0"},
        {"@id": format!("{}/nu/autocomplete", stub.base), "@type": "SearchAutocompleteService/3.5.0"}]});
    stub.set(
        "/nu/index.json",
        Reply::Ok(index.to_string().into_bytes(), "application/json"),
    );
    let hits = json!({"totalHits": 1, "data": [{
        "@id": format!("{}/nu/reg/stub.pkg/index.json", stub.base), "@type": "Package",
        "registration": format!("{}/nu/reg/stub.pkg/index.json", stub.base),
        "id": "Stub.Pkg", "version": "1.2.0", "description": "from upstream search",
        "versions": [{"version": "1.0.0", "downloads": 1, "@id": format!("{}/nu/reg/stub.pkg/1.0.0.json", stub.base)},
                     {"version": "1.2.0", "downloads": 2, "@id": format!("{}/nu/reg/stub.pkg/1.2.0.json", stub.base)}]}]});
    stub.set(
        "/nu/query",
        Reply::Ok(hits.to_string().into_bytes(), "application/json"),
    );
    crate::proxy::gitflic_proxy(
        &s,
        "nusearch",
        "nuget",
        &format!("{}/nu/index.json", stub.base),
        "u",
        "t",
        7200,
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "default/acme");
    let root = s.url("/pkg/default/acme/-/nusearch/nuget");
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/nusearch/nuget/query?q=stub&take=20",
    )
    .await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let item = &v["data"][0];
    assert_eq!(
        (
            item["id"].as_str(),
            item["description"].as_str(),
            v["totalHits"].as_i64()
        ),
        (Some("Stub.Pkg"), Some("from upstream search"), Some(1)),
        "{v}"
    );
    assert_eq!(
        item["registration"],
        format!("{root}/registration/stub.pkg/index.json")
    );
    assert_eq!(
        item["versions"][1]["@id"],
        format!("{root}/registration/stub.pkg/1.2.0.json")
    );
    assert!(!v.to_string().contains(&stub.base), "{v}");
    assert_eq!(stub.hits("/nu/query"), 1);
    // A failing upstream search: the local search still answers.
    stub.set("/nu/query", Reply::Status(500));
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/nusearch/nuget/query?q=stub",
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (st, v["data"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );

    // Autocomplete is passed through as well: ids for `q=`, an id's versions for `id=`.
    let autocomplete = |answer: serde_json::Value| {
        stub.set(
            "/nu/autocomplete",
            Reply::Ok(answer.to_string().into_bytes(), "application/json"),
        );
    };
    autocomplete(json!({"totalHits": 1, "data": ["Stub.Pkg"]}));
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/nusearch/nuget/autocomplete?q=stub",
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (st, v["totalHits"].as_i64(), v["data"].clone()),
        (200, Some(1), json!(["Stub.Pkg"])),
        "{v}"
    );
    autocomplete(json!({"totalHits": 2, "data": ["1.0.0", "1.2.0"]}));
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        "/pkg/default/acme/-/nusearch/nuget/autocomplete?id=stub.pkg",
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (st, v["data"].clone()),
        (200, json!(["1.0.0", "1.2.0"])),
        "{v}"
    );
    assert_eq!(stub.hits("/nu/autocomplete"), 2);
}

/// An UPSTREAM's credentials follow its config: the stored password is sent while the config
/// names it, not once a `PUT` names another secret reference (that one is used, here unset: 502),
/// nor once a `PUT` makes it Anonymous (the stored secret is dropped, not sent as a token).
async fn an_upstream_made_anonymous_sends_no_credentials(b: Backend) {
    let stub = Stub::start().await;
    let s = Server::start(b).await;
    for f in ["a", "b", "c"] {
        stub.set(
            &format!("/files/t/1/{f}.bin"),
            Reply::Ok(f.as_bytes().to_vec(), "application/octet-stream"),
        );
    }
    crate::proxy::harness_upstream(
        &s,
        "creds",
        "GENERIC",
        &format!("{}/files", stub.base),
        "pw1",
    )
    .await;
    let fetch = |f: &'static str| {
        let s = &s;
        async move {
            let r = s
                .client
                .get(s.url(&format!("/pkg/acme/creds/generic/t/1/{f}.bin")))
                .header("x-api-key", &s.token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{f}");
        }
    };
    fetch("a").await;
    assert_eq!(stub.authorization().len(), 1);
    let (st, v) = crate::common::call(s.get("/har/api/v1/registry/acme/creds/+")).await;
    assert_eq!(st, 200, "{v}");
    let mut config = v["data"]["config"].clone();
    assert_eq!(config["auth"].get("password"), None, "{config}");
    config["auth"]["secretIdentifier"] = json!("unset-ref");
    let put = |config: serde_json::Value| {
        let s = &s;
        async move {
            let (st, v) = crate::common::call(
                s.client
                    .put(s.url("/har/api/v1/registry/acme/creds/+"))
                    .header("x-api-key", &s.token)
                    .json(&json!({"identifier": "creds", "config": config})),
            )
            .await;
            assert_eq!(st, 200, "{v}");
        }
    };
    // Another reference: it is what is used (unset here), never the stored password.
    put(config).await;
    let r = s
        .client
        .get(s.url("/pkg/acme/creds/generic/t/1/b.bin"))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("unset-ref"));
    assert_eq!(stub.authorization().len(), 1, "{:?}", stub.authorization());
    put(
        json!({"type": "UPSTREAM", "url": format!("{}/files", stub.base), "authType": "Anonymous"}),
    )
    .await;
    let before = stub.authorization().len();
    fetch("c").await;
    assert_eq!(stub.hits("/files/t/1/c.bin"), 1);
    assert_eq!(
        stub.authorization().len(),
        before,
        "no credentials once Anonymous: {:?}",
        stub.authorization()
    );
}

both_backends!(
    an_upstream_made_anonymous_sends_no_credentials,
    cran_proxy_checks_md5sums_and_relays_packages_rds,
    nuget_search_passes_through_a_nuget_proxy,
);

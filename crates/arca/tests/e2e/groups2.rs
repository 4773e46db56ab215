//! Groups with a proxy member for the formats `groups.rs` leaves out: the dependency-confusion
//! guard at the download URLs of NuGet, Composer, CRAN and OPM (a hosted name hides the
//! upstream's versions of it until the allow-list names it), `X-Arca-Served-By` on a file
//! streamed live from an upstream, and search totals that count a name once. Upstreams are a
//! second `arca` (or the stub), members live in the instance scope (`default`).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call};
use crate::composer::{archive, upload as composer_upload};
use crate::cran::{build_package, put as cran_put};
use crate::groups::{get, group, hosted, set_virtual, upstream};
use crate::nuget::{nupkg, push_raw, spec};
use crate::opm::{ospx, push as opm_push};
use crate::stub::{Reply, Stub};

/// An upload to a registry of the instance scope, the way each format's client sends it.
pub(crate) async fn publish(s: &Server, reg: &str, format: &str, file: &str, body: Vec<u8>) {
    let root = format!("/pkg/default/{reg}/{format}");
    let req = match format {
        "nuget" => {
            let part = reqwest::multipart::Part::bytes(body).file_name("package.nupkg");
            s.client
                .put(s.url(&format!("{root}/api/v2/package/")))
                .header("X-NuGet-ApiKey", &s.token)
                .multipart(reqwest::multipart::Form::new().part("package", part))
        }
        "composer" => s
            .client
            .put(s.url(&format!("{root}/{file}")))
            .basic_auth("u", Some(&s.token))
            .body(body),
        "cran" => s
            .client
            .put(s.url(&format!("{root}/src/contrib/{file}")))
            .basic_auth("u", Some(&s.token))
            .body(body),
        "opm" => s
            .client
            .post(s.url(&format!("{root}/push")))
            .header("FILE-NAME", file)
            .header("CHANNEL", "stable")
            .header("OAUTH-TOKEN", &s.token)
            .body(body),
        other => panic!("no upload for {other}"),
    };
    let r = req.send().await.unwrap();
    let st = r.status().as_u16();
    assert!(
        (200..300).contains(&st),
        "{format} upload of {file} to {reg}: {st} {}",
        r.text().await.unwrap()
    );
}

/// A `.nupkg` of `id` at `version`.
pub(crate) fn nuget_package(w: &std::path::Path, id: &str, version: &str) -> Vec<u8> {
    let p = nupkg(
        &w.join(format!("nu-{id}-{version}")),
        &format!("{id}.{version}.nupkg"),
        &spec(id, version, ""),
        &[("lib/readme.txt", &format!("{id} {version}"))],
    );
    std::fs::read(p).unwrap()
}

/// A Composer dist of `name` at `version` with a class saying which it is.
pub(crate) fn composer_package(name: &str, version: &str) -> Vec<u8> {
    let (vendor, short) = name.split_once('/').unwrap();
    let class = format!("{}{}", cap(vendor), cap(short));
    archive(
        "",
        &[
            (
                "composer.json",
                &json!({"name": name, "version": version, "type": "library",
                        "autoload": {"psr-4": {format!("{}\\{}\\", cap(vendor), cap(short)): "src/"}}})
                .to_string(),
            ),
            (
                &format!("src/{class}.php"),
                &format!(
                    "<?php namespace {}\\{}; class {class} {{ public static function v() {{ return \"{name} {version}\"; }} }}",
                    cap(vendor),
                    cap(short)
                ),
            ),
        ],
    )
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
        .replace('-', "")
}

/// One format's guard case: the names and download paths (below the format root).
struct Case {
    format: &'static str,
    harness: &'static str,
    /// The upstream registry (in `acme`) and the URL a proxy reads it at.
    up_root: &'static str,
    /// A name the hosted member holds at `mine` and the upstream at `theirs`, a name only the
    /// upstream has, and the allow-list pattern naming the first.
    owned: &'static str,
    free: &'static str,
    pattern: &'static str,
}

/// The download path of `name` at `version` below the group's format root, as its client asks
/// (for Composer, as the p2 file of member `member` names it).
async fn download_path(s: &Server, case: &Case, member: &str, name: &str, version: &str) -> String {
    match case.format {
        "nuget" => {
            let l = name.to_ascii_lowercase();
            format!("package/{l}/{version}/{l}.{version}.nupkg")
        }
        "cran" => format!("src/contrib/Archive/{name}/{name}_{version}.tar.gz"),
        "opm" => format!("{name}/{name}-{version}.ospx"),
        "composer" => {
            // Where the member serves the dist: its own p2 file says.
            let r = get(s, &format!("/pkg/default/{member}/composer/p2/{name}.json")).await;
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            let url = v["packages"][name]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["version"] == version)
                .unwrap_or_else(|| panic!("{name} {version} in {v}"))["dist"]["url"]
                .as_str()
                .unwrap()
                .to_string();
            url.split("/composer/").nth(1).unwrap().to_string()
        }
        other => panic!("{other}"),
    }
}

/// Publishes `name` at `version` of the case's format to `reg` on `s`.
async fn put(s: &Server, reg: &str, case: &Case, name: &str, version: &str) {
    let w = s.dir.path().join("pkgs");
    std::fs::create_dir_all(&w).unwrap();
    let (file, body) = match case.format {
        "nuget" => (String::new(), nuget_package(&w, name, version)),
        "composer" => (
            format!("{}-{version}.zip", name.replace('/', "-")),
            composer_package(name, version),
        ),
        "cran" => {
            let dir = w.join(format!("{reg}-{name}-{version}"));
            std::fs::create_dir_all(&dir).unwrap();
            (
                format!("{name}_{version}.tar.gz"),
                build_package(
                    &dir,
                    name,
                    version,
                    "",
                    &format!("v <- function() \"{name} {version}\"\n"),
                ),
            )
        }
        "opm" => (format!("{name}-{version}.ospx"), ospx(name, version, true)),
        other => panic!("{other}"),
    };
    publish(s, reg, case.format, &file, body).await;
}

/// The upstream's copy: into its `acme` registry with the formats' own test helpers.
async fn put_upstream(up: &Server, case: &Case, name: &str, version: &str) {
    let w = up.dir.path().join("up-pkgs");
    std::fs::create_dir_all(&w).unwrap();
    let st = match case.format {
        "nuget" => {
            push_raw(up, &up.token, nuget_package(&w, name, version))
                .await
                .0
        }
        "composer" => {
            composer_upload(
                up,
                &up.token,
                &format!("{}-{version}.zip", name.replace('/', "-")),
                composer_package(name, version),
            )
            .await
            .0
        }
        "cran" => {
            let dir = w.join(format!("{name}-{version}"));
            std::fs::create_dir_all(&dir).unwrap();
            let body = build_package(&dir, name, version, "", "v <- function() \"up\"\n");
            cran_put(up, &up.token, &format!("{name}_{version}.tar.gz"), body)
                .await
                .0
        }
        "opm" => {
            opm_push(
                up,
                Some(&up.token),
                &format!("{name}-{version}.ospx"),
                "stable",
                ospx(name, version, true),
            )
            .await
            .0
        }
        other => panic!("{other}"),
    };
    assert!(
        (200..300).contains(&st),
        "{} upstream upload: {st}",
        case.format
    );
}

/// For each format: a group of two LOCALs and a PROXY (upstream = a second arca). A name a LOCAL
/// holds hides the upstream's version of it at the download URL (404) until the allow-list names
/// it (200, served by the proxy); a name only the upstream has is downloaded through the proxy,
/// named in `X-Arca-Served-By`; the LOCAL's own version is served by it.
async fn downloads_through_a_group_are_guarded(b: Backend) {
    let cases = [
        Case {
            format: "nuget",
            harness: "NUGET",
            up_root: "/pkg/acme/nu/nuget/index.json",
            owned: "Acme.Private",
            free: "Acme.Free",
            pattern: "acme.priv*",
        },
        Case {
            format: "composer",
            harness: "COMPOSER",
            up_root: "/pkg/acme/php/composer",
            owned: "acme/private",
            free: "acme/free",
            pattern: "acme/priv*",
        },
        Case {
            format: "opm",
            harness: "OPM",
            up_root: "/pkg/acme/opm/opm",
            owned: "privx",
            free: "freex",
            pattern: "privx",
        },
        Case {
            format: "cran",
            harness: "CRAN",
            up_root: "/pkg/acme/cran/cran",
            owned: "privr",
            free: "freer",
            pattern: "priv*",
        },
    ];
    let up = Server::start(b).await;
    for (id, t) in [
        ("nu", "NUGET"),
        ("php", "COMPOSER"),
        ("opm", "OPM"),
        ("cran", "CRAN"),
    ] {
        up.harness_registry(
            "acme",
            json!({"identifier": id, "packageType": t, "parentRef": "acme"}),
        )
        .await;
    }
    let mirror = up.user_with_role("mirror", "reader", "acme");
    let s = Server::start(b).await;
    for case in &cases {
        let f = case.format;
        put_upstream(&up, case, case.owned, "9.9.9").await;
        put_upstream(&up, case, case.free, "1.0.0").await;
        let (a, bb, p, g) = (
            format!("{f}-a"),
            format!("{f}-b"),
            format!("{f}-up"),
            format!("{f}-all"),
        );
        let ua = hosted(&s, &a, case.harness).await;
        let ub = hosted(&s, &bb, case.harness).await;
        let up_id = upstream(&s, &p, case.harness, &up.url(case.up_root), &mirror).await;
        put(&s, &a, case, case.owned, "1.0.0").await;
        let gid = group(&s, &g, f, &[&ua, &ub, &up_id], Some(&ua), json!({})).await;
        let root = format!("/pkg/default/{g}/{f}");

        let theirs = download_path(&s, case, &p, case.owned, "9.9.9").await;
        let r = get(&s, &format!("{root}/{theirs}")).await;
        assert_eq!(
            r.status(),
            404,
            "{f}: the upstream's {} 9.9.9 through the group",
            case.owned
        );
        let mine = download_path(&s, case, &a, case.owned, "1.0.0").await;
        let r = get(&s, &format!("{root}/{mine}")).await;
        assert_eq!(r.status(), 200, "{f}: {mine}");
        assert_eq!(r.headers()["x-arca-served-by"], a.as_str(), "{f}");
        let free = download_path(&s, case, &p, case.free, "1.0.0").await;
        let r = get(&s, &format!("{root}/{free}")).await;
        assert_eq!(r.status(), 200, "{f}: {free}");
        assert_eq!(r.headers()["x-arca-served-by"], p.as_str(), "{f}");

        // Allow-listed, the upstream's version downloads through the group.
        set_virtual(
            &s,
            &gid,
            json!({"dependencyConfusionAllowList": [case.pattern], "allowRemoteProxying": true}),
        )
        .await;
        let r = get(&s, &format!("{root}/{theirs}")).await;
        assert_eq!(r.status(), 200, "{f}: allow-listed {theirs}");
        assert_eq!(r.headers()["x-arca-served-by"], p.as_str(), "{f}");
        // And hidden again once the allow-list no longer names it, although it is cached now.
        set_virtual(&s, &gid, json!({"dependencyConfusionAllowList": []})).await;
        let r = get(&s, &format!("{root}/{theirs}")).await;
        assert_eq!(
            r.status(),
            404,
            "{f}: cached {theirs} without the allow-list"
        );
    }
}

/// A file streamed live from the upstream through a group (the upstream still holding back most
/// of it) names the proxy member in `X-Arca-Served-By`, as cached and stored files do.
async fn a_file_streamed_live_through_a_group_names_its_proxy(b: Backend) {
    let stub = Stub::start().await;
    let s = Server::start(b).await;
    let local = hosted(&s, "gen-a", "GENERIC").await;
    let p = upstream(
        &s,
        "gen-up",
        "GENERIC",
        &format!("{}/files", stub.base),
        "x",
    )
    .await;
    group(&s, "gen-all", "generic", &[&local, &p], None, json!({})).await;
    let first: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let rest: Vec<u8> = (0..300_000u32).map(|i| (i % 239) as u8).collect();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    stub.set(
        "/files/tool/1.0/big.bin",
        Reply::Gated(first.clone(), rest.clone(), gate.clone()),
    );
    let r = get(&s, "/pkg/default/gen-all/generic/tool/1.0/big.bin").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-arca-served-by"],
        "gen-up",
        "answered while the upstream still streams"
    );
    gate.add_permits(1);
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), first.len() + rest.len());
    assert_eq!(&body[..first.len()], &first[..]);
    // Cached now: still named after the proxy.
    let r = get(&s, "/pkg/default/gen-all/generic/tool/1.0/big.bin").await;
    assert_eq!(r.headers()["x-arca-served-by"], "gen-up");
}

/// Searches through a group count a name several members hold once (npm `total`, Cargo
/// `meta.total`, NuGet `totalHits`), and a page holds distinct names.
async fn search_totals_through_a_group_count_names_once(b: Backend) {
    let s = Server::start(b).await;
    // NuGet: the same id in both members, plus one more.
    let na = hosted(&s, "ns-a", "NUGET").await;
    let nb = hosted(&s, "ns-b", "NUGET").await;
    let w = s.dir.path().join("search");
    for (reg, id, v) in [
        ("ns-a", "Dup.Lib", "1.0.0"),
        ("ns-b", "Dup.Lib", "2.0.0"),
        ("ns-b", "Dup.Other", "1.0.0"),
    ] {
        publish(&s, reg, "nuget", "", nuget_package(&w, id, v)).await;
    }
    group(&s, "ns-all", "nuget", &[&na, &nb], None, json!({})).await;
    let (st, v) = call(s.get("/pkg/default/ns-all/nuget/query?q=dup")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["totalHits"], 2, "{v}");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["Dup.Lib", "Dup.Other"], "{v}");
    // The merged versions of the name (the first member wins a version).
    let versions: Vec<&str> = v["data"][0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.0.0", "2.0.0"], "{v}");
    // A page of one holds one name; skipping it gives the other.
    let (_, v) = call(s.get("/pkg/default/ns-all/nuget/query?q=dup&take=1&skip=1")).await;
    assert_eq!(v["totalHits"], 2, "{v}");
    assert_eq!(v["data"][0]["id"], "Dup.Other", "{v}");

    // npm: the same name in both members.
    let a = hosted(&s, "ps-a", "NPM").await;
    let bb = hosted(&s, "ps-b", "NPM").await;
    for (reg, name, version) in [
        ("ps-a", "dup-pkg", "1.0.0"),
        ("ps-b", "dup-pkg", "2.0.0"),
        ("ps-b", "dup-two", "1.0.0"),
    ] {
        let tarball = npm_tarball(name, version);
        let body = json!({
            "name": name, "dist-tags": {"latest": version},
            "versions": {version: {"name": name, "version": version,
                "dist": {"tarball": format!("{}/pkg/default/{reg}/npm/{name}/-/{name}-{version}.tgz", s.base)}}},
            "_attachments": {format!("{name}-{version}.tgz"): {"content_type": "application/octet-stream",
                "data": base64_encode(&tarball), "length": tarball.len()}}
        });
        let (st, v) = call(
            s.client
                .put(s.url(&format!("/pkg/default/{reg}/npm/{name}")))
                .bearer_auth(&s.token)
                .json(&body),
        )
        .await;
        assert!((200..300).contains(&st), "{st} {v}");
    }
    group(&s, "ps-all", "npm", &[&a, &bb], None, json!({})).await;
    let (st, v) = call(s.get("/pkg/default/ps-all/npm/-/v1/search?text=dup")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["total"], 2, "{v}");
    assert_eq!(v["objects"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = call(s.get("/pkg/default/ps-all/npm/-/v1/search?text=dup&size=1&from=1")).await;
    assert_eq!(v["total"], 2, "{v}");
    assert_eq!(v["objects"][0]["package"]["name"], "dup-two", "{v}");

    // Cargo: the same crate in both members.
    let ca = hosted(&s, "cs-a", "CARGO").await;
    let cb = hosted(&s, "cs-b", "CARGO").await;
    for (reg, name, vers) in [
        ("cs-a", "dup-crate", "1.0.0"),
        ("cs-b", "dup-crate", "2.0.0"),
        ("cs-b", "dup-other", "1.0.0"),
    ] {
        let r = s
            .client
            .put(s.url(&format!("/pkg/default/{reg}/cargo/api/v1/crates/new")))
            .header("authorization", &s.token)
            .body(cargo_publish_body(name, vers))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    group(&s, "cs-all", "cargo", &[&ca, &cb], None, json!({})).await;
    let (st, v) = call(s.get("/pkg/default/cs-all/cargo/api/v1/crates?q=dup&per_page=10")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["meta"]["total"], 2, "{v}");
    let names: Vec<&str> = v["crates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dup-crate", "dup-other"], "{v}");
}

/// A `cargo publish` request body: the JSON metadata and a `.crate` holding its `Cargo.toml`.
fn cargo_publish_body(name: &str, vers: &str) -> Vec<u8> {
    let toml = format!("[package]\nname = \"{name}\"\nversion = \"{vers}\"\nedition = \"2021\"\n");
    let lib = "pub fn f() {}\n";
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, body) in [("Cargo.toml", toml.as_str()), ("src/lib.rs", lib)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("{name}-{vers}/{path}"), body.as_bytes())
            .unwrap();
    }
    let krate = tar.into_inner().unwrap().finish().unwrap();
    let meta = json!({"name": name, "vers": vers, "deps": [], "features": {}}).to_string();
    let mut b = Vec::new();
    b.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    b.extend_from_slice(meta.as_bytes());
    b.extend_from_slice(&(krate.len() as u32).to_le_bytes());
    b.extend_from_slice(&krate);
    b
}

/// A gzipped tar holding `package/package.json`, as `npm pack` makes it.
fn npm_tarball(name: &str, version: &str) -> Vec<u8> {
    let manifest = json!({"name": name, "version": version}).to_string();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "package/package.json", manifest.as_bytes())
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Helm charts by `helm_python` (the Go SDK's binding): `name` at each version, into `w/pkgs`.
fn helm_charts(w: &std::path::Path, charts: &[(&str, &str)]) {
    std::fs::create_dir_all(w).unwrap();
    let mut script = String::from("import helm_python as helm\n");
    for (name, version) in charts {
        script.push_str(&format!(
            "helm.Chart.create('{name}', '.')\nhelm.package('{name}', destination='pkgs', version='{version}')\n"
        ));
    }
    let r = crate::common::run(
        crate::common::tools().join("py/bin/python"),
        &["-c", &script],
        w,
        &[],
    );
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
}

/// Helm through a group of a LOCAL and a PROXY: the chart a LOCAL holds (a dashed name) is not
/// downloaded at the upstream's version until the allow-list names it; a chart only the upstream
/// has is, served by the proxy.
async fn helm_downloads_through_a_group_are_guarded(b: Backend) {
    let up = Server::start(b).await;
    up.harness_registry(
        "acme",
        json!({"identifier": "hup", "packageType": "HELM", "parentRef": "acme"}),
    )
    .await;
    let mirror = up.user_with_role("mirror", "reader", "acme");
    let w = up.dir.path().join("helm");
    helm_charts(&w, &[("priv-chart", "9.0.0"), ("free-chart", "1.0.0")]);
    let s = Server::start(b).await;
    let sw = s.dir.path().join("helm");
    helm_charts(&sw, &[("priv-chart", "1.0.0")]);
    let put = |s: &Server, path: String, file: std::path::PathBuf| {
        let req = s
            .client
            .put(s.url(&path))
            .basic_auth("u", Some(&s.token))
            .body(std::fs::read(file).unwrap());
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 201, "{path}");
        }
    };
    for f in ["priv-chart-9.0.0.tgz", "free-chart-1.0.0.tgz"] {
        put(
            &up,
            format!("/pkg/acme/hup/helm/{f}"),
            w.join("pkgs").join(f),
        )
        .await;
    }
    let a = hosted(&s, "hl-a", "HELM").await;
    put(
        &s,
        "/pkg/default/hl-a/helm/priv-chart-1.0.0.tgz".into(),
        sw.join("pkgs/priv-chart-1.0.0.tgz"),
    )
    .await;
    let p = upstream(&s, "hl-up", "HELM", &up.url("/pkg/acme/hup/helm"), &mirror).await;
    let g = group(&s, "hl-all", "helm", &[&a, &p], None, json!({})).await;
    let root = "/pkg/default/hl-all/helm/charts";
    let r = get(&s, &format!("{root}/priv-chart-9.0.0.tgz")).await;
    assert_eq!(r.status(), 404, "the upstream's priv-chart 9.0.0");
    let r = get(&s, &format!("{root}/priv-chart-1.0.0.tgz")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-arca-served-by"], "hl-a");
    let r = get(&s, &format!("{root}/free-chart-1.0.0.tgz")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-arca-served-by"], "hl-up");
    set_virtual(
        &s,
        &g,
        json!({"dependencyConfusionAllowList": ["priv-*"], "allowRemoteProxying": true}),
    )
    .await;
    let r = get(&s, &format!("{root}/priv-chart-9.0.0.tgz")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.bytes().await.unwrap(),
        std::fs::read(w.join("pkgs/priv-chart-9.0.0.tgz")).unwrap()
    );
}

/// Maven SNAPSHOT version metadata through a group of two LOCALs that both hold builds of one
/// SNAPSHOT: merged per classifier and extension (the newest build of each wins, whichever
/// member holds it), the `<snapshot>` naming the newest build, the `.sha1` sidecar computed
/// from the merged bytes, and a build published to a member seen at once.
async fn maven_snapshot_metadata_through_a_group_merges_builds(b: Backend) {
    let s = Server::start(b).await;
    let a = hosted(&s, "mvn-a", "MAVEN").await;
    let bb = hosted(&s, "mvn-b", "MAVEN").await;
    group(&s, "mvn-all", "maven", &[&a, &bb], None, json!({})).await;
    let dir = "com/acme/snap/1.0-SNAPSHOT";
    let pom = "<project><modelVersion>4.0.0</modelVersion><groupId>com.acme</groupId>\
               <artifactId>snap</artifactId><version>1.0-SNAPSHOT</version></project>";
    let put = |reg: &'static str, file: String, body: Vec<u8>| {
        let s = &s;
        async move {
            let r = s
                .client
                .put(s.url(&format!("/pkg/default/{reg}/maven/{dir}/{file}")))
                .basic_auth("u", Some(&s.token))
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{file}: {}", r.status());
        }
    };
    // mvn-a holds build 1 (jar + pom); mvn-b build 2 (jar + sources jar).
    put(
        "mvn-a",
        "snap-1.0-20261101.010101-1.jar".into(),
        b"jar1".to_vec(),
    )
    .await;
    put("mvn-a", "snap-1.0-20261101.010101-1.pom".into(), pom.into()).await;
    put(
        "mvn-b",
        "snap-1.0-20261102.020202-2.jar".into(),
        b"jar2".to_vec(),
    )
    .await;
    put(
        "mvn-b",
        "snap-1.0-20261102.020202-2-sources.jar".into(),
        b"src2".to_vec(),
    )
    .await;
    let meta_url = format!("/pkg/default/mvn-all/maven/{dir}/maven-metadata.xml");
    let value = |x: &str, classifier: Option<&str>, ext: &str| -> Option<String> {
        x.split("<snapshotVersion>").skip(1).find_map(|e| {
            let c = e
                .split_once("<classifier>")
                .map(|(_, r)| r.split('<').next().unwrap_or(""));
            let x = e.split_once("<extension>")?.1.split('<').next()?;
            (c == classifier && x == ext)
                .then(|| {
                    e.split_once("<value>")
                        .map(|(_, r)| r.split('<').next().unwrap_or("").to_string())
                })
                .flatten()
        })
    };
    let x = get(&s, &meta_url).await.text().await.unwrap();
    assert!(x.contains("<buildNumber>2</buildNumber>"), "{x}");
    assert!(x.contains("<timestamp>20261102.020202</timestamp>"), "{x}");
    assert_eq!(
        value(&x, None, "jar").as_deref(),
        Some("1.0-20261102.020202-2"),
        "{x}"
    );
    assert_eq!(
        value(&x, None, "pom").as_deref(),
        Some("1.0-20261101.010101-1"),
        "{x}"
    );
    assert_eq!(
        value(&x, Some("sources"), "jar").as_deref(),
        Some("1.0-20261102.020202-2"),
        "{x}"
    );
    let sha1 = get(
        &s,
        &format!("/pkg/default/mvn-all/maven/{dir}/maven-metadata.xml.sha1"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(
        sha1.trim(),
        hex::encode(<sha1::Sha1 as sha2::Digest>::digest(x.as_bytes()))
    );
    // A newer build published to the first member wins its pom and jar at once.
    put("mvn-a", "snap-1.0-20261103.030303-3.pom".into(), pom.into()).await;
    put(
        "mvn-a",
        "snap-1.0-20261103.030303-3.jar".into(),
        b"jar3".to_vec(),
    )
    .await;
    let x = get(&s, &meta_url).await.text().await.unwrap();
    assert!(x.contains("<buildNumber>3</buildNumber>"), "{x}");
    assert_eq!(
        value(&x, None, "pom").as_deref(),
        Some("1.0-20261103.030303-3"),
        "{x}"
    );
    assert_eq!(
        value(&x, None, "jar").as_deref(),
        Some("1.0-20261103.030303-3"),
        "{x}"
    );
    assert_eq!(
        value(&x, Some("sources"), "jar").as_deref(),
        Some("1.0-20261102.020202-2"),
        "{x}"
    );
}

both_backends!(
    maven_snapshot_metadata_through_a_group_merges_builds,
    helm_downloads_through_a_group_are_guarded,
    downloads_through_a_group_are_guarded,
    a_file_streamed_live_through_a_group_names_its_proxy,
    search_totals_through_a_group_count_names_once
);

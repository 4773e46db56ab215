//! Pull-through proxies, part 2, the signed formats' generations: an RPM or Debian proxy with the
//! upstream's key verifies a new `repomd.xml` / `InRelease` / `Release` before it replaces the
//! served one, never follows an upstream that rolls back, keeps a signature with the document
//! it signs, and resolves a metalink or mirrorlist upstream itself. The upstream is the
//! programmable stub, filled with the files of a hosted Arca repository (so they are real, and
//! signed by that Arca's key) and then with tampered or older ones.

use std::path::Path;

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Server, call, run};
use crate::debian::{Apt, build_deb, put_deb};
use crate::rpm::{build_rpm, dnf, packager, put_rpm};
use crate::stub::{Reply, Stub};

/// GET with a reader's Basic credentials: (status, X-Arca-Cache, body).
pub(crate) async fn read(
    s: &Server,
    user: &str,
    secret: &str,
    path: &str,
) -> (u16, Option<String>, Vec<u8>) {
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

/// A file of the hosted upstream registry at `root`, read with its admin token.
async fn upstream_file(up: &Server, root: &str, path: &str) -> Vec<u8> {
    let r = up
        .client
        .get(up.url(&format!("{root}/{path}")))
        .basic_auth("u", Some(&up.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{root}/{path}");
    r.bytes().await.unwrap().to_vec()
}

/// Signs `data` with the key `key_id` of `gnupg`: clear-signed or a detached armored signature.
fn sign(gnupg: &Path, key_id: &str, data: &[u8], clear: bool) -> Vec<u8> {
    let dir = gnupg.parent().unwrap();
    let input = dir.join("to-sign");
    let output = dir.join("signed");
    std::fs::write(&input, data).unwrap();
    let _ = std::fs::remove_file(&output);
    let how = if clear {
        "--clearsign"
    } else {
        "--detach-sign"
    };
    let (i, o) = (input.display().to_string(), output.display().to_string());
    let r = run(
        "gpg",
        &[
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--armor",
            "--local-user",
            key_id,
            how,
            "-o",
            &o,
            &i,
        ],
        dir,
        &[("GNUPGHOME", gnupg.display().to_string())],
    );
    assert!(r.ok, "gpg: {}", r.stderr);
    std::fs::read(&output).unwrap()
}

/// A PROXY registry of `type` in company `acme` reading `url`, checked with `key`, revalidating
/// on every request.
async fn keyed_proxy(s: &Server, name: &str, package_type: &str, url: &str, key: &str) {
    let (st, v) = call(
        s.client
            .post(s.url("/registry/company/acme/repositories"))
            .header("authorization", format!("token {}", s.token))
            .json(&json!({"type": "PROXY", "repositoryName": name, "packageType": package_type,
                "proxySettings": {"url": url, "isCaching": true, "metadataRetrievalIntervalSeconds": 0,
                    "upstreamPublicKey": key}})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
}

/// One generation of an RPM repository as the stub serves it.
struct RpmGeneration {
    repomd: Vec<u8>,
    asc: Vec<u8>,
    /// `repodata/<file>` → bytes, and each package by its location.
    files: Vec<(String, Vec<u8>)>,
}

/// Reads the current generation of the hosted RPM repository at `root`.
async fn rpm_generation(up: &Server, root: &str) -> RpmGeneration {
    use std::io::Read;
    let repomd = upstream_file(up, root, "repodata/repomd.xml").await;
    let asc = upstream_file(up, root, "repodata/repomd.xml.asc").await;
    let hrefs = |text: &str| -> Vec<String> {
        text.split("<location href=\"")
            .skip(1)
            .map(|r| r.split('"').next().unwrap().to_string())
            .collect()
    };
    let mut files = Vec::new();
    for href in hrefs(&String::from_utf8_lossy(&repomd)) {
        let body = upstream_file(up, root, &href).await;
        if href.contains("primary.xml") {
            let mut xml = String::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_string(&mut xml)
                .unwrap();
            for pkg in hrefs(&xml) {
                files.push((pkg.clone(), upstream_file(up, root, &pkg).await));
            }
        }
        files.push((href, body));
    }
    RpmGeneration { repomd, asc, files }
}

fn serve_rpm(stub: &Stub, prefix: &str, g: &RpmGeneration, asc: &[u8]) {
    for (path, body) in &g.files {
        stub.set(
            &format!("{prefix}/{path}"),
            Reply::Ok(body.clone(), "application/octet-stream"),
        );
    }
    stub.set(
        &format!("{prefix}/repodata/repomd.xml"),
        Reply::Ok(g.repomd.clone(), "application/xml"),
    );
    stub.set(
        &format!("{prefix}/repodata/repomd.xml.asc"),
        Reply::Ok(asc.to_vec(), "text/plain"),
    );
}

/// dnf through an RPM proxy holding the upstream's key while the upstream misbehaves: a new
/// repomd.xml with a bad signature is refused and the good generation stays in service (dnf
/// still works); a good one is picked up; a rolled-back repomd.xml is not followed; the previous
/// generation's repodata stays available; a metalink or mirrorlist upstream is resolved to its
/// first usable base URL.
async fn dnf_keeps_the_good_generation_through_an_rpm_proxy(b: Backend) {
    let upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "rpm", "packageType": "RPM", "parentRef": "acme"}),
        )
        .await;
    let stub = Stub::start().await;
    let s = Server::start(b).await;
    let w = s.dir.path().join("rpm");
    let (gnupg, key_id, packager_key) = packager(&w);
    let lib = build_rpm(&w, &gnupg, &key_id, "hello-lib", "");
    let (st, msg) = put_rpm(
        &upstream,
        &upstream.token,
        "hello-lib-1.0-1.noarch.rpm",
        std::fs::read(&lib).unwrap(),
    )
    .await;
    assert_eq!(st, 201, "{msg}");
    let root = "/pkg/acme/rpm/rpm";
    let armored = String::from_utf8(upstream_file(&upstream, root, "public.key").await).unwrap();
    let g1 = rpm_generation(&upstream, root).await;
    serve_rpm(&stub, "/rpm", &g1, &g1.asc);
    keyed_proxy(
        &s,
        "rpmkeyed",
        "rpm",
        &format!("{}/rpm", stub.base),
        &armored,
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "default/acme");
    let upstream_key = w.join("RPM-GPG-KEY-upstream");
    std::fs::write(&upstream_key, &armored).unwrap();
    let keys = format!(
        "file://{} file://{}",
        packager_key.display(),
        upstream_key.display()
    );
    let url = s.url("/pkg/default/acme/-/rpmkeyed/rpm/");
    let ok = |r: crate::common::Run, what: &str| {
        assert!(r.ok, "dnf {what}:\n{}\n{}", r.stdout, r.stderr)
    };
    ok(
        dnf(
            &w,
            "root",
            &url,
            "ro",
            &ro,
            &keys,
            &["install", "hello-lib"],
        ),
        "install",
    );
    let repomd = "/pkg/default/acme/-/rpmkeyed/rpm/repodata/repomd.xml";
    let asc = "/pkg/default/acme/-/rpmkeyed/rpm/repodata/repomd.xml.asc";

    // A new generation upstream, signed by another key: refused, the good one stays served.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
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
    let g2 = rpm_generation(&upstream, root).await;
    assert_ne!(g1.repomd, g2.repomd);
    let forged = sign(&gnupg, &key_id, &g2.repomd, false);
    serve_rpm(&stub, "/rpm", &g2, &forged);
    let (st, cache, body) = read(&s, "ro", &ro, repomd).await;
    assert_eq!(
        (st, cache.as_deref(), body == g1.repomd),
        (200, Some("STALE"), true)
    );
    let (st, _, body) = read(&s, "ro", &ro, asc).await;
    assert_eq!(
        (st, body == g1.asc),
        (200, true),
        "the signature of the repomd served"
    );
    ok(
        dnf(
            &w,
            "root",
            &url,
            "ro",
            &ro,
            &keys,
            &["--refresh", "makecache"],
        ),
        "makecache on the good generation",
    );

    // The upstream fixes its signature: the new generation is picked up.
    serve_rpm(&stub, "/rpm", &g2, &g2.asc);
    let (st, cache, body) = read(&s, "ro", &ro, repomd).await;
    assert_eq!((st, cache.as_deref(), body == g2.repomd), (200, None, true));
    let (st, _, body) = read(&s, "ro", &ro, asc).await;
    assert_eq!((st, body == g2.asc), (200, true));
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
        "install of the new package",
    );

    // The upstream rolls back to the first generation (validly signed): not followed.
    serve_rpm(&stub, "/rpm", &g1, &g1.asc);
    let (st, cache, body) = read(&s, "ro", &ro, repomd).await;
    assert_eq!(
        (st, cache.as_deref(), body == g2.repomd),
        (200, Some("STALE"), true)
    );
    let (_, _, body) = read(&s, "ro", &ro, asc).await;
    assert!(body == g2.asc);
    ok(
        dnf(
            &w,
            "root",
            &url,
            "ro",
            &ro,
            &keys,
            &["--refresh", "makecache"],
        ),
        "makecache after a rollback",
    );

    // The first generation's repodata stays available after the upstream dropped it.
    let (old_primary, old_body) = g1
        .files
        .iter()
        .find(|(p, _)| p.contains("primary.xml"))
        .unwrap();
    assert!(
        !g2.files.iter().any(|(p, _)| p == old_primary),
        "a new primary"
    );
    stub.set(&format!("/rpm/{old_primary}"), Reply::Status(404));
    let (st, _, body) = read(
        &s,
        "ro",
        &ro,
        &format!("/pkg/default/acme/-/rpmkeyed/rpm/{old_primary}"),
    )
    .await;
    assert_eq!((st, &body == old_body), (200, true));

    // A metalink / mirrorlist upstream: the first usable base URL it lists is the upstream.
    serve_rpm(&stub, "/rpm", &g2, &g2.asc);
    let metalink = format!(
        "<?xml version=\"1.0\"?>\n<metalink version=\"3.0\"><files><file name=\"repomd.xml\"><resources maxconnections=\"1\">\n\
         <url protocol=\"rsync\" type=\"rsync\" preference=\"100\">rsync://mirror.invalid/rpm/repodata/repomd.xml</url>\n\
         <url protocol=\"http\" type=\"http\" preference=\"99\">{}/rpm/repodata/repomd.xml</url>\n\
         </resources></file></files></metalink>\n",
        stub.base
    );
    stub.set(
        "/mirrors/metalink",
        Reply::Ok(metalink.into_bytes(), "application/metalink+xml"),
    );
    stub.set(
        "/mirrors/mirrorlist",
        Reply::Ok(
            format!("# mirrors\n{}/rpm/\n{}/elsewhere/\n", stub.base, stub.base).into_bytes(),
            "text/plain",
        ),
    );
    for name in ["rpmmeta", "rpmlist"] {
        let list = if name == "rpmmeta" {
            "metalink"
        } else {
            "mirrorlist"
        };
        keyed_proxy(
            &s,
            name,
            "rpm",
            &format!("{}/mirrors/{list}", stub.base),
            &armored,
        )
        .await;
        let (st, _, body) = read(
            &s,
            "ro",
            &ro,
            &format!("/pkg/default/acme/-/{name}/rpm/repodata/repomd.xml"),
        )
        .await;
        assert_eq!((st, body == g2.repomd), (200, true), "{name}");
    }
    ok(
        dnf(
            &w,
            "root-meta",
            &s.url("/pkg/default/acme/-/rpmmeta/rpm/"),
            "ro",
            &ro,
            &keys,
            &["install", "hello-extra"],
        ),
        "install through a metalink upstream",
    );
    assert!(stub.hits("/elsewhere/repodata/repomd.xml") == 0);

    // A mirror that fails is passed over: the next one in the list serves the repomd, and
    // repodata and packages come from the mirror that served it.
    stub.set("/dead/repodata/repomd.xml", Reply::Status(500));
    let metalink_of = |mirrors: &[&str], hash: Option<String>| {
        let urls: String = mirrors
            .iter()
            .map(|m| {
                format!(
                    "<url protocol=\"http\" type=\"http\">{}{m}/repodata/repomd.xml</url>\n",
                    stub.base
                )
            })
            .collect();
        let hash = hash
            .map(|h| format!("<verification><hash type=\"sha256\">{h}</hash></verification>"))
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\"?>\n<metalink version=\"3.0\"><files><file name=\"repomd.xml\">{hash}<resources>\n{urls}</resources></file></files></metalink>\n"
        )
        .into_bytes()
    };
    stub.set(
        "/mirrors/fallback/metalink",
        Reply::Ok(
            metalink_of(&["/dead", "/rpm"], None),
            "application/metalink+xml",
        ),
    );
    keyed_proxy(
        &s,
        "rpmfallback",
        "rpm",
        &format!("{}/mirrors/fallback/metalink", stub.base),
        &armored,
    )
    .await;
    ok(
        dnf(
            &w,
            "root-fallback",
            &s.url("/pkg/default/acme/-/rpmfallback/rpm/"),
            "ro",
            &ro,
            &keys,
            &["install", "hello-extra"],
        ),
        "install through a metalink whose first mirror fails",
    );
    assert!(
        stub.hits("/dead/repodata/repomd.xml") >= 1,
        "the first mirror was asked"
    );
    assert_eq!(
        stub.paths()
            .iter()
            .filter(|p| p.starts_with("/dead/") && !p.ends_with("repomd.xml"))
            .count(),
        0,
        "files come from the mirror that served the repomd"
    );

    // A metalink's sha256 of repomd.xml is checked: a repomd no mirror could match is refused.
    let sha = |b: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b));
    stub.set(
        "/mirrors/hashed/metalink",
        Reply::Ok(
            metalink_of(&["/rpm"], Some("0".repeat(64))),
            "application/metalink+xml",
        ),
    );
    keyed_proxy(
        &s,
        "rpmhashed",
        "rpm",
        &format!("{}/mirrors/hashed/metalink", stub.base),
        &armored,
    )
    .await;
    let repomd = "/pkg/default/acme/-/rpmhashed/rpm/repodata/repomd.xml";
    let (st, _, _) = read(&s, "ro", &ro, repomd).await;
    assert_eq!(st, 502, "a repomd the metalink does not list");
    stub.set(
        "/mirrors/hashed/metalink",
        Reply::Ok(
            metalink_of(&["/rpm"], Some(sha(&g2.repomd).to_uppercase())),
            "application/metalink+xml",
        ),
    );
    let (st, _, body) = read(&s, "ro", &ro, repomd).await;
    assert_eq!((st, body == g2.repomd), (200, true), "the listed one");
}

/// One generation of a Debian repository (distribution `stable`) as the stub serves it.
struct DebGeneration {
    in_release: Vec<u8>,
    release: Vec<u8>,
    release_gpg: Vec<u8>,
    /// Indexes by name and by hash, and pool files.
    files: Vec<(String, Vec<u8>)>,
}

async fn deb_generation(up: &Server, root: &str) -> DebGeneration {
    let in_release = upstream_file(up, root, "dists/stable/InRelease").await;
    let release = upstream_file(up, root, "dists/stable/Release").await;
    let release_gpg = upstream_file(up, root, "dists/stable/Release.gpg").await;
    let text = String::from_utf8_lossy(&release).to_string();
    let listed: Vec<(String, String)> = text
        .split("SHA256:\n")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(' '))
        .map(|l| {
            let p: Vec<&str> = l.split_whitespace().collect();
            (p[2].to_string(), p[0].to_string())
        })
        .collect();
    let mut files = Vec::new();
    for (name, hash) in listed {
        let body = upstream_file(up, root, &format!("dists/stable/{name}")).await;
        if name.ends_with("/Packages") {
            for line in String::from_utf8_lossy(&body).lines() {
                if let Some(pool) = line.strip_prefix("Filename: ") {
                    files.push((pool.to_string(), upstream_file(up, root, pool).await));
                }
            }
        }
        let dir = name
            .rsplit_once('/')
            .map(|(d, _)| format!("{d}/"))
            .unwrap_or_default();
        files.push((
            format!("dists/stable/{dir}by-hash/SHA256/{hash}"),
            body.clone(),
        ));
        files.push((format!("dists/stable/{name}"), body));
    }
    DebGeneration {
        in_release,
        release,
        release_gpg,
        files,
    }
}

fn serve_deb(stub: &Stub, prefix: &str, g: &DebGeneration, in_release: &[u8], release_gpg: &[u8]) {
    for (path, body) in &g.files {
        stub.set(
            &format!("{prefix}/{path}"),
            Reply::Ok(body.clone(), "application/octet-stream"),
        );
    }
    stub.set(
        &format!("{prefix}/dists/stable/Release"),
        Reply::Ok(g.release.clone(), "text/plain"),
    );
    stub.set(
        &format!("{prefix}/dists/stable/Release.gpg"),
        Reply::Ok(release_gpg.to_vec(), "text/plain"),
    );
    stub.set(
        &format!("{prefix}/dists/stable/InRelease"),
        Reply::Ok(in_release.to_vec(), "text/plain"),
    );
}

/// apt through a Debian proxy holding the upstream's key while the upstream republishes with a
/// wrong signature: the release files of the good generation stay served (InRelease, and
/// Release with its own Release.gpg), apt keeps working on them; a good republish is picked up.
async fn apt_keeps_the_good_generation_through_a_debian_proxy(b: Backend) {
    let upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "deb", "packageType": "DEBIAN", "parentRef": "acme"}),
        )
        .await;
    let stub = Stub::start().await;
    let s = Server::start(b).await;
    let w = s.dir.path().join("debs");
    std::fs::create_dir_all(&w).unwrap();
    let (gnupg, key_id, packager_key) = packager(&s.dir.path().join("gpg"));
    let lib = build_deb(&w, "hello-lib", "1.0.0", None);
    let (st, msg) = put_deb(
        &upstream,
        &upstream.token,
        "hello-lib_1.0.0_all.deb",
        std::fs::read(&lib).unwrap(),
        "",
    )
    .await;
    assert_eq!(st, 201, "{msg}");
    let root = "/pkg/acme/deb/debian";
    let armored = String::from_utf8(upstream_file(&upstream, root, "public.key").await).unwrap();
    let g1 = deb_generation(&upstream, root).await;
    serve_deb(&stub, "/deb", &g1, &g1.in_release, &g1.release_gpg);
    keyed_proxy(
        &s,
        "debkeyed",
        "debian",
        &format!("{}/deb", stub.base),
        &armored,
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "default/acme");
    let key = s.dir.path().join("upstream.asc");
    std::fs::write(&key, &armored).unwrap();
    let base = "/pkg/default/acme/-/debkeyed/debian/dists/stable";
    let clean = |r: &crate::common::Run| {
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(r.ok && !all.contains("W:") && !all.contains("E:"), "{all}");
    };
    let apt = Apt::for_root(
        &s,
        "apt-keyed",
        &s.url("/pkg/default/acme/-/debkeyed/debian/"),
        "ro",
        &ro,
        &key,
    );
    clean(&apt.run(&["update"]));
    for (file, want) in [
        ("InRelease", &g1.in_release),
        ("Release", &g1.release),
        ("Release.gpg", &g1.release_gpg),
    ] {
        let (st, _, body) = read(&s, "ro", &ro, &format!("{base}/{file}")).await;
        assert_eq!((st, &body == want), (200, true), "{file}");
    }

    // A republish signed by another key: neither InRelease nor Release+Release.gpg replaces
    // the good generation.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
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
    let g2 = deb_generation(&upstream, root).await;
    assert_ne!(g1.release, g2.release);
    let release_text = g2.release.clone();
    serve_deb(
        &stub,
        "/deb",
        &g2,
        &sign(&gnupg, &key_id, &release_text, true),
        &sign(&gnupg, &key_id, &release_text, false),
    );
    for (file, want) in [
        ("InRelease", &g1.in_release),
        ("Release", &g1.release),
        ("Release.gpg", &g1.release_gpg),
    ] {
        let (st, cache, body) = read(&s, "ro", &ro, &format!("{base}/{file}")).await;
        assert_eq!(
            (st, cache.as_deref(), &body == want),
            (200, Some("STALE"), true),
            "{file}"
        );
    }
    // The index by name is the good generation's, though the upstream's has moved on.
    let by_name = g1
        .files
        .iter()
        .map(|(p, _)| p)
        .find(|p| p.ends_with("/Packages") && !p.contains("by-hash"))
        .unwrap();
    let (st, _, packages) = read(
        &s,
        "ro",
        &ro,
        &format!("/pkg/default/acme/-/debkeyed/debian/{by_name}"),
    )
    .await;
    assert_eq!(st, 200, "{by_name}");
    let packages = String::from_utf8_lossy(&packages).to_string();
    assert!(
        packages.contains("Version: 1.0.0") && !packages.contains("Version: 1.1.0"),
        "{packages}"
    );
    clean(&apt.run(&["update"]));
    clean(&apt.run(&["download", "hello-lib"]));
    assert!(
        apt.dir.join("out/hello-lib_1.0.0_all.deb").exists(),
        "the good generation's candidate"
    );

    // A good republish is picked up.
    serve_deb(&stub, "/deb", &g2, &g2.in_release, &g2.release_gpg);
    for (file, want) in [
        ("InRelease", &g2.in_release),
        ("Release", &g2.release),
        ("Release.gpg", &g2.release_gpg),
    ] {
        let (st, cache, body) = read(&s, "ro", &ro, &format!("{base}/{file}")).await;
        assert_eq!(
            (st, cache.as_deref(), &body == want),
            (200, None, true),
            "{file}"
        );
    }
    // A pool file is fetched against the SHA-256 its Packages index lists: other bytes are
    // refused and not kept.
    let (st, _, _) = read(
        &s,
        "ro",
        &ro,
        &format!("/pkg/default/acme/-/debkeyed/debian/{by_name}"),
    )
    .await;
    assert_eq!(st, 200);
    let (pool, good) = g2
        .files
        .iter()
        .find(|(p, _)| p.contains("hello-lib_1.1.0"))
        .unwrap();
    let upstream_pool = format!("/deb/{pool}");
    stub.set(
        &upstream_pool,
        Reply::Ok(b"not the package".to_vec(), "application/octet-stream"),
    );
    let proxied = format!("/pkg/default/acme/-/debkeyed/debian/{pool}");
    let (st, _, _) = read(&s, "ro", &ro, &proxied).await;
    assert_eq!(st, 502, "bytes other than the index lists");
    stub.set(
        &upstream_pool,
        Reply::Ok(good.clone(), "application/octet-stream"),
    );
    clean(&apt.run(&["update"]));
    clean(&apt.run(&["download", "hello-lib"]));
    assert_eq!(
        stub.hits(&upstream_pool),
        2,
        "fetched again: nothing was kept"
    );
    assert_eq!(
        std::fs::read(apt.dir.join("out/hello-lib_1.1.0_all.deb")).unwrap(),
        std::fs::read(&lib2).unwrap()
    );

    // Another key on the proxy: what was verified with the old one is not served again; the
    // release is fetched afresh and checked with the new key (here it does not match: 502).
    let set_key = |armored: String| {
        let s = &s;
        async move {
            let uuid = crate::groups::uuid(s, "acme/debkeyed").await;
            let (st, v) = call(
                s.client
                    .put(s.url(&format!("/registry/company/acme/repositories/{uuid}")))
                    .header("authorization", format!("token {}", s.token))
                    .json(
                        &json!({"type": "PROXY", "proxySettings": {"upstreamPublicKey": armored}}),
                    ),
            )
            .await;
            assert_eq!(st, 200, "{v}");
        }
    };
    set_key(std::fs::read_to_string(&packager_key).unwrap()).await;
    let (st, _, _) = read(&s, "ro", &ro, &format!("{base}/InRelease")).await;
    assert_eq!(st, 502, "verified with the new key");
    set_key(armored.clone()).await;
    let (st, _, body) = read(&s, "ro", &ro, &format!("{base}/InRelease")).await;
    assert_eq!((st, body == g2.in_release), (200, true));
    clean(&apt.run(&["update"]));
}

/// A Debian upstream without `by-hash`: an index asked for by name is the one the Release Arca
/// served lists, even once the upstream's file by that name belongs to a later generation (the
/// indexes clients read are fetched as soon as a new Release is accepted); the previous
/// generation's index stays available by its hash.
async fn debian_indexes_by_name_follow_the_served_release(b: Backend) {
    use sha2::Digest;
    let stub = Stub::start().await;
    let s = Server::start(b).await;
    let packages = |v: u32| {
        format!("Package: hello\nVersion: 1.{v}\nArchitecture: all\nFilename: pool/h/hello_1.{v}_all.deb\n\n").into_bytes()
    };
    let release = |p: &[u8]| {
        format!(
            "Origin: stub\nSuite: stable\nDate: x\nSHA256:\n {} {} main/binary-all/Packages\n",
            hex::encode(sha2::Sha256::digest(p)),
            p.len()
        )
        .into_bytes()
    };
    let publish = |v: u32, with_release: bool| {
        let p = packages(v);
        if with_release {
            stub.set(
                "/deb/dists/stable/Release",
                Reply::Ok(release(&p), "text/plain"),
            );
        }
        stub.set(
            "/deb/dists/stable/main/binary-all/Packages",
            Reply::Ok(p, "text/plain"),
        );
    };
    publish(1, true);
    crate::proxy::gitflic_proxy(
        &s,
        "debnohash",
        "debian",
        &format!("{}/deb", stub.base),
        "u",
        "t",
        0,
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "default/acme");
    let base = "/pkg/default/acme/-/debnohash/debian/dists/stable";
    let (st, _, r1) = read(&s, "ro", &ro, &format!("{base}/Release")).await;
    assert_eq!((st, r1 == release(&packages(1))), (200, true));
    let (st, _, p) = read(&s, "ro", &ro, &format!("{base}/main/binary-all/Packages")).await;
    assert_eq!((st, p == packages(1)), (200, true));
    // The upstream republishes; a client reads the new Release, then the upstream moves on again
    // before the client asks for the index by name.
    publish(2, true);
    let (st, _, r2) = read(&s, "ro", &ro, &format!("{base}/Release")).await;
    assert_eq!((st, r2 == release(&packages(2))), (200, true));
    publish(3, false);
    let (st, _, p) = read(&s, "ro", &ro, &format!("{base}/main/binary-all/Packages")).await;
    assert_eq!(
        (st, String::from_utf8_lossy(&p).to_string()),
        (200, String::from_utf8(packages(2)).unwrap())
    );
    let old = hex::encode(sha2::Sha256::digest(packages(1)));
    let (st, _, p) = read(
        &s,
        "ro",
        &ro,
        &format!("{base}/main/binary-all/by-hash/SHA256/{old}"),
    )
    .await;
    assert_eq!(
        (st, p == packages(1)),
        (200, true),
        "the previous generation stays available"
    );
}

/// An RPM upstream with `--simple-md-filenames` (repodata without its checksum in the name): the
/// repodata served by name is the one the served repomd.xml lists, never a cached copy of an
/// earlier generation, even once the upstream's file by that name moved on.
async fn rpm_simple_repodata_names_follow_the_served_repomd(b: Backend) {
    use sha2::Digest;
    let stub = Stub::start().await;
    let s = Server::start(b).await;
    let primary = |v: u32| format!("<metadata packages=\"{v}\"/>").into_bytes();
    let publish = |v: u32, with_repomd: bool| {
        let p = primary(v);
        if with_repomd {
            let repomd = format!(
                "<repomd><revision>{v}</revision><data type=\"primary\"><checksum type=\"sha256\">{}</checksum>\
                 <location href=\"repodata/primary.xml\"/><timestamp>{v}</timestamp></data></repomd>",
                hex::encode(sha2::Sha256::digest(&p))
            );
            stub.set(
                "/rpm/repodata/repomd.xml",
                Reply::Ok(repomd.into_bytes(), "application/xml"),
            );
        }
        stub.set("/rpm/repodata/primary.xml", Reply::Ok(p, "application/xml"));
    };
    publish(1, true);
    crate::proxy::gitflic_proxy(
        &s,
        "rpmsimple",
        "rpm",
        &format!("{}/rpm", stub.base),
        "u",
        "t",
        0,
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "default/acme");
    let base = "/pkg/default/acme/-/rpmsimple/rpm/repodata";
    let (st, _, _) = read(&s, "ro", &ro, &format!("{base}/repomd.xml")).await;
    assert_eq!(st, 200);
    let (st, _, p) = read(&s, "ro", &ro, &format!("{base}/primary.xml")).await;
    assert_eq!((st, p == primary(1)), (200, true));
    publish(2, true);
    let (st, _, _) = read(&s, "ro", &ro, &format!("{base}/repomd.xml")).await;
    assert_eq!(st, 200);
    publish(3, false);
    let (st, _, p) = read(&s, "ro", &ro, &format!("{base}/primary.xml")).await;
    assert_eq!(
        (st, String::from_utf8_lossy(&p).to_string()),
        (200, String::from_utf8(primary(2)).unwrap()),
        "the generation of the served repomd.xml"
    );
}

both_backends!(
    dnf_keeps_the_good_generation_through_an_rpm_proxy,
    apt_keeps_the_good_generation_through_a_debian_proxy,
    debian_indexes_by_name_follow_the_served_release,
    rpm_simple_repodata_names_follow_the_served_repomd,
);

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Run, Server, call, run};

/// Builds `<name>_<version>_all.deb` with dpkg-deb.
pub(crate) fn build_deb(w: &Path, name: &str, version: &str, depends: Option<&str>) -> PathBuf {
    let root = w.join("pkg").join(name);
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join(format!("usr/share/{name}"))).unwrap();
    std::fs::write(root.join(format!("usr/share/{name}/README")), name).unwrap();
    let depends = depends
        .map(|d| format!("Depends: {d}\n"))
        .unwrap_or_default();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!("Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Acme <acme@example.com>\n\
                 Section: misc\nPriority: optional\n{depends}Description: test package {name}\n A longer description.\n"),
    )
    .unwrap();
    let out = w.join(format!("{name}_{version}_all.deb"));
    let r = run(
        "dpkg-deb",
        &[
            "--build",
            "--root-owner-group",
            root.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        w,
        &[],
    );
    assert!(r.ok, "dpkg-deb: {}", r.stderr);
    out
}

/// apt with its own state directories (nothing of the system's apt is touched).
pub(crate) struct Apt {
    pub(crate) dir: PathBuf,
}

impl Apt {
    pub(crate) fn new(s: &Server, user: &str, token: &str, key: &Path) -> Apt {
        Self::for_root(s, "apt", &s.url("/pkg/acme/deb/debian/"), user, token, key)
    }

    /// apt with its state in `<server dir>/<tag>`, reading the repository at `root`.
    pub(crate) fn for_root(
        s: &Server,
        tag: &str,
        root: &str,
        user: &str,
        token: &str,
        key: &Path,
    ) -> Apt {
        let dir = s.dir.path().join(tag);
        for d in ["lists/partial", "cache/archives/partial", "out"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("status"), "").unwrap();
        std::fs::write(
            dir.join("sources.list"),
            format!("deb [signed-by={}] {root} stable main\n", key.display()),
        )
        .unwrap();
        let host = root.split('/').take(3).collect::<Vec<_>>().join("/");
        std::fs::write(
            dir.join("auth.conf"),
            format!("machine {host}\nlogin {user}\npassword {token}\n"),
        )
        .unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("apt.conf"),
            format!("Dir::Etc::SourceList \"{d}/sources.list\";\nDir::Etc::SourceParts \"/dev/null\";\nDir::Etc::netrc \"{d}/auth.conf\";\n\
                     Dir::State::Lists \"{d}/lists\";\nDir::Cache \"{d}/cache\";\nDir::State::status \"{d}/status\";\nAPT::Sandbox::User \"root\";\n"),
        )
        .unwrap();
        Apt { dir }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        run(
            "apt-get",
            args,
            &self.dir.join("out"),
            &[(
                "APT_CONFIG",
                self.dir.join("apt.conf").display().to_string(),
            )],
        )
    }
}

pub(crate) async fn put_deb(
    s: &Server,
    token: &str,
    file: &str,
    body: Vec<u8>,
    query: &str,
) -> (u16, String) {
    let r = s
        .client
        .put(s.url(&format!("/pkg/acme/deb/debian/{file}{query}")))
        .basic_auth("u", Some(token))
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// apt-get updates from a signed repository (no warnings), downloads a package and installs
/// (simulated, and downloading its dependency) one that depends on another from Arca.
async fn apt_get_from_signed_repository(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "deb", "packageType": "DEBIAN", "parentRef": "acme", "packageReuploadType": "NONE"})).await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let w = s.dir.path().join("debs");
    std::fs::create_dir_all(&w).unwrap();
    let lib = build_deb(&w, "hello-lib", "1.0.0", None);
    let app = build_deb(&w, "hello-app", "2.0.0", Some("hello-lib (>= 1.0)"));
    for (f, q) in [(&lib, ""), (&app, "?distribution=stable&component=main")] {
        let name = f.file_name().unwrap().to_str().unwrap();
        let (st, msg) = put_deb(&s, &dev, name, std::fs::read(f).unwrap(), q).await;
        assert_eq!(st, 201, "{msg}");
    }
    // The registry's public key, as a user downloads it.
    let key = s.dir.path().join("arca-deb.asc");
    let r = s
        .client
        .get(s.url("/pkg/acme/deb/debian/public.key"))
        .basic_auth("ro", Some(&ro))
        .send()
        .await
        .unwrap();
    let armored = r.text().await.unwrap();
    assert!(
        armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{armored}"
    );
    std::fs::write(&key, &armored).unwrap();

    let apt = Apt::new(&s, "ro", &ro, &key);
    let r = apt.run(&["update"]);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        r.ok && !all.contains("W:") && !all.contains("insecure") && !all.contains("not signed"),
        "apt-get update:\n{all}"
    );
    let r = apt.run(&["download", "hello-lib"]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        std::fs::read(apt.dir.join("out/hello-lib_1.0.0_all.deb")).unwrap(),
        std::fs::read(&lib).unwrap()
    );
    let r = apt.run(&["install", "-s", "hello-app"]);
    assert!(
        r.ok && r.stdout.contains("Inst hello-lib") && r.stdout.contains("Inst hello-app"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let r = apt.run(&["install", "-y", "--download-only", "hello-app"]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    assert!(
        apt.dir
            .join("cache/archives/hello-lib_1.0.0_all.deb")
            .exists(),
        "the dependency came from Arca too"
    );

    // Release lists every index with its digest; by-hash copies are served.
    let release = s
        .get("/pkg/acme/deb/debian/dists/stable/Release")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = release
        .lines()
        .skip_while(|l| *l != "SHA256:")
        .nth(1)
        .unwrap()
        .to_string();
    let parts: Vec<&str> = line.split_whitespace().collect();
    let by_hash = s
        .get(&format!(
            "/pkg/acme/deb/debian/dists/stable/main/binary-amd64/by-hash/SHA256/{}",
            parts[0]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(by_hash.status(), 200);
    let direct = s
        .get(&format!("/pkg/acme/deb/debian/dists/stable/{}", parts[2]))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(by_hash.bytes().await.unwrap(), direct);

    // Refusals leave the repository as it was.
    let before = s
        .get("/pkg/acme/deb/debian/dists/stable/Release")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, artifacts) = call(s.get("/har/api/v1/registry/acme/deb/+/artifacts")).await;
    for (what, file, body, query, want) in [
        (
            "re-upload",
            "hello-lib_1.0.0_all.deb",
            std::fs::read(&lib).unwrap(),
            "",
            409u16,
        ),
        (
            "not an ar archive",
            "x_1.0_all.deb",
            b"!<arch>\nnot really".to_vec(),
            "",
            400,
        ),
        ("plain text", "x_1.0_all.deb", b"hello".to_vec(), "", 400),
        (
            "bad distribution",
            "hello-lib_1.0.0_all.deb",
            std::fs::read(&lib).unwrap(),
            "?distribution=../x",
            400,
        ),
        ("not .deb", "x.rpm", std::fs::read(&lib).unwrap(), "", 400),
    ] {
        let (st, msg) = put_deb(&s, &dev, file, body, query).await;
        assert_eq!(st, want, "{what}: {msg}");
    }
    assert_eq!(
        put_deb(
            &s,
            &ro,
            "hello-lib_1.0.0_all.deb",
            std::fs::read(&lib).unwrap(),
            "?distribution=other"
        )
        .await
        .0,
        403
    );
    let (_, after) = call(s.get("/har/api/v1/registry/acme/deb/+/artifacts")).await;
    assert_eq!(artifacts["data"]["itemCount"], after["data"]["itemCount"]);
    let again = s
        .get("/pkg/acme/deb/debian/dists/stable/Release")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        before
            .lines()
            .filter(|l| !l.starts_with("Date:"))
            .collect::<Vec<_>>(),
        again
            .lines()
            .filter(|l| !l.starts_with("Date:"))
            .collect::<Vec<_>>()
    );

    // Rotating the key (admins only): apt refuses the old key and accepts the new one.
    let rotate = |t: &str| {
        s.client
            .post(s.url("/har/api/v1/registry/acme/deb/+/signing-key/rotate"))
            .header("x-api-key", t)
            .send()
    };
    assert_eq!(rotate(&dev).await.unwrap().status(), 403);
    let resp = rotate(&s.token).await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    let new_key = v["data"]["publicKey"].as_str().unwrap().to_string();
    assert_ne!(new_key, armored);
    let served = s
        .client
        .get(s.url("/pkg/acme/deb/debian/public.key"))
        .basic_auth("ro", Some(&ro))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, new_key);
    let r = apt.run(&["update"]);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        !r.ok || all.contains("NO_PUBKEY") || all.contains("not signed"),
        "the old key no longer verifies:\n{all}"
    );
    std::fs::write(&key, &new_key).unwrap();
    let r = apt.run(&["update"]);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(r.ok && !all.contains("W:") && !all.contains("E:"), "{all}");
}

both_backends!(apt_get_from_signed_repository);

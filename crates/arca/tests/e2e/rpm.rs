use std::path::{Path, PathBuf};

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Run, Server, call, run};

/// Builds a noarch rpm with rpmbuild and signs it with the test key (rpmsign + gpg).
/// A packager's signing key in its own GnuPG home under `w`: (home, key id, armored key file).
pub(crate) fn packager(w: &Path) -> (PathBuf, String, PathBuf) {
    let gnupg = w.join("gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let g = [("GNUPGHOME", gnupg.display().to_string())];
    let r = run(
        "gpg",
        &[
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            "Packager <packager@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
        w,
        &g,
    );
    assert!(r.ok, "gpg: {}", r.stderr);
    let r = run("gpg", &["--batch", "--with-colons", "--list-keys"], w, &g);
    let key_id = r
        .stdout
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9))
        .unwrap()
        .to_string();
    let r = run("gpg", &["--batch", "--armor", "--export", &key_id], w, &g);
    let packager_key = w.join("RPM-GPG-KEY-packager");
    std::fs::write(&packager_key, r.stdout).unwrap();
    (gnupg, key_id, packager_key)
}

pub(crate) fn build_rpm(
    w: &Path,
    gnupg: &Path,
    key_id: &str,
    name: &str,
    requires: &str,
) -> PathBuf {
    let top = w.join("rpmbuild");
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    let requires = if requires.is_empty() {
        String::new()
    } else {
        format!("Requires: {requires}\n")
    };
    let spec = top.join(format!("SPECS/{name}.spec"));
    std::fs::write(
        &spec,
        format!("Name: {name}\nVersion: 1.0\nRelease: 1\nSummary: test package {name}\nLicense: MIT\nBuildArch: noarch\n{requires}\
                 %description\nA test package.\n%install\nmkdir -p %{{buildroot}}/usr/share/{name}\necho {name} > %{{buildroot}}/usr/share/{name}/README\n\
                 %files\n/usr/share/{name}/README\n"),
    )
    .unwrap();
    let topdir = format!("_topdir {}", top.display());
    let r = run(
        "rpmbuild",
        &["--define", &topdir, "-bb", spec.to_str().unwrap()],
        w,
        &[],
    );
    assert!(r.ok, "rpmbuild: {}\n{}", r.stdout, r.stderr);
    let file = top.join(format!("RPMS/noarch/{name}-1.0-1.noarch.rpm"));
    let gpg_name = format!("_gpg_name {key_id}");
    let r = run(
        "rpmsign",
        &[
            "--define",
            "__gpg /usr/bin/gpg",
            "--define",
            &gpg_name,
            "--addsign",
            file.to_str().unwrap(),
        ],
        w,
        &[("GNUPGHOME", gnupg.display().to_string())],
    );
    assert!(r.ok, "rpmsign: {}\n{}", r.stdout, r.stderr);
    file
}

pub(crate) fn dnf(
    w: &Path,
    root: &str,
    url: &str,
    user: &str,
    token: &str,
    keys: &str,
    args: &[&str],
) -> Run {
    let root = w.join(root);
    std::fs::create_dir_all(&root).unwrap();
    let repo = format!("arca,{url}");
    let opts = [
        format!("--installroot={}", root.display()),
        // dnf keeps repository keyrings under its cache directory: one per root, inside the test.
        format!("--setopt=cachedir={}", root.join("cache").display()),
        format!("--setopt=persistdir={}", root.join("persist").display()),
        "--releasever=1".into(),
        "--setopt=reposdir=/dev/null".into(),
        format!("--repofrompath={repo}"),
        "--repo=arca".into(),
        "--setopt=arca.gpgcheck=1".into(),
        "--setopt=arca.repo_gpgcheck=1".into(),
        // A repository that fails verification is an error, not silently skipped.
        "--setopt=arca.skip_if_unavailable=0".into(),
        format!("--setopt=arca.gpgkey={keys}"),
        format!("--setopt=arca.username={user}"),
        format!("--setopt=arca.password={token}"),
    ];
    let mut all: Vec<&str> = vec!["-y"];
    all.extend(opts.iter().map(String::as_str));
    all.extend_from_slice(args);
    run("dnf", &all, w, &[])
}

pub(crate) async fn put_rpm(s: &Server, token: &str, file: &str, body: Vec<u8>) -> (u16, String) {
    let r = s
        .client
        .put(s.url(&format!("/pkg/acme/rpm/rpm/{file}")))
        .basic_auth("u", Some(token))
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// dnf with gpgcheck and repo_gpgcheck: makecache, download, and install into an installroot of a
/// package whose dependency also comes from Arca.
async fn dnf_from_signed_repository(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "rpm", "packageType": "RPM", "parentRef": "acme", "packageReuploadType": "NONE"})).await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let w = s.dir.path().join("rpm");
    let (gnupg, key_id, packager_key) = packager(&w);

    let lib = build_rpm(&w, &gnupg, &key_id, "hello-lib", "");
    let app = build_rpm(&w, &gnupg, &key_id, "hello-app", "hello-lib >= 1.0");
    for f in [&lib, &app] {
        let name = f.file_name().unwrap().to_str().unwrap();
        let (st, msg) = put_rpm(&s, &dev, name, std::fs::read(f).unwrap()).await;
        assert_eq!(st, 201, "{msg}");
    }
    let repo_key = w.join("RPM-GPG-KEY-arca");
    let armored = s
        .client
        .get(s.url("/pkg/acme/rpm/rpm/public.key"))
        .basic_auth("ro", Some(&ro))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(&repo_key, &armored).unwrap();
    let keys = format!(
        "file://{} file://{}",
        packager_key.display(),
        repo_key.display()
    );
    let url = s.url("/pkg/acme/rpm/rpm/");

    let r = dnf(&w, "root", &url, "ro", &ro, &keys, &["makecache"]);
    assert!(r.ok, "dnf makecache:\n{}\n{}", r.stdout, r.stderr);
    let r = dnf(
        &w,
        "root",
        &url,
        "ro",
        &ro,
        &keys,
        &[
            "download",
            "--destdir",
            w.join("dl").to_str().unwrap(),
            "hello-lib",
        ],
    );
    assert!(r.ok, "dnf download:\n{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        std::fs::read(w.join("dl/hello-lib-1.0-1.noarch.rpm")).unwrap(),
        std::fs::read(&lib).unwrap(),
        "the package's own signature is kept"
    );
    let r = dnf(
        &w,
        "root",
        &url,
        "ro",
        &ro,
        &keys,
        &["install", "hello-app"],
    );
    assert!(r.ok, "dnf install:\n{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        std::fs::read_to_string(w.join("root/usr/share/hello-lib/README"))
            .unwrap()
            .trim(),
        "hello-lib",
        "dependency installed"
    );
    assert!(w.join("root/usr/share/hello-app/README").exists());

    // A repository signed with another key is refused by repo_gpgcheck (fresh installroot, so
    // no key imported before is trusted).
    let r = dnf(
        &w,
        "root2",
        &url,
        "ro",
        &ro,
        &format!("file://{}", packager_key.display()),
        &["--refresh", "makecache"],
    );
    assert!(
        !r.ok && r.stderr.contains("GPG"),
        "repo_gpgcheck must refuse metadata signed by an unknown key:\n{}\n{}",
        r.stdout,
        r.stderr
    );

    // Refusals leave the repository as it was.
    let before = s
        .get("/pkg/acme/rpm/rpm/repodata/repomd.xml")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, artifacts) = call(s.get("/har/api/v1/registry/acme/rpm/+/artifacts")).await;
    for (what, file, body, want) in [
        (
            "re-upload",
            "hello-lib-1.0-1.noarch.rpm",
            std::fs::read(&lib).unwrap(),
            409u16,
        ),
        ("not an rpm", "x-1.0-1.noarch.rpm", b"hello".to_vec(), 400),
        (
            "truncated rpm",
            "x-1.0-1.noarch.rpm",
            std::fs::read(&lib).unwrap()[..200].to_vec(),
            400,
        ),
        ("not .rpm", "x.deb", std::fs::read(&lib).unwrap(), 400),
    ] {
        let (st, msg) = put_rpm(&s, &dev, file, body).await;
        assert_eq!(st, want, "{what}: {msg}");
    }
    assert_eq!(
        put_rpm(
            &s,
            &ro,
            "hello-lib-1.0-1.noarch.rpm",
            std::fs::read(&lib).unwrap()
        )
        .await
        .0,
        403
    );
    let (_, after) = call(s.get("/har/api/v1/registry/acme/rpm/+/artifacts")).await;
    assert_eq!(artifacts["data"]["itemCount"], after["data"]["itemCount"]);
    let again = s
        .get("/pkg/acme/rpm/rpm/repodata/repomd.xml")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(before, again);
}

both_backends!(dnf_from_signed_repository);

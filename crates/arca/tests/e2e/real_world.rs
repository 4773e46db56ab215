//! The compatibility guard: real packages with unusual metadata (fetched by
//! `scripts/install-test-deps.sh` from the pins in `scripts/real-world.txt`, never committed) are
//! uploaded and installed back through Arca with the oldest client versions still shipped by
//! current stable distributions next to the newest: pip 23.0.1 (Debian 12, CPython 3.10) and pip
//! 26.3 and uv; npm 9.2 (Debian 12) and the installed node's npm; apt; Maven 3.8 (Debian's).
//! Real-client tests run on SQLite; what they add to the store runs on both databases.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call, run, tools};
use crate::debian::{Apt, put_deb};
use crate::maven::{Mvn, write};
use crate::npm::Npm;
use crate::pypi::{client_env, index_url, py, twine};

/// The files fetched for one kind of package, sorted.
fn real(kind: &str) -> Vec<PathBuf> {
    let dir = tools().join("real").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/install-test-deps.sh)", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no real {kind} packages in {}",
        dir.display()
    );
    files
}

/// A client version pinned in `scripts/real-world.txt` (`client <name> <version>`).
fn pinned(client: &str) -> Vec<String> {
    let pins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/real-world.txt");
    std::fs::read_to_string(pins)
        .unwrap()
        .lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
        })
        .filter(|w| w.len() == 3 && w[0] == "client" && w[1] == client)
        .map(|w| w[2].to_string())
        .collect()
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// PEP 691 JSON pages carry only `core-metadata` (PEP 714) and `upload-time` with a fixed
/// fraction width; pip 23.0.1 (which crashed on `dist-info-metadata`), pip 26.3 and uv install
/// real wheels and sdists (built from Arca alone), and every file downloads byte-identical.
async fn pypi_oldest_and_newest_clients(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "py", "packageType": "PYTHON", "parentRef": "acme"}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let files = real("pypi");
    let root = s.url("/pkg/acme/py/python/");
    let r = twine(&s, &root, &dev, &files);
    assert!(r.ok, "twine: {}{}", r.stdout, r.stderr);

    // The JSON page, as pip and uv ask for it.
    let time = regex_lite_time();
    for project in ["flask", "six", "markupsafe"] {
        let r = s
            .client
            .get(s.url(&format!("/pkg/acme/py/python/simple/{project}/")))
            .header("accept", "application/vnd.pypi.simple.v1+json")
            .basic_auth("ro", Some(&ro))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page: Value = r.json().await.unwrap();
        let entries = page["files"].as_array().unwrap();
        assert!(!entries.is_empty(), "{page}");
        for f in entries {
            assert!(
                f.get("dist-info-metadata").is_none(),
                "legacy key sent: {f}"
            );
            let wheel = f["filename"].as_str().unwrap().ends_with(".whl");
            assert_eq!(f["core-metadata"].is_object(), wheel, "{f}");
            let at = f["upload-time"].as_str().unwrap();
            assert!(
                time(at),
                "upload-time '{at}' is not yyyy-mm-ddThh:mm:ss.fffZ"
            );
        }
    }

    let work = s.dir.path();
    let url = index_url(&s, "py", Some(&ro));
    let mut env = client_env(work);
    env.push(("PIP_INDEX_URL", url.clone()));
    // Every pinned pip, oldest first, installs into its own target directory: wheels with their
    // dependencies, and sdists whose build backend (setuptools, wheel) comes from Arca too.
    let pips = pinned("pip");
    assert!(pips.len() >= 2, "pins: {pips:?}");
    for v in &pips {
        let pip = tools().join(format!("pip-{v}/bin/pip"));
        let out = run(&pip, &["--version"], work, &env);
        assert!(out.stdout.contains(&format!("pip {v} ")), "{}", out.stdout);
        let target = work.join(format!("site-{v}"));
        let r = run(
            &pip,
            &[
                "install",
                "--target",
                target.to_str().unwrap(),
                "--no-binary",
                "six,toml",
                "Flask",
                "six",
                "toml",
            ],
            work,
            &env,
        );
        assert!(r.ok, "pip {v} install:\n{}\n{}", r.stdout, r.stderr);
        for installed in [
            "flask",
            "werkzeug",
            "jinja2",
            "markupsafe",
            "click",
            "itsdangerous",
            "six.py",
            "toml",
        ] {
            assert!(
                target.join(installed).exists(),
                "pip {v} did not install {installed}"
            );
        }
        // Byte identity of everything downloaded back.
        let dl = work.join(format!("dl-{v}"));
        let pins: Vec<String> = files
            .iter()
            .map(|f| {
                let name = f.file_name().unwrap().to_str().unwrap();
                let (project, rest) = name.split_once('-').unwrap();
                let version = rest
                    .split(['-'])
                    .next()
                    .unwrap()
                    .trim_end_matches(".tar.gz");
                format!("{project}=={version}")
            })
            .collect();
        let mut args = vec!["download", "--no-deps", "-d", dl.to_str().unwrap()];
        args.extend(pins.iter().map(String::as_str));
        let r = run(&pip, &args, work, &env);
        assert!(r.ok, "pip {v} download:\n{}\n{}", r.stdout, r.stderr);
        for f in &files {
            let got = dl.join(f.file_name().unwrap());
            assert_eq!(sha256(&got), sha256(f), "{} differs", got.display());
        }
    }
    // The oldest pip upgrades itself from Arca (on Debian 12 nothing else could fix it).
    let old = &pips[0];
    let up = work.join("upgrade");
    let r = run(
        tools().join(format!("pip-{old}/bin/pip")),
        &[
            "install",
            "--target",
            up.to_str().unwrap(),
            "--no-deps",
            "pip==26.3",
        ],
        work,
        &env,
    );
    assert!(
        r.ok && up.join("pip-26.3.dist-info").exists(),
        "{}{}",
        r.stdout,
        r.stderr
    );

    // uv, from the same index.
    let uv_target = work.join("site-uv");
    let r = run(
        py("uv"),
        &[
            "pip",
            "install",
            "--python",
            py("python").to_str().unwrap(),
            "--target",
            uv_target.to_str().unwrap(),
            "--index-url",
            &url,
            "--no-binary",
            "six",
            "Flask",
            "six",
        ],
        work,
        &env,
    );
    assert!(r.ok, "uv:\n{}\n{}", r.stdout, r.stderr);
    assert!(uv_target.join("flask").exists() && uv_target.join("six.py").exists());
}

/// `yyyy-mm-ddThh:mm:ss` followed by exactly 3 or 6 fraction digits and `Z` (what
/// `datetime.fromisoformat` accepts before Python 3.11).
fn regex_lite_time() -> impl Fn(&str) -> bool {
    |s: &str| {
        let b = s.as_bytes();
        let digits =
            |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
        let frac = s.len().checked_sub(21).filter(|n| *n == 3 || *n == 6);
        b.len() >= 24
            && digits(0..4)
            && b[4] == b'-'
            && digits(5..7)
            && b[7] == b'-'
            && digits(8..10)
            && b[10] == b'T'
            && digits(11..13)
            && digits(14..16)
            && digits(17..19)
            && b[19] == b'.'
            && frac.is_some_and(|n| digits(20..20 + n))
            && s.ends_with('Z')
    }
}

/// npm 9.2 (Debian 12) publishes real tarballs (scoped, bundled dependencies, a prerelease under
/// a non-latest tag); npm 9.2 and the installed npm install them back byte-identical, and a
/// package published only under another tag still gets `latest` (npm view prints it).
async fn npm_oldest_and_newest_clients(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "npm", "packageType": "NPM", "parentRef": "acme"}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let olds = pinned("npm");
    assert!(!olds.is_empty());
    let old_npm = tools().join(format!("npm-{}/bin/npm", olds[0]));
    let work = s.dir.path().join("npm-work");
    let publisher = Npm::new(&s, "npm", &dev).with_program(old_npm.clone());
    let v = publisher.ok(&work, &["--version"]);
    assert_eq!(v.trim(), olds[0]);
    let tarballs = real("npm");
    for t in &tarballs {
        let mut args = vec!["publish", t.to_str().unwrap(), "--provenance=false"];
        if tarball_name(t) == "gensync" {
            // A prerelease only: npm insists on a tag, and it is not `latest`.
            args.extend(["--tag", "next"]);
        }
        publisher.ok(&work, &args);
    }
    let (st, tags) = call(
        s.client
            .get(s.url("/pkg/acme/npm/npm/-/package/gensync/dist-tags"))
            .basic_auth("ro", Some(&ro)),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(tags["next"], "1.0.0-beta.2");
    assert_eq!(
        tags["latest"], "1.0.0-beta.2",
        "a package without latest gets its highest version: {tags}"
    );

    for (label, program) in [("old", old_npm.clone()), ("new", PathBuf::from("npm"))] {
        let npm = Npm::new(&s, "npm", &ro).with_program(program);
        let viewed = npm.ok(&work, &["view", "gensync", "version"]);
        assert_eq!(viewed.trim(), "1.0.0-beta.2", "npm view ({label})");
        let app = work.join(format!("app-{label}"));
        npm_app(&app);
        npm.ok(
            &app,
            &[
                "install",
                "encodeurl@2.0.0",
                "gensync@next",
                "@babel/helper-string-parser",
                "npm@10.9.2",
            ],
        );
        let r = run(
            "node",
            &[
                "-e",
                "require('encodeurl'); require('gensync'); require('@babel/helper-string-parser'); console.log(require('npm/package.json').version)",
            ],
            &app,
            &[],
        );
        assert!(
            r.ok && r.stdout.trim() == "10.9.2",
            "{label}: {}{}",
            r.stdout,
            r.stderr
        );
        // Bundled dependencies came inside npm's own tarball.
        assert!(
            app.join("node_modules/npm/node_modules/semver/package.json")
                .exists(),
            "{label}"
        );
        // The tarballs served are the ones published.
        let lock: Value =
            serde_json::from_slice(&std::fs::read(app.join("package-lock.json")).unwrap()).unwrap();
        for t in &tarballs {
            let key = format!("node_modules/{}", tarball_name(t));
            let want = {
                use base64::Engine;
                use sha2::Digest;
                format!(
                    "sha512-{}",
                    base64::engine::general_purpose::STANDARD
                        .encode(sha2::Sha512::digest(std::fs::read(t).unwrap()))
                )
            };
            assert_eq!(
                lock["packages"][&key]["integrity"],
                want.as_str(),
                "{label}: {key}"
            );
        }
    }
}

/// The package name inside an npm tarball.
fn tarball_name(tgz: &Path) -> String {
    let r = run(
        "tar",
        &["xzf", tgz.to_str().unwrap(), "-O", "package/package.json"],
        tgz.parent().unwrap(),
        &[],
    );
    assert!(r.ok, "{}", r.stderr);
    let manifest: Value = serde_json::from_str(&r.stdout).unwrap();
    manifest["name"].as_str().unwrap().to_string()
}

fn npm_app(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"app","version":"1.0.0","private":true}"#,
    )
    .unwrap();
}

/// Real Debian packages (Depends across packages, Pre-Depends, Provides, Multi-Arch, Essential)
/// through apt; a second
/// `apt-get update` revalidates InRelease with If-Modified-Since and gets `Hit`, not `Get`.
async fn apt_real_packages_and_revalidation(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "deb", "packageType": "DEBIAN", "parentRef": "acme"}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let debs = real("deb");
    for f in &debs {
        let name = f.file_name().unwrap().to_str().unwrap();
        let (st, msg) = put_deb(
            &s,
            &dev,
            name,
            std::fs::read(f).unwrap(),
            "?distribution=stable&component=main",
        )
        .await;
        assert_eq!(st, 201, "{name}: {msg}");
    }
    let key = s.dir.path().join("key.asc");
    let armored = s
        .client
        .get(s.url("/pkg/acme/deb/debian/public.key"))
        .basic_auth("ro", Some(&ro))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(&key, armored).unwrap();
    let apt = Apt::new(&s, "ro", &ro, &key);
    // The C library as installed on this machine, so that dependencies outside Arca are satisfied.
    let status = run(
        "dpkg",
        &["-s", "libc6", "libgcc-s1", "gcc-12-base"],
        s.dir.path(),
        &[],
    );
    assert!(status.ok, "{}", status.stderr);
    std::fs::write(apt.dir.join("status"), status.stdout).unwrap();
    let first = apt.run(&["update"]);
    assert!(
        first.ok && first.stdout.contains("Get:1"),
        "{}{}",
        first.stdout,
        first.stderr
    );
    let again = apt.run(&["update"]);
    assert!(
        again.ok && again.stdout.contains("Hit:1") && !again.stdout.contains("Get:1"),
        "the second update re-downloaded InRelease:\n{}{}",
        again.stdout,
        again.stderr
    );
    let r = apt.run(&[
        // gzip is Essential: apt would insist on installing it (and dpkg, which is not here).
        "-o",
        "pkgCacheGen::Essential=none",
        "install",
        "-y",
        "--download-only",
        "jq",
        "hello",
        "mawk",
    ]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    // gzip (Essential, Pre-Depends) needs dpkg, which this apt does not see installed: fetched
    // by name, and its stanza keeps Pre-Depends.
    let r = apt.run(&["download", "gzip"]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    std::fs::rename(
        apt.dir.join("out/gzip_1.12-1_amd64.deb"),
        apt.dir.join("cache/archives/gzip_1.12-1_amd64.deb"),
    )
    .unwrap();
    let r = run(
        "apt-cache",
        &["show", "gzip"],
        s.dir.path(),
        &[("APT_CONFIG", apt.dir.join("apt.conf").display().to_string())],
    );
    assert!(
        r.stdout.contains("Pre-Depends: libc6 (>= 2.33)") && r.stdout.contains("Essential: yes"),
        "{}",
        r.stdout
    );
    for f in &debs {
        let got = apt.dir.join("cache/archives").join(f.file_name().unwrap());
        assert_eq!(sha256(&got), sha256(f), "{}", got.display());
    }
    // Both validators on the same document, as any client may send them.
    let url = s.url("/pkg/acme/deb/debian/dists/stable/InRelease");
    let r = s
        .client
        .get(&url)
        .basic_auth("ro", Some(&ro))
        .send()
        .await
        .unwrap();
    let modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    for (h, v, want) in [
        ("if-modified-since", modified.as_str(), 304),
        ("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT", 200),
        ("if-none-match", etag.as_str(), 304),
        ("if-none-match", "\"other\"", 200),
    ] {
        let r = s
            .client
            .get(&url)
            .basic_auth("ro", Some(&ro))
            .header(h, v)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{h}: {v}");
    }
    // Deleting a package changes the index and so its date: the next update downloads it again
    // (a date taken from the remaining packages would not move, and apt would keep the old index).
    let (st, v) = call(s.delete("/har/api/v1/registry/acme/deb/+/artifact/hello")).await;
    assert!((200..300).contains(&st), "{st} {v}");
    let r = apt.run(&["update"]);
    assert!(
        r.ok && r.stdout.contains("Get:1"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let r = apt.run(&["install", "-s", "hello"]);
    assert!(!r.ok, "hello is gone: {}", r.stdout);
    // Stored files honour If-Modified-Since too.
    let pool = s.url("/pkg/acme/deb/debian/pool/main/m/mawk/mawk_1.3.4.20200120-3.1_amd64.deb");
    let r = s
        .client
        .get(&pool)
        .basic_auth("ro", Some(&ro))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    let r = s
        .client
        .get(&pool)
        .basic_auth("ro", Some(&ro))
        .header("if-modified-since", modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

/// A Maven plugin deployed to Arca is found by its prefix (group-level `maven-metadata.xml`
/// generated from the jar's plugin.xml, also through a group registry); an uploaded group-level
/// file does not replace it; directories list their children; `latestVersion` follows Maven's
/// order, not upload order.
async fn maven_plugin_prefix_listing_and_latest(b: Backend) {
    let s = Server::start(b).await;
    // A hosted registry and a GitFlic VIRTUAL group over it (instance-level GitFlic repositories
    // live in the `default` account).
    let hosted = s
        .harness_registry(
            "default",
            json!({"identifier": "mvn", "packageType": "MAVEN", "parentRef": "default"}),
        )
        .await;
    let (st, v) = call(
        s.client
            .post(s.url("/registry/instance/x/repositories"))
            .header("authorization", format!("token {}", s.token))
            .json(
                &json!({"type": "VIRTUAL", "repositoryName": "all", "packageType": "maven",
                          "virtualSettings": {"includedRepositoryUuids": [hosted["uuid"]]}}),
            ),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let dev = s.user_with_role("dev", "deployer", "default");
    let ro = s.user_with_role("ro", "reader", "default");
    let url = s.url("/pkg/default/mvn/maven/");
    let w = s.dir.path().join("plugin");
    // A real plugin: one Mojo compiled against Maven's plugin API, its descriptor, its POM.
    write(
        &w.join("src/com/acme/plugins/HelloMojo.java"),
        "package com.acme.plugins;\n\
         public class HelloMojo extends org.apache.maven.plugin.AbstractMojo {\n\
           public void execute() { System.out.println(\"ARCA-HELLO-FROM-PLUGIN\"); }\n\
         }\n",
    );
    let api = std::fs::read_dir("/usr/share/maven/lib")
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("maven-plugin-api")
        })
        .expect("Maven's plugin API jar");
    let classes = w.join("classes");
    let r = run(
        "javac",
        &[
            "--release",
            "11",
            "-cp",
            api.to_str().unwrap(),
            "-d",
            classes.to_str().unwrap(),
            "src/com/acme/plugins/HelloMojo.java",
        ],
        &w,
        &[],
    );
    assert!(r.ok, "javac: {}", r.stderr);
    write(
        &classes.join("META-INF/maven/plugin.xml"),
        "<plugin><name>Acme Hello Plugin</name><groupId>com.acme.plugins</groupId><artifactId>hello-maven-plugin</artifactId>\
         <version>1.0</version><goalPrefix>acmehello</goalPrefix><isolatedRealm>false</isolatedRealm><inheritedByDefault>true</inheritedByDefault>\
         <mojos><mojo><goal>hello</goal><requiresProject>false</requiresProject><implementation>com.acme.plugins.HelloMojo</implementation>\
         <language>java</language><instantiationStrategy>per-lookup</instantiationStrategy><executionStrategy>once-per-session</executionStrategy>\
         <threadSafe>true</threadSafe><parameters/></mojo></mojos><dependencies/></plugin>",
    );
    let jar = w.join("hello-maven-plugin-1.0.jar");
    let r = run(
        "jar",
        &[
            "cf",
            jar.to_str().unwrap(),
            "-C",
            classes.to_str().unwrap(),
            ".",
        ],
        &w,
        &[],
    );
    assert!(r.ok, "jar: {}", r.stderr);
    // Maven 3.8 adds plexus-utils 1.1 to a plugin that does not name a version, and Debian's
    // repository (standing in for central) has only 3.4.2.
    let pom = w.join("pom.xml");
    write(
        &pom,
        "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion><groupId>com.acme.plugins</groupId>\
         <artifactId>hello-maven-plugin</artifactId><version>1.0</version><packaging>maven-plugin</packaging>\
         <dependencies><dependency><groupId>org.codehaus.plexus</groupId><artifactId>plexus-utils</artifactId><version>3.4.2</version></dependency></dependencies></project>",
    );
    let mvn = Mvn::new(&s, "plugin", "dev", &dev);
    mvn.ok(
        &w,
        &[
            "org.apache.maven.plugins:maven-deploy-plugin:3.0.0:deploy-file",
            &format!("-Dfile={}", jar.display()),
            &format!("-DpomFile={}", pom.display()),
            "-DrepositoryId=arca",
            &format!("-Durl={url}"),
        ],
    );

    let get = |path: String| {
        let s = &s;
        let ro = ro.clone();
        async move {
            let r = s
                .client
                .get(path)
                .basic_auth("ro", Some(&ro))
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (st, ct, r.text().await.unwrap())
        }
    };
    let (st, _, meta) = get(format!("{url}com/acme/plugins/maven-metadata.xml")).await;
    assert_eq!(st, 200, "{meta}");
    assert!(
        meta.contains("<prefix>acmehello</prefix>")
            && meta.contains("<artifactId>hello-maven-plugin</artifactId>"),
        "{meta}"
    );
    let (_, _, sha1) = get(format!("{url}com/acme/plugins/maven-metadata.xml.sha1")).await;
    {
        use sha1::Digest;
        assert_eq!(sha1, hex::encode(sha1::Sha1::digest(meta.as_bytes())));
    }
    // Through the group too.
    let (st, _, merged) =
        get(s.url("/pkg/default/all/maven/com/acme/plugins/maven-metadata.xml")).await;
    assert_eq!(
        (st, merged.contains("<prefix>acmehello</prefix>")),
        (200, true),
        "{merged}"
    );
    // An uploaded group-level file is accepted and never served.
    let r = s
        .client
        .put(format!("{url}com/acme/plugins/maven-metadata.xml"))
        .basic_auth("dev", Some(&dev))
        .body("<metadata><plugins><plugin><prefix>forged</prefix><artifactId>x</artifactId></plugin></plugins></metadata>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, _, after) = get(format!("{url}com/acme/plugins/maven-metadata.xml")).await;
    assert_eq!(after, meta);

    // `mvn <prefix>:<goal>` with Arca as the plugin repository.
    let settings = std::fs::read_to_string(&mvn.settings).unwrap().replace(
        "</settings>",
        &format!(
            "<pluginGroups><pluginGroup>com.acme.plugins</pluginGroup></pluginGroups>\
             <profiles><profile><id>arca</id><pluginRepositories><pluginRepository><id>arca</id><url>{url}</url></pluginRepository></pluginRepositories></profile></profiles>\
             <activeProfiles><activeProfile>arca</activeProfile></activeProfiles></settings>"
        ),
    );
    std::fs::write(
        &mvn.settings,
        settings
            .replace("<username>dev</username>", "<username>ro</username>")
            .replace(&dev, &ro),
    )
    .unwrap();
    let out = mvn.ok(&s.dir.path().join("elsewhere"), &["acmehello:hello"]);
    assert!(out.contains("ARCA-HELLO-FROM-PLUGIN"), "{out}");

    // Directory listings.
    let (st, ct, page) = get(format!("{url}com/acme/plugins/hello-maven-plugin/1.0/")).await;
    assert_eq!(st, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(
        page.contains("href=\"hello-maven-plugin-1.0.jar\"")
            && page.contains("hello-maven-plugin-1.0.pom"),
        "{page}"
    );
    let (_, _, page) = get(format!("{url}com/acme/plugins/hello-maven-plugin/")).await;
    assert!(
        page.contains("href=\"1.0/\"") && page.contains("maven-metadata.xml"),
        "{page}"
    );
    let (_, _, page) = get(format!("{url}com/acme/")).await;
    assert!(page.contains("href=\"plugins/\""), "{page}");
    let (_, _, page) = get(url.clone()).await;
    assert!(page.contains("href=\"com/\""), "{page}");
    let (st, _, _) = get(format!("{url}com/nothing/")).await;
    assert_eq!(st, 404);

    // latestVersion follows Maven's order: 3.12.0 is newer than Debian's `debian` alias.
    for v in ["3.12.0", "debian", "3.9"] {
        let r = s
            .client
            .put(format!("{url}org/example/lang/{v}/lang-{v}.jar"))
            .basic_auth("dev", Some(&dev))
            .body(format!("jar {v}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let (st, list) =
        call(s.get("/har/api/v1/registry/default/mvn/+/artifacts?search_term=lang")).await;
    assert_eq!(st, 200, "{list}");
    let row = list["data"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "org.example:lang")
        .cloned()
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(row["latestVersion"], "3.12.0", "{row}");
    let (_, _, meta) = get(format!("{url}org/example/lang/maven-metadata.xml")).await;
    assert!(meta.contains("<latest>3.12.0</latest>"), "{meta}");
    // Deleting the newest moves latestVersion to the next by Maven's order, not the last upload.
    let r = s
        .client
        .delete(format!("{url}org/example/lang/3.12.0/lang-3.12.0.jar"))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (_, list) =
        call(s.get("/har/api/v1/registry/default/mvn/+/artifacts?search_term=lang")).await;
    let row = &list["data"]["artifacts"][0];
    assert_eq!(row["latestVersion"], "3.9", "{list}");
}

both_backends!(maven_plugin_prefix_listing_and_latest);

/// Real-client tests on SQLite only (the store is exercised on PostgreSQL elsewhere).
mod sqlite_clients {
    use crate::common::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pypi_oldest_and_newest_clients() {
        super::pypi_oldest_and_newest_clients(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn npm_oldest_and_newest_clients() {
        super::npm_oldest_and_newest_clients(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn apt_real_packages_and_revalidation() {
        super::apt_real_packages_and_revalidation(Backend::Sqlite).await
    }
}

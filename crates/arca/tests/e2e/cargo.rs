use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Run, Server, call, run};

pub(crate) struct CargoClient {
    home: PathBuf,
    target: PathBuf,
    token: String,
}

impl CargoClient {
    /// An isolated CARGO_HOME that knows one registry, `arca`.
    pub(crate) fn new(s: &Server, reg: &str, token: &str, tag: &str) -> CargoClient {
        CargoClient::at(s, "acme", reg, token, tag)
    }

    /// The same for registry `reg` of account `account`.
    pub(crate) fn at(s: &Server, account: &str, reg: &str, token: &str, tag: &str) -> CargoClient {
        let home = s.dir.path().join(format!("cargo-home-{tag}"));
        std::fs::create_dir_all(&home).unwrap();
        let index = format!("sparse+{}/pkg/{account}/{reg}/cargo/index/", s.base);
        std::fs::write(
            home.join("config.toml"),
            format!(
                "[registries.arca]\nindex = \"{index}\"\ncredential-provider = [\"cargo:token\"]\n"
            ),
        )
        .unwrap();
        CargoClient {
            home,
            target: s.dir.path().join("cargo-target"),
            token: token.to_string(),
        }
    }

    fn run(&self, cwd: &Path, args: &[&str]) -> Run {
        let env = [
            ("CARGO_HOME", self.home.display().to_string()),
            ("CARGO_TARGET_DIR", self.target.display().to_string()),
            ("CARGO_REGISTRIES_ARCA_TOKEN", self.token.clone()),
            ("CARGO_TERM_COLOR", "never".into()),
            ("CARGO_INCREMENTAL", "0".into()),
            ("RUSTFLAGS", String::new()),
        ];
        run(
            std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            args,
            cwd,
            &env,
        )
    }

    pub(crate) fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let r = self.run(cwd, args);
        assert!(r.ok, "cargo {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }
}

pub(crate) fn krate(dir: &Path, name: &str, version: &str, deps: &str, lib: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\ndescription = \"{name} for tests\"\nlicense = \"MIT\"\npublish = [\"arca\"]\n\n[dependencies]\n{deps}"),
    )
    .unwrap();
    std::fs::write(
        dir.join("src").join(if lib.contains("fn main") {
            "main.rs"
        } else {
            "lib.rs"
        }),
        lib,
    )
    .unwrap();
    dir.to_path_buf()
}

async fn publish_build_add_install_yank(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "crates", "packageType": "CARGO", "parentRef": "acme"}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let reader = s.user_with_role("ro", "reader", "acme");
    let cargo = CargoClient::new(&s, "crates", &dev, "dev");
    let w = s.dir.path();

    let alpha = krate(
        &w.join("alpha"),
        "alpha_util",
        "0.1.0",
        "",
        "pub fn answer() -> u32 { 42 }\n",
    );
    cargo.ok(
        &alpha,
        &[
            "publish",
            "--registry",
            "arca",
            "--allow-dirty",
            "--no-verify",
        ],
    );
    let beta = krate(
        &w.join("beta"),
        "beta-core",
        "0.2.0",
        "alpha_util = { version = \"0.1\", registry = \"arca\" }\n",
        "pub fn doubled() -> u32 { alpha_util::answer() * 2 }\n",
    );
    cargo.ok(
        &beta,
        &[
            "publish",
            "--registry",
            "arca",
            "--allow-dirty",
            "--no-verify",
        ],
    );
    let hello = krate(
        &w.join("hello"),
        "hello-bin",
        "1.0.0",
        "beta-core = { version = \"0.2\", registry = \"arca\" }\n",
        "fn main() { println!(\"doubled={}\", beta_core::doubled()); }\n",
    );
    cargo.ok(
        &hello,
        &[
            "publish",
            "--registry",
            "arca",
            "--allow-dirty",
            "--no-verify",
        ],
    );

    // The index.
    let idx: Value = serde_json::from_str(
        s.client
            .get(s.url("/pkg/acme/crates/cargo/index/be/ta/beta-core"))
            .header("authorization", &dev)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(idx["vers"], "0.2.0");
    assert_eq!(idx["deps"][0]["name"], "alpha_util");
    assert_eq!(idx["deps"][0]["req"], "^0.1");
    assert_eq!(idx["deps"][0]["registry"], Value::Null, "same registry");
    let cfg: Value = s
        .client
        .get(s.url("/pkg/acme/crates/cargo/index/config.json"))
        .header("authorization", &dev)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["auth-required"], true);
    assert_eq!(
        s.client
            .get(s.url("/pkg/acme/crates/cargo/index/config.json"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // A consumer that depends on beta-core (which depends on alpha_util) builds, as a reader.
    let consumer_client = CargoClient::new(&s, "crates", &reader, "ro");
    let app = krate(
        &w.join("app"),
        "app",
        "0.0.1",
        "beta-core = { version = \"0.2\", registry = \"arca\" }\n",
        "fn main() { assert_eq!(beta_core::doubled(), 84); }\n",
    );
    consumer_client.ok(&app, &["run", "-q"]);
    let lock = std::fs::read_to_string(app.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains(&format!(
            "source = \"sparse+{}/pkg/acme/crates/cargo/index/\"",
            s.base
        )),
        "{lock}"
    );
    let crate_bytes = s
        .client
        .get(s.url("/pkg/acme/crates/cargo/api/v1/crates/alpha_util/0.1.0/download"))
        .header("authorization", &dev)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let cksum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&crate_bytes));
    assert!(
        lock.contains(&format!("checksum = \"{cksum}\"")),
        "the lockfile pins the index cksum"
    );

    // cargo add, cargo install.
    let other = krate(&w.join("other"), "other", "0.0.1", "", "pub fn f() {}\n");
    consumer_client.ok(&other, &["add", "alpha_util", "--registry", "arca"]);
    assert!(
        std::fs::read_to_string(other.join("Cargo.toml"))
            .unwrap()
            .contains("alpha_util = { version = \"0.1.0\", registry = \"arca\" }")
    );
    let root = w.join("install-root");
    consumer_client.ok(
        w,
        &[
            "install",
            "--registry",
            "arca",
            "hello-bin",
            "--root",
            root.to_str().unwrap(),
        ],
    );
    let out = run(root.join("bin/hello-bin"), &[], w, &[]);
    assert_eq!(out.stdout.trim(), "doubled=84");

    // search, owners, yank.
    let found = cargo.ok(w, &["search", "--registry", "arca", "alpha"]);
    assert!(found.contains("alpha_util = \"0.1.0\""), "{found}");
    let owners = cargo.run(w, &["owner", "--list", "--registry", "arca", "alpha_util"]);
    assert!(
        owners.ok && owners.stdout.contains("dev"),
        "{}\n{}",
        owners.stdout,
        owners.stderr
    );
    cargo.ok(
        w,
        &[
            "yank",
            "--registry",
            "arca",
            "alpha_util",
            "--version",
            "0.1.0",
        ],
    );
    let line = s
        .client
        .get(s.url("/pkg/acme/crates/cargo/index/al/ph/alpha_util"))
        .header("authorization", &dev)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(line.contains("\"yanked\":true"), "{line}");
    cargo.ok(
        w,
        &[
            "yank",
            "--registry",
            "arca",
            "alpha_util",
            "--version",
            "0.1.0",
            "--undo",
        ],
    );
    let r = s
        .client
        .get(s.url("/pkg/acme/crates/cargo/index/al/ph/alpha_util"))
        .header("authorization", &dev)
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(r.text().await.unwrap().contains("\"yanked\":false"));
    let r = s
        .client
        .get(s.url("/pkg/acme/crates/cargo/index/al/ph/alpha_util"))
        .header("authorization", &dev)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // A reader may not publish; re-publishing a version is refused; cargo shows why.
    let alpha2 = krate(
        &w.join("alpha2"),
        "alpha_util",
        "0.1.1",
        "",
        "pub fn answer() -> u32 { 43 }\n",
    );
    let r = consumer_client.run(
        &alpha2,
        &[
            "publish",
            "--registry",
            "arca",
            "--allow-dirty",
            "--no-verify",
        ],
    );
    assert!(!r.ok && r.stderr.contains("403"), "{}", r.stderr);
    let r = cargo.run(
        &alpha,
        &[
            "publish",
            "--registry",
            "arca",
            "--allow-dirty",
            "--no-verify",
        ],
    );
    assert!(!r.ok && r.stderr.contains("already exists"), "{}", r.stderr);

    let (_, v) = call(s.get("/har/api/v1/registry/acme/crates/+/artifacts?sort_field=name")).await;
    let names: Vec<&str> = v["data"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alpha_util", "beta-core", "hello-bin"]);
}

async fn bad_publishes_store_nothing(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "crates", "packageType": "CARGO", "parentRef": "acme", "isPublic": true, "blockedPattern": ["^evil"]})).await;
    let cargo = CargoClient::new(&s, "crates", &s.token, "admin");
    let w = s.dir.path();
    // Public registry: config.json says so, and reads need no token.
    let cfg: Value = s
        .client
        .get(s.url("/pkg/acme/crates/cargo/index/config.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["auth-required"], false);
    let good = krate(&w.join("good"), "good", "1.0.0", "", "pub fn f() {}\n");
    cargo.ok(&good, &["package", "--allow-dirty", "--no-verify"]);
    let crate_file = std::fs::read(cargo.target.join("package/good-1.0.0.crate")).unwrap();
    let body = |meta: Value, krate: &[u8]| {
        let m = meta.to_string();
        let mut b = Vec::new();
        b.extend_from_slice(&(m.len() as u32).to_le_bytes());
        b.extend_from_slice(m.as_bytes());
        b.extend_from_slice(&(krate.len() as u32).to_le_bytes());
        b.extend_from_slice(krate);
        b
    };
    let meta =
        |name: &str, vers: &str| json!({"name": name, "vers": vers, "deps": [], "features": {}});
    for (b, status, what) in [
        (
            body(meta("impostor", "1.0.0"), &crate_file),
            400,
            "manifest disagrees",
        ),
        (
            body(meta("good", "1.0.1"), &crate_file),
            400,
            "version disagrees",
        ),
        (body(meta("good", "1.0"), &crate_file), 400, "not semver"),
        (body(meta("1bad", "1.0.0"), &crate_file), 400, "bad name"),
        (
            body(meta("good", "1.0.0"), b"not a tarball"),
            400,
            "not a crate",
        ),
        (b"\x05\x00".to_vec(), 400, "truncated"),
        (
            body(meta("evil-thing", "1.0.0"), &crate_file),
            403,
            "blocked",
        ),
    ] {
        let r = s
            .client
            .put(s.url("/pkg/acme/crates/cargo/api/v1/crates/new"))
            .header("authorization", &s.token)
            .body(b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{what}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["errors"][0]["detail"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{what}: {v}"
        );
    }
    let r = s
        .client
        .put(s.url("/pkg/acme/crates/cargo/api/v1/crates/new"))
        .body(body(meta("good", "1.0.0"), &crate_file))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "anonymous publish");
    let r = s
        .client
        .put(s.url("/pkg/acme/crates/cargo/api/v1/crates/new"))
        .header("authorization", &s.token)
        .body(body(meta("good", "1.0.0"), &crate_file))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The server itself refuses a second upload of a version (cargo checks the index first).
    let r = s
        .client
        .put(s.url("/pkg/acme/crates/cargo/api/v1/crates/new"))
        .header("authorization", &s.token)
        .body(body(meta("good", "1.0.0"), &crate_file))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("is already uploaded"));
    // Another spelling of the same crate.
    let other = krate(&w.join("good2"), "Good", "2.0.0", "", "pub fn f() {}\n");
    let r = cargo.run(
        &other,
        &[
            "publish",
            "--registry",
            "arca",
            "--allow-dirty",
            "--no-verify",
        ],
    );
    assert!(!r.ok && r.stderr.contains("conflicts"), "{}", r.stderr);
    let (_, v) = call(s.get("/har/api/v1/registry/acme/crates/+/artifacts")).await;
    assert_eq!(v["data"]["itemCount"], 1);
    // Anonymous download from the public registry.
    assert_eq!(
        s.client
            .get(s.url("/pkg/acme/crates/cargo/api/v1/crates/good/1.0.0/download"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

both_backends!(publish_build_add_install_yank, bad_publishes_store_nothing);

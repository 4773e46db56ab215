//! Client setup followed verbatim: each test fetches `client-setup-details` for a registry and
//! runs the returned commands with the real client in bash, substituting only the placeholders
//! (`<TOKEN>`, `<PASSWORD>`, `<FILE>`; the artifact and version are asked for by query, so the
//! server fills them in). The token itself comes from running step 1's `curl` line. It publishes
//! from one home directory and installs into a clean one. SQLite only: the store is covered by
//! the other tests on both backends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::{Backend, Server, call, tools};

/// A registry's client setup, as the management API returns it.
pub(crate) struct Steps {
    pub data: Value,
}

impl Steps {
    pub async fn fetch(s: &Server, reg_ref: &str, art: &str, ver: &str) -> Steps {
        let (st, v) = call(s.get(&format!(
            "/har/api/v1/registry/{reg_ref}/+/client-setup-details?artifact={art}&version={ver}"
        )))
        .await;
        assert_eq!(st, 200, "{v}");
        Steps {
            data: v["data"].clone(),
        }
    }

    /// The `(label, value)` commands of the sections whose header (after its number) starts
    /// with `prefix`, in order.
    pub fn commands(&self, prefix: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for sec in self.data["sections"].as_array().into_iter().flatten() {
            let header = sec["header"].as_str().unwrap_or("");
            let bare = header.split_once(". ").map_or(header, |(_, h)| h);
            if !bare.starts_with(prefix) {
                continue;
            }
            for st in sec["steps"].as_array().into_iter().flatten() {
                for c in st["commands"].as_array().into_iter().flatten() {
                    out.push((
                        c["label"].as_str().unwrap_or("").to_string(),
                        c["value"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
        assert!(!out.is_empty(), "no section '{prefix}' in {}", self.data);
        out
    }

    /// The shell commands of the matching sections (no file-content snippets).
    pub fn shell(&self, prefix: &str) -> Vec<String> {
        self.commands(prefix)
            .into_iter()
            .filter(|(label, _)| label.is_empty())
            .map(|(_, v)| v)
            .collect()
    }

    pub fn text(&self) -> String {
        self.data.to_string()
    }
}

/// A place to run commands in: a home directory of its own and the clients on PATH.
pub(crate) struct Shell {
    pub home: PathBuf,
    pub path: String,
    pub env: Vec<(String, String)>,
    pub subst: Vec<(String, String)>,
}

impl Shell {
    pub fn new(home: &Path, extra_path: &[PathBuf]) -> Shell {
        std::fs::create_dir_all(home).unwrap();
        let mut path: Vec<String> = extra_path.iter().map(|p| p.display().to_string()).collect();
        path.push(std::env::var("PATH").unwrap_or_default());
        Shell {
            home: home.to_path_buf(),
            path: path.join(":"),
            env: Vec::new(),
            subst: Vec::new(),
        }
    }

    pub fn set(mut self, k: &str, v: impl Into<String>) -> Shell {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Placeholder substitutions applied to every command.
    pub fn with(mut self, placeholder: &str, value: impl Into<String>) -> Shell {
        self.subst.push((placeholder.into(), value.into()));
        self
    }

    pub fn fill(&self, cmd: &str) -> String {
        let mut c = cmd.to_string();
        for (k, v) in &self.subst {
            c = c.replace(k, v);
        }
        assert!(
            !c.contains("<TOKEN>") && !c.contains("<ARTIFACT_NAME>") && !c.contains("<VERSION>"),
            "unfilled placeholder in {c}"
        );
        c
    }

    /// Runs one pasted command in bash (stdin as given) in `cwd`; returns stdout, panics with
    /// the output on failure.
    pub fn run(&self, cmd: &str, cwd: &Path, stdin: Option<&str>) -> String {
        let filled = self.fill(cmd);
        std::fs::create_dir_all(cwd).unwrap();
        let mut c = Command::new("bash");
        c.args(["-euo", "pipefail", "-c", &filled])
            .current_dir(cwd)
            .env("HOME", &self.home)
            .env("PATH", &self.path)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("CARGO_HOME")
            .env_remove("PIP_INDEX_URL")
            .env_remove("PIP_CONFIG_FILE")
            .env("NO_COLOR", "1")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("bash");
        if let Some(input) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().expect("wait");
        let (so, se) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "command failed: {filled}\n--- stdout\n{so}\n--- stderr\n{se}"
        );
        if std::env::var("ARCA_TEST_VERBOSE").is_ok() {
            eprintln!("$ {filled}\n{so}{se}");
        }
        so + &se
    }

    pub fn run_all(&self, cmds: &[String], cwd: &Path) -> String {
        cmds.iter().map(|c| self.run(c, cwd, None)).collect()
    }
}

/// Step 1's `curl` line, run with the admin token as the password: the new token it prints.
pub(crate) fn token_from_step1(s: &Server, steps: &Steps) -> String {
    let curl = steps.shell("Generate Identity Token");
    assert_eq!(curl.len(), 1, "{}", steps.text());
    assert!(curl[0].contains("/arca/v1/tokens"), "{}", curl[0]);
    let sh = Shell::new(&s.dir.path().join("step1-home"), &[]).with("<PASSWORD>", &s.token);
    let out = sh.run(&curl[0], s.dir.path(), None);
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let token = v["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("arca_"));
    token
}

/// A server with one hosted registry `<kind>-reg` of `package_type` in account `acme`, its steps
/// for `art`/`ver`, and a token made by step 1.
pub(crate) async fn hosted(package_type: &str, art: &str, ver: &str) -> (Server, Steps, String) {
    let s = Server::start(Backend::Sqlite).await;
    let id = format!("{}-reg", package_type.to_lowercase());
    s.harness_registry(
        "acme",
        json!({"identifier": id, "packageType": package_type, "parentRef": "acme"}),
    )
    .await;
    let steps = Steps::fetch(&s, &format!("acme/{id}"), art, ver).await;
    let token = token_from_step1(&s, &steps);
    (s, steps, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_verbatim_generic() {
    let (s, steps, token) = hosted("GENERIC", "tool", "1.0").await;
    let w = s.dir.path().join("generic");
    std::fs::create_dir_all(w.join("up")).unwrap();
    std::fs::write(w.join("up/build.tar.gz"), b"generic bytes").unwrap();
    let sh = Shell::new(&w.join("home"), &[])
        .with("<TOKEN>", &token)
        .with("<FILE>", "build.tar.gz");
    sh.run_all(&steps.shell("Upload"), &w.join("up"));
    sh.run_all(&steps.shell("Download"), &w.join("down"));
    assert_eq!(
        std::fs::read(w.join("down/build.tar.gz")).unwrap(),
        b"generic bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_verbatim_pypi() {
    let (s, steps, token) = hosted("PYTHON", "arcademo", "1.0").await;
    let w = s.dir.path().join("py");
    crate::pypi::make_dists(
        &w.join("proj/dist"),
        json!([{"kind": "wheel", "name": "arcademo", "version": "1.0"}]),
    );
    let py = tools().join("py/bin");
    let publish = Shell::new(&w.join("home-a"), std::slice::from_ref(&py))
        .with("<TOKEN>", &token)
        .set("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    publish.run_all(&steps.shell("Configure pip"), &w.join("proj"));
    publish.run_all(&steps.shell("Upload"), &w.join("proj"));
    // A clean home and a fresh virtual environment: only pip's user configuration from the steps.
    let venv = w.join("venv");
    let r = Command::new(py.join("python"))
        .args(["-m", "venv", venv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let install = Shell::new(&w.join("home-b"), &[venv.join("bin")])
        .with("<TOKEN>", &token)
        .set("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .set("PIP_NO_CACHE_DIR", "1")
        .set("PIP_FIND_LINKS", "")
        .set("PIP_EXTRA_INDEX_URL", "");
    install.run_all(&steps.shell("Configure pip"), &w.join("use"));
    let out = install.run_all(&steps.shell("Install"), &w.join("use"));
    assert!(out.contains("Successfully installed arcademo-1.0"), "{out}");
    let out = install.run(
        "python -c 'import arcademo; print(arcademo.VALUE)'",
        &w.join("use"),
        None,
    );
    assert!(out.contains("arcademo 1.0"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_verbatim_npm() {
    let (s, steps, token) = hosted("NPM", "arcademo", "1.0.0").await;
    let w = s.dir.path().join("npm");
    std::fs::create_dir_all(w.join("pkg")).unwrap();
    std::fs::write(
        w.join("pkg/package.json"),
        r#"{"name": "arcademo", "version": "1.0.0", "main": "index.js"}"#,
    )
    .unwrap();
    std::fs::write(w.join("pkg/index.js"), "module.exports = 'arca demo';\n").unwrap();
    let publish = Shell::new(&w.join("home-a"), &[])
        .with("<TOKEN>", &token)
        .set("npm_config_update_notifier", "false");
    publish.run_all(&steps.shell("Configure npm"), &w.join("pkg"));
    publish.run_all(&steps.shell("Publish"), &w.join("pkg"));
    let install = Shell::new(&w.join("home-b"), &[])
        .with("<TOKEN>", &token)
        .set("npm_config_update_notifier", "false")
        .set("npm_config_audit", "false")
        .set("npm_config_fund", "false");
    install.run_all(&steps.shell("Configure npm"), &w.join("use"));
    install.run_all(&steps.shell("Install"), &w.join("use"));
    let out = install.run(
        "node -e \"console.log(require('arcademo'))\"",
        &w.join("use"),
        None,
    );
    assert!(out.contains("arca demo"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_verbatim_cargo() {
    let (s, steps, token) = hosted("CARGO", "arcademo", "0.1.0").await;
    let w = s.dir.path().join("cargo");
    let krate = w.join("arcademo");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"arcademo\"\nversion = \"0.1.0\"\nedition = \"2021\"\ndescription = \"demo\"\nlicense = \"MIT\"\n",
    )
    .unwrap();
    std::fs::write(krate.join("src/lib.rs"), "pub fn answer() -> u32 { 42 }\n").unwrap();
    // The cargo running these tests (through rustup's proxy when there is one, which needs its
    // own home).
    let cargo = PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let cargo_dir = cargo.parent().map(Path::to_path_buf).unwrap_or_default();
    let rustup = std::env::var("RUSTUP_HOME")
        .unwrap_or_else(|_| format!("{}/.rustup", std::env::var("HOME").unwrap_or_default()));
    let shell = |home: &str| {
        Shell::new(&w.join(home), std::slice::from_ref(&cargo_dir))
            .with("<TOKEN>", &token)
            .set("RUSTUP_HOME", &rustup)
            .set("CARGO_TARGET_DIR", w.join("target").display().to_string())
            .set("CARGO_TERM_COLOR", "never")
            .set("RUSTFLAGS", "")
    };
    let publish = shell("home-a");
    publish.run_all(&steps.shell("Configure cargo"), &krate);
    for login in steps.shell("Log in") {
        // cargo reads the token from standard input, as the step says.
        publish.run(&login, &krate, Some(&format!("{token}\n")));
    }
    publish.run_all(&steps.shell("Publish"), &krate);
    let install = shell("home-b");
    let user = w.join("user");
    install.run("cargo new --vcs none --bin user", &w, None);
    std::fs::write(
        user.join("src/main.rs"),
        "fn main() { println!(\"answer {}\", arcademo::answer()); }\n",
    )
    .unwrap();
    install.run_all(&steps.shell("Configure cargo"), &user);
    for login in steps.shell("Log in") {
        install.run(&login, &user, Some(&format!("{token}\n")));
    }
    install.run_all(&steps.shell("Install"), &user);
    let out = install.run("cargo run -q", &user, None);
    assert!(out.contains("answer 42"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_verbatim_composer() {
    let (s, steps, token) = hosted("COMPOSER", "acme/arcademo", "1.0.0").await;
    let w = s.dir.path().join("composer");
    std::fs::create_dir_all(w.join("up")).unwrap();
    let zip = crate::composer::archive(
        "arcademo/",
        &[
            (
                "composer.json",
                r#"{"name": "acme/arcademo", "version": "1.0.0", "autoload": {"psr-4": {"Acme\\Demo\\": "src/"}}}"#,
            ),
            (
                "src/Hello.php",
                "<?php namespace Acme\\Demo; class Hello { public static function say() { return 'composer demo'; } }\n",
            ),
        ],
    );
    std::fs::write(w.join("up/arcademo-1.0.0.zip"), zip).unwrap();
    let sh = |home: &str| {
        Shell::new(&w.join(home), &[])
            .with("<TOKEN>", &token)
            .with("<FILE>", "arcademo-1.0.0")
            .set("COMPOSER_NO_INTERACTION", "1")
            .set("COMPOSER_NO_AUDIT", "1")
    };
    sh("home-a").run_all(&steps.shell("Upload"), &w.join("up"));
    // A clean project directory: the steps create composer.json themselves.
    let install = sh("home-b");
    let app = w.join("app");
    install.run_all(&steps.shell("Configure composer"), &app);
    install.run_all(&steps.shell("Install"), &app);
    let out = install.run(
        "php -r 'require \"vendor/autoload.php\"; echo Acme\\Demo\\Hello::say();'",
        &app,
        None,
    );
    assert!(out.contains("composer demo"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_verbatim_cran() {
    let (s, steps, token) = hosted("CRAN", "arcademo", "0.1.0").await;
    let w = s.dir.path().join("cran");
    std::fs::create_dir_all(&w).unwrap();
    let tarball = crate::cran::build_package(
        &w,
        "arcademo",
        "0.1.0",
        "",
        "hello <- function() \"cran demo\"\n",
    );
    std::fs::create_dir_all(w.join("up")).unwrap();
    std::fs::write(w.join("up/arcademo_0.1.0.tar.gz"), tarball).unwrap();
    let sh = Shell::new(&w.join("home"), &[])
        .with("<TOKEN>", &token)
        .with("<FILE>", "arcademo_0.1.0")
        .set("R_LIBS", w.join("lib").display().to_string())
        .set("R_LIBS_USER", w.join("lib").display().to_string());
    std::fs::create_dir_all(w.join("lib")).unwrap();
    sh.run_all(&steps.shell("Upload"), &w.join("up"));
    // The R lines, pasted into one R session.
    let r: Vec<String> = ["Configure R", "Install"]
        .iter()
        .flat_map(|p| steps.commands(p))
        .map(|(_, v)| sh.fill(&v))
        .collect();
    let script = w.join("use.R");
    std::fs::write(
        &script,
        format!(
            "{}\nlibrary(arcademo)\ncat(hello(), \"\\n\")\n",
            r.join("\n")
        ),
    )
    .unwrap();
    let out = sh.run(&format!("Rscript {}", script.display()), &w, None);
    assert!(out.contains("cran demo"), "{out}");
    assert!(!out.contains(&token), "R printed the token: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_verbatim_maven() {
    let (s, steps, token) = hosted("MAVEN", "com.acme:arcademo", "1.0").await;
    let w = s.dir.path().join("maven");
    // The machine's only plugin repository is Debian's (the environment, not Arca): a global
    // settings file in .mvn/maven.config of each project points Maven at it.
    let global = w.join("global-settings.xml");
    std::fs::create_dir_all(&w).unwrap();
    std::fs::write(
        &global,
        "<settings><mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf><url>file:///usr/share/maven-repo</url></mirror></mirrors></settings>",
    )
    .unwrap();
    let pom = steps
        .commands("Configure pom.xml")
        .into_iter()
        .find(|(l, _)| l == "pom.xml")
        .map(|(_, v)| v)
        .expect("pom snippet");
    let project = |dir: &Path, artifact: &str, deps: &str| {
        std::fs::create_dir_all(dir.join(".mvn")).unwrap();
        std::fs::write(
            dir.join(".mvn/maven.config"),
            format!("-gs\n{}\n-B\n", global.display()),
        )
        .unwrap();
        std::fs::write(
            dir.join("pom.xml"),
            format!(
                "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>\
                 <groupId>com.acme</groupId><artifactId>{artifact}</artifactId><version>1.0</version>\
                 <properties><maven.compiler.source>11</maven.compiler.source><maven.compiler.target>11</maven.compiler.target>\
                 <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>{deps}\n{pom}\n</project>"
            ),
        )
        .unwrap();
    };
    let lib = w.join("arcademo");
    project(&lib, "arcademo", "");
    std::fs::create_dir_all(lib.join("src/main/java/com/acme")).unwrap();
    std::fs::write(
        lib.join("src/main/java/com/acme/Demo.java"),
        "package com.acme; public class Demo { public static String hello() { return \"maven demo\"; } }",
    )
    .unwrap();
    // Java takes its home from the password database, not $HOME: point it at the clean home.
    let sh = |home: &str| {
        Shell::new(&w.join(home), &[]).with("<TOKEN>", &token).set(
            "MAVEN_OPTS",
            format!("-Duser.home={}", w.join(home).display()),
        )
    };
    let publish = sh("home-a");
    publish.run_all(&steps.shell("Configure settings.xml"), &lib);
    publish.run_all(&steps.shell("Deploy"), &lib);
    // A clean home (empty local repository) and a project with the <repositories> snippet.
    let install = sh("home-b");
    let app = w.join("app");
    project(&app, "app", "");
    install.run_all(&steps.shell("Configure settings.xml"), &app);
    install.run_all(&steps.shell("Install"), &app);
    let jar = w.join("home-b/.m2/repository/com/acme/arcademo/1.0/arcademo-1.0.jar");
    assert!(jar.exists(), "not resolved into the clean local repository");
}

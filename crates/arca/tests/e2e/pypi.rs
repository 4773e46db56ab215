use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Run, Server, call, run, tools};

pub(crate) fn py(bin: &str) -> PathBuf {
    tools().join("py/bin").join(bin)
}

pub(crate) fn make_dists(out: &Path, spec: Value) -> Vec<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fixtures/make_dists.py");
    std::fs::create_dir_all(out).unwrap();
    let r = run(
        "python3",
        &[
            script.to_str().unwrap(),
            out.to_str().unwrap(),
            &spec.to_string(),
        ],
        out,
        &[],
    );
    assert!(r.ok, "{}", r.stderr);
    r.stdout.lines().map(PathBuf::from).collect()
}

pub(crate) fn client_env(work: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("PIP_CONFIG_FILE", "/dev/null".into()),
        // Only Arca: no machine-wide wheel directories or extra indexes.
        ("PIP_FIND_LINKS", String::new()),
        ("PIP_EXTRA_INDEX_URL", String::new()),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1".into()),
        ("PIP_NO_CACHE_DIR", "1".into()),
        ("UV_CACHE_DIR", work.join("uv-cache").display().to_string()),
        ("UV_NO_CONFIG", "1".into()),
        ("TWINE_NON_INTERACTIVE", "1".into()),
    ]
}

pub(crate) fn twine(s: &Server, root: &str, token: &str, files: &[PathBuf]) -> Run {
    let work = s.dir.path();
    let mut args = vec![
        "upload",
        "--repository-url",
        root,
        "-u",
        "__token__",
        "-p",
        token,
        "--disable-progress-bar",
        "--verbose",
    ];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    run(py("twine"), &args, work, &client_env(work))
}

pub(crate) fn index_url(s: &Server, reg: &str, token: Option<&str>) -> String {
    let host = s.base.trim_start_matches("http://");
    match token {
        Some(t) => format!("http://u:{t}@{host}/pkg/acme/{reg}/python/simple/"),
        None => format!("http://{host}/pkg/acme/{reg}/python/simple/"),
    }
}

async fn twine_upload_then_pip_and_uv_install(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "py", "packageType": "PYTHON", "parentRef": "acme"}),
    )
    .await;
    let deployer = s.user_with_role("dev", "deployer", "acme");
    let reader = s.user_with_role("ro", "reader", "acme");
    let dist = s.dir.path().join("dist");
    let files = make_dists(
        &dist,
        json!([
            {"kind": "wheel", "name": "Alpha_Lib", "version": "1.0"},
            {"kind": "wheel", "name": "alpha-lib", "version": "1.1"},
            {"kind": "sdist", "name": "alpha-lib", "version": "1.1"},
            {"kind": "wheel", "name": "beta", "version": "2.0", "deps": ["alpha-lib>=1.1"], "requires_python": ">=3.8"},
        ]),
    );
    let root = s.url("/pkg/acme/py/python/");
    let r = twine(&s, &root, &deployer, &files);
    assert!(r.ok, "twine upload failed:\n{}\n{}", r.stdout, r.stderr);

    // pip: a dependency tree that lives entirely in Arca, with basic-auth credentials in the URL.
    let work = s.dir.path();
    let target = work.join("site");
    let r = run(
        py("pip"),
        &[
            "install",
            "--index-url",
            &index_url(&s, "py", Some(&reader)),
            "--target",
            target.to_str().unwrap(),
            "beta",
        ],
        work,
        &client_env(work),
    );
    assert!(r.ok, "pip install failed:\n{}\n{}", r.stdout, r.stderr);
    assert!(
        target.join("beta.py").exists() && target.join("alpha_lib.py").exists(),
        "{}",
        r.stdout
    );
    assert!(
        std::fs::read_to_string(target.join("alpha_lib.py"))
            .unwrap()
            .contains("1.1"),
        "the newest allowed version"
    );

    // pip install -r, pip download.
    std::fs::write(work.join("req.txt"), "alpha-lib==1.0\n").unwrap();
    let target2 = work.join("site2");
    let r = run(
        py("pip"),
        &[
            "install",
            "--index-url",
            &index_url(&s, "py", Some(&reader)),
            "--target",
            target2.to_str().unwrap(),
            "-r",
            "req.txt",
        ],
        work,
        &client_env(work),
    );
    assert!(r.ok, "pip install -r failed:\n{}\n{}", r.stdout, r.stderr);
    assert!(
        std::fs::read_to_string(target2.join("alpha_lib.py"))
            .unwrap()
            .contains("1.0")
    );
    let dl = work.join("dl");
    let r = run(
        py("pip"),
        &[
            "download",
            "--no-deps",
            "--index-url",
            &index_url(&s, "py", Some(&reader)),
            "-d",
            dl.to_str().unwrap(),
            "alpha-lib==1.1",
            "--only-binary",
            ":all:",
        ],
        work,
        &client_env(work),
    );
    assert!(r.ok, "pip download failed:\n{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        std::fs::read(dl.join("alpha_lib-1.1-py3-none-any.whl")).unwrap(),
        std::fs::read(dist.join("alpha_lib-1.1-py3-none-any.whl")).unwrap()
    );
    // The sdist downloads byte for byte through the URL the index gives.
    let sdist = s
        .client
        .get(s.url("/pkg/acme/py/python/files/alpha-lib/1.1/alpha-lib-1.1.tar.gz"))
        .basic_auth("u", Some(&reader))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sdist.bytes().await.unwrap().as_ref(),
        std::fs::read(dist.join("alpha-lib-1.1.tar.gz"))
            .unwrap()
            .as_slice()
    );

    // uv.
    let target3 = work.join("site3");
    let r = run(
        py("uv"),
        &[
            "pip",
            "install",
            "--python",
            py("python").to_str().unwrap(),
            "--index-url",
            &index_url(&s, "py", Some(&reader)),
            "--target",
            target3.to_str().unwrap(),
            "beta",
        ],
        work,
        &client_env(work),
    );
    assert!(r.ok, "uv pip install failed:\n{}\n{}", r.stdout, r.stderr);
    assert!(target3.join("beta.py").exists() && target3.join("alpha_lib.py").exists());

    // Without credentials a private registry refuses, with the challenge pip needs.
    let r = run(
        py("pip"),
        &[
            "install",
            "--index-url",
            &index_url(&s, "py", None),
            "--target",
            work.join("x").to_str().unwrap(),
            "beta",
        ],
        work,
        &client_env(work),
    );
    assert!(!r.ok);

    // The artifacts show up in the management API.
    let (_, v) = call(s.get("/har/api/v1/registry/acme/py/+/artifacts?sort_field=name")).await;
    let names: Vec<&str> = v["data"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alpha-lib", "beta"]);
    let (_, v) =
        call(s.get("/har/api/v1/registry/acme/py/+/artifact/alpha-lib/+/versions?sort_field=name"))
            .await;
    let versions: Vec<(&str, i64)> = v["data"]["artifactVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["fileCount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, vec![("1.0", 1), ("1.1", 2)]);
    assert_eq!(
        v["data"]["artifactVersions"][1]["pullCommand"],
        "pip install alpha-lib==1.1"
    );
}

async fn simple_api_html_json_metadata_and_yank(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "py", "packageType": "PYTHON", "parentRef": "acme", "isPublic": true}),
    )
    .await;
    let dist = s.dir.path().join("dist");
    let files = make_dists(
        &dist,
        json!([
            {"kind": "wheel", "name": "gamma", "version": "0.1", "requires_python": ">=3.8"},
            {"kind": "sdist", "name": "gamma", "version": "0.1"},
        ]),
    );
    let r = twine(&s, &s.url("/pkg/acme/py/python/"), &s.token, &files);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    let wheel_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(&files[0]).unwrap(),
    ));

    // PEP 691 JSON (anonymous: the registry is public).
    let r = s
        .client
        .get(s.url("/pkg/acme/py/python/simple/gamma/"))
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.pypi.simple.v1+json"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["api-version"], "1.1");
    assert_eq!(v["versions"], json!(["0.1"]));
    let wheel = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == "gamma-0.1-py3-none-any.whl")
        .unwrap()
        .clone();
    assert_eq!(wheel["hashes"]["sha256"], wheel_sha.as_str());
    assert_eq!(wheel["requires-python"], ">=3.8");
    assert_eq!(wheel["yanked"], false);
    assert!(wheel["size"].as_i64().unwrap() > 0);
    assert!(wheel["upload-time"].as_str().unwrap().ends_with('Z'));
    let core_sha = wheel["core-metadata"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let sdist = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == "gamma-0.1.tar.gz")
        .unwrap()
        .clone();
    assert_eq!(sdist["core-metadata"], false);
    // Conditional GET.
    let r = s
        .client
        .get(s.url("/pkg/acme/py/python/simple/gamma/"))
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // PEP 658: the METADATA file, hashed as announced.
    let url = s.url(&format!(
        "/pkg/acme/py/python/simple/gamma/{}",
        wheel["url"].as_str().unwrap()
    ));
    let meta = s
        .client
        .get(format!("{url}.metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(meta.status(), 200);
    let meta = meta.bytes().await.unwrap();
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&meta)),
        core_sha
    );
    assert!(String::from_utf8_lossy(&meta).contains("Name: gamma"));

    // PEP 503 HTML.
    let r = s
        .client
        .get(s.url("/pkg/acme/py/python/simple/gamma/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.pypi.simple.v1+html"
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "href=\"../../files/gamma/0.1/gamma-0.1-py3-none-any.whl#sha256={wheel_sha}\""
        )),
        "{html}"
    );
    assert!(html.contains("data-requires-python=\"&gt;=3.8\""), "{html}");
    assert!(
        html.contains(&format!("data-core-metadata=\"sha256={core_sha}\"")),
        "{html}"
    );
    // Non-normalised names redirect; the index lists projects; unknown ones are 404; bad Accept 406.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(s.url("/pkg/acme/py/python/simple/GAMMA"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/simple/gamma/")
    );
    let v: Value = s
        .client
        .get(s.url("/pkg/acme/py/python/simple/"))
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["projects"], json!([{"name": "gamma"}]));
    assert_eq!(
        s.client
            .get(s.url("/pkg/acme/py/python/simple/nope/"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.client
            .get(s.url("/pkg/acme/py/python/simple/gamma/"))
            .header("accept", "application/xml")
            .send()
            .await
            .unwrap()
            .status(),
        406
    );

    // PEP 592: yank with a reason, then un-yank.
    let r = s
        .client
        .put(s.url("/pkg/acme/py/python/yank/gamma/0.1"))
        .header("x-api-key", &s.token)
        .body("broken build")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let v: Value = s
        .client
        .get(s.url("/pkg/acme/py/python/simple/gamma/"))
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["yanked"] == "broken build"),
        "{v}"
    );
    let html = s
        .client
        .get(s.url("/pkg/acme/py/python/simple/gamma/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-yanked=\"broken build\""));
    assert_eq!(
        s.client
            .put(s.url("/pkg/acme/py/python/yank/gamma/0.1"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = s
        .client
        .delete(s.url("/pkg/acme/py/python/yank/gamma/0.1"))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let v: Value = s
        .client
        .get(s.url("/pkg/acme/py/python/simple/gamma/"))
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["yanked"] == false)
    );

    // Anonymous pip install from the public registry.
    let work = s.dir.path();
    let r = run(
        py("pip"),
        &[
            "install",
            "--index-url",
            &index_url(&s, "py", None),
            "--target",
            work.join("anon").to_str().unwrap(),
            "gamma",
        ],
        work,
        &client_env(work),
    );
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
}

async fn bad_uploads_store_nothing(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "py", "packageType": "PYTHON", "parentRef": "acme",
        "packageReuploadType": "NONE", "blockedPattern": ["^secret"]}),
    )
    .await;
    let dist = s.dir.path().join("dist");
    let good = make_dists(
        &dist,
        json!([{"kind": "wheel", "name": "delta", "version": "1.0"}]),
    );
    let root = s.url("/pkg/acme/py/python/");
    assert!(twine(&s, &root, &s.token, &good).ok);
    // Re-upload with NONE: refused with PyPI's wording, which twine shows the user.
    let r = twine(&s, &root, &s.token, &good);
    assert!(!r.ok);
    // twine wraps the server's message across lines.
    let said = format!("{} {}", r.stdout, r.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        said.contains("File already exists ('delta-1.0-py3-none-any.whl')"),
        "{said}"
    );
    // A wheel whose metadata names another project.
    let bad = make_dists(
        &s.dir.path().join("bad"),
        json!([{"kind": "wheel", "name": "epsilon", "version": "1.0", "meta_name": "zeta"}]),
    );
    let r = twine(&s, &root, &s.token, &bad);
    assert!(!r.ok);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("400"),
        "{}",
        r.stderr
    );
    // Blocked by pattern.
    let blocked = make_dists(
        &s.dir.path().join("blk"),
        json!([{"kind": "wheel", "name": "secret-thing", "version": "1.0"}]),
    );
    let r = twine(&s, &root, &s.token, &blocked);
    assert!(!r.ok);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("403"),
        "{}",
        r.stderr
    );
    // Hand-made requests: sha256 mismatch, not a zip, missing fields, not multipart.
    let form = |name: &str, version: &str, sha: &str, fname: &str, content: Vec<u8>| {
        reqwest::multipart::Form::new()
            .text(":action", "file_upload")
            .text("name", name.to_string())
            .text("version", version.to_string())
            .text("sha256_digest", sha.to_string())
            .part(
                "content",
                reqwest::multipart::Part::bytes(content).file_name(fname.to_string()),
            )
    };
    let wheel = std::fs::read(&good[0]).unwrap();
    for (f, field) in [
        (
            form(
                "delta",
                "2.0",
                &"0".repeat(64),
                "delta-2.0-py3-none-any.whl",
                wheel.clone(),
            ),
            "sha256_digest",
        ),
        (
            form(
                "delta",
                "2.0",
                "",
                "delta-2.0-py3-none-any.whl",
                b"not a zip".to_vec(),
            ),
            "content",
        ),
        (
            form("delta", "2.0", "", "delta-2.0.exe", wheel.clone()),
            "content",
        ),
        (
            form(
                "delta",
                "not a version",
                "",
                "delta-2.0-py3-none-any.whl",
                wheel.clone(),
            ),
            "version",
        ),
        (
            form(
                "other",
                "2.0",
                "",
                "delta-2.0-py3-none-any.whl",
                wheel.clone(),
            ),
            "content",
        ),
        (
            form(
                "delta",
                "2.0",
                "",
                "delta-2.0-py3-none-any.whl",
                wheel.clone(),
            ),
            "content",
        ),
    ] {
        let (st, v) = call(
            s.client
                .post(&root)
                .header("x-api-key", &s.token)
                .multipart(f),
        )
        .await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(v["details"]["field"], field, "{v}");
    }
    let (st, _) = call(s.client.post(&root).header("x-api-key", &s.token).body("x")).await;
    assert_eq!(st, 400);
    // Only the first good upload is stored.
    let (_, v) = call(s.get("/har/api/v1/registry/acme/py/+/artifacts")).await;
    assert_eq!(v["data"]["itemCount"], 1);
    let (_, v) = call(s.get("/har/api/v1/registry/acme/py/+/artifact/delta/+/versions")).await;
    assert_eq!(v["data"]["itemCount"], 1);
}

/// Two server processes share one metadata store and blob store: a page cached by one is not
/// served stale after the other accepts an upload.
async fn cached_pages_follow_writes_on_other_servers(b: Backend) {
    let a = Server::start(b).await;
    a.harness_registry(
        "acme",
        json!({"identifier": "py", "packageType": "PYTHON", "parentRef": "acme"}),
    )
    .await;
    let second_dir = tempfile::tempdir().unwrap();
    let data = a.data_dir().display().to_string();
    let b2 = Server::start_with(
        second_dir,
        a.database_url.clone(),
        &[
            ("ARCA_ADMIN_TOKEN", a.token.as_str()),
            ("ARCA_DATA_DIR", data.as_str()),
        ],
    )
    .await;
    let dist = a.dir.path().join("dist");
    let files = make_dists(
        &dist,
        json!([{"kind": "wheel", "name": "omega", "version": "1.0"}, {"kind": "wheel", "name": "omega", "version": "2.0"}]),
    );
    let page = |s: &Server| {
        let req = s
            .client
            .get(s.url("/pkg/acme/py/python/simple/omega/"))
            .header("x-api-key", &s.token)
            .header("accept", "application/vnd.pypi.simple.v1+json");
        async move { req.send().await.unwrap().json::<Value>().await.unwrap()["versions"].clone() }
    };
    assert!(twine(&a, &a.url("/pkg/acme/py/python/"), &a.token, &files[..1]).ok);
    assert_eq!(
        page(&b2).await,
        json!(["1.0"]),
        "served and cached by the second server"
    );
    assert!(twine(&a, &a.url("/pkg/acme/py/python/"), &a.token, &files[1..]).ok);
    assert_eq!(
        page(&b2).await,
        json!(["1.0", "2.0"]),
        "the upload through the first server is visible at once"
    );
    let r = b2
        .client
        .get(b2.url("/pkg/acme/py/python/files/omega/2.0/omega-2.0-py3-none-any.whl"))
        .header("x-api-key", &b2.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        std::fs::read(&files[1]).unwrap().as_slice()
    );
}

both_backends!(
    twine_upload_then_pip_and_uv_install,
    simple_api_html_json_metadata_and_yank,
    bad_uploads_store_nothing,
    cached_pages_follow_writes_on_other_servers,
);

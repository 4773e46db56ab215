use std::path::Path;

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Server, call, run};

/// Writes an R source package directory and builds it with `R CMD build`; returns the tarball.
pub(crate) fn build_package(
    w: &Path,
    name: &str,
    version: &str,
    depends: &str,
    code: &str,
) -> Vec<u8> {
    let dir = w.join("src").join(name);
    std::fs::create_dir_all(dir.join("R")).unwrap();
    let depends = if depends.is_empty() {
        String::new()
    } else {
        format!("Depends: {depends}\n")
    };
    std::fs::write(
        dir.join("DESCRIPTION"),
        format!("Package: {name}\nVersion: {version}\nTitle: Test Package\nDescription: A test package.\n\
                 License: MIT\nAuthor: Acme\nMaintainer: Acme <acme@example.com>\n{depends}"),
    )
    .unwrap();
    std::fs::write(dir.join("NAMESPACE"), "exportPattern(\"^[a-z]\")\n").unwrap();
    std::fs::write(dir.join("R").join(format!("{name}.R")), code).unwrap();
    let out = run(
        "R",
        &[
            "CMD",
            "build",
            "--no-manual",
            "--no-build-vignettes",
            dir.to_str().unwrap(),
        ],
        w,
        &[],
    );
    assert!(out.ok, "R CMD build: {}\n{}", out.stdout, out.stderr);
    std::fs::read(w.join(format!("{name}_{version}.tar.gz"))).unwrap()
}

pub(crate) async fn put(
    s: &Server,
    token: &str,
    file: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    call(
        s.client
            .put(s.url(&format!("/pkg/acme/cran/cran/src/contrib/{file}")))
            .basic_auth("u", Some(token))
            .body(body),
    )
    .await
}

/// R installs a package and its dependency from Arca; PACKAGES lists the latest versions, older
/// ones stay in Archive/; bad uploads store nothing.
async fn install_packages_with_r(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "cran", "packageType": "CRAN", "parentRef": "acme", "packageReuploadType": "NONE"})).await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let w = s.dir.path().join("r");
    std::fs::create_dir_all(&w).unwrap();
    let greetr = build_package(
        &w,
        "greetr",
        "1.0.0",
        "",
        "greet <- function(who) paste(\"hello\", who)\n",
    );
    let hellor1 = build_package(
        &w,
        "hellor",
        "0.1.0",
        "greetr",
        "hello <- function() greet(\"old\")\n",
    );
    std::fs::remove_dir_all(w.join("src/hellor")).unwrap();
    let hellor2 = build_package(
        &w,
        "hellor",
        "0.2.0",
        "greetr (>= 1.0.0)",
        "hello <- function() greet(\"from hellor\")\n",
    );
    for (file, body) in [
        ("greetr_1.0.0.tar.gz", &greetr),
        ("hellor_0.1.0.tar.gz", &hellor1),
        ("hellor_0.2.0.tar.gz", &hellor2),
    ] {
        let (st, v) = put(&s, &dev, file, body.clone()).await;
        assert_eq!(st, 201, "{file}: {v}");
    }
    // PACKAGES: the latest version of each, with its MD5.
    let text = s
        .get("/pkg/acme/cran/cran/src/contrib/PACKAGES")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("Package: hellor\nVersion: 0.2.0\nDepends: greetr (>= 1.0.0)"),
        "{text}"
    );
    let latest = s
        .get("/pkg/acme/cran/cran/src/contrib/hellor_0.2.0.tar.gz")
        .send()
        .await
        .unwrap();
    let md5 = latest.headers()["x-checksum-md5"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(latest.bytes().await.unwrap().as_ref(), hellor2.as_slice());
    assert!(text.contains(&format!("MD5sum: {md5}")), "{text}");
    assert!(!text.contains("0.1.0"), "{text}");
    let old = s
        .get("/pkg/acme/cran/cran/src/contrib/Archive/hellor/hellor_0.1.0.tar.gz")
        .send()
        .await
        .unwrap();
    assert_eq!(old.bytes().await.unwrap().as_ref(), hellor1.as_slice());

    // The real R: available.packages() and install.packages() of hellor pulls greetr too.
    let host = s
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let repo = format!("http://ro:{ro}@{host}/pkg/acme/cran/cran");
    std::fs::create_dir_all(w.join("lib")).unwrap();
    let script = format!(
        ".libPaths(c(normalizePath('lib'), .libPaths()))\n\
         options(repos = c(arca = '{repo}'))\n\
         ap <- available.packages()\n\
         cat(sort(rownames(ap)), sep = ',', fill = TRUE)\n\
         install.packages('hellor', lib = 'lib', quiet = TRUE)\n\
         library(hellor, lib.loc = 'lib')\n\
         cat('RESULT:', hello(), '\\n')\n"
    );
    let out = run("Rscript", &["-e", &script], &w, &[]);
    assert!(out.ok, "R failed:\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("greetr,hellor"), "{}", out.stdout);
    assert!(
        out.stdout.contains("RESULT: hello from hellor"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        w.join("lib/greetr").is_dir(),
        "the dependency was installed from Arca"
    );

    // Refusals: nothing is stored and the index does not change.
    let (_, before) = call(s.get("/har/api/v1/registry/acme/cran/+/artifacts")).await;
    let wrong = greetr.clone();
    for (what, file, body, want) in [
        ("re-upload", "greetr_1.0.0.tar.gz", greetr.clone(), 409u16),
        (
            "not gzip",
            "broken_1.0.tar.gz",
            b"not an archive".to_vec(),
            400,
        ),
        (
            "DESCRIPTION of another package",
            "other_1.0.0.tar.gz",
            wrong,
            400,
        ),
        ("bad file name", "greetr-1.0.0.tgz", greetr.clone(), 400),
    ] {
        let (st, v) = put(&s, &dev, file, body).await;
        assert_eq!(st, want, "{what}: {v}");
    }
    assert_eq!(put(&s, &ro, "new_1.0.tar.gz", greetr.clone()).await.0, 403);
    let (_, after) = call(s.get("/har/api/v1/registry/acme/cran/+/artifacts")).await;
    assert_eq!(before["data"]["itemCount"], after["data"]["itemCount"]);
    let again = s
        .get("/pkg/acme/cran/cran/src/contrib/PACKAGES")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(again, text);
}

both_backends!(install_packages_with_r);

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Run, Server, call, run};

pub(crate) struct Mvn {
    pub(crate) settings: PathBuf,
}

impl Mvn {
    /// settings.xml: Debian's plugin repository as `central`, credentials for server `arca`, and a
    /// fresh local repository so everything not from Debian is downloaded from Arca.
    pub(crate) fn new(s: &Server, tag: &str, user: &str, token: &str) -> Mvn {
        let dir = s.dir.path().join(format!("mvn-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = dir.join("settings.xml");
        std::fs::write(
            &settings,
            format!(
                "<settings><localRepository>{}</localRepository>\
                 <mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf><url>file:///usr/share/maven-repo</url></mirror></mirrors>\
                 <servers><server><id>arca</id><username>{user}</username><password>{token}</password></server></servers></settings>",
                dir.join("m2").display()
            ),
        )
        .unwrap();
        Mvn { settings }
    }

    pub(crate) fn run(&self, cwd: &Path, args: &[&str]) -> Run {
        std::fs::create_dir_all(cwd).unwrap();
        let mut all = vec![
            "-B",
            "-q",
            "--no-transfer-progress",
            "-s",
            self.settings.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        run("mvn", &all, cwd, &[("MAVEN_OPTS", "-Xmx256m".to_string())])
    }

    pub(crate) fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let r = self.run(cwd, args);
        assert!(r.ok, "mvn {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }
}

pub(crate) fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

pub(crate) fn project(root: &Path, url: &str) {
    let dm = format!(
        "<distributionManagement><repository><id>arca</id><url>{url}</url></repository><snapshotRepository><id>arca</id><url>{url}</url></snapshotRepository></distributionManagement>"
    );
    write(
        &root.join("pom.xml"),
        &format!(
            "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>\
         <groupId>com.acme</groupId><artifactId>parent</artifactId><version>1.0.0</version><packaging>pom</packaging>\
         <modules><module>core</module><module>util</module></modules>\
         <properties><maven.compiler.source>11</maven.compiler.source><maven.compiler.target>11</maven.compiler.target>\
         <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>\
         <build><plugins><plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-source-plugin</artifactId><version>3.2.1</version>\
         <executions><execution><id>attach-sources</id><goals><goal>jar-no-fork</goal></goals></execution></executions></plugin></plugins></build>\
         {dm}</project>"
        ),
    );
    for (m, dep, class) in [
        (
            "core",
            "",
            "package com.acme.core; public class Core { public static int answer() { return 42; } }",
        ),
        (
            "util",
            "<dependencies><dependency><groupId>com.acme</groupId><artifactId>core</artifactId><version>1.0.0</version></dependency></dependencies>",
            "package com.acme.util; public class Util { public static int twice() { return 2 * com.acme.core.Core.answer(); } }",
        ),
    ] {
        write(
            &root.join(m).join("pom.xml"),
            &format!(
                "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>\
             <parent><groupId>com.acme</groupId><artifactId>parent</artifactId><version>1.0.0</version></parent>\
             <artifactId>{m}</artifactId>{dep}</project>"
            ),
        );
        let cls = if m == "core" { "Core" } else { "Util" };
        write(
            &root
                .join(m)
                .join(format!("src/main/java/com/acme/{m}/{cls}.java")),
            class,
        );
    }
}

async fn deploy_snapshots_and_resolve(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "mvn", "packageType": "MAVEN", "parentRef": "acme", "packageReuploadType": "NONE"})).await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let reader = s.user_with_role("ro", "reader", "acme");
    let url = s.url("/pkg/acme/mvn/maven/");
    let w = s.dir.path();
    let mvn = Mvn::new(&s, "dev", "dev", &dev);

    // A multi-module project: parent POM, two jars with sources.
    let proj = w.join("proj");
    project(&proj, &url);
    mvn.ok(&proj, &["deploy"]);
    for f in [
        "com/acme/parent/1.0.0/parent-1.0.0.pom",
        "com/acme/core/1.0.0/core-1.0.0.jar",
        "com/acme/core/1.0.0/core-1.0.0-sources.jar",
        "com/acme/util/1.0.0/util-1.0.0.pom",
        "com/acme/util/1.0.0/util-1.0.0.jar",
    ] {
        let r = s
            .client
            .get(format!("{url}{f}"))
            .basic_auth("ro", Some(&reader))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{f}");
    }
    // Checksums are computed by Arca for every file.
    let jar = s
        .client
        .get(format!("{url}com/acme/core/1.0.0/core-1.0.0.jar"))
        .basic_auth("ro", Some(&reader))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    for (alg, want) in [
        (
            "sha1",
            hex::encode(<sha1::Sha1 as sha2::Digest>::digest(&jar)),
        ),
        (
            "sha256",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&jar)),
        ),
    ] {
        let got = s
            .client
            .get(format!("{url}com/acme/core/1.0.0/core-1.0.0.jar.{alg}"))
            .basic_auth("ro", Some(&reader))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(got, want, "{alg}");
    }
    // Artifact-level metadata, maintained by Arca.
    let meta = s
        .client
        .get(format!("{url}com/acme/core/maven-metadata.xml"))
        .basic_auth("ro", Some(&reader))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        meta.contains("<release>1.0.0</release>") && meta.contains("<version>1.0.0</version>"),
        "{meta}"
    );

    // Releases are immutable here (NONE): mvn reports the 409.
    let r = mvn.run(&proj, &["deploy"]);
    assert!(
        !r.ok && format!("{}{}", r.stdout, r.stderr).contains("409"),
        "{}",
        r.stdout
    );

    // A SNAPSHOT deployed twice: timestamped builds and version-level metadata.
    // A jar without an embedded POM (deploy-file would publish an embedded one instead).
    let jarfile = w.join("snap.jar");
    let r = run(
        "python3",
        &[
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').writestr('snap.txt', 'snapshot')",
            jarfile.to_str().unwrap(),
        ],
        w,
        &[],
    );
    assert!(r.ok, "{}", r.stderr);
    let deploy_file = [
        "org.apache.maven.plugins:maven-deploy-plugin:3.0.0:deploy-file",
        &format!("-Dfile={}", jarfile.display()),
        "-DgroupId=com.acme",
        "-DartifactId=snap",
        "-Dversion=1.1.0-SNAPSHOT",
        "-Dpackaging=jar",
        "-DrepositoryId=arca",
        &format!("-Durl={url}"),
    ];
    mvn.ok(w, &deploy_file);
    mvn.ok(w, &deploy_file);
    let vmeta = s
        .client
        .get(format!(
            "{url}com/acme/snap/1.1.0-SNAPSHOT/maven-metadata.xml"
        ))
        .basic_auth("ro", Some(&reader))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(vmeta.contains("<buildNumber>2</buildNumber>"), "{vmeta}");
    assert!(
        vmeta.contains("<extension>jar</extension>")
            && vmeta.contains("<extension>pom</extension>"),
        "{vmeta}"
    );
    let ameta = s
        .client
        .get(format!("{url}com/acme/snap/maven-metadata.xml"))
        .basic_auth("ro", Some(&reader))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        ameta.contains("<latest>1.1.0-SNAPSHOT</latest>") && !ameta.contains("<release>"),
        "{ameta}"
    );

    // A second project resolves the release and the SNAPSHOT from Arca, as a reader.
    let consumer = Mvn::new(&s, "ro", "ro", &reader);
    let app = w.join("app");
    write(
        &app.join("pom.xml"),
        &format!(
            "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>\
         <groupId>com.example</groupId><artifactId>app</artifactId><version>0.1</version>\
         <properties><maven.compiler.source>11</maven.compiler.source><maven.compiler.target>11</maven.compiler.target></properties>\
         <repositories><repository><id>arca</id><url>{url}</url><snapshots><enabled>true</enabled></snapshots></repository></repositories>\
         <dependencies><dependency><groupId>com.acme</groupId><artifactId>util</artifactId><version>1.0.0</version></dependency>\
         <dependency><groupId>com.acme</groupId><artifactId>snap</artifactId><version>1.1.0-SNAPSHOT</version></dependency></dependencies></project>"
        ),
    );
    write(
        &app.join("src/main/java/App.java"),
        "public class App { public static void main(String[] a) { System.out.println(com.acme.util.Util.twice()); } }",
    );
    consumer.ok(&app, &["package"]);
    assert!(app.join("target/app-0.1.jar").exists());
    let m2 = s.dir.path().join("mvn-ro/m2/com/acme");
    assert!(
        m2.join("core/1.0.0/core-1.0.0.jar").exists(),
        "transitive dependency downloaded"
    );
    assert!(
        m2.join("snap/1.1.0-SNAPSHOT").read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("-2.jar")),
        "newest snapshot build"
    );
    // dependency:get.
    consumer.ok(
        w,
        &[
            "org.apache.maven.plugins:maven-dependency-plugin:3.5.0:get",
            "-Dartifact=com.acme:core:1.0.0:jar:sources",
            &format!("-DremoteRepositories=arca::default::{url}"),
        ],
    );
    assert!(m2.join("core/1.0.0/core-1.0.0-sources.jar").exists());
    // Without credentials: refused.
    let anon = Mvn::new(&s, "anon", "nobody", "wrong");
    let r = anon.run(
        w,
        &[
            "org.apache.maven.plugins:maven-dependency-plugin:3.5.0:get",
            "-Dartifact=com.acme:util:1.0.0",
            &format!("-DremoteRepositories=arca::default::{url}"),
        ],
    );
    assert!(!r.ok);

    let (_, v) = call(s.get("/har/api/v1/registry/acme/mvn/+/artifacts?sort_field=name")).await;
    let names: Vec<&str> = v["data"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "com.acme:core",
            "com.acme:parent",
            "com.acme:snap",
            "com.acme:util"
        ]
    );
}

async fn bad_deploys_store_nothing(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "mvn", "packageType": "MAVEN", "parentRef": "acme", "blockedPattern": [":evil:"]})).await;
    let url = s.url("/pkg/acme/mvn/maven/");
    let put = |path: &str, body: &'static [u8]| {
        s.client
            .put(format!("{url}{path}"))
            .header("x-api-key", &s.token)
            .body(body)
            .send()
    };
    assert_eq!(
        put("com/acme/lib/1.0/lib-1.0.jar", b"jar bytes")
            .await
            .unwrap()
            .status(),
        201
    );
    // A checksum upload must agree with the file; it is not stored.
    assert_eq!(
        put(
            "com/acme/lib/1.0/lib-1.0.jar.sha1",
            b"0000000000000000000000000000000000000000"
        )
        .await
        .unwrap()
        .status(),
        400
    );
    let good = hex::encode(<sha1::Sha1 as sha2::Digest>::digest(b"jar bytes"));
    let r = s
        .client
        .put(format!("{url}com/acme/lib/1.0/lib-1.0.jar.sha1"))
        .header("x-api-key", &s.token)
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Client-side maven-metadata.xml is accepted and ignored.
    assert_eq!(
        put(
            "com/acme/lib/maven-metadata.xml",
            b"<metadata>lies</metadata>"
        )
        .await
        .unwrap()
        .status(),
        201
    );
    let meta = s
        .client
        .get(format!("{url}com/acme/lib/maven-metadata.xml"))
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(meta.contains("<version>1.0</version>") && !meta.contains("lies"));
    for (path, body, status) in [
        ("com/acme/lib/1.1/lib-1.1.pom", &b"<project><groupId>com.acme</groupId>"[..], 400),
        ("com/acme/lib/1.1/lib-1.1.pom", &b"<project><groupId>com.other</groupId><artifactId>lib</artifactId><version>1.1</version></project>"[..], 400),
        ("com/acme/lib/1.1/other-1.1.jar", &b"x"[..], 400),
        ("com/acme/lib/1.1/lib-1.2.jar", &b"x"[..], 400),
        ("com/acme/evil/1.0/evil-1.0.jar", &b"x"[..], 403),
        ("com/acme/lib/1.1/lib-1.1.jar.md5", &b"abc"[..], 404),
    ] {
        let r = s.client.put(format!("{url}{path}")).header("x-api-key", &s.token).body(body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
    }
    // Dot segments sent as they are (curl --path-as-is; other clients resolve them first).
    for path in [
        "com/acme/../../etc/1.1/x-1.1.jar",
        "com/acme/lib/%2e%2e/lib-..jar",
    ] {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--path-as-is",
                "-X",
                "PUT",
                "--data-binary",
                "x",
                "-H",
            ])
            .arg(format!("x-api-key: {}", s.token))
            .arg(format!("{url}{path}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "400", "{path}");
    }
    let (_, v) =
        call(s.get("/har/api/v1/registry/acme/mvn/+/artifact/com.acme:lib/+/versions")).await;
    assert_eq!(v["data"]["itemCount"], 1, "only 1.0 stored: {v}");
}

/// Gradle (Debian's 4.4) resolves a dependency from Arca with credentials; wrong ones fail.
async fn gradle_resolves(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "mvn", "packageType": "MAVEN", "parentRef": "acme"}),
    )
    .await;
    let ro = s.user_with_role("ro", "reader", "acme");
    let base = s.url("/pkg/acme/mvn/maven/");
    let jar = {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        z.start_file("hello.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, b"hello").unwrap();
        z.finish().unwrap().into_inner()
    };
    let pom = "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>\
               <groupId>com.acme</groupId><artifactId>hello</artifactId><version>1.0.0</version></project>";
    for (file, body) in [
        ("hello-1.0.0.pom", pom.as_bytes().to_vec()),
        ("hello-1.0.0.jar", jar.clone()),
    ] {
        let r = s
            .client
            .put(format!("{base}com/acme/hello/1.0.0/{file}"))
            .header("x-api-key", &s.token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{file}");
    }
    let build = |dir: &Path, password: &str| {
        write(
            &dir.join("build.gradle"),
            &format!(
                "apply plugin: 'java'\n\
                 repositories {{ maven {{ url '{base}'; credentials {{ username 'ro'; password '{password}' }} }} }}\n\
                 dependencies {{ compile 'com.acme:hello:1.0.0' }}\n\
                 task copyDeps(type: Copy) {{ from configurations.compile; into 'deps' }}\n"
            ),
        );
        run(
            "gradle",
            &[
                "-q",
                "--no-daemon",
                "-g",
                dir.join("gradle-home").to_str().unwrap(),
                "copyDeps",
            ],
            dir,
            &[],
        )
    };
    let bad = s.dir.path().join("gradle-bad");
    let r = build(&bad, "wrong");
    assert!(
        !r.ok && !bad.join("deps/hello-1.0.0.jar").exists(),
        "{}",
        r.stdout
    );
    let good = s.dir.path().join("gradle");
    let r = build(&good, &ro);
    assert!(r.ok, "gradle failed:\n{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        std::fs::read(good.join("deps/hello-1.0.0.jar")).unwrap(),
        jar
    );
}

both_backends!(
    deploy_snapshots_and_resolve,
    bad_deploys_store_nothing,
    gradle_resolves
);

//! OCI registries driven by the real clients: skopeo, umoci, buildah, podman, oras (oras-py) and
//! Helm's Go SDK (helm-python-sdk).

use std::path::Path;

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Run, Server, call, run, tools};

pub(crate) fn ok(r: Run, what: &str) -> String {
    assert!(r.ok, "{what} failed:\n{}\n{}", r.stdout, r.stderr);
    r.stdout
}

pub(crate) fn host(s: &Server) -> String {
    s.url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// The manifest digest an OCI layout's index.json records for `tag`.
pub(crate) fn layout_digest(layout: &Path, tag: &str) -> String {
    let idx: Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str())
        .unwrap_or_else(|| panic!("no {tag} in {idx}"))
        .to_string()
}

/// Builds layout `layout` with image `tag`: two layers from files, for `arch`.
pub(crate) fn umoci_image(w: &Path, tag: &str, arch: &str) {
    let files = w.join(format!("files-{tag}"));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("one.txt"), format!("one {tag}")).unwrap();
    std::fs::write(files.join("two.txt"), format!("two {tag}")).unwrap();
    if !w.join("layout").exists() {
        ok(
            run("umoci", &["init", "--layout", "layout"], w, &[]),
            "umoci init",
        );
    }
    let image = format!("layout:{tag}");
    ok(
        run("umoci", &["new", "--image", &image], w, &[]),
        "umoci new",
    );
    for f in ["one.txt", "two.txt"] {
        let src = files.join(f);
        ok(
            run(
                "umoci",
                &[
                    "insert",
                    "--rootless",
                    "--image",
                    &image,
                    src.to_str().unwrap(),
                    &format!("/{f}"),
                ],
                w,
                &[],
            ),
            "umoci insert",
        );
    }
    ok(
        run(
            "umoci",
            &[
                "config",
                "--image",
                &image,
                "--architecture",
                arch,
                "--config.cmd",
                "/one.txt",
            ],
            w,
            &[],
        ),
        "umoci config",
    );
}

/// Adds an OCI index over the images `tags` to the layout, as tag `name`.
pub(crate) fn add_index(layout: &Path, tags: &[&str], name: &str) {
    let mut manifests = Vec::new();
    for t in tags {
        let d = layout_digest(layout, t);
        let hexd = d.trim_start_matches("sha256:");
        let bytes = std::fs::read(layout.join("blobs/sha256").join(hexd)).unwrap();
        let m: Value = serde_json::from_slice(&bytes).unwrap();
        let cfg = m["config"]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        let config: Value =
            serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(cfg)).unwrap())
                .unwrap();
        manifests.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": bytes.len(),
                              "platform": {"architecture": config["architecture"], "os": "linux"}}));
    }
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})).unwrap();
    let hexd = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&index));
    std::fs::write(layout.join("blobs/sha256").join(&hexd), &index).unwrap();
    let path = layout.join("index.json");
    let mut idx: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    idx["manifests"].as_array_mut().unwrap().push(json!({"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": format!("sha256:{hexd}"), "size": index.len(), "annotations": {"org.opencontainers.image.ref.name": name}}));
    std::fs::write(&path, idx.to_string()).unwrap();
}

pub(crate) fn skopeo(w: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--insecure-policy"];
    all.extend_from_slice(args);
    run("skopeo", &all, w, &[])
}

/// skopeo copies a multi-layer image and a multi-arch index in and out; digests survive.
async fn skopeo_round_trips(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "docker", "packageType": "DOCKER", "parentRef": "acme", "packageReuploadType": "NONE"})).await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let w = s.dir.path().join("oci");
    std::fs::create_dir_all(&w).unwrap();
    umoci_image(&w, "v1", "amd64");
    umoci_image(&w, "arm", "arm64");
    add_index(&w.join("layout"), &["v1", "arm"], "multi");
    let h = host(&s);
    let dev_creds = format!("dev:{dev}");
    let ro_creds = format!("ro:{ro}");
    let push = |src: &str, dst: &str, creds: &str, all: bool| {
        let mut a = vec!["copy", "--dest-tls-verify=false", "--dest-creds", creds];
        if all {
            a.push("--all");
        }
        a.extend_from_slice(&[src, dst]);
        skopeo(&w, &a)
    };
    ok(
        push(
            "oci:layout:v1",
            &format!("docker://{h}/acme/docker/hello:v1"),
            &dev_creds,
            false,
        ),
        "skopeo push",
    );
    ok(
        push(
            "oci:layout:multi",
            &format!("docker://{h}/acme/docker/multi:v1"),
            &dev_creds,
            true,
        ),
        "skopeo push --all",
    );
    // Back out as a reader, and compare digests.
    ok(
        skopeo(
            &w,
            &[
                "copy",
                "--src-tls-verify=false",
                "--src-creds",
                &ro_creds,
                &format!("docker://{h}/acme/docker/hello:v1"),
                "oci:pulled:v1",
            ],
        ),
        "skopeo pull",
    );
    ok(
        skopeo(
            &w,
            &[
                "copy",
                "--all",
                "--src-tls-verify=false",
                "--src-creds",
                &ro_creds,
                &format!("docker://{h}/acme/docker/multi:v1"),
                "oci:pulled:multi",
            ],
        ),
        "skopeo pull --all",
    );
    assert_eq!(
        layout_digest(&w.join("pulled"), "v1"),
        layout_digest(&w.join("layout"), "v1")
    );
    assert_eq!(
        layout_digest(&w.join("pulled"), "multi"),
        layout_digest(&w.join("layout"), "multi")
    );
    let inspect = ok(
        skopeo(
            &w,
            &[
                "inspect",
                "--tls-verify=false",
                "--creds",
                &ro_creds,
                &format!("docker://{h}/acme/docker/hello:v1"),
            ],
        ),
        "skopeo inspect",
    );
    let inspect: Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    let tags = ok(
        skopeo(
            &w,
            &[
                "list-tags",
                "--tls-verify=false",
                "--creds",
                &ro_creds,
                &format!("docker://{h}/acme/docker/hello"),
            ],
        ),
        "list-tags",
    );
    assert_eq!(
        serde_json::from_str::<Value>(&tags).unwrap()["Tags"],
        json!(["v1"])
    );
    // A Docker schema 2 image (through a docker-archive) keeps its media type.
    ok(
        skopeo(
            &w,
            &[
                "copy",
                "oci:layout:v1",
                "docker-archive:arch.tar:acme/hello:v2",
            ],
        ),
        "to docker-archive",
    );
    ok(
        push(
            "docker-archive:arch.tar",
            &format!("docker://{h}/acme/docker/hello:v2"),
            &dev_creds,
            false,
        ),
        "push docker-archive",
    );
    let raw = ok(
        skopeo(
            &w,
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                "--creds",
                &ro_creds,
                &format!("docker://{h}/acme/docker/hello:v2"),
            ],
        ),
        "inspect --raw",
    );
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{raw}"
    );
    // Immutable tags: another image under v1 is denied; readers cannot push.
    let r = push(
        "oci:layout:arm",
        &format!("docker://{h}/acme/docker/hello:v1"),
        &dev_creds,
        false,
    );
    assert!(!r.ok && r.stderr.contains("denied"), "{}", r.stderr);
    let r = push(
        "oci:layout:arm",
        &format!("docker://{h}/acme/docker/hello:v9"),
        &ro_creds,
        false,
    );
    assert!(!r.ok, "{}", r.stderr);
    // Images and tags in the management API.
    let (_, v) = call(s.get("/har/api/v1/registry/acme/docker/+/artifacts?sort_field=name")).await;
    let names: Vec<&str> = v["data"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["hello", "multi"]);
}

/// buildah builds a FROM-scratch image and pushes it; podman pulls it into fresh storage.
async fn buildah_and_podman(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "docker", "packageType": "DOCKER", "parentRef": "acme"}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let w = s.dir.path().join("build");
    let ctx = w.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello from buildah").unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    let storage = |name: &str| {
        vec![
            "--root".to_string(),
            w.join(format!("{name}-root")).display().to_string(),
            "--runroot".to_string(),
            w.join(format!("{name}-run")).display().to_string(),
            "--storage-driver".to_string(),
            "vfs".to_string(),
        ]
    };
    let h = host(&s);
    let image = format!("{h}/acme/docker/built:v1");
    let creds = format!("dev:{dev}");
    let with = |tool: &str, name: &str, rest: &[&str]| {
        let mut a: Vec<String> = storage(name);
        a.extend(rest.iter().map(|x| x.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run(tool, &a, &w, &[])
    };
    ok(
        with(
            "buildah",
            "b",
            &["bud", "--isolation", "chroot", "-t", &image, "ctx"],
        ),
        "buildah bud",
    );
    ok(
        with(
            "buildah",
            "b",
            &["push", "--tls-verify=false", "--creds", &creds, &image],
        ),
        "buildah push",
    );
    ok(
        with(
            "podman",
            "p",
            &["pull", "--tls-verify=false", "--creds", &creds, &image],
        ),
        "podman pull",
    );
    let listed = ok(
        with(
            "podman",
            "p",
            &["images", "--format", "{{.Repository}}:{{.Tag}}"],
        ),
        "podman images",
    );
    assert!(listed.contains(&image), "{listed}");
    // podman pushes too (a second tag of the same image).
    let second = format!("{h}/acme/docker/built:v2");
    ok(with("podman", "p", &["tag", &image, &second]), "podman tag");
    ok(
        with(
            "podman",
            "p",
            &["push", "--tls-verify=false", "--creds", &creds, &second],
        ),
        "podman push",
    );
    let (_, tags) = call(
        s.client
            .get(s.url("/v2/acme/docker/built/tags/list"))
            .basic_auth("dev", Some(&dev)),
    )
    .await;
    assert_eq!(tags["tags"], json!(["v1", "v2"]));
}

fn python(w: &Path, script: &str) -> Run {
    let py = tools().join("py/bin/python");
    run(py, &["-c", script], w, &[])
}

/// oras-py pushes, pulls and lists an artifact; an SBOM attached through `subject` is found
/// through the Referrers API.
async fn oras_artifacts_and_referrers(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "docker", "packageType": "DOCKER", "parentRef": "acme"}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let w = s.dir.path().join("oras");
    std::fs::create_dir_all(w.join("out")).unwrap();
    std::fs::write(w.join("artifact.txt"), "artifact data").unwrap();
    let h = host(&s);
    let script = format!(
        "import oras.client\n\
         c = oras.client.OrasClient(hostname='{h}', insecure=True, auth_backend='basic')\n\
         c.login(username='dev', password='{dev}', hostname='{h}')\n\
         r = c.push(target='{h}/acme/docker/artifact:v1', files=['artifact.txt'])\n\
         assert r.status_code == 201, r.status_code\n\
         print(c.pull(target='{h}/acme/docker/artifact:v1', outdir='out'))\n\
         print(c.get_tags('{h}/acme/docker/artifact'))\n"
    );
    let out = ok(python(&w, &script), "oras");
    assert!(out.contains("['v1']"), "{out}");
    assert_eq!(
        std::fs::read_to_string(w.join("out/artifact.txt")).unwrap(),
        "artifact data"
    );
    // Attach an SBOM to the artifact.
    let auth = |r: reqwest::RequestBuilder| r.basic_auth("dev", Some(&dev));
    let head = auth(
        s.client
            .head(s.url("/v2/acme/docker/artifact/manifests/v1"))
            .header("accept", "application/vnd.oci.image.manifest.v1+json"),
    )
    .send()
    .await
    .unwrap();
    let subject = head.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string();
    let size: usize = head.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut digests = Vec::new();
    for blob in [&b"{}"[..], b"{\"spdxVersion\":\"SPDX-2.3\"}"] {
        let d = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(blob))
        );
        let r = auth(s.client.post(s.url(&format!(
            "/v2/acme/docker/artifact/blobs/uploads/?digest={d}"
        ))))
        .body(blob.to_vec())
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        digests.push((d, blob.len()));
    }
    let sbom = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digests[0].0, "size": digests[0].1},
        "layers": [{"mediaType": "application/spdx+json", "digest": digests[1].0, "size": digests[1].1}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": size}})).unwrap();
    let sbom_digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&sbom))
    );
    let r = auth(
        s.client
            .put(s.url(&format!("/v2/acme/docker/artifact/manifests/{sbom_digest}"))),
    )
    .header("content-type", "application/vnd.oci.image.manifest.v1+json")
    .body(sbom)
    .send()
    .await
    .unwrap();
    assert_eq!(r.headers()["oci-subject"].to_str().unwrap(), subject);
    let (_, refs) = call(auth(s.client.get(s.url(&format!(
        "/v2/acme/docker/artifact/referrers/{subject}?artifactType=application/spdx%2Bjson"
    )))))
    .await;
    assert_eq!(
        refs["manifests"][0]["digest"],
        sbom_digest.as_str(),
        "{refs}"
    );
}

/// Helm charts over OCI with Helm's own registry client.
async fn helm_charts_over_oci(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "charts", "packageType": "HELM", "parentRef": "acme"}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let w = s.dir.path().join("helm");
    std::fs::create_dir_all(w.join("out")).unwrap();
    let h = host(&s);
    // The same chart version goes to the classic chart repository first, then over OCI.
    let classic = s.url("/pkg/acme/charts/helm/hellochart-0.1.0.tgz");
    let script = format!(
        "import helm_python as helm, os, urllib.request\n\
         helm.Chart.create('hellochart', '.'); tgz = helm.package('hellochart', destination='pkgs')\n\
         req = urllib.request.Request('{classic}', data=open(tgz, 'rb').read(), method='PUT', headers={{'x-api-key': '{dev}'}})\n\
         print(urllib.request.urlopen(req).status)\n\
         rc = helm.RegistryClient(plain_http=True, credentials_file='creds.json')\n\
         rc.login('{h}', 'dev', '{dev}', plain_http=True)\n\
         rc.push(tgz, 'oci://{h}/acme/charts', plain_http=True)\n\
         print(rc.tags('oci://{h}/acme/charts/hellochart'))\n\
         rc.pull('oci://{h}/acme/charts/hellochart', version='0.1.0', destination='out', plain_http=True)\n\
         print(open(tgz, 'rb').read() == open('out/hellochart-0.1.0.tgz', 'rb').read())\n"
    );
    let out = ok(python(&w, &script), "helm");
    assert!(
        out.contains("['0.1.0']") && out.trim_end().ends_with("True"),
        "{out}"
    );
    assert!(out.starts_with("201"), "{out}");
    let (_, v) = call(s.get("/har/api/v1/registry/acme/charts/+/artifacts")).await;
    assert_eq!(v["data"]["artifacts"][0]["name"], "hellochart");
    // One version, named by its tag: no stray version named by the manifest's digest.
    let (_, v) =
        call(s.get("/har/api/v1/registry/acme/charts/+/artifact/hellochart/+/versions")).await;
    let versions: Vec<&str> = v["data"]["artifactVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(versions, vec!["0.1.0"], "{v}");
    // The OCI push kept the classic upload's index entry.
    let index = s
        .client
        .get(s.url("/pkg/acme/charts/helm/index.yaml"))
        .header("x-api-key", &dev)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        index.contains("hellochart-0.1.0.tgz") && index.contains("version: \"0.1.0\""),
        "{index}"
    );
}

/// Anonymous pulls work from a public registry (through the token flow) and not from a private one.
async fn anonymous_pulls_with_skopeo(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "public", "packageType": "DOCKER", "parentRef": "acme", "isPublic": true})).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "private", "packageType": "DOCKER", "parentRef": "acme"}),
    )
    .await;
    let w = s.dir.path().join("anon");
    std::fs::create_dir_all(&w).unwrap();
    umoci_image(&w, "v1", "amd64");
    let h = host(&s);
    let admin = format!("admin:{}", s.token);
    for reg in ["public", "private"] {
        ok(
            skopeo(
                &w,
                &[
                    "copy",
                    "--dest-tls-verify=false",
                    "--dest-creds",
                    &admin,
                    "oci:layout:v1",
                    &format!("docker://{h}/acme/{reg}/img:v1"),
                ],
            ),
            "push",
        );
    }
    ok(
        skopeo(
            &w,
            &[
                "inspect",
                "--tls-verify=false",
                "--no-creds",
                &format!("docker://{h}/acme/public/img:v1"),
            ],
        ),
        "anonymous inspect",
    );
    let r = skopeo(
        &w,
        &[
            "inspect",
            "--tls-verify=false",
            "--no-creds",
            &format!("docker://{h}/acme/private/img:v1"),
        ],
    );
    assert!(
        !r.ok && (r.stderr.contains("unauthorized") || r.stderr.contains("authentication")),
        "{}",
        r.stderr
    );
}

both_backends!(
    skopeo_round_trips,
    buildah_and_podman,
    oras_artifacts_and_referrers,
    helm_charts_over_oci,
    anonymous_pulls_with_skopeo
);

//! Several stateless servers on one PostgreSQL and one S3 bucket, started by `scripts/cluster.sh`
//! (three `arca` nodes, a three-node Garage cluster with replication factor 3): real clients
//! talking to the nodes in turn (a per-request round-robin balancer with no stickiness), an upload
//! carried over three nodes, a publish seen at once through another node, a node killed mid-upload
//! and a Garage node stopped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use sha2::Digest;

use crate::balancer::round_robin;
use crate::common::{Run, run};

/// A cluster from `scripts/cluster.sh up`, taken down when dropped.
struct Cluster {
    dir: PathBuf,
    nodes: Vec<String>,
    token: String,
    client: reqwest::Client,
}

fn script(dir: &Path, args: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new("bash")
        .arg(root.join("scripts/cluster.sh"))
        .args(args)
        .env("ARCA_CLUSTER_DIR", dir)
        .env("ARCA_BIN", env!("CARGO_BIN_EXE_arca"))
        .env("ARCA_LOG", "info")
        // Whole downloads by clients that send a User-Agent are redirected to the bucket.
        .env("ARCA_S3_PRESIGNED_REDIRECTS", "true")
        .output()
        .expect("run scripts/cluster.sh")
}

impl Cluster {
    fn up() -> Cluster {
        // PostgreSQL runs as its own user (the tests run as root): the directory is traversable.
        let dir = PathBuf::from(format!(
            "/tmp/arca-cluster-test-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let out = script(&dir, &["up"]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "cluster.sh up failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let var = |k: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("no {k} in {stdout}"))
                .to_string()
        };
        Cluster {
            nodes: (1..=3).map(|i| var(&format!("NODE{i}_URL"))).collect(),
            token: var("ADMIN_TOKEN"),
            dir,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            // (Requests without a User-Agent, as reqwest sends them, are streamed by the nodes.)
        }
    }

    fn ctl(&self, args: &[&str]) {
        let out = script(&self.dir, args);
        assert!(
            out.status.success(),
            "cluster.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn log(&self, node: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("arca{}/log", node + 1))).unwrap_or_default()
    }

    fn req(&self, node: usize, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.nodes[node]))
            .header("x-api-key", &self.token)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = script(&self.dir, &["down"]);
    }
}

fn ok(r: Run, what: &str) -> String {
    assert!(r.ok, "{what} failed:\n{}\n{}", r.stdout, r.stderr);
    r.stdout
}

fn layout_digest(layout: &Path, tag: &str) -> String {
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

/// An image of three layers (one of them 9 MiB, past a multipart part) in an OCI layout.
fn image(w: &Path) {
    ok(
        run("umoci", &["init", "--layout", "layout"], w, &[]),
        "umoci init",
    );
    ok(
        run("umoci", &["new", "--image", "layout:v1"], w, &[]),
        "umoci new",
    );
    let files = w.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let mut big = Vec::with_capacity(9 << 20);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    while big.len() < 9 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(files.join("big.bin"), &big).unwrap();
    std::fs::write(files.join("one.txt"), "one").unwrap();
    std::fs::write(files.join("two.txt"), "two").unwrap();
    for f in ["big.bin", "one.txt", "two.txt"] {
        let src = files.join(f);
        ok(
            run(
                "umoci",
                &[
                    "insert",
                    "--rootless",
                    "--image",
                    "layout:v1",
                    src.to_str().unwrap(),
                    &format!("/{f}"),
                ],
                w,
                &[],
            ),
            "umoci insert",
        );
    }
}

fn noise(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Everything the issue asks of a cluster, on one cluster (starting one costs seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_everything_with_no_sticky_sessions() {
    let c = Cluster::up();
    let work = c.dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    for (reg, kind) in [("docker", "DOCKER"), ("npmreg", "NPM"), ("deb", "DEBIAN")] {
        let r = c
            .req(
                0,
                reqwest::Method::POST,
                "/har/api/v1/registry?space_ref=default/+",
            )
            .json(&json!({"identifier": reg, "packageType": kind, "parentRef": "default"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    // 1. skopeo through a balancer that sends each request to the next node: a multi-layer image
    //    goes in and comes back with identical digests.
    let lb = round_robin(c.nodes.clone()).await;
    image(&work);
    let creds = format!("admin:{}", c.token);
    let dst = format!("docker://{}/default/docker/app:v1", lb.addr);
    ok(
        run(
            "skopeo",
            &[
                "--insecure-policy",
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                &creds,
                "oci:layout:v1",
                &dst,
            ],
            &work,
            &[],
        ),
        "skopeo push",
    );
    ok(
        run(
            "skopeo",
            &[
                "--insecure-policy",
                "copy",
                "--src-tls-verify=false",
                "--src-creds",
                &creds,
                &dst,
                "oci:pulled:v1",
            ],
            &work,
            &[],
        ),
        "skopeo pull",
    );
    assert_eq!(
        layout_digest(&work.join("pulled"), "v1"),
        layout_digest(&work.join("layout"), "v1")
    );
    let counts: Vec<usize> = lb.counts.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert!(
        counts.iter().all(|&n| n >= 3),
        "requests per node: {counts:?}"
    );

    // 2. A chunked upload started on node 1, continued on node 2, finished on node 3; chunks on
    //    either side of a multipart part.
    let repo = "/v2/default/docker/chunked";
    let data = noise((9 << 20) + 12345, 7);
    let digest = sha(&data);
    let r = c
        .req(0, reqwest::Method::POST, &format!("{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let split = 1 << 20;
    let r = c
        .req(1, reqwest::Method::PATCH, &loc)
        .header("content-range", format!("0-{}", split - 1))
        .header("content-type", "application/octet-stream")
        .body(data[..split].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", c.log(1));
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = c
        .req(2, reqwest::Method::PATCH, &loc)
        .header("content-range", format!("{split}-{}", data.len() - 1))
        .header("content-type", "application/octet-stream")
        .body(data[split..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", c.log(2));
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = c
        .req(
            2,
            reqwest::Method::PUT,
            &format!("{loc}{sep}digest={digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", c.log(2));
    for node in 0..3 {
        let got = c
            .req(
                node,
                reqwest::Method::GET,
                &format!("{repo}/blobs/{digest}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(
            sha(&got.bytes().await.unwrap()),
            digest,
            "node {}",
            node + 1
        );
    }
    // A client with a User-Agent is redirected to a presigned URL of the bucket (5 minutes),
    // which answers with the headers Arca sets; the download is counted when redirected.
    let r = c
        .req(1, reqwest::Method::GET, &format!("{repo}/blobs/{digest}"))
        .header("user-agent", "containerd/2.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307, "{}", c.log(1));
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to.contains("X-Amz-Signature=") && to.contains("response-content-type="),
        "{to}"
    );
    let direct = reqwest::get(&to).await.unwrap();
    assert_eq!(direct.status(), 200, "{to}");
    let ct = direct.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(sha(&direct.bytes().await.unwrap()), digest);
    let streamed = c
        .req(1, reqwest::Method::GET, &format!("{repo}/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200, "no User-Agent: streamed");
    assert_eq!(streamed.headers()["content-type"].to_str().unwrap(), ct);
    // Ranged reads come from the bucket too.
    let got = c
        .req(1, reqwest::Method::GET, &format!("{repo}/blobs/{digest}"))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 206);
    assert_eq!(&got.bytes().await.unwrap()[..], &data[100..200]);

    // 3. npm publish on node 1, installed through node 2 at once.
    let npm_env = |node: usize, dir: &Path| {
        let host = c.nodes[node].trim_start_matches("http://");
        let rc = dir.join("npmrc");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            &rc,
            format!(
                "registry=http://{host}/pkg/default/npmreg/npm/\n//{host}/pkg/default/npmreg/npm/:_authToken={}\n",
                c.token
            ),
        )
        .unwrap();
        vec![
            ("npm_config_userconfig", rc.display().to_string()),
            ("npm_config_globalconfig", "/dev/null".to_string()),
            ("npm_config_cache", dir.join("cache").display().to_string()),
            ("npm_config_audit", "false".into()),
            ("npm_config_fund", "false".into()),
            ("npm_config_update_notifier", "false".into()),
        ]
    };
    let lib = work.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(
        lib.join("package.json"),
        r#"{"name":"cluster-lib","version":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(lib.join("index.js"), "module.exports = 1;\n").unwrap();
    let env1 = npm_env(0, &work.join("npm1"));
    ok(
        run("npm", &["publish"], &lib, &env1),
        "npm publish on node 1",
    );
    let app = work.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"app","version":"0.0.1","private":true,"dependencies":{"cluster-lib":"^1.0.0"}}"#,
    )
    .unwrap();
    let env2 = npm_env(1, &work.join("npm2"));
    ok(
        run("npm", &["install"], &app, &env2),
        "npm install through node 2",
    );
    assert!(app.join("node_modules/cluster-lib/index.js").exists());
    // A second version is visible through node 3 on the very next request (the packument
    // caches are validated against the metadata store).
    std::fs::write(
        lib.join("package.json"),
        r#"{"name":"cluster-lib","version":"1.1.0"}"#,
    )
    .unwrap();
    ok(
        run("npm", &["publish"], &lib, &env1),
        "npm publish 1.1.0 on node 1",
    );
    let r = c
        .req(
            2,
            reqwest::Method::GET,
            "/pkg/default/npmreg/npm/cluster-lib",
        )
        .send()
        .await
        .unwrap();
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["dist-tags"]["latest"], "1.1.0", "{doc}");

    // 3b. Debian packages published through two nodes at once: every node then serves the same
    //     signed index listing all of them (generated from the metadata store, dated from the
    //     data), so apt may fetch Release from one node and Packages from another.
    let debs: Vec<(String, Vec<u8>)> = (0..8)
        .map(|i| {
            let name = format!("clu{i}");
            let path = crate::debian::build_deb(&work.join("debs"), &name, "1.0", None);
            (format!("{name}_1.0_all.deb"), std::fs::read(path).unwrap())
        })
        .collect();
    let uploads = debs.iter().enumerate().map(|(i, (file, body))| {
        c.req(
            i % 2,
            reqwest::Method::PUT,
            &format!("/pkg/default/deb/debian/{file}"),
        )
        .body(body.clone())
        .send()
    });
    for r in futures::future::join_all(uploads).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let mut released = Vec::new();
    for node in 0..3 {
        let get = |path: &str| c.req(node, reqwest::Method::GET, path).send();
        let packages = get("/pkg/default/deb/debian/dists/stable/main/binary-amd64/Packages")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for i in 0..8 {
            assert!(
                packages.contains(&format!("Package: clu{i}\n")),
                "node {}: {packages}",
                node + 1
            );
        }
        let release = get("/pkg/default/deb/debian/dists/stable/Release")
            .await
            .unwrap();
        assert_eq!(release.status(), 200);
        released.push(release.text().await.unwrap());
    }
    assert!(
        released.iter().all(|r| r == &released[0]),
        "the nodes serve different Release files: {released:?}"
    );

    // 4. Node 2 killed with SIGKILL in the middle of a chunk: the client goes on with node 3 from
    //    the offset the cluster recorded; nothing partial is visible meanwhile.
    let data = noise(6 << 20, 3);
    let digest = sha(&data);
    let r = c
        .req(0, reqwest::Method::POST, &format!("{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let first = 2 << 20;
    let r = c
        .req(0, reqwest::Method::PATCH, &loc)
        .header("content-type", "application/octet-stream")
        .body(data[..first].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    // A slow chunk to node 2: half of it, then the node dies.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let send = tokio::spawn(
        c.req(1, reqwest::Method::PATCH, &loc)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send(),
    );
    tx.send(Ok(bytes::Bytes::copy_from_slice(
        &data[first..first + (1 << 20)],
    )))
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    c.ctl(&["stop-node", "2"]);
    let _ = send.await;
    drop(tx);
    let head = c
        .req(2, reqwest::Method::HEAD, &format!("{repo}/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "a partial upload is visible");
    let status = c.req(2, reqwest::Method::GET, &loc).send().await.unwrap();
    assert_eq!(status.status(), 204);
    let range = status.headers()["range"].to_str().unwrap().to_string();
    let end: usize = range.trim_start_matches("0-").parse().unwrap();
    assert_eq!(
        end + 1,
        first,
        "the cluster recorded only the acknowledged bytes: {range}"
    );
    let r = c
        .req(2, reqwest::Method::PATCH, &loc)
        .header("content-type", "application/octet-stream")
        .body(data[first..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", c.log(2));
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = c
        .req(
            0,
            reqwest::Method::PUT,
            &format!("{loc}{sep}digest={digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", c.log(0));
    // What was committed before the kill is still there.
    let pulled = work.join("pulled-again");
    let src = format!(
        "docker://{}/default/docker/app:v1",
        c.nodes[2].trim_start_matches("http://")
    );
    ok(
        run(
            "skopeo",
            &[
                "--insecure-policy",
                "copy",
                "--src-tls-verify=false",
                "--src-creds",
                &creds,
                &src,
                &format!("oci:{}:v1", pulled.display()),
            ],
            &work,
            &[],
        ),
        "skopeo pull after the kill",
    );
    c.ctl(&["start-node", "2"]);

    // 5. One Garage node stopped: the nodes whose Garage is up go on reading and writing.
    c.ctl(&["stop-garage", "3"]);
    for node in 0..2 {
        let got = c
            .req(
                node,
                reqwest::Method::GET,
                &format!("{repo}/blobs/{digest}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200, "{}", c.log(node));
        assert_eq!(sha(&got.bytes().await.unwrap()), digest);
        let data = noise(3 << 20, 40 + node as u8);
        let d = sha(&data);
        let r = c
            .req(
                node,
                reqwest::Method::POST,
                &format!("{repo}/blobs/uploads/?digest={d}"),
            )
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            201,
            "write with a Garage node down: {}",
            c.log(node)
        );
        let other = 1 - node;
        let got = c
            .req(other, reqwest::Method::GET, &format!("{repo}/blobs/{d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(sha(&got.bytes().await.unwrap()), d);
    }
    c.ctl(&["start-garage", "3"]);
}

/// A stream over a channel's items (the slow body of the SIGKILL step).
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

//! Checks ported from the OCI distribution conformance suite (pull, push, content discovery,
//! content management), one test each, plus Arca's own rules (auth, immutable tags, trash can).

use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::Digest;

use crate::both_backends;
use crate::common::{Backend, Server, blob_stored, call};

/// A server with DOCKER registry `acme/docker` and helpers speaking the protocol as admin.
struct Reg {
    s: Server,
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

const REPO: &str = "acme/docker/app";
const EMPTY_CONFIG: &[u8] = b"{}";

impl Reg {
    async fn new(b: Backend, extra: Value) -> Reg {
        let s = Server::start(b).await;
        let mut body =
            json!({"identifier": "docker", "packageType": "DOCKER", "parentRef": "acme"});
        if let (Some(o), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        s.harness_registry("acme", body).await;
        Reg { s }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.s.url(path)
        };
        self.s
            .client
            .request(method, url)
            .basic_auth("admin", Some(&self.s.token))
    }

    async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            )
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        d
    }

    /// An image manifest with the given layers (pushed first) and the empty config.
    async fn push_image(
        &self,
        repo: &str,
        reference: &str,
        layers: &[&[u8]],
        extra: Value,
    ) -> (String, Vec<u8>) {
        let config = self.push_blob(repo, EMPTY_CONFIG).await;
        let mut ls = Vec::new();
        for l in layers {
            let d = self.push_blob(repo, l).await;
            ls.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": l.len()}));
        }
        let mut m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2}, "layers": ls});
        if let (Some(o), Some(e)) = (m.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        let bytes = serde_json::to_vec(&m).unwrap();
        let r = self
            .put_manifest(
                repo,
                reference,
                "application/vnd.oci.image.manifest.v1+json",
                &bytes,
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        (sha256(&bytes), bytes)
    }

    async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media: &str,
        bytes: &[u8],
    ) -> Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
    }
}

async fn error_code(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        v["errors"][0]["code"].as_str().unwrap_or("").to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// Pull.

async fn pull_manifest_by_tag_and_digest(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let (digest, bytes) = r.push_image(REPO, "v1", &[b"layer-1"], json!({})).await;
    for reference in ["v1", digest.as_str()] {
        let resp = r
            .req(Method::GET, &format!("/v2/{REPO}/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(
            resp.headers()["content-type"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            resp.bytes().await.unwrap().as_ref(),
            bytes.as_slice(),
            "exact bytes"
        );
        let head = r
            .req(Method::HEAD, &format!("/v2/{REPO}/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()["content-length"],
            bytes.len().to_string().as_str()
        );
    }
}

async fn pull_blob_with_range(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let d = r.push_blob(REPO, b"0123456789").await;
    let resp = r
        .req(Method::GET, &format!("/v2/{REPO}/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["docker-content-digest"], d.as_str());
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"0123456789");
    let part = r
        .req(Method::GET, &format!("/v2/{REPO}/blobs/{d}"))
        .header("range", "bytes=2-4")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"234");
    let head = r
        .req(Method::HEAD, &format!("/v2/{REPO}/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            head.status().as_u16(),
            head.headers()["content-length"].to_str().unwrap()
        ),
        (200, "10")
    );
}

async fn pull_unknown_is_404_with_spec_codes(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    r.push_image(REPO, "v1", &[b"x"], json!({})).await;
    let missing = sha256(b"missing");
    let cases = [
        (format!("/v2/{REPO}/manifests/nope"), "MANIFEST_UNKNOWN"),
        (
            format!("/v2/{REPO}/manifests/{missing}"),
            "MANIFEST_UNKNOWN",
        ),
        (format!("/v2/{REPO}/blobs/{missing}"), "BLOB_UNKNOWN"),
        (
            "/v2/acme/docker/other/tags/list".to_string(),
            "NAME_UNKNOWN",
        ),
        (
            "/v2/acme/nothere/app/manifests/v1".to_string(),
            "NAME_UNKNOWN",
        ),
    ];
    for (path, code) in cases {
        assert_eq!(
            error_code(r.req(Method::GET, &path).send().await.unwrap()).await,
            (404, code.to_string()),
            "{path}"
        );
    }
    let (st, code) = error_code(
        r.req(Method::GET, &format!("/v2/{REPO}/blobs/sha256:xyz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code.as_str()), (400, "DIGEST_INVALID"));
    let (st, code) = error_code(
        r.req(Method::GET, "/v2/acme/docker/App/tags/list")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code.as_str()), (400, "NAME_INVALID"));
}

// ---------------------------------------------------------------------------------------------
// Push.

async fn push_monolithic_post_then_put(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let start = r
        .req(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 202);
    let loc = start.headers()["location"].to_str().unwrap().to_string();
    let d = sha256(b"monolithic");
    let sep = if loc.contains('?') { '&' } else { '?' };
    let put = r
        .req(Method::PUT, &format!("{loc}{sep}digest={d}"))
        .body("monolithic")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    assert_eq!(
        put.headers()["location"].to_str().unwrap(),
        format!("/v2/{REPO}/blobs/{d}")
    );
    assert_eq!(
        r.req(Method::HEAD, &format!("/v2/{REPO}/blobs/{d}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn push_single_post_with_digest(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let d = r.push_blob(REPO, b"single").await;
    assert_eq!(
        r.req(Method::GET, &format!("/v2/{REPO}/blobs/{d}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        b"single"
    );
}

async fn push_chunked_with_content_range(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let start = r
        .req(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = start.headers()["location"].to_str().unwrap().to_string();
    let p1 = r
        .req(Method::PATCH, &loc)
        .header("content-range", "0-4")
        .header("content-type", "application/octet-stream")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(p1.status(), 202);
    assert_eq!(p1.headers()["range"], "0-4");
    // Out of order: the next chunk must start at 5.
    let bad = r
        .req(Method::PATCH, &loc)
        .header("content-range", "7-9")
        .body("xyz")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 416);
    let status = r.req(Method::GET, &loc).send().await.unwrap();
    assert_eq!(
        (
            status.status().as_u16(),
            status.headers()["range"].to_str().unwrap()
        ),
        (204, "0-4")
    );
    let p2 = r
        .req(Method::PATCH, &loc)
        .header("content-range", "5-10")
        .body(" world")
        .send()
        .await
        .unwrap();
    assert_eq!(p2.headers()["range"], "0-10");
    let d = sha256(b"hello world");
    let put = r
        .req(Method::PUT, &format!("{loc}?digest={d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let got = r
        .req(Method::GET, &format!("/v2/{REPO}/blobs/{d}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), b"hello world");
}

async fn push_wrong_digest_is_digest_invalid(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let wrong = sha256(b"something else");
    let resp = r
        .req(
            Method::POST,
            &format!("/v2/{REPO}/blobs/uploads/?digest={wrong}"),
        )
        .body("content")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (400, "DIGEST_INVALID".to_string()));
    assert_eq!(
        r.req(Method::HEAD, &format!("/v2/{REPO}/blobs/{wrong}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        r.req(
            Method::HEAD,
            &format!("/v2/{REPO}/blobs/{}", sha256(b"content"))
        )
        .send()
        .await
        .unwrap()
        .status(),
        404
    );
}

async fn push_sha512_digest(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let d = format!(
        "sha512:{}",
        hex::encode(sha2::Sha512::digest(b"long digest"))
    );
    let resp = r
        .req(
            Method::POST,
            &format!("/v2/{REPO}/blobs/uploads/?digest={d}"),
        )
        .body("long digest")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let got = r
        .req(Method::GET, &format!("/v2/{REPO}/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.headers()["docker-content-digest"], d.as_str());
    let bad = format!("sha512:{}", "0".repeat(128));
    let resp = r
        .req(
            Method::POST,
            &format!("/v2/{REPO}/blobs/uploads/?digest={bad}"),
        )
        .body("long digest")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await.1, "DIGEST_INVALID");
}

async fn cancel_upload(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let start = r
        .req(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = start.headers()["location"].to_str().unwrap().to_string();
    r.req(Method::PATCH, &loc)
        .body("partial")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.req(Method::DELETE, &loc).send().await.unwrap().status(),
        204
    );
    assert_eq!(
        error_code(r.req(Method::GET, &loc).send().await.unwrap()).await,
        (404, "BLOB_UPLOAD_UNKNOWN".to_string())
    );
}

async fn cross_repository_mount(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let d = r.push_blob(REPO, b"shared layer").await;
    let m = r
        .req(
            Method::POST,
            &format!("/v2/acme/docker/other/blobs/uploads/?mount={d}&from={REPO}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 201);
    assert_eq!(m.headers()["docker-content-digest"], d.as_str());
    assert_eq!(
        r.req(Method::HEAD, &format!("/v2/acme/docker/other/blobs/{d}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A blob the source does not have: a normal upload session starts instead.
    let missing = sha256(b"nope");
    let m = r
        .req(
            Method::POST,
            &format!("/v2/acme/docker/third/blobs/uploads/?mount={missing}&from={REPO}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 202);
    // Mounting from a repository the caller cannot read starts an upload instead.
    r.s.harness_registry(
        "other",
        json!({"identifier": "secret", "packageType": "DOCKER", "parentRef": "other"}),
    )
    .await;
    let sd = r.push_blob("other/secret/app", b"secret layer").await;
    let dev = r.s.user_with_role("dev", "deployer", "acme");
    let m =
        r.s.client
            .post(r.s.url(&format!(
                "/v2/acme/docker/fourth/blobs/uploads/?mount={sd}&from=other/secret/app"
            )))
            .basic_auth("dev", Some(&dev))
            .send()
            .await
            .unwrap();
    assert_eq!(m.status(), 202);
    assert_eq!(
        r.req(Method::HEAD, &format!("/v2/acme/docker/fourth/blobs/{sd}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

async fn manifest_references_must_exist(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let config = r.push_blob(REPO, EMPTY_CONFIG).await;
    let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(b"never pushed"), "size": 12}]});
    let resp = r
        .put_manifest(
            REPO,
            "v1",
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&m).unwrap(),
        )
        .await;
    assert_eq!(
        error_code(resp).await,
        (400, "MANIFEST_BLOB_UNKNOWN".to_string())
    );
    // An index whose children are not here.
    let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(b"child"), "size": 5}]});
    let resp = r
        .put_manifest(
            REPO,
            "multi",
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&idx).unwrap(),
        )
        .await;
    assert_eq!(
        error_code(resp).await,
        (400, "MANIFEST_BLOB_UNKNOWN".to_string())
    );
    assert_eq!(
        r.req(Method::GET, &format!("/v2/{REPO}/tags/list"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "nothing stored"
    );
}

async fn bad_manifests_are_refused(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let oci = "application/vnd.oci.image.manifest.v1+json";
    for (what, reference, body, code) in [
        ("not JSON", "v1", b"nope".to_vec(), "MANIFEST_INVALID"),
        ("schema 1", "v1", br#"{"schemaVersion":1}"#.to_vec(), "MANIFEST_INVALID"),
        ("no layers", "v1", br#"{"schemaVersion":2,"config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}}"#.to_vec(), "MANIFEST_INVALID"),
        ("bad tag", "-bad", br#"{"schemaVersion":2}"#.to_vec(), "TAG_INVALID"),
        ("digest mismatch", &sha256(b"other"), br#"{"schemaVersion":2,"config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#.to_vec(), "DIGEST_INVALID"),
    ] {
        let (st, c) = error_code(r.put_manifest(REPO, reference, oci, &body).await).await;
        assert_eq!((st, c.as_str()), (400, code), "{what}");
    }
    // Content-Type and mediaType must agree.
    let (_, bytes) = r.push_image(REPO, "ok", &[b"l"], json!({})).await;
    let resp = r
        .put_manifest(
            REPO,
            "v2",
            "application/vnd.docker.distribution.manifest.v2+json",
            &bytes,
        )
        .await;
    assert_eq!(error_code(resp).await.1, "MANIFEST_INVALID");
}

async fn multi_arch_index(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        // Children pushed by digest only (as `skopeo copy --all` does).
        let config = r.push_blob(REPO, EMPTY_CONFIG).await;
        let layer = r.push_blob(REPO, arch.as_bytes()).await;
        let m = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": arch.len()}]})).unwrap();
        let d = sha256(&m);
        assert_eq!(
            r.put_manifest(REPO, &d, "application/vnd.oci.image.manifest.v1+json", &m)
                .await
                .status(),
            201
        );
        children.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": m.len(),
                             "platform": {"architecture": arch, "os": "linux"}}));
    }
    let idx = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children})).unwrap();
    let resp = r
        .put_manifest(
            REPO,
            "multi",
            "application/vnd.oci.image.index.v1+json",
            &idx,
        )
        .await;
    assert_eq!(resp.status(), 201);
    let got = r
        .req(Method::GET, &format!("/v2/{REPO}/manifests/multi"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.headers()["content-type"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), idx.as_slice());
    let child = children[1]["digest"].as_str().unwrap();
    assert_eq!(
        r.req(Method::GET, &format!("/v2/{REPO}/manifests/{child}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Only the tag is a tag; the children are versions named by digest.
    let (_, tags) = call(r.req(Method::GET, &format!("/v2/{REPO}/tags/list"))).await;
    assert_eq!(tags["tags"], json!(["multi"]));
}

async fn upload_continues_on_another_server(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let other_dir = tempfile::tempdir().unwrap();
    let data = r.s.data_dir().display().to_string();
    let other = Server::start_with(
        other_dir,
        r.s.database_url.clone(),
        &[
            ("ARCA_ADMIN_TOKEN", r.s.token.as_str()),
            ("ARCA_DATA_DIR", data.as_str()),
        ],
    )
    .await;
    let start = r
        .req(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = start.headers()["location"].to_str().unwrap().to_string();
    r.req(Method::PATCH, &loc)
        .body("first half, ")
        .send()
        .await
        .unwrap();
    let p2 = other
        .client
        .patch(other.url(&loc))
        .basic_auth("admin", Some(&other.token))
        .header("content-range", "12-22")
        .body("second half")
        .send()
        .await
        .unwrap();
    assert_eq!(p2.status(), 202);
    let d = sha256(b"first half, second half");
    let put = r
        .req(Method::PUT, &format!("{loc}?digest={d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let got = other
        .client
        .get(other.url(&format!("/v2/{REPO}/blobs/{d}")))
        .basic_auth("admin", Some(&other.token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.bytes().await.unwrap().as_ref(),
        b"first half, second half"
    );
}

// ---------------------------------------------------------------------------------------------
// Content discovery.

async fn tags_list_paginates(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    for t in ["c", "a", "b", "d"] {
        r.push_image(REPO, t, &[t.as_bytes()], json!({})).await;
    }
    let (_, all) = call(r.req(Method::GET, &format!("/v2/{REPO}/tags/list"))).await;
    assert_eq!(all, json!({"name": REPO, "tags": ["a", "b", "c", "d"]}));
    let page = r
        .req(Method::GET, &format!("/v2/{REPO}/tags/list?n=2"))
        .send()
        .await
        .unwrap();
    let link = page.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(
        link,
        format!("</v2/{REPO}/tags/list?n=2&last=b>; rel=\"next\"")
    );
    assert_eq!(
        page.json::<Value>().await.unwrap()["tags"],
        json!(["a", "b"])
    );
    let (_, rest) = call(r.req(Method::GET, &format!("/v2/{REPO}/tags/list?n=2&last=b"))).await;
    assert_eq!(rest["tags"], json!(["c", "d"]));
    let (_, none) = call(r.req(Method::GET, &format!("/v2/{REPO}/tags/list?n=0"))).await;
    assert_eq!(none["tags"], json!([]));
}

async fn referrers_api(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let (subject, bytes) = r.push_image(REPO, "v1", &[b"app"], json!({})).await;
    let subject_desc = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": bytes.len()});
    // An SBOM and a signature attached through `subject`, pushed by digest.
    let mut digests = Vec::new();
    for (kind, content) in [
        ("application/spdx+json", &b"sbom"[..]),
        ("application/vnd.dev.cosign.signature", &b"sig"[..]),
    ] {
        let config = r.push_blob(REPO, EMPTY_CONFIG).await;
        let layer = r.push_blob(REPO, content).await;
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": kind,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": content.len()}],
            "subject": subject_desc, "annotations": {"org.example": kind}});
        let body = serde_json::to_vec(&m).unwrap();
        let d = sha256(&body);
        let resp = r
            .put_manifest(
                REPO,
                &d,
                "application/vnd.oci.image.manifest.v1+json",
                &body,
            )
            .await;
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()["oci-subject"], subject.as_str());
        digests.push(d);
    }
    let resp = r
        .req(Method::GET, &format!("/v2/{REPO}/referrers/{subject}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let idx: Value = resp.json().await.unwrap();
    let found: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["digest"].as_str())
        .collect();
    assert_eq!(found, [digests[0].as_str(), digests[1].as_str()]);
    assert_eq!(idx["manifests"][0]["artifactType"], "application/spdx+json");
    let resp = r
        .req(
            Method::GET,
            &format!("/v2/{REPO}/referrers/{subject}?artifactType=application/spdx%2Bjson"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["oci-filters-applied"], "artifactType");
    let idx: Value = resp.json().await.unwrap();
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1);
    // A subject with no referrers (or unknown) gives an empty index.
    let (st, empty) = call(r.req(
        Method::GET,
        &format!("/v2/{REPO}/referrers/{}", sha256(b"x")),
    ))
    .await;
    assert_eq!((st, empty["manifests"].clone()), (200, json!([])));
    // Deleting a referrer removes it from the list.
    assert_eq!(
        r.req(
            Method::DELETE,
            &format!("/v2/{REPO}/manifests/{}", digests[1])
        )
        .send()
        .await
        .unwrap()
        .status(),
        202
    );
    let (_, idx) = call(r.req(Method::GET, &format!("/v2/{REPO}/referrers/{subject}"))).await;
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1);
}

async fn catalog_shows_only_readable_repositories(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    r.s.harness_registry(
        "other",
        json!({"identifier": "private", "packageType": "DOCKER", "parentRef": "other"}),
    )
    .await;
    r.push_image(REPO, "v1", &[b"a"], json!({})).await;
    r.push_image("acme/docker/zeta", "v1", &[b"z"], json!({}))
        .await;
    r.push_image("other/private/hidden", "v1", &[b"b"], json!({}))
        .await;
    let (_, all) = call(r.req(Method::GET, "/v2/_catalog")).await;
    assert_eq!(
        all["repositories"],
        json!([REPO, "acme/docker/zeta", "other/private/hidden"])
    );
    let scoped = r.s.user_with_role("viewer", "reader", "acme");
    let (_, seen) = call(
        r.s.client
            .get(r.s.url("/v2/_catalog"))
            .basic_auth("viewer", Some(&scoped)),
    )
    .await;
    assert_eq!(seen["repositories"], json!([REPO, "acme/docker/zeta"]));
    let page =
        r.s.client
            .get(r.s.url("/v2/_catalog?n=1"))
            .basic_auth("viewer", Some(&scoped))
            .send()
            .await
            .unwrap();
    assert!(
        page.headers()["link"]
            .to_str()
            .unwrap()
            .contains("last=acme/docker/app")
    );
}

// ---------------------------------------------------------------------------------------------
// Content management.

async fn delete_tag_manifest_and_blob(b: Backend) {
    let r = Reg::new(b, json!({"isDeletePackageAllowed": true})).await;
    let (digest, _) = r.push_image(REPO, "v1", &[b"one"], json!({})).await;
    r.push_image(REPO, "v2", &[b"two"], json!({})).await;
    assert_eq!(
        r.req(Method::DELETE, &format!("/v2/{REPO}/manifests/v2"))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        r.req(Method::GET, &format!("/v2/{REPO}/manifests/v2"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        r.req(Method::DELETE, &format!("/v2/{REPO}/manifests/{digest}"))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        r.req(Method::GET, &format!("/v2/{REPO}/manifests/v1"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        r.req(Method::GET, &format!("/v2/{REPO}/manifests/{digest}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Deleted tags are kept as deleted versions of their image.
    let image = REPO.trim_start_matches("acme/docker/");
    let (_, trash) = call(r.s.get(&format!(
        "/har/api/v1/registry/acme/docker/+/artifact/{image}/versions?deleted=only"
    )))
    .await;
    assert_eq!(trash["data"]["itemCount"], 2, "v1 and v2: {trash}");
    let layer = sha256(b"one");
    assert_eq!(
        r.req(Method::DELETE, &format!("/v2/{REPO}/blobs/{layer}"))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        r.req(Method::HEAD, &format!("/v2/{REPO}/blobs/{layer}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        r.req(Method::DELETE, &format!("/v2/{REPO}/blobs/{layer}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

async fn deletes_need_permission(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    r.push_image(REPO, "v1", &[b"one"], json!({})).await;
    let dev = r.s.user_with_role("dev", "deployer", "acme");
    let resp =
        r.s.client
            .delete(r.s.url(&format!("/v2/{REPO}/manifests/v1")))
            .basic_auth("dev", Some(&dev))
            .send()
            .await
            .unwrap();
    assert_eq!(error_code(resp).await, (403, "DENIED".to_string()));
}

async fn immutable_and_movable_tags(b: Backend) {
    let r = Reg::new(b, json!({"packageReuploadType": "NONE"})).await;
    let (first, _) = r.push_image(REPO, "v1", &[b"one"], json!({})).await;
    // The same manifest again is fine; another one under the same tag is DENIED.
    r.push_image(REPO, "v1", &[b"one"], json!({})).await;
    let config = r.push_blob(REPO, EMPTY_CONFIG).await;
    let layer = r.push_blob(REPO, b"two").await;
    let m = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 3}]})).unwrap();
    let resp = r
        .put_manifest(REPO, "v1", "application/vnd.oci.image.manifest.v1+json", &m)
        .await;
    let (st, code) = error_code(resp).await;
    assert_eq!((st, code.as_str()), (403, "DENIED"));
    // With OVERRIDE the tag moves and the old manifest stays reachable by digest.
    let resp =
        r.s.put(
            "/har/api/v1/registry/acme%2Fdocker",
            json!({"packageReuploadType": "OVERRIDE"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = r
        .put_manifest(REPO, "v1", "application/vnd.oci.image.manifest.v1+json", &m)
        .await;
    assert_eq!(resp.status(), 201);
    let now = r
        .req(Method::GET, &format!("/v2/{REPO}/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        now.headers()["docker-content-digest"].to_str().unwrap(),
        sha256(&m)
    );
    assert_eq!(
        r.req(Method::GET, &format!("/v2/{REPO}/manifests/{first}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn artifacts_appear_in_management_api(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    let (digest, bytes) = r.push_image(REPO, "1.0", &[b"0123456789"], json!({})).await;
    let (_, v) = call(r.s.get("/har/api/v1/registry/acme/docker/+/artifacts")).await;
    assert_eq!(v["data"]["artifacts"][0]["name"], "app", "{v}");
    let (_, versions) =
        call(r.s.get("/har/api/v1/registry/acme/docker/+/artifact/app/+/versions")).await;
    let ver = &versions["data"]["artifactVersions"][0];
    assert_eq!(ver["name"], "1.0", "{versions}");
    assert_eq!(ver["metadata"]["digest"], digest.as_str(), "{versions}");
    // The version's size counts the manifest, the config and the layer.
    assert_eq!(
        ver["size"],
        json!(format!("{} B", bytes.len() + 2 + 10)),
        "{versions}"
    );
    let (_, files) =
        call(r.s.get("/har/api/v1/registry/acme/docker/+/artifact/app/+/version/1.0/files")).await;
    let names: Vec<&str> = files["data"]["files"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"manifest"), "{files}");
}

// ---------------------------------------------------------------------------------------------
// Auth.

async fn token_flow(b: Backend) {
    let r = Reg::new(b, json!({})).await;
    r.push_image(REPO, "v1", &[b"x"], json!({})).await;
    // Anonymous: 401 with a Bearer challenge naming the token endpoint.
    let resp = r.s.client.get(r.s.url("/v2/")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Bearer realm=\"") && challenge.contains("/v2/token\""),
        "{challenge}"
    );
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let resp =
        r.s.client
            .get(r.s.url(&format!("/v2/{REPO}/manifests/v1")))
            .send()
            .await
            .unwrap();
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains(&format!("scope=\"repository:{REPO}:pull\"")),
        "{challenge}"
    );
    // A reader gets a token for pull only.
    let ro = r.s.user_with_role("ro", "reader", "acme");
    let (st, tok) = call(
        r.s.client
            .get(r.s.url(&format!(
                "/v2/token?service=arca&scope=repository:{REPO}:pull,push"
            )))
            .basic_auth("ro", Some(&ro)),
    )
    .await;
    assert_eq!(st, 200);
    let token = tok["token"].as_str().unwrap().to_string();
    let bearer = |m: Method, p: &str| r.s.client.request(m, r.s.url(p)).bearer_auth(&token);
    assert_eq!(
        bearer(Method::GET, &format!("/v2/{REPO}/manifests/v1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        bearer(Method::GET, "/v2/").send().await.unwrap().status(),
        200
    );
    let resp = bearer(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "the token does not grant push");
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("pull,push")
    );
    // The token is for that repository only.
    assert_eq!(
        bearer(Method::GET, "/v2/acme/docker/other/tags/list")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Forged and wrong credentials are refused.
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(
        r.s.client
            .get(r.s.url("/v2/"))
            .bearer_auth(forged)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        r.s.client
            .get(r.s.url("/v2/token?scope=repository:acme/docker/app:pull"))
            .basic_auth("ro", Some("wrong"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // A deployer's token allows pushing.
    let dev = r.s.user_with_role("dev", "deployer", "acme");
    let (_, tok) = call(
        r.s.client
            .get(r.s.url(&format!("/v2/token?scope=repository:{REPO}:pull,push")))
            .basic_auth("dev", Some(&dev)),
    )
    .await;
    let resp =
        r.s.client
            .post(r.s.url(&format!("/v2/{REPO}/blobs/uploads/")))
            .bearer_auth(tok["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 202);
}

async fn anonymous_pull_from_public_registry_only(b: Backend) {
    let r = Reg::new(b, json!({"isPublic": true})).await;
    r.push_image(REPO, "v1", &[b"x"], json!({})).await;
    let (st, tok) = call(
        r.s.client
            .get(r.s.url(&format!("/v2/token?scope=repository:{REPO}:pull,push"))),
    )
    .await;
    assert_eq!(st, 200);
    let token = tok["token"].as_str().unwrap();
    assert_eq!(
        r.s.client
            .get(r.s.url(&format!("/v2/{REPO}/manifests/v1")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        r.s.client
            .post(r.s.url(&format!("/v2/{REPO}/blobs/uploads/")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    r.s.harness_registry(
        "acme",
        json!({"identifier": "closed", "packageType": "DOCKER", "parentRef": "acme"}),
    )
    .await;
    let (_, tok) = call(
        r.s.client
            .get(r.s.url("/v2/token?scope=repository:acme/closed/app:pull")),
    )
    .await;
    let resp =
        r.s.client
            .get(r.s.url("/v2/acme/closed/app/tags/list"))
            .bearer_auth(tok["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 401);
}

/// Blob garbage collection: what nothing refers to goes (after the grace period), what an
/// image, an upload in progress or a blob waiting for its manifest needs stays.
async fn garbage_collection(b: Backend) {
    let r = Reg::new(b, json!({"isDeletePackageAllowed": true})).await;
    let (kept, _) = r
        .push_image(REPO, "keep", &[b"kept layer", b"shared layer"], json!({}))
        .await;
    let (gone, _) = r
        .push_image(
            "acme/docker/old",
            "v1",
            &[b"doomed layer", b"shared layer"],
            json!({}),
        )
        .await;
    // Delete the old image, then purge it (deleting what is only deleted).
    assert_eq!(
        r.req(
            Method::DELETE,
            &format!("/v2/acme/docker/old/manifests/{gone}")
        )
        .send()
        .await
        .unwrap()
        .status(),
        202
    );
    let resp =
        r.s.delete("/har/api/v1/registry/acme/docker/+/artifact/old")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // A blob pushed for a manifest that has not come yet, and a chunked upload in progress.
    let waiting = r.push_blob(REPO, b"waiting for its manifest").await;
    let start = r
        .req(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = start.headers()["location"].to_str().unwrap().to_string();
    r.req(Method::PATCH, &loc)
        .body("in progress, ")
        .send()
        .await
        .unwrap();

    // Within the grace period nothing goes.
    let out = r.s.cli(&["gc", "--grace-secs", "3600"]);
    assert!(out.contains("collected 0 blobs"), "{out}");
    assert!(blob_stored(&r.s, &sha256(b"doomed layer")).await);
    // After it, only the deleted image's own layer (and manifest) go.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let out = r.s.cli(&["gc", "--grace-secs", "0"]);
    assert!(!out.contains("collected 0 blobs"), "{out}");
    assert!(
        !blob_stored(&r.s, &sha256(b"doomed layer")).await,
        "unreferenced layer collected"
    );
    assert!(
        !blob_stored(&r.s, &gone).await,
        "deleted manifest collected"
    );
    for d in [sha256(b"kept layer"), sha256(b"shared layer"), kept.clone()] {
        assert!(
            blob_stored(&r.s, &d).await,
            "{d} is still used by {REPO}:keep"
        );
    }
    let pulled = r
        .req(
            Method::GET,
            &format!("/v2/{REPO}/blobs/{}", sha256(b"shared layer")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.bytes().await.unwrap().as_ref(), b"shared layer");
    assert_eq!(
        r.req(Method::GET, &format!("/v2/{REPO}/manifests/keep"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // With grace 0 the waiting blob's link and the idle upload expire too (their grace is over);
    // with a real grace period they survive: check the normal path end to end again.
    let _ = (waiting, loc);
    let waiting = r.push_blob(REPO, b"waiting again").await;
    let start = r
        .req(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = start.headers()["location"].to_str().unwrap().to_string();
    r.req(Method::PATCH, &loc)
        .body("in progress, ")
        .send()
        .await
        .unwrap();
    let out = r.s.cli(&["gc", "--grace-secs", "3600"]);
    assert!(
        out.contains("collected 0 blobs") && out.contains("0 abandoned uploads"),
        "{out}"
    );
    assert!(blob_stored(&r.s, &waiting).await);
    let d = sha256(b"in progress, done");
    let put = r
        .req(Method::PUT, &format!("{loc}?digest={d}"))
        .body("done")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "the upload survived the collection");
}

both_backends!(
    pull_manifest_by_tag_and_digest,
    pull_blob_with_range,
    pull_unknown_is_404_with_spec_codes,
    push_monolithic_post_then_put,
    push_single_post_with_digest,
    push_chunked_with_content_range,
    push_wrong_digest_is_digest_invalid,
    push_sha512_digest,
    cancel_upload,
    cross_repository_mount,
    manifest_references_must_exist,
    bad_manifests_are_refused,
    multi_arch_index,
    upload_continues_on_another_server,
    tags_list_paginates,
    referrers_api,
    catalog_shows_only_readable_repositories,
    delete_tag_manifest_and_blob,
    deletes_need_permission,
    immutable_and_movable_tags,
    artifacts_appear_in_management_api,
    token_flow,
    anonymous_pull_from_public_registry_only,
    garbage_collection,
);

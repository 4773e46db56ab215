//! Container images through an OCI proxy with the real clients (skopeo, podman). The upstream is
//! a second `arca` with a private DOCKER registry: it answers anonymous requests with a Bearer
//! challenge, so every pull exercises the token dance with the proxy's own credentials. Tags are
//! revalidated on every pull here (interval 0): a tag moved upstream is followed, and with the
//! upstream gone the cached image is served.

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Run, Server, call, run};
use crate::oci::{add_index, host, layout_digest, ok, skopeo, umoci_image};

fn pull(w: &std::path::Path, h: &str, creds: &str, image: &str, dest: &str, all: bool) -> Run {
    let src = format!("docker://{h}/{image}");
    let mut a = vec!["copy", "--src-tls-verify=false", "--src-creds", creds];
    if all {
        a.push("--all");
    }
    a.extend_from_slice(&[src.as_str(), dest]);
    skopeo(w, &a)
}

async fn skopeo_and_podman_pull_through_an_oci_proxy(b: Backend) {
    let mut upstream = Server::start(b).await;
    upstream
        .harness_registry(
            "acme",
            json!({"identifier": "up", "packageType": "DOCKER", "parentRef": "acme"}),
        )
        .await;
    let pusher = upstream.user_with_role("pusher", "deployer", "acme");
    let mirror = upstream.user_with_role("mirror", "reader", "acme");
    let w = upstream.dir.path().join("oci");
    std::fs::create_dir_all(&w).unwrap();
    umoci_image(&w, "v1", "amd64");
    umoci_image(&w, "v2", "amd64");
    umoci_image(&w, "arm", "arm64");
    add_index(&w.join("layout"), &["v1", "arm"], "multi");
    let up = host(&upstream);
    let push = |src: &str, dst: &str, all: bool| {
        let creds = format!("pusher:{pusher}");
        let dst = format!("docker://{up}/acme/up/{dst}");
        let mut a = vec!["copy", "--dest-tls-verify=false", "--dest-creds", &creds];
        if all {
            a.push("--all");
        }
        a.extend_from_slice(&[src, dst.as_str()]);
        ok(skopeo(&w, &a), "skopeo push to the upstream");
    };
    push("oci:layout:v1", "hello:v1", false);
    push("oci:layout:multi", "multi:v1", true);

    let s = Server::start(b).await;
    let (st, v) = call(
        s.client
            .post(s.url("/har/api/v1/registry"))
            .header("x-api-key", &s.token)
            .json(
                &json!({"identifier": "hub", "packageType": "DOCKER", "parentRef": "acme",
                   "config": {"type": "UPSTREAM", "source": "Custom",
                              "url": format!("{}/acme/up", upstream.url("").trim_end_matches('/')),
                              "authType": "UserPassword",
                              "auth": {"userName": "mirror", "password": mirror},
                              "metadataCacheTTL": 0}}),
            ),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let reader = s.user_with_role("reader", "reader", "acme");
    let creds = format!("reader:{reader}");
    let h = host(&s);

    // skopeo: a multi-layer image and a multi-arch index, digests identical to what was pushed.
    ok(
        pull(&w, &h, &creds, "acme/hub/hello:v1", "oci:pulled:v1", false),
        "skopeo pull through the proxy",
    );
    assert_eq!(
        layout_digest(&w.join("pulled"), "v1"),
        layout_digest(&w.join("layout"), "v1")
    );
    ok(
        pull(
            &w,
            &h,
            &creds,
            "acme/hub/multi:v1",
            "oci:pulled:multi",
            true,
        ),
        "skopeo pull --all through the proxy",
    );
    assert_eq!(
        layout_digest(&w.join("pulled"), "multi"),
        layout_digest(&w.join("layout"), "multi")
    );

    // podman into fresh storage.
    let podman = |name: &str, rest: &[&str]| {
        let mut a = vec![
            "--root".to_string(),
            w.join(format!("{name}-root")).display().to_string(),
            "--runroot".to_string(),
            w.join(format!("{name}-run")).display().to_string(),
            "--storage-driver".to_string(),
            "vfs".to_string(),
        ];
        a.extend(rest.iter().map(|x| x.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run("podman", &a, &w, &[])
    };
    let image = format!("{h}/acme/hub/hello:v1");
    ok(
        podman(
            "p1",
            &["pull", "--tls-verify=false", "--creds", &creds, &image],
        ),
        "podman pull through the proxy",
    );

    // What the proxy fetched is ordinary content of the UPSTREAM registry (Harness shows the
    // cache under the proxy), with sizes.
    let (st, v) = call(
        s.client
            .get(s.url("/har/api/v1/registry/acme%2Fhub/+/artifacts"))
            .header("x-api-key", &s.token),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["data"]["artifacts"]
        .as_array()
        .map(|l| l.iter().filter_map(|a| a["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"hello") && names.contains(&"multi"), "{v}");

    // The tag moves upstream: the next pull follows it (revalidated with a HEAD).
    push("oci:layout:v2", "hello:v1", false);
    ok(
        pull(&w, &h, &creds, "acme/hub/hello:v1", "oci:moved:v1", false),
        "skopeo pull of a moved tag",
    );
    assert_eq!(
        layout_digest(&w.join("moved"), "v1"),
        layout_digest(&w.join("layout"), "v2"),
        "the moved tag is followed"
    );

    // Tags the upstream lists are listed through the proxy, even ones never pulled.
    push("oci:layout:arm", "hello:v9", false);
    let list_tags = || {
        let out = ok(
            skopeo(
                &w,
                &[
                    "list-tags",
                    "--tls-verify=false",
                    "--creds",
                    &creds,
                    &format!("docker://{h}/acme/hub/hello"),
                ],
            ),
            "skopeo list-tags through the proxy",
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["Tags"].clone()
    };
    assert_eq!(list_tags(), json!(["v1", "v9"]));

    // The upstream goes away: the cached images are still pulled (tags served stale).
    upstream.stop();
    ok(
        pull(&w, &h, &creds, "acme/hub/hello:v1", "oci:offline:v1", false),
        "skopeo pull with the upstream gone",
    );
    assert_eq!(
        layout_digest(&w.join("offline"), "v1"),
        layout_digest(&w.join("layout"), "v2")
    );
    let r = s
        .client
        .get(s.url("/v2/acme/hub/hello/manifests/v1"))
        .basic_auth("reader", Some(&reader))
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-arca-cache"], "STALE");
    ok(
        podman(
            "p2",
            &["pull", "--tls-verify=false", "--creds", &creds, &image],
        ),
        "podman pull with the upstream gone",
    );
    assert_eq!(list_tags(), json!(["v1", "v9"]), "the last list, stale");
    // Something never fetched is a clear error naming the upstream, not a hang.
    let r = s
        .client
        .get(s.url("/v2/acme/hub/other/manifests/v1"))
        .basic_auth("reader", Some(&reader))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
}

both_backends!(skopeo_and_podman_pull_through_an_oci_proxy);

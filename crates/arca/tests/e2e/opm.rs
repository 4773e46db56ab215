use std::io::Write;

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, Server, call};

/// A `.ospx` as `opm build` makes it: `packagedef`, `opm-metadata.xml` and `content.zip`.
pub(crate) fn ospx(name: &str, version: &str, with_metadata: bool) -> Vec<u8> {
    let opts = zip::write::SimpleFileOptions::default();
    let mut content = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    content.start_file("src/main.os", opts).unwrap();
    content
        .write_all("Сообщить(\"hello\");".as_bytes())
        .unwrap();
    let content = content.finish().unwrap().into_inner();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file("packagedef", opts).unwrap();
    z.write_all(format!("\u{feff}Описание.Имя(\"{name}\")\n    .Версия(\"{version}\")\n    .Автор(\"Acme\")\n    .ВерсияСреды(\"1.8.0\");\n").as_bytes()).unwrap();
    if with_metadata {
        z.start_file("opm-metadata.xml", opts).unwrap();
        z.write_all(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opm-metadata xmlns=\"http://oscript.io/schemas/opm-metadata/1.0\">\
             <name>{name}</name><version>{version}</version><engine-version>1.8.0</engine-version><author>Acme</author></opm-metadata>").as_bytes()).unwrap();
    }
    z.start_file("content.zip", opts).unwrap();
    z.write_all(&content).unwrap();
    z.finish().unwrap().into_inner()
}

/// `opm push` as the client sends it: raw body, FILE-NAME, CHANNEL, OAUTH-TOKEN.
pub(crate) async fn push(
    s: &Server,
    token: Option<&str>,
    file: &str,
    channel: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let mut r = s
        .client
        .post(s.url("/pkg/acme/opm/opm/push"))
        .header("FILE-NAME", file)
        .header("CHANNEL", channel)
        .body(body);
    if let Some(t) = token {
        r = r.header("OAUTH-TOKEN", t);
    }
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn get(s: &Server, path: &str) -> (u16, Vec<u8>) {
    let r = s
        .client
        .get(s.url(&format!("/pkg/acme/opm/opm/{path}")))
        .header("Authorization", format!("Bearer {}", s.token))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// The opm client's protocol: push, list.txt, download by version and latest; refusals.
async fn opm_protocol(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "opm", "packageType": "OPM", "parentRef": "acme", "packageReuploadType": "NONE"})).await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let v1 = ospx("gitrunner", "1.6.0", true);
    let v2 = ospx("gitrunner", "1.10.0", true);
    let other = ospx("asserts", "1.3.0", false);
    assert_eq!(
        push(&s, Some(&dev), "gitrunner-1.6.0.ospx", "stable", v1.clone())
            .await
            .0,
        200
    );
    assert_eq!(
        push(&s, Some(&dev), "gitrunner-1.10.0.ospx", "dev", v2.clone())
            .await
            .0,
        200
    );
    let (st, msg) = push(
        &s,
        Some(&dev),
        "asserts-1.3.0.ospx",
        "stable",
        other.clone(),
    )
    .await;
    assert_eq!(st, 200, "packagedef only: {msg}");
    // Authorization instead of OAUTH-TOKEN works too.
    let r = s
        .client
        .post(s.url("/pkg/acme/opm/opm/push"))
        .header("Authorization", format!("Bearer {dev}"))
        .header("FILE-NAME", "other-2.0.0.ospx")
        .header("CHANNEL", "stable")
        .body(ospx("other", "2.0.0", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    assert_eq!(
        get(&s, "list.txt").await,
        (200, b"asserts\ngitrunner\nother\n".to_vec())
    );
    assert_eq!(
        get(&s, "gitrunner/gitrunner-1.6.0.ospx").await,
        (200, v1.clone())
    );
    assert_eq!(
        get(&s, "gitrunner/gitrunner.ospx").await,
        (200, v2.clone()),
        "latest is 1.10.0"
    );
    assert_eq!(get(&s, "gitrunner/gitrunner-9.9.9.ospx").await.0, 404);
    assert_eq!(get(&s, "nothing/nothing.ospx").await.0, 404);

    let (_, before) = call(s.get("/har/api/v1/registry/acme/opm/+/artifacts")).await;
    for (what, token, file, channel, body, want) in [
        (
            "re-upload",
            Some(dev.as_str()),
            "gitrunner-1.6.0.ospx",
            "stable",
            v1.clone(),
            409u16,
        ),
        (
            "not a zip",
            Some(&dev),
            "x-1.0.ospx",
            "stable",
            b"nope".to_vec(),
            400,
        ),
        (
            "no manifest",
            Some(&dev),
            "x-1.0.ospx",
            "stable",
            {
                let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                z.start_file("readme", zip::write::SimpleFileOptions::default())
                    .unwrap();
                z.finish().unwrap().into_inner()
            },
            400,
        ),
        (
            "FILE-NAME mismatch",
            Some(&dev),
            "wrong-1.0.ospx",
            "stable",
            ospx("newpkg", "1.0.0", true),
            400,
        ),
        (
            "unknown channel",
            Some(&dev),
            "newpkg-1.0.0.ospx",
            "nightly",
            ospx("newpkg", "1.0.0", true),
            400,
        ),
        (
            "path traversal in the name",
            Some(&dev),
            "..-1.0.ospx",
            "stable",
            ospx("..", "1.0", true),
            400,
        ),
        (
            "reader",
            Some(&ro),
            "newpkg-1.0.0.ospx",
            "stable",
            ospx("newpkg", "1.0.0", true),
            403,
        ),
        (
            "anonymous",
            None,
            "newpkg-1.0.0.ospx",
            "stable",
            ospx("newpkg", "1.0.0", true),
            401,
        ),
    ] {
        let (st, msg) = push(&s, token, file, channel, body).await;
        assert_eq!(st, want, "{what}: {msg}");
    }
    let (_, after) = call(s.get("/har/api/v1/registry/acme/opm/+/artifacts")).await;
    assert_eq!(before["data"]["itemCount"], after["data"]["itemCount"]);
    let (_, v) = call(s.get("/har/api/v1/registry/acme/opm/+/artifact/gitrunner/+/versions")).await;
    let versions: Vec<&str> = v["data"]["artifactVersions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect::<Vec<_>>();
    assert_eq!(versions.len(), 2, "{v}");
}

both_backends!(opm_protocol);

use serde_json::{Value, json};
use sha2::Digest;

use crate::both_backends;
use crate::common::{Backend, Server, call, run, tools};

fn python(w: &std::path::Path, script: &str) -> crate::common::Run {
    run(tools().join("py/bin/python"), &["-c", script], w, &[])
}

async fn upload(s: &Server, token: &str, path: &str, body: Vec<u8>, put: bool) -> (u16, Value) {
    let url = s.url(&format!("/pkg/acme/charts/helm/{path}"));
    let r = if put {
        s.client.put(url)
    } else {
        s.client.post(url)
    };
    call(r.basic_auth("u", Some(token)).body(body)).await
}

/// A classic chart repository: uploads by PUT and ChartMuseum's API, index.yaml read and charts
/// pulled by Helm's own SDK, every digest checked, bad uploads refused.
async fn chart_repository_with_helm_sdk(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry("acme", json!({"identifier": "charts", "packageType": "HELM", "parentRef": "acme", "packageReuploadType": "NONE"})).await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let w = s.dir.path().join("helm");
    std::fs::create_dir_all(w.join("out")).unwrap();
    let out = python(
        &w,
        "import helm_python as helm\n\
        helm.Chart.create('hellochart', '.')\n\
        print(helm.package('hellochart', destination='pkgs'))\n\
        print(helm.package('hellochart', destination='pkgs', version='0.2.0'))\n\
        helm.Chart.create('other', '.')\n\
        print(helm.package('other', destination='pkgs', version='1.0.0'))\n",
    );
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let read = |f: &str| std::fs::read(w.join("pkgs").join(f)).unwrap();
    let (c1, c2, other) = (
        read("hellochart-0.1.0.tgz"),
        read("hellochart-0.2.0.tgz"),
        read("other-1.0.0.tgz"),
    );

    assert_eq!(
        upload(&s, &dev, "hellochart-0.1.0.tgz", c1.clone(), true)
            .await
            .0,
        201
    );
    let (st, v) = upload(&s, &dev, "api/charts", other.clone(), false).await;
    assert_eq!((st, v["saved"].clone()), (201, json!(true)));
    let prov = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nname: hellochart\nversion: 0.2.0\n...\n-----BEGIN PGP SIGNATURE-----\n\nx\n-----END PGP SIGNATURE-----\n".to_vec();
    let form = reqwest::multipart::Form::new()
        .part(
            "chart",
            reqwest::multipart::Part::bytes(c2.clone()).file_name("hellochart-0.2.0.tgz"),
        )
        .part(
            "prov",
            reqwest::multipart::Part::bytes(prov.clone()).file_name("hellochart-0.2.0.tgz.prov"),
        );
    let r = s
        .client
        .post(s.url("/pkg/acme/charts/helm/api/charts"))
        .basic_auth("dev", Some(&dev))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .get("/pkg/acme/charts/helm/charts/hellochart-0.2.0.tgz.prov")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), prov.as_slice());

    // Helm's SDK reads the index and pulls with credentials.
    let url = s.url("/pkg/acme/charts/helm");
    let script = format!(
        "import helm_python as helm, json\n\
         idx = helm.repo_index('{url}', username='ro', password='{ro}')\n\
         print(json.dumps({{n: [[e['version'], e['digest'], e['urls'][0]] for e in v] for n, v in idx['entries'].items()}}))\n\
         helm.pull('hellochart', repo_url='{url}', version='0.1.0', destination='out', username='ro', password='{ro}')\n\
         try:\n    helm.repo_index('{url}', username='ro', password='wrong')\n    print('NO ERROR')\n\
         except Exception as e:\n    print('REFUSED', type(e).__name__)\n"
    );
    let out = python(&w, &script);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let mut lines = out.stdout.lines();
    let entries: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        entries["hellochart"][0][0], "0.2.0",
        "newest first: {entries}"
    );
    assert_eq!(entries["hellochart"][1][0], "0.1.0");
    assert_eq!(entries["other"][0][0], "1.0.0");
    for (_, versions) in entries.as_object().unwrap() {
        for v in versions.as_array().unwrap() {
            let body = s
                .client
                .get(v[2].as_str().unwrap())
                .basic_auth("ro", Some(&ro))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&body)),
                v[1].as_str().unwrap(),
                "digest of {}",
                v[2]
            );
        }
    }
    assert_eq!(
        std::fs::read(w.join("out/hellochart-0.1.0.tgz")).unwrap(),
        c1
    );
    assert!(
        lines.next().unwrap().starts_with("REFUSED"),
        "{}",
        out.stdout
    );

    // Refusals: nothing stored, index unchanged.
    let index = s
        .get("/pkg/acme/charts/helm/index.yaml")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, before) = call(s.get("/har/api/v1/registry/acme/charts/+/artifacts")).await;
    let made = run(
        "python3",
        &[
            "-c",
            "import io, tarfile\nwith tarfile.open('nochart.tgz', 'w:gz') as t:\n    d = b'no chart here'\n    i = tarfile.TarInfo('x/README'); i.size = len(d); t.addfile(i, io.BytesIO(d))\n",
        ],
        &w,
        &[],
    );
    assert!(made.ok, "{}", made.stderr);
    let no_chart_yaml = std::fs::read(w.join("nochart.tgz")).unwrap();
    for (what, path, body, put, want) in [
        (
            "re-upload",
            "hellochart-0.1.0.tgz",
            c1.clone(),
            true,
            409u16,
        ),
        ("name mismatch", "wrong-0.1.0.tgz", c1.clone(), true, 400),
        ("not gzip", "x-1.0.0.tgz", b"nope".to_vec(), true, 400),
        ("no Chart.yaml", "x-1.0.0.tgz", no_chart_yaml, true, 400),
        (
            "prov without chart",
            "nochart-1.0.0.tgz.prov",
            prov.clone(),
            true,
            404,
        ),
        (
            "prov that is not one",
            "hellochart-0.1.0.tgz.prov",
            b"junk".to_vec(),
            true,
            400,
        ),
    ] {
        let (st, v) = upload(&s, &dev, path, body, put).await;
        assert_eq!(st, want, "{what}: {v}");
    }
    assert_eq!(
        upload(&s, &ro, "api/charts", other.clone(), false).await.0,
        403
    );
    let (_, after) = call(s.get("/har/api/v1/registry/acme/charts/+/artifacts")).await;
    assert_eq!(before["data"]["itemCount"], after["data"]["itemCount"]);

    // Delete needs the delete permission; then the index forgets the version.
    let del = |t: &str| {
        s.client
            .delete(s.url("/pkg/acme/charts/helm/api/charts/other/1.0.0"))
            .basic_auth("x", Some(t))
            .send()
    };
    assert_eq!(del(&dev).await.unwrap().status(), 403);
    assert_eq!(del(&s.token).await.unwrap().status(), 200);
    let after = s
        .get("/pkg/acme/charts/helm/index.yaml")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        index.contains("other") && !after.contains("other-1.0.0"),
        "{after}"
    );
}

both_backends!(chart_repository_with_helm_sdk);

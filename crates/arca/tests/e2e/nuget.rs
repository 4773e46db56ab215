use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Run, Server, call, run, tools};

/// NuGet.exe 5.8 under mono, with a `NuGet.Config` for source `arca` in an isolated home.
pub(crate) struct NugetExe {
    pub(crate) home: PathBuf,
    exe: PathBuf,
}

impl NugetExe {
    fn new(s: &Server, tag: &str, user: &str, secret: &str) -> NugetExe {
        Self::for_source(
            s,
            tag,
            &s.url("/pkg/acme/nu/nuget/index.json"),
            user,
            secret,
        )
    }

    /// NuGet.exe with source `arca` at `source` (a service index URL).
    pub(crate) fn for_source(
        s: &Server,
        tag: &str,
        source: &str,
        user: &str,
        secret: &str,
    ) -> NugetExe {
        let home = s.dir.path().join(format!("nuget-{tag}"));
        let config_dir = home.join(".config/NuGet");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::write(
            config_dir.join("NuGet.Config"),
            format!(
                "<configuration><packageSources><clear /><add key=\"arca\" value=\"{}\" protocolVersion=\"3\" /></packageSources>\
                 <packageSourceCredentials><arca><add key=\"Username\" value=\"{user}\" /><add key=\"ClearTextPassword\" value=\"{secret}\" /></arca></packageSourceCredentials></configuration>",
                source
            ),
        )
        .unwrap();
        NugetExe {
            home,
            exe: tools().join("nuget/package/nuget-5.8.0.exe"),
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let mut all = vec![self.exe.to_str().unwrap()];
        all.extend_from_slice(args);
        all.push("-NonInteractive");
        run("mono", &all, &self.home, &[])
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(r.ok, "nuget {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }
}

/// Writes a `.nupkg` (a zip with the nuspec at its root) and returns its path.
pub(crate) fn nupkg(dir: &Path, file: &str, nuspec: &str, extra: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(file);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    let id = nuspec
        .split("<id>")
        .nth(1)
        .and_then(|s| s.split("</id>").next())
        .unwrap_or("x");
    zip.start_file(format!("{id}.nuspec"), opts).unwrap();
    zip.write_all(nuspec.as_bytes()).unwrap();
    for (name, body) in extra {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    path
}

pub(crate) fn spec(id: &str, version: &str, deps: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\"><metadata>\
         <id>{id}</id><version>{version}</version><authors>Acme</authors><description>{id} package</description>{deps}</metadata></package>"
    )
}

pub(crate) async fn push_raw(s: &Server, key: &str, body: Vec<u8>) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(body).file_name("package.nupkg");
    call(
        s.client
            .put(s.url("/pkg/acme/nu/nuget/api/v2/package/"))
            .header("X-NuGet-ApiKey", key)
            .multipart(reqwest::multipart::Form::new().part("package", part)),
    )
    .await
}

async fn get_json(s: &Server, path: &str) -> (u16, Value) {
    call(s.get(&format!("/pkg/acme/nu/nuget/{path}"))).await
}

/// The real NuGet.exe pushes (chunked multipart to the push URL plus a trailing slash), lists,
/// searches and installs a package with a dependency; delete unlists and the v2 relist works.
async fn push_list_install_with_nuget_exe(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "nu", "packageType": "NUGET", "parentRef": "acme", "packageReuploadType": "NONE"}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let w = s.dir.path().join("work");
    let lib = nupkg(
        &w,
        "Acme.Lib.1.0.0.nupkg",
        &spec("Acme.Lib", "1.0.0", ""),
        &[("content/lib.txt", "lib")],
    );
    let app = nupkg(
        &w,
        "Acme.App.2.0.0-beta.nupkg",
        &spec(
            "Acme.App",
            "2.0.0-beta",
            "<dependencies><group targetFramework=\"net45\"><dependency id=\"Acme.Lib\" version=\"1.0\" /></group></dependencies>",
        ),
        &[("content/app.txt", "app")],
    );
    let pusher = NugetExe::new(&s, "dev", "dev", &dev);
    for p in [&lib, &app] {
        let out = pusher.ok(&[
            "push",
            p.to_str().unwrap(),
            "-Source",
            "arca",
            "-ApiKey",
            &dev,
        ]);
        assert!(out.contains("api/v2/package/"), "{out}");
    }
    // Re-pushing a version is refused (re-upload NONE) and NuGet.exe reports the 409.
    let r = pusher.run(&[
        "push",
        lib.to_str().unwrap(),
        "-Source",
        "arca",
        "-ApiKey",
        &dev,
    ]);
    assert!(
        !r.ok && format!("{}{}", r.stdout, r.stderr).contains("409"),
        "{}",
        r.stdout
    );
    // A reader's key cannot push.
    let r = pusher.run(&[
        "push",
        lib.to_str().unwrap(),
        "-Source",
        "arca",
        "-ApiKey",
        &ro,
    ]);
    assert!(
        !r.ok && format!("{}{}", r.stdout, r.stderr).contains("403"),
        "{}",
        r.stdout
    );

    let reader = NugetExe::new(&s, "ro", "ro", &ro);
    let listed = reader.ok(&["list", "-Source", "arca", "-PreRelease"]);
    assert!(
        listed.contains("Acme.Lib 1.0.0") && listed.contains("Acme.App 2.0.0-beta"),
        "{listed}"
    );
    let stable = reader.ok(&["list", "-Source", "arca"]);
    assert!(
        stable.contains("Acme.Lib 1.0.0") && !stable.contains("Acme.App"),
        "{stable}"
    );
    let found = reader.ok(&["search", "app", "-Source", "arca", "-PreRelease"]);
    assert!(
        found.contains("Acme.App | 2.0.0-beta") && !found.contains("Acme.Lib |"),
        "{found}"
    );

    // Install resolves the dependency through the registration and downloads both packages.
    reader.ok(&[
        "install",
        "Acme.App",
        "-Version",
        "2.0.0-beta",
        "-Source",
        "arca",
        "-OutputDirectory",
        "pkgs",
    ]);
    let pkgs = reader.home.join("pkgs");
    assert_eq!(
        std::fs::read_to_string(pkgs.join("Acme.App.2.0.0-beta/content/app.txt")).unwrap(),
        "app"
    );
    assert_eq!(
        std::fs::read_to_string(pkgs.join("Acme.Lib.1.0.0/content/lib.txt")).unwrap(),
        "lib"
    );

    // `nuget delete` unlists: hidden from list and search, still installable by exact version.
    pusher.ok(&[
        "delete", "Acme.Lib", "1.0.0", "-Source", "arca", "-ApiKey", &dev,
    ]);
    let _ = std::fs::remove_dir_all(reader.home.join(".local/share/NuGet"));
    let after = reader.ok(&["list", "-Source", "arca", "-PreRelease"]);
    assert!(
        !after.contains("Acme.Lib") && after.contains("Acme.App"),
        "{after}"
    );
    let (_, reg) = get_json(&s, "registration/acme.lib/index.json").await;
    let entry = &reg["items"][0]["items"][0]["catalogEntry"];
    assert_eq!(
        (entry["listed"].clone(), entry["published"].clone()),
        (json!(false), json!("1900-01-01T00:00:00+00:00"))
    );
    reader.ok(&[
        "install",
        "Acme.Lib",
        "-Version",
        "1.0.0",
        "-Source",
        "arca",
        "-OutputDirectory",
        "again",
    ]);
    // Relist (POST on the same URL), then it is listed again.
    let r = s
        .client
        .post(s.url("/pkg/acme/nu/nuget/api/v2/package/Acme.Lib/1.0.0"))
        .header("X-NuGet-ApiKey", &dev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, reg) = get_json(&s, "registration/acme.lib/index.json").await;
    assert_eq!(
        reg["items"][0]["items"][0]["catalogEntry"]["listed"],
        json!(true)
    );

    // Both packages are artifacts in the management API; deleting one moves it to the trash can.
    let (_, v) = call(s.get("/har/api/v1/registry/acme/nu/+/artifacts?sort_field=name")).await;
    let names: Vec<&str> = v["data"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["acme.app", "acme.lib"]);
}

/// The protocol documents, version rules, paging and every refusal, over plain HTTP.
async fn protocol_and_bad_input(b: Backend) {
    let s = Server::start(b).await;
    s.harness_registry(
        "acme",
        json!({"identifier": "nu", "packageType": "NUGET", "parentRef": "acme", "packageReuploadType": "NONE",
               "blockedPattern": ["Blocked.*"]}),
    )
    .await;
    let dev = s.user_with_role("dev", "deployer", "acme");
    let ro = s.user_with_role("ro", "reader", "acme");
    let w = s.dir.path().join("work");

    // The service index lists every resource variant clients ask for.
    let (st, idx) = get_json(&s, "index.json").await;
    assert_eq!(st, 200);
    let types: Vec<&str> = idx["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["@type"].as_str())
        .collect();
    for t in [
        "PackagePublish/2.0.0",
        "SymbolPackagePublish/4.9.0",
        "PackageBaseAddress/3.0.0",
        "RegistrationsBaseUrl",
        "RegistrationsBaseUrl/3.0.0-rc",
        "RegistrationsBaseUrl/3.0.0-beta",
        "RegistrationsBaseUrl/3.6.0",
        "SearchQueryService",
        "SearchQueryService/3.0.0-rc",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }

    // Version normalisation: 1.0 is stored and served as 1.0.0; ids are case-insensitive.
    let one = std::fs::read(nupkg(&w, "a.nupkg", &spec("Acme.Norm", "1.0", ""), &[])).unwrap();
    assert_eq!(push_raw(&s, &dev, one).await.0, 201);
    let (_, flat) = get_json(&s, "package/ACME.NORM/index.json").await;
    assert_eq!(flat, json!({"versions": ["1.0.0"]}));
    let dup = std::fs::read(nupkg(&w, "b.nupkg", &spec("acme.norm", "1.0.0.0", ""), &[])).unwrap();
    assert_eq!(push_raw(&s, &dev, dup).await.0, 409, "1.0.0.0 is 1.0 again");
    let r = s
        .get("/pkg/acme/nu/nuget/package/acme.norm/1.0.0/acme.norm.nuspec")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<id>Acme.Norm</id>"));
    // SemVer 2 versions keep their metadata for clients that ask for semVerLevel=2.0.0 only.
    let sv2 = std::fs::read(nupkg(
        &w,
        "c.nupkg",
        &spec("Acme.Sv", "2.0.0-rc.1+build.5", ""),
        &[],
    ))
    .unwrap();
    assert_eq!(push_raw(&s, &dev, sv2).await.0, 201);
    let (_, q) = get_json(&s, "query?q=acme.sv&prerelease=true").await;
    assert_eq!(q["data"], json!([]), "hidden without semVerLevel");
    let (_, q) = get_json(&s, "query?q=acme.sv&prerelease=true&semVerLevel=2.0.0").await;
    assert_eq!(q["data"][0]["version"], "2.0.0-rc.1+build.5");
    let (_, leaf) = get_json(&s, "registration/acme.sv/2.0.0-rc.1.json").await;
    assert_eq!(leaf["listed"], json!(true));

    // Paging: 130 versions make six external registration pages (64 per page).
    for i in 0..130 {
        let body = std::fs::read(nupkg(
            &w,
            "p.nupkg",
            &spec("Acme.Many", &format!("1.0.{i}"), ""),
            &[],
        ))
        .unwrap();
        assert_eq!(push_raw(&s, &dev, body).await.0, 201);
    }
    let (_, reg) = get_json(&s, "registration/acme.many/index.json").await;
    let pages = reg["items"].as_array().unwrap();
    assert_eq!(
        pages
            .iter()
            .map(|p| p["count"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [64, 64, 2]
    );
    assert!(
        pages[0].get("items").is_none(),
        "pages are not inlined past 128 versions"
    );
    assert_eq!(
        (pages[0]["lower"].as_str(), pages[2]["upper"].as_str()),
        (Some("1.0.0"), Some("1.0.129"))
    );
    let page_url = pages[1]["@id"].as_str().unwrap();
    let page: Value = s
        .client
        .get(page_url)
        .header("x-api-key", &s.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 64);
    assert_eq!(items[0]["catalogEntry"]["version"], "1.0.64");
    // Versions sort by NuGet rules (1.0.10 after 1.0.9), search pages with skip/take.
    let (_, flat) = get_json(&s, "package/acme.many/index.json").await;
    assert_eq!(flat["versions"][10], "1.0.10");
    let (_, q) = get_json(&s, "query?q=acme&skip=1&take=1").await;
    assert_eq!(
        (q["totalHits"].clone(), q["data"][0]["id"].clone()),
        (json!(3), json!("Acme.Norm"))
    );

    // Symbol packages: accepted for an existing version, stored, served.
    let sym_spec = "<package><metadata><id>Acme.Norm</id><version>1.0.0</version><authors>a</authors><description>d</description>\
                    <packageTypes><packageType name=\"SymbolsPackage\" /></packageTypes></metadata></package>";
    let sym = std::fs::read(nupkg(&w, "s.snupkg", sym_spec, &[("lib/x.pdb", "pdb")])).unwrap();
    let part = |b: Vec<u8>| {
        reqwest::multipart::Form::new().part(
            "package",
            reqwest::multipart::Part::bytes(b).file_name("x.snupkg"),
        )
    };
    let r = s
        .client
        .put(s.url("/pkg/acme/nu/nuget/api/v2/symbolpackage"))
        .header("X-NuGet-ApiKey", &dev)
        .multipart(part(sym.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .get("/pkg/acme/nu/nuget/package/acme.norm/1.0.0/acme.norm.1.0.0.snupkg")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), sym.as_slice());
    // ... but not as a regular package, and not for a version that does not exist.
    assert_eq!(push_raw(&s, &dev, sym).await.0, 400);
    let orphan = std::fs::read(nupkg(
        &w,
        "o.snupkg",
        &sym_spec.replace("1.0.0", "9.9.9"),
        &[],
    ))
    .unwrap();
    let r = s
        .client
        .put(s.url("/pkg/acme/nu/nuget/api/v2/symbolpackage"))
        .header("X-NuGet-ApiKey", &dev)
        .multipart(part(orphan))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Refusals: nothing is stored for any of them.
    let (_, before) = call(s.get("/har/api/v1/registry/acme/nu/+/artifacts")).await;
    // An archive without a nuspec.
    let mut bare = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    bare.start_file("lib/a.dll", zip::write::SimpleFileOptions::default())
        .unwrap();
    bare.write_all(b"x").unwrap();
    let bare = bare.finish().unwrap().into_inner();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not a zip", b"hello".to_vec(), 400),
        ("no nuspec", bare, 400),
        (
            "malformed nuspec",
            std::fs::read(nupkg(&w, "m.nupkg", "<package><metadata><id>A</id>", &[])).unwrap(),
            400,
        ),
        (
            "bad id",
            std::fs::read(nupkg(&w, "i.nupkg", &spec("Bad Id", "1.0", ""), &[])).unwrap(),
            400,
        ),
        (
            "bad version",
            std::fs::read(nupkg(&w, "v.nupkg", &spec("Acme.V", "1.x", ""), &[])).unwrap(),
            400,
        ),
        (
            "bad range",
            std::fs::read(nupkg(
                &w,
                "r.nupkg",
                &spec(
                    "Acme.R",
                    "1.0",
                    "<dependencies><dependency id=\"Y\" version=\"[1.0,\" /></dependencies>",
                ),
                &[],
            ))
            .unwrap(),
            400,
        ),
        (
            "blocked",
            std::fs::read(nupkg(&w, "bl.nupkg", &spec("Blocked.Pkg", "1.0", ""), &[])).unwrap(),
            403,
        ),
    ];
    for (what, body, want) in cases {
        let (st, v) = push_raw(&s, &dev, body).await;
        assert_eq!(st, want, "{what}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {v}"
        );
    }
    let (st, _) = push_raw(
        &s,
        &ro,
        std::fs::read(nupkg(&w, "ro.nupkg", &spec("Acme.Ro", "1.0", ""), &[])).unwrap(),
    )
    .await;
    assert_eq!(st, 403, "readers cannot push");
    let r = s
        .client
        .put(s.url("/pkg/acme/nu/nuget/api/v2/package"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let (_, after) = call(s.get("/har/api/v1/registry/acme/nu/+/artifacts")).await;
    assert_eq!(before["data"]["itemCount"], after["data"]["itemCount"]);
    // Unknown packages and versions are 404s.
    assert_eq!(get_json(&s, "registration/nope/index.json").await.0, 404);
    assert_eq!(
        get_json(&s, "package/acme.norm/2.0.0/acme.norm.2.0.0.nupkg")
            .await
            .0,
        404
    );
    assert_eq!(
        get_json(&s, "package/acme.norm/1.0.0/..%2f..%2fx").await.0,
        404
    );
}

both_backends!(push_list_install_with_nuget_exe, protocol_and_bad_input);

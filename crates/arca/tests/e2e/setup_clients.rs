//! Client setup followed verbatim, continued: NuGet, OCI (Podman), Helm, Debian, RPM and OPM, plus
//! what the steps look like on https base URLs and for read-only registries.
//!
//! Where a command needs a client this machine cannot have, the nearest real one stands in on
//! PATH under the command's name (the commands themselves are unchanged): `nuget` runs NuGet.exe
//! 5.8 under mono; `helm` is a small shim over Helm's Go SDK (helm-python-sdk); `opm`'s requests
//! are replayed with curl from the opm.cfg entry. System clients (apt, dnf) write under a private
//! root: the steps' `/etc/...` paths are the one thing rewritten, and apt and dnf are pointed at
//! that root by their configuration (APT_CONFIG, a dnf wrapper adding `--installroot`).

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Server, call, tools};
use crate::setup_verbatim::{Shell, Steps, hosted};

/// Writes an executable script.
fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_clients_nuget() {
    let (s, steps, token) = hosted("NUGET", "Arcademo", "1.0.0").await;
    assert!(steps.text().contains("NuGet.exe 5"), "{}", steps.text());
    let w = s.dir.path().join("nuget");
    crate::nuget::nupkg(
        &w.join("pkg"),
        "Arcademo.1.0.0.nupkg",
        &crate::nuget::spec("Arcademo", "1.0.0", ""),
        &[("content/demo.txt", "nuget demo")],
    );
    let bin = w.join("bin");
    script(
        &bin.join("nuget"),
        &format!(
            "#!/bin/sh\nexec mono {} \"$@\" -NonInteractive\n",
            tools().join("nuget/package/nuget-5.8.0.exe").display()
        ),
    );
    let sh =
        |home: &str| Shell::new(&w.join(home), std::slice::from_ref(&bin)).with("<TOKEN>", &token);
    let publish = sh("home-a");
    publish.run_all(&steps.shell("Add the source"), &w.join("pkg"));
    let out = publish.run_all(&steps.shell("Push"), &w.join("pkg"));
    assert!(out.contains("Your package was pushed"), "{out}");
    let install = sh("home-b");
    install.run_all(&steps.shell("Add the source"), &w.join("use"));
    install.run_all(&steps.shell("Install"), &w.join("use"));
    let got = std::fs::read_to_string(w.join("use/Arcademo.1.0.0/content/demo.txt")).unwrap();
    assert_eq!(got, "nuget demo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_clients_podman() {
    let (s, steps, token) = hosted("DOCKER", "arcademo", "1.0").await;
    let w = s.dir.path().join("oci");
    // Private container storage and credentials per home (podman's defaults are machine-wide).
    let sh = |home: &str| {
        let h = w.join(home);
        std::fs::create_dir_all(&h).unwrap();
        std::fs::write(
            h.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n",
                h.display()
            ),
        )
        .unwrap();
        Shell::new(&h, &[])
            .with("<TOKEN>", &token)
            .set(
                "CONTAINERS_STORAGE_CONF",
                h.join("storage.conf").display().to_string(),
            )
            .set(
                "REGISTRY_AUTH_FILE",
                h.join("auth.json").display().to_string(),
            )
    };
    let podman = |cmds: Vec<String>| -> Vec<String> {
        cmds.into_iter()
            .filter(|c| c.starts_with("podman "))
            .collect()
    };
    let publish = sh("home-a");
    let ctx = w.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "podman demo").unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    publish.run(
        "buildah bud --isolation chroot -t arcademo:1.0 ctx",
        &w,
        None,
    );
    for login in podman(steps.shell("Login")) {
        publish.run(&login, &w, Some(&format!("{token}\n")));
    }
    publish.run_all(&podman(steps.shell("Push")), &w);
    let install = sh("home-b");
    for login in podman(steps.shell("Login")) {
        install.run(&login, &w, Some(&format!("{token}\n")));
    }
    install.run_all(&podman(steps.shell("Pull")), &w);
    let host = s.base.trim_start_matches("http://");
    let out = install.run(
        "podman images --format '{{.Repository}}:{{.Tag}}'",
        &w,
        None,
    );
    assert!(
        out.contains(&format!("{host}/acme/docker-reg/arcademo:1.0")),
        "{out}"
    );
}

/// The `helm` subcommands the steps use, over Helm's Go SDK.
const HELM_SHIM: &str = r#"import sys, os, getpass
import helm_python as helm
args = sys.argv[1:]
plain = '--plain-http' in args
args = [a for a in args if a != '--plain-http']
creds = os.path.join(os.environ['HOME'], 'helm-creds.json')
rc = helm.RegistryClient(plain_http=plain, credentials_file=creds)
if args[:2] == ['registry', 'login']:
    user = args[args.index('-u') + 1]
    assert '--password-stdin' in args
    host = [a for a in args[2:] if not a.startswith('-') and a != user][0]
    rc.login(host, user, sys.stdin.read().strip(), plain_http=plain)
    print('Login Succeeded')
elif args[0] == 'push':
    rc.push(args[1], args[2], plain_http=plain)
elif args[0] == 'pull':
    rc.pull(args[1], version=args[args.index('--version') + 1], destination='.', plain_http=plain)
else:
    sys.exit('unsupported: %s' % args)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_clients_helm() {
    let (s, steps, token) = hosted("HELM", "hellochart", "0.1.0").await;
    let w = s.dir.path().join("helm");
    let bin = w.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("helm.py"), HELM_SHIM).unwrap();
    script(
        &bin.join("helm"),
        &format!(
            "#!/bin/sh\nexec {} {} \"$@\"\n",
            tools().join("py/bin/python").display(),
            bin.join("helm.py").display()
        ),
    );
    let sh =
        |home: &str| Shell::new(&w.join(home), std::slice::from_ref(&bin)).with("<TOKEN>", &token);
    let publish = sh("home-a");
    let py = tools().join("py/bin/python");
    publish.run(
        &format!(
            "{} -c \"import helm_python as helm; helm.Chart.create('hellochart', '.'); print(helm.package('hellochart', destination='.'))\"",
            py.display()
        ),
        &w.join("chart"),
        None,
    );
    for login in steps.shell("Login") {
        publish.run(&login, &w.join("chart"), Some(&format!("{token}\n")));
    }
    publish.run_all(&steps.shell("Push a chart"), &w.join("chart"));
    let install = sh("home-b");
    for login in steps.shell("Login") {
        install.run(&login, &w.join("use"), Some(&format!("{token}\n")));
    }
    install.run_all(&steps.shell("Pull a chart"), &w.join("use"));
    assert_eq!(
        std::fs::read(w.join("use/hellochart-0.1.0.tgz")).unwrap(),
        std::fs::read(w.join("chart/hellochart-0.1.0.tgz")).unwrap()
    );
    // The classic repository's upload line works too.
    std::fs::remove_file(w.join("use/hellochart-0.1.0.tgz")).unwrap();
    publish.run_all(&steps.shell("Upload a chart"), &w.join("chart"));
}

/// A private root for apt: the steps' `/etc/apt/` paths land under it, and APT_CONFIG points apt
/// there (downloads only: nothing is installed on the machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_clients_apt() {
    let (s, steps, token) = hosted("DEBIAN", "arcademo", "1.0").await;
    let w = s.dir.path().join("deb");
    std::fs::create_dir_all(&w).unwrap();
    let deb = crate::debian::build_deb(&w, "arcademo", "1.0", None);
    std::fs::create_dir_all(w.join("up")).unwrap();
    std::fs::copy(&deb, w.join("up/arcademo_1.0_all.deb")).unwrap();
    let root = w.join("root");
    for d in [
        "etc/apt/sources.list.d",
        "etc/apt/auth.conf.d",
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/trusted.gpg.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/log",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("status"), "").unwrap();
    std::fs::write(root.join("etc/apt/sources.list"), "").unwrap();
    let r = root.display();
    std::fs::write(
        root.join("apt.conf"),
        format!(
            "Dir::Etc \"{r}/etc/apt\";\nDir::State \"{r}/var/lib/apt\";\nDir::State::status \"{r}/status\";\n\
             Dir::Cache \"{r}/var/cache/apt\";\nDir::Log \"{r}/var/log\";\nAPT::Sandbox::User \"root\";\n\
             APT::Get::Download-Only \"true\";\n"
        ),
    )
    .unwrap();
    let sh = Shell::new(&w.join("home"), &[])
        .with("<TOKEN>", &token)
        .with("<FILE>", "arcademo_1.0_all")
        .with("/etc/apt/", format!("{r}/etc/apt/"))
        .set("APT_CONFIG", root.join("apt.conf").display().to_string());
    sh.run_all(&steps.shell("Upload"), &w.join("up"));
    sh.run_all(&steps.shell("Add the repository"), &w);
    let auth = root.join("etc/apt/auth.conf.d/debian-reg.conf");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&auth).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "auth.conf must be private");
    let out = sh.run_all(&steps.shell("Install"), &w);
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("W: ")).collect();
    assert!(warnings.is_empty(), "apt warned: {warnings:?}");
    assert_eq!(
        std::fs::read(root.join("var/cache/apt/archives/arcademo_1.0_all.deb")).unwrap(),
        std::fs::read(&deb).unwrap()
    );
}

/// dnf with a private root: the `.repo` file lands under it and a wrapper adds `--installroot`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_clients_dnf() {
    let (s, steps, token) = hosted("RPM", "arcademo", "1.0").await;
    let w = s.dir.path().join("rpm");
    let top = w.join("rpmbuild");
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    std::fs::write(
        top.join("SPECS/arcademo.spec"),
        "Name: arcademo\nVersion: 1.0\nRelease: 1\nSummary: demo\nLicense: MIT\nBuildArch: noarch\n\
         %description\nA demo.\n%install\nmkdir -p %{buildroot}/usr/share/arcademo\necho rpm demo > %{buildroot}/usr/share/arcademo/README\n\
         %files\n/usr/share/arcademo/README\n",
    )
    .unwrap();
    let root = w.join("root");
    let bin = w.join("bin");
    script(
        &bin.join("dnf"),
        &format!(
            "#!/bin/sh\nexec /usr/bin/dnf --installroot={0} --releasever=1 --disableplugin=local --setopt=cachedir={0}/cache \"$@\"\n",
            root.display()
        ),
    );
    let sh = Shell::new(&w.join("home"), &[bin])
        .with("<TOKEN>", &token)
        .with("<FILE>", "arcademo-1.0-1.noarch")
        .with(
            "/etc/yum.repos.d",
            format!("{}/etc/yum.repos.d", root.display()),
        );
    sh.run(
        &format!(
            "rpmbuild --define '_topdir {}' -bb {}/SPECS/arcademo.spec",
            top.display(),
            top.display()
        ),
        &w,
        None,
    );
    sh.run_all(&steps.shell("Upload"), &top.join("RPMS/noarch"));
    sh.run_all(&steps.shell("Add a .repo file"), &w);
    let repo = root.join("etc/yum.repos.d/rpm-reg.repo");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&repo).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the .repo file holds the token");
    sh.run_all(&steps.shell("Install"), &w);
    assert_eq!(
        std::fs::read_to_string(root.join("usr/share/arcademo/README")).unwrap(),
        "rpm demo\n"
    );
}

/// OPM: no OneScript here. The publish step's `opm push` and opm's reads are replayed as the
/// client sends them, from the opm.cfg entry the steps give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_clients_opm() {
    let (s, steps, token) = hosted("OPM", "arcademo", "1.0.0").await;
    let cfg = steps
        .commands("Configure opm")
        .into_iter()
        .find(|(l, _)| l == "opm.cfg")
        .map(|(_, v)| v.replace("<TOKEN>", &token))
        .expect("opm.cfg entry");
    let cfg: Value = serde_json::from_str(&cfg).expect("opm.cfg is JSON");
    let server = &cfg["СервераПакетов"][0];
    let (base, path, push) = (
        server["Сервер"].as_str().unwrap(),
        server["ПутьНаСервере"].as_str().unwrap(),
        server["РесурсПубликацииПакетов"].as_str().unwrap(),
    );
    let push_cmd = steps.shell("Publish");
    assert!(
        push_cmd[0].starts_with("opm push --token <TOKEN>"),
        "{push_cmd:?}"
    );
    let ospx = crate::opm::ospx("arcademo", "1.0.0", true);
    let w = s.dir.path().join("opm");
    std::fs::create_dir_all(&w).unwrap();
    std::fs::write(w.join("arcademo-1.0.0.ospx"), &ospx).unwrap();
    // opm push: the package body with FILE-NAME, CHANNEL and the token in OAUTH-TOKEN, to the
    // server (credentials stripped: push sends only the token) plus the publish resource.
    let bare = base
        .split_once('@')
        .map_or(base.to_string(), |(scheme_user, host)| {
            format!("{}://{host}", scheme_user.split("://").next().unwrap())
        });
    let sh = Shell::new(&w.join("home"), &[]);
    let out = sh.run(
        &format!(
            "curl --fail-with-body -H 'FILE-NAME: arcademo-1.0.0.ospx' -H 'CHANNEL: stable' -H 'OAUTH-TOKEN: {token}' --data-binary @arcademo-1.0.0.ospx {bare}{push}"
        ),
        &w,
        None,
    );
    assert!(out.contains("published"), "{out}");
    // opm install: list.txt and the package, with the credentials of the server URL.
    let list = sh.run(&format!("curl -fsS {base}{path}list.txt"), &w, None);
    assert!(list.lines().any(|l| l.trim() == "arcademo"), "{list}");
    sh.run(
        &format!("curl -fsS -o got.ospx {base}{path}arcademo/arcademo.ospx"),
        &w,
        None,
    );
    assert_eq!(std::fs::read(w.join("got.ospx")).unwrap(), ospx);
}

/// On an https base URL every command uses https and no insecure flag; proxies and anonymous
/// callers get no write steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_steps_for_https_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/arca.db", dir.path().display());
    let s = Server::start_with(dir, db, &[("ARCA_BASE_URL", "https://arca.example.test")]).await;
    let insecure = [
        "--tls-verify=false",
        "--plain-http",
        "insecure-registries",
        "secure-http false",
        "trusted-host",
        "http://",
    ];
    for pt in [
        "PYTHON", "NPM", "CARGO", "MAVEN", "GENERIC", "COMPOSER", "CRAN", "DEBIAN", "RPM", "NUGET",
        "DOCKER", "HELM", "OPM",
    ] {
        let id = format!("{}-reg", pt.to_lowercase());
        s.harness_registry(
            "acme",
            json!({"identifier": id, "packageType": pt, "parentRef": "acme"}),
        )
        .await;
        let steps = Steps::fetch(&s, &format!("acme/{id}"), "a", "1").await;
        let text = steps.text();
        assert!(
            text.contains("https://arca.example.test") || text.contains("arca.example.test/"),
            "{pt}: {text}"
        );
        for flag in insecure {
            assert!(!text.contains(flag), "{pt} has '{flag}' on https: {text}");
        }
        assert!(!text.contains("&lt;"), "{pt}: escaped placeholder: {text}");
    }
    // A proxy: read steps only (no upload, push, publish or deploy sections).
    s.harness_registry(
        "acme",
        json!({"identifier": "up", "packageType": "NPM", "parentRef": "acme",
        "config": {"type": "UPSTREAM", "url": "http://127.0.0.1:9/", "authType": "Anonymous"}}),
    )
    .await;
    let (st, v) = call(s.get("/har/api/v1/registry/acme/up/+/client-setup-details")).await;
    assert_eq!(st, 200, "{v}");
    let headers: Vec<String> = v["data"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["header"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        headers.iter().all(|h| !h.contains("Publish")),
        "{headers:?}"
    );
    assert!(headers.iter().any(|h| h.contains("Install")), "{headers:?}");
}

/// A group registry's steps work as given: npm publishes through the group (to its deployment
/// member) and installs through it into a clean home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_clients_npm_through_a_group() {
    let s = Server::start(crate::common::Backend::Sqlite).await;
    let base = "/registry/company/grp/repositories";
    let post = |body: Value| {
        s.client
            .post(s.url(base))
            .header("Authorization", format!("token {}", s.token))
            .json(&body)
    };
    let (st, a) = call(post(
        json!({"type": "LOCAL", "repositoryName": "npm-a", "packageType": "npm"}),
    ))
    .await;
    assert_eq!(st, 201, "{a}");
    let a = a["repositoryUuid"].as_str().unwrap().to_string();
    let (st, v) = call(post(
        json!({"type": "VIRTUAL", "repositoryName": "npm-v", "packageType": "npm",
        "virtualSettings": {"includedRepositoryUuids": [a], "deploymentRepositoryUuid": a}}),
    ))
    .await;
    assert_eq!(st, 201, "{v}");
    let steps = Steps::fetch(&s, "default/grp/npm-v", "groupdemo", "1.0.0").await;
    let token = crate::setup_verbatim::token_from_step1(&s, &steps);
    let w = s.dir.path().join("npm-group");
    std::fs::create_dir_all(w.join("pkg")).unwrap();
    std::fs::write(
        w.join("pkg/package.json"),
        r#"{"name": "groupdemo", "version": "1.0.0", "main": "index.js"}"#,
    )
    .unwrap();
    std::fs::write(w.join("pkg/index.js"), "module.exports = 'group demo';\n").unwrap();
    let sh = |home: &str| {
        Shell::new(&w.join(home), &[])
            .with("<TOKEN>", &token)
            .set("npm_config_update_notifier", "false")
            .set("npm_config_audit", "false")
            .set("npm_config_fund", "false")
    };
    let publish = sh("home-a");
    publish.run_all(&steps.shell("Configure npm"), &w.join("pkg"));
    publish.run_all(&steps.shell("Publish"), &w.join("pkg"));
    let install = sh("home-b");
    install.run_all(&steps.shell("Configure npm"), &w.join("use"));
    install.run_all(&steps.shell("Install"), &w.join("use"));
    let out = install.run(
        "node -e \"console.log(require('groupdemo'))\"",
        &w.join("use"),
        None,
    );
    assert!(out.contains("group demo"), "{out}");
    // It landed in the deployment member.
    let (st, _) = call(s.get("/pkg/default/npm-a/npm/groupdemo")).await;
    assert_eq!(st, 200);
}

//! Client setup details: the commands a user pastes to use a registry, per package type, with
//! this server's base URL and the registry's path filled in. Shape as the Harness UI expects:
//! sections of type INLINE (steps) or TABS, steps of type Static (commands) or GenerateToken.

use serde_json::{Value, json};

use crate::auth::Principal;
use crate::model::{PackageType, Registry, RegistryKind};
use crate::state::AppState;

fn step(header: &str, commands: &[(&str, String)]) -> Value {
    json!({"type": "Static", "header": header,
           "commands": commands.iter().map(|(l, v)| json!({"label": l, "value": v})).collect::<Vec<_>>()})
}

fn inline(header: &str, steps: Vec<Value>) -> Value {
    json!({"type": "INLINE", "header": header, "steps": steps})
}

pub fn details(
    state: &AppState,
    reg: &Registry,
    principal: &Principal,
    artifact: Option<&str>,
    version: Option<&str>,
) -> Value {
    let base = state.config.base_url.clone();
    let host = base.split("://").nth(1).unwrap_or(&base).to_string();
    let scheme = base.split("://").next().unwrap_or("http").to_string();
    let account = &reg.account;
    let id = &reg.identifier;
    let root = format!(
        "{base}/pkg/{account}/{id}/{}",
        reg.package_type.path_segment()
    );
    let user = principal.user_name().unwrap_or("<USERNAME>").to_string();
    let art = artifact.unwrap_or("<ARTIFACT_NAME>");
    let ver = version.unwrap_or("<VERSION>");
    let anonymous = principal.is_anonymous();
    let read_only = anonymous
        || matches!(
            reg.kind,
            RegistryKind::Proxy | RegistryKind::Cache | RegistryKind::Trash
        );
    let (title, mut sections): (&str, Vec<Value>) = match reg.package_type {
        PackageType::Generic => (
            "Generic Client Setup",
            vec![
                inline(
                    "Upload a file",
                    vec![step(
                        "Upload with curl",
                        &[(
                            "",
                            format!("curl -u {user}:<TOKEN> -T <FILE> {root}/{art}/{ver}/<FILE>"),
                        )],
                    )],
                ),
                inline(
                    "Download a file",
                    vec![step(
                        "Download with curl",
                        &[(
                            "",
                            format!("curl -u {user}:<TOKEN> -O {root}/{art}/{ver}/<FILE>"),
                        )],
                    )],
                ),
            ],
        ),
        PackageType::Docker => (
            "Docker Client Setup",
            vec![
                inline(
                    "Login",
                    vec![step(
                        "Log in to the registry",
                        &[("", format!("docker login {host}"))],
                    )],
                ),
                inline(
                    "Pull an image",
                    vec![step(
                        "Pull",
                        &[("", format!("docker pull {host}/{account}/{id}/{art}:{ver}"))],
                    )],
                ),
                inline(
                    "Push an image",
                    vec![step(
                        "Tag and push",
                        &[
                            (
                                "",
                                format!("docker tag {art}:{ver} {host}/{account}/{id}/{art}:{ver}"),
                            ),
                            ("", format!("docker push {host}/{account}/{id}/{art}:{ver}")),
                        ],
                    )],
                ),
            ],
        ),
        PackageType::Helm => (
            "Helm Client Setup",
            vec![
                inline(
                    "Login",
                    vec![step(
                        "Log in to the registry",
                        &[("", format!("helm registry login {host}"))],
                    )],
                ),
                inline(
                    "Push a chart",
                    vec![step(
                        "Push",
                        &[(
                            "",
                            format!("helm push {art}-{ver}.tgz oci://{host}/{account}/{id}"),
                        )],
                    )],
                ),
                inline(
                    "Pull a chart",
                    vec![step(
                        "Pull",
                        &[(
                            "",
                            format!("helm pull oci://{host}/{account}/{id}/{art} --version {ver}"),
                        )],
                    )],
                ),
                inline(
                    "Classic chart repository",
                    vec![step(
                        "Add the repository",
                        &[(
                            "",
                            format!(
                                "helm repo add {id} {root} --username {user} --password <TOKEN>"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Upload a chart to the classic repository",
                    vec![step(
                        "Upload",
                        &[(
                            "",
                            format!(
                                "curl -u {user}:<TOKEN> -T {art}-{ver}.tgz {root}/{art}-{ver}.tgz"
                            ),
                        )],
                    )],
                ),
            ],
        ),
        PackageType::Npm => (
            "npm Client Setup",
            vec![
                inline(
                    "Configure npm",
                    vec![step(
                        "Add to .npmrc",
                        &[(
                            "",
                            format!(
                                "registry={root}/\n//{}/:_authToken=<TOKEN>",
                                root.split("://").nth(1).unwrap_or(&root)
                            ),
                        )],
                    )],
                ),
                inline(
                    "Publish",
                    vec![step("Publish", &[("", "npm publish".to_string())])],
                ),
                inline(
                    "Install",
                    vec![step("Install", &[("", format!("npm install {art}@{ver}"))])],
                ),
            ],
        ),
        PackageType::Python => (
            "Python Client Setup",
            vec![
                inline(
                    "Configure pip",
                    vec![step(
                        "Add to pip.conf",
                        &[(
                            "",
                            format!(
                                "[global]\nindex-url = {scheme}://{user}:<TOKEN>@{}/simple/",
                                root.split("://").nth(1).unwrap_or(&root)
                            ),
                        )],
                    )],
                ),
                inline(
                    "Upload with twine",
                    vec![step(
                        "Upload",
                        &[(
                            "",
                            format!(
                                "twine upload --repository-url {root}/ -u {user} -p <TOKEN> dist/*"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Install",
                        &[(
                            "",
                            format!("pip install --index-url {root}/simple/ {art}=={ver}"),
                        )],
                    )],
                ),
            ],
        ),
        PackageType::Maven => (
            "Maven Client Setup",
            vec![
                inline(
                    "Configure settings.xml",
                    vec![step(
                        "Add a server to ~/.m2/settings.xml",
                        &[(
                            "",
                            format!(
                                "<settings><servers><server><id>{id}</id><username>{user}</username><password>&lt;TOKEN&gt;</password></server></servers></settings>"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Configure pom.xml",
                    vec![step(
                        "Repository and deployment target",
                        &[(
                            "",
                            format!(
                                "<repositories><repository><id>{id}</id><url>{root}/</url></repository></repositories>\n<distributionManagement><repository><id>{id}</id><url>{root}/</url></repository></distributionManagement>"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Deploy and resolve",
                    vec![step(
                        "Commands",
                        &[
                            ("", "mvn deploy".to_string()),
                            ("", format!("mvn dependency:get -Dartifact={art}:{ver}")),
                        ],
                    )],
                ),
            ],
        ),
        PackageType::Nuget => (
            "NuGet Client Setup",
            vec![
                inline(
                    "Add the source",
                    vec![step(
                        "nuget sources add",
                        &[(
                            "",
                            format!(
                                "nuget sources add -Name {id} -Source {root}/index.json -Username {user} -Password <TOKEN>"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Push",
                    vec![step(
                        "Push",
                        &[(
                            "",
                            format!("nuget push {art}.{ver}.nupkg -Source {id} -ApiKey <TOKEN>"),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Install",
                        &[(
                            "",
                            format!("nuget install {art} -Version {ver} -Source {id}"),
                        )],
                    )],
                ),
            ],
        ),
        PackageType::Cargo => (
            "Cargo Client Setup",
            vec![
                inline(
                    "Configure cargo",
                    vec![step(
                        "Add to .cargo/config.toml",
                        &[(
                            "",
                            format!(
                                "[registries.{id}]\nindex = \"sparse+{root}/index/\"\ncredential-provider = \"cargo:token\""
                            ),
                        )],
                    )],
                ),
                inline(
                    "Log in",
                    vec![step(
                        "Store the token",
                        &[("", format!("cargo login --registry {id} <TOKEN>"))],
                    )],
                ),
                inline(
                    "Publish and use",
                    vec![step(
                        "Commands",
                        &[
                            ("", format!("cargo publish --registry {id}")),
                            ("", format!("cargo add {art}@{ver} --registry {id}")),
                        ],
                    )],
                ),
            ],
        ),
        PackageType::Rpm => (
            "RPM Client Setup",
            vec![
                inline(
                    "Add a .repo file",
                    vec![step(
                        "/etc/yum.repos.d/arca.repo",
                        &[(
                            "",
                            format!(
                                "[{id}]\nname={id}\nbaseurl={root}\nenabled=1\ngpgcheck=0\nrepo_gpgcheck=1\ngpgkey={root}/public.key\nusername={user}\npassword=<TOKEN>"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Upload",
                    vec![step(
                        "Upload with curl",
                        &[(
                            "",
                            format!("curl -u {user}:<TOKEN> -T <FILE>.rpm {root}/<FILE>.rpm"),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step("Install", &[("", format!("dnf install {art}-{ver}"))])],
                ),
            ],
        ),
        PackageType::Debian => (
            "Debian Client Setup",
            vec![
                inline(
                    "Add the repository",
                    vec![step(
                        "Key and sources.list",
                        &[
                            (
                                "",
                                format!(
                                    "curl -u {user}:<TOKEN> -o /etc/apt/keyrings/{id}.asc {root}/public.key"
                                ),
                            ),
                            (
                                "",
                                format!(
                                    "echo 'deb [signed-by=/etc/apt/keyrings/{id}.asc] {root} stable main' > /etc/apt/sources.list.d/{id}.list"
                                ),
                            ),
                            (
                                "",
                                // apt applies auth.conf entries to http only with the scheme.
                                format!(
                                    "printf 'machine {}\\nlogin {user}\\npassword <TOKEN>\\n' > /etc/apt/auth.conf.d/{id}.conf",
                                    base
                                ),
                            ),
                        ],
                    )],
                ),
                inline(
                    "Upload",
                    vec![step(
                        "Upload with curl",
                        &[(
                            "",
                            format!(
                                "curl -u {user}:<TOKEN> -T <FILE>.deb '{root}/<FILE>.deb?distribution=stable&component=main'"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Install",
                        &[("", format!("apt-get update && apt-get install {art}"))],
                    )],
                ),
            ],
        ),
        PackageType::Composer => (
            "Composer Client Setup",
            vec![
                inline(
                    "Configure composer",
                    vec![step(
                        "Repository and credentials",
                        &[
                            (
                                "",
                                format!("composer config repositories.{id} composer {root}"),
                            ),
                            (
                                "",
                                // Composer refuses plain-http repositories unless told otherwise.
                                if root.starts_with("http://") {
                                    "composer config secure-http false".to_string()
                                } else {
                                    "composer config secure-http true".to_string()
                                },
                            ),
                            (
                                "",
                                // Composer keys credentials by host *and* port.
                                format!("composer config http-basic.{host} {user} <TOKEN>"),
                            ),
                        ],
                    )],
                ),
                inline(
                    "Upload",
                    vec![step(
                        "Upload a zip",
                        &[(
                            "",
                            format!("curl -u {user}:<TOKEN> -T <FILE>.zip {root}/<FILE>.zip"),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Require",
                        &[("", format!("composer require {art}:{ver}"))],
                    )],
                ),
            ],
        ),
        PackageType::Cran => (
            "CRAN Client Setup",
            vec![
                inline(
                    "Configure R",
                    vec![step(
                        "Set the repository",
                        // R sends credentials from the URL (up front, no challenge).
                        &[(
                            "",
                            format!(
                                "options(repos = c({id} = \"{}\"))",
                                root.replacen("://", &format!("://{user}:<TOKEN>@"), 1)
                            ),
                        )],
                    )],
                ),
                inline(
                    "Upload",
                    vec![step(
                        "Upload a source package",
                        &[(
                            "",
                            format!(
                                "curl -u {user}:<TOKEN> -T <FILE>.tar.gz {root}/src/contrib/<FILE>.tar.gz"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Install",
                        &[("", format!("install.packages(\"{art}\")"))],
                    )],
                ),
            ],
        ),
        PackageType::Opm => (
            "OPM Client Setup",
            vec![
                inline(
                    "Configure opm",
                    vec![step(
                        "opm.cfg server entry",
                        &[(
                            "",
                            format!(
                                "{{\"СервераПакетов\": [{{\"Имя\": \"{id}\", \"Сервер\": \"{base}\", \"ПутьНаСервере\": \"/pkg/{account}/{id}/opm/\", \"РесурсПубликацииПакетов\": \"/pkg/{account}/{id}/opm/push\", \"Приоритет\": 1}}]}}"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step("Install", &[("", format!("opm install {art}"))])],
                ),
            ],
        ),
    };
    if read_only {
        // Anonymous callers and read-only registries get no push/upload/publish steps.
        sections.retain(|s| {
            let h = s["header"].as_str().unwrap_or("");
            !(h.starts_with("Upload")
                || h.starts_with("Push")
                || h.starts_with("Publish")
                || h.starts_with("Deploy"))
        });
    }
    if !anonymous {
        sections.insert(
            0,
            json!({"type": "INLINE", "header": "Generate Identity Token",
                   "secHeader": "An identity token will serve as the password for uploading and downloading artifacts.",
                   "steps": [{"type": "GenerateToken", "header": "Generate an identity token"}]}),
        );
    }
    for (i, s) in sections.iter_mut().enumerate() {
        if let Some(h) = s["header"].as_str() {
            s["header"] = json!(format!("{}. {h}", i + 1));
        }
    }
    json!({
        "mainHeader": title,
        "secHeader": format!("Follow these instructions to install/use {} artifacts or compatible packages.", reg.package_type.harness()),
        "sections": sections,
    })
}

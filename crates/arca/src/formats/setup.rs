//! Client setup: what each format tells its users to paste, as sections of steps in the shape the
//! Harness UI expects (sections of type INLINE, steps of type Static with commands). Each format
//! writes its own steps and pull command ([`super::Format::client_setup`],
//! [`super::Format::pull_command`]) from a [`SetupContext`]; the management view adds the token
//! step, numbering and the read-only filter (`api/client_setup.rs`).

use serde_json::{Value, json};

use crate::model::Registry;

/// Everything a format's instructions are made of, with placeholders where the caller's values
/// are unknown (`<TOKEN>` always: secrets are never printed).
pub struct SetupContext {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub base: String,
    /// The base URL without its scheme (`host[:port][/path]`).
    pub host: String,
    /// `http` or `https`.
    pub scheme: String,
    pub account: String,
    /// What precedes the registry in OCI image references, lower case: the account, or the scope
    /// path of a name unique in its owner only ([`Registry::oci_prefix`]).
    pub oci_account: String,
    /// `<oci_account>/<oci_id>` as the account (or scope) and name are stored, case kept.
    pub oci_source: String,
    /// The registry's identifier.
    pub id: String,
    /// The registry name as OCI image references spell it (lower case).
    pub oci_id: String,
    /// What follows `/pkg/` in the registry's native URLs ([`Registry::native_prefix`]).
    pub prefix: String,
    /// The registry's native root: `<base>/pkg/<prefix>/<format>`.
    pub root: String,
    /// The caller's user name, or `<USERNAME>`.
    pub user: String,
    /// The artifact asked about, or `<ARTIFACT_NAME>`.
    pub art: String,
    /// The version asked about, or `<VERSION>`.
    pub ver: String,
}

impl SetupContext {
    pub fn new(
        base_url: &str,
        reg: &Registry,
        user: Option<&str>,
        artifact: Option<&str>,
        version: Option<&str>,
    ) -> SetupContext {
        let base = base_url.to_string();
        let host = base.split("://").nth(1).unwrap_or(&base).to_string();
        let scheme = base.split("://").next().unwrap_or("http").to_string();
        let root = format!(
            "{base}/pkg/{}/{}",
            reg.native_prefix(),
            reg.package_type.path_segment()
        );
        SetupContext {
            base,
            host,
            scheme,
            account: reg.account.clone(),
            oci_account: reg
                .oci_prefix()
                .rsplit_once('/')
                .map(|(a, _)| a.to_string())
                .unwrap_or_else(|| reg.oci_account()),
            oci_source: if reg.named_per_owner() {
                format!("{}/{}", reg.scope_path, reg.identifier)
            } else {
                format!("{}/{}", reg.account, reg.identifier)
            },
            id: reg.identifier.clone(),
            oci_id: reg.oci_name(),
            root,
            prefix: reg.native_prefix(),
            user: user.unwrap_or("<USERNAME>").to_string(),
            art: artifact.unwrap_or("<ARTIFACT_NAME>").to_string(),
            ver: version.unwrap_or("<VERSION>").to_string(),
        }
    }
}

impl SetupContext {
    /// Whether the base URL is plain HTTP: clients that insist on TLS then need their insecure
    /// flags, which the instructions give only then.
    pub fn plain_http(&self) -> bool {
        self.scheme == "http"
    }

    /// `host[:port]` of the base URL (no path).
    pub fn authority(&self) -> &str {
        self.host.split('/').next().unwrap_or(&self.host)
    }

    /// The registry's native root without its scheme.
    pub fn root_without_scheme(&self) -> &str {
        self.root.split("://").nth(1).unwrap_or(&self.root)
    }
}

/// A shell command that writes `content` to `path` (creating its directory), for instructions
/// that would otherwise say "add this to a file": pasted into a shell, it works as given.
pub fn write_file(path: &str, content: &str) -> String {
    let dir = path.rsplit_once('/').map_or(".", |(d, _)| d);
    format!("mkdir -p {dir} && cat > {path} <<'EOF'\n{content}\nEOF")
}

/// Like [`write_file`] for a file holding a secret: only its owner may read it, from before the
/// secret is written.
pub fn write_private_file(path: &str, content: &str) -> String {
    let dir = path.rsplit_once('/').map_or(".", |(d, _)| d);
    format!(
        "mkdir -p {dir} && touch {path} && chmod 600 {path} && cat > {path} <<'EOF'\n{content}\nEOF"
    )
}

/// Like [`write_file`], but appends (for configuration files that may hold other entries).
pub fn append_file(path: &str, content: &str) -> String {
    let dir = path.rsplit_once('/').map_or(".", |(d, _)| d);
    format!("mkdir -p {dir} && cat >> {path} <<'EOF'\n{content}\nEOF")
}

/// A format's setup instructions: a title and its sections. Sections whose header starts with
/// Upload, Push, Publish or Deploy are dropped for callers who cannot write.
pub struct Setup {
    pub title: &'static str,
    pub sections: Vec<Value>,
}

/// A step of commands (each `(label, command)`).
pub fn step(header: &str, commands: &[(&str, String)]) -> Value {
    json!({"type": "Static", "header": header,
           "commands": commands.iter().map(|(l, v)| json!({"label": l, "value": v})).collect::<Vec<_>>()})
}

/// What an OCI setup says when the account id has upper case: image references spell it in lower
/// case (the distribution spec allows no upper case in repository names), so the commands do.
pub fn oci_case_note(c: &SetupContext) -> Option<String> {
    let oci = format!("{}/{}", c.oci_account, c.oci_id);
    (oci != c.oci_source).then(|| {
        format!(
            "Image references use the account and registry in lower case ('{oci}' for '{}'): OCI \
             repository names cannot contain upper-case letters.",
            c.oci_source
        )
    })
}

/// A section of steps shown one after the other.
pub fn inline(header: &str, steps: Vec<Value>) -> Value {
    json!({"type": "INLINE", "header": header, "steps": steps})
}

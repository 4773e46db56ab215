//! The one domain model both management dialects translate onto.
//!
//! Registry kinds, and how each dialect names them (lossless both ways: every internal kind has one
//! spelling per dialect, and `kind` is echoed in Harness responses so nothing is guessed back):
//!
//! | internal | Harness (`config.type`)                       | GitFlic (`repositoryType`) |
//! |----------|-----------------------------------------------|----------------------------|
//! | Hosted   | VIRTUAL (stores artifacts; `upstreamProxies`)  | LOCAL                      |
//! | Proxy    | UPSTREAM                                       | PROXY                      |
//! | Cache    | not shown (content listed on the UPSTREAM)     | LOCAL_CACHE                |
//! | Group    | VIRTUAL (`upstreamProxies` = members, `kind: GROUP`) | VIRTUAL              |
//! | Trash    | not shown (`deleted=include\|only`, `deletedAt`) | TRASH_CAN                |

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Package types: the union of both seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum PackageType {
    Docker,
    Maven,
    Python,
    Generic,
    Helm,
    Nuget,
    Npm,
    Rpm,
    Cargo,
    Composer,
    Opm,
    Debian,
    Cran,
}

impl PackageType {
    pub const ALL: [PackageType; 13] = [
        PackageType::Docker,
        PackageType::Maven,
        PackageType::Python,
        PackageType::Generic,
        PackageType::Helm,
        PackageType::Nuget,
        PackageType::Npm,
        PackageType::Rpm,
        PackageType::Cargo,
        PackageType::Composer,
        PackageType::Opm,
        PackageType::Debian,
        PackageType::Cran,
    ];

    /// Harness spelling (and the stored form).
    pub fn harness(self) -> &'static str {
        match self {
            PackageType::Docker => "DOCKER",
            PackageType::Maven => "MAVEN",
            PackageType::Python => "PYTHON",
            PackageType::Generic => "GENERIC",
            PackageType::Helm => "HELM",
            PackageType::Nuget => "NUGET",
            PackageType::Npm => "NPM",
            PackageType::Rpm => "RPM",
            PackageType::Cargo => "CARGO",
            PackageType::Composer => "COMPOSER",
            PackageType::Opm => "OPM",
            PackageType::Debian => "DEBIAN",
            PackageType::Cran => "CRAN",
        }
    }

    /// GitFlic spelling.
    pub fn gitflic(self) -> &'static str {
        match self {
            PackageType::Docker => "container",
            PackageType::Maven => "maven",
            PackageType::Python => "pypi",
            PackageType::Generic => "generic",
            PackageType::Helm => "helm",
            PackageType::Nuget => "nuget",
            PackageType::Npm => "npm",
            PackageType::Rpm => "rpm",
            PackageType::Cargo => "cargo",
            PackageType::Composer => "composer",
            PackageType::Opm => "opm",
            PackageType::Debian => "debian",
            PackageType::Cran => "cran",
        }
    }

    /// The `<format>` segment of the native URL layout `<base>/pkg/<account>/<registry>/<format>/`.
    pub fn path_segment(self) -> &'static str {
        match self {
            PackageType::Docker => "docker",
            PackageType::Python => "python",
            other => other.gitflic(),
        }
    }

    pub fn from_harness(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.harness() == s)
    }

    pub fn from_gitflic(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.gitflic() == s)
    }

    /// Types for which a pull-through proxy protocol exists: every one. GitFlic allows PROXY
    /// only for maven, npm, pypi, nuget and container, and Harness's enum lacks COMPOSER, OPM,
    /// DEBIAN and CRAN; the others are Arca extensions (listed in the README).
    pub fn supports_proxy(self) -> bool {
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RegistryKind {
    /// Stores uploaded artifacts; may list proxies to fall back on, in order.
    Hosted,
    /// Fetches from one remote URL; content is kept in its cache registry when caching is on.
    Proxy,
    /// The storage side of a caching proxy. Never created directly.
    Cache,
    /// Resolves through its members in order; uploads go to its deployment member.
    Group,
    /// One per scope: where deleted versions go (`store::trash`).
    Trash,
}

impl RegistryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryKind::Hosted => "HOSTED",
            RegistryKind::Proxy => "PROXY",
            RegistryKind::Cache => "CACHE",
            RegistryKind::Group => "GROUP",
            RegistryKind::Trash => "TRASH",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Hosted,
            Self::Proxy,
            Self::Cache,
            Self::Group,
            Self::Trash,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
    pub fn gitflic(self) -> &'static str {
        match self {
            RegistryKind::Hosted => "LOCAL",
            RegistryKind::Proxy => "PROXY",
            RegistryKind::Cache => "LOCAL_CACHE",
            RegistryKind::Group => "VIRTUAL",
            RegistryKind::Trash => "TRASH_CAN",
        }
    }
    pub fn harness(self) -> &'static str {
        match self {
            RegistryKind::Proxy => "UPSTREAM",
            _ => "VIRTUAL",
        }
    }
}

/// What happens when a file that already exists is uploaded again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Reupload {
    None,
    Override,
}

impl Reupload {
    pub fn as_str(self) -> &'static str {
        match self {
            Reupload::None => "NONE",
            Reupload::Override => "OVERRIDE",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "NONE" => Some(Reupload::None),
            "OVERRIDE" => Some(Reupload::Override),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Deployer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reader" => Some(Role::Reader),
            "deployer" => Some(Role::Deployer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CleanupPolicy {
    pub name: String,
    #[serde(rename = "expireDays")]
    pub expire_days: i64,
    #[serde(rename = "packagePrefix", default)]
    pub package_prefix: Vec<String>,
    #[serde(rename = "versionPrefix", default)]
    pub version_prefix: Vec<String>,
}

/// The upstream `source` names of the Harness dialect, spelled as its enum spells them; each but
/// `Custom` may take its default URL from the configuration (`upstream_sources`).
pub const UPSTREAM_SOURCES: [&str; 10] = [
    "Dockerhub",
    "Custom",
    "AwsEcr",
    "MavenCentral",
    "PyPi",
    "NpmJs",
    "NugetOrg",
    "Crates",
    "GoProxy",
    "HuggingFace",
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxySettings {
    pub url: String,
    pub username: Option<String>,
    /// Stored, never returned by any API.
    pub secret: Option<String>,
    pub caching: bool,
    pub offline: bool,
    pub expire_hours: i64,
    pub metadata_interval_secs: i64,
    /// Harness `source` (Custom, Dockerhub, ...). Kept only to echo it back.
    pub source: Option<String>,
    /// Harness auth object (secret *references*, never values). Kept only to echo it back.
    pub harness_auth: Option<serde_json::Value>,
    /// OCI proxies: whether single-segment image names are asked for under `library/` upstream
    /// (Docker Hub's rule); `None` follows the source (on for `Dockerhub`).
    pub library_prefix: Option<bool>,
    /// Seconds an upstream 404/410 is believed (Harness `negativeCacheTTL`); `None`: the
    /// server's `proxy_negative_ttl_secs`.
    pub negative_ttl_secs: Option<i64>,
    /// Debian/RPM: the upstream's armored OpenPGP public key. Signed release files are verified
    /// with it before they are served, and it is the proxy's `public.key`.
    pub upstream_key: Option<String>,
    /// Debian: the distributions this proxy serves through a group, passed through unmerged with
    /// the upstream's signatures (empty: any distribution no hosted member holds). A group holds
    /// at most one proxy member per distribution.
    pub distributions: Vec<String>,
}

impl ProxySettings {
    /// Whether `library/` is put before single-segment image names upstream.
    pub fn uses_library_prefix(&self) -> bool {
        self.library_prefix
            .unwrap_or(self.source.as_deref() == Some("Dockerhub"))
    }
}

/// A scope: account → org → project.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub id: String,
    pub parent_id: Option<String>,
    pub path: String,
    pub depth: i64,
}

impl Scope {
    pub fn account(&self) -> &str {
        self.path.split('/').next().unwrap_or(&self.path)
    }
}

#[derive(Debug, Clone)]
pub struct Registry {
    pub id: String,
    pub account: String,
    /// Where the name is unique: the account (Harness's rule, and every registry made before
    /// GitFlic names were per owner), or the scope path (a GitFlic owner's name). A registry named
    /// per account keeps the native root `/pkg/<account>/<name>/`; one named per owner has
    /// `/pkg/<scope path>/-/<name>/` (and the shorthand while its name is unique in the account).
    pub namespace: String,
    pub scope_id: String,
    pub scope_path: String,
    pub identifier: String,
    pub package_type: PackageType,
    pub kind: RegistryKind,
    pub description: Option<String>,
    pub labels: Vec<String>,
    pub allowed_patterns: Vec<String>,
    pub blocked_patterns: Vec<String>,
    pub cleanup_policies: Vec<CleanupPolicy>,
    pub scanners: Vec<serde_json::Value>,
    pub anonymous: bool,
    pub delete_allowed: bool,
    pub reupload: Reupload,
    pub proxy: Option<ProxySettings>,
    /// For a cache: the proxy it serves. For a proxy: its cache, if any (looked up).
    pub cache_of: Option<String>,
    pub allow_remote_proxying: bool,
    /// The member's own consent to be read anonymously through a public group while it is
    /// private itself (`allowPublicGroups` in both dialects). Without it a public registry
    /// cannot include this one.
    pub allow_public_groups: bool,
    /// A group's dependency-confusion allow-list (`dependencyConfusionAllowList`): name patterns
    /// (`@acme/*`, a Maven groupId prefix, a glob) whose proxy versions stay visible although a
    /// hosted member has the name. See `formats::members`.
    pub dc_allow_list: Vec<String>,
    pub deployment_registry_id: Option<String>,
    /// Ordered member ids: upstream proxies of a hosted registry, or members of a group.
    pub members: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Registry {
    /// A registry not stored yet, with every setting at its default: private, versions not
    /// deletable, re-upload OVERRIDE, no members, proxy or patterns. The account is the first
    /// segment of `scope_path`; `scope_id` stays empty until the scope is known (`service::create`
    /// ensures it), so the dialects can build the request's registry before that.
    pub fn new(
        scope_path: &str,
        identifier: impl Into<String>,
        package_type: PackageType,
        kind: RegistryKind,
    ) -> Registry {
        let now = now_ms();
        let account = scope_path.split('/').next().unwrap_or(scope_path);
        Registry {
            id: new_id(),
            account: account.to_string(),
            namespace: account.to_string(),
            scope_id: String::new(),
            scope_path: scope_path.to_string(),
            identifier: identifier.into(),
            package_type,
            kind,
            description: None,
            labels: vec![],
            allowed_patterns: vec![],
            blocked_patterns: vec![],
            cleanup_policies: vec![],
            scanners: vec![],
            anonymous: false,
            delete_allowed: false,
            reupload: Reupload::Override,
            proxy: None,
            cache_of: None,
            allow_remote_proxying: false,
            allow_public_groups: false,
            dc_allow_list: vec![],
            deployment_registry_id: None,
            members: vec![],
            created_at: now,
            updated_at: now,
        }
    }

    /// The account as OCI repository names spell it: lower case, as the distribution spec
    /// requires (Harness lower-cases the account in its OCI URLs the same way).
    pub fn oci_account(&self) -> String {
        self.account.to_ascii_lowercase()
    }

    /// The identifier as OCI repository names spell it (lower case; GitFlic names may have upper).
    pub fn oci_name(&self) -> String {
        self.identifier.to_ascii_lowercase()
    }

    /// Whether the name is unique in the scope only (a GitFlic owner's), not in the account.
    pub fn named_per_owner(&self) -> bool {
        !self.namespace.eq_ignore_ascii_case(&self.account)
    }

    /// What follows `/pkg/` in the registry's native URLs: `<account>/<name>`, or
    /// `<scope path>/-/<name>` for a name unique in its owner only.
    pub fn native_prefix(&self) -> String {
        if self.named_per_owner() {
            format!("{}/-/{}", self.scope_path, self.identifier)
        } else {
            format!("{}/{}", self.account, self.identifier)
        }
    }

    /// What precedes the image in OCI references, lower case: `<account>/<name>`, or
    /// `<scope path>/<name>` for a name unique in its owner only.
    pub fn oci_prefix(&self) -> String {
        if self.named_per_owner() {
            format!("{}/{}", self.scope_path, self.identifier).to_ascii_lowercase()
        } else {
            format!("{}/{}", self.oci_account(), self.oci_name())
        }
    }

    /// `<scope path>/<identifier>`: the Harness registry path.
    pub fn path(&self) -> String {
        format!("{}/{}", self.scope_path, self.identifier)
    }

    /// Checks a package coordinate (`name:version`, or the file path for generic) against the
    /// registry's blocked and allowed patterns. Blocked wins; an empty allow list allows everything.
    pub fn check_patterns(&self, subject: &str) -> Result<(), ApiError> {
        for p in &self.blocked_patterns {
            if regex::Regex::new(p)
                .map(|r| r.is_match(subject))
                .unwrap_or(false)
            {
                return Err(ApiError::forbidden(format!(
                    "'{subject}' is blocked by pattern '{p}' of registry '{}'",
                    self.identifier
                )));
            }
        }
        if self.allowed_patterns.is_empty() {
            return Ok(());
        }
        if self.allowed_patterns.iter().any(|p| {
            regex::Regex::new(p)
                .map(|r| r.is_match(subject))
                .unwrap_or(false)
        }) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "'{subject}' matches none of the allowed patterns of registry '{}'",
                self.identifier
            )))
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Epoch milliseconds as RFC 3339 in UTC with exactly three fraction digits, e.g.
/// `2026-11-29T17:42:00.840Z` (npm `time`, PEP 700 `upload-time`). The width is fixed because
/// `datetime.fromisoformat` before Python 3.11 (pip >= 25 parses `upload-time` with it) accepts only
/// 3 or 6 digits, and a trimmed fraction (`.84`) made whether a file installs depend on its millisecond.
pub fn rfc3339(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

/// Epoch milliseconds as an HTTP date (`Last-Modified`), e.g. `Mon, 23 Nov 2026 11:10:44 GMT`.
pub fn http_date(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .map(|s| s.replace("+0000", "GMT"))
        .unwrap_or_default()
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An id as a client spelled it, in the form ids are stored in: a UUID in any case (UUIDs compare
/// case-insensitively, as Java's `UUID.fromString` reads them) becomes lower-case hyphenated;
/// anything else is returned as it is (and finds nothing).
pub fn canonical_id(s: &str) -> String {
    match uuid::Uuid::try_parse(s) {
        Ok(u) if s.len() == 36 => u.to_string(),
        _ => s.to_string(),
    }
}

/// Registry (and scope segment) identifier syntax, shared by both dialects: lowercase so that every
/// registry can also be an OCI repository path component.
pub fn validate_identifier(field: &str, s: &str) -> Result<(), ApiError> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$").expect("static regex")
    });
    if s.is_empty() || s.len() > 255 || !RE.is_match(s) {
        return Err(ApiError::bad(
            field,
            format!(
                "invalid {field} '{s}': 1~255 characters of lowercase letters, digits and single '.', '_' or '-' \
                 separators; must start and end with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Refuses characters that make a name display as something it is not: controls (C0, C1),
/// format characters (general category Cf: bidi overrides and isolates, zero-width spaces and
/// joiners, the byte-order mark, the soft hyphen, ...) and the line and paragraph separators.
/// `U+202E` turns `exe.txt` into what looks like `txt.exe`, and invisible characters make two
/// different names look alike in listings, so no package, version, file name or label may hold
/// one. Letters, digits and symbols of any script stay allowed.
pub fn check_visible(field: &str, s: &str) -> Result<(), ApiError> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let hidden = s.chars().find(|c| {
        matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
    });
    match hidden {
        Some(c) => Err(ApiError::bad(
            field,
            format!(
                "{field} contains the invisible or control character U+{:04X}, which is not allowed in names",
                c as u32
            ),
        )),
        None => Ok(()),
    }
}

/// Most labels a registry or an artifact may carry.
pub const MAX_LABELS: usize = 64;
/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 128;

/// Labels are shown with every registry and artifact and stored in its row: bounded in count and
/// length (like the description), and held to the rules of names.
pub fn check_labels(field: &str, labels: &[String]) -> Result<(), ApiError> {
    if labels.len() > MAX_LABELS {
        return Err(ApiError::bad(
            field,
            format!(
                "at most {MAX_LABELS} labels are allowed, got {}",
                labels.len()
            ),
        ));
    }
    for l in labels {
        if l.chars().count() > MAX_LABEL_CHARS {
            return Err(ApiError::bad(
                field,
                format!("a label may have at most {MAX_LABEL_CHARS} characters"),
            ));
        }
        check_visible(field, l)?;
    }
    Ok(())
}

/// GitFlic repository name syntax: `[A-Za-z0-9._-]`, upper case included, at most 255 characters,
/// not `.` or `..` (names are path segments). Names compare case-insensitively: `MyRepo` and
/// `myrepo` are one name. Harness identifiers ([`validate_identifier`]) are a subset.
pub fn validate_gitflic_name(field: &str, s: &str) -> Result<(), ApiError> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s != "."
        && s != ".."
        && s != "-"
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        return Ok(());
    }
    Err(ApiError::bad(
        field,
        format!(
            "invalid {field} '{s}': 1~255 characters of letters, digits, '.', '_' and '-' (not '.', '..' or '-')"
        ),
    ))
}

/// Account, org and project id syntax (one segment of a scope path). Harness's own rule,
/// `^[a-zA-Z_][0-9a-zA-Z_$-]{0,127}$` (real account ids are mixed-case, e.g.
/// `px7xd_BFRCi-pfWPYXVjvw`), or the registry identifier rule, which scope names created before
/// that rule (and GitFlic aliases with dots, `my.project`) follow. Scope ids keep the spelling they
/// were created with and are compared case-insensitively (`scope_by_path`).
pub fn validate_scope_id(field: &str, s: &str) -> Result<(), ApiError> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[a-zA-Z_][0-9a-zA-Z_$-]{0,127}$").expect("static regex")
    });
    if RE.is_match(s) || validate_identifier(field, s).is_ok() {
        return Ok(());
    }
    Err(ApiError::bad(
        field,
        format!(
            "invalid {field} '{s}': an account, org or project id is a letter or '_' followed by up to 127 \
             letters, digits, '_', '$' or '-'"
        ),
    ))
}

/// Human-readable size as Harness prints it ("1.20 GB").
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_may_not_hide_characters() {
        for ok in ["tool", "résumé", "日本語", "a b", "x+y~z", "😀"] {
            assert!(super::check_visible("name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "a\u{202e}b",
            "\u{2066}",
            "a\u{200b}",
            "\u{feff}x",
            "a\u{ad}",
            "a\tb",
            "\u{85}",
            "\u{2029}",
            "\u{e0041}",
        ] {
            assert!(super::check_visible("name", bad).is_err(), "{bad:?}");
        }
    }
    #[tokio::test]
    async fn patterns_blocked_wins_and_empty_allow_list_allows() {
        let t = crate::testing::state().await;
        let mut r = crate::testing::registry(
            &t.state,
            "acme",
            "r",
            super::PackageType::Generic,
            super::RegistryKind::Hosted,
            &[],
        )
        .await;
        assert!(r.check_patterns("anything:1.0").is_ok());
        r.allowed_patterns = vec!["^tool:".into(), "^lib-".into()];
        assert!(r.check_patterns("tool:1.0").is_ok());
        assert!(r.check_patterns("lib-x:2").is_ok());
        assert!(matches!(
            r.check_patterns("other:1.0"),
            Err(crate::error::ApiError::Forbidden(_))
        ));
        r.blocked_patterns = vec![":.*-SNAPSHOT$".into()];
        assert!(matches!(
            r.check_patterns("tool:1.0-SNAPSHOT"),
            Err(crate::error::ApiError::Forbidden(_))
        ));
        // Patterns are searched, not anchored, unless they say so.
        r.allowed_patterns = vec!["ool".into()];
        assert!(r.check_patterns("tool:1").is_ok());
    }

    #[test]
    fn rfc3339_always_has_three_fraction_digits() {
        // 2026-11-29T17:42:00.840Z: a trimmed `.84` broke pip >= 25 on Python <= 3.10.
        assert_eq!(
            super::rfc3339(1_795_974_120_840),
            "2026-11-29T17:42:00.840Z"
        );
        assert_eq!(
            super::rfc3339(1_795_974_120_000),
            "2026-11-29T17:42:00.000Z"
        );
        assert_eq!(
            super::rfc3339(1_795_974_120_007),
            "2026-11-29T17:42:00.007Z"
        );
    }
}

//! Configuration: flags win over environment, environment over the TOML file, the file over the
//! built-in defaults. clap resolves flag-vs-environment; the file fills whatever is still unset.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

#[derive(Debug, Clone, Args, Default)]
pub struct ConfigArgs {
    /// TOML configuration file (keys: the snake_case names of these settings, e.g. listen, data_dir, max_upload_bytes, trusted_proxies).
    #[arg(long, env = "ARCA_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ARCA_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// Data directory: SQLite database, blobs, admin token [default: ./arca-data].
    #[arg(long, env = "ARCA_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Metadata store URL: sqlite://... or postgres://... [default: sqlite://<data dir>/arca.db].
    #[arg(long, env = "ARCA_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Public base URL used in generated links [default: http://<listen address>].
    #[arg(long, env = "ARCA_BASE_URL", global = true)]
    pub base_url: Option<String>,
    /// Account that the GitFlic dialect addresses [default: default].
    #[arg(long, env = "ARCA_DEFAULT_ACCOUNT", global = true)]
    pub default_account: Option<String>,
    /// Largest accepted upload of one file, in bytes [default: 10 GiB].
    #[arg(long, env = "ARCA_MAX_UPLOAD_BYTES", global = true)]
    pub max_upload_bytes: Option<u64>,
    /// Largest upload body that is parsed in memory (npm publish document without its tarball,
    /// Cargo publish, Helm chart), in bytes [default: 256 MiB].
    #[arg(long, env = "ARCA_MAX_PARSED_BODY_BYTES", global = true)]
    pub max_parsed_body_bytes: Option<u64>,
    /// Largest body of a management API request (Harness, GitFlic), in bytes [default: 1 MiB].
    #[arg(long, env = "ARCA_MAX_API_BODY_BYTES", global = true)]
    pub max_api_body_bytes: Option<u64>,
    /// Proxies whose `X-Forwarded-For` names the client (comma-separated IP addresses)
    /// [default: none: the client is the socket's peer].
    #[arg(
        long,
        env = "ARCA_TRUSTED_PROXIES",
        global = true,
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<std::net::IpAddr>>,
    /// Failed authentications of one client address (or user) before it backs off [default: 5].
    #[arg(long, env = "ARCA_AUTH_BACKOFF_AFTER", global = true)]
    pub auth_backoff_after: Option<u32>,
    /// Longest back-off after failed authentications, in seconds [default: 300].
    #[arg(long, env = "ARCA_AUTH_BACKOFF_MAX_SECS", global = true)]
    pub auth_backoff_max_secs: Option<u64>,
    /// Connections served at once; more are answered 503 and closed [default: 10000].
    #[arg(long, env = "ARCA_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Seconds a request's head may take to arrive, and a kept-alive connection may wait for
    /// the next one [default: 60].
    #[arg(long, env = "ARCA_HEADER_READ_TIMEOUT_SECS", global = true)]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds without a byte moving on a connection the server waits on (a stalled upload or
    /// download) before it is closed [default: 120].
    #[arg(long, env = "ARCA_BODY_IDLE_TIMEOUT_SECS", global = true)]
    pub body_idle_timeout_secs: Option<u64>,
    /// Default upstream URLs of Harness UPSTREAM `source`s, as `<Source>=<url>` (repeatable or
    /// comma-separated; also one `ARCA_UPSTREAM_<SOURCE>` variable per source, e.g.
    /// ARCA_UPSTREAM_PYPI) [default: none].
    #[arg(
        long = "upstream-sources",
        env = "ARCA_UPSTREAM_SOURCES",
        global = true,
        value_delimiter = ',',
        value_parser = parse_source
    )]
    pub upstream_sources: Vec<(String, String)>,
    /// Seconds a proxy waits to connect to its upstream [default: 5].
    #[arg(long, env = "ARCA_PROXY_CONNECT_TIMEOUT_SECS", global = true)]
    pub proxy_connect_timeout_secs: Option<u64>,
    /// Seconds a proxy believes an upstream 404/410 before asking again [default: 60].
    #[arg(long, env = "ARCA_PROXY_NEGATIVE_TTL_SECS", global = true)]
    pub proxy_negative_ttl_secs: Option<u64>,
    /// Free space the blob store's disk keeps: an upload is refused (507) before its body is
    /// read when less than its declared size plus this much is free, in bytes [default: 256 MiB].
    #[arg(long, env = "ARCA_MIN_FREE_BYTES", global = true)]
    pub min_free_bytes: Option<u64>,
    /// Seconds between the blob garbage collector's runs in each server; 0 never runs it
    /// [default: 3600].
    #[arg(long, env = "ARCA_GC_INTERVAL_SECS", global = true)]
    pub gc_interval_secs: Option<u64>,
    /// Blobs stored or referenced within this many seconds are left alone by the server's
    /// collector [default: 3600].
    #[arg(long, env = "ARCA_GC_GRACE_SECS", global = true)]
    pub gc_grace_secs: Option<u64>,
    /// Days a deleted version stays in the trash before the periodic task (and `arca gc`) purges
    /// it; its blobs are then collected like any other unreferenced ones [default: 30].
    #[arg(long, env = "ARCA_TRASH_RETENTION_DAYS", global = true)]
    pub trash_retention_days: Option<u64>,
    /// Where blobs live: a local directory, or `s3://bucket/prefix` on any S3-compatible store
    /// [default: <data dir>/blobs].
    #[arg(long, env = "ARCA_BLOB_STORE", global = true)]
    pub blob_store: Option<String>,
    /// S3 endpoint URL (Garage, MinIO, Ceph...) [default: the AWS endpoint of the region].
    #[arg(long, env = "ARCA_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,
    /// S3 region (Garage names its own, e.g. `garage`) [default: us-east-1].
    #[arg(long, env = "ARCA_S3_REGION", global = true)]
    pub s3_region: Option<String>,
    /// Path-style S3 addressing (`<endpoint>/<bucket>/<key>`) [default: true with an endpoint].
    #[arg(long, env = "ARCA_S3_PATH_STYLE", global = true)]
    pub s3_path_style: Option<bool>,
    /// Allow a plain-HTTP S3 endpoint [default: false].
    #[arg(long, env = "ARCA_S3_ALLOW_HTTP", global = true)]
    pub s3_allow_http: Option<bool>,
    /// S3 access key id [default: AWS_ACCESS_KEY_ID].
    #[arg(long, env = "ARCA_S3_ACCESS_KEY_ID", global = true)]
    pub s3_access_key_id: Option<String>,
    /// Answer full blob and file downloads with a redirect to a presigned S3 URL (valid 5 minutes)
    /// instead of streaming them through the server; needs an endpoint clients can reach
    /// [default: false].
    #[arg(long, env = "ARCA_S3_PRESIGNED_REDIRECTS", global = true)]
    pub s3_presigned_redirects: Option<bool>,
    /// S3 secret access key [default: AWS_SECRET_ACCESS_KEY].
    #[arg(
        long,
        env = "ARCA_S3_SECRET_ACCESS_KEY",
        global = true,
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    base_url: Option<String>,
    default_account: Option<String>,
    max_upload_bytes: Option<u64>,
    max_parsed_body_bytes: Option<u64>,
    max_api_body_bytes: Option<u64>,
    trusted_proxies: Option<Vec<std::net::IpAddr>>,
    auth_backoff_after: Option<u32>,
    auth_backoff_max_secs: Option<u64>,
    max_connections: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    body_idle_timeout_secs: Option<u64>,
    proxy_connect_timeout_secs: Option<u64>,
    proxy_negative_ttl_secs: Option<u64>,
    upstream_sources: Option<std::collections::BTreeMap<String, String>>,
    min_free_bytes: Option<u64>,
    gc_interval_secs: Option<u64>,
    gc_grace_secs: Option<u64>,
    trash_retention_days: Option<u64>,
    blob_store: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_path_style: Option<bool>,
    s3_allow_http: Option<bool>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    s3_presigned_redirects: Option<bool>,
}

/// Where blobs live.
#[derive(Clone, PartialEq, Eq)]
pub enum BlobStoreConfig {
    Local(PathBuf),
    S3(S3Config),
}

/// An S3-compatible bucket (see `crate::blob::s3`).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
    pub allow_http: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Redirect downloads to presigned URLs (see `crate::blob::BlobStore::download_url`).
    pub presigned_redirects: bool,
}

// The secret never reaches logs or panics through Debug.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("allow_http", &self.allow_http)
            .field("access_key_id", &self.access_key_id)
            .field("presigned_redirects", &self.presigned_redirects)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for BlobStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobStoreConfig::Local(p) => write!(f, "Local({})", p.display()),
            BlobStoreConfig::S3(s) => s.fmt(f),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub base_url: String,
    pub default_account: String,
    /// Cap of a body streamed to the blob store.
    pub max_upload_bytes: u64,
    /// Cap of a body held in memory to be parsed: separate from (and much smaller than) the
    /// streaming cap, so that no request can make the server allocate an upload's worth of RAM.
    pub max_parsed_body_bytes: u64,
    /// Cap of a management API request's body.
    pub max_api_body_bytes: u64,
    /// Proxies whose `X-Forwarded-For` is believed (see `crate::throttle`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Failed authentications before a client address or user backs off.
    pub auth_backoff_after: u32,
    /// Longest back-off, in seconds.
    pub auth_backoff_max_secs: u64,
    /// Connection limits (see `crate::listener`).
    pub max_connections: usize,
    pub header_read_timeout_secs: u64,
    pub body_idle_timeout_secs: u64,
    /// Proxy engine settings (see `crate::proxy`).
    pub proxy_connect_timeout_secs: u64,
    pub proxy_negative_ttl_secs: u64,
    /// Default URLs of Harness upstream sources, by source name (`PyPi`, `NpmJs`, ...).
    pub upstream_sources: std::collections::BTreeMap<String, String>,
    /// Space kept free on the blob store's disk (see `crate::formats::upload`).
    pub min_free_bytes: u64,
    /// The periodic garbage collector: interval (0: off) and grace, in seconds.
    pub gc_interval_secs: u64,
    pub gc_grace_secs: u64,
    /// Days deleted versions stay restorable in the trash (0: purged at the next run).
    pub trash_retention_days: u64,
    /// Where blobs live (local directory or S3 bucket).
    pub blob_store: BlobStoreConfig,
}

impl Config {
    pub fn load(args: &ConfigArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| ([127, 0, 0, 1], 8080).into());
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./arca-data"));
        let blob_store = blob_store(args, &file, &data_dir)?;
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| default_database_url(&data_dir));
        let base_url = args
            .base_url
            .clone()
            .or(file.base_url)
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        let default_account = args
            .default_account
            .clone()
            .or(file.default_account)
            .unwrap_or_else(|| "default".into());
        crate::model::validate_scope_id("default_account", &default_account)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let max_upload_bytes = args
            .max_upload_bytes
            .or(file.max_upload_bytes)
            .unwrap_or(10 << 30);
        let max_parsed_body_bytes = args
            .max_parsed_body_bytes
            .or(file.max_parsed_body_bytes)
            .unwrap_or(256 << 20);
        let max_api_body_bytes = args
            .max_api_body_bytes
            .or(file.max_api_body_bytes)
            .unwrap_or(1 << 20);
        let trusted_proxies = args
            .trusted_proxies
            .clone()
            .or(file.trusted_proxies)
            .unwrap_or_default();
        let auth_backoff_after = args
            .auth_backoff_after
            .or(file.auth_backoff_after)
            .unwrap_or(5);
        let auth_backoff_max_secs = args
            .auth_backoff_max_secs
            .or(file.auth_backoff_max_secs)
            .unwrap_or(300);
        let max_connections = args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(10_000)
            .max(1);
        let header_read_timeout_secs = args
            .header_read_timeout_secs
            .or(file.header_read_timeout_secs)
            .unwrap_or(60)
            .max(1);
        let body_idle_timeout_secs = args
            .body_idle_timeout_secs
            .or(file.body_idle_timeout_secs)
            .unwrap_or(120)
            .max(1);
        let proxy_connect_timeout_secs = args
            .proxy_connect_timeout_secs
            .or(file.proxy_connect_timeout_secs)
            .unwrap_or(5)
            .max(1);
        let proxy_negative_ttl_secs = args
            .proxy_negative_ttl_secs
            .or(file.proxy_negative_ttl_secs)
            .unwrap_or(60);
        let min_free_bytes = args
            .min_free_bytes
            .or(file.min_free_bytes)
            .unwrap_or(256 << 20);
        let upstream_sources = upstream_sources(args, file.upstream_sources)?;
        let gc_interval_secs = args
            .gc_interval_secs
            .or(file.gc_interval_secs)
            .unwrap_or(3600);
        let gc_grace_secs = args.gc_grace_secs.or(file.gc_grace_secs).unwrap_or(3600);
        let trash_retention_days = args
            .trash_retention_days
            .or(file.trash_retention_days)
            .unwrap_or(30);
        Ok(Config {
            listen,
            data_dir,
            database_url,
            base_url,
            default_account,
            max_upload_bytes,
            max_parsed_body_bytes,
            max_api_body_bytes,
            trusted_proxies,
            auth_backoff_after,
            auth_backoff_max_secs,
            max_connections,
            header_read_timeout_secs,
            body_idle_timeout_secs,
            proxy_connect_timeout_secs,
            proxy_negative_ttl_secs,
            upstream_sources,
            min_free_bytes,
            gc_interval_secs,
            gc_grace_secs,
            trash_retention_days,
            blob_store,
        })
    }

    /// The local blob directory; with an S3 store, the node-local scratch area where uploads are
    /// hashed before they are sent to the bucket.
    pub fn blob_dir(&self) -> PathBuf {
        match &self.blob_store {
            BlobStoreConfig::Local(dir) => dir.clone(),
            BlobStoreConfig::S3(_) => self.data_dir.join("blobs"),
        }
    }
}

/// `--blob-store` and the S3 settings: flags over environment over the file; credentials fall
/// back to the standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` variables.
fn blob_store(
    args: &ConfigArgs,
    file: &FileConfig,
    data_dir: &Path,
) -> anyhow::Result<BlobStoreConfig> {
    let spec = args.blob_store.clone().or(file.blob_store.clone());
    let Some(spec) = spec.filter(|s| !s.is_empty()) else {
        return Ok(BlobStoreConfig::Local(data_dir.join("blobs")));
    };
    let Some(rest) = spec.strip_prefix("s3://") else {
        return Ok(BlobStoreConfig::Local(PathBuf::from(spec)));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    anyhow::ensure!(
        !bucket.is_empty(),
        "blob_store: expected s3://bucket[/prefix], got '{spec}'"
    );
    let endpoint = args
        .s3_endpoint
        .clone()
        .or(file.s3_endpoint.clone())
        .filter(|s| !s.is_empty());
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Ok(BlobStoreConfig::S3(S3Config {
        bucket: bucket.to_string(),
        prefix: prefix.trim_matches('/').to_string(),
        path_style: args
            .s3_path_style
            .or(file.s3_path_style)
            .unwrap_or(endpoint.is_some()),
        allow_http: args.s3_allow_http.or(file.s3_allow_http).unwrap_or(false),
        presigned_redirects: args
            .s3_presigned_redirects
            .or(file.s3_presigned_redirects)
            .unwrap_or(false),
        region: args
            .s3_region
            .clone()
            .or(file.s3_region.clone())
            .unwrap_or_else(|| "us-east-1".into()),
        endpoint,
        access_key_id: args
            .s3_access_key_id
            .clone()
            .or(file.s3_access_key_id.clone())
            .or_else(|| env("AWS_ACCESS_KEY_ID")),
        secret_access_key: args
            .s3_secret_access_key
            .clone()
            .or(file.s3_secret_access_key.clone())
            .or_else(|| env("AWS_SECRET_ACCESS_KEY")),
    }))
}

/// `<Source>=<url>` of `--upstream-sources`.
fn parse_source(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected <Source>=<url>, got '{s}'"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// Upstream source defaults: flags over `ARCA_UPSTREAM_<SOURCE>` over the file's table. Source
/// names are the Harness enum's, matched case-insensitively and stored in its spelling.
fn upstream_sources(
    args: &ConfigArgs,
    file: Option<std::collections::BTreeMap<String, String>>,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let canonical = |name: &str, origin: &str| -> anyhow::Result<String> {
        crate::model::UPSTREAM_SOURCES
            .iter()
            .find(|s| s.eq_ignore_ascii_case(name) && **s != "Custom")
            .map(|s| s.to_string())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{origin}: unknown upstream source '{name}' (expected one of {})",
                    crate::model::UPSTREAM_SOURCES
                        .iter()
                        .filter(|s| **s != "Custom")
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    };
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in file.unwrap_or_default() {
        out.insert(canonical(&k, "[upstream_sources]")?, v);
    }
    for (k, v) in std::env::vars() {
        if let Some(name) = k.strip_prefix("ARCA_UPSTREAM_")
            && name != "SOURCES"
        {
            out.insert(canonical(name, &k)?, v);
        }
    }
    for (k, v) in &args.upstream_sources {
        out.insert(canonical(k, "--upstream-sources")?, v.clone());
    }
    Ok(out)
}

fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}/arca.db", data_dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: ConfigArgs) -> Config {
        Config::load(&args).unwrap()
    }

    #[test]
    fn blob_store_is_local_by_default_and_s3_from_a_url() {
        let c = load(ConfigArgs {
            data_dir: Some("/d".into()),
            ..Default::default()
        });
        assert_eq!(c.blob_store, BlobStoreConfig::Local("/d/blobs".into()));
        let c = load(ConfigArgs {
            data_dir: Some("/d".into()),
            blob_store: Some("s3://bucket/some/prefix/".into()),
            s3_endpoint: Some("http://127.0.0.1:3900".into()),
            s3_access_key_id: Some("id".into()),
            s3_secret_access_key: Some("secret".into()),
            ..Default::default()
        });
        let BlobStoreConfig::S3(s3) = &c.blob_store else {
            panic!("{:?}", c.blob_store)
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("bucket", "some/prefix")
        );
        // Path-style by default with an endpoint; the secret stays out of Debug output.
        assert!(s3.path_style && !s3.allow_http);
        assert!(!format!("{:?}", c.blob_store).contains("secret"));
        assert_eq!(c.blob_dir(), PathBuf::from("/d/blobs"));
        let c = load(ConfigArgs {
            blob_store: Some("s3://bucket".into()),
            s3_path_style: Some(false),
            ..Default::default()
        });
        let BlobStoreConfig::S3(s3) = &c.blob_store else {
            panic!()
        };
        assert_eq!(s3.prefix, "");
        assert!(!s3.path_style);
        assert!(
            Config::load(&ConfigArgs {
                blob_store: Some("s3:///x".into()),
                ..Default::default()
            })
            .is_err()
        );
    }
}

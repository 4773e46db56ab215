//! Test harness: starts a real `arca serve` process on a free 127.0.0.1 port with its own data
//! directory, on SQLite or on a fresh PostgreSQL database, and stops it when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Server {
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn random_hex(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(n);
    s
}

pub async fn postgres_database() -> String {
    let admin = std::env::var("ARCA_TEST_PG_URL").expect(
        "ARCA_TEST_PG_URL is not set: run the suite with scripts/test.sh, which starts a throwaway PostgreSQL",
    );
    let name = format!("arca_test_{}", random_hex(12));
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    let (prefix, _) = admin.rsplit_once('/').expect("database URL with a path");
    format!("{prefix}/{name}")
}

/// With `ARCA_TEST_BLOB_STORE=s3` (set by `scripts/test.sh` for its S3 run, next to the
/// `ARCA_TEST_S3_*` coordinates of the throwaway Garage node it started), the blob-store settings
/// that make a server with data directory `data` keep its blobs in that bucket, under a prefix of
/// its own (kept in `data`, so that a restart or a second server on the same data finds the same
/// blobs). Empty otherwise.
pub fn s3_env(data: &std::path::Path) -> Vec<(String, String)> {
    if std::env::var("ARCA_TEST_BLOB_STORE").as_deref() != Ok("s3") {
        return Vec::new();
    }
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    std::fs::create_dir_all(data).expect("data dir");
    let prefix_file = data.join("s3-prefix");
    let prefix = std::fs::read_to_string(&prefix_file).unwrap_or_else(|_| {
        let p = format!("t{}", random_hex(16));
        std::fs::write(&prefix_file, &p).expect("s3-prefix");
        p
    });
    vec![
        (
            "ARCA_BLOB_STORE".into(),
            format!("s3://{}/{prefix}", var("ARCA_TEST_S3_BUCKET")),
        ),
        ("ARCA_S3_ENDPOINT".into(), var("ARCA_TEST_S3_ENDPOINT")),
        ("ARCA_S3_REGION".into(), var("ARCA_TEST_S3_REGION")),
        ("ARCA_S3_ALLOW_HTTP".into(), "true".into()),
        ("ARCA_S3_ACCESS_KEY_ID".into(), var("ARCA_TEST_S3_KEY_ID")),
        (
            "ARCA_S3_SECRET_ACCESS_KEY".into(),
            var("ARCA_TEST_S3_SECRET"),
        ),
    ]
}

/// Whether this run keeps blobs in S3 (see [`s3_env`]).
pub fn on_s3() -> bool {
    std::env::var("ARCA_TEST_BLOB_STORE").as_deref() == Ok("s3")
}

/// Whether the server's blob store holds the blob `digest` (`sha256:<hex>` or `<hex>`).
pub async fn blob_stored(s: &Server, digest: &str) -> bool {
    let hexd = digest.trim_start_matches("sha256:");
    if !on_s3() {
        return s
            .data_dir()
            .join("blobs/sha256")
            .join(&hexd[..2])
            .join(hexd)
            .exists();
    }
    let (store, prefix) = s3_client(s);
    use object_store::ObjectStore;
    let key = object_store::path::Path::from(format!("{prefix}/sha256/{}/{hexd}", &hexd[..2]));
    match store.head(&key).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => panic!("S3 HEAD {key}: {e}"),
    }
}

/// A client of the bucket the server keeps its blobs in (S3 run), and its key prefix.
fn s3_client(s: &Server) -> (object_store::aws::AmazonS3, String) {
    let env: std::collections::HashMap<String, String> =
        s3_env(&s.data_dir()).into_iter().collect();
    let (bucket, prefix) = env["ARCA_BLOB_STORE"]
        .trim_start_matches("s3://")
        .split_once('/')
        .expect("s3://bucket/prefix");
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(&env["ARCA_S3_ENDPOINT"])
        .with_region(&env["ARCA_S3_REGION"])
        .with_allow_http(true)
        .with_access_key_id(&env["ARCA_S3_ACCESS_KEY_ID"])
        .with_secret_access_key(&env["ARCA_S3_SECRET_ACCESS_KEY"])
        .build()
        .expect("S3 client");
    (store, prefix.to_string())
}

/// How many committed blobs the server's blob store holds: files under `blobs/sha256` of its
/// data directory, or objects under `<prefix>/sha256/` in the bucket on the S3 run.
pub async fn stored_blobs(s: &Server) -> usize {
    if !on_s3() {
        let mut n = 0;
        let Ok(dirs) = std::fs::read_dir(s.data_dir().join("blobs/sha256")) else {
            return 0;
        };
        for d in dirs {
            n += std::fs::read_dir(d.expect("dir").path())
                .expect("dir")
                .count();
        }
        return n;
    }
    use futures::TryStreamExt;
    use object_store::ObjectStore;
    let (store, prefix) = s3_client(s);
    let listed: Vec<_> = store
        .list(Some(&object_store::path::Path::from(format!(
            "{prefix}/sha256"
        ))))
        .try_collect()
        .await
        .expect("list the bucket");
    listed.len()
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}/arca.db", dir.path().display()),
            Backend::Postgres => postgres_database().await,
        };
        Self::start_with(dir, database_url, &[]).await
    }

    pub async fn start_with(
        dir: tempfile::TempDir,
        database_url: String,
        env: &[(&str, &str)],
    ) -> Server {
        let port = free_port();
        // The admin token: the caller's ARCA_ADMIN_TOKEN when given (a restart on existing data), else fresh.
        let token = env
            .iter()
            .find(|(k, v)| *k == "ARCA_ADMIN_TOKEN" && !v.is_empty())
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| format!("arca_test_{}", random_hex(24)));
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_arca"));
        cmd.arg("serve")
            .env("ARCA_LISTEN", format!("127.0.0.1:{port}"))
            .env("ARCA_DATA_DIR", dir.path().join("data"))
            .env("ARCA_DATABASE_URL", &database_url)
            .env("ARCA_ADMIN_TOKEN", &token)
            .env_remove("ARCA_BASE_URL")
            .env_remove("ARCA_CONFIG")
            // stdout (the first start's token) and stderr (logs) both land in server.log.
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log));
        let data = env
            .iter()
            .find(|(k, _)| *k == "ARCA_DATA_DIR")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(|| dir.path().join("data"));
        for (k, v) in s3_env(&data) {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn arca");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .expect("client");
        let server = Server {
            base,
            token,
            client,
            dir,
            database_url,
            child,
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self
                .client
                .get(format!("{}/health", self.base))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!("server did not become healthy: {}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs an offline admin command against this server's database.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_DATA_DIR", self.data_dir())
            .env("ARCA_DATABASE_URL", &self.database_url)
            .env("ARCA_LOG", "warn")
            .envs(s3_env(&self.data_dir()))
            .output()
            .expect("run arca cli");
        assert!(
            out.status.success(),
            "arca {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    }

    /// Creates a user with a role on a scope and returns a fresh API token for it.
    pub fn user_with_role(&self, name: &str, role: &str, scope: &str) -> String {
        self.cli(&["user", "create", name, "--role", role, "--scope", scope]);
        self.cli(&["token", "create", "--user", name])
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(self.url(path))
            .header("x-api-key", &self.token)
    }
    pub fn post(&self, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .header("x-api-key", &self.token)
            .json(&body)
    }
    pub fn put(&self, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.client
            .put(self.url(path))
            .header("x-api-key", &self.token)
            .json(&body)
    }
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .delete(self.url(path))
            .header("x-api-key", &self.token)
    }

    /// Creates a registry through the Harness dialect and returns its data object.
    pub async fn harness_registry(&self, space: &str, body: Value) -> Value {
        let r = self
            .post(&format!("/har/api/v1/registry?space_ref={space}/+"), body)
            .send()
            .await
            .expect("send");
        let status = r.status();
        let v: Value = r.json().await.expect("json");
        assert_eq!(status, 201, "create failed: {v}");
        v["data"].clone()
    }

    pub async fn generic_registry(&self, space: &str, identifier: &str) -> Value {
        self.harness_registry(
            space,
            serde_json::json!({"identifier": identifier, "packageType": "GENERIC", "parentRef": space,
                               "config": {"type": "VIRTUAL"}}),
        )
        .await
    }

    /// Kills the server with SIGKILL (no chance to finish anything) and waits until it is gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends a request and returns (status, JSON body or Null).
pub async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.expect("send");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Generates one test per backend from an `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::common::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::common::Backend::Postgres).await } )*
        }
    };
}

/// Directory of the real clients installed by `scripts/install-test-deps.sh`.
pub fn tools() -> PathBuf {
    PathBuf::from(std::env::var("ARCA_TEST_TOOLS").expect(
        "ARCA_TEST_TOOLS is not set: run the suite with scripts/test.sh, which installs the real clients",
    ))
}

/// Output of a client command.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a real client with a clean, isolated environment plus `env`.
pub fn run(
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    cwd: &std::path::Path,
    env: &[(&str, String)],
) -> Run {
    let mut cmd = Command::new(program.as_ref());
    cmd.args(args)
        .current_dir(cwd)
        .env("HOME", cwd)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {:?}: {e}", program.as_ref()));
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

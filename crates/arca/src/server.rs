//! HTTP server: router, health endpoints, graceful shutdown, first-start bootstrap.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{any, get};

use crate::api;
use crate::auth::{generate_token, hash_token};
use crate::blob::{LocalBlobStore, S3BlobStore};
use crate::config::{BlobStoreConfig, Config};
use crate::formats;
use crate::state::{AppState, Inner};
use crate::store::Db;

pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let db = Db::connect(&config.database_url).await?;
    let blobs: Arc<dyn crate::blob::BlobStore> = match &config.blob_store {
        BlobStoreConfig::Local(dir) => Arc::new(
            LocalBlobStore::open(dir)
                .await
                .context("opening blob store")?,
        ),
        BlobStoreConfig::S3(s3) => Arc::new(
            S3BlobStore::open(s3, &config.blob_dir())
                .await
                .context("opening the S3 blob store")?,
        ),
    };
    db.ensure_scope(&config.default_account)
        .await
        .map_err(|e| anyhow::anyhow!("creating default account: {e}"))?;
    // Scopes made before every scope had its trash get one.
    db.ensure_trash_cans()
        .await
        .map_err(|e| anyhow::anyhow!("creating trash registries: {e}"))?;
    let throttle = crate::throttle::Throttle::new(
        config.auth_backoff_after,
        std::time::Duration::from_secs(config.auth_backoff_max_secs),
    );
    let proxy = crate::proxy::ProxyEngine::new(
        std::time::Duration::from_secs(config.proxy_connect_timeout_secs),
        std::time::Duration::from_secs(config.proxy_negative_ttl_secs),
    )
    .context("building the upstream HTTP client")?;
    Ok(AppState(Arc::new(Inner {
        throttle,
        proxy,
        config,
        db,
        blobs,
        password_cache: Default::default(),
        docs: Default::default(),
        walks: Default::default(),
        downloads: Default::default(),
    })))
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/api/openapi.json", get(api::openapi::openapi_json))
        .route("/har/api/v1/{*rest}", any(api::harness::route))
        .route("/api/v1/{*rest}", any(api::harness::route))
        .route("/pkg/{*rest}", any(formats::route))
        .route(
            "/arca/v1/secrets",
            axum::routing::post(api::secrets::create)
                .get(api::secrets::list)
                .delete(api::secrets::delete),
        )
        // Formats with routes of their own (OCI's /v2, where its clients require it).
        .merge(formats::all().extra_routes())
        // GitFlic and /arca/v1 bodies: read only after the credentials, at most
        // max_api_body_bytes of them.
        .merge(api::gitflic::router().merge(api::tokens::router()).layer(
            axum::middleware::from_fn_with_state(state.clone(), api_body_limit),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            current_download_counts,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_address,
        ))
        // Native uploads stream; management bodies are capped where they are read.
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(state)
}

/// Reads a management request's body for its handler, after checking the credentials (a
/// stranger's body is never read) and never more than `max_api_body_bytes` of it: a larger
/// declared body is refused before a byte is read, an undeclared one when it reaches the cap (the
/// bounded rest is drained, so that the client, still sending, reads the 413).
async fn api_body_limit(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let limit = state.config.max_api_body_bytes;
    if let Err(e) = state.principal(req.headers()).await {
        return e.into_response();
    }
    if let Err(e) = crate::http::check_length(req.headers(), limit) {
        return e.into_response();
    }
    let (parts, body) = req.into_parts();
    match crate::http::read_body(body, limit.min(usize::MAX as u64) as usize).await {
        Ok(bytes) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// Makes the request's client address known to authentication (`crate::throttle::client`).
async fn client_address(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| {
            crate::throttle::client_address(c.0.ip(), req.headers(), &state.config.trusted_proxies)
        });
    crate::throttle::CLIENT.scope(client, next.run(req)).await
}

/// Management reads show download counts that include this process's pending ones.
async fn current_download_counts(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    if req.method() == axum::http::Method::GET
        && (path.starts_with("/har/")
            || path.starts_with("/api/v1/")
            || path.starts_with("/registry/"))
        && let Err(e) = state.flush_downloads().await
    {
        tracing::warn!(error = %e, "writing download counts failed");
    }
    next.run(req).await
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let db = state.db.ping().await;
    let blobs = state.blobs.ready().await;
    let status = if db && blobs {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({"database": db, "blobStore": blobs})),
    )
}

/// On first start (no users): an admin user and an API token, from `ARCA_ADMIN_TOKEN` or generated
/// (then printed on a line of its own to stdout), written to `<data dir>/admin-token` (mode 0600).
pub async fn bootstrap(state: &AppState) -> anyhow::Result<()> {
    if state
        .db
        .user_count()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        > 0
    {
        return Ok(());
    }
    let user = match state.db.create_user("admin", None, true).await {
        Ok(u) => u,
        // Another server process bootstrapped at the same moment.
        Err(crate::store::StoreError::Conflict(_)) => return Ok(()),
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    let (token, generated) = match std::env::var("ARCA_ADMIN_TOKEN") {
        Ok(t) if !t.is_empty() => (t, false),
        _ => (generate_token(), true),
    };
    state
        .db
        .insert_token(&user.id, "bootstrap", &hash_token(&token))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = state.config.data_dir.join("admin-token");
    write_secret(&path, &token)?;
    if generated {
        // On stdout, the token on a line of its own: easy to read and to copy.
        println!(
            "Created user 'admin' with this API token (also written to {}):\n{token}",
            path.display()
        );
    } else {
        tracing::info!(file = %path.display(), "created user 'admin' with the token from ARCA_ADMIN_TOKEN");
    }
    Ok(())
}

fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(())
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let state = build_state(config.clone()).await?;
    bootstrap(&state).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, base_url = %config.base_url, database = %redact(&config.database_url), "arca serving");
    spawn_gc(state.clone());
    crate::listener::raise_open_files_limit();
    crate::listener::serve(
        listener,
        router(state.clone()),
        crate::listener::Limits {
            max_connections: config.max_connections,
            header_read_timeout: std::time::Duration::from_secs(config.header_read_timeout_secs),
            body_idle_timeout: std::time::Duration::from_secs(config.body_idle_timeout_secs),
        },
        shutdown_signal(),
    )
    .await;
    state
        .flush_downloads()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!("shut down");
    Ok(())
}

/// Runs the blob garbage collector periodically (every `gc_interval_secs`, 0 disables; grace
/// `gc_grace_secs`). Every process may try: one at a time holds the collector's lease (see
/// `crate::gc`), the others skip their turn.
fn spawn_gc(state: AppState) {
    let (interval, grace) = (state.config.gc_interval_secs, state.config.gc_grace_secs);
    if interval == 0 {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
            // Trashed versions past their retention go first: their blobs are then collected.
            match crate::gc::purge_trash(&state.db, state.config.trash_retention_days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(versions = n, "purged from the trash"),
                Err(e) => tracing::warn!(error = %e, "purging the trash failed"),
            }
            match crate::gc::collect(
                &state.db,
                state.blobs.as_ref(),
                std::time::Duration::from_secs(grace),
            )
            .await
            {
                Ok(r) if r.busy => {
                    tracing::debug!("another process's garbage collector holds the lease")
                }
                Ok(r) => tracing::info!(
                    blobs = r.blobs,
                    bytes = r.bytes,
                    links = r.links,
                    uploads = r.uploads,
                    orphans = r.orphans,
                    orphan_bytes = r.orphan_bytes,
                    leftovers = r.leftovers,
                    leftover_bytes = r.leftover_bytes,
                    "garbage collected"
                ),
                Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
            }
        }
    });
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested: finishing in-flight requests");
}

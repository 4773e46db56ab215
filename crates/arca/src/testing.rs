//! Fixtures for in-process tests: an application state on a throwaway SQLite database and blob
//! directory, and registries inserted into it field by field, so that rules which need the store
//! (validation, read chains) are tested without starting a server.

use crate::config::Config;
use crate::model::{PackageType, ProxySettings, Registry, RegistryKind, Reupload};
use crate::state::AppState;

/// An application state and the directory it lives in (removed on drop).
pub struct TestState {
    pub state: AppState,
    _dir: tempfile::TempDir,
}

pub async fn state() -> TestState {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        listen: ([127, 0, 0, 1], 0).into(),
        data_dir: dir.path().to_path_buf(),
        database_url: format!("sqlite://{}/arca.db", dir.path().display()),
        base_url: "http://127.0.0.1:0".into(),
        default_account: "acme".into(),
        max_upload_bytes: 1 << 20,
        max_parsed_body_bytes: 1 << 16,
        max_api_body_bytes: 1 << 20,
        trusted_proxies: Vec::new(),
        auth_backoff_after: 5,
        auth_backoff_max_secs: 300,
        max_connections: 100,
        header_read_timeout_secs: 30,
        body_idle_timeout_secs: 120,
        proxy_connect_timeout_secs: 5,
        proxy_negative_ttl_secs: 60,
        upstream_sources: Default::default(),
        // Unit tests do not depend on the machine's free disk.
        min_free_bytes: 0,
        gc_interval_secs: 0,
        gc_grace_secs: 3600,
        trash_retention_days: 30,
        blob_store: crate::config::BlobStoreConfig::Local(dir.path().join("blobs")),
    };
    let state = crate::server::build_state(config).await.expect("state");
    TestState { state, _dir: dir }
}

/// A registry that is not stored yet (for validation), in `scope` (created if missing).
pub async fn registry(
    state: &AppState,
    scope: &str,
    identifier: &str,
    package_type: PackageType,
    kind: RegistryKind,
    members: &[&Registry],
) -> Registry {
    let s = state.db.ensure_scope(scope).await.expect("scope");
    let mut r = Registry::new(scope, identifier, package_type, kind);
    r.scope_id = s.id;
    r.reupload = Reupload::None;
    r.proxy = (kind == RegistryKind::Proxy).then(|| ProxySettings {
        url: "http://127.0.0.1:1/".into(),
        ..Default::default()
    });
    r.members = members.iter().map(|m| m.id.clone()).collect();
    r
}

/// A registry as [`registry`] builds it, stored.
pub async fn stored(
    state: &AppState,
    scope: &str,
    identifier: &str,
    kind: RegistryKind,
    members: &[&Registry],
) -> Registry {
    let r = registry(
        state,
        scope,
        identifier,
        PackageType::Generic,
        kind,
        members,
    )
    .await;
    state.db.insert_registry(&r).await.expect("insert");
    r
}

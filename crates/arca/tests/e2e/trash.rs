//! The trash can with a real client: a native delete (`npm unpublish`) moves the version to the
//! trash with `deletedAt` set, the restore endpoint puts it back (409 while the registry has the
//! version again, 404 once the registry is gone) and npm installs it again; the retention
//! (`--trash-retention-days`) purges trashed versions and the collector then frees their blobs.

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call};
use crate::groups::hosted;
use crate::npm::{Npm, package};

async fn delete_restore_install_then_retention_purges(b: Backend) {
    let s = Server::start(b).await;
    hosted(&s, "t", "NPM").await;
    let npm = Npm::at(&s, "default", "t", &s.token);
    let w = s.dir.path();
    for v in ["1.0.0", "1.1.0"] {
        npm.ok(
            &package(
                &w.join(format!("lib-{v}")),
                json!({"name": "lib", "version": v}),
            ),
            &["publish"],
        );
    }
    let install = |dir: &str| {
        let app = w.join(dir);
        package(
            &app,
            json!({"name": "app", "version": "0.0.1", "private": true}),
        );
        (
            npm.run(&app, &["install", "--prefer-online", "lib@1.0.0"]),
            app,
        )
    };

    // A native delete: the version goes to the trash, deletedAt set.
    npm.ok(w, &["unpublish", "lib@1.0.0", "--force"]);
    let gone = deleted(&s).await;
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0]["name"], "1.0.0");
    assert!(gone[0]["deletedAt"].is_string(), "{gone:?}");
    let (r, _) = install("app1");
    assert!(!r.ok, "a trashed version does not install");

    // Restored: served again by the protocol; a second restore conflicts with the live version.
    let restore = "/har/api/v1/registry/default/t/+/artifact/lib/+/version/1.0.0/restore";
    let (st, v) = call(s.post(restore, json!({}))).await;
    assert_eq!(st, 200, "{v}");
    let (r, app) = install("app2");
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(app.join("node_modules/lib/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["version"], "1.0.0");
    assert!(deleted(&s).await.is_empty());
    npm.ok(w, &["unpublish", "lib@1.0.0", "--force"]);
    npm.ok(
        &package(&w.join("again"), json!({"name": "lib", "version": "1.0.0"})),
        &["publish", "--tag", "old"],
    );
    let (st, v) = call(s.post(restore, json!({}))).await;
    assert_eq!(st, 409, "{v}");

    // Retention: within it, `arca gc` keeps the trash; past it (0 days), purges it, and the
    // collector frees the purged version's blob.
    npm.ok(w, &["unpublish", "lib@1.0.0", "--force"]);
    npm.ok(w, &["unpublish", "lib@1.1.0", "--force"]);
    let out = s.cli(&["gc", "--grace-secs", "0"]);
    assert!(!out.contains("purged"), "{out}");
    assert_eq!(deleted(&s).await.len(), 2);
    let out = s.cli(&["gc", "--grace-secs", "0", "--trash-retention-days", "0"]);
    assert!(out.contains("purged 2 versions"), "{out}");
    let collected: u64 = out
        .split("collected ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        collected >= 2,
        "the purged tarballs' blobs are collected: {out}"
    );
    assert!(deleted(&s).await.is_empty());
    let (st, _) = call(s.post(restore, json!({}))).await;
    assert_eq!(st, 404);

    // A registry that no longer exists cannot be restored into.
    hosted(&s, "t2", "NPM").await;
    let npm2 = Npm::at(&s, "default", "t2", &s.token);
    npm2.ok(
        &package(
            &w.join("other"),
            json!({"name": "other", "version": "1.0.0"}),
        ),
        &["publish"],
    );
    npm2.ok(w, &["unpublish", "other", "--force"]);
    let (st, v) = call(s.delete("/har/api/v1/registry/default/t2/+")).await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = call(s.post(
        "/har/api/v1/registry/default/t2/+/artifact/other/+/version/1.0.0/restore",
        json!({}),
    ))
    .await;
    assert_eq!(st, 404);
}

/// The deleted versions of `lib` in registry `t` (none once nothing of `lib` is left at all).
async fn deleted(s: &Server) -> Vec<Value> {
    let (st, v) =
        call(s.get("/har/api/v1/registry/default/t/+/artifact/lib/versions?deleted=only")).await;
    if st == 404 {
        return vec![];
    }
    assert_eq!(st, 200, "{v}");
    v["data"]["artifactVersions"].as_array().unwrap().clone()
}

both_backends!(delete_restore_install_then_retention_purges);

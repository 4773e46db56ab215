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

/// The owner's TRASH_CAN through GitFlic (Arca's extension, GitFlic documents no restore): a
/// native delete (`npm unpublish`) shows in `GET .../repositories/{trash}/trash` naming its
/// repository; `POST .../repositories/{trash}/restore` puts it back and npm installs it again;
/// restoring what is not in the trash is 404, over a live version 409, into a repository that
/// no longer exists 404.
async fn gitflic_trash_can_lists_and_restores(b: Backend) {
    let s = Server::start(b).await;
    let repo = hosted(&s, "gt", "NPM").await;
    let npm = Npm::at(&s, "default", "gt", &s.token);
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
    let gf = |method: reqwest::Method, path: String, body: Option<Value>| {
        let s = &s;
        async move {
            let mut r = s
                .client
                .request(method, s.url(&path))
                .header("authorization", format!("token {}", s.token));
            if let Some(b) = body {
                r = r.json(&b);
            }
            call(r).await
        }
    };
    let (st, v) = gf(
        reqwest::Method::GET,
        "/registry/instance/x/repositories?size=100".into(),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let trash = v["_embedded"]
        .as_object()
        .and_then(|e| e.values().next())
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|r| r["repositoryType"] == "TRASH_CAN"))
        .unwrap_or_else(|| panic!("no TRASH_CAN in {v}"))["repositoryUuid"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = || {
        let gf = &gf;
        let trash = trash.clone();
        async move {
            let (st, v) = gf(
                reqwest::Method::GET,
                format!("/registry/instance/x/repositories/{trash}/trash"),
                None,
            )
            .await;
            assert_eq!(st, 200, "{v}");
            v["_embedded"]["trashedVersionList"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    };
    assert!(listed().await.is_empty());
    npm.ok(w, &["unpublish", "lib@1.0.0", "--force"]);
    let gone = listed().await;
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0]["name"], "lib");
    assert_eq!(gone[0]["version"], "1.0.0");
    assert_eq!(gone[0]["repositoryUuid"], repo.as_str());
    assert_eq!(gone[0]["repositoryTitle"], "gt");
    assert!(gone[0]["deletedAt"].is_i64(), "{gone:?}");
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
    let (r, _) = install("app1");
    assert!(!r.ok, "a trashed version does not install");

    let restore = format!("/registry/instance/repositories/{trash}/restore");
    let body = json!({"packageId": gone[0]["packageId"], "version": "1.0.0"});
    let (st, v) = gf(reqwest::Method::POST, restore.clone(), Some(body.clone())).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["repositoryTitle"], "gt", "{v}");
    let (r, app) = install("app2");
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(app.join("node_modules/lib/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["version"], "1.0.0");
    assert!(listed().await.is_empty());
    // Not in the trash any more.
    let (st, _) = gf(reqwest::Method::POST, restore.clone(), Some(body)).await;
    assert_eq!(st, 404);

    // The repository has the version again: 409, and the trashed copy stays.
    npm.ok(w, &["unpublish", "lib@1.0.0", "--force"]);
    npm.ok(
        &package(&w.join("again"), json!({"name": "lib", "version": "1.0.0"})),
        &["publish", "--tag", "old"],
    );
    let gone = listed().await;
    let body = json!({"packageId": gone[0]["packageId"], "version": "1.0.0"});
    let (st, v) = gf(reqwest::Method::POST, restore.clone(), Some(body)).await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(listed().await.len(), 1);

    // The repository is gone: 404.
    let (st, v) = call(s.delete("/har/api/v1/registry/default/gt/+")).await;
    assert_eq!(st, 200, "{v}");
    let gone = listed().await;
    assert!(!gone.is_empty());
    let body = json!({"packageId": gone[0]["packageId"], "version": gone[0]["version"]});
    let (st, v) = gf(reqwest::Method::POST, restore, Some(body)).await;
    assert_eq!(st, 404, "{v}");
    // A repository that is not a TRASH_CAN has no trash.
    let (st, _) = gf(
        reqwest::Method::GET,
        "/registry/instance/x/repositories/00000000-0000-0000-0000-000000000000/trash".into(),
        None,
    )
    .await;
    assert_eq!(st, 404);
}

both_backends!(
    delete_restore_install_then_retention_purges,
    gitflic_trash_can_lists_and_restores
);

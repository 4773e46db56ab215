//! API tokens over HTTP (`/arca/v1/tokens`): create (secret once), list, revoke, expiry, limits
//! narrower than the creator's, and admins acting for users within their admin scope.

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::{Backend, Server, call};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn create_as(s: &Server, token: &str, query: &str, body: Value) -> (u16, Value) {
    call(
        s.client
            .post(s.url(&format!("/arca/v1/tokens{query}")))
            .header("x-api-key", token)
            .json(&body),
    )
    .await
}

/// The status of a write (PUT of a generic file) and a read with `token`.
async fn write_read(s: &Server, token: &str, file: &str) -> (u16, u16) {
    let url = s.url(&format!("/pkg/acme/files/generic/p/1/{file}"));
    let w = s
        .client
        .put(&url)
        .header("x-api-key", token)
        .body("x")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let r = s
        .client
        .get(s.url("/pkg/acme/files/generic/p/1/seed"))
        .header("x-api-key", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    (w, r)
}

async fn setup(s: &Server) {
    s.generic_registry("acme/web", "files").await;
    let r = s
        .client
        .put(s.url("/pkg/acme/files/generic/p/1/seed"))
        .header("x-api-key", &s.token)
        .body("s")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

async fn create_list_revoke_expire(b: Backend) {
    let s = Server::start(b).await;
    setup(&s).await;
    let (st, v) = call(s.post("/arca/v1/tokens", json!({"name": "ci"}))).await;
    assert_eq!(st, 201, "{v}");
    let (id, token) = (
        v["id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    );
    assert!(token.starts_with("arca_"), "{v}");
    assert_eq!(v["name"], "ci");
    assert_eq!(v["user"], "admin");
    assert_eq!(write_read(&s, &token, "a").await, (201, 200));
    // Listed without the secret; the caller's own tokens by default.
    let (st, list) = call(s.get("/arca/v1/tokens")).await;
    assert_eq!(st, 200);
    let rows = list.as_array().unwrap();
    let row = rows
        .iter()
        .find(|t| t["id"] == id.as_str())
        .expect("listed");
    assert_eq!(row["state"], "active");
    assert!(row.get("token").is_none(), "{row}");
    assert!(!list.to_string().contains(&token));
    // Revoked: 204, then the token is refused, and a second revoke is a 404.
    let (st, _) = call(s.delete(&format!("/arca/v1/tokens/{id}"))).await;
    assert_eq!(st, 204);
    assert_eq!(write_read(&s, &token, "b").await, (401, 401));
    let (st, _) = call(s.delete(&format!("/arca/v1/tokens/{id}"))).await;
    assert_eq!(st, 404);
    // Expiry: usable until it passes, then 401; never in the past; not both forms.
    let soon = now_ms() + 1500;
    let (st, v) = call(s.post("/arca/v1/tokens", json!({"expiresAt": soon}))).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["expiresAt"], soon);
    let short = v["token"].as_str().unwrap().to_string();
    assert_eq!(write_read(&s, &short, "c").await, (201, 200));
    tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
    assert_eq!(write_read(&s, &short, "d").await, (401, 401));
    let (st, list) = call(s.get("/arca/v1/tokens")).await;
    assert_eq!(st, 200);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["state"] == "expired")
    );
    let (st, _) = call(s.post("/arca/v1/tokens", json!({"expiresAt": now_ms() - 1}))).await;
    assert_eq!(st, 400);
    let (st, _) = call(s.post(
        "/arca/v1/tokens",
        json!({"expiresAt": now_ms() + 9_000_000, "expiresInDays": 3}),
    ))
    .await;
    assert_eq!(st, 400);
    let (st, v) = call(s.post("/arca/v1/tokens", json!({"expiresInDays": 30}))).await;
    assert_eq!(st, 201);
    assert!(v["expiresAt"].as_i64().unwrap() > now_ms() + 29 * 86_400_000);
    // Unknown fields, roles and scopes are refused; anonymous callers are 401.
    for body in [
        json!({"nmae": "typo"}),
        json!({"role": "owner"}),
        json!({"scope": "nowhere"}),
    ] {
        let (st, _) = call(s.post("/arca/v1/tokens", body.clone())).await;
        assert_eq!(st, 400, "{body}");
    }
    let r = s.client.get(s.url("/arca/v1/tokens")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .post(s.url("/arca/v1/tokens"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The OpenAPI document lists the three operations.
    let (_, doc) = call(s.get("/api/openapi.json")).await;
    let ops = &doc["paths"]["/arca/v1/tokens"];
    assert!(
        ops.get("post").is_some() && ops.get("get").is_some(),
        "{ops}"
    );
    assert!(doc["paths"]["/arca/v1/tokens/{id}"].get("delete").is_some());
}

async fn narrower_than_the_creator(b: Backend) {
    let s = Server::start(b).await;
    setup(&s).await;
    s.cli(&["user", "create", "elsewhere"]);
    s.cli(&[
        "user",
        "grant",
        "elsewhere",
        "--role",
        "reader",
        "--scope",
        "other",
    ]);
    let alice = s.user_with_role("alice", "deployer", "acme/web");
    assert_eq!(write_read(&s, &alice, "a").await, (201, 200));
    // A read-only token of a deployer.
    let (st, v) = create_as(&s, &alice, "", json!({"role": "reader"})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["role"], "reader");
    let reader = v["token"].as_str().unwrap().to_string();
    assert_eq!(write_read(&s, &reader, "b").await, (403, 200));
    // It cannot make a stronger token, nor one without its limit.
    let (st, _) = create_as(&s, &reader, "", json!({"role": "deployer"})).await;
    assert_eq!(st, 403);
    let (st, v) = create_as(&s, &reader, "", json!({"name": "child"})).await;
    assert_eq!(st, 201);
    assert_eq!(v["role"], "reader", "the creator's limit is inherited: {v}");
    // Nothing the user does not hold: admin anywhere, or a role on a scope outside theirs.
    let (st, _) = create_as(&s, &alice, "", json!({"role": "admin"})).await;
    assert_eq!(st, 403);
    let (st, _) = create_as(&s, &alice, "", json!({"scope": "other", "role": "reader"})).await;
    assert_eq!(st, 403);
    // A token limited to a scope sees nothing outside it, even for a global admin.
    s.generic_registry("other", "elsewhere").await;
    let (st, v) = call(s.post("/arca/v1/tokens", json!({"scope": "other"}))).await;
    assert_eq!(st, 201, "{v}");
    let scoped = v["token"].as_str().unwrap().to_string();
    assert_eq!(write_read(&s, &scoped, "c").await.0, 404);
    let r = s
        .client
        .put(s.url("/pkg/other/elsewhere/generic/p/1/f"))
        .header("x-api-key", &scoped)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // ...and cannot reach beyond its scope, nor act as a global admin for others.
    let (st, _) = create_as(&s, &scoped, "", json!({"scope": "acme"})).await;
    assert_eq!(st, 403);
    let (st, _) = create_as(&s, &scoped, "?user=alice", json!({})).await;
    assert_eq!(st, 403);
    // A token made by an expiring token expires no later.
    let at = now_ms() + 3_600_000;
    let (_, v) = call(s.post("/arca/v1/tokens", json!({"expiresAt": at}))).await;
    let expiring = v["token"].as_str().unwrap().to_string();
    let (st, v) = create_as(&s, &expiring, "", json!({})).await;
    assert_eq!((st, v["expiresAt"].as_i64()), (201, Some(at)));
    let (st, _) = create_as(&s, &expiring, "", json!({"expiresInDays": 2})).await;
    assert_eq!(st, 403);
    // The narrow reader token cannot revoke its user's broader tokens.
    let (_, list) = call(
        s.client
            .get(s.url("/arca/v1/tokens"))
            .header("x-api-key", &alice),
    )
    .await;
    let broad = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"].is_null())
        .expect("alice's CLI token");
    let r = s
        .client
        .delete(s.url(&format!(
            "/arca/v1/tokens/{}",
            broad["id"].as_str().unwrap()
        )))
        .header("x-api-key", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

async fn admins_act_for_users_in_their_scope(b: Backend) {
    let s = Server::start(b).await;
    setup(&s).await;
    let orgadmin = s.user_with_role("orgadmin", "admin", "acme");
    let alice = s.user_with_role("alice", "deployer", "acme/web");
    let bob = s.user_with_role("bob", "deployer", "other");
    // For alice (all her roles lie within acme): created, usable as alice, listed, revoked.
    let (st, v) = create_as(&s, &orgadmin, "?user=alice", json!({"name": "for-alice"})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(
        (v["user"].as_str(), v["createdBy"].as_str()),
        (Some("alice"), Some("orgadmin"))
    );
    let for_alice = v["token"].as_str().unwrap().to_string();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(write_read(&s, &for_alice, "a").await, (201, 200));
    let (st, list) = call(
        s.client
            .get(s.url("/arca/v1/tokens?user=alice"))
            .header("x-api-key", &orgadmin),
    )
    .await;
    assert_eq!(st, 200);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str())
    );
    // Not for bob (outside acme), nor for the global admin; alice acts for no one.
    let (st, _) = create_as(&s, &orgadmin, "?user=bob", json!({})).await;
    assert_eq!(st, 403);
    let (st, _) = create_as(&s, &orgadmin, "?user=admin", json!({})).await;
    assert_eq!(st, 403);
    let (st, _) = create_as(&s, &alice, "?user=bob", json!({})).await;
    assert_eq!(st, 403);
    let (st, _) = create_as(&s, &orgadmin, "?user=nobody", json!({})).await;
    assert_eq!(st, 404);
    // Bob cannot see or revoke alice's token; the org admin can.
    let r = s
        .client
        .delete(s.url(&format!("/arca/v1/tokens/{id}")))
        .header("x-api-key", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .client
        .delete(s.url(&format!("/arca/v1/tokens/{id}?user=alice")))
        .header("x-api-key", &orgadmin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(write_read(&s, &for_alice, "b").await, (401, 401));
    // The global admin acts for anyone.
    let (st, v) = call(s.post("/arca/v1/tokens?user=bob", json!({"role": "reader"}))).await;
    assert_eq!((st, v["user"].as_str()), (201, Some("bob")));
}

/// The offline CLI says what it did: `user create` names the user, `token list` shows times and
/// limits, `user grant` warns about a scope that did not exist.
async fn cli_says_what_it_did(b: Backend) {
    let s = Server::start(b).await;
    s.generic_registry("acme", "files").await;
    let out = s.cli(&[
        "user", "create", "carol", "--role", "reader", "--scope", "acme",
    ]);
    assert!(out.contains("created user 'carol' (id "), "{out}");
    assert!(out.contains("granted reader on acme to carol"), "{out}");
    let (_, _) = create_as(
        &s,
        &s.token,
        "?user=carol",
        json!({"name": "ro", "role": "reader", "expiresInDays": 2}),
    )
    .await;
    let list = s.cli(&["token", "list", "--user", "carol"]);
    let row = list.lines().find(|l| l.contains("\tro\t")).expect(&list);
    assert!(row.contains("\tactive\t*\treader\t"), "{row}");
    let year = row.split('\t').nth(3).unwrap_or("");
    assert!(
        year.len() == 20 && year.ends_with('Z') && year.contains('T'),
        "readable time: {row}"
    );
    // The CLI makes narrowed tokens too.
    let cli_token = s.cli(&[
        "token",
        "create",
        "--user",
        "carol",
        "--name",
        "cli-ro",
        "--scope",
        "acme",
        "--role",
        "reader",
        "--expires-in-days",
        "1",
    ]);
    let list = s.cli(&["token", "list", "--user", "carol"]);
    let row = list
        .lines()
        .find(|l| l.contains("\tcli-ro\t"))
        .expect(&list);
    assert!(row.contains("\tacme\treader\t"), "{row}");
    assert_eq!(write_read(&s, &cli_token, "x").await.0, 403);
    let grant = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args([
            "user", "grant", "carol", "--role", "reader", "--scope", "acmee",
        ])
        .env("ARCA_DATA_DIR", s.data_dir())
        .env("ARCA_DATABASE_URL", &s.database_url)
        .output()
        .unwrap();
    assert!(grant.status.success());
    let err = String::from_utf8_lossy(&grant.stderr);
    assert!(
        err.contains("warning: scope 'acmee' does not exist"),
        "{err}"
    );
}

both_backends!(
    cli_says_what_it_did,
    create_list_revoke_expire,
    narrower_than_the_creator,
    admins_act_for_users_in_their_scope
);

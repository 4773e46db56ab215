//! Unit tests of the registry rules in `service`.

use super::validate;
use crate::error::ApiError;
use crate::model::{PackageType, Registry, RegistryKind};
use crate::testing::{registry, state, stored};

/// The field a refusal names; anything but a 400 fails the test.
fn refused(r: Result<(), ApiError>) -> String {
    match r {
        Err(ApiError::BadRequest { field, .. }) => field.unwrap_or_default(),
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test]
async fn validate_checks_fields_and_proxies() {
    let t = state().await;
    let s = &t.state;
    let mut r = registry(
        s,
        "acme",
        "r",
        PackageType::Generic,
        RegistryKind::Hosted,
        &[],
    )
    .await;
    validate(s, &r, "members").await.unwrap();
    r.allowed_patterns = vec!["(".into()];
    assert_eq!(refused(validate(s, &r, "members").await), "allowedPattern");
    r.allowed_patterns.clear();
    r.blocked_patterns = vec!["[".into()];
    assert_eq!(refused(validate(s, &r, "members").await), "blockedPattern");
    r.blocked_patterns.clear();
    r.description = Some("x".repeat(1025));
    assert_eq!(refused(validate(s, &r, "members").await), "description");
    r.description = None;
    r.identifier = "bad name".into();
    assert_eq!(refused(validate(s, &r, "members").await), "identifier");

    let mut p = registry(s, "acme", "p", PackageType::Npm, RegistryKind::Proxy, &[]).await;
    validate(s, &p, "members").await.unwrap();
    if let Some(proxy) = p.proxy.as_mut() {
        proxy.url = "ftp://127.0.0.1/".into();
    }
    assert_eq!(refused(validate(s, &p, "members").await), "url");
    p.proxy = None;
    assert_eq!(refused(validate(s, &p, "members").await), "url");
    // Every package type can be proxied (those beyond the seeds' lists are Arca extensions).
    for t in PackageType::ALL {
        let d = registry(s, "acme", "d", t, RegistryKind::Proxy, &[]).await;
        validate(s, &d, "members").await.unwrap();
    }
}

async fn group(s: &crate::state::AppState, members: &[&Registry]) -> Registry {
    registry(
        s,
        "acme/web",
        "g",
        PackageType::Generic,
        RegistryKind::Group,
        members,
    )
    .await
}

#[tokio::test]
async fn validate_checks_members() {
    let t = state().await;
    let s = &t.state;
    let hosted = stored(s, "acme/web", "hosted", RegistryKind::Hosted, &[]).await;
    let proxy = stored(s, "acme", "proxy", RegistryKind::Proxy, &[]).await;
    let sibling = stored(s, "acme/other", "sibling", RegistryKind::Hosted, &[]).await;
    let mut g = group(s, &[&hosted, &proxy]).await;
    validate(s, &g, "members").await.unwrap();
    // Listed twice, itself, out of reach, another package type.
    let twice = group(s, &[&hosted, &hosted]).await;
    assert_eq!(refused(validate(s, &twice, "members").await), "members");
    g.members.push(g.id.clone());
    assert_eq!(refused(validate(s, &g, "members").await), "members");
    let far = group(s, &[&sibling]).await;
    assert_eq!(refused(validate(s, &far, "upstreams").await), "upstreams");
    let npm = registry(
        s,
        "acme",
        "npm",
        PackageType::Npm,
        RegistryKind::Hosted,
        &[],
    )
    .await;
    s.db.insert_registry(&npm).await.unwrap();
    let mixed = group(s, &[&npm]).await;
    assert_eq!(refused(validate(s, &mixed, "members").await), "members");
    // A hosted registry's members are upstream proxies only.
    let h = registry(
        s,
        "acme/web",
        "h",
        PackageType::Generic,
        RegistryKind::Hosted,
        &[&hosted],
    )
    .await;
    assert_eq!(refused(validate(s, &h, "members").await), "members");
    let h = registry(
        s,
        "acme/web",
        "h",
        PackageType::Generic,
        RegistryKind::Hosted,
        &[&proxy],
    )
    .await;
    validate(s, &h, "members").await.unwrap();

    // Deployment registry: a hosted member of a group, and only of a group.
    let mut g = group(s, &[&hosted, &proxy]).await;
    g.deployment_registry_id = Some(proxy.id.clone());
    assert_eq!(
        refused(validate(s, &g, "members").await),
        "deploymentRepositoryUuid"
    );
    g.deployment_registry_id = Some(sibling.id.clone());
    assert_eq!(
        refused(validate(s, &g, "members").await),
        "deploymentRepositoryUuid"
    );
    g.deployment_registry_id = Some(hosted.id.clone());
    validate(s, &g, "members").await.unwrap();
    let mut h = h.clone();
    h.deployment_registry_id = Some(hosted.id.clone());
    assert_eq!(
        refused(validate(s, &h, "members").await),
        "deploymentRepositoryUuid"
    );
}

#[tokio::test]
async fn validate_refuses_group_cycles() {
    let t = state().await;
    let s = &t.state;
    let a = stored(s, "acme", "a", RegistryKind::Group, &[]).await;
    let b = stored(s, "acme", "b", RegistryKind::Group, &[&a]).await;
    let c = stored(s, "acme", "c", RegistryKind::Group, &[&b]).await;
    // a → c → b → a.
    let mut a2 = a.clone();
    a2.members = vec![c.id.clone()];
    assert_eq!(refused(validate(s, &a2, "members").await), "members");
    // Sharing a member is not a cycle.
    let d = registry(
        s,
        "acme",
        "d",
        PackageType::Generic,
        RegistryKind::Group,
        &[&b, &c],
    )
    .await;
    validate(s, &d, "members").await.unwrap();
}

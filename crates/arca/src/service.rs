//! Registry lifecycle and validation, shared by both management dialects. The dialects only
//! translate their request and response shapes; every rule lives here.

use std::collections::HashSet;

use crate::auth::{Need, Principal};
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry, RegistryKind, Role, validate_gitflic_name};
use crate::state::AppState;
use crate::store::scopes::{ancestor_paths, same_path, validate_path};

/// Members may be given by UUID (GitFlic) or identifier (Harness); both resolve here. A registry
/// the caller cannot read answers exactly like one that does not exist (no name oracle), unless
/// it is already a member (`current`): an admin who can edit a group may keep members that
/// someone with wider rights added.
pub async fn resolve_member(
    state: &AppState,
    principal: &Principal,
    current: &[String],
    account: &str,
    field: &str,
    key: &str,
) -> ApiResult<Registry> {
    let found = if uuid::Uuid::parse_str(key).is_ok() {
        state
            .db
            .registry_by_id(&crate::model::canonical_id(key))
            .await?
    } else {
        state.db.registry_by_identifier(account, key).await?
    };
    match found {
        Some(r)
            if same_path(&r.account, account)
                && (current.contains(&r.id) || principal.can(&r, Need::Read)) =>
        {
            Ok(r)
        }
        _ => Err(ApiError::bad(
            field,
            format!("registry '{key}' does not exist"),
        )),
    }
}

/// Who may read what a registry exposes, checked whenever it is created or changed, so that reads
/// through a group need no per-caller filtering (and merged documents stay cacheable):
/// - a public registry includes a private member only with the member's `allowPublicGroups`;
/// - a private registry without that consent cannot stay in a public registry that includes it;
/// - secret references (`secretSpacePath` and its kin) name spaces the caller can read.
///
/// The read check on each new member is done when it is resolved ([`resolve_member`]).
async fn check_exposure(
    state: &AppState,
    principal: &Principal,
    reg: &Registry,
    field_members: &str,
) -> ApiResult<()> {
    if reg.anonymous {
        for m in &reg.members {
            let Some(member) = state.db.registry_by_id(m).await? else {
                continue;
            };
            if !member.anonymous && !member.allow_public_groups {
                return Err(ApiError::bad(
                    field_members,
                    format!(
                        "registry '{}' is private and does not allow public groups to include it \
                         (its admin can set allowPublicGroups); a public registry cannot include it",
                        member.identifier
                    ),
                ));
            }
        }
    }
    if !reg.anonymous && !reg.allow_public_groups {
        let public = state.db.public_registries_including(&reg.id).await?;
        if !public.is_empty() {
            return Err(ApiError::conflict(format!(
                "registry '{}' is included by the public {}: set allowPublicGroups or remove it there first",
                reg.identifier,
                public
                    .iter()
                    .map(|u| format!("'{u}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    if let Some(auth) = reg.proxy.as_ref().and_then(|p| p.harness_auth.as_ref()) {
        for key in SECRET_SPACE_FIELDS {
            if let Some(path) = auth.get(key).and_then(|v| v.as_str())
                && principal.role_at(path.trim_matches('/')).is_none()
            {
                return Err(ApiError::bad(
                    &format!("config.auth.{key}"),
                    format!("space '{path}' does not exist"),
                ));
            }
        }
    }
    Ok(())
}

/// The fields of a Harness upstream's `auth` that name the space a secret lives in.
const SECRET_SPACE_FIELDS: [&str; 3] = [
    "secretSpacePath",
    "accessKeySecretSpacePath",
    "secretKeySpacePath",
];

/// Checks a registry as it would be stored. `field_members` names the dialect's member field.
pub async fn validate(state: &AppState, reg: &Registry, field_members: &str) -> ApiResult<()> {
    // Each dialect checks its own rule on create (Harness's lower-case identifiers, GitFlic's
    // names); what is stored is either.
    validate_gitflic_name("identifier", &reg.identifier)?;
    if matches!(reg.package_type, PackageType::Docker | PackageType::Helm)
        && !crate::formats::oci::valid_component(&reg.oci_name())
    {
        return Err(ApiError::bad(
            "identifier",
            format!(
                "'{}' cannot name an OCI repository: in lower case it must start and end with a letter or \
                 digit, with single '.', '_', '__' or runs of '-' between",
                reg.identifier
            ),
        ));
    }
    for (field, pats) in [
        ("allowedPattern", &reg.allowed_patterns),
        ("blockedPattern", &reg.blocked_patterns),
    ] {
        for p in pats.iter() {
            regex::Regex::new(p).map_err(|e| {
                ApiError::bad(
                    field,
                    format!("'{p}' is not a valid regular expression: {e}"),
                )
            })?;
        }
    }
    if let Some(d) = &reg.description
        && d.len() > 1024
    {
        return Err(ApiError::bad(
            "description",
            "description is longer than 1024 characters",
        ));
    }
    crate::model::check_labels("labels", &reg.labels)?;
    for p in &reg.cleanup_policies {
        if p.name.trim().is_empty() || p.expire_days < 0 {
            return Err(ApiError::bad(
                "cleanupPolicy",
                "a cleanup policy needs a name and expireDays >= 0",
            ));
        }
    }
    validate_scanners(&reg.scanners)?;
    if reg.kind == RegistryKind::Proxy {
        if !reg.package_type.supports_proxy() {
            return Err(ApiError::bad(
                "packageType",
                format!(
                    "package type {} has no proxy protocol; PROXY/UPSTREAM registries are not possible",
                    reg.package_type.harness()
                ),
            ));
        }
        let p = reg
            .proxy
            .as_ref()
            .ok_or_else(|| ApiError::bad("url", "a proxy registry needs an upstream url"))?;
        let url = url::Url::parse(&p.url)
            .map_err(|e| ApiError::bad("url", format!("invalid url '{}': {e}", p.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ApiError::bad(
                "url",
                format!("url '{}' must be http(s) with a host", p.url),
            ));
        }
        if let Some(k) = &p.upstream_key
            && let Err(e) = crate::signing::public_key(k)
        {
            return Err(ApiError::bad("upstreamPublicKey", e));
        }
        if let Some(d) = p
            .distributions
            .iter()
            .find(|d| !crate::formats::debian::valid_word(d))
        {
            return Err(ApiError::bad(
                "distributions",
                format!("'{d}' is not a distribution name"),
            ));
        }
        if !p.distributions.is_empty() && reg.package_type != crate::model::PackageType::Debian {
            return Err(ApiError::bad(
                "distributions",
                "only Debian proxies serve distributions",
            ));
        }
        if p.expire_hours < 0 || p.metadata_interval_secs < 0 {
            return Err(ApiError::bad(
                "expireHours",
                "expireHours and metadataRetrievalIntervalSeconds must be >= 0",
            ));
        }
    }
    // Members: exist, same account and package type, in reach (own scope or an ancestor), right kind,
    // no duplicates, no cycles.
    let mut seen = HashSet::new();
    for m in &reg.members {
        if !seen.insert(m.clone()) {
            return Err(ApiError::bad(
                field_members,
                format!("registry '{m}' is listed twice"),
            ));
        }
        if *m == reg.id {
            return Err(ApiError::bad(
                field_members,
                "a registry cannot include itself",
            ));
        }
        let member = state.db.registry_by_id(m).await?.ok_or_else(|| {
            ApiError::bad(field_members, format!("registry '{m}' does not exist"))
        })?;
        if member.package_type != reg.package_type {
            return Err(ApiError::bad(
                field_members,
                format!(
                    "registry '{}' holds {} packages, not {}",
                    member.identifier,
                    member.package_type.harness(),
                    reg.package_type.harness()
                ),
            ));
        }
        if !ancestor_paths(&reg.scope_path)
            .iter()
            .any(|p| same_path(p, &member.scope_path))
        {
            return Err(ApiError::bad(
                field_members,
                format!(
                    "registry '{}' (in '{}') is out of reach: members must live in '{}' or one of its parents",
                    member.identifier, member.scope_path, reg.scope_path
                ),
            ));
        }
        let ok_kind = match reg.kind {
            RegistryKind::Hosted => member.kind == RegistryKind::Proxy,
            RegistryKind::Group => member.kind != RegistryKind::Trash,
            _ => false,
        };
        if !ok_kind {
            return Err(ApiError::bad(
                field_members,
                match reg.kind {
                    RegistryKind::Hosted => {
                        format!("'{}' is not an upstream proxy registry", member.identifier)
                    }
                    RegistryKind::Group => {
                        format!("the trash can '{}' cannot be a member", member.identifier)
                    }
                    _ => format!("a {} registry has no members", reg.kind.gitflic()),
                },
            ));
        }
    }
    if reg.kind == RegistryKind::Group {
        detect_cycle(state, reg, field_members).await?;
        refuse_mixed_rpm_group(state, reg, field_members).await?;
        refuse_shared_debian_distribution(state, reg, None, field_members).await?;
    }
    // A Debian proxy that changes the distributions it serves must still share none with the
    // other proxy members of the groups that hold it.
    if reg.kind == RegistryKind::Proxy && reg.package_type == crate::model::PackageType::Debian {
        for id in state.db.registry_ids_including(&reg.id).await? {
            if let Some(g) = state.db.registry_by_id(&id).await?
                && g.kind == RegistryKind::Group
            {
                refuse_shared_debian_distribution(state, &g, Some(reg), "distributions").await?;
            }
        }
    }
    match (&reg.deployment_registry_id, reg.kind) {
        (None, _) => {}
        (Some(d), RegistryKind::Group) => {
            if !reg.members.contains(d) {
                return Err(ApiError::bad(
                    "deploymentRepositoryUuid",
                    "the deployment registry must be one of the members",
                ));
            }
            let dep = state.db.registry_by_id(d).await?.ok_or_else(|| {
                ApiError::bad(
                    "deploymentRepositoryUuid",
                    format!("registry '{d}' does not exist"),
                )
            })?;
            if dep.kind != RegistryKind::Hosted {
                return Err(ApiError::bad(
                    "deploymentRepositoryUuid",
                    format!(
                        "the deployment registry '{}' must be a LOCAL registry, not {}",
                        dep.identifier,
                        dep.kind.gitflic()
                    ),
                ));
            }
        }
        (Some(_), _) => {
            return Err(ApiError::bad(
                "deploymentRepositoryUuid",
                "only VIRTUAL registries have a deployment registry",
            ));
        }
    }
    Ok(())
}

/// An RPM repository has one `repomd.xml` per root, signed by whoever generated it: a group can
/// merge and re-sign its hosted members, or pass one proxy's upstream through, not both. A group
/// mixing them is refused when it is configured rather than serving metadata dnf rejects.
async fn refuse_mixed_rpm_group(
    state: &AppState,
    reg: &Registry,
    field_members: &str,
) -> ApiResult<()> {
    if reg.package_type != crate::model::PackageType::Rpm {
        return Ok(());
    }
    let reached = (crate::formats::Resolver { state }).reached(reg).await?;
    let hosted = reached.iter().any(|r| r.reg.kind == RegistryKind::Hosted);
    let proxied = reached
        .iter()
        .any(|r| matches!(r.reg.kind, RegistryKind::Proxy | RegistryKind::Cache));
    if hosted && proxied {
        return Err(ApiError::bad(
            field_members,
            "an RPM group cannot mix LOCAL and PROXY members: RPM has one repomd.xml per \
             repository root, so hosted packages and a proxied upstream cannot be served together",
        ));
    }
    Ok(())
}

/// A Debian group passes each distribution a proxy member serves through unmerged, with the
/// upstream's signature: two proxy members serving one distribution cannot both be, so such a
/// group is refused when it is configured. A proxy that declares no `distributions` serves any
/// (so it shares them with every other proxy member).
async fn refuse_shared_debian_distribution(
    state: &AppState,
    reg: &Registry,
    changed: Option<&Registry>,
    field_members: &str,
) -> ApiResult<()> {
    if reg.package_type != crate::model::PackageType::Debian {
        return Ok(());
    }
    let reached = (crate::formats::Resolver { state }).reached(reg).await?;
    // A proxy being changed counts with its new settings.
    let proxies: Vec<&Registry> = reached
        .iter()
        .filter(|r| r.reg.kind == RegistryKind::Proxy)
        .map(|r| match changed {
            Some(c) if c.id == r.reg.id => c,
            _ => &r.reg,
        })
        .collect();
    let serves = |p: &Registry| -> Vec<String> {
        p.proxy
            .as_ref()
            .map(|s| s.distributions.clone())
            .unwrap_or_default()
    };
    for (i, a) in proxies.iter().enumerate() {
        for b in &proxies[i + 1..] {
            let (da, db) = (serves(a), serves(b));
            let shared = if da.is_empty() || db.is_empty() {
                Some("any distribution".to_string())
            } else {
                da.iter()
                    .find(|d| db.contains(d))
                    .map(|d| format!("distribution '{d}'"))
            };
            if let Some(what) = shared {
                return Err(ApiError::bad(
                    field_members,
                    format!(
                        "a Debian group holds at most one proxy member per distribution: '{}' and \
                         '{}' both serve {what} (declare each proxy's `distributions`)",
                        a.identifier, b.identifier
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Upstream URLs as users copy them from their clients' configuration: surrounding blanks go,
/// and cargo's `sparse+` scheme prefix (the proxy speaks the sparse protocol anyway).
fn normalize_upstream_url(reg: &mut Registry) {
    if let Some(p) = reg.proxy.as_mut() {
        let url = p.url.trim();
        p.url = url.strip_prefix("sparse+").unwrap_or(url).to_string();
    }
}

/// The scanners Harness knows (`Scanner{name}`); Arca stores the choice and runs none.
const SCANNERS: [&str; 2] = ["AQUA_TRIVY", "GRYPE"];

/// Each scanner is a `{"name": ...}` object naming a known scanner.
fn validate_scanners(scanners: &[serde_json::Value]) -> ApiResult<()> {
    for s in scanners {
        let name = s
            .as_object()
            .and_then(|o| o.get("name"))
            .and_then(|n| n.as_str());
        match name {
            Some(n) if SCANNERS.contains(&n) => {}
            _ => {
                return Err(ApiError::bad(
                    "scanners",
                    format!(
                        "invalid scanner {s}: expected {{\"name\": ...}} with one of {}",
                        SCANNERS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Walks group members depth-first; reaching `reg` again is a cycle.
async fn detect_cycle(state: &AppState, reg: &Registry, field: &str) -> ApiResult<()> {
    let mut stack: Vec<String> = reg.members.clone();
    let mut visited = HashSet::new();
    while let Some(id) = stack.pop() {
        if id == reg.id {
            return Err(ApiError::bad(
                field,
                format!(
                    "cycle detected: '{}' would include itself through its members",
                    reg.identifier
                ),
            ));
        }
        if !visited.insert(id.clone()) {
            continue;
        }
        if let Some(m) = state.db.registry_by_id(&id).await? {
            stack.extend(m.members);
        }
    }
    Ok(())
}

/// Creates a registry in `scope_path` (creating missing scopes) and, for a caching proxy, its cache.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    scope_path: &str,
    mut reg: Registry,
    field_members: &str,
) -> ApiResult<Registry> {
    validate_path("parentRef", scope_path)?;
    principal.require_scope(scope_path, Role::Admin)?;
    if matches!(reg.kind, RegistryKind::Cache | RegistryKind::Trash) {
        return Err(ApiError::bad(
            "type",
            format!(
                "{} registries are created by the server, not through the API",
                reg.kind.gitflic()
            ),
        ));
    }
    normalize_upstream_url(&mut reg);
    // Nothing is created before everything is checked: the scopes, the registry and its cache are
    // then created in one transaction (`create_registry`), which also sets the stored spelling.
    reg.scope_path = scope_path.to_string();
    reg.account = scope_path
        .split('/')
        .next()
        .unwrap_or(scope_path)
        .to_string();
    validate(state, &reg, field_members).await?;
    check_exposure(state, principal, &reg, field_members).await?;
    // A name per account (Harness's rule) is taken by any registry of the account; a GitFlic
    // owner's name only by one of that owner.
    let taken = if reg.named_per_owner() {
        state
            .db
            .registry_in_scope(scope_path, &reg.identifier)
            .await?
            .is_some()
    } else {
        !state
            .db
            .registries_named(&reg.account, &reg.identifier)
            .await?
            .is_empty()
    };
    if taken {
        return Err(ApiError::conflict(format!(
            "registry '{}' already exists in {} '{}'",
            reg.identifier,
            if reg.named_per_owner() {
                "owner"
            } else {
                "account"
            },
            if reg.named_per_owner() {
                scope_path
            } else {
                &reg.account
            }
        )));
    }
    let mut cache = new_cache(&reg);
    match state
        .db
        .create_registry(scope_path, &mut reg, cache.as_mut())
        .await
    {
        Err(crate::store::StoreError::Conflict(m)) => return Err(cache_conflict(m, cache)),
        other => other?,
    }
    Ok(state.db.registry_by_id(&reg.id).await?.unwrap_or(reg))
}

/// A caching proxy keeps what it fetched in its cache (LOCAL_CACHE; the Harness dialect shows the
/// content under the proxy itself): the cache a proxy needs, if it needs one. It lives beside its
/// proxy, shares its access settings and has an internal identifier no user name can take.
fn new_cache(proxy: &Registry) -> Option<Registry> {
    let caching =
        proxy.kind == RegistryKind::Proxy && proxy.proxy.as_ref().is_some_and(|p| p.caching);
    caching.then(|| Registry {
        scope_id: proxy.scope_id.clone(),
        anonymous: proxy.anonymous,
        delete_allowed: proxy.delete_allowed,
        reupload: proxy.reupload,
        cache_of: Some(proxy.id.clone()),
        ..Registry::new(
            &proxy.scope_path,
            crate::store::trash::cache_identifier(&proxy.id),
            proxy.package_type,
            RegistryKind::Cache,
        )
    })
}

fn cache_conflict(message: String, cache: Option<Registry>) -> ApiError {
    match cache {
        Some(c) if message.contains(&format!("'{}'", c.identifier)) => ApiError::conflict(format!(
            "cannot create the cache registry '{}': a registry of that name already exists",
            c.identifier
        )),
        _ => ApiError::conflict(message),
    }
}

/// Creates the cache of a proxy that has just become a caching one.
async fn ensure_cache(state: &AppState, proxy: &Registry) -> ApiResult<()> {
    let Some(cache) = new_cache(proxy) else {
        return Ok(());
    };
    if state.db.cache_of_proxy(&proxy.id).await?.is_some() {
        return Ok(());
    }
    match state.db.insert_registry(&cache).await {
        Err(crate::store::StoreError::Conflict(m)) => Err(cache_conflict(m, Some(cache))),
        other => Ok(other?),
    }
}

/// Stores an updated registry (identity fields unchanged by the caller).
pub async fn update(
    state: &AppState,
    principal: &Principal,
    reg: Registry,
    field_members: &str,
) -> ApiResult<Registry> {
    principal.check(&reg, Need::Admin)?;
    let mut reg = reg;
    normalize_upstream_url(&mut reg);
    validate(state, &reg, field_members).await?;
    check_exposure(state, principal, &reg, field_members).await?;
    let before = state.db.registry_by_id(&reg.id).await?;
    state.db.update_registry(&reg).await?;
    // Metadata documents kept from another upstream, or verified with another key, are not
    // served again: the next request fetches (and verifies) them afresh. Cached files stay
    // (immutable content, checked against the metadata that lists them).
    let source = |r: &Registry| {
        r.proxy
            .as_ref()
            .map(|p| (p.url.clone(), p.upstream_key.clone()))
    };
    if reg.kind == RegistryKind::Proxy && before.as_ref().map(source) != Some(source(&reg)) {
        state.db.delete_proxy_documents(&reg.id).await?;
    }
    ensure_cache(state, &reg).await?;
    Ok(state.db.registry_by_id(&reg.id).await?.unwrap_or(reg))
}

pub async fn delete(state: &AppState, principal: &Principal, reg: &Registry) -> ApiResult<()> {
    principal.check(reg, Need::Admin)?;
    match reg.kind {
        RegistryKind::Trash => {
            return Err(ApiError::bad_request(
                "the account's trash can cannot be deleted",
            ));
        }
        RegistryKind::Cache => {
            return Err(ApiError::bad_request(format!(
                "'{}' is the cache of a proxy registry: delete the proxy instead",
                reg.identifier
            )));
        }
        _ => {}
    }
    let cache = state.db.cache_of_proxy(&reg.id).await?;
    let mut ids = vec![reg.id.clone()];
    ids.extend(cache.iter().map(|c| c.id.clone()));
    for id in &ids {
        let users: Vec<String> = state
            .db
            .registries_including(id)
            .await?
            .into_iter()
            .filter(|u| *u != reg.identifier)
            .collect();
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "registry '{}' is included by {}; remove it there first",
                reg.identifier,
                users
                    .iter()
                    .map(|u| format!("'{u}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    for id in ids.iter().rev() {
        state.db.delete_registry(id).await?;
    }
    Ok(())
}

/// Moves one version, or all versions of a package, to the trash of the registry's scope
/// (`store::trash`). In the trash itself, deleting purges.
pub async fn trash_versions(
    state: &AppState,
    reg: &Registry,
    package: &str,
    version: Option<&str>,
) -> ApiResult<()> {
    let pkg = state
        .db
        .package_by_name(&reg.id, package)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "artifact '{package}' not found in registry '{}'",
                reg.identifier
            ))
        })?;
    let versions = match version {
        Some(v) => vec![state.db.version_by_name(&pkg.id, v).await?.ok_or_else(|| {
            ApiError::not_found(format!("version '{v}' of '{package}' not found"))
        })?],
        None => state.db.all_versions(&pkg.id).await?,
    };
    if reg.kind == RegistryKind::Trash {
        for v in &versions {
            state.db.purge_version(&pkg, v).await?;
        }
        return Ok(());
    }
    // The trash that already holds this package's deleted versions (one made before trash
    // registries were per scope, say), so that they stay in one place; else the scope's.
    let held = match state.db.deleted_package(reg, package).await? {
        Some(p) => state.db.registry_by_id(&p.registry_id).await?,
        None => None,
    };
    let trash = match held {
        Some(t) => t,
        None => {
            let scope = state
                .db
                .scope_by_path(&reg.scope_path)
                .await?
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("scope {} missing", reg.scope_path))
                })?;
            state.db.ensure_trash_can(&scope).await?
        }
    };
    for v in &versions {
        state.db.trash_version(reg, &pkg, v, &trash).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

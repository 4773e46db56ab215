//! Who is calling, and what they may do.
//!
//! Credentials are accepted in every form a client of either dialect or any package manager sends:
//! `x-api-key` (Harness), `Authorization: token` (GitFlic), `Authorization: Bearer`, `X-NuGet-ApiKey`,
//! and HTTP Basic with either user + password or any user name + API token as the password.
//! Roles (reader < deployer < admin) are bound to scopes and inherited down the scope tree.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::model::{Registry, Role};
use crate::store::Db;
use crate::store::auth::{TokenLimit, User};
use crate::store::scopes::{ancestor_paths, same_path};
use crate::throttle::Throttle;

pub const TOKEN_PREFIX: &str = "arca_";

#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    User {
        user: User,
        roles: Vec<(String, Role)>,
        /// The limits of the token the caller signed in with (none for a password).
        limit: TokenLimit,
    },
}

/// Whether `path` is `scope` or lies below it (scope paths compare case-insensitively).
pub fn within(path: &str, scope: &str) -> bool {
    same_path(path, scope)
        || (path.len() > scope.len()
            && path.is_char_boundary(scope.len())
            && same_path(&path[..scope.len()], scope)
            && path.as_bytes()[scope.len()] == b'/')
}

/// What an operation on a registry needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
    Delete,
    Admin,
}

impl Principal {
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Principal::Anonymous)
    }

    pub fn user_name(&self) -> Option<&str> {
        match self {
            Principal::User { user, .. } => Some(&user.name),
            Principal::Anonymous => None,
        }
    }

    /// The strongest role the caller holds at `scope_path`, counting bindings on every ancestor.
    /// A token's limits narrow this: nothing outside its scope, nothing above its role.
    pub fn role_at(&self, scope_path: &str) -> Option<Role> {
        let Principal::User { user, roles, limit } = self else {
            return None;
        };
        if let Some(scope) = &limit.scope
            && !within(scope_path, scope)
        {
            return None;
        }
        let held = if user.is_admin {
            Some(Role::Admin)
        } else {
            let ancestors = ancestor_paths(scope_path);
            roles
                .iter()
                .filter(|(p, _)| ancestors.iter().any(|a| same_path(a, p)))
                .map(|(_, r)| *r)
                .max()
        };
        match limit.role {
            Some(cap) => held.map(|r| r.min(cap)),
            None => held,
        }
    }

    /// The token limits the caller signed in with (none for anonymous callers and passwords).
    pub fn limit(&self) -> TokenLimit {
        match self {
            Principal::User { limit, .. } => limit.clone(),
            Principal::Anonymous => TokenLimit::default(),
        }
    }

    /// A global administrator signed in without a narrowed token.
    pub fn is_global_admin(&self) -> bool {
        matches!(self, Principal::User { user, limit, .. }
            if user.is_admin && limit.scope.is_none() && limit.role.is_none())
    }

    /// Fails with 401 for anonymous callers and 403 for callers without `role` at `scope_path`.
    pub fn require_scope(&self, scope_path: &str, role: Role) -> ApiResult<()> {
        if self.is_anonymous() {
            return Err(ApiError::Unauthenticated("authentication required".into()));
        }
        match self.role_at(scope_path) {
            Some(have) if have >= role => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "the {} role on '{scope_path}' is required",
                role.as_str()
            ))),
        }
    }

    pub fn can(&self, reg: &Registry, need: Need) -> bool {
        self.check(reg, need).is_ok()
    }

    pub fn check(&self, reg: &Registry, need: Need) -> ApiResult<()> {
        match need {
            Need::Read if reg.anonymous => Ok(()),
            Need::Read => self.require_scope(&reg.scope_path, Role::Reader),
            Need::Write => self.require_scope(&reg.scope_path, Role::Deployer),
            Need::Delete => {
                self.require_scope(&reg.scope_path, Role::Deployer)?;
                if reg.delete_allowed || self.role_at(&reg.scope_path) == Some(Role::Admin) {
                    Ok(())
                } else {
                    Err(ApiError::forbidden(format!(
                        "deleting packages is not allowed in registry '{}' (isDeletePackageAllowed is false)",
                        reg.identifier
                    )))
                }
            }
            Need::Admin => self.require_scope(&reg.scope_path, Role::Admin),
        }
    }
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn generate_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// Checks a password on the blocking pool, a bounded number at a time (see `crate::throttle`).
/// Without a hash (unknown user, user without a password) a dummy hash is checked instead, so
/// that the answer takes as long as for a known user.
async fn verify_password_bounded(throttle: &Throttle, password: &str, hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let (password, hash, real) = match hash {
        Some(h) => (password.to_string(), h.to_string(), true),
        None => {
            let dummy = DUMMY
                .get_or_init(|| hash_password("arca-dummy-password").unwrap_or_default())
                .clone();
            (password.to_string(), dummy, false)
        }
    };
    let Ok(_permit) = throttle.hashing.acquire().await else {
        return false;
    };
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    ok && real
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Credentials found in a request.
enum Credentials {
    Token(String),
    Basic { user: String, secret: String },
}

fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    // Token headers of the native clients: Harness, NuGet, and OneScript's opm.
    if let Some(v) = get("x-api-key")
        .or_else(|| get("x-nuget-apikey"))
        .or_else(|| get("oauth-token"))
    {
        return Some(Credentials::Token(v.to_string()));
    }
    let auth = get("authorization")?;
    let (scheme, rest) = auth.split_once(' ').unwrap_or(("", auth));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (user, secret) = text.split_once(':')?;
            Some(Credentials::Basic {
                user: user.to_string(),
                secret: secret.to_string(),
            })
        }
        "bearer" | "token" => Some(Credentials::Token(rest.trim().to_string())),
        // cargo sends the raw token with no scheme.
        _ => Some(Credentials::Token(auth.to_string())),
    }
}

/// Remembers successful password checks briefly: argon2 is deliberately slow, and native clients
/// send the same Basic credentials on every request. Process-local; nothing here is state a request
/// depends on for correctness.
#[derive(Default)]
pub struct PasswordCache {
    inner: Mutex<HashMap<String, (String, Instant)>>,
}

const PASSWORD_CACHE_TTL: Duration = Duration::from_secs(60);

impl PasswordCache {
    fn get(&self, key: &str) -> Option<String> {
        let map = self.inner.lock().ok()?;
        map.get(key)
            .filter(|(_, at)| at.elapsed() < PASSWORD_CACHE_TTL)
            .map(|(id, _)| id.clone())
    }
    fn put(&self, key: String, user_id: String) {
        if let Ok(mut map) = self.inner.lock() {
            if map.len() > 10_000 {
                map.retain(|_, (_, at)| at.elapsed() < PASSWORD_CACHE_TTL);
            }
            map.insert(key, (user_id, Instant::now()));
        }
    }
}

/// Resolves the caller. Missing credentials give `Anonymous`; wrong ones are a 401, held back
/// and eventually refused (429) as `crate::throttle` describes.
pub async fn authenticate(
    db: &Db,
    cache: &PasswordCache,
    throttle: &Throttle,
    headers: &HeaderMap,
) -> ApiResult<Principal> {
    let Some(creds) = credentials(headers) else {
        return Ok(Principal::Anonymous);
    };
    let addr = crate::throttle::client();
    if let Some(wait) = throttle.address_blocked(addr) {
        return Err(ApiError::TooManyRequests {
            message: "too many failed authentications from this address; retry later".into(),
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let (user, name) = match creds {
        Credentials::Token(t) => (db.user_by_token_hash(&hash_token(&t)).await?, None),
        Credentials::Basic { user, secret } => {
            let found = match db.user_by_token_hash(&hash_token(&secret)).await? {
                Some(found) => Some(found),
                None => {
                    let key = hash_token(&format!("{user}\0{secret}"));
                    match cache.get(&key) {
                        Some(id) => db
                            .user_by_id(&id)
                            .await?
                            .map(|u| (u, TokenLimit::default())),
                        None => {
                            let u = db.user_by_name(&user).await?;
                            let hash = u.as_ref().and_then(|u| u.password_hash.as_deref());
                            if verify_password_bounded(throttle, &secret, hash).await {
                                if let Some(u) = &u {
                                    cache.put(key, u.id.clone());
                                }
                                u.map(|u| (u, TokenLimit::default()))
                            } else {
                                None
                            }
                        }
                    }
                }
            };
            (found, Some(user))
        }
    };
    match user {
        Some((user, limit)) => {
            throttle.succeeded(addr, &user.name);
            let roles = db.roles_of(&user.id).await?;
            Ok(Principal::User { user, roles, limit })
        }
        None => {
            if let Some(hold) = throttle.failed(addr, name.as_deref()) {
                tokio::time::sleep(hold).await;
            }
            Err(ApiError::Unauthenticated("invalid credentials".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(is_admin: bool, roles: &[(&str, Role)], limit: TokenLimit) -> Principal {
        Principal::User {
            user: User {
                id: "u".into(),
                name: "u".into(),
                password_hash: None,
                is_admin,
                created_at: 0,
            },
            roles: roles.iter().map(|(p, r)| (p.to_string(), *r)).collect(),
            limit,
        }
    }

    #[test]
    fn within_is_by_path_segment() {
        assert!(within("acme", "acme"));
        assert!(within("acme/web", "acme"));
        assert!(!within("acmee", "acme"));
        assert!(!within("acme", "acme/web"));
    }

    #[test]
    fn token_limits_narrow_the_users_roles() {
        let scoped = TokenLimit {
            scope: Some("acme/web".into()),
            role: Some(Role::Reader),
            expires_at: None,
        };
        let p = user(false, &[("acme", Role::Deployer)], scoped.clone());
        assert_eq!(p.role_at("acme/web"), Some(Role::Reader));
        assert_eq!(p.role_at("acme/web/app"), Some(Role::Reader));
        assert_eq!(p.role_at("acme"), None);
        assert_eq!(p.role_at("acme/api"), None);
        // A global administrator's narrowed token is narrowed too, and no longer global.
        let admin = user(true, &[], scoped);
        assert_eq!(admin.role_at("acme/web"), Some(Role::Reader));
        assert_eq!(admin.role_at("other"), None);
        assert!(!admin.is_global_admin());
        assert!(user(true, &[], TokenLimit::default()).is_global_admin());
        // A limit never adds a role the user lacks.
        let p = user(
            false,
            &[("acme/web", Role::Reader)],
            TokenLimit {
                role: Some(Role::Admin),
                ..Default::default()
            },
        );
        assert_eq!(p.role_at("acme/web"), Some(Role::Reader));
        assert_eq!(p.role_at("acme"), None);
    }
}

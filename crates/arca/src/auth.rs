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
use crate::store::auth::User;
use crate::store::scopes::ancestor_paths;

pub const TOKEN_PREFIX: &str = "arca_";

#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    User {
        user: User,
        roles: Vec<(String, Role)>,
    },
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
    pub fn role_at(&self, scope_path: &str) -> Option<Role> {
        match self {
            Principal::Anonymous => None,
            Principal::User { user, .. } if user.is_admin => Some(Role::Admin),
            Principal::User { roles, .. } => {
                let ancestors = ancestor_paths(scope_path);
                roles
                    .iter()
                    .filter(|(p, _)| ancestors.iter().any(|a| a == p))
                    .map(|(_, r)| *r)
                    .max()
            }
        }
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

/// Resolves the caller. Missing credentials give `Anonymous`; wrong ones are a 401.
pub async fn authenticate(
    db: &Db,
    cache: &PasswordCache,
    headers: &HeaderMap,
) -> ApiResult<Principal> {
    let Some(creds) = credentials(headers) else {
        return Ok(Principal::Anonymous);
    };
    let user = match creds {
        Credentials::Token(t) => db.user_by_token_hash(&hash_token(&t)).await?,
        Credentials::Basic { user, secret } => {
            match db.user_by_token_hash(&hash_token(&secret)).await? {
                Some(u) => Some(u),
                None => {
                    let key = hash_token(&format!("{user}\0{secret}"));
                    match cache.get(&key) {
                        Some(id) => db.user_by_id(&id).await?,
                        None => match db.user_by_name(&user).await? {
                            Some(u)
                                if u.password_hash
                                    .as_deref()
                                    .is_some_and(|h| verify_password(&secret, h)) =>
                            {
                                cache.put(key, u.id.clone());
                                Some(u)
                            }
                            _ => None,
                        },
                    }
                }
            }
        }
    };
    match user {
        Some(user) => {
            let roles = db.roles_of(&user.id).await?;
            Ok(Principal::User { user, roles })
        }
        None => Err(ApiError::Unauthenticated("invalid credentials".into())),
    }
}

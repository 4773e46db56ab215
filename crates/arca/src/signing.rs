//! Per-registry OpenPGP keys for signed repository metadata (Debian `InRelease`/`Release.gpg`,
//! RPM `repomd.xml.asc`).
//!
//! A registry's key is generated the first time it is needed (an Ed25519 v4 key, which the gpg 2.2
//! behind apt and dnf verifies), stored armored in the metadata store so every server process
//! signs with the same key, and replaced by [`rotate`]. Parsed keys are cached per process by
//! their armored text, so a rotation through any process takes effect everywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::Password;

use crate::error::{ApiError, ApiResult};
use crate::model::Registry;
use crate::store::Db;

pub struct RepoKey {
    secret: SignedSecretKey,
    pub public_armored: String,
}

fn pgp_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("OpenPGP: {e}"))
}

impl RepoKey {
    fn generate(reg: &Registry) -> ApiResult<(String, String)> {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(format!(
                "Arca repository {}/{} <{}@{}.arca>",
                reg.account, reg.identifier, reg.identifier, reg.account
            ))
            .preferred_hash_algorithms([HashAlgorithm::Sha256].into_iter().collect());
        let key = params
            .build()
            .map_err(pgp_error)?
            .generate(rand::thread_rng())
            .map_err(pgp_error)?;
        let secret = key
            .to_armored_string(ArmorOptions::default())
            .map_err(pgp_error)?;
        let public = key
            .to_public_key()
            .to_armored_string(ArmorOptions::default())
            .map_err(pgp_error)?;
        Ok((secret, public))
    }

    /// `InRelease`: the text with a cleartext signature around it.
    pub fn clearsign(&self, text: &str) -> ApiResult<String> {
        CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &self.secret.primary_key,
            &Password::empty(),
        )
        .and_then(|m| m.to_armored_string(ArmorOptions::default()))
        .map_err(pgp_error)
    }

    /// An armored detached signature (`Release.gpg`, `repomd.xml.asc`).
    pub fn detached(&self, data: &[u8]) -> ApiResult<String> {
        DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.secret.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )
        .and_then(|s| s.to_armored_string(ArmorOptions::default()))
        .map_err(pgp_error)
    }
}

type Cache = Mutex<HashMap<String, Arc<RepoKey>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The registry's signing key, generated on first use.
pub async fn key_for(db: &Db, reg: &Registry) -> ApiResult<Arc<RepoKey>> {
    let (secret, public) = match db.registry_key(&reg.id).await? {
        Some(k) => k,
        None => {
            let (secret, public) = RepoKey::generate(reg)?;
            // Concurrent first uses: one insert wins, everybody reads the winner.
            db.insert_registry_key(&reg.id, &secret, &public).await?;
            db.registry_key(&reg.id)
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("signing key vanished")))?
        }
    };
    if let Some(k) = cache().lock().ok().and_then(|c| c.get(&secret).cloned()) {
        return Ok(k);
    }
    let (parsed, _) = SignedSecretKey::from_string(&secret).map_err(pgp_error)?;
    let key = Arc::new(RepoKey {
        secret: parsed,
        public_armored: public,
    });
    if let Ok(mut c) = cache().lock() {
        c.insert(secret, key.clone());
    }
    Ok(key)
}

/// Replaces the registry's key; metadata signed from now on uses the new one.
pub async fn rotate(db: &Db, reg: &Registry) -> ApiResult<Arc<RepoKey>> {
    let (secret, public) = RepoKey::generate(reg)?;
    db.replace_registry_key(&reg.id, &secret, &public).await?;
    key_for(db, reg).await
}

/// A version of the key usable as a cache stamp (changes on rotation).
pub fn stamp(key: &RepoKey) -> String {
    hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(key.public_armored.as_bytes())[..8])
}

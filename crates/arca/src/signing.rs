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

/// An upstream's armored public key (what a Debian/RPM proxy verifies relayed files with).
pub fn public_key(armored: &str) -> Result<pgp::composed::SignedPublicKey, String> {
    pgp::composed::SignedPublicKey::from_string(armored)
        .map(|(k, _)| k)
        .map_err(|e| format!("not an armored OpenPGP public key: {e}"))
}

/// Verifies a clear-signed document (`InRelease`) with `armored_key` (its primary key or a subkey).
pub fn verify_clearsigned(armored_key: &str, text: &str) -> Result<(), String> {
    let key = public_key(armored_key)?;
    let (msg, _) = CleartextSignedMessage::from_string(text)
        .map_err(|e| format!("not a clear-signed document: {e}"))?;
    if msg.verify(&key).is_ok() || key.public_subkeys.iter().any(|k| msg.verify(k).is_ok()) {
        return Ok(());
    }
    Err("the signature does not verify with the upstream's key".into())
}

/// Verifies an armored detached signature (`Release.gpg`, `repomd.xml.asc`) over `data`.
pub fn verify_detached(armored_key: &str, signature: &str, data: &[u8]) -> Result<(), String> {
    let key = public_key(armored_key)?;
    let (sig, _) = DetachedSignature::from_string(signature)
        .map_err(|e| format!("not an armored signature: {e}"))?;
    if sig.verify(&key, data).is_ok()
        || key
            .public_subkeys
            .iter()
            .any(|k| sig.verify(k, data).is_ok())
    {
        return Ok(());
    }
    Err("the signature does not verify with the upstream's key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn relayed_files_verify_with_the_upstreams_key_only() {
        let t = crate::testing::state().await;
        let reg = crate::testing::stored(
            &t.state,
            "acme",
            "up",
            crate::model::RegistryKind::Hosted,
            &[],
        )
        .await;
        let other = crate::testing::stored(
            &t.state,
            "acme",
            "other",
            crate::model::RegistryKind::Hosted,
            &[],
        )
        .await;
        let key = key_for(&t.state.db, &reg).await.unwrap();
        let stranger = key_for(&t.state.db, &other).await.unwrap();
        let signed = key.clearsign("Origin: up\nSuite: stable\n").unwrap();
        verify_clearsigned(&key.public_armored, &signed).unwrap();
        assert!(verify_clearsigned(&stranger.public_armored, &signed).is_err());
        let tampered = signed.replace("Suite: stable", "Suite: evil");
        assert!(verify_clearsigned(&key.public_armored, &tampered).is_err());
        let sig = key.detached(b"<repomd/>").unwrap();
        verify_detached(&key.public_armored, &sig, b"<repomd/>").unwrap();
        assert!(verify_detached(&key.public_armored, &sig, b"<repomd>x</repomd>").is_err());
        assert!(public_key("not a key").is_err());
    }
}

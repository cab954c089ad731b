//! Password hashing: argon2id with OWASP parameters, on the blocking pool,
//! with a cap on how many run at once (each takes 19 MiB and ~20 ms of a
//! core; unbounded, a burst of logins would starve everything else).

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier, Version};
use tokio::sync::Semaphore;

use crate::config::SecretString;

/// Human passwords: at least 8 characters (NIST SP 800-63B), at most 1024
/// bytes (longer inputs only cost hashing time).
pub fn validate_new_password(password: &str) -> Result<(), crate::i18n::Message> {
    if password.chars().count() < 8 {
        return Err(crate::i18n::Message::new("error-password-too-short"));
    }
    if password.len() > 1024 {
        return Err(crate::i18n::Message::new("error-password-too-long"));
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    // OWASP: argon2id, m = 19 MiB, t = 2, p = 1. These are constants the
    // crate accepts, so the fallback is never taken.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the blocking thread pool is gone")]
    Canceled,
}

/// Hashes a password now, on the current thread (CLI, startup).
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    argon2().hash_password(password.as_bytes()).map(|hash| hash.to_string()).map_err(|e| HashError::Hash(e.to_string()))
}

/// True when `password` matches the PHC string `hash`. A malformed hash
/// never matches.
pub fn verify_blocking(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Shared by all requests of an instance.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when the username is unknown, so that an unknown
    /// user costs the same time as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Result<Self, HashError> {
        let dummy = crate::secrets::random_token();
        Ok(Self { permits: Arc::new(Semaphore::new(concurrency.max(1))), dummy_hash: hash_blocking(&dummy)?.into() })
    }

    /// Verifies off the async workers. `hash: None` (unknown user, or an
    /// account without a password) still spends one verification.
    pub async fn verify(&self, password: SecretString, hash: Option<String>) -> Result<bool, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Canceled)?;
        let dummy = self.dummy_hash.clone();
        actix_web::web::block(move || match hash {
            Some(hash) => verify_blocking(password.expose(), &hash),
            None => {
                verify_blocking(password.expose(), &dummy);
                false
            }
        })
        .await
        .map_err(|_| HashError::Canceled)
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Canceled)?;
        actix_web::web::block(move || hash_blocking(password.expose())).await.map_err(|_| HashError::Canceled)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hash = hash_blocking("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_blocking("correct horse", &hash));
        assert!(!verify_blocking("wrong horse", &hash));
        assert!(!verify_blocking("correct horse", "not a hash"));
    }

    #[test]
    fn new_passwords_need_a_sane_length() {
        assert!(validate_new_password("short").is_err());
        assert!(validate_new_password("long enough").is_ok());
        assert!(validate_new_password(&"x".repeat(2000)).is_err());
    }
}

//! The master key and everything derived from it: encryption of secrets at
//! rest (AES-256-GCM), and keyed hashes (audit chain, CSRF tokens,
//! identifiers that must not be stored raw).

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::MasterKeySource;

type HmacSha256 = Hmac<Sha256>;

const SEALED_PREFIX: &str = "v1:";

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("cannot read the master key file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the master key {0} is not valid: expected 32 random bytes in base64 (44 characters)")]
    Malformed(String),
    #[error("cannot create the master key file {0}: {1}")]
    Create(String, std::io::Error),
    #[error(
        "the master key file {0} is missing but the database {1} already exists; \
         restore the key file (its secrets cannot be read without it)"
    )]
    MissingForExistingDatabase(String, String),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt a stored secret (wrong master key or corrupted data)")]
pub struct DecryptError;

/// Keys derived from the master key, one per purpose, so that no two uses
/// share key material.
#[derive(Clone)]
pub struct Secrets {
    aead: Aes256Gcm,
    audit_chain_key: [u8; 32],
    csrf_key: [u8; 32],
    identifier_key: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

fn derive(master: &[u8; 32], label: &str) -> [u8; 32] {
    hmac_sha256(master, label.as_bytes())
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl Secrets {
    pub fn from_master_key(master: &[u8; 32]) -> Self {
        let aead_key = derive(master, "wxfed/v1/aead");
        Self {
            aead: Aes256Gcm::new(&aead_key.into()),
            audit_chain_key: derive(master, "wxfed/v1/audit-chain"),
            csrf_key: derive(master, "wxfed/v1/csrf"),
            identifier_key: derive(master, "wxfed/v1/identifier"),
        }
    }

    /// Loads (or, for the SQLite default, creates) the master key.
    /// `database_file` is the SQLite file when the database is SQLite.
    pub fn load(source: &MasterKeySource, database_file: Option<&Path>) -> Result<Self, MasterKeyError> {
        let master = match source {
            MasterKeySource::Value(value) => {
                decode_master_key(value.expose()).ok_or_else(|| MasterKeyError::Malformed("WXFED_MASTER_KEY".into()))?
            }
            MasterKeySource::File(path) => read_key_file(path)?,
            MasterKeySource::GeneratedFile(path) => {
                if path.exists() {
                    read_key_file(path)?
                } else {
                    if let Some(db) = database_file.filter(|db| db.exists()) {
                        return Err(MasterKeyError::MissingForExistingDatabase(
                            path.display().to_string(),
                            db.display().to_string(),
                        ));
                    }
                    create_key_file(path)?
                }
            }
        };
        Ok(Self::from_master_key(&master))
    }

    /// Encrypts `plaintext`; `context` (e.g. "wechat_app_secret:wx123")
    /// is authenticated but not stored, so a ciphertext copied to another
    /// row or purpose does not decrypt.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload { msg: plaintext, aad: context.as_bytes() };
        // Encryption fails only for inputs over 64 GiB.
        let ciphertext = self.aead.encrypt(Nonce::from_slice(&nonce), payload).unwrap_or_default();
        let mut out = Vec::with_capacity(12 + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, DecryptError> {
        let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or(DecryptError)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| DecryptError)?;
        if bytes.len() < 12 + 16 {
            return Err(DecryptError);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.aead
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| DecryptError)
    }

    /// Key of the audit hash chain: without the master key nobody can
    /// recompute the chain after editing a row.
    pub fn audit_chain_key(&self) -> &[u8; 32] {
        &self.audit_chain_key
    }

    pub fn csrf_key(&self) -> &[u8; 32] {
        &self.csrf_key
    }

    /// Keyed hash of a personal identifier (OpenID, UnionID, username) for
    /// places that must correlate without storing it raw.
    pub fn identifier_hash(&self, kind: &str, value: &str) -> String {
        let mut message = Vec::with_capacity(kind.len() + 1 + value.len());
        message.extend_from_slice(kind.as_bytes());
        message.push(0);
        message.extend_from_slice(value.as_bytes());
        hex(&hmac_sha256(&self.identifier_key, &message))
    }
}

fn decode_master_key(text: &str) -> Option<[u8; 32]> {
    let bytes = STANDARD.decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

fn read_key_file(path: &Path) -> Result<[u8; 32], MasterKeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| MasterKeyError::Read(path.display().to_string(), e))?;
    decode_master_key(&text).ok_or_else(|| MasterKeyError::Malformed(path.display().to_string()))
}

/// A new random master key in its text form (base64 of 32 bytes).
pub fn generate_master_key() -> String {
    STANDARD.encode(random_bytes::<32>())
}

fn create_key_file(path: &Path) -> Result<[u8; 32], MasterKeyError> {
    let create_error = |e| MasterKeyError::Create(path.display().to_string(), e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The data dir holds the key and the SQLite database: owner only.
        crate::db::create_private_dir(dir).map_err(create_error)?;
    }
    let key = random_bytes::<32>();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(create_error)?;
    file.write_all(format!("{}\n", STANDARD.encode(key)).as_bytes()).map_err(create_error)?;
    file.sync_all().map_err(create_error)?;
    Ok(key)
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// 256 random bits as URL-safe base64: session ids, CSRF cookies, codes.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

/// Constant-time equality for secrets compared against user input.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_context() {
        let secrets = Secrets::from_master_key(&[7; 32]);
        let sealed = secrets.seal("ctx:a", b"hello");
        assert!(!sealed.contains("hello"));
        assert_eq!(secrets.open("ctx:a", &sealed).unwrap(), b"hello");
        assert!(secrets.open("ctx:b", &sealed).is_err());
        let other = Secrets::from_master_key(&[8; 32]);
        assert!(other.open("ctx:a", &sealed).is_err());
        assert!(secrets.open("ctx:a", "v1:AAAA").is_err());
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let secrets = Secrets::from_master_key(&[1; 32]);
        assert_ne!(secrets.seal("c", b"x"), secrets.seal("c", b"x"));
    }

    #[test]
    fn master_key_must_be_32_bytes_of_base64() {
        assert!(decode_master_key(&generate_master_key()).is_some());
        assert!(decode_master_key("c2hvcnQ=").is_none());
        assert!(decode_master_key("not base64 at all!").is_none());
    }
}

//! The provider's signing keys at run time: loaded from the database
//! (sealed with the master key), parsed once, kept in memory, and reloaded
//! periodically so that a rotation made by any instance or the CLI reaches
//! every instance within a minute without a restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{Duration, NaiveDateTime};

use super::signing::{SigningAlgorithm, SigningError, SigningKey};
use crate::accounts::manage::Actor;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn, signing_keys::SigningKeyRow};
use crate::secrets::Secrets;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] crate::db::DbError),
    #[error("signing key {kid}: {source}")]
    Signing { kid: String, source: SigningError },
    #[error("signing key {0} cannot be decrypted with this master key")]
    Sealed(String),
}

fn seal_context(kid: &str) -> String {
    format!("signing_key:{kid}")
}

/// The keys as loaded at one moment.
pub struct KeySet {
    /// The newest unretired key of each algorithm: what signs now.
    active: HashMap<SigningAlgorithm, SigningKey>,
    /// Every published key (active and retired-but-still-valid), by kid.
    by_kid: HashMap<String, SigningKey>,
    /// The JWKS document, serialized once per load.
    jwks: String,
}

impl KeySet {
    pub fn signing_key(&self, alg: SigningAlgorithm) -> Option<&SigningKey> {
        self.active.get(&alg)
    }

    pub fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        self.by_kid.get(kid)
    }

    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    fn from_rows(rows: Vec<SigningKeyRow>, secrets: &Secrets) -> Result<Self, KeyError> {
        let mut active = HashMap::new();
        let mut by_kid = HashMap::new();
        let mut jwks = Vec::new();
        // Rows come newest first: the first unretired key of an algorithm wins.
        for row in rows {
            let alg: SigningAlgorithm =
                row.alg.parse().map_err(|source| KeyError::Signing { kid: row.kid.clone(), source })?;
            let pem = secrets
                .open(&seal_context(&row.kid), &row.private_key)
                .map_err(|_| KeyError::Sealed(row.kid.clone()))?;
            let pem = String::from_utf8(pem).map_err(|_| KeyError::Sealed(row.kid.clone()))?;
            let key = SigningKey::from_pkcs8_pem(row.kid.clone(), alg, &pem)
                .map_err(|source| KeyError::Signing { kid: row.kid.clone(), source })?;
            jwks.push(serde_json::to_value(key.jwk()).unwrap_or_default());
            if row.retired_at.is_none() {
                active.entry(alg).or_insert_with(|| key.clone());
            }
            by_kid.insert(row.kid, key);
        }
        let jwks = serde_json::json!({ "keys": jwks }).to_string();
        Ok(Self { active, by_kid, jwks })
    }
}

/// Shared by all requests of an instance.
#[derive(Clone)]
pub struct KeyStore {
    current: Arc<RwLock<Arc<KeySet>>>,
}

impl KeyStore {
    /// Loads the keys, first generating one per algorithm where none is
    /// active (the first start of a new deployment).
    pub fn load_or_init(conn: &mut DbConn, secrets: &Secrets) -> Result<Self, KeyError> {
        db::write_transaction(conn, |conn| -> Result<(), KeyError> {
            let now = db::now();
            let rows = db::signing_keys::published(conn, now)?;
            for alg in SigningAlgorithm::ALL {
                let has_active = rows.iter().any(|r| r.alg == alg.as_str() && r.retired_at.is_none());
                if !has_active {
                    let kid = insert_new_key(conn, secrets, alg, now)?;
                    let event = AuditEvent::success(Action::SigningKeyCreated)
                        .with_actor("system")
                        .with_detail("kid", kid)
                        .with_detail("alg", alg.as_str());
                    audit::append(conn, secrets, &event)?;
                }
            }
            Ok(())
        })?;
        let set = load(conn, secrets)?;
        Ok(Self { current: Arc::new(RwLock::new(Arc::new(set))) })
    }

    /// The keys now (cheap: one Arc clone).
    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the keys from the database.
    pub fn reload(&self, conn: &mut DbConn, secrets: &Secrets) -> Result<(), KeyError> {
        let set = Arc::new(load(conn, secrets)?);
        match self.current.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }
}

fn load(conn: &mut DbConn, secrets: &Secrets) -> Result<KeySet, KeyError> {
    KeySet::from_rows(db::signing_keys::published(conn, db::now())?, secrets)
}

fn insert_new_key(
    conn: &mut DbConn,
    secrets: &Secrets,
    alg: SigningAlgorithm,
    now: NaiveDateTime,
) -> Result<String, KeyError> {
    let key = SigningKey::generate(alg).map_err(|source| KeyError::Signing { kid: String::new(), source })?;
    let pem = key.to_pkcs8_pem().map_err(|source| KeyError::Signing { kid: key.kid().to_owned(), source })?;
    let row = SigningKeyRow {
        kid: key.kid().to_owned(),
        alg: alg.as_str().to_owned(),
        private_key: secrets.seal(&seal_context(key.kid()), pem.as_bytes()),
        created_at: now,
        retired_at: None,
        publish_until: None,
    };
    db::signing_keys::insert(conn, &row)?;
    Ok(row.kid)
}

/// A key as `wxfed keys list` shows it.
#[derive(Debug, serde::Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub status: &'static str,
    pub created_at: String,
    pub retired_at: Option<String>,
    pub published_until: Option<String>,
}

pub fn list(conn: &mut DbConn) -> diesel::QueryResult<Vec<KeyInfo>> {
    let now = db::now();
    Ok(db::signing_keys::all(conn)?
        .into_iter()
        .map(|row| KeyInfo {
            status: match (row.retired_at, row.publish_until) {
                (None, _) => "active",
                (Some(_), Some(until)) if until > now => "retired (still published)",
                _ => "expired",
            },
            kid: row.kid,
            alg: row.alg,
            created_at: row.created_at.and_utc().to_rfc3339(),
            retired_at: row.retired_at.map(|t| t.and_utc().to_rfc3339()),
            published_until: row.publish_until.map(|t| t.and_utc().to_rfc3339()),
        })
        .collect())
}

/// Replaces the active key of every algorithm with a new one, which signs
/// at once. The old keys stay in the JWKS for `keep_published` (the
/// longest lifetime of a token they signed), then drop out.
pub fn rotate(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    keep_published: Duration,
) -> Result<Vec<String>, KeyError> {
    db::write_transaction(conn, |conn| {
        let now = db::now();
        let mut new_kids = Vec::new();
        for alg in SigningAlgorithm::ALL {
            let retired = db::signing_keys::retire_active(conn, alg.as_str(), now, now + keep_published)?;
            let kid = insert_new_key(conn, secrets, alg, now)?;
            let event = AuditEvent::success(Action::SigningKeyRotated)
                .with_actor(actor.0.clone())
                .with_detail("kid", kid.clone())
                .with_detail("alg", alg.as_str())
                .with_detail("retired", retired);
            audit::append(conn, secrets, &event)?;
            new_kids.push(kid);
        }
        Ok(new_kids)
    })
}

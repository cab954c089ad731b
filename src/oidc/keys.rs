//! The provider's signing keys at run time: loaded from the database
//! (sealed with the master key), parsed once, kept in memory, and reloaded
//! periodically so that a rotation made by any instance or the CLI reaches
//! every instance within a minute without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{Duration, NaiveDateTime};

use super::discovery::StaticDocument;
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

/// How long browsers and relying parties may cache the JWKS
/// (`Cache-Control: max-age`). It is part of the publication lead of a new
/// key ([`publication_lead`]), so every RP that honours it has refetched the
/// JWKS, and seen the new key, before any token is signed with it.
pub const JWKS_MAX_AGE_SECS: u64 = 60;

/// Extra time on top of reload interval and cache lifetime before a new
/// key signs: clock skew between instances, a slow reload, a slow fetch.
pub const PUBLICATION_MARGIN_SECS: u64 = 30;

/// How long a new key is published before it signs (issue 10.14): every
/// instance reloads its keys within `key_reload_secs`, then every RP cache
/// of the old JWKS expires within [`JWKS_MAX_AGE_SECS`], plus a margin.
pub fn publication_lead(key_reload_secs: u64) -> Duration {
    let secs = key_reload_secs.saturating_add(JWKS_MAX_AGE_SECS).saturating_add(PUBLICATION_MARGIN_SECS);
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// A key that may sign, from when to when.
struct Signer {
    key: SigningKey,
    /// `None`: signs as soon as it is loaded.
    not_before: Option<NaiveDateTime>,
    /// Set once a newer key of the same algorithm has (or will have) taken over.
    retired_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
}

impl Signer {
    fn signs_at(&self, now: NaiveDateTime) -> bool {
        self.not_before.is_none_or(|t| t <= now) && self.retired_at.is_none_or(|t| t > now)
    }
}

/// The keys as loaded at one moment.
pub struct KeySet {
    /// Per algorithm, every published key that signs now or will, newest
    /// first: a rotated-in key waits here, published, until its activation.
    signers: HashMap<SigningAlgorithm, Vec<Signer>>,
    /// Every published key (pending, active and retired-but-still-valid), by kid.
    by_kid: HashMap<String, SigningKey>,
    /// The JWKS document, serialized once per load.
    jwks: StaticDocument,
}

impl KeySet {
    /// The key that signs `alg` tokens now: the newest whose activation
    /// time has passed. Decided per call, not per load, so every instance
    /// switches at the same moment whatever its reload phase.
    pub fn signing_key(&self, alg: SigningAlgorithm) -> Option<&SigningKey> {
        let now = db::now();
        self.signers.get(&alg)?.iter().find(|s| s.signs_at(now)).map(|s| &s.key)
    }

    /// When each algorithm's signing key (the one signing now) was made:
    /// key age is a metric operators alert on.
    pub fn signing_key_creation_times(&self) -> Vec<(&'static str, NaiveDateTime)> {
        let now = db::now();
        self.signers
            .iter()
            .filter_map(|(alg, signers)| signers.iter().find(|s| s.signs_at(now)).map(|s| (alg.as_str(), s.created_at)))
            .collect()
    }

    pub fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        self.by_kid.get(kid)
    }

    /// The JWKS (RFC 7517 §5) as bytes, with its ETag.
    pub fn jwks(&self) -> &StaticDocument {
        &self.jwks
    }

    fn from_rows(rows: Vec<SigningKeyRow>, secrets: &Secrets) -> Result<Self, KeyError> {
        let mut signers: HashMap<SigningAlgorithm, Vec<Signer>> = HashMap::new();
        let mut by_kid = HashMap::new();
        let mut jwks = Vec::new();
        // Rows come newest first.
        for row in rows {
            let alg: SigningAlgorithm =
                row.alg.parse().map_err(|source| KeyError::Signing { kid: row.kid.clone(), source })?;
            let pem = secrets
                .open(&seal_context(&row.kid), &row.private_key)
                .map_err(|_| KeyError::Sealed(row.kid.clone()))?;
            let pem = String::from_utf8(pem).map_err(|_| KeyError::Sealed(row.kid.clone()))?;
            let key = SigningKey::from_pkcs8_pem(row.kid.clone(), alg, &pem)
                .map_err(|source| KeyError::Signing { kid: row.kid.clone(), source })?;
            jwks.push(key.jwk().clone());
            signers.entry(alg).or_default().push(Signer {
                key: key.clone(),
                not_before: row.not_before_signing,
                retired_at: row.retired_at,
                created_at: row.created_at,
            });
            by_kid.insert(row.kid, key);
        }
        #[derive(serde::Serialize)]
        struct Jwks {
            keys: Vec<super::signing::PublicJwk>,
        }
        let jwks = StaticDocument::new(
            serde_json::to_vec(&Jwks { keys: jwks })
                .map_err(|e| KeyError::Signing { kid: String::new(), source: SigningError::Json(e) })?,
        );
        Ok(Self { signers, by_kid, jwks })
    }
}

#[cfg(test)]
impl KeySet {
    /// Keys already at hand, each signing from now on (unit tests, which
    /// have no database to load them from).
    pub(crate) fn of(keys: Vec<SigningKey>) -> Self {
        let mut signers: HashMap<SigningAlgorithm, Vec<Signer>> = HashMap::new();
        let mut by_kid = HashMap::new();
        for key in keys {
            signers.entry(key.algorithm()).or_default().push(Signer {
                key: key.clone(),
                not_before: None,
                retired_at: None,
                created_at: db::now(),
            });
            by_kid.insert(key.kid().to_owned(), key);
        }
        Self { signers, by_kid, jwks: StaticDocument::new(b"{\"keys\":[]}".to_vec()) }
    }
}

/// Shared by all requests of an instance.
#[derive(Clone)]
pub struct KeyStore {
    current: Arc<RwLock<Arc<KeySet>>>,
    /// Held across a whole reload (read, then store): two reloads at once
    /// (the periodic one and one after a change) would otherwise race, and
    /// the one that read first could store its older keys last.
    reloading: Arc<Mutex<()>>,
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
                    // The first key of an algorithm signs at once: no RP can
                    // hold a token of this algorithm yet, so none can miss it.
                    let kid = insert_new_key(conn, secrets, alg, now, None)?;
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
        Ok(Self { current: Arc::new(RwLock::new(Arc::new(set))), reloading: Arc::new(Mutex::new(())) })
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
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
    not_before_signing: Option<NaiveDateTime>,
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
        not_before_signing,
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
    /// When it starts signing (published before then).
    pub signs_from: Option<String>,
    pub retired_at: Option<String>,
    pub published_until: Option<String>,
}

pub fn list(conn: &mut DbConn) -> diesel::QueryResult<Vec<KeyInfo>> {
    let now = db::now();
    let rfc3339 = |t: NaiveDateTime| t.and_utc().to_rfc3339();
    Ok(db::signing_keys::all(conn)?
        .into_iter()
        .map(|row| KeyInfo {
            status: match (row.not_before_signing, row.retired_at, row.publish_until) {
                (Some(from), None, _) if from > now => "published, not yet signing",
                (_, None, _) => "active",
                (_, Some(retired), _) if retired > now => "active (until its successor signs)",
                (_, Some(_), Some(until)) if until > now => "retired (still published)",
                _ => "expired",
            },
            kid: row.kid,
            alg: row.alg,
            created_at: rfc3339(row.created_at),
            signs_from: row.not_before_signing.map(rfc3339),
            retired_at: row.retired_at.map(rfc3339),
            published_until: row.publish_until.map(rfc3339),
        })
        .collect())
}

/// A key made by [`rotate`].
#[derive(Debug, serde::Serialize)]
pub struct RotatedKey {
    pub kid: String,
    pub alg: SigningAlgorithm,
    pub signs_from: String,
}

/// Adds a new key for each of `algs`, published at once but signing only
/// after `publication_lead` ([`publication_lead`]): until then the current
/// key keeps signing, so no relying party ever sees a token whose key its
/// cached JWKS lacks (issue 10.14). At that moment the current key retires;
/// it stays in the JWKS for `keep_published` more (the longest lifetime of
/// a token it signed), then drops out.
pub fn rotate(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    algs: &[SigningAlgorithm],
    publication_lead: Duration,
    keep_published: Duration,
) -> Result<Vec<RotatedKey>, KeyError> {
    db::write_transaction(conn, |conn| {
        let now = db::now();
        let signs_from = now + publication_lead;
        let mut rotated = Vec::new();
        for &alg in algs {
            // A key still waiting from an earlier rotation retires with the
            // current one: it never signs.
            let retired = db::signing_keys::retire_active(conn, alg.as_str(), signs_from, signs_from + keep_published)?;
            let kid = insert_new_key(conn, secrets, alg, now, Some(signs_from))?;
            let signs_from = signs_from.and_utc().to_rfc3339();
            let event = AuditEvent::success(Action::SigningKeyRotated)
                .with_actor(actor.0.clone())
                .with_detail("kid", kid.clone())
                .with_detail("alg", alg.as_str())
                .with_detail("retired", retired)
                .with_detail("signs_from", signs_from.clone());
            audit::append(conn, secrets, &event)?;
            rotated.push(RotatedKey { kid, alg, signs_from });
        }
        Ok(rotated)
    })
}

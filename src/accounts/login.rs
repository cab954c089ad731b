//! Password login: throttling, constant-cost verification, session
//! creation and the audit record, in that order.

use chrono::NaiveDateTime;

use super::password::HashError;
use super::sessions::Session;
use super::{Account, Username};
use crate::audit::{self, Action, AuditEvent};
use crate::config::SecretString;
use crate::db::{self, DbError};
use crate::http::RequestMeta;
use crate::state::AppState;

/// Why a login was refused. The page shows the same message for an
/// unknown user and a wrong password.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("incorrect username or password")]
    InvalidCredentials,
    #[error("the account is disabled")]
    Disabled,
    #[error("too many failed attempts")]
    Throttled { retry_after_secs: i64 },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

impl From<diesel::result::Error> for LoginError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

pub struct LoginSuccess {
    pub account: Account,
    /// The new session's cookie value.
    pub cookie_value: String,
    pub session: Session,
}

/// The account, and the new session's cookie value and session if one
/// was opened.
type Authenticated = (Account, Option<(String, Session)>);

/// What a password check should leave behind.
enum OnSuccess {
    /// A browser session (replacing the browser's previous one).
    OpenSession { previous_session: Option<String> },
    /// Nothing: the caller only needs to know who it is (an app linking a
    /// WeChat identity through the token endpoint).
    JustVerify,
}

/// Checks `username` / `password` with the same throttling, constant-cost
/// verification and audit as a browser login, without opening a session.
pub async fn verify_password(
    state: &AppState,
    username: &str,
    password: SecretString,
    meta: &RequestMeta,
) -> Result<Account, LoginError> {
    authenticate(state, username, password, OnSuccess::JustVerify, meta).await.map(|(account, _)| account)
}

struct Candidate {
    account: Option<(Account, Option<String>)>,
    blocked_until: Option<NaiveDateTime>,
}

/// Checks `username` / `password` and, when they match an active account,
/// opens a session (replacing `previous_session`, the browser's session
/// cookie value, if it had one).
pub async fn login_with_password(
    state: &AppState,
    username: &str,
    password: SecretString,
    previous_session: Option<String>,
    meta: &RequestMeta,
) -> Result<LoginSuccess, LoginError> {
    let (account, session) =
        authenticate(state, username, password, OnSuccess::OpenSession { previous_session }, meta).await?;
    let (cookie_value, session) = session.ok_or_else(|| LoginError::Db(DbError::Canceled))?;
    Ok(LoginSuccess { account, cookie_value, session })
}

async fn authenticate(
    state: &AppState,
    username: &str,
    password: SecretString,
    on_success: OnSuccess,
    meta: &RequestMeta,
) -> Result<Authenticated, LoginError> {
    let result = check_and_authenticate(state, username, password, on_success, meta).await;
    if !matches!(result, Err(LoginError::Db(_) | LoginError::Hash(_))) {
        crate::metrics::throttle("login", !matches!(result, Err(LoginError::Throttled { .. })));
    }
    result
}

async fn check_and_authenticate(
    state: &AppState,
    username: &str,
    password: SecretString,
    on_success: OnSuccess,
    meta: &RequestMeta,
) -> Result<Authenticated, LoginError> {
    let username_key = Username::parse(username).map(|u| u.key()).unwrap_or_default();
    let throttle = state.throttle_policy;
    let keys = throttle.login_keys(&username_key, &meta.ip);

    let candidate = {
        let (keys, username_key) = (keys.clone(), username_key.clone());
        db::run(&state.db, move |conn| -> Result<Candidate, LoginError> {
            let now = db::now();
            let blocked_until = throttle.blocked_until(conn, &keys.all(), now)?;
            let account = match db::accounts::find_by_username_key(conn, &username_key)? {
                Some(row) => {
                    let roles = db::accounts::roles_of(conn, &row.id)?;
                    let hash = row.password_hash.clone();
                    Some((Account::from_row(row, &roles), hash))
                }
                None => None,
            };
            Ok(Candidate { account, blocked_until })
        })
        .await?
    };
    let account_id = candidate.account.as_ref().map(|(a, _)| a.id.as_str().to_owned());

    if let Some(until) = candidate.blocked_until {
        let event = failure_event("throttled", account_id.as_deref(), meta);
        let secrets = state.secrets.clone();
        db::run(&state.db, move |conn| audit::record(conn, &secrets, &event).map_err(LoginError::from)).await?;
        let retry_after_secs = (until - db::now()).num_seconds().max(1);
        return Err(LoginError::Throttled { retry_after_secs });
    }

    let (account, hash) = match candidate.account {
        Some((account, hash)) => (Some(account), hash),
        None => (None, None),
    };
    let password_ok = state.passwords.verify(password, hash).await?;

    let secrets = state.secrets.clone();
    let sessions = state.session_policy;
    let meta_owned = meta.clone();
    // The transaction returns the refusal as a value, not an error: a
    // failed attempt's throttle count and audit record must commit too.
    db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<Result<Authenticated, LoginError>, LoginError> {
            let meta = &meta_owned;
            let now = db::now();
            if let Some(until) = throttle.lock(conn, &keys.all(), now)? {
                audit::append(conn, &secrets, &failure_event("throttled", account_id.as_deref(), meta))?;
                let retry_after_secs = (until - now).num_seconds().max(1);
                return Ok(Err(LoginError::Throttled { retry_after_secs }));
            }
            let account = match account {
                Some(account) if password_ok => account,
                other => {
                    for key in keys.all() {
                        throttle.record_failure(conn, key, now)?;
                    }
                    let reason = if other.is_some() { "bad_password" } else { "unknown_user" };
                    audit::append(conn, &secrets, &failure_event(reason, account_id.as_deref(), meta))?;
                    return Ok(Err(LoginError::InvalidCredentials));
                }
            };
            if !account.is_active() {
                audit::append(conn, &secrets, &failure_event("account_disabled", account_id.as_deref(), meta))?;
                return Ok(Err(LoginError::Disabled));
            }
            // The owner got in: their own slowdown and pair counter end;
            // the counters of other networks stay.
            throttle.clear(conn, &keys.account)?;
            throttle.clear(conn, &keys.user_ip)?;
            let mut event = AuditEvent::success(Action::LoginPassword)
                .with_actor(format!("account:{}", account.id))
                .with_account(account.id.as_str())
                .with_request(meta);
            let session = match &on_success {
                OnSuccess::OpenSession { previous_session } => {
                    // A fresh session id on every login (no fixation); the
                    // browser's previous session, if any, ends here.
                    super::sessions::end_previous(conn, previous_session.as_deref())?;
                    let (cookie_value, session) = sessions.create(conn, &account.id, &["pwd"], meta, now)?;
                    event = event.with_detail("session", &session.id_hash[..16]);
                    Some((cookie_value, session))
                }
                OnSuccess::JustVerify => None,
            };
            audit::append(conn, &secrets, &event)?;
            Ok(Ok((account, session)))
        })
    })
    .await?
}

fn failure_event(reason: &str, account_id: Option<&str>, meta: &RequestMeta) -> AuditEvent {
    let mut event = AuditEvent::failure(Action::LoginPassword, reason).with_request(meta);
    if let Some(id) = account_id {
        event = event.with_account(id);
    }
    event
}

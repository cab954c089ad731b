//! OpenID Connect Back-Channel Logout 1.0: when a session ends, every
//! client that holds tokens from it and registered a
//! `backchannel_logout_uri` is sent a signed logout token, server to
//! server.
//!
//! - **Who is told** (§2.5, §2.7): the clients whose grant carries the
//!   session's `sid` (the `sid` of their ID tokens), issued tokens (its
//!   code was redeemed) and has not expired. A client that was only given
//!   a code, and clients of other sessions, are not told.
//! - **Never lost, never blocking**: ending a session writes one row per
//!   client into the `backchannel_logouts` outbox in the same transaction
//!   (`enqueue`); a background task of every instance ([`run`]) delivers
//!   them. A crash after the commit loses nothing: the row waits.
//! - **Several instances**: a row is claimed for one attempt by a
//!   compare-and-set on its attempt count that also moves its next
//!   attempt past the delivery timeout (a lease), so exactly one instance
//!   sends each attempt, no lock is held while it does, and a claim left by
//!   a dead process lapses by itself.
//! - **Delivery** (§2.5): `POST` of `logout_token=<JWT>` as
//!   `application/x-www-form-urlencoded`, within
//!   `WXFED_BACKCHANNEL_LOGOUT_TIMEOUT_MS`, redirects not followed. A 2xx
//!   answer is success (§2.8 allows 200 and, from some frameworks, 204).
//!   A 5xx, 408, 429, a timeout or an unreachable receiver is retried after
//!   each wait of `WXFED_BACKCHANNEL_LOGOUT_RETRY_SECS`; another 4xx (the
//!   receiver refused the token, §2.8) or the last failure gives up.
//!   Delivered and given up both remove the row and are audited
//!   (`oidc.backchannel_logout_delivered` / `_failed`).
//! - **The token** (§2.4): signed like the client's ID tokens (its
//!   algorithm, the active key, `kid`), header `typ: logout+jwt`; claims
//!   `iss`, `aud` (the client id), `iat`, `exp` (two minutes), a fresh
//!   `jti` per attempt (a retried token is a new token, so a receiver that
//!   remembers `jti`s for replay does not refuse the retry), `events`,
//!   `sub` (what the ID token's `sub` was) and `sid`; never a `nonce`.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::QueryResult;
use serde::Serialize;

use super::signing::SigningAlgorithm;
use crate::accounts::sessions::public_sid;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn, DbError, backchannel::LogoutRow};
use crate::state::AppState;

/// §2.4: the `typ` header of a logout token (explicit typing, RFC 8725 §3.11).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";

/// §2.4: the one member of `events`.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token is checked on arrival; it needs no long life.
const LOGOUT_TOKEN_LIFETIME_SECS: i64 = 120;

/// How often each instance looks for due deliveries.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Rows claimed per round (delivered concurrently).
const BATCH: i64 = 32;

/// A claim outlives the delivery it covers by this much (then a row whose
/// claimant died is due again).
const LEASE_MARGIN_SECS: i64 = 30;

/// Queues a back-channel logout for every client holding tokens from the
/// sessions (given by their stored id hashes) that just ended. Returns how
/// many were queued. Run inside the transaction that ends the sessions.
pub fn enqueue(conn: &mut DbConn, session_hashes: &[String], cause: &str, now: NaiveDateTime) -> QueryResult<usize> {
    let sids: Vec<String> = session_hashes.iter().map(|hash| public_sid(hash)).collect();
    let mut queued = 0;
    for receiver in db::backchannel::receivers(conn, &sids, now)? {
        let (Some(subject), Some(sid)) = (receiver.subject, receiver.sid) else {
            continue;
        };
        db::backchannel::insert(
            conn,
            &LogoutRow {
                id: uuid::Uuid::new_v4().to_string(),
                client_id: receiver.client_id,
                subject,
                sid,
                cause: cause.to_owned(),
                created_at: now,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
            },
        )?;
        queued += 1;
    }
    Ok(queued)
}

/// §2.4.
#[derive(Debug, Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    events: serde_json::Value,
    sid: &'a str,
}

/// Signs a logout token for `row` with the client's ID token algorithm.
/// Returns the token and its `jti`.
fn logout_token(state: &AppState, row: &LogoutRow, alg: SigningAlgorithm) -> Result<(String, String), String> {
    let keys = state.keys.current();
    let key = keys.signing_key(alg).ok_or_else(|| format!("no active {} signing key", alg.as_str()))?;
    let iat = chrono::Utc::now().timestamp();
    let claims = LogoutClaims {
        iss: &state.settings.issuer,
        sub: &row.subject,
        aud: &row.client_id,
        iat,
        exp: iat + LOGOUT_TOKEN_LIFETIME_SECS,
        jti: uuid::Uuid::new_v4().to_string(),
        events: serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
        sid: &row.sid,
    };
    let token = key.sign_jwt(LOGOUT_TOKEN_TYP, &claims).map_err(|e| e.to_string())?;
    Ok((token, claims.jti))
}

/// One claimed attempt: the row (its `attempts` already counting this
/// one) and where to send it.
struct Claimed {
    row: LogoutRow,
    /// `None`: the client no longer has a back-channel logout URI.
    uri: Option<String>,
    alg: SigningAlgorithm,
}

fn claim_due(conn: &mut DbConn, lease: chrono::Duration) -> QueryResult<Vec<Claimed>> {
    let now = db::now();
    let mut claimed = Vec::new();
    for (id, attempts) in db::backchannel::due(conn, now, BATCH)? {
        let row = db::write_transaction(conn, |conn| db::backchannel::claim(conn, &id, attempts, now, now + lease))?;
        let Some(row) = row else {
            continue; // Another instance took it.
        };
        let (uri, alg) = match db::backchannel::logout_uri(conn, &row.client_id)? {
            Some((uri, alg)) => (uri, alg.parse().unwrap_or(SigningAlgorithm::Rs256)),
            None => (None, SigningAlgorithm::Rs256),
        };
        claimed.push(Claimed { row, uri, alg });
    }
    Ok(claimed)
}

/// How one attempt went.
enum Outcome {
    Delivered {
        jti: String,
        status: u16,
    },
    /// `retry`: the failure may pass (5xx, timeout, unreachable).
    Failed {
        reason: &'static str,
        error: String,
        retry: bool,
        jti: Option<String>,
    },
}

async fn attempt(state: &AppState, http: &reqwest::Client, claimed: &Claimed) -> Outcome {
    let Some(uri) = &claimed.uri else {
        let error = "the client has no backchannel_logout_uri any more".to_owned();
        return Outcome::Failed { reason: "unregistered", error, retry: false, jti: None };
    };
    let (token, jti) = match logout_token(state, &claimed.row, claimed.alg) {
        Ok(signed) => signed,
        Err(error) => return Outcome::Failed { reason: "signing", error, retry: true, jti: None },
    };
    match http.post(uri).form(&[("logout_token", token)]).send().await {
        Ok(response) if response.status().is_success() => {
            Outcome::Delivered { jti, status: response.status().as_u16() }
        }
        Ok(response) => {
            let status = response.status();
            let retry = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
            Outcome::Failed { reason: "http_status", error: format!("HTTP {}", status.as_u16()), retry, jti: Some(jti) }
        }
        Err(error) => {
            let reason = if error.is_timeout() { "timeout" } else { "unreachable" };
            Outcome::Failed { reason, error: error.without_url().to_string(), retry: true, jti: Some(jti) }
        }
    }
}

/// Records the outcome: delivered or given up (audited, row removed), or
/// the next attempt scheduled.
fn settle(
    conn: &mut DbConn,
    state: &AppState,
    claimed: &Claimed,
    outcome: &Outcome,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let row = &claimed.row;
    let retry_delays = &state.settings.backchannel_logout.retry_delays_secs;
    // `attempts` counts this one: after attempt n comes wait n (1-based).
    let next_wait = usize::try_from(row.attempts)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| retry_delays.get(i))
        .map(|secs| chrono::Duration::seconds(i64::try_from(*secs).unwrap_or(0)));
    db::write_transaction(conn, |conn| {
        if let (Outcome::Failed { error, retry: true, .. }, Some(wait)) = (outcome, next_wait) {
            db::backchannel::reschedule(conn, &row.id, now + wait, error)?;
            return Ok(());
        }
        let event = match outcome {
            Outcome::Delivered { jti, status } => AuditEvent::success(Action::BackchannelLogoutDelivered)
                .with_detail("jti", jti.clone())
                .with_detail("status", *status),
            Outcome::Failed { reason, error, jti, .. } => {
                let mut event =
                    AuditEvent::failure(Action::BackchannelLogoutFailed, reason).with_detail("error", error.clone());
                if let Some(jti) = jti {
                    event = event.with_detail("jti", jti.clone());
                }
                event
            }
        };
        // Only the holder of the claim gets here for this row; the delete
        // guards against recording one outcome twice all the same.
        if !db::backchannel::delete(conn, &row.id)? {
            return Ok(());
        }
        let mut event = event
            .with_actor("wxfed:backchannel")
            .with_client(row.client_id.clone())
            .with_account(row.subject.clone())
            .with_detail("sid", row.sid.clone())
            .with_detail("cause", row.cause.clone())
            .with_detail("attempts", row.attempts)
            .with_detail("queued_at", row.created_at.and_utc().to_rfc3339());
        if let Some(uri) = &claimed.uri {
            event = event.with_detail("uri", uri.clone());
        }
        audit::append(conn, &state.secrets, &event).map(|_| ())
    })
}

async fn deliver(state: AppState, http: reqwest::Client, claimed: Claimed) {
    let outcome = attempt(&state, &http, &claimed).await;
    match &outcome {
        Outcome::Delivered { .. } => {
            tracing::info!(client_id = %claimed.row.client_id, attempts = claimed.row.attempts, "back-channel logout delivered");
        }
        Outcome::Failed { reason, error, .. } => tracing::warn!(
            client_id = %claimed.row.client_id,
            attempts = claimed.row.attempts,
            reason,
            %error,
            "back-channel logout attempt failed"
        ),
    }
    let state2 = state.clone();
    let result =
        db::run(&state.db, move |conn| settle(conn, &state2, &claimed, &outcome, db::now()).map_err(DbError::from))
            .await;
    if let Err(error) = result {
        // The claim lapses and the attempt is made again.
        tracing::warn!(%error, "recording a back-channel logout outcome failed; it will be retried");
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A logout URI that redirects is misconfigured; following it would
        // send the token somewhere the client did not register.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wxfed/", env!("CARGO_PKG_VERSION"), " (backchannel logout)"))
        .build()
}

/// One round: claim what is due, deliver it all concurrently, record each
/// outcome. Returns how many attempts were made.
pub async fn round(state: &AppState, http: &reqwest::Client) -> usize {
    let timeout_ms = i64::try_from(state.settings.backchannel_logout.timeout_ms).unwrap_or(5_000);
    let lease = chrono::Duration::milliseconds(timeout_ms) + chrono::Duration::seconds(LEASE_MARGIN_SECS);
    let claimed = match db::run(&state.db, move |conn| claim_due(conn, lease).map_err(DbError::from)).await {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::warn!(%error, "looking for back-channel logouts to deliver failed; will retry");
            return 0;
        }
    };
    let count = claimed.len();
    let tasks: Vec<_> =
        claimed.into_iter().map(|c| actix_web::rt::spawn(deliver(state.clone(), http.clone(), c))).collect();
    for task in tasks {
        let _ = task.await;
    }
    count
}

/// The delivery task every instance runs.
pub async fn run(state: AppState) {
    let timeout = Duration::from_millis(state.settings.backchannel_logout.timeout_ms);
    let http = match http_client(timeout) {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(error = %error.without_url(), "no HTTP client for back-channel logout; none is delivered");
            return;
        }
    };
    let mut interval = tokio::time::interval(INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        round(&state, &http).await;
    }
}

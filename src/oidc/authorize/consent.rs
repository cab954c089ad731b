//! The consent part of an authorization (OIDC Core §3.1.2.4): whether the
//! person already agreed to every requested scope for this client, and
//! recording their answer (widening, never narrowing, what was agreed).
//! The pages that ask and list consents are in `oidc::consent`.

use super::request::AuthorizationRequest;
use crate::accounts::Account;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbError, consents::ConsentRow};
use crate::http::RequestMeta;
use crate::state::AppState;

/// True when the stored consent covers every requested scope.
pub async fn consent_covers(
    state: &AppState,
    request: &AuthorizationRequest,
    account: &Account,
) -> Result<bool, DbError> {
    let (account_id, client_id) = (account.id.as_str().to_owned(), request.client.client_id.clone());
    let existing =
        db::run(&state.db, move |conn| db::consents::find(conn, &account_id, &client_id).map_err(DbError::from))
            .await?;
    Ok(existing.is_some_and(|consent| request.scopes.iter().all(|s| consent.scope.split(' ').any(|c| c == s))))
}

/// Records the person's answer and its audit event, in one transaction.
pub async fn record_decision(
    state: &AppState,
    meta: &RequestMeta,
    request: &AuthorizationRequest,
    account: &Account,
    allowed: bool,
) -> Result<(), DbError> {
    let (secrets, client_id, account_id) =
        (state.secrets.clone(), request.client.client_id.clone(), account.id.as_str().to_owned());
    let scope = request.scopes.join(" ");
    let event_meta = meta.clone();
    db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| {
            let event = if allowed {
                // Widen, never narrow, what was agreed before.
                let mut scopes: Vec<String> = db::consents::find(conn, &account_id, &client_id)?
                    .map(|c| c.scope.split(' ').map(str::to_owned).collect())
                    .unwrap_or_default();
                for s in scope.split(' ').filter(|s| !s.is_empty()) {
                    if !scopes.iter().any(|x| x == s) {
                        scopes.push(s.to_owned());
                    }
                }
                let row = ConsentRow {
                    account_id: account_id.clone(),
                    client_id: client_id.clone(),
                    scope: scopes.join(" "),
                    granted_at: db::now(),
                };
                db::consents::save(conn, &row)?;
                AuditEvent::success(Action::ConsentGiven).with_detail("scope", scope.clone())
            } else {
                AuditEvent::failure(Action::ConsentGiven, "denied").with_detail("scope", scope.clone())
            };
            let event = event
                .with_actor(format!("account:{account_id}"))
                .with_account(account_id.clone())
                .with_client(client_id.clone())
                .with_request(&event_meta);
            audit::append(conn, &secrets, &event)?;
            Ok::<_, DbError>(())
        })
    })
    .await
}

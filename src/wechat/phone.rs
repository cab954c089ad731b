//! Phone numbers WeChat verified (getPhoneNumber), and the `auto-phone`
//! linking policy built on them.

use super::FlowError;
use super::app_tokens;
use crate::accounts::Account;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn, wechat::IdentityRow};
use crate::http::RequestMeta;
use crate::state::AppState;

/// Asks WeChat for the phone number behind a getPhoneNumber code (with the
/// mini-program's shared access token) and records it on the identity as
/// verified. Returns the identity as updated.
pub async fn verify(
    state: &AppState,
    meta: &RequestMeta,
    appid: &str,
    phone_code: &str,
    identity_id: &str,
) -> Result<IdentityRow, FlowError> {
    // The OpenID this identity has in the mini-program the phone code
    // comes from: WeChat checks the code belongs to it.
    let (lookup_identity, lookup_app) = (identity_id.to_owned(), appid.to_owned());
    let openid = db::run(&state.db, move |conn| {
        db::wechat::openid_of_identity_in_app(conn, &lookup_identity, &lookup_app).map_err(FlowError::from)
    })
    .await?
    .ok_or_else(|| FlowError::Routing("a phone code needs the person's own login in this mini-program".into()))?;
    let wechat = state.wechat.clone();
    let code = phone_code.to_owned();
    let info = app_tokens::with_access_token(state, appid, |token| {
        let (wechat, code, openid) = (wechat.clone(), code.clone(), openid.clone());
        async move { wechat.phone_number(&token, &code, &openid).await }
    })
    .await?;
    let phone = info.e164();
    let (secrets, meta, identity_id, appid) =
        (state.secrets.clone(), meta.clone(), identity_id.to_owned(), appid.to_owned());
    db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<IdentityRow, FlowError> {
            db::wechat::set_identity_phone(conn, &identity_id, &phone, db::now())?;
            let event = AuditEvent::success(Action::PhoneVerified)
                .with_actor("system")
                .with_request(&meta)
                .with_detail("identity", identity_id.clone())
                .with_detail("appid", appid.clone());
            audit::append(conn, &secrets, &event)?;
            db::wechat::find_identity(conn, &identity_id)?
                .ok_or_else(|| super::identities::IdentityError::NotFound.into())
        })
    })
    .await
}

/// The one active account whose *verified* phone equals the identity's
/// WeChat-verified phone. None when there is no match, or more than one
/// (ambiguity never links).
pub fn unique_account_with_phone(conn: &mut DbConn, identity: &IdentityRow) -> diesel::QueryResult<Option<Account>> {
    let (Some(phone), Some(_)) = (&identity.phone, identity.phone_verified_at) else {
        return Ok(None);
    };
    let mut matches = db::accounts::with_verified_phone(conn, phone, 2)?;
    if matches.len() != 1 {
        return Ok(None);
    }
    let row = matches.remove(0);
    let roles = db::accounts::roles_of(conn, &row.id)?;
    Ok(Some(Account::from_row(row, &roles)))
}

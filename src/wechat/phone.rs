//! Phone numbers WeChat verified (getPhoneNumber), and the `auto-phone`
//! linking policy built on them.

use crate::accounts::Account;
use crate::db::{self, DbConn, wechat::IdentityRow};

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

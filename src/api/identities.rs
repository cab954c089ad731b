//! `/api/admin/identities`: WeChat identities: search, read, link, unlink,
//! pre-provision (`wechat::identities`), and the merge of two accounts
//! (`accounts::merge`), with the console's rules and required reasons.

use serde::Serialize;
use utoipa::ToSchema;

use super::{mask, rfc3339_naive};
use crate::db::{self, DbError};

/// One (appid, OpenID) of an identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenIdView {
    pub appid: String,
    /// The app's name, when it is registered.
    pub app_name: Option<String>,
    /// `mini_program`, `official_account`, `website`, `mobile_app`.
    pub app_kind: Option<String>,
    /// Masked unless `reveal=true`.
    pub openid: String,
    #[schema(format = DateTime)]
    pub first_seen: String,
    #[schema(format = DateTime)]
    pub last_login: String,
}

/// The OpenIDs of an identity, masked unless `reveal`.
pub fn openid_views(conn: &mut db::DbConn, identity_id: &str, reveal: bool) -> Result<Vec<OpenIdView>, DbError> {
    let apps = crate::wechat::apps::list(conn)?;
    Ok(db::wechat::openids_of(conn, identity_id)?
        .into_iter()
        .map(|o| {
            let app = apps.iter().find(|a| a.appid == o.appid);
            OpenIdView {
                app_name: app.map(|a| a.name.clone()),
                app_kind: app.map(|a| a.kind.as_str().to_owned()),
                openid: if reveal { o.openid } else { mask(&o.openid) },
                first_seen: rfc3339_naive(o.created_at),
                last_login: rfc3339_naive(o.last_login_at),
                appid: o.appid,
            }
        })
        .collect())
}

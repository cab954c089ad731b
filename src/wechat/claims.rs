//! The `wechat` scope's claims: the person's UnionID and, for a client
//! tied to a WeChat app, their OpenID in that app.

use serde::{Deserialize, Serialize};

use crate::db::{self, DbConn};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WechatClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
}

/// The claims for `account_id`, seen by a client of `client_app` (if any).
pub fn for_account(conn: &mut DbConn, account_id: &str, client_app: Option<&str>) -> diesel::QueryResult<WechatClaims> {
    let identities = db::wechat::identities_of_account(conn, account_id)?;
    if let Some(appid) = client_app
        && let Some(app) = db::wechat::find_app(conn, appid)?
    {
        // The identity on the app's platform (UnionID-keyed), or the one
        // known only through this app.
        let keys = [app.open_platform.as_ref().map(|p| format!("op:{p}")), Some(format!("app:{appid}"))];
        for identity in &identities {
            if keys.iter().flatten().any(|k| *k == identity.platform_key) {
                let openid = db::wechat::openid_of_identity_in_app(conn, &identity.id, appid)?;
                return Ok(WechatClaims { unionid: identity.unionid.clone(), openid });
            }
        }
        return Ok(WechatClaims::default());
    }
    Ok(WechatClaims { unionid: identities.iter().find_map(|i| i.unionid.clone()), openid: None })
}

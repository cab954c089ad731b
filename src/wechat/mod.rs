//! The WeChat side of wxfed: the API client, registered apps, identities
//! (UnionID / OpenID, merges, linking), shared app access tokens, and the
//! browser login with WeChat.

pub mod app_tokens;
pub mod apps;
pub mod claims;
pub mod client;
pub mod codes;
pub mod host_codes;
pub mod identities;
pub mod linking;
pub mod phone;
pub mod pseudonyms;

use crate::db::DbError;

/// Everything that can stop a WeChat flow, for handlers to turn into a
/// page or an RFC error.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Wechat(#[from] client::WechatError),
    #[error(transparent)]
    App(#[from] apps::AppError),
    #[error(transparent)]
    Identity(#[from] identities::IdentityError),
    #[error(transparent)]
    Manage(#[from] crate::accounts::manage::ManageError),
    /// A routed code names an app that cannot take it.
    #[error("{0}")]
    Routing(String),
    /// The routed app gave no UnionID: it is not in the requesting app's
    /// Open Platform, so the person cannot be matched.
    #[error("the routed app returned no UnionID shared with this app (it is not bound to the same Open Platform)")]
    NoUnionid,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for FlowError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

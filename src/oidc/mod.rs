//! The OpenID Provider: the protocol side of wxfed. It knows the RFCs and
//! never writes SQL; storage is reached through `crate::db`.

pub mod authorize;
pub mod backchannel;
pub mod client_auth;
pub mod clients;
pub mod consent;
pub mod discovery;
pub mod end_session;
pub mod error;
pub mod introspect;
pub mod keys;
pub mod params;
pub mod revoke;
pub mod signing;
pub mod token;
pub mod tokens;
pub mod userinfo;

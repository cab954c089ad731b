//! The OpenID Provider: the protocol side of wxfed. It knows the RFCs and
//! never writes SQL; storage is reached through `crate::db`.

pub mod signing;

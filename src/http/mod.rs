//! actix glue: request context, cookies, CSRF, the current session,
//! rendering. Knows HTTP; decides nothing about identity.

pub mod cookies;
pub mod csrf;
pub mod middleware;
pub mod render;
pub mod session;

mod request_meta;
pub use request_meta::{RequestId, RequestMeta};

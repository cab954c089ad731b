//! actix glue: request context, cookies, CSRF, the current session,
//! extractors, the path list, rendering. Knows HTTP; decides nothing
//! about identity.

pub mod cookies;
pub mod csrf;
pub mod endpoint;
pub mod extract;
pub mod middleware;
pub mod paths;
pub mod render;
pub mod session;

mod request_meta;
pub use request_meta::{RequestId, RequestMeta};

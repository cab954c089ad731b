//! The WeChat-facing HTTP surfaces: the browser login, the host-app code
//! endpoint (FinClip scheme 1) and the jscode2session facade. They speak
//! HTTP (pages, RFC 6750, WeChat's wire format); the rules they apply live
//! in `crate::wechat` (identities, linking, codes, host codes).

pub mod browser_login;
pub mod facade;
pub mod host_codes;

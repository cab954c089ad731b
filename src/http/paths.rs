//! Every URL wxfed serves, in one place: the route table in `startup.rs`,
//! discovery metadata, redirects and templates' links all use these, so a
//! path is spelled once.

// Health and assets.
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const STATIC_FILE: &str = "/static/{name}";

// Browser pages.
pub const HOME: &str = "/";
/// The language switch (`{tag}`: zh-CN or en).
pub const LANG: &str = "/lang/{tag}";
pub const LOGIN: &str = "/login";
pub const LOGOUT: &str = "/logout";
pub const CONSENTS: &str = "/consents";
pub const CONSENTS_WITHDRAW: &str = "/consents/withdraw";
/// Signed audit checkpoints and the audit public keys (issue 9 item 4).
pub const AUDIT_CHECKPOINTS_JSON: &str = "/audit/checkpoints.json";

// OpenID Provider endpoints (relative to the issuer; discovery advertises them).
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/jwks.json";
/// Prometheus metrics, served only on `WXFED_METRICS_BIND`.
pub const METRICS: &str = "/metrics";
pub const AUTHORIZE: &str = "/authorize";
pub const AUTHORIZE_CONSENT: &str = "/authorize/consent";
pub const TOKEN: &str = "/token";
pub const USERINFO: &str = "/userinfo";
pub const REVOKE: &str = "/revoke";
pub const INTROSPECT: &str = "/introspect";
pub const END_SESSION: &str = "/end-session";
pub const END_SESSION_CONFIRM: &str = "/end-session/confirm";

// WeChat surfaces.
pub const WECHAT_LOGIN: &str = "/login/wechat";
pub const WECHAT_LOGIN_CALLBACK: &str = "/login/wechat/callback";
pub const WECHAT_LOGIN_BIND: &str = "/login/wechat/bind";
pub const HOST_WX_LOGIN_CODE: &str = "/api/host/wx-login-code";
pub const JSCODE2SESSION: &str = "/sns/jscode2session";

// `wxfed demo` only (added to the route table by `crate::demo::routes`).
/// The walk-through page with a button per flow.
pub const DEMO: &str = "/demo";
/// A flow the demo performs on the server (as a mini-program, host app or auditor script would).
pub const DEMO_FLOW: &str = "/demo/flows/{flow}";
/// The sample relying party: starts an authorization code + PKCE login.
pub const DEMO_RP_LOGIN: &str = "/demo/rp/login";
/// The sample relying party's redirect URI.
pub const DEMO_RP_CALLBACK: &str = "/demo/rp/callback";

// The management API (issue 12 §3): src/api, listed in api::routes.
pub const API_ADMIN_OPENAPI: &str = "/api/admin/openapi.json";
pub const API_ADMIN_ACCOUNTS: &str = "/api/admin/accounts";
pub const API_ADMIN_ACCOUNT: &str = "/api/admin/accounts/{id}";
pub const API_ADMIN_ACCOUNT_PROFILE: &str = "/api/admin/accounts/{id}/profile";
pub const API_ADMIN_ACCOUNT_STATUS: &str = "/api/admin/accounts/{id}/status";
pub const API_ADMIN_ACCOUNT_ROLES: &str = "/api/admin/accounts/{id}/roles";
pub const API_ADMIN_ACCOUNT_PASSWORD: &str = "/api/admin/accounts/{id}/password";
pub const API_ADMIN_ACCOUNT_SESSIONS_REVOKE: &str = "/api/admin/accounts/{id}/sessions/revoke";
pub const API_ADMIN_ACCOUNT_MERGE: &str = "/api/admin/accounts/{id}/merge";
pub const API_ADMIN_IDENTITIES: &str = "/api/admin/identities";
pub const API_ADMIN_IDENTITY: &str = "/api/admin/identities/{id}";
pub const API_ADMIN_IDENTITY_LINK: &str = "/api/admin/identities/{id}/link";
pub const API_ADMIN_IDENTITY_UNLINK: &str = "/api/admin/identities/{id}/unlink";
/// Every other path under /api/admin: a problem-details 404.
pub const API_ADMIN_ANY: &str = "/api/admin/{tail:.*}";

//! The one list of settings (issue 12 §7): the parser accepts exactly these
//! names, `docs/configuration.md` is generated from it (`wxfed config
//! reference`) and `wxfed config check` prints and redacts by it. A field
//! added to the parser without an entry here is refused as unknown, and a
//! unit test fails.

use crate::audit::Category;

/// How a value must be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Printed as it is.
    Plain,
    /// Never printed: only whether it is set.
    Secret,
    /// A URL (or a file path) whose password, and query values that look
    /// like credentials, are never printed.
    UrlCredentials,
}

/// One setting (or, for a pattern, one family of settings).
#[derive(Debug, Clone, Copy)]
pub struct SettingDef {
    /// The key in the TOML file; the variable is `WXFED_` + the key in
    /// upper case. A pattern holds `<category>` (one setting per audit
    /// category).
    pub key: &'static str,
    pub group: &'static str,
    /// What the value looks like.
    pub kind: &'static str,
    /// The default in words, where it is not a plain value (unset, or
    /// computed at startup); otherwise the parser's default is shown.
    pub default_note: Option<&'static str>,
    pub secrecy: Secrecy,
    /// English, one or two sentences.
    pub description: &'static str,
}

/// The groups, in the order the reference lists them.
pub const GROUPS: &[&str] = &[
    "Server",
    "Database",
    "Secrets",
    "Logging",
    "Sessions and login throttling",
    "Tokens and signing keys",
    "Audit trail",
    "WeChat",
    "Pages and console",
];

const PATTERN: &str = "<category>";

impl SettingDef {
    pub fn is_pattern(&self) -> bool {
        self.key.contains(PATTERN)
    }

    /// The variable name (a pattern keeps `<CATEGORY>`).
    pub fn env_name(&self) -> String {
        format!("WXFED_{}", self.key.to_uppercase())
    }

    /// Every concrete key this entry stands for.
    pub fn keys(&self) -> Vec<String> {
        if self.is_pattern() {
            Category::ALL.iter().map(|c| self.key.replace(PATTERN, c.as_str())).collect()
        } else {
            vec![self.key.to_owned()]
        }
    }
}

/// Every concrete key, in table order.
pub fn all_keys() -> Vec<(String, &'static SettingDef)> {
    SETTINGS.iter().flat_map(|def| def.keys().into_iter().map(move |key| (key, def))).collect()
}

/// The entry for a concrete key.
pub fn find(key: &str) -> Option<&'static SettingDef> {
    SETTINGS.iter().find(|def| def.keys().iter().any(|k| k == key))
}

macro_rules! setting {
    ($key:literal, $group:literal, $kind:literal, $default:expr, $secrecy:ident, $description:literal) => {
        SettingDef {
            key: $key,
            group: $group,
            kind: $kind,
            default_note: $default,
            secrecy: Secrecy::$secrecy,
            description: $description,
        }
    };
}

pub const SETTINGS: &[SettingDef] = &[
    // Server
    setting!("bind", "Server", "address (IP:port)", None, Plain, "Listen address of the public HTTP server."),
    setting!(
        "issuer",
        "Server",
        "URL",
        Some("`http://<bind>`"),
        UrlCredentials,
        "Public base URL, byte-exact in tokens (`iss`). https turns on `Secure` + `__Host-` cookies and HSTS; \
         plain http is for development."
    ),
    setting!(
        "metrics_bind",
        "Server",
        "address (IP:port)",
        Some("unset (off)"),
        Plain,
        "Address of the Prometheus endpoint `GET /metrics`, apart from the public listener."
    ),
    setting!("workers", "Server", "integer", Some("CPU cores"), Plain, "HTTP worker threads."),
    setting!(
        "shutdown_timeout_secs",
        "Server",
        "integer (seconds)",
        None,
        Plain,
        "On SIGTERM, how long in-flight requests may finish."
    ),
    setting!(
        "client_request_timeout_ms",
        "Server",
        "integer (milliseconds, 100..120000)",
        None,
        Plain,
        "Time a client has to send the request head (`408` after)."
    ),
    setting!(
        "request_body_timeout_ms",
        "Server",
        "integer (milliseconds, 100..600000)",
        None,
        Plain,
        "Time a client has to send a started request body (`408` and the connection closed after)."
    ),
    setting!(
        "max_connections_per_ip",
        "Server",
        "integer (at least 1)",
        None,
        Plain,
        "Open connections per client IP (`429` beyond; trusted proxies are exempt)."
    ),
    setting!(
        "trusted_proxies",
        "Server",
        "comma-separated IP addresses",
        Some("none"),
        Plain,
        "Peers whose `X-Forwarded-For` is believed (a load balancer in front of wxfed). Throttling counts the \
         client address they forward."
    ),
    // Database
    setting!(
        "data_dir",
        "Database",
        "path",
        None,
        Plain,
        "Where the SQLite default keeps its files (`wxfed.db`, the generated `master.key`)."
    ),
    setting!(
        "database_url",
        "Database",
        "URL",
        Some("`sqlite://<data dir>/wxfed.db`"),
        UrlCredentials,
        "`sqlite://PATH` or `postgres://…`; any other scheme is an error. Its password is never printed."
    ),
    setting!(
        "database_url_file",
        "Database",
        "path",
        Some("unset"),
        Plain,
        "A file holding the database URL (instead of `WXFED_DATABASE_URL`; a mounted secret)."
    ),
    setting!(
        "database_pool_size",
        "Database",
        "integer (at least 1)",
        None,
        Plain,
        "Connections per instance at most; on PostgreSQL clamped (with a warning) to half of `max_connections` \
         minus the superuser slots. The CLI uses 2."
    ),
    setting!(
        "database_pool_min_idle",
        "Database",
        "integer",
        None,
        Plain,
        "Connections opened at startup and kept while idle (at most the pool size)."
    ),
    setting!(
        "database_checkout_timeout_ms",
        "Database",
        "integer (milliseconds, 100..60000)",
        None,
        Plain,
        "Longest wait for a free connection; then `503` + `Retry-After`."
    ),
    setting!(
        "database_request_timeout_ms",
        "Database",
        "integer (milliseconds, 100..600000)",
        None,
        Plain,
        "Longest a request's database work may take, connection wait included; then `503` + `Retry-After` \
         (a frozen PostgreSQL fires no server-side timeout). The work itself still finishes or rolls back \
         whole. Background jobs and imports are not bound by it."
    ),
    setting!(
        "database_connect_timeout_secs",
        "Database",
        "integer (seconds, 1..60)",
        None,
        Plain,
        "PostgreSQL connect timeout (libpq `connect_timeout`)."
    ),
    setting!(
        "database_lock_timeout_ms",
        "Database",
        "integer (milliseconds)",
        None,
        Plain,
        "PostgreSQL `lock_timeout` of every connection (`0`: none)."
    ),
    setting!(
        "database_statement_timeout_ms",
        "Database",
        "integer (milliseconds)",
        None,
        Plain,
        "PostgreSQL `statement_timeout` of every connection."
    ),
    setting!(
        "database_idle_in_transaction_timeout_ms",
        "Database",
        "integer (milliseconds)",
        None,
        Plain,
        "PostgreSQL `idle_in_transaction_session_timeout`: a stalled instance's locks are freed."
    ),
    // Secrets
    setting!(
        "master_key",
        "Secrets",
        "32 random bytes, base64",
        Some("a generated key file (SQLite default only)"),
        Secret,
        "Encrypts stored secrets (AES-256-GCM). Required with PostgreSQL, the same on every instance; the \
         database remembers a value sealed with it, so a different key is refused at startup. Generate one with \
         `wxfed keys generate-master`."
    ),
    setting!(
        "master_key_file",
        "Secrets",
        "path",
        Some("unset"),
        Plain,
        "A file holding the master key (instead of `WXFED_MASTER_KEY`)."
    ),
    // Logging
    setting!("log_format", "Logging", "`text` or `json`", None, Plain, "Log line format (on stderr)."),
    setting!(
        "log_level",
        "Logging",
        "tracing filter",
        None,
        Plain,
        "What is logged, e.g. `info` or `wxfed=debug,info` (`RUST_LOG` wins when set)."
    ),
    // Sessions and login throttling
    setting!(
        "session_idle_timeout_secs",
        "Sessions and login throttling",
        "integer (seconds, at least 1)",
        None,
        Plain,
        "A browser session ends after this long without requests."
    ),
    setting!(
        "session_max_age_secs",
        "Sessions and login throttling",
        "integer (seconds, at least 1)",
        None,
        Plain,
        "… and at the latest this long after login."
    ),
    setting!(
        "login_max_failures_per_user_ip",
        "Sessions and login throttling",
        "integer (at least 1)",
        None,
        Plain,
        "Failed logins for one username from one network before that pair is blocked."
    ),
    setting!(
        "login_max_failures_per_ip",
        "Sessions and login throttling",
        "integer (at least 1)",
        None,
        Plain,
        "Failed logins from one network before it is blocked (IPv6: per /64)."
    ),
    setting!(
        "login_block_secs",
        "Sessions and login throttling",
        "integer (seconds)",
        None,
        Plain,
        "Counting window and block length of the two limits above."
    ),
    setting!(
        "login_account_slowdown_after",
        "Sessions and login throttling",
        "integer (at least 1)",
        None,
        Plain,
        "Failed logins for one username from anywhere before attempts on it are slowed down (5 s, doubling); \
         never locked, so a stranger cannot lock the owner out."
    ),
    setting!(
        "login_account_max_delay_secs",
        "Sessions and login throttling",
        "integer (seconds)",
        None,
        Plain,
        "The longest such delay."
    ),
    setting!(
        "password_hash_concurrency",
        "Sessions and login throttling",
        "integer",
        Some("CPU cores"),
        Plain,
        "Argon2 password hashes running at once."
    ),
    // Tokens and signing keys
    setting!(
        "access_token_ttl_secs",
        "Tokens and signing keys",
        "integer (seconds, 1..86400)",
        None,
        Plain,
        "Access token lifetime."
    ),
    setting!(
        "id_token_ttl_secs",
        "Tokens and signing keys",
        "integer (seconds, 1..86400)",
        None,
        Plain,
        "ID token lifetime."
    ),
    setting!(
        "refresh_token_ttl_secs",
        "Tokens and signing keys",
        "integer (seconds, 1..34560000)",
        None,
        Plain,
        "Refresh token lifetime (default 30 days)."
    ),
    setting!(
        "authorization_code_ttl_secs",
        "Tokens and signing keys",
        "integer (seconds, 1..60)",
        None,
        Plain,
        "Authorization code lifetime (RFC 6749 §4.1.2: short)."
    ),
    setting!(
        "refresh_token_reuse_grace_secs",
        "Tokens and signing keys",
        "integer (seconds)",
        None,
        Plain,
        "A rotated refresh token presented again within this long (parallel requests of one client) is not \
         treated as theft."
    ),
    setting!(
        "key_reload_secs",
        "Tokens and signing keys",
        "integer (seconds, 1..60)",
        None,
        Plain,
        "How often each instance re-reads the signing keys: a rotation reaches every instance within this long."
    ),
    setting!(
        "backchannel_logout_timeout_ms",
        "Tokens and signing keys",
        "integer (milliseconds, 1..60000)",
        None,
        Plain,
        "Timeout of each back-channel logout POST to a client's `backchannel_logout_uri` (OpenID Connect \
         Back-Channel Logout 1.0)."
    ),
    setting!(
        "backchannel_logout_retry_secs",
        "Tokens and signing keys",
        "comma-separated seconds (each 0..86400, at most 10)",
        None,
        Plain,
        "Waits between the attempts of a back-channel logout that failed (no 2xx answer or no answer in time); \
         after the last the delivery is given up and audited as failed."
    ),
    // Audit trail
    setting!(
        "audit_checkpoint_secs",
        "Audit trail",
        "integer (seconds)",
        None,
        Plain,
        "At most this often (and on shutdown, and when an export needs one) the audit chainer signs a checkpoint \
         of the chain head with the audit key."
    ),
    setting!(
        "audit_checkpoint_sink",
        "Audit trail",
        "file path or https URL",
        Some("unset"),
        UrlCredentials,
        "A copy of every signed checkpoint outside the database: a file path (JSON lines appended) or an https \
         URL (POSTed to; plain http only to loopback)."
    ),
    setting!(
        "audit_retention_<category>_days",
        "Audit trail",
        "integer (days, at least 1)",
        Some("unset (keep forever)"),
        Plain,
        "Per audit category (`AUTHENTICATION`, `OIDC`, `WECHAT`, `ADMIN`, `AUDIT_ACCESS`): strip the content of \
         older events (`wxfed audit prune`, and daily). 0 is refused."
    ),
    // WeChat
    setting!(
        "wechat_api_base",
        "WeChat",
        "URL",
        None,
        UrlCredentials,
        "WeChat's API (a simulator in tests and demos)."
    ),
    setting!("wechat_open_base", "WeChat", "URL", None, UrlCredentials, "Where browsers go to log in with WeChat."),
    setting!(
        "wechat_unlinked",
        "WeChat",
        "`deny`, `bind`, `create` or `auto-phone`",
        None,
        Plain,
        "What happens when a WeChat identity linked to no account logs in."
    ),
    setting!(
        "wechat_timeout_ms",
        "WeChat",
        "integer (milliseconds, 100..60000)",
        None,
        Plain,
        "Timeout of every call to WeChat."
    ),
    setting!(
        "wechat_calls_per_client_per_minute",
        "WeChat",
        "integer (at least 1)",
        None,
        Plain,
        "Code exchanges at WeChat per client (facade: per appid) each minute, counted before WeChat is called; \
         beyond: `429` + `Retry-After`."
    ),
    setting!(
        "wechat_calls_per_ip_per_minute",
        "WeChat",
        "integer (at least 1)",
        None,
        Plain,
        "The same per network, for callers that proved no secret (public clients)."
    ),
    // Pages and console
    setting!(
        "default_locale",
        "Pages and console",
        "`zh-CN` or `en`",
        None,
        Plain,
        "Page language without a language cookie or a supported `Accept-Language`."
    ),
    setting!(
        "admin_reauth_secs",
        "Pages and console",
        "integer (seconds)",
        None,
        Plain,
        "A sensitive console action (link, unlink, merge, roles, status, password, secrets, keys, removals) asks \
         for the password again when the admin's last login is older."
    ),
];

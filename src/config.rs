//! Settings: defaults < optional TOML file < `WXFED_*` environment, with
//! `WXFED_*_FILE` variants for secrets. Validated once at startup; every
//! problem is reported as one line that names the setting.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Provider};
use serde::{Deserialize, Serialize};

use crate::db::DatabaseTarget;

pub mod table;

use table::Secrecy;

/// A value that must never be printed (Debug shows `[redacted]`).
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Where signed audit checkpoints are pushed as they are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointSink {
    /// Appended to, one JSON line per checkpoint.
    File(PathBuf),
    /// POSTed to, one JSON object per checkpoint: https, or http to a
    /// loopback address (a local relay, tests).
    Url(url::Url),
}

impl CheckpointSink {
    pub fn parse(value: &str) -> Result<Self, String> {
        if !value.contains("://") {
            return Ok(Self::File(PathBuf::from(value)));
        }
        let url = url::Url::parse(value).map_err(|e| format!("`{value}` is not a URL: {e}"))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match url.scheme() {
            "https" => Ok(Self::Url(url)),
            "http" if loopback => Ok(Self::Url(url)),
            "http" => Err("plain http is allowed only to a loopback address; use https".into()),
            other => Err(format!("`{other}:` is neither a file path nor an https URL")),
        }
    }
}

/// The raw settings as read from file and environment (before validation).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    bind: String,
    /// Where `GET /metrics` (Prometheus) is served; unset: nowhere.
    metrics_bind: Option<String>,
    issuer: Option<String>,
    data_dir: PathBuf,
    database_url: Option<SecretString>,
    database_url_file: Option<PathBuf>,
    database_pool_size: u32,
    database_pool_min_idle: u32,
    database_checkout_timeout_ms: u64,
    database_request_timeout_ms: u64,
    database_connect_timeout_secs: u64,
    database_lock_timeout_ms: u64,
    database_statement_timeout_ms: u64,
    database_idle_in_transaction_timeout_ms: u64,
    shutdown_timeout_secs: u64,
    client_request_timeout_ms: u64,
    request_body_timeout_ms: u64,
    max_connections_per_ip: usize,
    master_key: Option<SecretString>,
    master_key_file: Option<PathBuf>,
    log_format: LogFormat,
    log_level: String,
    workers: Option<usize>,
    session_idle_timeout_secs: u64,
    session_max_age_secs: u64,
    login_max_failures_per_user_ip: u32,
    login_max_failures_per_ip: u32,
    login_block_secs: u64,
    login_account_slowdown_after: u32,
    login_account_max_delay_secs: u64,
    wechat_calls_per_client_per_minute: u32,
    wechat_calls_per_ip_per_minute: u32,
    password_hash_concurrency: Option<usize>,
    access_token_ttl_secs: u64,
    id_token_ttl_secs: u64,
    refresh_token_ttl_secs: u64,
    authorization_code_ttl_secs: u64,
    refresh_token_reuse_grace_secs: u64,
    key_reload_secs: u64,
    audit_checkpoint_secs: u64,
    /// Retention per audit category in days (issue 9 item 6); unset: keep
    /// forever. `WXFED_AUDIT_RETENTION_<CATEGORY>_DAYS`.
    audit_retention_authentication_days: Option<u32>,
    audit_retention_oidc_days: Option<u32>,
    audit_retention_wechat_days: Option<u32>,
    audit_retention_admin_days: Option<u32>,
    audit_retention_audit_access_days: Option<u32>,
    /// Where every signed audit checkpoint is also pushed: a file path
    /// (appended to) or an https URL (POSTed to).
    audit_checkpoint_sink: Option<String>,
    wechat_api_base: String,
    wechat_open_base: String,
    wechat_unlinked: UnlinkedPolicy,
    wechat_timeout_ms: u64,
    /// Comma-separated; requests from these peers may set X-Forwarded-For.
    trusted_proxies: String,
    /// The language of pages when neither the language cookie nor
    /// Accept-Language names a supported one: `zh-CN` or `en`.
    default_locale: String,
    /// How recent an admin's last login must be for a sensitive console
    /// action before the password is asked for again.
    admin_reauth_secs: u64,
    /// How long one back-channel logout POST may take
    /// (`WXFED_BACKCHANNEL_LOGOUT_TIMEOUT_MS`).
    backchannel_logout_timeout_ms: u64,
    /// The waits, in seconds and comma-separated, before each retry of a
    /// back-channel logout that failed (`WXFED_BACKCHANNEL_LOGOUT_RETRY_SECS`);
    /// empty: no retry.
    backchannel_logout_retry_secs: String,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            metrics_bind: None,
            issuer: None,
            data_dir: PathBuf::from("wxfed-data"),
            database_url: None,
            database_url_file: None,
            database_pool_size: 16,
            database_pool_min_idle: 1,
            database_checkout_timeout_ms: 2_000,
            database_request_timeout_ms: 3_000,
            database_connect_timeout_secs: 2,
            database_lock_timeout_ms: 2_000,
            database_statement_timeout_ms: 10_000,
            database_idle_in_transaction_timeout_ms: 5_000,
            shutdown_timeout_secs: 10,
            client_request_timeout_ms: 5_000,
            request_body_timeout_ms: 10_000,
            max_connections_per_ip: 64,
            master_key: None,
            master_key_file: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            workers: None,
            session_idle_timeout_secs: 30 * 60,
            session_max_age_secs: 10 * 60 * 60,
            login_max_failures_per_user_ip: 5,
            login_max_failures_per_ip: 50,
            login_block_secs: 15 * 60,
            login_account_slowdown_after: 10,
            login_account_max_delay_secs: 60,
            wechat_calls_per_client_per_minute: 600,
            wechat_calls_per_ip_per_minute: 30,
            password_hash_concurrency: None,
            access_token_ttl_secs: 10 * 60,
            id_token_ttl_secs: 60 * 60,
            refresh_token_ttl_secs: 30 * 24 * 60 * 60,
            authorization_code_ttl_secs: 60,
            refresh_token_reuse_grace_secs: 5,
            key_reload_secs: 30,
            audit_checkpoint_secs: 60,
            audit_retention_authentication_days: None,
            audit_retention_oidc_days: None,
            audit_retention_wechat_days: None,
            audit_retention_admin_days: None,
            audit_retention_audit_access_days: None,
            audit_checkpoint_sink: None,
            wechat_api_base: "https://api.weixin.qq.com".into(),
            wechat_open_base: "https://open.weixin.qq.com".into(),
            wechat_unlinked: UnlinkedPolicy::Deny,
            wechat_timeout_ms: 5000,
            trusted_proxies: String::new(),
            default_locale: "zh-CN".into(),
            admin_reauth_secs: 5 * 60,
            backchannel_logout_timeout_ms: 5_000,
            // Four attempts over about six minutes.
            backchannel_logout_retry_secs: "10,60,300".into(),
        }
    }
}

/// What happens when a WeChat identity that is linked to no account logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnlinkedPolicy {
    /// A clear page: ask an administrator to link the account.
    Deny,
    /// The person proves an existing account with its password, then it is linked.
    Bind,
    /// A WeChat-only account is created and linked.
    Create,
    /// Like `deny`, but an identity whose WeChat-verified phone matches
    /// exactly one account's verified phone is linked to it.
    AutoPhone,
}

/// How wxfed reaches WeChat.
#[derive(Debug, Clone)]
pub struct WechatSettings {
    /// `https://api.weixin.qq.com` (a simulator in tests and demos).
    pub api_base: String,
    /// `https://open.weixin.qq.com`, where browsers are sent to log in.
    pub open_base: String,
    pub unlinked: UnlinkedPolicy,
    pub timeout_ms: u64,
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    Value(SecretString),
    File(PathBuf),
    /// SQLite default only: a key file in the data dir, made on first start.
    GeneratedFile(PathBuf),
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    /// `WXFED_METRICS_BIND`: the address of the Prometheus endpoint, apart
    /// from the public one; `None` (the default) serves no metrics.
    pub metrics_bind: Option<SocketAddr>,
    /// Without a trailing slash, exactly as it appears in tokens.
    pub issuer: String,
    pub data_dir: PathBuf,
    pub database: DatabaseTarget,
    pub database_pool_size: u32,
    /// Pool sizing (its `max_size` is `database_pool_size`), checkout
    /// timeout and per-connection session limits.
    pub database_pool: crate::db::PoolOptions,
    /// How long in-flight requests may finish after SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// Whole-request bounds (see [`RequestLimits`]).
    pub request_limits: RequestLimits,
    pub master_key: MasterKeySource,
    pub log_format: LogFormat,
    pub log_level: String,
    pub workers: usize,
    pub session_idle_timeout_secs: u64,
    pub session_max_age_secs: u64,
    /// Wrong passwords for one username from one network before that pair
    /// is blocked for `login_block_secs`.
    pub login_max_failures_per_user_ip: u32,
    /// Wrong passwords from one network (IPv6 counted per /64) before it is
    /// blocked for `login_block_secs`.
    pub login_max_failures_per_ip: u32,
    pub login_block_secs: u64,
    /// Wrong passwords for one username from anywhere before attempts on it
    /// are slowed down (a growing delay, never a lock).
    pub login_account_slowdown_after: u32,
    /// The longest delay the account-wide slowdown imposes.
    pub login_account_max_delay_secs: u64,
    /// Calls to WeChat (code exchanges) allowed per client and per network
    /// each minute, counted before WeChat is called.
    pub wechat_calls_per_client_per_minute: u32,
    pub wechat_calls_per_ip_per_minute: u32,
    pub password_hash_concurrency: usize,
    pub trusted_proxies: Vec<IpAddr>,
    pub tokens: TokenLifetimes,
    /// How often each instance re-reads the signing keys (a rotation
    /// reaches every instance within this long).
    pub key_reload_secs: u64,
    /// At most this often the chainer signs an audit checkpoint (issue 9
    /// item 4); also once on shutdown.
    pub audit_checkpoint_secs: u64,
    /// (category, days) for every audit category with a retention period;
    /// the others are kept forever.
    pub audit_retention_days: Vec<(&'static str, u32)>,
    /// A copy of every checkpoint outside the database (issue 9 item 4).
    pub audit_checkpoint_sink: Option<CheckpointSink>,
    pub wechat: WechatSettings,
    pub default_locale: crate::i18n::Locale,
    /// A sensitive console action asks for the password again when the
    /// admin's last login is older than this.
    pub admin_reauth_secs: u64,
    /// Delivery of OpenID Connect Back-Channel Logout tokens.
    pub backchannel_logout: BackchannelLogoutSettings,
}

/// How logout tokens are delivered (OpenID Connect Back-Channel Logout 1.0
/// §2.5–2.8).
#[derive(Debug, Clone)]
pub struct BackchannelLogoutSettings {
    /// `WXFED_BACKCHANNEL_LOGOUT_TIMEOUT_MS` (default 5000): one POST's
    /// whole time, connecting included; slower counts as a failure.
    pub timeout_ms: u64,
    /// `WXFED_BACKCHANNEL_LOGOUT_RETRY_SECS` (default `10,60,300`): the
    /// wait before each retry; after the last one fails, wxfed gives up
    /// and records the failure.
    pub retry_delays_secs: Vec<u64>,
}

/// Bounds on one HTTP request and on the connections of one client.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Time for a client to send the request head (actix
    /// `client_request_timeout`; answered `408`).
    pub client_request_timeout_ms: u64,
    /// Time for a client to send a started request body; a body still
    /// incomplete then is refused with `408` and the connection closed.
    pub body_timeout_ms: u64,
    /// Open connections allowed per client IP (trusted proxies exempt).
    pub max_connections_per_ip: usize,
}

/// How long what the provider issues stays valid, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    pub access_token_secs: u64,
    pub id_token_secs: u64,
    pub refresh_token_secs: u64,
    pub authorization_code_secs: u64,
    /// A rotated refresh token presented again within this many seconds
    /// (parallel requests of one client) is not treated as theft.
    pub refresh_reuse_grace_secs: u64,
}

impl TokenLifetimes {
    /// The longest a signed token lives: how long a retired key must stay
    /// in the JWKS.
    pub fn longest_signed_secs(&self) -> u64 {
        self.access_token_secs.max(self.id_token_secs)
    }
}

/// One line naming the setting and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

fn invalid(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.to_owned(), message: message.into() }
}

fn env_name(key: &str) -> String {
    format!("WXFED_{}", key.to_uppercase())
}

/// Where an effective setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Default,
    File,
    Env,
}

/// One setting as `wxfed config check` shows it: secrets already redacted.
#[derive(Debug, Clone, Serialize)]
pub struct EffectiveSetting {
    pub key: String,
    pub env: String,
    /// `None`: unset (the default in words is `default_note`).
    pub value: Option<String>,
    pub source: Source,
    pub secret: bool,
    pub default_note: Option<&'static str>,
}

/// The result of reading the settings: validated settings or every
/// problem found, and what each setting is (for `wxfed config check`).
pub struct Checked {
    pub settings: Result<Settings, Vec<ConfigError>>,
    pub effective: Vec<EffectiveSetting>,
}

impl Settings {
    /// Reads the settings from an optional TOML file and the process
    /// environment; the first problem, if any.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::check(config_file).settings.map_err(|mut errors| errors.swap_remove(0))
    }

    /// Reads and validates the settings exactly as [`Settings::load`]
    /// does, collecting every problem rather than the first.
    pub fn check(config_file: Option<&Path>) -> Checked {
        let mut figment = Figment::from(Serialized::defaults(RawSettings::default()));
        let mut errors = Vec::new();
        if let Some(path) = config_file {
            if path.is_file() {
                figment = figment.merge(Toml::file(path));
            } else {
                errors.push(invalid(
                    "config (--config / WXFED_CONFIG)",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        // WXFED_CONFIG names the file itself, WXFED_TEST_* belong to the
        // test suite, and Kubernetes-shaped variables are not ours: none is
        // a setting.
        figment = figment
            .merge(Env::prefixed("WXFED_").filter(|key| is_setting_variable(&key.as_str().to_ascii_lowercase())));
        let (problems, good_keys) = check_names_and_types(&figment);
        let effective = effective_settings(&figment);
        let settings = if errors.is_empty() && problems.is_empty() {
            match figment.extract::<RawSettings>() {
                Ok(raw) => Self::validate(raw),
                Err(error) => Err(vec![figment_error(error)]),
            }
        } else {
            // Validate what is well-formed too (the rest at its default),
            // so that one run names every problem.
            errors.extend(problems);
            let mut clean = Figment::from(Serialized::defaults(RawSettings::default()));
            for (key, value) in good_keys {
                clean = clean.merge(Serialized::default(&key, value));
            }
            if let Err(more) =
                clean.extract::<RawSettings>().map_err(|e| vec![figment_error(e)]).and_then(Self::validate)
            {
                errors.extend(more);
            }
            Err(errors)
        };
        Checked { settings, effective }
    }

    /// Every problem is collected (a stand-in value keeps the checks
    /// going), so that `wxfed config check` can list them all.
    fn validate(raw: RawSettings) -> Result<Self, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut audit_retention_days = Vec::new();
        for (category, days) in [
            ("authentication", raw.audit_retention_authentication_days),
            ("oidc", raw.audit_retention_oidc_days),
            ("wechat", raw.audit_retention_wechat_days),
            ("admin", raw.audit_retention_admin_days),
            ("audit_access", raw.audit_retention_audit_access_days),
        ] {
            match days {
                None => {}
                Some(0) => {
                    let name = format!(
                        "audit_retention_{category}_days (WXFED_AUDIT_RETENTION_{}_DAYS)",
                        category.to_uppercase()
                    );
                    errors.push(invalid(&name, "must be at least 1 day; leave it unset to keep events forever"));
                }
                Some(days) => audit_retention_days.push((category, days)),
            }
        }
        let bind: SocketAddr = raw.bind.parse().unwrap_or_else(|_| {
            errors.push(invalid("bind (WXFED_BIND)", format!("`{}` is not an address like 127.0.0.1:8080", raw.bind)));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let metrics_bind = match raw.metrics_bind.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => None,
            Some(value) => value
                .parse::<SocketAddr>()
                .map_err(|_| {
                    errors.push(invalid(
                        "metrics_bind (WXFED_METRICS_BIND)",
                        format!("`{value}` is not an address like 127.0.0.1:9090"),
                    ))
                })
                .ok(),
        };
        let issuer = match raw.issuer {
            Some(issuer) => validate_issuer(&issuer).unwrap_or_else(|e| {
                errors.push(e);
                String::new()
            }),
            None => {
                let host = if bind.ip().is_unspecified() { "127.0.0.1".to_owned() } else { bind.ip().to_string() };
                let host = if host.contains(':') { format!("[{host}]") } else { host };
                format!("http://{host}:{}", bind.port())
            }
        };
        let sqlite_default = DatabaseTarget::Sqlite(raw.data_dir.join("wxfed.db"));
        let database_url = read_secret("database_url", raw.database_url, raw.database_url_file.as_deref())
            .unwrap_or_else(|e| {
                errors.push(e);
                None
            });
        let database = match database_url {
            Some(url) => DatabaseTarget::parse(url.expose()).unwrap_or_else(|m| {
                errors.push(invalid("database_url (WXFED_DATABASE_URL)", m));
                sqlite_default
            }),
            None => sqlite_default,
        };
        let generated_key = MasterKeySource::GeneratedFile(raw.data_dir.join("master.key"));
        let master_key = match (raw.master_key, raw.master_key_file) {
            (Some(_), Some(_)) => {
                errors.push(invalid(
                    "master_key (WXFED_MASTER_KEY)",
                    "set either WXFED_MASTER_KEY or WXFED_MASTER_KEY_FILE, not both",
                ));
                generated_key
            }
            (Some(value), None) => MasterKeySource::Value(value),
            (None, Some(path)) => MasterKeySource::File(path),
            (None, None) if database.is_sqlite() => generated_key,
            (None, None) => {
                errors.push(invalid(
                    "master_key (WXFED_MASTER_KEY)",
                    "required with PostgreSQL, so that every instance shares it \
                     (generate one with `wxfed keys generate-master`)",
                ));
                generated_key
            }
        };
        if raw.database_pool_size == 0 {
            errors.push(invalid("database_pool_size (WXFED_DATABASE_POOL_SIZE)", "must be at least 1"));
        }
        for (setting, value) in [
            ("session_idle_timeout_secs (WXFED_SESSION_IDLE_TIMEOUT_SECS)", raw.session_idle_timeout_secs),
            ("session_max_age_secs (WXFED_SESSION_MAX_AGE_SECS)", raw.session_max_age_secs),
        ] {
            if value == 0 {
                errors.push(invalid(setting, "must be at least 1"));
            }
        }
        for (setting, value, max) in [
            ("access_token_ttl_secs (WXFED_ACCESS_TOKEN_TTL_SECS)", raw.access_token_ttl_secs, 24 * 3600),
            ("id_token_ttl_secs (WXFED_ID_TOKEN_TTL_SECS)", raw.id_token_ttl_secs, 24 * 3600),
            ("refresh_token_ttl_secs (WXFED_REFRESH_TOKEN_TTL_SECS)", raw.refresh_token_ttl_secs, 400 * 24 * 3600),
            // Codes live at most a minute (RFC 6749 §4.1.2 recommends ten at most).
            ("authorization_code_ttl_secs (WXFED_AUTHORIZATION_CODE_TTL_SECS)", raw.authorization_code_ttl_secs, 60),
        ] {
            if value == 0 || value > max {
                errors.push(invalid(setting, format!("must be between 1 and {max}")));
            }
        }
        for (setting, value) in [
            (
                "login_max_failures_per_user_ip (WXFED_LOGIN_MAX_FAILURES_PER_USER_IP)",
                raw.login_max_failures_per_user_ip,
            ),
            ("login_max_failures_per_ip (WXFED_LOGIN_MAX_FAILURES_PER_IP)", raw.login_max_failures_per_ip),
            ("login_account_slowdown_after (WXFED_LOGIN_ACCOUNT_SLOWDOWN_AFTER)", raw.login_account_slowdown_after),
            (
                "wechat_calls_per_client_per_minute (WXFED_WECHAT_CALLS_PER_CLIENT_PER_MINUTE)",
                raw.wechat_calls_per_client_per_minute,
            ),
            (
                "wechat_calls_per_ip_per_minute (WXFED_WECHAT_CALLS_PER_IP_PER_MINUTE)",
                raw.wechat_calls_per_ip_per_minute,
            ),
        ] {
            if value == 0 {
                errors.push(invalid(setting, "must be at least 1"));
            }
        }
        if raw.max_connections_per_ip == 0 {
            errors.push(invalid("max_connections_per_ip (WXFED_MAX_CONNECTIONS_PER_IP)", "must be at least 1"));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.log_level) {
            errors.push(invalid("log_level (WXFED_LOG_LEVEL)", e.to_string()));
        }
        let mut trusted_proxies = Vec::new();
        for s in raw.trusted_proxies.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match s.parse::<IpAddr>() {
                Ok(ip) => trusted_proxies.push(ip),
                Err(_) => errors
                    .push(invalid("trusted_proxies (WXFED_TRUSTED_PROXIES)", format!("`{s}` is not an IP address"))),
            }
        }
        let default_locale = crate::i18n::Locale::parse(&raw.default_locale).unwrap_or_else(|| {
            errors.push(invalid(
                "default_locale (WXFED_DEFAULT_LOCALE)",
                format!("`{}` is not zh-CN or en", raw.default_locale),
            ));
            crate::i18n::Locale::ZhCn
        });
        let audit_checkpoint_sink = match raw.audit_checkpoint_sink.as_deref().map(str::trim).filter(|v| !v.is_empty())
        {
            None => None,
            Some(value) => CheckpointSink::parse(value)
                .map_err(|why| errors.push(invalid("audit_checkpoint_sink (WXFED_AUDIT_CHECKPOINT_SINK)", why)))
                .ok(),
        };
        let mut base = |setting: &str, value: &str| {
            validate_base(setting, value).unwrap_or_else(|e| {
                errors.push(e);
                String::new()
            })
        };
        let wechat = WechatSettings {
            api_base: base("wechat_api_base (WXFED_WECHAT_API_BASE)", &raw.wechat_api_base),
            open_base: base("wechat_open_base (WXFED_WECHAT_OPEN_BASE)", &raw.wechat_open_base),
            unlinked: raw.wechat_unlinked,
            timeout_ms: raw.wechat_timeout_ms.clamp(100, 60_000),
        };
        let retry_delays_secs = parse_retry_delays(&raw.backchannel_logout_retry_secs).unwrap_or_else(|why| {
            errors.push(invalid("backchannel_logout_retry_secs (WXFED_BACKCHANNEL_LOGOUT_RETRY_SECS)", why));
            Vec::new()
        });
        if raw.backchannel_logout_timeout_ms == 0 || raw.backchannel_logout_timeout_ms > 60_000 {
            errors.push(invalid(
                "backchannel_logout_timeout_ms (WXFED_BACKCHANNEL_LOGOUT_TIMEOUT_MS)",
                "must be between 1 and 60000",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(Self {
            bind,
            metrics_bind,
            issuer,
            data_dir: raw.data_dir,
            database,
            database_pool_size: raw.database_pool_size,
            database_pool: crate::db::PoolOptions {
                max_size: raw.database_pool_size,
                min_idle: raw.database_pool_min_idle.min(raw.database_pool_size),
                checkout_timeout: std::time::Duration::from_millis(raw.database_checkout_timeout_ms.clamp(100, 60_000)),
                request_timeout: std::time::Duration::from_millis(raw.database_request_timeout_ms.clamp(100, 600_000)),
                session: crate::db::SessionLimits {
                    lock_timeout_ms: raw.database_lock_timeout_ms,
                    statement_timeout_ms: raw.database_statement_timeout_ms,
                    idle_in_transaction_timeout_ms: raw.database_idle_in_transaction_timeout_ms,
                    connect_timeout_secs: raw.database_connect_timeout_secs.clamp(1, 60),
                },
            },
            shutdown_timeout_secs: raw.shutdown_timeout_secs,
            request_limits: RequestLimits {
                client_request_timeout_ms: raw.client_request_timeout_ms.clamp(100, 120_000),
                body_timeout_ms: raw.request_body_timeout_ms.clamp(100, 600_000),
                max_connections_per_ip: raw.max_connections_per_ip,
            },
            master_key,
            log_format: raw.log_format,
            log_level: raw.log_level,
            workers: raw.workers.filter(|w| *w > 0).unwrap_or(cores),
            session_idle_timeout_secs: raw.session_idle_timeout_secs,
            session_max_age_secs: raw.session_max_age_secs,
            login_max_failures_per_user_ip: raw.login_max_failures_per_user_ip,
            login_max_failures_per_ip: raw.login_max_failures_per_ip,
            login_block_secs: raw.login_block_secs,
            login_account_slowdown_after: raw.login_account_slowdown_after,
            login_account_max_delay_secs: raw.login_account_max_delay_secs.max(1),
            wechat_calls_per_client_per_minute: raw.wechat_calls_per_client_per_minute,
            wechat_calls_per_ip_per_minute: raw.wechat_calls_per_ip_per_minute,
            password_hash_concurrency: raw.password_hash_concurrency.filter(|n| *n > 0).unwrap_or(cores),
            trusted_proxies,
            key_reload_secs: raw.key_reload_secs.clamp(1, 60),
            audit_checkpoint_secs: raw.audit_checkpoint_secs.max(1),
            audit_retention_days,
            audit_checkpoint_sink,
            default_locale,
            admin_reauth_secs: raw.admin_reauth_secs.max(1),
            wechat,
            backchannel_logout: BackchannelLogoutSettings {
                timeout_ms: raw.backchannel_logout_timeout_ms,
                retry_delays_secs,
            },
            tokens: TokenLifetimes {
                access_token_secs: raw.access_token_ttl_secs,
                id_token_secs: raw.id_token_ttl_secs,
                refresh_token_secs: raw.refresh_token_ttl_secs,
                authorization_code_secs: raw.authorization_code_ttl_secs,
                refresh_reuse_grace_secs: raw.refresh_token_reuse_grace_secs,
            },
        })
    }

    /// The defaults for a given database and master key: where tests and
    /// benchmarks start, so that a new setting needs no change there.
    pub fn defaults(database: DatabaseTarget, master_key: MasterKeySource) -> Result<Self, ConfigError> {
        let mut settings = Self::validate(RawSettings::default()).map_err(|mut errors| errors.swap_remove(0))?;
        settings.database = database;
        settings.master_key = master_key;
        Ok(settings)
    }

    /// Cookies get `Secure` (and the `__Host-` prefix) when served over https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// Whether `WXFED_<key>` (key lower-cased, without the prefix) can be a
/// setting. Kubernetes gives every pod variables for each Service in its
/// namespace, named after the Service: next to a Service called `wxfed` it
/// sets `WXFED_PORT=tcp://10.0.0.1:8080`, `WXFED_SERVICE_HOST`,
/// `WXFED_SERVICE_PORT[_NAME]` and `WXFED_PORT_8080_TCP[_PROTO|_PORT|_ADDR]`
/// (Kubernetes docs, "Service - Environment variables"). Refusing them as
/// unknown settings would stop the pod from starting.
fn is_setting_variable(key: &str) -> bool {
    let kubernetes_service = key == "port" || key.starts_with("port_") || key.starts_with("service_");
    key != "config" && !key.starts_with("test_") && !kubernetes_service
}

/// OIDC requires the issuer to be an https URL without query or fragment
/// (plain http is accepted for development); tokens carry it byte-exact.
fn validate_issuer(issuer: &str) -> Result<String, ConfigError> {
    let setting = "issuer (WXFED_ISSUER)";
    let parsed = url::Url::parse(issuer).map_err(|e| invalid(setting, format!("`{issuer}` is not a URL: {e}")))?;
    if parsed.scheme() != "https" && parsed.scheme() != "http" {
        return Err(invalid(setting, "must start with https:// (or http:// for development)"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(setting, "must not have a query or fragment"));
    }
    if parsed.host_str().is_none() {
        return Err(invalid(setting, "must name a host"));
    }
    Ok(issuer.trim_end_matches('/').to_owned())
}

/// `10,60,300`: at most 10 waits of at most a day each; empty is none.
fn parse_retry_delays(value: &str) -> Result<Vec<u64>, String> {
    let delays = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<u64>() {
            Ok(secs) if secs <= 86_400 => Ok(secs),
            _ => Err(format!("`{s}` is not a number of seconds between 0 and 86400")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if delays.len() > 10 {
        return Err("at most 10 retries".into());
    }
    Ok(delays)
}

/// A base URL without a trailing slash.
fn validate_base(setting: &str, value: &str) -> Result<String, ConfigError> {
    let parsed = url::Url::parse(value).map_err(|e| invalid(setting, format!("`{value}` is not a URL: {e}")))?;
    if parsed.scheme() != "https" && parsed.scheme() != "http" {
        return Err(invalid(setting, "must be an http(s) URL"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// A secret given directly or through `*_FILE` (its content, trimmed).
fn read_secret(
    key: &str,
    value: Option<SecretString>,
    file: Option<&Path>,
) -> Result<Option<SecretString>, ConfigError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(invalid(
            &format!("{key} ({})", env_name(key)),
            format!("set either {} or {}_FILE, not both", env_name(key), env_name(key)),
        )),
        (Some(value), None) => Ok(Some(value)),
        (None, Some(path)) => std::fs::read_to_string(path).map(|s| Some(SecretString::new(s.trim()))).map_err(|e| {
            invalid(&format!("{key}_file ({}_FILE)", env_name(key)), format!("cannot read {}: {e}", path.display()))
        }),
        (None, None) => Ok(None),
    }
}

fn figment_error(error: figment::Error) -> ConfigError {
    let key = error.path.join(".");
    let setting = if key.is_empty() { "configuration".to_owned() } else { format!("{key} ({})", env_name(&key)) };
    let message = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => {
            return invalid(&format!("{field} ({})", env_name(field)), "unknown setting");
        }
        kind => kind.to_string(),
    };
    invalid(&setting, message)
}

/// Unknown names (all of them, from the table) and values of the wrong
/// type (each setting on its own, so that every one is named).
fn check_names_and_types(figment: &Figment) -> (Vec<ConfigError>, Vec<(String, figment::value::Value)>) {
    let data = match figment.data() {
        Ok(data) => data,
        // A TOML file that does not parse.
        Err(error) => return (vec![figment_error(error)], Vec::new()),
    };
    let mut errors = Vec::new();
    for dict in data.values() {
        for key in dict.keys() {
            if table::find(key).is_none() {
                errors.push(invalid(&format!("{key} ({})", env_name(key)), "unknown setting"));
            }
        }
    }
    let mut good = Vec::new();
    for (key, def) in table::all_keys() {
        let Ok(value) = figment.find_value(&key) else { continue };
        let alone = Figment::from(Serialized::defaults(RawSettings::default()))
            .merge(Serialized::default(&key, &value))
            .extract::<RawSettings>();
        match alone {
            Ok(_) => good.push((key, value)),
            Err(error) => {
                // figment's message quotes the value: not for a secret.
                let message = match def.secrecy {
                    Secrecy::Plain => error.kind.to_string(),
                    _ => format!("not a valid {}", def.kind),
                };
                errors.push(invalid(&format!("{key} ({})", env_name(&key)), message));
            }
        }
    }
    (errors, good)
}

/// Every setting with its value (redacted) and where it came from.
fn effective_settings(figment: &Figment) -> Vec<EffectiveSetting> {
    table::all_keys()
        .into_iter()
        .map(|(key, def)| {
            let found = figment.find_value(&key).ok().and_then(|value| display_value(&value));
            let source = match (&found, figment.find_metadata(&key)) {
                (None, _) | (_, None) => Source::Default,
                (Some(_), Some(metadata)) if metadata.name.contains("environment") => Source::Env,
                (Some(_), Some(metadata)) if metadata.name.contains("TOML") => Source::File,
                _ => Source::Default,
            };
            let value = found.map(|v| redact(def.secrecy, &v));
            EffectiveSetting {
                env: env_name(&key),
                key,
                value,
                source,
                secret: def.secrecy != Secrecy::Plain,
                default_note: def.default_note,
            }
        })
        .collect()
}

/// A value as an operator wrote it; `None` when unset.
fn display_value(value: &figment::value::Value) -> Option<String> {
    use figment::value::Value;
    match value {
        Value::Empty(..) => None,
        Value::String(_, s) => Some(s.clone()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Bool(_, b) => Some(b.to_string()),
        Value::Num(_, n) => Some(match n.to_u128() {
            Some(u) => u.to_string(),
            None => n.to_i128().map(|i| i.to_string()).or_else(|| n.to_f64().map(|f| f.to_string()))?,
        }),
        other => serde_json::to_string(other).ok(),
    }
}

const REDACTED: &str = "[redacted]";

/// What `wxfed config check` prints for a value: a secret never, a URL
/// without its password or credential-like query values.
pub fn redact(secrecy: Secrecy, value: &str) -> String {
    match secrecy {
        Secrecy::Plain => value.to_owned(),
        Secrecy::Secret => REDACTED.to_owned(),
        Secrecy::UrlCredentials => redact_url(value),
    }
}

fn redact_url(value: &str) -> String {
    if !value.contains("://") {
        // A file path (a checkpoint sink) holds no credentials; anything
        // else (a libpq key=value string) may hold a password anywhere.
        return if value.contains('=') { REDACTED.to_owned() } else { value.to_owned() };
    }
    let Ok(mut url) = url::Url::parse(value) else { return REDACTED.to_owned() };
    if url.password().is_some() && url.set_password(Some(REDACTED)).is_err() {
        return REDACTED.to_owned();
    }
    if url.query().is_some() {
        let credential = |name: &str| {
            let name = name.to_ascii_lowercase();
            ["pass", "secret", "token", "key", "auth", "sig", "cred"].iter().any(|w| name.contains(w))
        };
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if credential(&k) { REDACTED.to_owned() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // `[redacted]` in the userinfo comes out percent-encoded: show it plainly.
    url.to_string().replace("%5Bredacted%5D", REDACTED)
}

/// `docs/configuration.md`: printed by `wxfed config reference`, checked
/// against the file by a test.
pub fn reference_markdown() -> String {
    use std::fmt::Write as _;
    let defaults = serde_json::to_value(RawSettings::default()).unwrap_or_default();
    let mut out = String::new();
    out.push_str(
        "<!-- Generated by `wxfed config reference` from src/config/table.rs: do not edit by hand. -->\n\
         # Configuration reference\n\n\
         Settings are read from defaults, then an optional TOML file (`--config FILE` or `WXFED_CONFIG`), \
         then `WXFED_*` environment variables; later sources win. In the file, keys are the variable names \
         in lower case without `WXFED_` (`bind = \"0.0.0.0:8080\"`). A wrong setting stops startup with a \
         line naming it; unknown names (in the file or as `WXFED_*` variables) are refused. The variables \
         Kubernetes injects for a Service named `wxfed` (`WXFED_PORT`, `WXFED_PORT_<n>_TCP…`, \
         `WXFED_SERVICE_HOST`, `WXFED_SERVICE_PORT…`) are ignored, as are `WXFED_CONFIG` (the file itself) \
         and `WXFED_TEST_*` (the test suite).\n\n\
         `wxfed config check` reads the settings as `wxfed serve` would, lists every problem (exit status 2) \
         and prints the effective value and source of each setting, secrets redacted; `--connect` also \
         checks that the database is reachable and the master key opens it.\n\n\
         Settings marked *Secret.* are never printed by `wxfed config check`; of URLs, the password and \
         credential-like query values are hidden.\n",
    );
    for group in table::GROUPS {
        let _ = write!(out, "\n## {group}\n\n| variable | type | default | meaning |\n|---|---|---|---|\n");
        for def in table::SETTINGS.iter().filter(|d| d.group == *group) {
            let default = match def.default_note {
                Some(note) => note.to_owned(),
                None => match defaults.get(def.key) {
                    Some(serde_json::Value::String(s)) if s.is_empty() => "empty".to_owned(),
                    Some(serde_json::Value::String(s)) => format!("`{s}`"),
                    Some(serde_json::Value::Null) | None => "unset".to_owned(),
                    Some(other) => format!("`{other}`"),
                },
            };
            let secret = match def.secrecy {
                Secrecy::Plain => "",
                Secrecy::Secret => " *Secret.*",
                Secrecy::UrlCredentials => "",
            };
            let _ =
                writeln!(out, "| `{}` | {} | {} | {}{} |", def.env_name(), def.kind, default, def.description, secret);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field the parser reads has an entry (with a description) in
    /// the table, and every entry is a field.
    #[test]
    fn every_setting_is_in_the_table() {
        let serde_json::Value::Object(fields) = serde_json::to_value(RawSettings::default()).unwrap() else {
            panic!("RawSettings is not an object")
        };
        let table: std::collections::BTreeSet<String> = table::all_keys().into_iter().map(|(k, _)| k).collect();
        for field in fields.keys() {
            assert!(table.contains(field), "setting `{field}` is missing from src/config/table.rs");
        }
        for key in &table {
            assert!(fields.contains_key(key), "src/config/table.rs lists `{key}`, which the parser does not read");
        }
        for def in table::SETTINGS {
            assert!(!def.description.trim().is_empty(), "{} has no description", def.key);
            assert!(table::GROUPS.contains(&def.group), "{} has an unknown group {}", def.key, def.group);
            if matches!(fields.get(def.key), Some(serde_json::Value::Null)) || def.is_pattern() {
                assert!(def.default_note.is_some(), "{} is unset by default: say so in default_note", def.key);
            }
        }
    }

    /// docs/configuration.md is what `wxfed config reference` prints.
    #[test]
    fn configuration_reference_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == reference_markdown(),
            "docs/configuration.md is out of date: run `cargo run -q -- config reference > docs/configuration.md`"
        );
    }

    #[test]
    fn urls_lose_their_credentials() {
        let shown = redact(Secrecy::UrlCredentials, "postgres://wxfed:hunter2@db:5432/wxfed?sslmode=require");
        assert_eq!(shown, "postgres://wxfed:[redacted]@db:5432/wxfed?sslmode=require");
        let shown = redact(Secrecy::UrlCredentials, "postgres://db/wxfed?user=u&password=hunter2");
        assert!(!shown.contains("hunter2") && shown.contains("user=u"), "{shown}");
        let shown = redact(Secrecy::UrlCredentials, "https://relay.example/cp?token=hunter2");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(redact(Secrecy::UrlCredentials, "host=db password=hunter2"), REDACTED);
        assert_eq!(
            redact(Secrecy::UrlCredentials, "/var/lib/wxfed/checkpoints.jsonl"),
            "/var/lib/wxfed/checkpoints.jsonl"
        );
        assert_eq!(redact(Secrecy::Secret, "hunter2"), REDACTED);
    }

    #[test]
    fn retry_delays_are_a_short_list_of_seconds() {
        assert_eq!(parse_retry_delays("10, 60,300"), Ok(vec![10, 60, 300]));
        assert_eq!(parse_retry_delays(""), Ok(vec![]));
        assert!(parse_retry_delays("10,soon").is_err());
        assert!(parse_retry_delays("-1").is_err());
        assert!(parse_retry_delays(&"1,".repeat(11)).is_err());
    }

    #[test]
    fn kubernetes_service_variables_are_not_settings() {
        for key in ["port", "port_8080_tcp", "port_8080_tcp_addr", "service_host", "service_port", "service_port_http"]
        {
            assert!(!is_setting_variable(key), "{key}");
        }
        for key in ["bind", "database_url", "shutdown_timeout_secs", "max_connections_per_ip"] {
            assert!(is_setting_variable(key), "{key}");
        }
    }
}

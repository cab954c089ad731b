//! The WeChat apps an operator registers (mini-programs, official
//! accounts, website and mobile apps), with their AppSecrets sealed.

use serde::Serialize;

use super::client::AppCredentials;
use crate::accounts::manage::Actor;
use crate::audit::{self, Action, AuditEvent};
use crate::config::SecretString;
use crate::db::{self, DbConn, wechat::AppRow};
use crate::secrets::Secrets;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    #[value(name = "miniprogram")]
    MiniProgram,
    OfficialAccount,
    Website,
    MobileApp,
}

impl AppKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MiniProgram => "miniprogram",
            Self::OfficialAccount => "official_account",
            Self::Website => "website",
            Self::MobileApp => "mobile_app",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        match value {
            "miniprogram" => Some(Self::MiniProgram),
            "official_account" => Some(Self::OfficialAccount),
            "website" => Some(Self::Website),
            "mobile_app" => Some(Self::MobileApp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WechatApp {
    pub appid: String,
    pub kind: AppKind,
    pub name: String,
    pub open_platform: Option<String>,
    pub redirect_domain: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl WechatApp {
    fn from_row(row: &AppRow) -> Option<Self> {
        Some(Self {
            appid: row.appid.clone(),
            kind: AppKind::from_db(&row.kind)?,
            name: row.name.clone(),
            open_platform: row.open_platform.clone(),
            redirect_domain: row.redirect_domain.clone(),
            created_at: row.created_at.and_utc(),
        })
    }

    /// The key identities of this app live under (see `wechat_identities`).
    pub fn platform_key_for(&self, unionid_known: bool) -> String {
        match (&self.open_platform, unionid_known) {
            (Some(platform), true) => format!("op:{platform}"),
            _ => format!("app:{}", self.appid),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Invalid(String),
    #[error("the WeChat app `{0}` is already registered")]
    Exists(String),
    #[error("no WeChat app `{0}`")]
    NotFound(String),
    #[error("the WeChat app `{appid}` is used by the clients {}; change or remove them first", clients.join(", "))]
    InUse { appid: String, clients: Vec<String> },
    #[error("the stored secret of `{0}` cannot be decrypted with this master key")]
    Sealed(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

pub struct NewApp {
    pub appid: String,
    pub kind: AppKind,
    pub name: String,
    pub open_platform: Option<String>,
    pub redirect_domain: Option<String>,
    pub secret: SecretString,
}

fn seal_context(appid: &str) -> String {
    format!("wechat_app_secret:{appid}")
}

/// AppIDs look like `wx` + 16 hex digits; accept any `wx` + letters and
/// digits of a sane length, so new formats do not lock anyone out.
pub fn validate_appid(appid: &str) -> Result<(), String> {
    let ok =
        appid.starts_with("wx") && (4..=40).contains(&appid.len()) && appid.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(format!("`{appid}` is not a WeChat appid (wx followed by letters and digits)")) }
}

fn validate_secret(secret: &str) -> Result<(), String> {
    if secret.is_empty() || secret.len() > 128 || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the AppSecret must be 1 to 128 characters without spaces".into());
    }
    Ok(())
}

pub fn register(conn: &mut DbConn, secrets: &Secrets, actor: &Actor, new: &NewApp) -> Result<WechatApp, AppError> {
    validate_appid(&new.appid).map_err(AppError::Invalid)?;
    validate_secret(new.secret.expose()).map_err(AppError::Invalid)?;
    if new.name.trim().is_empty() {
        return Err(AppError::Invalid("a name is required (--name)".into()));
    }
    if let Some(domain) = &new.redirect_domain
        && (domain.contains('/') || domain.contains(':') || domain.trim().is_empty())
    {
        return Err(AppError::Invalid(format!("`{domain}` is not a host name (no scheme, port or path)")));
    }
    let now = db::now();
    let row = AppRow {
        appid: new.appid.clone(),
        kind: new.kind.as_str().to_owned(),
        name: new.name.trim().to_owned(),
        open_platform: new.open_platform.clone().filter(|p| !p.trim().is_empty()),
        redirect_domain: new.redirect_domain.clone(),
        secret: secrets.seal(&seal_context(&new.appid), new.secret.expose().as_bytes()),
        created_at: now,
        updated_at: now,
    };
    db::write_transaction(conn, |conn| {
        if db::wechat::find_app(conn, &row.appid)?.is_some() {
            return Err(AppError::Exists(row.appid.clone()));
        }
        db::wechat::insert_app(conn, &row)?;
        let event = AuditEvent::success(Action::WechatAppAdded)
            .with_actor(actor.0.clone())
            .with_detail("appid", row.appid.clone())
            .with_detail("kind", row.kind.clone())
            .with_detail("open_platform", row.open_platform.clone());
        audit::append(conn, secrets, &event)?;
        Ok(())
    })?;
    WechatApp::from_row(&row).ok_or_else(|| AppError::Invalid("unknown kind".into()))
}

pub fn find(conn: &mut DbConn, appid: &str) -> diesel::QueryResult<Option<WechatApp>> {
    Ok(db::wechat::find_app(conn, appid)?.as_ref().and_then(WechatApp::from_row))
}

pub fn first_of_kind(conn: &mut DbConn, kind: AppKind) -> diesel::QueryResult<Option<WechatApp>> {
    Ok(db::wechat::first_app_of_kind(conn, kind.as_str())?.as_ref().and_then(WechatApp::from_row))
}

pub fn list(conn: &mut DbConn) -> diesel::QueryResult<Vec<WechatApp>> {
    Ok(db::wechat::list_apps(conn)?.iter().filter_map(WechatApp::from_row).collect())
}

/// The app and its decrypted credentials, for one call to WeChat.
pub fn with_credentials(
    conn: &mut DbConn,
    secrets: &Secrets,
    appid: &str,
) -> Result<Option<(WechatApp, AppCredentials)>, AppError> {
    let Some(row) = db::wechat::find_app(conn, appid)? else {
        return Ok(None);
    };
    let secret = secrets.open(&seal_context(appid), &row.secret).map_err(|_| AppError::Sealed(appid.to_owned()))?;
    let secret = String::from_utf8(secret).map_err(|_| AppError::Sealed(appid.to_owned()))?;
    let app = WechatApp::from_row(&row).ok_or_else(|| AppError::Invalid("unknown kind".into()))?;
    Ok(Some((app, AppCredentials { appid: row.appid, secret: SecretString::new(secret) })))
}

pub fn remove(conn: &mut DbConn, secrets: &Secrets, actor: &Actor, appid: &str) -> Result<(), AppError> {
    db::write_transaction(conn, |conn| {
        // Refused while a client still names it: removing it would leave
        // the client pointing at nothing (issue 8 §6).
        let clients = db::clients::using_app(conn, appid)?;
        if !clients.is_empty() {
            return Err(AppError::InUse { appid: appid.to_owned(), clients });
        }
        if !db::wechat::delete_app(conn, appid)? {
            return Err(AppError::NotFound(appid.to_owned()));
        }
        let event =
            AuditEvent::success(Action::WechatAppRemoved).with_actor(actor.0.clone()).with_detail("appid", appid);
        audit::append(conn, secrets, &event)?;
        Ok(())
    })
}

pub fn rotate_secret(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    appid: &str,
    secret: &SecretString,
) -> Result<(), AppError> {
    validate_secret(secret.expose()).map_err(AppError::Invalid)?;
    let sealed = secrets.seal(&seal_context(appid), secret.expose().as_bytes());
    db::write_transaction(conn, |conn| {
        if db::wechat::set_app_secret(conn, appid, &sealed, db::now())? == 0 {
            return Err(AppError::NotFound(appid.to_owned()));
        }
        // A token fetched with the old secret may be revoked with it.
        db::wechat::save_app_token(conn, appid, "", db::now(), db::now())?;
        let event =
            AuditEvent::success(Action::WechatAppSecretRotated).with_actor(actor.0.clone()).with_detail("appid", appid);
        audit::append(conn, secrets, &event)?;
        Ok(())
    })
}

//! The shapes a test, a seed file or the control API hands the simulator:
//! apps, users, faults, and what comes back (identities, errors). The same
//! structs are the JSON bodies of the control API, so a seed file and a
//! `POST /__sim/apps` body look alike.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The four kinds of WeChat app wxfed talks to. Which kind an appid is
/// decides which endpoints accept it and how long its codes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppKind {
    /// A mini-program (`wx.login` → `jscode2session`, phone codes).
    #[serde(rename = "miniprogram")]
    MiniProgram,
    /// An official account (公众号): OAuth inside the WeChat browser.
    #[serde(rename = "official_account")]
    OfficialAccount,
    /// An Open Platform website app (网站应用): QR-code login.
    #[serde(rename = "website")]
    Website,
    /// An Open Platform mobile app (移动应用): OpenSDK `SendAuth`.
    #[serde(rename = "mobile_app")]
    MobileApp,
}

impl AppKind {
    /// The name used in JSON and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MiniProgram => "miniprogram",
            Self::OfficialAccount => "official_account",
            Self::Website => "website",
            Self::MobileApp => "mobile_app",
        }
    }

    /// How long an OAuth code of this kind of app lives: 5 minutes for
    /// official accounts, 10 minutes for website (QR) and mobile (SendAuth)
    /// codes (wechat-api.md §5–7).
    pub(super) fn oauth_code_ttl_secs(self) -> i64 {
        match self {
            Self::Website | Self::MobileApp => 600,
            Self::MiniProgram | Self::OfficialAccount => 300,
        }
    }

    /// The scopes an OAuth code of this kind may carry; the first is the
    /// default when a test does not name one.
    pub(super) fn oauth_scopes(self) -> &'static [&'static str] {
        match self {
            Self::OfficialAccount => &["snsapi_userinfo", "snsapi_base"],
            Self::Website => &["snsapi_login"],
            Self::MobileApp => &["snsapi_userinfo"],
            Self::MiniProgram => &[],
        }
    }
}

impl fmt::Display for AppKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WeChat app to register (`POST /__sim/apps`, or `apps` in a seed file).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    pub appid: String,
    pub secret: String,
    pub kind: AppKind,
    /// Shown on the login pages.
    #[serde(default)]
    pub name: Option<String>,
    /// The Open Platform account the app is bound to; none means WeChat
    /// returns no `unionid` for this app.
    #[serde(default)]
    pub open_platform: Option<String>,
    /// The registered redirect (网页授权) domain: `host` (any port) or
    /// `host:port`. None accepts every redirect_uri.
    #[serde(default)]
    pub redirect_domain: Option<String>,
}

impl NewApp {
    /// An app with no name, no Open Platform and no redirect domain.
    pub fn new(appid: impl Into<String>, secret: impl Into<String>, kind: AppKind) -> Self {
        Self {
            appid: appid.into(),
            secret: secret.into(),
            kind,
            name: None,
            open_platform: None,
            redirect_domain: None,
        }
    }

    /// Binds the app to an Open Platform account (so it returns UnionIDs).
    pub fn open_platform(mut self, platform: impl Into<String>) -> Self {
        self.open_platform = Some(platform.into());
        self
    }

    /// Sets the registered redirect domain.
    pub fn redirect_domain(mut self, domain: impl Into<String>) -> Self {
        self.redirect_domain = Some(domain.into());
        self
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Hand-written so that the secret never reaches a log (design.md, rule 5).
impl fmt::Debug for NewApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApp")
            .field("appid", &self.appid)
            .field("secret", &"<redacted>")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("open_platform", &self.open_platform)
            .field("redirect_domain", &self.redirect_domain)
            .finish()
    }
}

/// A simulated WeChat user (`POST /__sim/users`, or `users` in a seed file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The simulator's own name for the person; OpenIDs and UnionIDs are
    /// derived from it.
    pub key: String,
    pub nickname: String,
    /// headimgurl; empty when none, like WeChat.
    #[serde(default)]
    pub avatar: Option<String>,
    /// `+8613800138000`, `13800138000` (taken as Chinese), or for other
    /// countries `+CC NUMBER` with a space so the country code is clear.
    #[serde(default)]
    pub phone: Option<String>,
    /// An official-account "snapshot page" visitor: a virtual account with a
    /// fake OpenID per login and `is_snapshotuser: 1`.
    #[serde(default)]
    pub snapshot: bool,
}

impl NewUser {
    /// A user with no avatar and no phone number.
    pub fn new(key: impl Into<String>, nickname: impl Into<String>) -> Self {
        Self { key: key.into(), nickname: nickname.into(), avatar: None, phone: None, snapshot: false }
    }

    /// Sets the phone number returned by `getuserphonenumber`.
    pub fn phone(mut self, phone: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self
    }

    /// Sets the avatar URL.
    pub fn avatar(mut self, avatar: impl Into<String>) -> Self {
        self.avatar = Some(avatar.into());
        self
    }

    /// Marks the user as an official-account snapshot-page visitor.
    pub fn snapshot(mut self, snapshot: bool) -> Self {
        self.snapshot = snapshot;
        self
    }
}

/// What WeChat returns for a user in an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub openid: String,
    /// None when the app is bound to no Open Platform account.
    pub unionid: Option<String>,
}

/// A misbehaviour queued for the next calls to one WeChat path
/// (`POST /__sim/faults`). At least one of `errcode`, `http_status` and
/// `delay_ms` must be set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The WeChat path, e.g. `/sns/jscode2session`.
    pub path: String,
    /// Answer HTTP 200 with this errcode, WeChat style.
    #[serde(default)]
    pub errcode: Option<i64>,
    /// The errmsg for `errcode` (a rid suffix is added); WeChat's usual text
    /// when absent.
    #[serde(default)]
    pub errmsg: Option<String>,
    /// Answer with this HTTP status (plain body, or the errcode body when
    /// `errcode` is set too).
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Wait this long before answering (normally, or with the fault).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// How many calls in a row get the fault.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// The next call to `path` answers with `errcode` (HTTP 200).
    pub fn errcode(path: impl Into<String>, errcode: i64) -> Self {
        Self { errcode: Some(errcode), ..Self::empty(path) }
    }

    /// The next call to `path` answers with this HTTP status.
    pub fn http_status(path: impl Into<String>, status: u16) -> Self {
        Self { http_status: Some(status), ..Self::empty(path) }
    }

    /// The next call to `path` answers normally, after `ms` milliseconds.
    pub fn delay(path: impl Into<String>, ms: u64) -> Self {
        Self { delay_ms: Some(ms), ..Self::empty(path) }
    }

    /// Applies the fault to this many calls instead of one.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Replaces the default errmsg.
    pub fn errmsg(mut self, errmsg: impl Into<String>) -> Self {
        self.errmsg = Some(errmsg.into());
        self
    }

    /// Adds a delay before the faulty answer.
    pub fn with_delay(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    fn empty(path: impl Into<String>) -> Self {
        Self { path: path.into(), errcode: None, errmsg: None, http_status: None, delay_ms: None, times: 1 }
    }
}

/// The content of a `--seed` file: apps and users in the control API's
/// shapes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub apps: Vec<NewApp>,
    #[serde(default)]
    pub users: Vec<NewUser>,
}

/// Why a control request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("no app with appid {0}")]
    UnknownApp(String),
    #[error("no user with key {0}")]
    UnknownUser(String),
    #[error("an app with appid {0} exists already")]
    AppExists(String),
    #[error("a user with key {0} exists already")]
    UserExists(String),
    #[error("{0}")]
    Invalid(String),
}

//! The simulator's memory: apps, users, codes, tokens, session keys, the
//! simulated clock, queued faults and call counters, behind one lock. The
//! public methods here are the Rust twin of the control API; the endpoint
//! modules read and change the stores through [`Simulator::with`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;

use super::ids;
use super::model::{AppKind, Fault, Identity, NewApp, NewUser, Seed, SimError};
use super::wire::WxError;

/// How long a `wx.login` and a phone code live (§1, §3).
const SHORT_CODE_TTL_SECS: i64 = 300;
/// Prune forgotten codes and tokens after this many insertions, so a long
/// load test does not grow memory without bound.
const PRUNE_EVERY: u64 = 4096;

/// The shared simulator state. Cloning is cheap: clones share the state.
#[derive(Clone, Default)]
pub struct Simulator {
    inner: Arc<Mutex<State>>,
}

/// A registered app (no Debug: it holds the secret).
#[derive(Clone)]
pub(super) struct App {
    pub secret: String,
    pub kind: AppKind,
    pub name: String,
    pub open_platform: Option<String>,
    pub redirect_domain: Option<String>,
}

impl App {
    /// The UnionID WeChat returns for `user` in this app, if it is bound.
    pub(super) fn unionid_of(&self, user: &str) -> Option<String> {
        self.open_platform.as_deref().map(|platform| ids::unionid(user, platform))
    }
}

/// A phone number split the way `getuserphonenumber` reports it.
#[derive(Debug, Clone)]
pub(super) struct Phone {
    pub country_code: String,
    pub national: String,
}

/// A simulated person.
#[derive(Debug, Clone)]
pub(super) struct User {
    pub key: String,
    pub nickname: String,
    pub avatar: String,
    pub phone: Option<Phone>,
    pub snapshot: bool,
}

/// What a code can be exchanged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeUse {
    JsCode,
    OAuth,
    Phone,
}

#[derive(Debug, Clone)]
struct Code {
    appid: String,
    user: String,
    usage: CodeUse,
    scope: String,
    expires_at: i64,
    used: bool,
}

/// The outcome of presenting a code. Presenting it consumes it, whatever
/// the rest of the request turns out to be (§1: a failed first exchange
/// still burns the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Redemption {
    /// First use within its lifetime: the user and the granted scope.
    Fresh {
        user: String,
        scope: String,
    },
    Used,
    Expired,
    /// Never issued, issued for another appid, or for another API.
    Unknown,
}

/// What a `/sns/oauth2` grant is about: the same for its access and its
/// refresh token.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub appid: String,
    pub user: String,
    /// The OpenID handed out (fake for snapshot-page visitors).
    pub openid: String,
    /// The UnionID `/sns/userinfo` returns, when the app is bound.
    pub unionid: Option<String>,
    pub scope: String,
    pub snapshot: bool,
}

/// A `/sns/oauth2` access token (7200 s).
#[derive(Debug, Clone)]
pub(super) struct SnsToken {
    pub grant: Grant,
    pub expires_at: i64,
}

/// A `/sns/oauth2` refresh token (30 days, not renewable) and the access
/// token it currently stands behind.
#[derive(Debug, Clone)]
pub(super) struct SnsRefresh {
    pub grant: Grant,
    pub access_token: String,
    pub expires_at: i64,
}

/// An app-level access token from `cgi-bin/token` or `stable_token`.
#[derive(Debug, Clone)]
pub(super) struct AppToken {
    pub appid: String,
    pub expires_at: i64,
    /// When a newer token replaced it (after the overlap, or at once for a
    /// forced stable token).
    pub superseded_at: Option<i64>,
}

/// Everything behind the lock.
#[derive(Default)]
pub(super) struct State {
    clock_offset_secs: i64,
    pub apps: HashMap<String, App>,
    /// Ordered so the login pages list users predictably.
    pub users: BTreeMap<String, User>,
    codes: HashMap<String, Code>,
    /// The one valid session_key per (user, appid).
    session_keys: HashMap<(String, String), String>,
    pub sns_tokens: HashMap<String, SnsToken>,
    pub sns_refresh: HashMap<String, SnsRefresh>,
    pub app_tokens: HashMap<String, AppToken>,
    /// appid → the latest `cgi-bin/token` token.
    pub latest_cgi_token: HashMap<String, String>,
    /// appid → the latest `stable_token` token (kept apart: §4 says the two
    /// are isolated).
    pub latest_stable_token: HashMap<String, String>,
    /// (appid, api, Beijing day) → calls, for the daily quotas.
    daily: HashMap<(String, &'static str, i64), u32>,
    faults: HashMap<String, VecDeque<Fault>>,
    calls: BTreeMap<String, u64>,
    content_types: HashMap<String, String>,
    insertions: u64,
}

impl State {
    /// The simulated time: real time plus the offset tests advanced.
    pub(super) fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.clock_offset_secs
    }

    /// The app, or 40013.
    pub(super) fn app(&self, appid: &str) -> Result<&App, WxError> {
        self.apps.get(appid).ok_or_else(|| WxError::new(40013))
    }

    /// The app if `secret` is its AppSecret: 40013 / 40125 otherwise.
    pub(super) fn authenticate(&self, appid: &str, secret: &str) -> Result<App, WxError> {
        let app = self.app(appid)?;
        if app.secret != secret {
            return Err(WxError::new(40125));
        }
        Ok(app.clone())
    }

    /// Presents `code` to an `appid` endpoint of kind `usage`, consuming it.
    pub(super) fn redeem_code(&mut self, appid: &str, code: &str, usage: CodeUse) -> Redemption {
        let now = self.now();
        let Some(stored) = self.codes.get_mut(code) else {
            return Redemption::Unknown;
        };
        // A code is looked up within its own app and API: another app
        // presenting it learns nothing and does not burn it.
        if stored.appid != appid || stored.usage != usage {
            return Redemption::Unknown;
        }
        let was_used = std::mem::replace(&mut stored.used, true);
        if was_used {
            Redemption::Used
        } else if now >= stored.expires_at {
            Redemption::Expired
        } else {
            Redemption::Fresh { user: stored.user.clone(), scope: stored.scope.clone() }
        }
    }

    /// Issues a code for `user` in `appid`.
    pub(super) fn mint_code(&mut self, appid: &str, user: &str, usage: CodeUse, scope: &str, ttl_secs: i64) -> String {
        let code = if usage == CodeUse::Phone { ids::phone_code() } else { ids::code() };
        let stored = Code {
            appid: appid.to_owned(),
            user: user.to_owned(),
            usage,
            scope: scope.to_owned(),
            expires_at: self.now() + ttl_secs,
            used: false,
        };
        self.codes.insert(code.clone(), stored);
        self.inserted();
        code
    }

    /// Gives `user` a new session_key in `appid`; the previous one stops
    /// being the valid one (§1).
    pub(super) fn rotate_session_key(&mut self, user: &str, appid: &str) -> String {
        let key = ids::session_key();
        self.session_keys.insert((user.to_owned(), appid.to_owned()), key.clone());
        key
    }

    /// Counts one call of `api` for `appid` today; false when that would
    /// exceed `limit`. Days are Beijing days, when WeChat resets quotas.
    pub(super) fn take_daily_quota(&mut self, appid: &str, api: &'static str, limit: u32) -> bool {
        let day = (self.now() + 8 * 3600).div_euclid(86_400);
        let used = self.daily.entry((appid.to_owned(), api, day)).or_insert(0);
        if *used >= limit {
            return false;
        }
        *used += 1;
        true
    }

    /// Records an insertion into a store that grows per request, and now
    /// and then forgets what no test can still be asking about.
    pub(super) fn inserted(&mut self) {
        self.insertions += 1;
        if self.insertions.is_multiple_of(PRUNE_EVERY) {
            self.prune();
        }
    }

    fn prune(&mut self) {
        let now = self.now();
        // Kept a while after expiry so that late use still gets the
        // "expired" / "used" answer rather than "invalid".
        self.codes.retain(|_, code| code.expires_at + 3600 > now);
        self.sns_tokens.retain(|_, token| token.expires_at + 86_400 > now);
        self.sns_refresh.retain(|_, token| token.expires_at + 86_400 > now);
        self.app_tokens.retain(|_, token| token.expires_at + 86_400 > now);
        let today = (now + 8 * 3600).div_euclid(86_400);
        self.daily.retain(|(_, _, day), _| *day + 1 >= today);
    }

    /// Starts a call to a WeChat path: counts it and takes the next queued
    /// fault for it. Returns the fault and the Content-Type override.
    pub(super) fn enter_call(&mut self, path: &str) -> (Option<Fault>, Option<String>) {
        *self.calls.entry(path.to_owned()).or_insert(0) += 1;
        let fault = self.faults.get_mut(path).and_then(|queue| {
            let front = queue.front_mut()?;
            if front.times > 1 {
                front.times -= 1;
                Some(front.clone())
            } else {
                queue.pop_front()
            }
        });
        (fault, self.content_types.get(path).cloned())
    }

    fn user(&self, key: &str) -> Result<&User, SimError> {
        self.users.get(key).ok_or_else(|| SimError::UnknownUser(key.to_owned()))
    }

    fn known_app(&self, appid: &str) -> Result<&App, SimError> {
        self.apps.get(appid).ok_or_else(|| SimError::UnknownApp(appid.to_owned()))
    }
}

/// Splits `+8613800138000`, `13800138000` or `+852 91234567`.
fn parse_phone(raw: &str) -> Result<Phone, SimError> {
    let raw = raw.trim();
    let (country_code, national) = match raw.strip_prefix('+') {
        Some(rest) => match rest.split_once(' ') {
            Some((cc, number)) => (cc.to_owned(), number.replace([' ', '-'], "")),
            // Without a separator only China's code is unambiguous enough
            // to split off (no table of calling codes here).
            None => match rest.strip_prefix("86") {
                Some(number) => ("86".to_owned(), number.to_owned()),
                None => {
                    return Err(SimError::Invalid(format!(
                        "phone {raw}: write non-Chinese numbers as \"+CC NUMBER\" (with a space)"
                    )));
                }
            },
        },
        None => ("86".to_owned(), raw.replace([' ', '-'], "")),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(&country_code) || country_code.len() > 3 || !digits(&national) {
        return Err(SimError::Invalid(format!("phone {raw}: not a phone number")));
    }
    Ok(Phone { country_code, national })
}

/// Counts only: the state holds secrets, codes and tokens.
impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (apps, users) = self.with(|state| (state.apps.len(), state.users.len()));
        f.debug_struct("Simulator").field("apps", &apps).field("users", &users).finish_non_exhaustive()
    }
}

impl Simulator {
    /// An empty simulator: no apps, no users, the clock at real time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` under the lock. Never held across an await.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panic elsewhere while holding the lock leaves plain data
        // behind, still usable: no reason to fail every later call.
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }

    /// Registers the apps, then the users, of a seed file.
    pub fn apply_seed(&self, seed: Seed) -> Result<(), SimError> {
        for app in seed.apps {
            self.add_app(app)?;
        }
        for user in seed.users {
            self.add_user(user)?;
        }
        Ok(())
    }

    /// Registers an app.
    pub fn add_app(&self, app: NewApp) -> Result<(), SimError> {
        if app.appid.is_empty() || app.secret.is_empty() {
            return Err(SimError::Invalid("appid and secret must not be empty".into()));
        }
        let empty = |v: &Option<String>| v.as_deref().is_some_and(str::is_empty);
        if empty(&app.open_platform) || empty(&app.redirect_domain) {
            return Err(SimError::Invalid("open_platform and redirect_domain must not be empty strings".into()));
        }
        self.with(|state| {
            if state.apps.contains_key(&app.appid) {
                return Err(SimError::AppExists(app.appid.clone()));
            }
            let stored = App {
                name: app.name.unwrap_or_else(|| app.appid.clone()),
                secret: app.secret,
                kind: app.kind,
                open_platform: app.open_platform,
                redirect_domain: app.redirect_domain.map(|d| d.to_ascii_lowercase()),
            };
            state.apps.insert(app.appid, stored);
            Ok(())
        })
    }

    /// Registers a user.
    pub fn add_user(&self, user: NewUser) -> Result<(), SimError> {
        if user.key.is_empty() {
            return Err(SimError::Invalid("the user key must not be empty".into()));
        }
        let phone = user.phone.as_deref().map(parse_phone).transpose()?;
        self.with(|state| {
            if state.users.contains_key(&user.key) {
                return Err(SimError::UserExists(user.key.clone()));
            }
            let stored = User {
                key: user.key.clone(),
                nickname: user.nickname,
                avatar: user.avatar.unwrap_or_default(),
                phone,
                snapshot: user.snapshot,
            };
            state.users.insert(user.key, stored);
            Ok(())
        })
    }

    /// The OpenID (and UnionID, when the app is bound to an Open Platform)
    /// WeChat gives `user` in `appid`. Snapshot-page logins in an official
    /// account get fake ids instead.
    pub fn identity_of(&self, user: &str, appid: &str) -> Result<Identity, SimError> {
        self.with(|state| {
            let app = state.known_app(appid)?;
            let user = state.user(user)?;
            Ok(Identity { openid: ids::openid(&user.key, appid), unionid: app.unionid_of(&user.key) })
        })
    }

    /// A `wx.login` code (5 minutes, single use) for a mini-program.
    pub fn mint_jscode(&self, appid: &str, user: &str) -> Result<String, SimError> {
        self.with(|state| {
            state.user(user)?;
            let app = state.known_app(appid)?;
            if app.kind != AppKind::MiniProgram {
                return Err(SimError::Invalid(format!("{appid} is a {} app, not a miniprogram", app.kind)));
            }
            Ok(state.mint_code(appid, user, CodeUse::JsCode, "", SHORT_CODE_TTL_SECS))
        })
    }

    /// An OAuth code, as the QR page, the official-account page or the
    /// mobile SDK hands it out. `scope` defaults to snsapi_userinfo
    /// (official account, mobile app) or snsapi_login (website).
    pub fn mint_oauth_code(&self, appid: &str, user: &str, scope: Option<&str>) -> Result<String, SimError> {
        self.with(|state| {
            state.user(user)?;
            let app = state.known_app(appid)?;
            let allowed = app.kind.oauth_scopes();
            let Some(default) = allowed.first() else {
                return Err(SimError::Invalid(format!("{appid} is a {} app: it has no OAuth codes", app.kind)));
            };
            let scope = scope.unwrap_or(default);
            if !allowed.contains(&scope) {
                return Err(SimError::Invalid(format!("scope {scope} is not one of {allowed:?} for a {}", app.kind)));
            }
            let ttl = app.kind.oauth_code_ttl_secs();
            Ok(state.mint_code(appid, user, CodeUse::OAuth, scope, ttl))
        })
    }

    /// A `getPhoneNumber` code (5 minutes, single use) for a mini-program
    /// user who has a phone number.
    pub fn mint_phone_code(&self, appid: &str, user: &str) -> Result<String, SimError> {
        self.with(|state| {
            if state.user(user)?.phone.is_none() {
                return Err(SimError::Invalid(format!("user {user} has no phone number")));
            }
            let app = state.known_app(appid)?;
            if app.kind != AppKind::MiniProgram {
                return Err(SimError::Invalid(format!("{appid} is a {} app, not a miniprogram", app.kind)));
            }
            Ok(state.mint_code(appid, user, CodeUse::Phone, "", SHORT_CODE_TTL_SECS))
        })
    }

    /// The session_key `jscode2session` last returned for `user` in
    /// `appid` (the only valid one), if any.
    pub fn session_key_of(&self, user: &str, appid: &str) -> Option<String> {
        self.with(|state| state.session_keys.get(&(user.to_owned(), appid.to_owned())).cloned())
    }

    /// Queues `fault` for the next `fault.times` calls to `fault.path`,
    /// after faults already queued for that path.
    pub fn inject_fault(&self, fault: Fault) -> Result<(), SimError> {
        if !fault.path.starts_with('/') || fault.path.starts_with("/__sim") {
            return Err(SimError::Invalid("path must be a WeChat path such as /sns/jscode2session".into()));
        }
        if fault.errcode.is_none() && fault.http_status.is_none() && fault.delay_ms.is_none() {
            return Err(SimError::Invalid("set errcode, http_status or delay_ms".into()));
        }
        if fault.times == 0 {
            return Err(SimError::Invalid("times must be at least 1".into()));
        }
        if let Some(status) = fault.http_status
            && StatusCode::from_u16(status).is_err()
        {
            return Err(SimError::Invalid(format!("{status} is not an HTTP status")));
        }
        self.with(|state| state.faults.entry(fault.path.clone()).or_default().push_back(fault));
        Ok(())
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.with(|state| state.faults.clear());
    }

    /// Calls to a WeChat path since start (or the last reset).
    pub fn call_count(&self, path: &str) -> u64 {
        self.with(|state| state.calls.get(path).copied().unwrap_or(0))
    }

    /// Calls per WeChat path since start (or the last reset).
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        self.with(|state| state.calls.clone())
    }

    /// Zeroes the call counters.
    pub fn reset_calls(&self) {
        self.with(|state| state.calls.clear());
    }

    /// Sends `value` as the Content-Type of every answer on `path`.
    pub fn set_content_type(&self, path: &str, value: &str) -> Result<(), SimError> {
        if HeaderValue::from_str(value).is_err() || value.is_empty() {
            return Err(SimError::Invalid(format!("{value:?} is not a header value")));
        }
        self.with(|state| state.content_types.insert(path.to_owned(), value.to_owned()));
        Ok(())
    }

    /// Moves the simulated clock forward: codes and tokens expire as if
    /// that much time had passed.
    pub fn advance_clock(&self, secs: u64) {
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        self.with(|state| state.clock_offset_secs = state.clock_offset_secs.saturating_add(secs));
    }

    /// The simulated Unix time.
    pub fn now(&self) -> i64 {
        self.with(|state| state.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_split_into_country_code_and_number() {
        let cn = parse_phone("+8613800138000").unwrap();
        assert_eq!((cn.country_code.as_str(), cn.national.as_str()), ("86", "13800138000"));
        let plain = parse_phone("13800138000").unwrap();
        assert_eq!(plain.country_code, "86");
        let hk = parse_phone("+852 9123 4567").unwrap();
        assert_eq!((hk.country_code.as_str(), hk.national.as_str()), ("852", "91234567"));
        assert!(parse_phone("+85291234567").is_err());
        assert!(parse_phone("+86abc").is_err());
    }

    #[test]
    fn a_code_is_burnt_by_its_first_presentation_only_in_its_own_app() {
        let sim = Simulator::new();
        sim.add_app(NewApp::new("wxa", "s", AppKind::MiniProgram)).unwrap();
        sim.add_app(NewApp::new("wxb", "s", AppKind::MiniProgram)).unwrap();
        sim.add_user(NewUser::new("alice", "Alice")).unwrap();
        let code = sim.mint_jscode("wxa", "alice").unwrap();
        sim.with(|s| {
            assert_eq!(s.redeem_code("wxb", &code, CodeUse::JsCode), Redemption::Unknown);
            assert_eq!(s.redeem_code("wxa", &code, CodeUse::OAuth), Redemption::Unknown);
            assert!(matches!(s.redeem_code("wxa", &code, CodeUse::JsCode), Redemption::Fresh { .. }));
            assert_eq!(s.redeem_code("wxa", &code, CodeUse::JsCode), Redemption::Used);
        });
    }

    #[test]
    fn faults_are_taken_in_order_and_counted_down() {
        let sim = Simulator::new();
        sim.inject_fault(Fault::errcode("/p", -1).times(2)).unwrap();
        sim.inject_fault(Fault::http_status("/p", 500)).unwrap();
        let taken: Vec<_> = (0..4).map(|_| sim.with(|s| s.enter_call("/p").0)).collect();
        assert_eq!(taken[0].as_ref().and_then(|f| f.errcode), Some(-1));
        assert_eq!(taken[1].as_ref().and_then(|f| f.errcode), Some(-1));
        assert_eq!(taken[2].as_ref().and_then(|f| f.http_status), Some(500));
        assert!(taken[3].is_none());
        assert_eq!(sim.call_count("/p"), 4);
    }
}

//! The WeChat API as it really is (shared/docs/wechat-api.md): errors come
//! with HTTP 200 and an `errcode` (absent or 0 means success), bodies are
//! JSON whatever the Content-Type says, every call has a timeout, and
//! nothing secret — codes, tokens, session keys, OpenIDs, UnionIDs, the
//! AppSecret — is ever logged (reqwest errors are stripped of their URL,
//! which carries the query).

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::{SecretString, WechatSettings};

/// What went wrong, in terms of what someone must do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WechatError {
    /// The code is wrong, used or expired: the person must log in again.
    #[error("WeChat refused the login code (errcode {0})")]
    InvalidCode(i64),
    /// WeChat is busy or rate-limited: try again later.
    #[error("WeChat is temporarily unavailable (errcode {0})")]
    Temporary(i64),
    /// wxfed's app credentials or server are not accepted: an operator must act.
    #[error("WeChat rejected this app's configuration (errcode {errcode}: {meaning})")]
    Configuration { errcode: i64, meaning: &'static str },
    /// An access token was invalid or expired.
    #[error("WeChat refused the access token (errcode {0})")]
    InvalidToken(i64),
    /// WeChat blocked this login (high-risk user).
    #[error("WeChat blocked this login (errcode {0})")]
    Blocked(i64),
    /// Any other errcode.
    #[error("WeChat answered errcode {0}")]
    Other(i64),
    /// No answer in time, an HTTP error, or an unreadable body.
    #[error("WeChat could not be reached: {0}")]
    Unreachable(String),
}

impl WechatError {
    /// Maps a documented errcode to what it means for wxfed.
    pub fn from_errcode(errcode: i64) -> Self {
        match errcode {
            40029 | 40163 | 42003 | 40030 | 42002 => Self::InvalidCode(errcode),
            -1 | 45011 | 45009 => Self::Temporary(errcode),
            40013 => Self::Configuration { errcode, meaning: "invalid appid" },
            40125 | 41004 => Self::Configuration { errcode, meaning: "invalid AppSecret" },
            40164 | 89503 | 89501 | 89506 | 89507 => {
                Self::Configuration { errcode, meaning: "this server's IP is not in the app's whitelist" }
            }
            40243 => Self::Configuration { errcode, meaning: "the AppSecret is frozen" },
            40002 | 41002 | 41008 => Self::Configuration { errcode, meaning: "wxfed sent an incomplete request" },
            40001 | 40014 | 42001 | 41001 => Self::InvalidToken(errcode),
            40226 => Self::Blocked(errcode),
            other => Self::Other(other),
        }
    }

    /// A bounded name for the kind of failure (metrics label).
    pub fn class(&self) -> &'static str {
        match self {
            Self::InvalidCode(_) => "invalid_code",
            Self::Temporary(_) => "temporary",
            Self::Configuration { .. } => "configuration",
            Self::InvalidToken(_) => "invalid_token",
            Self::Blocked(_) => "blocked",
            Self::Other(_) => "other",
            Self::Unreachable(_) => "transport",
        }
    }

    /// The errcode, if WeChat gave one (for the audit trail).
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::InvalidCode(c) | Self::Temporary(c) | Self::InvalidToken(c) | Self::Blocked(c) | Self::Other(c) => {
                Some(*c)
            }
            Self::Configuration { errcode, .. } => Some(*errcode),
            Self::Unreachable(_) => None,
        }
    }

    /// Whether an operator has to fix something (logged loudly).
    pub fn needs_operator(&self) -> bool {
        matches!(self, Self::Configuration { .. })
    }
}

/// An app's credentials, as decrypted for one call.
#[derive(Clone)]
pub struct AppCredentials {
    pub appid: String,
    pub secret: SecretString,
}

/// `sns/jscode2session`.
#[derive(Debug, Clone, Deserialize)]
pub struct CodeSession {
    pub openid: String,
    pub session_key: SecretString,
    #[serde(default)]
    pub unionid: Option<String>,
}

/// `sns/oauth2/access_token` (website, official account, mobile app).
#[derive(Debug, Clone, Deserialize)]
pub struct OauthToken {
    pub access_token: SecretString,
    #[serde(default)]
    pub expires_in: i64,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    pub openid: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub unionid: Option<String>,
    /// 1 for an official account's "snapshot page" user: fake ids.
    #[serde(default)]
    pub is_snapshotuser: Option<i64>,
}

/// `sns/userinfo`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    pub openid: String,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub headimgurl: Option<String>,
    #[serde(default)]
    pub unionid: Option<String>,
}

/// `cgi-bin/stable_token`.
#[derive(Debug, Clone, Deserialize)]
pub struct AppAccessToken {
    pub access_token: SecretString,
    pub expires_in: i64,
}

/// `wxa/business/getuserphonenumber`'s `phone_info`.
#[derive(Debug, Clone, Deserialize)]
pub struct PhoneInfo {
    #[serde(rename = "phoneNumber")]
    pub phone_number: String,
    #[serde(rename = "purePhoneNumber")]
    pub pure_phone_number: String,
    /// A string in the real API, a number in one doc sample: accept both.
    #[serde(rename = "countryCode", deserialize_with = "string_or_number")]
    pub country_code: String,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        _ => Err(serde::de::Error::custom("expected a string or a number")),
    }
}

impl PhoneInfo {
    /// E.164 (`+8613800138000`).
    pub fn e164(&self) -> String {
        format!("+{}{}", self.country_code.trim_start_matches('+'), self.pure_phone_number)
    }
}

/// WeChat's answer body: JSON whatever the Content-Type says, and an
/// `errcode` other than 0 is an error (absent means success). An
/// `errcode` that is not an integer is no answer wxfed understands.
fn read_answer(body: &[u8]) -> Result<serde_json::Value, WechatError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| WechatError::Unreachable("the answer is not JSON".into()))?;
    match value.get("errcode") {
        None | Some(serde_json::Value::Null) => Ok(value),
        Some(errcode) => match errcode.as_i64() {
            Some(0) => Ok(value),
            Some(errcode) => Err(WechatError::from_errcode(errcode)),
            None => Err(WechatError::Unreachable("the answer's errcode is not a number".into())),
        },
    }
}

/// A successful answer as `T`, checked beyond its shape ([`Answer`]).
fn decode<T: Answer>(value: serde_json::Value, endpoint: &'static str) -> Result<T, WechatError> {
    serde_json::from_value::<T>(value)
        .ok()
        .and_then(Answer::checked)
        .ok_or_else(|| WechatError::Unreachable(format!("unexpected answer from {endpoint}")))
}

/// What a successful answer must satisfy beyond its JSON shape before
/// anything is stored or decided on it.
trait Answer: DeserializeOwned {
    /// The answer, normalised, or `None` when it cannot be right.
    fn checked(self) -> Option<Self>;
}

/// OpenIDs and UnionIDs are short printable ASCII (28 characters in
/// practice). An empty one would make every such login the same person.
fn is_wechat_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// An empty UnionID is no UnionID; any other must be a real identifier.
fn checked_unionid(unionid: Option<String>) -> Option<Option<String>> {
    match unionid {
        None => Some(None),
        Some(u) if u.is_empty() => Some(None),
        Some(u) if is_wechat_id(&u) => Some(Some(u)),
        Some(_) => None,
    }
}

impl Answer for CodeSession {
    fn checked(mut self) -> Option<Self> {
        if !is_wechat_id(&self.openid) || self.session_key.expose().is_empty() {
            return None;
        }
        self.unionid = checked_unionid(self.unionid)?;
        Some(self)
    }
}

impl Answer for OauthToken {
    fn checked(mut self) -> Option<Self> {
        if !is_wechat_id(&self.openid) || self.access_token.expose().is_empty() {
            return None;
        }
        self.unionid = checked_unionid(self.unionid)?;
        Some(self)
    }
}

impl Answer for UserInfo {
    fn checked(mut self) -> Option<Self> {
        if !is_wechat_id(&self.openid) {
            return None;
        }
        self.unionid = checked_unionid(self.unionid)?;
        Some(self)
    }
}

impl Answer for AppAccessToken {
    fn checked(self) -> Option<Self> {
        (!self.access_token.expose().is_empty()).then_some(self)
    }
}

#[derive(Clone)]
pub struct WechatClient {
    http: reqwest::Client,
    api_base: String,
}

/// How long to wait before the one retry after WeChat's `-1` (busy).
const BUSY_RETRY_DELAY: Duration = Duration::from_millis(300);

impl WechatClient {
    pub fn new(settings: &WechatSettings) -> Result<Self, String> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wxfed/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Self { http, api_base: settings.api_base.clone() })
    }

    /// One request; the body is parsed as JSON whatever its Content-Type.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<serde_json::Value, WechatError> {
        let response = request.send().await.map_err(|e| WechatError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(WechatError::Unreachable(format!("HTTP {}", status.as_u16())));
        }
        let body = response.bytes().await.map_err(|e| WechatError::Unreachable(e.without_url().to_string()))?;
        read_answer(&body)
    }

    /// Sends, and on WeChat's "system busy" (-1) tries exactly once more.
    /// Safe for code exchanges: a -1 answer did not use the code.
    async fn call<T: Answer>(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        endpoint: &'static str,
    ) -> Result<T, WechatError> {
        let started = std::time::Instant::now();
        let value = match self.send(build()).await {
            Err(WechatError::Temporary(-1)) => {
                tracing::warn!(endpoint, "WeChat answered -1 (busy); retrying once");
                tokio::time::sleep(BUSY_RETRY_DELAY).await;
                self.send(build()).await
            }
            other => other,
        };
        let parsed = value.and_then(|value| decode(value, endpoint));
        let class = parsed.as_ref().err().map_or("ok", WechatError::class);
        crate::metrics::wechat_call(endpoint, class, started.elapsed().as_secs_f64());
        parsed.inspect_err(|error| log_failure(endpoint, error))
    }

    fn get(&self, path: &str, query: Vec<(&'static str, String)>) -> impl Fn() -> reqwest::RequestBuilder {
        let (http, url) = (self.http.clone(), format!("{}{path}", self.api_base));
        move || http.get(&url).query(&query)
    }

    /// Mini-program login: a `wx.login` code for OpenID, session key, UnionID.
    pub async fn code_to_session(&self, app: &AppCredentials, js_code: &str) -> Result<CodeSession, WechatError> {
        let query = vec![
            ("appid", app.appid.clone()),
            ("secret", app.secret.expose().to_owned()),
            ("js_code", js_code.to_owned()),
            ("grant_type", "authorization_code".to_owned()),
        ];
        self.call(self.get("/sns/jscode2session", query), "sns/jscode2session").await
    }

    /// jscode2session's answer as WeChat sent it (errors included), for the
    /// facade, which must return it unchanged. Only a failure to reach
    /// WeChat is an error here.
    pub async fn code_to_session_raw(
        &self,
        app: &AppCredentials,
        js_code: &str,
    ) -> Result<serde_json::Value, WechatError> {
        let query = [
            ("appid", app.appid.as_str()),
            ("secret", app.secret.expose()),
            ("js_code", js_code),
            ("grant_type", "authorization_code"),
        ];
        let url = format!("{}/sns/jscode2session", self.api_base);
        let started = std::time::Instant::now();
        let answer = self.send_raw(&url, &query).await;
        let class = match &answer {
            Ok(value) => match value.get("errcode").and_then(serde_json::Value::as_i64) {
                None | Some(0) => "ok",
                Some(errcode) => WechatError::from_errcode(errcode).class(),
            },
            Err(error) => error.class(),
        };
        crate::metrics::wechat_call("sns/jscode2session", class, started.elapsed().as_secs_f64());
        answer
    }

    async fn send_raw(&self, url: &str, query: &[(&str, &str)]) -> Result<serde_json::Value, WechatError> {
        let response = self
            .http
            .get(url)
            .query(query)
            .send()
            .await
            .map_err(|e| WechatError::Unreachable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(WechatError::Unreachable(format!("HTTP {}", response.status().as_u16())));
        }
        let body = response.bytes().await.map_err(|e| WechatError::Unreachable(e.without_url().to_string()))?;
        serde_json::from_slice(&body).map_err(|_| WechatError::Unreachable("the answer is not JSON".into()))
    }

    /// Website / official account / mobile app login code for a user token.
    pub async fn oauth_access_token(&self, app: &AppCredentials, code: &str) -> Result<OauthToken, WechatError> {
        let query = vec![
            ("appid", app.appid.clone()),
            ("secret", app.secret.expose().to_owned()),
            ("code", code.to_owned()),
            ("grant_type", "authorization_code".to_owned()),
        ];
        self.call(self.get("/sns/oauth2/access_token", query), "sns/oauth2/access_token").await
    }

    pub async fn userinfo(&self, access_token: &SecretString, openid: &str) -> Result<UserInfo, WechatError> {
        let query = vec![
            ("access_token", access_token.expose().to_owned()),
            ("openid", openid.to_owned()),
            ("lang", "zh_CN".to_owned()),
        ];
        self.call(self.get("/sns/userinfo", query), "sns/userinfo").await
    }

    /// The app's access token in stable mode: the same token while it is
    /// valid, however many instances ask (`force_refresh` replaces it).
    pub async fn stable_token(&self, app: &AppCredentials, force_refresh: bool) -> Result<AppAccessToken, WechatError> {
        let (http, url) = (self.http.clone(), format!("{}/cgi-bin/stable_token", self.api_base));
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": app.appid,
            "secret": app.secret.expose(),
            "force_refresh": force_refresh,
        });
        self.call(move || http.post(&url).json(&body), "cgi-bin/stable_token").await
    }

    /// A getPhoneNumber code for the verified phone number. `openid` is the
    /// person the caller believes sent the code: WeChat refuses a code that
    /// belongs to someone else, so a person cannot present another's phone.
    pub async fn phone_number(
        &self,
        access_token: &SecretString,
        code: &str,
        openid: &str,
    ) -> Result<PhoneInfo, WechatError> {
        #[derive(Deserialize)]
        struct PhoneAnswer {
            phone_info: PhoneInfo,
        }
        impl Answer for PhoneAnswer {
            fn checked(self) -> Option<Self> {
                let phone = &self.phone_info;
                let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
                (digits(&phone.pure_phone_number) && digits(phone.country_code.trim_start_matches('+'))).then_some(self)
            }
        }
        let (http, url) = (self.http.clone(), format!("{}/wxa/business/getuserphonenumber", self.api_base));
        let token = access_token.expose().to_owned();
        let body = serde_json::json!({ "code": code, "openid": openid });
        let answer: PhoneAnswer = self
            .call(
                move || http.post(&url).query(&[("access_token", token.as_str())]).json(&body),
                "wxa/getuserphonenumber",
            )
            .await?;
        Ok(answer.phone_info)
    }
}

/// Operator problems are logged loudly; the rest quietly. Never the
/// request itself: it carries the secret and the code.
fn log_failure(endpoint: &'static str, error: &WechatError) {
    if error.needs_operator() {
        tracing::error!(endpoint, %error, "WeChat rejected wxfed's configuration; an operator must fix the app settings");
    } else {
        tracing::warn!(endpoint, %error, "WeChat call failed");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn errcodes_map_to_what_someone_must_do() {
        assert_eq!(WechatError::from_errcode(40163), WechatError::InvalidCode(40163));
        assert_eq!(WechatError::from_errcode(42003), WechatError::InvalidCode(42003));
        assert_eq!(WechatError::from_errcode(-1), WechatError::Temporary(-1));
        assert_eq!(WechatError::from_errcode(45011), WechatError::Temporary(45011));
        assert!(WechatError::from_errcode(40125).needs_operator());
        assert!(WechatError::from_errcode(40164).needs_operator());
        assert_eq!(WechatError::from_errcode(42001), WechatError::InvalidToken(42001));
        assert_eq!(WechatError::from_errcode(12345), WechatError::Other(12345));
    }

    #[test]
    fn country_codes_arrive_as_strings_or_numbers() {
        let a: PhoneInfo =
            serde_json::from_str(r#"{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86"}"#)
                .unwrap();
        let b: PhoneInfo =
            serde_json::from_str(r#"{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":86}"#)
                .unwrap();
        assert_eq!(a.e164(), "+8613800138000");
        assert_eq!(b.e164(), "+8613800138000");
    }
}

/// WeChat's answers as wxfed reads them (issue 10): any body is either an
/// answer that passes the checks or a `WechatError`, never a panic; an
/// errcode maps to its meaning whatever else the body says; a well-formed
/// answer reads back as it was sent.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod proptests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn parse<T: Answer>(body: &[u8]) -> Result<T, WechatError> {
        read_answer(body).and_then(|value| decode(value, "test"))
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            "\\PC{0,30}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An object with WeChat's field names, each absent, well-typed or junk.
    fn answer_like() -> impl Strategy<Value = Value> {
        let field = || {
            proptest::option::of(prop_oneof![
                3 => "[A-Za-z0-9_-]{0,40}".prop_map(Value::from),
                1 => "\\PC{0,40}".prop_map(Value::from),
                1 => any_json(),
            ])
        };
        (
            field(),
            field(),
            field(),
            field(),
            proptest::option::of(prop_oneof![
                Just(json!(0)),
                Just(json!(40029)),
                Just(json!(-1)),
                any::<i64>().prop_map(Value::from),
                any_json(),
            ]),
        )
            .prop_map(|(openid, unionid, session_key, access_token, errcode)| {
                let mut map = serde_json::Map::new();
                for (name, value) in [
                    ("openid", openid),
                    ("unionid", unionid),
                    ("session_key", session_key),
                    ("access_token", access_token),
                    ("errcode", errcode),
                ] {
                    if let Some(value) = value {
                        map.insert(name.to_owned(), value);
                    }
                }
                Value::Object(map)
            })
    }

    /// What may come out of a successful answer: real identifiers only.
    fn plausible_ids(openid: &str, unionid: Option<&str>) -> Result<(), TestCaseError> {
        prop_assert!(is_wechat_id(openid), "openid {:?}", openid);
        prop_assert!(unionid.is_none_or(is_wechat_id), "unionid {:?}", unionid);
        Ok(())
    }

    fn all_readers(body: &[u8]) -> Result<(), TestCaseError> {
        if let Ok(session) = parse::<CodeSession>(body) {
            plausible_ids(&session.openid, session.unionid.as_deref())?;
            prop_assert!(!session.session_key.expose().is_empty());
        }
        if let Ok(token) = parse::<OauthToken>(body) {
            plausible_ids(&token.openid, token.unionid.as_deref())?;
        }
        if let Ok(info) = parse::<UserInfo>(body) {
            plausible_ids(&info.openid, info.unionid.as_deref())?;
        }
        let _ = parse::<AppAccessToken>(body);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_bytes_are_an_answer_or_an_error(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            all_readers(&body)?;
        }

        #[test]
        fn any_json_is_an_answer_or_an_error(value in any_json()) {
            all_readers(&serde_json::to_vec(&value).unwrap())?;
        }

        #[test]
        fn answer_shaped_json_is_a_plausible_answer_or_an_error(value in answer_like()) {
            let body = serde_json::to_vec(&value).unwrap();
            all_readers(&body)?;
            // A non-zero integer errcode is that error, whatever else is there.
            if let Some(errcode) = value.get("errcode").and_then(Value::as_i64).filter(|c| *c != 0) {
                prop_assert_eq!(parse::<CodeSession>(&body).err(), Some(WechatError::from_errcode(errcode)));
            }
        }

        #[test]
        fn well_formed_answers_read_back(
            openid in "o[A-Za-z0-9_-]{27}",
            unionid in proptest::option::of("o[A-Za-z0-9_-]{27}"),
            session_key in "[A-Za-z0-9+/]{22}==",
            nickname in proptest::option::of("\\PC{0,20}"),
            errcode_zero in any::<bool>(),
        ) {
            let mut session = json!({ "openid": openid, "session_key": session_key });
            let mut info = json!({ "openid": openid, "nickname": nickname, "headimgurl": "https://x/y" });
            let mut token = json!({ "access_token": "ACCESS", "expires_in": 7200, "refresh_token": "R",
                                    "openid": openid, "scope": "snsapi_userinfo" });
            for answer in [&mut session, &mut info, &mut token] {
                if let Some(u) = &unionid {
                    answer["unionid"] = json!(u);
                }
                if errcode_zero {
                    answer["errcode"] = json!(0);
                }
            }
            let got = parse::<CodeSession>(&serde_json::to_vec(&session).unwrap()).unwrap();
            prop_assert_eq!(&got.openid, &openid);
            prop_assert_eq!(got.unionid.as_ref(), unionid.as_ref());
            prop_assert_eq!(got.session_key.expose(), session_key.as_str());
            let got = parse::<UserInfo>(&serde_json::to_vec(&info).unwrap()).unwrap();
            prop_assert_eq!(&got.openid, &openid);
            prop_assert_eq!(got.nickname, nickname);
            prop_assert_eq!(got.unionid.as_ref(), unionid.as_ref());
            let got = parse::<OauthToken>(&serde_json::to_vec(&token).unwrap()).unwrap();
            prop_assert_eq!(&got.openid, &openid);
            prop_assert_eq!(got.expires_in, 7200);
            prop_assert_eq!(got.unionid, unionid);
        }
    }

    #[test]
    fn empty_or_odd_identifiers_are_not_answers() {
        let bad = |body: &str| parse::<CodeSession>(body.as_bytes()).is_err();
        assert!(bad(r#"{"openid":"","session_key":"k"}"#), "an empty OpenID would be everyone");
        assert!(bad(r#"{"openid":"o 1","session_key":"k"}"#));
        assert!(bad(r#"{"openid":"o1","session_key":""}"#));
        assert!(bad(r#"{"openid":"o1","session_key":"k","unionid":"u\n1"}"#));
        assert!(bad(r#"{"openid":"o1","session_key":"k","errcode":"40029"}"#));
        let ok = parse::<CodeSession>(br#"{"openid":"o1","session_key":"k","unionid":""}"#).unwrap();
        assert_eq!(ok.unionid, None, "an empty UnionID is none");
        assert_eq!(
            parse::<CodeSession>(br#"{"errcode":40029,"errmsg":"invalid code"}"#).err(),
            Some(WechatError::InvalidCode(40029))
        );
        assert!(matches!(parse::<UserInfo>(b"<html>busy</html>"), Err(WechatError::Unreachable(_))));
    }
}

//! WeChat's response conventions (wechat-api.md §0): errors are HTTP 200
//! with `{"errcode","errmsg"}` and a `rid` suffix on errmsg; success bodies
//! carry no errcode; parameters come from the query string; the
//! Content-Type depends on the host and path, not on the body.

use std::collections::HashMap;

use actix_web::HttpResponse;
use serde::Serialize;

use super::ids;

/// A WeChat error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WxError {
    pub errcode: i64,
    pub errmsg: String,
}

impl WxError {
    /// The error with WeChat's usual errmsg for `errcode`.
    pub(super) fn new(errcode: i64) -> Self {
        Self { errcode, errmsg: default_errmsg(errcode).to_owned() }
    }

    /// The error with a specific errmsg.
    pub(super) fn with_msg(errcode: i64, errmsg: impl Into<String>) -> Self {
        Self { errcode, errmsg: errmsg.into() }
    }

    /// The JSON body, errmsg suffixed with a fresh request id.
    pub(super) fn body(&self) -> String {
        let errmsg = format!("{}, rid: {}", self.errmsg, ids::rid(chrono::Utc::now().timestamp()));
        serde_json::json!({ "errcode": self.errcode, "errmsg": errmsg }).to_string()
    }
}

/// WeChat's errmsg texts for the codes the simulator produces (as seen in
/// the wild; clients must not parse them).
pub(super) fn default_errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        0 => "ok",
        40001 => "invalid credential, access_token is invalid or not latest",
        40002 => "invalid grant_type",
        40003 => "invalid openid",
        40013 => "invalid appid",
        40014 => "invalid access_token",
        40029 => "invalid code",
        40030 => "invalid refresh_token",
        40125 => "invalid appsecret",
        40163 => "code been used",
        40164 => "invalid ip, not in whitelist",
        40226 => "code blocked",
        41001 => "access_token missing",
        41002 => "appid missing",
        41003 => "refresh_token missing",
        41004 => "appsecret missing",
        41008 => "missing code",
        41009 => "missing openid",
        42001 => "access_token expired",
        42002 => "refresh_token expired",
        42003 => "code expired",
        43002 => "require POST method",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit mustslower retry next minute",
        47001 => "data format error",
        48001 => "api unauthorized",
        _ => "system error",
    }
}

/// Turns an endpoint's result into WeChat's answer: HTTP 200 either way.
/// The Content-Type is set later, per path, by the gate.
pub(super) fn reply<T: Serialize>(result: Result<T, WxError>) -> HttpResponse {
    let body = match result.map(|ok| serde_json::to_string(&ok)) {
        Ok(Ok(json)) => json,
        Ok(Err(_)) => WxError::new(-1).body(),
        Err(error) => error.body(),
    };
    HttpResponse::Ok().body(body)
}

/// The `{"errcode":0,"errmsg":"ok"}` success body of the few APIs that
/// have one (`sns/auth`).
#[derive(Debug, Serialize)]
pub(super) struct Ok0 {
    pub errcode: i64,
    pub errmsg: &'static str,
}

impl Ok0 {
    pub(super) fn new() -> Self {
        Self { errcode: 0, errmsg: "ok" }
    }
}

/// The Content-Type WeChat sends on `path` unless a test overrides it:
/// `text/plain` on `/sns/*` (which breaks strict OAuth libraries),
/// `application/json; encoding=utf-8` on cgi-bin and wxa; None leaves the
/// handler's own (the HTML pages).
pub(super) fn default_content_type(path: &str) -> Option<&'static str> {
    if path.starts_with("/sns/") {
        Some("text/plain")
    } else if path.starts_with("/cgi-bin/") || path.starts_with("/wxa/") {
        Some("application/json; encoding=utf-8")
    } else {
        None
    }
}

/// Parameters of a query string or form body. The first value of a
/// repeated name wins, and an empty value counts as missing (`appid=` gets
/// 41002 like no appid at all).
#[derive(Debug, Default)]
pub(super) struct Params(HashMap<String, String>);

impl Params {
    /// Parses `a=1&b=2` (percent- and plus-decoding).
    pub(super) fn parse(encoded: &str) -> Self {
        let mut map = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(encoded.as_bytes()) {
            map.entry(name.into_owned()).or_insert_with(|| value.into_owned());
        }
        Self(map)
    }

    /// The value of `name` when present and not empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The value of `name`, or the error WeChat gives when it is missing.
    pub(super) fn require(&self, name: &str, errcode: i64) -> Result<&str, WxError> {
        self.get(name).ok_or_else(|| WxError::new(errcode))
    }
}

/// Checks `grant_type`; WeChat answers 40002 for a missing or wrong one.
pub(super) fn check_grant_type(value: Option<&str>, expected: &str) -> Result<(), WxError> {
    if value == Some(expected) { Ok(()) } else { Err(WxError::new(40002)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_carry_a_rid() {
        let body: serde_json::Value = serde_json::from_str(&WxError::new(40029).body()).unwrap();
        assert_eq!(body["errcode"], 40029);
        let errmsg = body["errmsg"].as_str().unwrap();
        assert!(errmsg.starts_with("invalid code, rid: "), "{errmsg}");
    }

    #[test]
    fn params_take_the_first_value_and_treat_empty_as_missing() {
        let params = Params::parse("a=1&a=2&b=&c=x%20y+z");
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y z"));
        assert_eq!(params.require("b", 41002), Err(WxError::new(41002)));
    }
}

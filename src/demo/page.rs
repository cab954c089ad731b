//! `/demo`: the walk-through, a button per flow. Browser flows (password,
//! WeChat QR, official account, the consoles) are links; the others are
//! what a mini-program, its backend, a FinClip host app or an auditor's
//! script do over HTTP, so the demo does them here, on the server, when the
//! button is pressed (a POST form with a CSRF token), against wxfed and the
//! simulator exactly as those callers would, and shows every step.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{APP_APPID, DemoAccount, DemoState, MP_APPID, WX_DEMO};
use crate::http::extract::CsrfForm;
use crate::http::{csrf, paths, render};
use crate::i18n::filters;
use crate::state::AppState;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JSCODE: &str = "urn:wxfed:params:oauth:token-type:wechat-jscode";
const OAUTH_CODE: &str = "urn:wxfed:params:oauth:token-type:wechat-oauth-code";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

#[derive(Template)]
#[template(path = "demo/index.html")]
struct IndexPage<'a> {
    csrf_token: String,
    base_url: &'a str,
    sim_url: &'a str,
    accounts: &'a [DemoAccount],
    link_url: String,
    merge_url: String,
    rp_login: &'static str,
    /// (path segment, title id, description id) of the server-side flows.
    server_flows: Vec<(&'static str, &'static str, &'static str)>,
}

/// `GET /demo`.
pub async fn index(req: HttpRequest, state: web::Data<AppState>, demo: web::Data<DemoState>) -> HttpResponse {
    let (csrf_token, builder) = csrf::form_page(&req, &state, StatusCode::OK);
    let seeded = &demo.seeded;
    let carol_old = seeded.account("carol-old").map(|a| a.id.as_str()).unwrap_or_default();
    let page = IndexPage {
        csrf_token,
        base_url: &seeded.base_url,
        sim_url: &seeded.sim_url,
        accounts: &seeded.accounts,
        link_url: format!("/admin/identities/{}", seeded.carol_identity),
        merge_url: format!("/admin/accounts/{carol_old}/merge?into=carol"),
        rp_login: paths::DEMO_RP_LOGIN,
        server_flows: ["mini-program", "phone", "finclip-1", "finclip-2", "finclip-3"]
            .into_iter()
            .filter_map(|name| Flow::parse(name).map(|flow| (name, flow.title(), flow.description())))
            .collect(),
    };
    render::page_with(builder, &page)
}

/// One step of a flow as shown: what was sent where, and what came back.
struct Step {
    label: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "demo/flow.html")]
struct FlowPage {
    title: &'static str,
    intro: &'static str,
    ok: bool,
    error: Option<String>,
    steps: Vec<Step>,
}

/// The form of every flow button: only the CSRF token.
#[derive(Deserialize)]
pub struct FlowForm {}

/// The flows behind `POST /demo/flows/{flow}`.
#[derive(Debug, Clone, Copy)]
enum Flow {
    MiniProgram,
    Phone,
    Finclip1,
    Finclip2,
    Finclip3,
    AuditExport,
}

impl Flow {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "mini-program" => Self::MiniProgram,
            "phone" => Self::Phone,
            "finclip-1" => Self::Finclip1,
            "finclip-2" => Self::Finclip2,
            "finclip-3" => Self::Finclip3,
            "audit-export" => Self::AuditExport,
            _ => return None,
        })
    }

    fn title(self) -> &'static str {
        match self {
            Self::MiniProgram => "demo-flow-mini-program",
            Self::Phone => "demo-flow-phone",
            Self::Finclip1 => "demo-flow-finclip-1",
            Self::Finclip2 => "demo-flow-finclip-2",
            Self::Finclip3 => "demo-flow-finclip-3",
            Self::AuditExport => "demo-flow-audit-verify",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::MiniProgram => "demo-desc-mini-program",
            Self::Phone => "demo-desc-phone",
            Self::Finclip1 => "demo-desc-finclip-1",
            Self::Finclip2 => "demo-desc-finclip-2",
            Self::Finclip3 => "demo-desc-finclip-3",
            Self::AuditExport => "demo-desc-audit-export",
        }
    }

    fn intro(self) -> &'static str {
        match self {
            Self::MiniProgram => "demo-intro-mini-program",
            Self::Phone => "demo-intro-phone",
            Self::Finclip1 => "demo-intro-finclip-1",
            Self::Finclip2 => "demo-intro-finclip-2",
            Self::Finclip3 => "demo-intro-finclip-3",
            Self::AuditExport => "demo-intro-audit-verify",
        }
    }
}

/// `POST /demo/flows/{flow}`.
pub async fn flow(demo: web::Data<DemoState>, name: web::Path<String>, _form: CsrfForm<FlowForm>) -> HttpResponse {
    let Some(flow) = Flow::parse(&name) else {
        return actix_web::ResponseError::error_response(&crate::error::AppError::NotFound);
    };
    let mut steps = Vec::new();
    let result = match flow {
        Flow::MiniProgram => mini_program(&demo, &mut steps, false).await,
        Flow::Phone => mini_program(&demo, &mut steps, true).await,
        Flow::Finclip1 => finclip_1(&demo, &mut steps).await,
        Flow::Finclip2 => finclip_2(&demo, &mut steps).await,
        Flow::Finclip3 => finclip_3(&demo, &mut steps).await,
        Flow::AuditExport => audit_export(&demo, &mut steps).await,
    };
    let (status, error) = match result {
        Ok(()) => (StatusCode::OK, None),
        Err(message) => (StatusCode::BAD_GATEWAY, Some(message)),
    };
    let ok = error.is_none();
    render::page(status, &FlowPage { title: flow.title(), intro: flow.intro(), ok, error, steps })
}

fn step(steps: &mut Vec<Step>, label: &str, detail: &Value) {
    steps.push(Step { label: label.to_owned(), detail: serde_json::to_string_pretty(detail).unwrap_or_default() });
}

/// Tokens, codes and keys shortened for display: the page shows their
/// shape and what they carry, not credentials to copy.
fn shorten(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let secret = matches!(
                        k.as_str(),
                        "access_token" | "id_token" | "refresh_token" | "session_key" | "code" | "subject_token"
                    );
                    let v = match v {
                        Value::String(s) if secret && s.len() > 16 => Value::String(format!("{}…", &s[..12])),
                        other => shorten(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The payload of a JWT (already verified by whoever shows it, or shown as
/// what the caller received).
pub(super) fn jwt_payload(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&super::rp::b64url(payload)?).ok()
}

fn sim_error(error: crate::wechat_sim::SimError) -> String {
    format!("WeChat simulator: {error}")
}

async fn json_of(response: reqwest::Response) -> Result<(u16, Value), String> {
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// `POST /token` as `client_id` (HTTP Basic when it has a secret).
async fn token(demo: &DemoState, client: &super::DemoClient, form: &[(&str, &str)]) -> Result<(u16, Value), String> {
    let mut form = form.to_vec();
    if client.secret.is_none() {
        form.push(("client_id", &client.client_id));
    }
    let mut request = demo.http.post(format!("{}{}", demo.seeded.base_url, paths::TOKEN)).form(&form);
    if let Some(secret) = &client.secret {
        request = request.basic_auth(&client.client_id, Some(secret));
    }
    json_of(request.send().await.map_err(|e| e.to_string())?).await
}

fn expect_ok(status: u16, body: &Value, what: &str) -> Result<(), String> {
    if status == 200 && body.get("errcode").is_none_or(|c| c == 0) {
        Ok(())
    } else {
        Err(format!("{what}: HTTP {status} {body}"))
    }
}

/// A token response, shortened, with its ID token's claims.
fn token_detail(body: &Value) -> Value {
    let mut detail = json!({ "response": shorten(body) });
    if let Some(claims) = body["id_token"].as_str().and_then(jwt_payload) {
        detail["id_token_claims"] = claims;
    }
    detail
}

/// The mini-program's `wx.login` (and the phone button), then RFC 8693
/// token exchange at `/token`.
async fn mini_program(demo: &DemoState, steps: &mut Vec<Step>, with_phone: bool) -> Result<(), String> {
    let code = demo.simulator.mint_jscode(MP_APPID, WX_DEMO).map_err(sim_error)?;
    step(steps, "wx.login() → WeChat", &json!({ "appid": MP_APPID, "code": shorten(&json!({"code": code}))["code"] }));
    let phone_code = if with_phone {
        let phone = demo.simulator.mint_phone_code(MP_APPID, WX_DEMO).map_err(sim_error)?;
        step(
            steps,
            "<button open-type=\"getPhoneNumber\"> → WeChat",
            &json!({ "phone_code": format!("{}…", &phone[..12]) }),
        );
        Some(phone)
    } else {
        None
    };
    let scope = if with_phone { "openid profile phone wechat" } else { "openid profile wechat" };
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", code.as_str()),
        ("subject_token_type", JSCODE),
        ("scope", scope),
    ];
    if let Some(phone) = &phone_code {
        form.push(("phone_code", phone));
    }
    let (status, body) = token(demo, &demo.seeded.mini_program, &form).await?;
    step(steps, "POST /token (RFC 8693 token exchange)", &token_detail(&body));
    expect_ok(status, &body, "token exchange")?;
    if with_phone {
        let access = body["access_token"].as_str().unwrap_or_default();
        let response = demo
            .http
            .get(format!("{}{}", demo.seeded.base_url, paths::USERINFO))
            .bearer_auth(access)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let (status, info) = json_of(response).await?;
        step(steps, "GET /userinfo", &info);
        expect_ok(status, &info, "userinfo")?;
        if info.get("phone_number").is_none() {
            return Err("userinfo has no phone_number".into());
        }
    }
    Ok(())
}

/// The host app logs the person in with a SendAuth code: its access token.
async fn host_login(demo: &DemoState, steps: &mut Vec<Step>) -> Result<String, String> {
    let code = demo.simulator.mint_oauth_code(APP_APPID, WX_DEMO, None).map_err(sim_error)?;
    step(
        steps,
        "WeChat OpenSDK SendAuth in the host app → WeChat",
        &json!({ "appid": APP_APPID, "code": format!("{}…", &code[..12]) }),
    );
    let form = [("grant_type", EXCHANGE), ("subject_token", code.as_str()), ("subject_token_type", OAUTH_CODE)];
    let (status, body) = token(demo, &demo.seeded.host_app, &form).await?;
    step(steps, "POST /token as the host app (token exchange of the SendAuth code)", &token_detail(&body));
    expect_ok(status, &body, "host app login")?;
    body["access_token"].as_str().map(str::to_owned).ok_or_else(|| "no access token".into())
}

/// The mini-program's backend calls "WeChat" — wxfed's facade.
async fn facade(demo: &DemoState, steps: &mut Vec<Step>, code: &str, label: &str) -> Result<(), String> {
    let secret = demo.seeded.secret_of(MP_APPID);
    let response = demo
        .http
        .get(format!("{}{}", demo.seeded.base_url, paths::JSCODE2SESSION))
        .query(&[("appid", MP_APPID), ("secret", secret), ("js_code", code), ("grant_type", "authorization_code")])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let (status, body) = json_of(response).await?;
    step(steps, label, &shorten(&body));
    expect_ok(status, &body, "jscode2session")?;
    if body.get("openid").is_none() {
        return Err(format!("no openid in {body}"));
    }
    Ok(())
}

/// Scheme 1: the host app asks wxfed for a `wx.login`-shaped code.
async fn finclip_1(demo: &DemoState, steps: &mut Vec<Step>) -> Result<(), String> {
    let host_token = host_login(demo, steps).await?;
    let response = demo
        .http
        .post(format!("{}{}", demo.seeded.base_url, paths::HOST_WX_LOGIN_CODE))
        .bearer_auth(&host_token)
        .form(&[("appid", MP_APPID)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let (status, body) = json_of(response).await?;
    step(steps, "POST /api/host/wx-login-code (the host answers the mini-program's wx.login)", &shorten(&body));
    expect_ok(status, &body, "host code")?;
    let code = body["code"].as_str().ok_or("no code")?.to_owned();
    facade(demo, steps, &code, "GET /sns/jscode2session at wxfed (the mini-program's backend, unchanged)").await
}

/// Scheme 2: a routed code (`app:<appid>:<code>`) through the facade.
async fn finclip_2(demo: &DemoState, steps: &mut Vec<Step>) -> Result<(), String> {
    let code = demo.simulator.mint_oauth_code(APP_APPID, WX_DEMO, None).map_err(sim_error)?;
    let routed = format!("app:{APP_APPID}:{code}");
    step(
        steps,
        "SendAuth in the host app → WeChat; the host passes it on as a routed code",
        &json!({ "code": format!("app:{APP_APPID}:{}…", &code[..12]) }),
    );
    facade(demo, steps, &routed, "GET /sns/jscode2session at wxfed with the routed code").await
}

/// Scheme 3: the host's access token exchanged for the mini-program's tokens.
async fn finclip_3(demo: &DemoState, steps: &mut Vec<Step>) -> Result<(), String> {
    let host_token = host_login(demo, steps).await?;
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", host_token.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("scope", "openid profile wechat"),
    ];
    let (status, body) = token(demo, &demo.seeded.trusting, &form).await?;
    step(
        steps,
        "POST /token as the mini-program that trusts the host (host access token → its own tokens)",
        &token_detail(&body),
    );
    expect_ok(status, &body, "token exchange of the host's token")
}

/// Cookies a response set, as `name=value` (the demo's HTTP client keeps
/// no cookie jar).
fn set_cookies(response: &reqwest::Response, jar: &mut Vec<String>) {
    for value in response.headers().get_all("set-cookie") {
        if let Some(pair) = value.to_str().ok().and_then(|v| v.split(';').next()) {
            let name = pair.split('=').next().unwrap_or_default().to_owned();
            jar.retain(|c| c.split('=').next() != Some(&name));
            jar.push(pair.to_owned());
        }
    }
}

/// The auditor's script: sign in, download the JSONL export, and verify it
/// against the published audit keys (what `wxfed audit verify-export` does).
async fn audit_export(demo: &DemoState, steps: &mut Vec<Step>) -> Result<(), String> {
    let base = &demo.seeded.base_url;
    let auditor = demo.seeded.account("auditor").ok_or("no auditor")?;
    let mut jar = Vec::new();
    let login_page = demo.http.get(format!("{base}{}", paths::LOGIN)).send().await.map_err(|e| e.to_string())?;
    set_cookies(&login_page, &mut jar);
    let html = login_page.text().await.map_err(|e| e.to_string())?;
    let marker = "name=\"csrf_token\" value=\"";
    let token = html
        .find(marker)
        .map(|start| &html[start + marker.len()..])
        .and_then(|rest| rest.split('"').next())
        .ok_or("no CSRF token on the login page")?
        .to_owned();
    let login = demo
        .http
        .post(format!("{base}{}", paths::LOGIN))
        .header("cookie", jar.join("; "))
        .form(&[
            ("username", "auditor"),
            ("password", auditor.password.as_str()),
            ("csrf_token", &token),
            ("return_to", "/audit"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = login.status().as_u16();
    set_cookies(&login, &mut jar);
    step(steps, "POST /login as auditor", &json!({ "status": status }));
    if status != 303 {
        return Err(format!("auditor login: HTTP {status}"));
    }
    let export = demo
        .http
        .get(format!("{base}/audit/export?format=jsonl"))
        .header("cookie", jar.join("; "))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = export.status().as_u16();
    let bytes = export.bytes().await.map_err(|e| e.to_string())?;
    let lines = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    step(steps, "GET /audit/export?format=jsonl", &json!({ "status": status, "bytes": bytes.len(), "lines": lines }));
    if status != 200 {
        return Err(format!("export: HTTP {status}"));
    }
    let published =
        demo.http.get(format!("{base}{}", paths::AUDIT_CHECKPOINTS_JSON)).send().await.map_err(|e| e.to_string())?;
    let (_, published) = json_of(published).await?;
    let keys: Vec<String> = published["keys"]
        .as_array()
        .map(|keys| keys.iter().filter_map(|k| k["public_key"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    step(steps, "GET /audit/checkpoints.json (the audit public keys)", &json!({ "public_keys": keys }));
    match crate::audit::proof::verify(std::io::BufReader::new(&bytes[..]), &keys) {
        Ok(report) => {
            step(steps, "wxfed audit verify-export", &json!({ "valid": true, "report": report }));
            Ok(())
        }
        Err(problem) => Err(format!("the export does not verify: {problem}")),
    }
}

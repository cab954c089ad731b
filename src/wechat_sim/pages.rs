//! The browser side of WeChat OAuth (wechat-api.md §5, §6): the website
//! QR page (`/connect/qrconnect`) and the official-account authorize page
//! (`/connect/oauth2/authorize`). Instead of a QR code the simulator lists
//! its users; "Confirm as …" stands for scanning and confirming on the
//! phone, "Cancel" for refusing. Plain HTML forms: no JavaScript needed.
//!
//! Bad requests get WeChat's HTML error page ("该链接无法访问", HTTP 200),
//! never a redirect: the redirect_uri is not trusted until it checks out.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use url::Url;

use super::model::AppKind;
use super::state::{CodeUse, Simulator, State};
use super::wire::Params;

/// Where the page's buttons post to.
pub(super) const CONFIRM_PATH: &str = "/connect/confirm";
/// WeChat caps `state` at 128 bytes (§5).
const MAX_STATE_BYTES: usize = 128;

/// Which page a login request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    QrConnect,
    Authorize,
}

impl Flow {
    fn name(self) -> &'static str {
        match self {
            Self::QrConnect => "qrconnect",
            Self::Authorize => "authorize",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "qrconnect" => Some(Self::QrConnect),
            "authorize" => Some(Self::Authorize),
            _ => None,
        }
    }

    fn app_kind(self) -> AppKind {
        match self {
            Self::QrConnect => AppKind::Website,
            Self::Authorize => AppKind::OfficialAccount,
        }
    }

    fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::QrConnect => &["snsapi_login"],
            Self::Authorize => &["snsapi_base", "snsapi_userinfo"],
        }
    }
}

/// A login request that passed every check.
#[derive(Debug)]
struct LoginRequest {
    flow: Flow,
    appid: String,
    app_name: String,
    redirect_uri: Url,
    scope: String,
    state: String,
}

/// `GET /connect/qrconnect` (website apps).
pub(super) async fn qrconnect(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    show(&sim, &req, Flow::QrConnect)
}

/// `GET /connect/oauth2/authorize` (official accounts).
pub(super) async fn authorize(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    show(&sim, &req, Flow::Authorize)
}

fn show(sim: &Simulator, req: &HttpRequest, flow: Flow) -> HttpResponse {
    let params = Params::parse(req.query_string());
    sim.with(|state| match check(state, &params, flow) {
        Ok(request) => html(login_page(state, &request)),
        Err(reason) => html(error_page(&reason)),
    })
}

/// `POST /connect/confirm`: a button of the login page. The form is
/// checked again in full, since anyone can post anything.
pub(super) async fn confirm(sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    let params = Params::parse(&String::from_utf8_lossy(&body));
    let Some(flow) = params.get("flow").and_then(Flow::from_name) else {
        return html(error_page("请求参数错误 (the form names no login page)"));
    };
    sim.with(|state| {
        let request = match check(state, &params, flow) {
            Ok(request) => request,
            Err(reason) => return html(error_page(&reason)),
        };
        let mut target = request.redirect_uri.clone();
        if params.get("cancel").is_some() {
            // Refusal: back with the state only (the older of the two
            // documented behaviours, §5 step 2).
            target.query_pairs_mut().append_pair("state", &request.state);
            return redirect(&target);
        }
        let Some(user) = params.get("user").filter(|key| state.users.contains_key(*key)) else {
            return html(error_page("用户不存在 (no such simulated user)"));
        };
        let ttl = flow.app_kind().oauth_code_ttl_secs();
        let code = state.mint_code(&request.appid, user, CodeUse::OAuth, &request.scope, ttl);
        target.query_pairs_mut().append_pair("code", &code).append_pair("state", &request.state);
        redirect(&target)
    })
}

/// Checks a login request the way WeChat does before showing anything.
/// The error is the reason shown on the error page.
fn check(state: &State, params: &Params, flow: Flow) -> Result<LoginRequest, String> {
    let appid = params.get("appid").ok_or("appid 参数错误 (appid missing)")?;
    let app = state.apps.get(appid).ok_or_else(|| format!("appid 参数错误 (no app {appid})"))?;
    if app.kind != flow.app_kind() {
        return Err(format!(
            "appid 参数错误 ({appid} is a {} app; /connect/{} serves {} apps)",
            app.kind,
            flow.name(),
            flow.app_kind()
        ));
    }
    let raw_uri = params.get("redirect_uri").ok_or("redirect_uri 参数错误 (missing)")?;
    let redirect_uri = Url::parse(raw_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or("redirect_uri 参数错误 (not an absolute http(s) URL)")?;
    if let Some(domain) = &app.redirect_domain {
        let host = redirect_uri.host_str().unwrap_or_default();
        let host_port = redirect_uri.port().map(|port| format!("{host}:{port}"));
        if host != domain && host_port.as_deref() != Some(domain.as_str()) {
            return Err(format!("redirect_uri 域名与后台配置不一致，错误码：10003 ({host} is not {domain})"));
        }
    }
    if params.get("response_type") != Some("code") {
        return Err("response_type 参数错误 (must be code)".into());
    }
    let scope = params.get("scope").unwrap_or_default();
    if !flow.scopes().contains(&scope) {
        return Err(format!("Scope 参数错误或没有 Scope 权限 ({scope:?} is not one of {:?})", flow.scopes()));
    }
    let state_param = params.get("state").unwrap_or_default();
    if state_param.len() > MAX_STATE_BYTES {
        return Err(format!("state 参数错误 (longer than {MAX_STATE_BYTES} bytes)"));
    }
    Ok(LoginRequest {
        flow,
        appid: appid.to_owned(),
        app_name: app.name.clone(),
        redirect_uri,
        scope: scope.to_owned(),
        state: state_param.to_owned(),
    })
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

fn redirect(target: &Url) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, target.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;background:#ededed;margin:0}\
main{max-width:26rem;margin:3rem auto;background:#fff;padding:1.5rem;border-radius:.5rem}\
h1{font-size:1.3rem}ul{list-style:none;padding:0}li{margin:.5rem 0}\
button{width:100%;padding:.6rem;font-size:1rem;border:0;border-radius:.3rem;cursor:pointer}\
button[name=user]{background:#07c160;color:#fff}button[name=cancel]{background:#f2f2f2}\
.note{color:#888;font-size:.85rem}";

fn page(title: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head>\n<body><main>\n{content}\n</main></body></html>\n",
        title = escape(title)
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", escape(name), escape(value))
}

fn login_page(state: &State, request: &LoginRequest) -> String {
    let mut form = format!("<form method=\"post\" action=\"{CONFIRM_PATH}\">\n");
    form.push_str(&hidden("flow", request.flow.name()));
    form.push_str(&hidden("appid", &request.appid));
    form.push_str(&hidden("redirect_uri", request.redirect_uri.as_str()));
    form.push_str(&hidden("response_type", "code"));
    form.push_str(&hidden("scope", &request.scope));
    form.push_str(&hidden("state", &request.state));
    form.push_str("<ul>\n");
    for user in state.users.values() {
        form.push_str(&format!(
            "<li><button type=\"submit\" name=\"user\" value=\"{key}\" data-user=\"{key}\">\
Confirm as {nickname}</button></li>\n",
            key = escape(&user.key),
            nickname = escape(&user.nickname),
        ));
    }
    form.push_str("</ul>\n");
    if state.users.is_empty() {
        form.push_str("<p class=\"note\">No simulated users yet: add one with POST /__sim/users.</p>\n");
    }
    form.push_str("<button type=\"submit\" name=\"cancel\" value=\"1\">Cancel</button>\n</form>");
    let heading = match request.flow {
        Flow::QrConnect => "微信登录 — scan to log in",
        Flow::Authorize => "微信授权 — authorize",
    };
    let content = format!(
        "<h1>{heading}</h1>\n<p><strong>{name}</strong> ({appid}) asks for <code>{scope}</code>; \
you will return to <code>{host}</code>.</p>\n{form}\n\
<p class=\"note\">WeChat simulator: pick the person who scans the code.</p>",
        name = escape(&request.app_name),
        appid = escape(&request.appid),
        scope = escape(&request.scope),
        host = escape(request.redirect_uri.host_str().unwrap_or_default()),
    );
    page(heading, &content)
}

fn error_page(reason: &str) -> String {
    let content = format!("<h1>该链接无法访问</h1>\n<p class=\"reason\">{}</p>", escape(reason));
    page("该链接无法访问", &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}

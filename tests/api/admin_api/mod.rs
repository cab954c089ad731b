//! The management API (issue 12 §3): every endpoint with both scopes, the
//! refusals, the audit events (actor: the client), problem details, and
//! every response checked against the served OpenAPI document by code
//! that is not wxfed's (scripts/validate-openapi.py: openapi-spec-validator
//! and jsonschema, from the venv of tests/sdk/install.sh).

mod accounts;
mod auth;
mod identities;
mod openapi;

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{Value, json};
use wxfed::oidc::clients::{GrantType, NewClient};
use wxfed::oidc::signing::SigningAlgorithm;

use crate::helpers::{TestApp, TestDb, spawn_app};

pub const ADMIN: &str = "wxfed:admin";
pub const AUDIT: &str = "wxfed:audit";

/// A confidential client allowed client_credentials with `scopes`.
pub fn api_client_settings(name: &str, scopes: &[&str]) -> NewClient {
    NewClient {
        name: name.into(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        public: false,
        first_party: false,
        grant_types: vec![GrantType::ClientCredentials],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        id_token_signing_alg: SigningAlgorithm::Rs256,
        always_issue_refresh_token: false,
        wechat_app: None,
        host_app: false,
        trust_host: None,
        access_token_signing_alg: SigningAlgorithm::Rs256,
        host_for: vec![],
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
    }
}

/// One recorded response, for the OpenAPI check.
#[derive(serde::Serialize)]
struct Exchange {
    path: String,
    method: String,
    status: u16,
    content_type: String,
    body: Option<Value>,
}

/// A response: status, headers, body (JSON when it is JSON).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
    }

    /// Asserts an RFC 9457 problem with `status` and `code`.
    pub fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.header("content-type"), "application/problem+json", "{}", self.text);
        assert_eq!(self.body["status"], status, "{}", self.text);
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert_eq!(self.body["type"], format!("urn:wxfed:problem:{}", code.replace('_', "-")));
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()));
        &self.body
    }
}

/// An app with API clients, and the responses seen so far.
pub struct Api {
    pub app: TestApp,
    pub db: TestDb,
    /// A token with scope wxfed:admin, and its client.
    pub admin: String,
    pub admin_client: String,
    /// A token with scope wxfed:audit only, and its client.
    pub audit: String,
    pub audit_client: String,
    seen: Rc<RefCell<Vec<Exchange>>>,
}

impl Api {
    pub async fn new() -> Self {
        let (app, db) = spawn_app().await;
        let (admin_client, secret) = app.register_client(api_client_settings("automation", &[ADMIN])).await;
        let admin = token(&app, &admin_client, &secret.unwrap(), None).await;
        let (audit_client, secret) = app.register_client(api_client_settings("compliance", &[AUDIT])).await;
        let audit = token(&app, &audit_client, &secret.unwrap(), None).await;
        Self { app, db, admin, admin_client, audit, audit_client, seen: Default::default() }
    }

    /// Sends `method` to `template` with `{name}`s filled from `args`,
    /// bearer `token`, and `body` as JSON; records the exchange.
    pub async fn call(
        &self,
        method: &str,
        template: &str,
        args: &[(&str, &str)],
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let (path, query) = template.split_once('?').unwrap_or((template, ""));
        let mut url = path.to_owned();
        for (name, value) in args {
            url = url.replace(&format!("{{{name}}}"), value);
        }
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let method_ = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut request = self.app.client.request(method_, self.app.url(&url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let content_type = headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let json_body = content_type.contains("json") && !text.is_empty();
        self.seen.borrow_mut().push(Exchange {
            path: path.to_owned(),
            method: method.to_lowercase(),
            status,
            content_type: content_type.clone(),
            body: json_body.then(|| body.clone()),
        });
        Answer { status, headers, body, text }
    }

    pub async fn get(&self, template: &str, args: &[(&str, &str)], token: &str) -> Answer {
        self.call("get", template, args, Some(token), None).await
    }

    pub async fn send(&self, method: &str, template: &str, args: &[(&str, &str)], token: &str, body: Value) -> Answer {
        self.call(method, template, args, Some(token), Some(body)).await
    }

    /// The served document.
    pub async fn document(&self) -> Value {
        let response = self.app.get("/api/admin/openapi.json").await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Checks every response seen against the served document
    /// (scripts/validate-openapi.py). Call at the end of a test.
    pub async fn validate_responses(&self) {
        let doc = self.document().await;
        let exchanges = serde_json::to_value(&*self.seen.borrow()).unwrap();
        let report = validate_with_python(&self.db, &doc, Some(&exchanges));
        assert!(report["checked"].as_u64().unwrap() > 0, "{report}");
    }

    /// Audit rows with `action` (chained first).
    pub async fn events(&self, action: &str) -> Vec<wxfed::db::audit::AuditRow> {
        self.app.audit_rows().await.into_iter().filter(|r| r.action == action).collect()
    }
}

/// A client_credentials token (`scope`: what to ask for; none: all the client has).
pub async fn token(app: &TestApp, client_id: &str, secret: &str, scope: Option<&str>) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = app.token_request(client_id, Some(secret), &form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A Python with openapi-spec-validator: the venv of tests/sdk/install.sh,
/// else the system's python3.
fn python_with_validator() -> std::path::PathBuf {
    let venv = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/wxfed/venv/bin/python");
    for python in [venv, "python3".into()] {
        let ok = std::process::Command::new(&python)
            .args(["-c", "import openapi_spec_validator, jsonschema"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return python;
        }
    }
    panic!("no Python with openapi-spec-validator: run `bash tests/sdk/install.sh`");
}

/// Runs scripts/validate-openapi.py; panics with its report on a failure.
pub fn validate_with_python(db: &TestDb, doc: &Value, exchanges: Option<&Value>) -> Value {
    let dir = db.dir();
    let doc_file = dir.join(format!("openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&doc_file, serde_json::to_vec(doc).unwrap()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate-openapi.py");
    let mut command = std::process::Command::new(python_with_validator());
    command.arg(script).arg(&doc_file);
    if let Some(exchanges) = exchanges {
        let file = dir.join(format!("exchanges-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&file, serde_json::to_vec(exchanges).unwrap()).unwrap();
        command.arg(file);
    }
    let output = command.output().unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    });
    assert!(output.status.success(), "the OpenAPI check failed: {report:#}");
    report
}

/// `{"reason": ...}` merged into `body`.
pub fn with_reason(mut body: Value, reason: &str) -> Value {
    body["reason"] = json!(reason);
    body
}

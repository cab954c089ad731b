//! `/admin/import`: bulk import of accounts (CSV or JSON Lines uploaded as
//! a file, up to 8 MiB, or pasted in a textarea). POST without `confirm` is a preview (a dry run, per-line
//! results); the confirm button re-posts the same content with `confirm=1`
//! and its SHA-256 digest, which must match. Domain logic: `accounts::import`
//! (the same as `wxfed import accounts`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use sha2::{Digest, Sha256};

use super::Admin;
use super::form::{ConsoleForm, SensitiveForm};
use super::text::{filters, t};
use crate::accounts::import::{self, Format, ImportError, Reader, Report};
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::{csrf, render};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/import.html")]
pub struct ImportPage {
    pub nav: bool,
    pub me: String,
    pub csrf_token: String,
    pub content: String,
    pub format: String,
    pub digest: String,
    pub reason: String,
    pub report: Option<Report>,
    pub error: Option<String>,
}

fn digest(content: &str) -> String {
    Sha256::digest(content.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn render_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    (content, format, reason): (String, String, String),
    report: Option<Report>,
    error: Option<String>,
) -> HttpResponse {
    let (csrf_token, builder) = csrf::form_page(req, state, status);
    let page = ImportPage {
        nav: true,
        me: admin.account.username.clone(),
        csrf_token,
        digest: digest(&content),
        content,
        format,
        reason,
        report,
        error,
    };
    render::page_with(builder, &page)
}

pub async fn form(req: HttpRequest, state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, AppError> {
    Ok(render_page(&req, &state, &admin, StatusCode::OK, (String::new(), "auto".into(), String::new()), None, None))
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let ConsoleForm { admin, fields } = form;
    let get = |name: &str| super::form::get(&fields, name).to_owned();
    // An uploaded file (multipart) takes the place of pasted text.
    let uploaded = get("file");
    let content = if uploaded.is_empty() { get("content") } else { uploaded };
    let (content, format_name) = (content.replace("\r\n", "\n"), get("format"));
    let confirm = get("confirm") == "1";
    let reason_given = get("reason").trim().to_owned();
    let reason = if reason_given.is_empty() { "console import".to_owned() } else { reason_given.clone() };
    if content.trim().is_empty() {
        let error = Some(t("import-error-empty"));
        return Ok(render_page(
            &req,
            &state,
            &admin,
            StatusCode::BAD_REQUEST,
            (content, format_name, reason_given),
            None,
            error,
        ));
    }
    if confirm && get("digest") != digest(&content) {
        let error = Some(t("import-error-digest"));
        return Ok(render_page(
            &req,
            &state,
            &admin,
            StatusCode::CONFLICT,
            (content, format_name, reason_given.clone()),
            None,
            error,
        ));
    }
    if content.len() as u64 > import::MAX_FILE_BYTES {
        let error = Some(ImportError::TooLarge.to_string());
        return Ok(render_page(
            &req,
            &state,
            &admin,
            StatusCode::PAYLOAD_TOO_LARGE,
            (String::new(), format_name, reason_given.clone()),
            None,
            error,
        ));
    }
    let format = match format_name.as_str() {
        "csv" => Format::Csv,
        "jsonl" => Format::JsonLines,
        _ => Format::detect("", content.as_bytes()),
    };
    let (secrets, actor, text) = (state.secrets.clone(), admin.actor(), content.clone());
    let result = db::run_long(&state.db, move |conn| -> Result<_, DbError> {
        let mut open = || Reader::new(format, std::io::Cursor::new(text.as_bytes()));
        let options = import::Options { open_platform: None, reason: &reason, dry_run: !confirm };
        match import::import(conn, &secrets, &actor, &mut open, options, &mut |_| {}) {
            Ok(report) => Ok(Ok(report)),
            Err(ImportError::Db(e)) => Err(DbError::Query(e)),
            Err(other) => Ok(Err(other.to_string())),
        }
    })
    .await?;
    Ok(match result {
        Ok(report) => {
            let status = if report.errors == 0 { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
            render_page(&req, &state, &admin, status, (content, format_name, reason_given), Some(report), None)
        }
        Err(message) => render_page(
            &req,
            &state,
            &admin,
            StatusCode::BAD_REQUEST,
            (content, format_name, reason_given),
            None,
            Some(message),
        ),
    })
}

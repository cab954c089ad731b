//! The auditor's console (issue 9 §1–§3, §7): `/audit` (chain status,
//! filters, results newest first), `/audit/events/{seq}` (every field and
//! the row's place in the chain) and `/audit/export` (CSV or JSON Lines,
//! streamed). Only role `auditor` gets in (an admin is not an auditor),
//! and every read is itself an audit event, category `audit_access`:
//! who searched what, which event, which export.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::Auditor;
use super::text::{filters, t};
use super::views::{self, EventView};
use crate::audit::export::{self, Format};
use crate::audit::query::{self, FilterParams, Filters};
use crate::audit::{self, Action, AuditEvent};
use crate::db::audit::AuditRow;
use crate::db::audit_query::Direction;
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::{RequestMeta, render};
use crate::state::AppState;

/// Events per page of the log.
const PAGE_SIZE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    #[serde(flatten)]
    filters: FilterParams,
    /// Keyset cursor: show events older than this seq.
    after: Option<String>,
    format: Option<String>,
}

/// Records an auditor's read before it is served: no read without its
/// record.
pub(super) fn access_event(auditor: &Auditor, meta: &RequestMeta, action: Action) -> AuditEvent {
    AuditEvent::success(action).with_actor(auditor.actor()).with_request(meta)
}

fn filters_detail(params: &FilterParams) -> serde_json::Value {
    serde_json::to_value(params.normalized()).unwrap_or_default()
}

/// The chain as the auditor's home shows it.
pub struct ChainStatus {
    pub head_seq: i64,
    pub checkpoint: Option<CheckpointView>,
    pub pending: i64,
    pub oldest_pending_secs: i64,
}

pub struct CheckpointView {
    pub seq: i64,
    pub signed_at: String,
    pub age: String,
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => crate::i18n::t_args("audit-age-seconds", &[("n", s.into())]),
        s if s < 7200 => crate::i18n::t_args("audit-age-minutes", &[("n", (s / 60).into())]),
        s if s < 172_800 => crate::i18n::t_args("audit-age-hours", &[("n", (s / 3600).into())]),
        s => crate::i18n::t_args("audit-age-days", &[("n", (s / 86_400).into())]),
    }
}

/// The chain's state as read (formatted later, on the request's thread,
/// where the reader's language is known).
pub struct RawChainStatus {
    head_seq: i64,
    checkpoint: Option<db::audit::CheckpointRow>,
    pending: i64,
    oldest_pending: Option<chrono::NaiveDateTime>,
}

fn chain_status(conn: &mut db::DbConn) -> diesel::QueryResult<RawChainStatus> {
    let (head_seq, _) = db::audit::read_head(conn)?;
    let checkpoint = db::audit::latest_checkpoint(conn)?;
    let (pending, oldest_pending) = db::audit::pending_status(conn)?;
    Ok(RawChainStatus { head_seq, checkpoint, pending, oldest_pending })
}

pub(super) fn checkpoint_view(c: db::audit::CheckpointRow, now: chrono::NaiveDateTime) -> CheckpointView {
    CheckpointView {
        seq: c.seq,
        signed_at: views::when(c.signed_at),
        age: age((now - c.signed_at).num_seconds().max(0)),
    }
}

impl From<RawChainStatus> for ChainStatus {
    fn from(raw: RawChainStatus) -> Self {
        let now = db::now();
        Self {
            head_seq: raw.head_seq,
            checkpoint: raw.checkpoint.map(|c| checkpoint_view(c, now)),
            pending: raw.pending,
            oldest_pending_secs: raw.oldest_pending.map(|t| (now - t).num_seconds().max(0)).unwrap_or(0),
        }
    }
}

/// `account:0194…` for a long account id: the table stays readable, the
/// full id is in the title and on the event page.
pub(super) fn short(value: &str) -> String {
    let (prefix, id) = value.split_once(':').unwrap_or(("", value));
    if id.chars().count() <= 12 {
        return value.to_owned();
    }
    let head: String = id.chars().take(8).collect();
    if prefix.is_empty() { format!("{head}…") } else { format!("{prefix}:{head}…") }
}

/// One row of the results.
pub struct LogRow {
    pub event: EventView,
    pub actor_short: String,
    pub account_short: String,
    pub category: String,
    pub ip: String,
    pub client_id: String,
}

impl From<AuditRow> for LogRow {
    fn from(row: AuditRow) -> Self {
        Self {
            actor_short: short(row.actor.as_deref().unwrap_or("")),
            account_short: short(row.account_id.as_deref().unwrap_or("")),
            category: row.category.clone(),
            ip: row.ip.clone().unwrap_or_default(),
            client_id: row.client_id.clone().unwrap_or_default(),
            event: EventView::from(row),
        }
    }
}

#[derive(Template)]
#[template(path = "audit/log.html")]
pub struct LogPage {
    pub nav: bool,
    pub me: String,
    pub chain: ChainStatus,
    pub f: FilterParams,
    pub error: Option<String>,
    pub rows: Vec<LogRow>,
    pub next_url: Option<String>,
    pub export_query: String,
    pub searched: bool,
}

impl LogPage {
    fn value<'a>(&self, value: &'a Option<String>) -> &'a str {
        value.as_deref().unwrap_or("")
    }
}

/// Canned views of the log (the reports of §7 have their own pages in
/// `audit_reports`).
pub const VIEWS: [(&str, &str); 1] = [("audit-view-audit-access", "category=audit_access")];

/// A query string with empty fields (what the filter form sends for the
/// fields left blank) as the short link it means, or `None` if it is one.
fn short_link(raw: &str, params: &FilterParams, after: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap_or_default();
    if !pairs.iter().any(|(_, v)| v.trim().is_empty()) {
        return None;
    }
    let mut query = params.pairs();
    if let Some(after) = after.filter(|a| !a.is_empty()) {
        query.push(("after", after.to_owned()));
    }
    let query = serde_urlencoded::to_string(query).unwrap_or_default();
    Some(if query.is_empty() { "/audit".to_owned() } else { format!("/audit?{query}") })
}

/// `GET /audit`: chain status, the filter bar and one page of results.
pub async fn log(
    req: HttpRequest,
    state: web::Data<AppState>,
    auditor: Auditor,
    meta: RequestMeta,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, AppError> {
    let LogQuery { filters: params, after, .. } = query.into_inner();
    let params = params.normalized();
    // The form sends every field; the link to share names only the
    // filters set. (Nothing is read yet, so nothing to record.)
    if let Some(location) = short_link(req.query_string(), &params, after.as_deref()) {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", location)).finish());
    }
    let after = after.as_deref().and_then(|a| a.parse::<i64>().ok());
    let parsed = params.parse();
    let event = access_event(&auditor, &meta, Action::AuditSearched)
        .with_detail("filters", filters_detail(&params))
        .with_detail("after", after);
    let secrets = state.secrets.clone();
    let parsed2 = parsed.clone();
    let (chain, page) = db::run(&state.db, move |conn| -> Result<_, DbError> {
        let event = match &parsed2 {
            Ok(_) => event,
            Err(e) => AuditEvent { outcome: audit::Outcome::Failure, reason: Some(e.to_string()), ..event },
        };
        audit::record(conn, &secrets, &event)?;
        let chain = chain_status(conn)?;
        let page = match parsed2 {
            Ok(mut filters) => {
                filters.resolve(conn)?;
                Some(query::page(conn, &filters, Direction::NewestBefore(after), PAGE_SIZE)?)
            }
            Err(_) => None,
        };
        Ok((chain, page))
    })
    .await?;
    let status = if parsed.is_err() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let query_string = params.query_string();
    let next_url = page.as_ref().and_then(|p| p.next).map(|cursor| {
        let sep = if query_string.is_empty() { "" } else { "&" };
        format!("/audit?{query_string}{sep}after={cursor}")
    });
    let page = LogPage {
        nav: false,
        me: auditor.account.username,
        chain: chain.into(),
        error: parsed.err().map(|e| e.to_string()),
        rows: page.map(|p| p.rows.into_iter().map(LogRow::from).collect()).unwrap_or_default(),
        next_url,
        export_query: query_string,
        searched: !params.is_empty(),
        f: params,
    };
    Ok(render::page(status, &page))
}

#[derive(Template)]
#[template(path = "audit/event.html")]
pub struct EventPage {
    pub nav: bool,
    pub me: String,
    pub row: AuditRow,
    pub occurred_at: String,
    pub detail: String,
    pub content_intact: bool,
    pub links_to_predecessor: bool,
    pub checkpoint: Option<CheckpointView>,
    pub head_seq: i64,
}

impl EventPage {
    fn opt<'a>(&self, value: &'a Option<String>) -> &'a str {
        value.as_deref().unwrap_or("")
    }
}

/// `GET /audit/events/{seq}`: every field, and whether the row verifies
/// with its predecessor and is covered by a signed checkpoint.
pub async fn event(
    state: web::Data<AppState>,
    auditor: Auditor,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Ok(seq) = path.into_inner().parse::<i64>() else { return Err(AppError::NotFound) };
    let event = access_event(&auditor, &meta, Action::AuditEventViewed).with_detail("seq", seq);
    let secrets = state.secrets.clone();
    let found = db::run(&state.db, move |conn| -> Result<_, DbError> {
        audit::record(conn, &secrets, &event)?;
        let Some(row) = db::audit::at_seq(conn, seq)? else { return Ok(None) };
        let predecessor = if seq > 1 { db::audit::at_seq(conn, seq - 1)? } else { None };
        let status = audit::chain::row_status(secrets.audit_chain_key(), &row, predecessor.as_ref());
        let checkpoint = db::audit_query::checkpoint_covering(conn, seq)?;
        let (head_seq, _) = db::audit::read_head(conn)?;
        Ok(Some((row, status, checkpoint, head_seq)))
    })
    .await?;
    let Some((row, status, checkpoint, head_seq)) = found else { return Err(AppError::NotFound) };
    let now = db::now();
    let detail = serde_json::from_str::<serde_json::Value>(&row.detail)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| row.detail.clone());
    let page = EventPage {
        nav: false,
        me: auditor.account.username,
        occurred_at: views::when(row.occurred_at),
        detail,
        content_intact: status.content_intact,
        links_to_predecessor: status.links_to_predecessor,
        checkpoint: checkpoint.map(|c| checkpoint_view(c, now)),
        head_seq,
        row,
    };
    Ok(render::page(StatusCode::OK, &page))
}

/// The chunks of a streamed body, as the producer task sends them.
struct Chunks(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// `GET /audit/export?<filters>&format=csv|jsonl`: the selected events in
/// chain order, streamed: read in keyset batches and written as they come
/// (a bounded channel holds at most a few batches), so memory stays flat
/// however many rows match.
pub async fn export(
    state: web::Data<AppState>,
    auditor: Auditor,
    meta: RequestMeta,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, AppError> {
    let LogQuery { filters: params, format, .. } = query.into_inner();
    let params = params.normalized();
    let Some(format) = format.as_deref().and_then(Format::parse) else {
        return Err(AppError::BadRequest(t("audit-error-format")));
    };
    let filters: Filters = params.parse().map_err(|e| AppError::BadRequest(e.to_string()))?;
    let event = access_event(&auditor, &meta, Action::AuditExported)
        .with_detail("filters", filters_detail(&params))
        .with_detail("format", format.as_str());
    let secrets = state.secrets.clone();
    let export = db::run(&state.db, move |conn| -> Result<_, DbError> {
        audit::record(conn, &secrets, &event)?;
        // Chains what is pending and, for JSON Lines, picks (or signs) the
        // checkpoints that make the file prove itself.
        export::Export::prepare(conn, &secrets, format, params, filters).map_err(|e| match e {
            export::ExportError::Db(e) => DbError::from(e),
            export::ExportError::Checkpoint(e) => DbError::Unavailable(e.to_string()),
        })
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let pool = state.db.clone();
    actix_web::rt::spawn(async move {
        let mut export = export;
        loop {
            // Moved into the blocking call and handed back with the chunk.
            // A download already begun is not cut by the request deadline.
            let result = db::run_long(&pool, move |conn| -> Result<_, DbError> {
                let chunk = export.next_chunk(conn)?;
                Ok((chunk, export))
            })
            .await;
            let chunk = match result {
                Ok((chunk, next)) => {
                    export = next;
                    chunk
                }
                Err(error) => {
                    // The response has begun: all we can do is cut it
                    // short, so that the download fails visibly.
                    tracing::warn!(%error, "audit export failed mid-stream");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
            };
            let Some(chunk) = chunk else { return };
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return; // the client went away
            }
        }
    });
    let filename = format!("wxfed-audit-{}.{}", db::now().format("%Y%m%dT%H%M%SZ"), format.as_str());
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{filename}\"")))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(Chunks(rx)))
}

//! Exports of the trail (issue 9 §3): CSV (a header row, RFC 4180
//! quoting by the `csv` crate) or JSON Lines, in chain order, written
//! batch by batch so that any number of rows exports at constant memory.
//! The web (`GET /audit/export`) and the CLI (`wxfed audit export`) share
//! this encoding.

use serde::Serialize;

use crate::db::audit::AuditRow;

/// Rows read (and written) per batch.
pub const BATCH: i64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "csv" => Some(Self::Csv),
            "jsonl" => Some(Self::Jsonl),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            // No registered type; this is the common one (jsonlines.org).
            Self::Jsonl => "application/jsonl; charset=utf-8",
        }
    }
}

/// The columns, in order: every field of a chained row, the chain fields
/// last.
pub const COLUMNS: [&str; 16] = [
    "seq",
    "id",
    "occurred_at",
    "category",
    "action",
    "outcome",
    "reason",
    "actor",
    "account_id",
    "client_id",
    "ip",
    "user_agent",
    "request_id",
    "detail",
    "prev_hash",
    "hash",
];

/// One exported event (JSON Lines): `detail` as the JSON object it is.
#[derive(Serialize)]
struct Line<'a> {
    seq: i64,
    id: &'a str,
    occurred_at: String,
    category: &'a str,
    action: &'a str,
    outcome: &'a str,
    reason: Option<&'a str>,
    actor: Option<&'a str>,
    account_id: Option<&'a str>,
    client_id: Option<&'a str>,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
    detail: serde_json::Value,
    prev_hash: &'a str,
    hash: &'a str,
}

/// RFC 3339 UTC with microseconds, as the chain hashes it.
pub fn timestamp(at: chrono::NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// What comes before the first row: the CSV header.
pub fn header(format: Format) -> Vec<u8> {
    match format {
        Format::Csv => {
            let mut out = csv::Writer::from_writer(Vec::new());
            // Writing to a Vec cannot fail.
            let _ = out.write_record(COLUMNS);
            out.into_inner().unwrap_or_default()
        }
        Format::Jsonl => Vec::new(),
    }
}

/// `rows` encoded in `format`, each ending with a newline.
pub fn encode(format: Format, rows: &[AuditRow]) -> Vec<u8> {
    match format {
        Format::Csv => {
            let mut out = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
            for r in rows {
                let seq = r.seq.to_string();
                let at = timestamp(r.occurred_at);
                let o = |v: &Option<String>| v.clone().unwrap_or_default();
                let record = [
                    seq,
                    r.id.clone(),
                    at,
                    r.category.clone(),
                    r.action.clone(),
                    r.outcome.clone(),
                    o(&r.reason),
                    o(&r.actor),
                    o(&r.account_id),
                    o(&r.client_id),
                    o(&r.ip),
                    o(&r.user_agent),
                    o(&r.request_id),
                    r.detail.clone(),
                    r.prev_hash.clone(),
                    r.hash.clone(),
                ];
                let _ = out.write_record(&record);
            }
            out.into_inner().unwrap_or_default()
        }
        Format::Jsonl => {
            let mut out = Vec::new();
            for r in rows {
                let line = Line {
                    seq: r.seq,
                    id: &r.id,
                    occurred_at: timestamp(r.occurred_at),
                    category: &r.category,
                    action: &r.action,
                    outcome: &r.outcome,
                    reason: r.reason.as_deref(),
                    actor: r.actor.as_deref(),
                    account_id: r.account_id.as_deref(),
                    client_id: r.client_id.as_deref(),
                    ip: r.ip.as_deref(),
                    user_agent: r.user_agent.as_deref(),
                    request_id: r.request_id.as_deref(),
                    detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::String(r.detail.clone())),
                    prev_hash: &r.prev_hash,
                    hash: &r.hash,
                };
                if serde_json::to_writer(&mut out, &line).is_ok() {
                    out.push(b'\n');
                }
            }
            out
        }
    }
}

//! Exports of the trail (issue 9 §3): CSV (a header row, RFC 4180
//! quoting by the `csv` crate) or self-verifying JSON Lines
//! ([`super::proof`]), in chain order, produced chunk by chunk by an
//! [`Export`] so that any number of rows exports at constant memory. The
//! web (`GET /audit/export`) and the CLI (`wxfed audit export`) drive the
//! same [`Export`].

use super::chain;
use super::chainer;
use super::checkpoint::CheckpointError;
use super::proof::{self, Line};
use super::query::{self, FilterParams, Filters};
use crate::db::audit::{AuditRow, CheckpointRow};
use crate::db::audit_query::Direction;
use crate::db::{self, DbConn};
use crate::secrets::Secrets;

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

/// RFC 3339 UTC with microseconds, as the chain hashes it.
pub fn timestamp(at: chrono::NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The CSV header row.
fn csv_header() -> Vec<u8> {
    let mut out = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = out.write_record(COLUMNS);
    out.into_inner().unwrap_or_default()
}

/// A cell as written to CSV: text a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, tab, carriage return first: "CSV injection", OWASP)
/// gets a leading `'`. Reasons and user agents are typed by people.
fn csv_cell(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

/// `rows` as CSV records, each ending with a newline.
fn csv_rows(rows: &[AuditRow]) -> Vec<u8> {
    let mut out = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    for r in rows {
        let o = |v: &Option<String>| csv_cell(v.as_deref().unwrap_or_default());
        let record = [
            r.seq.to_string(),
            r.id.clone(),
            timestamp(r.occurred_at),
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

/// Why an export could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// How far a JSON Lines export got.
#[derive(Debug, Clone)]
struct Proof {
    /// Rows after this seq come next.
    after: i64,
    end: CheckpointRow,
}

#[derive(Debug, Clone)]
enum Stage {
    Start,
    Rows { after: i64 },
    Done,
}

/// An export in progress: call [`Export::next_chunk`] until it returns
/// `None`. Cheap to clone and `Send`, so the web can move it into each
/// database call.
#[derive(Debug, Clone)]
pub struct Export {
    params: FilterParams,
    filters: Filters,
    stage: Stage,
    proof: Option<Proof>,
    start: Option<CheckpointRow>,
    /// Rows written so far (events, for JSON Lines).
    pub written: u64,
}

/// Rows with content that a checkpoint may lag behind the end of a time
/// range: events are recorded, committed and chained within this.
const CHAINING_SLACK: chrono::Duration = chrono::Duration::seconds(10);

impl Export {
    /// Prepares an export of the events `filters` select. Chains what is
    /// pending first; a JSON Lines export also picks its start checkpoint
    /// (the newest signed at or before `from`, else the first row) and its
    /// end checkpoint (the first signed after `to`, else one signed now
    /// over the head), so that the file proves the whole range.
    pub fn prepare(
        conn: &mut DbConn,
        secrets: &Secrets,
        format: Format,
        params: FilterParams,
        mut filters: Filters,
    ) -> Result<Self, ExportError> {
        chainer::chain_pending(conn)?;
        filters.resolve(conn)?;
        let (proof, start) = match format {
            Format::Csv => (None, None),
            Format::Jsonl => {
                let start = match filters.sql.from {
                    Some(from) => db::audit::last_checkpoint_signed_by(conn, from)?,
                    None => None,
                };
                let after = start.as_ref().map_or(0, |c| c.seq);
                let end = match filters.sql.to {
                    Some(to) => db::audit::first_checkpoint_covering(conn, after + 1, to + CHAINING_SLACK)?,
                    None => None,
                };
                let end = match end {
                    Some(end) => end,
                    None => chainer::checkpoint_now(conn, secrets)?,
                };
                (Some(Proof { after, end }), start)
            }
        };
        Ok(Self { params, filters, stage: Stage::Start, proof, start, written: 0 })
    }

    /// The next bytes of the export, or `None` when it is complete.
    pub fn next_chunk(&mut self, conn: &mut DbConn) -> diesel::QueryResult<Option<Vec<u8>>> {
        match (self.stage.clone(), self.proof.clone()) {
            (Stage::Done, _) => Ok(None),
            (Stage::Start, None) => {
                self.stage = Stage::Rows { after: 0 };
                Ok(Some(csv_header()))
            }
            (Stage::Rows { after }, None) => {
                let page = query::page(conn, &self.filters, Direction::OldestAfter(after), BATCH)?;
                self.written += page.rows.len() as u64;
                self.stage = match page.next {
                    Some(next) => Stage::Rows { after: next },
                    None => Stage::Done,
                };
                Ok(Some(csv_rows(&page.rows)))
            }
            (Stage::Start, Some(proof)) => {
                let mut out = proof::Line::Header(proof::Header {
                    format: proof::FORMAT.into(),
                    exported_at: chain::timestamp(db::now()),
                    filters: self.params.clone(),
                    account_id: self.filters.sql.account_id.clone(),
                    from_seq: proof.after + 1,
                    to_seq: proof.end.seq,
                })
                .to_bytes();
                let mut key_ids: Vec<&str> = vec![proof.end.key_id.as_str()];
                if let Some(start) = &self.start {
                    key_ids.insert(0, &start.key_id);
                }
                key_ids.dedup();
                for key in db::audit::all_audit_keys(conn)?.iter().filter(|k| key_ids.contains(&k.id.as_str())) {
                    out.extend(proof::key_line(key).to_bytes());
                }
                if let Some(start) = &self.start {
                    out.extend(Line::Checkpoint(proof::checkpoint_line("start", start)).to_bytes());
                }
                self.stage = Stage::Rows { after: proof.after };
                Ok(Some(out))
            }
            (Stage::Rows { after }, Some(proof)) => {
                let rows = db::audit::page_after(conn, after, BATCH.min(proof.end.seq - after))?;
                let mut out = Vec::new();
                for row in &rows {
                    let selected = self.filters.matches_row(row);
                    self.written += u64::from(selected && row.pruned_at.is_none());
                    out.extend(proof::row_line_bytes(row, selected));
                }
                let last = rows.last().map_or(after, |r| r.seq);
                if last >= proof.end.seq || rows.is_empty() {
                    // A short read before the end means rows are missing:
                    // the end checkpoint line then fails verification,
                    // which is what an auditor should see.
                    out.extend(Line::Checkpoint(proof::checkpoint_line("end", &proof.end)).to_bytes());
                    self.stage = Stage::Done;
                } else {
                    self.stage = Stage::Rows { after: last };
                }
                Ok(Some(out))
            }
        }
    }
}

//! Self-verifying JSON Lines exports (issue 9 item 3; docs/audit.md).
//!
//! An export is a sequence of typed lines:
//!
//! 1. `header`: the format, the filters, the seq range proven;
//! 2. `key`: the public keys the checkpoints name (informational: the
//!    verifier trusts only the keys it is given);
//! 3. `checkpoint` (role `start`): the newest checkpoint signed at or before
//!    the range's `from`; absent when the range starts at the first row;
//! 4. one line per row after it, in chain order, up to the end checkpoint:
//!    `event` (a row the filters selected, every field), `omitted` (a row
//!    they did not: its metadata and hashes, no content) or `pruned` (a row
//!    whose content retention removed);
//! 5. `checkpoint` (role `end`): a checkpoint at the last row.
//!
//! [`verify`] needs neither the database nor the master key: it recomputes
//! every v2 link (SHA-256), checks that the rows follow each other
//! without gaps from the start checkpoint's head to the end checkpoint's,
//! and checks both checkpoints' Ed25519 signatures with the given public
//! keys. So an edited, dropped, inserted or reordered line fails, and the
//! failure names the line. Omitted lines carry the metadata the filters
//! look at, so the verifier also checks that none of them should have
//! been selected (except by `ip` and `q`, which look at content).

use std::io::BufRead;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chain::{self, Content, GENESIS_HASH, Metadata};
use super::checkpoint;
use super::query::{FilterParams, Filters, MetaView};
use crate::db::audit::{AuditKeyRow, AuditRow, CheckpointRow};

/// The `format` of the header line.
pub const FORMAT: &str = "wxfed-audit-export-v1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub exported_at: String,
    /// The filters as given (normalized), as a link carries them.
    pub filters: FilterParams,
    /// The account filter resolved to an id (a username in `filters`).
    pub account_id: Option<String>,
    /// The first and last seq of the rows that follow.
    pub from_seq: i64,
    pub to_seq: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyLine {
    pub id: String,
    pub alg: String,
    pub public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointLine {
    pub role: String,
    pub seq: i64,
    pub head_hash: String,
    /// Exactly as signed: RFC 3339 UTC with six fraction digits.
    pub signed_at: String,
    pub prev_checkpoint_hash: Option<String>,
    pub key_id: String,
    pub signature: String,
}

/// A row's metadata: what every row line carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowMeta {
    pub link_version: i32,
    pub seq: i64,
    pub id: String,
    pub occurred_at: String,
    pub category: String,
    pub action: String,
    pub outcome: String,
    pub actor: Option<String>,
    pub account_id: Option<String>,
    pub client_id: Option<String>,
    pub request_id: Option<String>,
}

/// A selected row's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowContent {
    pub reason: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Value,
    pub content_salt: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowLine {
    #[serde(flatten)]
    pub meta: RowMeta,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub content: Option<RowContent>,
    pub content_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_at: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// One line of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Header(Header),
    Key(KeyLine),
    Checkpoint(CheckpointLine),
    Event(RowLine),
    Omitted(RowLine),
    Pruned(RowLine),
}

impl Line {
    /// The line as written: compact JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

pub fn key_line(key: &AuditKeyRow) -> Line {
    Line::Key(KeyLine { id: key.id.clone(), alg: "Ed25519".into(), public_key: key.public_key.clone() })
}

pub fn checkpoint_line(role: &str, c: &CheckpointRow) -> CheckpointLine {
    CheckpointLine {
        role: role.into(),
        seq: c.seq,
        head_hash: c.head_hash.clone(),
        signed_at: chain::timestamp(c.signed_at),
        prev_checkpoint_hash: c.prev_checkpoint_hash.clone(),
        key_id: c.key_id.clone(),
        signature: c.signature.clone(),
    }
}

impl RowMeta {
    /// What the filters look at.
    pub fn view(&self, occurred_at: NaiveDateTime) -> MetaView<'_> {
        MetaView {
            occurred_at,
            category: &self.category,
            action: &self.action,
            outcome: &self.outcome,
            actor: self.actor.as_deref(),
            account_id: self.account_id.as_deref(),
            client_id: self.client_id.as_deref(),
            request_id: self.request_id.as_deref(),
        }
    }
}

/// A row line as written: the JSON [`Line`]'s row variants read back,
/// serialized straight from the row (borrowed, no tag buffering), since an
/// export writes millions of them.
#[derive(Serialize)]
struct RowOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    link_version: i32,
    seq: i64,
    id: &'a str,
    occurred_at: String,
    category: &'a str,
    action: &'a str,
    outcome: &'a str,
    actor: Option<&'a str>,
    account_id: Option<&'a str>,
    client_id: Option<&'a str>,
    request_id: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    content: Option<ContentOut<'a>>,
    content_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pruned_at: Option<String>,
    prev_hash: &'a str,
    hash: &'a str,
}

#[derive(Serialize)]
struct ContentOut<'a> {
    reason: Option<&'a str>,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    detail: &'a Value,
    content_salt: Option<&'a str>,
}

/// The line for `row`, newline included: an event when `selected`, else
/// omitted (or pruned when retention removed its content).
pub fn row_line_bytes(row: &AuditRow, selected: bool) -> Vec<u8> {
    let kind = match (row.pruned_at.is_some(), selected) {
        (true, _) => "pruned",
        (false, false) => "omitted",
        (false, true) => "event",
    };
    let detail = (kind == "event").then(|| chain::detail_value(&row.detail));
    let content = detail.as_ref().map(|detail| ContentOut {
        reason: row.reason.as_deref(),
        ip: row.ip.as_deref(),
        user_agent: row.user_agent.as_deref(),
        detail,
        content_salt: row.content_salt.as_deref(),
    });
    let out = RowOut {
        kind,
        link_version: row.link_version,
        seq: row.seq,
        id: &row.id,
        occurred_at: chain::timestamp(row.occurred_at),
        category: &row.category,
        action: &row.action,
        outcome: &row.outcome,
        actor: row.actor.as_deref(),
        account_id: row.account_id.as_deref(),
        client_id: row.client_id.as_deref(),
        request_id: row.request_id.as_deref(),
        content,
        content_hash: row.content_hash.as_deref(),
        pruned_at: row.pruned_at.map(chain::timestamp),
        prev_hash: &row.prev_hash,
        hash: &row.hash,
    };
    let mut bytes = serde_json::to_vec(&out).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// What a verified export proves.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub lines: usize,
    pub from_seq: i64,
    pub to_seq: i64,
    pub events: u64,
    pub omitted: u64,
    pub pruned: u64,
    /// Rows chained before link version 2: present and in order, but
    /// their content cannot be checked without the master key.
    pub unproven_v1: u64,
    pub start_signed_at: Option<String>,
    pub end_signed_at: String,
    /// Filters on content (`ip`, `q`): an omitted row cannot be shown not
    /// to match them.
    pub content_filters_unchecked: bool,
    pub filters: FilterParams,
}

/// Why an export does not verify, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

fn problem(line: usize, message: impl Into<String>) -> Problem {
    Problem { line, message: message.into() }
}

fn parse_time(value: &str) -> Option<NaiveDateTime> {
    chrono::DateTime::parse_from_rfc3339(value).ok().map(|t| t.naive_utc())
}

/// Verifies an export read from `input` with the trusted `public_keys`
/// (base64 of 32 raw bytes each).
pub fn verify(input: impl BufRead, public_keys: &[String]) -> Result<Report, Problem> {
    let mut verifier = Verifier::new(public_keys);
    let mut count = 0;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        count = number;
        let text = line.map_err(|e| problem(number, format!("cannot be read: {e}")))?;
        if text.trim().is_empty() {
            return Err(problem(number, "is empty"));
        }
        let parsed: Line =
            serde_json::from_str(&text).map_err(|e| problem(number, format!("is not an export line: {e}")))?;
        verifier.line(number, parsed)?;
    }
    verifier.finish(count)
}

enum Stage {
    Header,
    /// After the header and key lines, before the first row.
    Start,
    Rows,
    Done,
}

struct Verifier<'a> {
    trusted: &'a [String],
    stage: Stage,
    header: Option<Header>,
    filters: Option<Filters>,
    keys: Vec<KeyLine>,
    expected_seq: i64,
    prev_hash: String,
    seen_v2: bool,
    report: Report,
}

impl<'a> Verifier<'a> {
    fn new(trusted: &'a [String]) -> Self {
        Self {
            trusted,
            stage: Stage::Header,
            header: None,
            filters: None,
            keys: Vec::new(),
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            seen_v2: false,
            report: Report::default(),
        }
    }

    fn line(&mut self, n: usize, line: Line) -> Result<(), Problem> {
        match (&self.stage, line) {
            (Stage::Header, Line::Header(header)) => self.header(n, header),
            (Stage::Header, _) => Err(problem(n, "the export does not start with its header line")),
            (Stage::Start, Line::Key(key)) => {
                self.keys.push(key);
                Ok(())
            }
            (Stage::Start, Line::Checkpoint(c)) if c.role == "start" => self.start(n, c),
            (Stage::Start | Stage::Rows, Line::Event(row)) => self.row(n, row, RowKind::Event),
            (Stage::Start | Stage::Rows, Line::Omitted(row)) => self.row(n, row, RowKind::Omitted),
            (Stage::Start | Stage::Rows, Line::Pruned(row)) => self.row(n, row, RowKind::Pruned),
            (Stage::Rows, Line::Checkpoint(c)) if c.role == "end" => self.end(n, c),
            (Stage::Done, _) => Err(problem(n, "comes after the end checkpoint: lines were added")),
            (_, Line::Header(_)) => Err(problem(n, "a second header: lines from another export were mixed in")),
            (_, _) => Err(problem(n, "is out of place (lines were reordered, dropped or added)")),
        }
    }

    fn header(&mut self, n: usize, header: Header) -> Result<(), Problem> {
        if header.format != FORMAT {
            return Err(problem(n, format!("unknown format `{}` (expected {FORMAT})", header.format)));
        }
        let mut filters = header.filters.parse().map_err(|e| problem(n, format!("bad filters: {e}")))?;
        filters.sql.account_id = header.account_id.clone();
        if filters.account.is_some() && header.account_id.is_none() {
            return Err(problem(n, "the account filter is not resolved to an id"));
        }
        self.report.content_filters_unchecked = filters.ip.is_some() || filters.text.is_some();
        self.report.filters = header.filters.clone();
        self.filters = Some(filters);
        self.header = Some(header);
        self.stage = Stage::Start;
        Ok(())
    }

    fn check_signature(&self, n: usize, c: &CheckpointLine) -> Result<(), Problem> {
        let signed_at =
            parse_time(&c.signed_at).ok_or_else(|| problem(n, "the checkpoint's signed_at is not a time"))?;
        let message =
            checkpoint::signed_bytes(c.seq, &c.head_hash, signed_at, c.prev_checkpoint_hash.as_deref(), &c.key_id);
        let listed = self.keys.iter().find(|k| k.id == c.key_id).map(|k| k.public_key.as_str());
        let valid = self.trusted.iter().any(|key| checkpoint::signature_is_valid(key, &message, &c.signature));
        if valid {
            return Ok(());
        }
        Err(match listed {
            Some(key) if !self.trusted.iter().any(|t| t == key) => problem(
                n,
                format!(
                    "the checkpoint is signed with key {} ({key}), which is not one of the given public keys",
                    c.key_id
                ),
            ),
            _ => problem(
                n,
                "the checkpoint's signature does not verify with the given public key: it was edited or forged",
            ),
        })
    }

    fn start(&mut self, n: usize, c: CheckpointLine) -> Result<(), Problem> {
        self.check_signature(n, &c)?;
        let header = self.header.as_ref().ok_or_else(|| problem(n, "no header"))?;
        // The start must not cut off rows the filters ask for: every row
        // chained before a checkpoint was recorded before it was signed.
        if let (Some(from), Some(signed_at)) =
            (&self.filters.as_ref().and_then(|f| f.sql.from), parse_time(&c.signed_at))
            && signed_at > *from
        {
            return Err(problem(
                n,
                "the export starts at a checkpoint signed after its `from`: its first rows were cut off",
            ));
        }
        if c.seq + 1 != header.from_seq {
            return Err(problem(n, "the start checkpoint does not match the header's range"));
        }
        self.expected_seq = c.seq + 1;
        self.prev_hash = c.head_hash.clone();
        self.report.start_signed_at = Some(c.signed_at);
        self.stage = Stage::Rows;
        Ok(())
    }

    fn row(&mut self, n: usize, row: RowLine, kind: RowKind) -> Result<(), Problem> {
        if matches!(self.stage, Stage::Start) {
            // No start checkpoint: the range starts at the first row.
            if self.filters.as_ref().is_some_and(|f| f.sql.from.is_some()) && row.meta.seq != 1 {
                return Err(problem(n, "the export has no start checkpoint: lines were dropped before this one"));
            }
            self.stage = Stage::Rows;
        }
        let seq = row.meta.seq;
        if seq != self.expected_seq {
            let what = if seq > self.expected_seq { "dropped" } else { "reordered or repeated" };
            return Err(problem(n, format!("expected row {}, found row {seq}: lines were {what}", self.expected_seq)));
        }
        if row.prev_hash != self.prev_hash {
            return Err(problem(n, "does not link to the line before it (its prev_hash differs)"));
        }
        let meta_time = parse_time(&row.meta.occurred_at).ok_or_else(|| problem(n, "occurred_at is not a time"))?;
        match row.meta.link_version {
            2 => {
                self.seen_v2 = true;
                let content_hash = match (&kind, &row.content) {
                    (RowKind::Event, Some(content)) => {
                        let salt = content.content_salt.as_deref().ok_or_else(|| problem(n, "has no content_salt"))?;
                        let computed = chain::content_hash(&Content {
                            salt,
                            reason: content.reason.as_deref(),
                            ip: content.ip.as_deref(),
                            user_agent: content.user_agent.as_deref(),
                            detail: &content.detail,
                        });
                        if row.content_hash.as_deref() != Some(computed.as_str()) {
                            return Err(problem(n, "the event was edited (its content does not match its hash)"));
                        }
                        computed
                    }
                    (RowKind::Event, None) => return Err(problem(n, "an event line without its content")),
                    (_, _) => row.content_hash.clone().ok_or_else(|| problem(n, "has no content_hash"))?,
                };
                let m = &row.meta;
                let metadata = Metadata {
                    seq,
                    id: &m.id,
                    occurred_at: &m.occurred_at,
                    category: &m.category,
                    action: &m.action,
                    outcome: &m.outcome,
                    actor: m.actor.as_deref(),
                    account_id: m.account_id.as_deref(),
                    client_id: m.client_id.as_deref(),
                    request_id: m.request_id.as_deref(),
                };
                if chain::link_hash(&row.prev_hash, &metadata, &content_hash) != row.hash {
                    return Err(problem(n, "the row was edited (it does not match its hash)"));
                }
            }
            1 if !self.seen_v2 => self.report.unproven_v1 += 1,
            _ => return Err(problem(n, "has an impossible link version: the line was edited")),
        }
        match kind {
            RowKind::Event => self.report.events += 1,
            RowKind::Omitted => {
                let filters = self.filters.as_ref().ok_or_else(|| problem(n, "no header"))?;
                if !self.report.content_filters_unchecked && filters.matches_metadata(&row.meta.view(meta_time)) {
                    return Err(problem(n, "was left out, but it matches the export's filters"));
                }
                self.report.omitted += 1;
            }
            RowKind::Pruned => self.report.pruned += 1,
        }
        self.expected_seq = seq + 1;
        self.prev_hash = row.hash;
        Ok(())
    }

    fn end(&mut self, n: usize, c: CheckpointLine) -> Result<(), Problem> {
        self.check_signature(n, &c)?;
        let last = self.expected_seq - 1;
        if c.seq != last || c.head_hash != self.prev_hash {
            return Err(problem(
                n,
                format!(
                    "the end checkpoint signs row {} but the rows end at {last}: rows were changed or dropped",
                    c.seq
                ),
            ));
        }
        let header = self.header.as_ref().ok_or_else(|| problem(n, "no header"))?;
        if header.to_seq != c.seq {
            return Err(problem(n, "the end checkpoint does not match the header's range"));
        }
        self.report.from_seq = header.from_seq;
        self.report.to_seq = c.seq;
        self.report.end_signed_at = c.signed_at;
        self.stage = Stage::Done;
        Ok(())
    }

    fn finish(mut self, lines: usize) -> Result<Report, Problem> {
        match self.stage {
            Stage::Done => {
                self.report.lines = lines;
                Ok(self.report)
            }
            Stage::Header => Err(problem(lines.max(1), "the export is empty")),
            _ => Err(problem(lines, "the export ends without its end checkpoint: its last lines were dropped")),
        }
    }
}

enum RowKind {
    Event,
    Omitted,
    Pruned,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_writes_what_the_reader_reads() {
        let mut event = crate::audit::AuditEvent::success(crate::audit::Action::Logout).with_reason("原因 \"q\"");
        event.ip = Some("10.0.0.1".into());
        let event = event.with_detail("k", serde_json::json!({"b": 1, "a": [true, null]}));
        let pending = chain::pending(&event, crate::db::now()).recorded(1);
        let row = chain::link(0, GENESIS_HASH, &pending);
        // What is written is what the reader reads back, with the row's hashes.
        let read = |selected| serde_json::from_slice::<Line>(&row_line_bytes(&row, selected)).unwrap();
        match read(true) {
            Line::Event(line) => {
                assert_eq!((line.meta.seq, line.hash.as_str()), (row.seq, row.hash.as_str()));
                let content = line.content.expect("an event carries its content");
                assert_eq!(content.reason.as_deref(), Some("原因 \"q\""));
                assert_eq!(content.detail, chain::detail_value(&row.detail));
            }
            other => panic!("not an event line: {other:?}"),
        }
        match read(false) {
            Line::Omitted(line) => assert!(line.content.is_none() && line.content_hash == row.content_hash),
            other => panic!("not an omitted line: {other:?}"),
        }
    }

    #[test]
    fn an_empty_input_names_line_one() {
        let err = verify(std::io::Cursor::new(""), &[]).unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn a_line_that_is_not_json_is_named() {
        let header = Line::Header(Header {
            format: FORMAT.into(),
            exported_at: "2026-12-02T00:00:00.000000Z".into(),
            filters: FilterParams::default(),
            account_id: None,
            from_seq: 1,
            to_seq: 1,
        });
        let mut input = header.to_bytes();
        input.extend_from_slice(b"not json\n");
        let err = verify(std::io::Cursor::new(input), &[]).unwrap_err();
        assert_eq!(err.line, 2);
    }
}

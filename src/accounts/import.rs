//! Bulk import of accounts (issue 8): CSV or JSON Lines with the columns
//! `username,name,email,email_verified,phone,phone_verified,roles,unionid,openids`.
//!
//! Semantics (see docs/import.md):
//! - every line is checked first, against the file and the database, by
//!   running the real import ([`manage::add`], [`identities::link_external`])
//!   in transactions that are rolled back: the rules are the domain's own;
//! - a row naming an existing username **updates** it: the profile fields
//!   the row gives replace the stored ones (an empty cell keeps what is
//!   stored), the roles it lists are added, its identities linked; a row
//!   that changes nothing is `unchanged` and records nothing, so running
//!   the same file twice changes nothing the second time;
//! - a username, UnionID or OpenID twice in the file is an error;
//! - with any error nothing is imported; otherwise the lines are imported in
//!   batches of [`BATCH`] lines, one transaction per batch, each account and
//!   link audited, then one `import` summary event with the counts;
//! - imported accounts have no password (WeChat login, or an admin sets one).

use std::collections::HashSet;
use std::io::BufRead;

use serde::Serialize;

use super::manage::{self, Actor, NewAccount};
use super::{Role, Username};
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn};
use crate::secrets::Secrets;
use crate::wechat::identities::{self, ExternalId};

/// Largest file accepted (bytes).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Lines per transaction.
pub const BATCH: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// By extension (`.csv`, `.jsonl`), else by content (a line starting with `{`).
    pub fn detect(name: &str, first_bytes: &[u8]) -> Self {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            return Self::JsonLines;
        }
        if lower.ends_with(".csv") {
            return Self::Csv;
        }
        let start = first_bytes.iter().find(|b| !b.is_ascii_whitespace());
        if start == Some(&b'{') { Self::JsonLines } else { Self::Csv }
    }
}

/// One line of the file, parsed.
#[derive(Debug, Clone)]
pub struct Record {
    pub line: u64,
    pub account: NewAccount,
    /// The verified flags as the row gives them (`None`: an empty cell or
    /// no such key, which keeps a stored account's value).
    pub email_verified: Option<bool>,
    pub phone_verified: Option<bool>,
    pub unionid: Option<String>,
    pub openids: Vec<(String, String)>,
}

/// What happened (or would happen) to one line.
#[derive(Debug, Clone, Serialize)]
pub struct LineOutcome {
    pub line: u64,
    pub username: String,
    /// `create`, `update`, `unchanged` or `error`.
    pub action: &'static str,
    pub links: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub imported: bool,
    pub lines: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub links: u64,
    pub errors: u64,
    /// Lines with errors (all of them), and in a dry run the first lines
    /// that would be created (at most [`PREVIEW`]).
    pub outcomes: Vec<LineOutcome>,
}

/// Lines of a dry run listed besides the errors.
pub const PREVIEW: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Invalid(String),
    #[error("the file is larger than {} MiB", MAX_FILE_BYTES / 1024 / 1024)]
    TooLarge,
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
}

fn flag(value: &str) -> Result<Option<bool>, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "false" | "0" | "no" => Ok(Some(false)),
        "true" | "1" | "yes" => Ok(Some(true)),
        other => Err(format!("`{other}` is not true or false")),
    }
}

/// A list cell: items separated by spaces (the contract), commas or
/// semicolons.
fn items(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
}

fn opt(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() { None } else { Some(v.to_owned()) }
}

fn parse_roles<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<Role>, String> {
    items.map(str::trim).filter(|s| !s.is_empty()).map(|r| r.parse::<Role>()).collect()
}

fn parse_openids<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<(String, String)>, String> {
    items
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once(':') {
            Some((appid, openid)) if !appid.trim().is_empty() && !openid.trim().is_empty() => {
                Ok((appid.trim().to_owned(), openid.trim().to_owned()))
            }
            _ => Err(format!("`{pair}` is not an appid:openid pair")),
        })
        .collect()
}

const COLUMNS: [&str; 9] =
    ["username", "name", "email", "email_verified", "phone", "phone_verified", "roles", "unionid", "openids"];

/// A JSONL list: an array, a string of items, or (for `openids`) an
/// object appid → openid.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ListOrString {
    List(Vec<String>),
    Map(std::collections::BTreeMap<String, String>),
    One(String),
}

impl ListOrString {
    fn items(&self) -> Vec<String> {
        match self {
            Self::List(v) => v.clone(),
            Self::Map(m) => m.iter().map(|(appid, openid)| format!("{appid}:{openid}")).collect(),
            Self::One(s) => items(s).map(str::to_owned).collect(),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    username: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    phone_verified: Option<bool>,
    #[serde(default)]
    roles: Option<ListOrString>,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    openids: Option<ListOrString>,
}

/// Reads records one at a time: a CSV (with a header naming the columns)
/// or JSON Lines. Errors carry the line number.
pub struct Reader<R: BufRead> {
    inner: Inner<R>,
}

#[allow(clippy::large_enum_variant)] // one per import
enum Inner<R: BufRead> {
    Csv { reader: csv::Reader<R>, index: [Option<usize>; 9] },
    Json { lines: std::io::Lines<R>, line: u64 },
}

impl<R: BufRead> Reader<R> {
    pub fn new(format: Format, input: R) -> Result<Self, ImportError> {
        Ok(Self {
            inner: match format {
                Format::JsonLines => Inner::Json { lines: input.lines(), line: 0 },
                Format::Csv => {
                    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(input);
                    let headers = reader.headers().map_err(|e| ImportError::Invalid(format!("line 1: {e}")))?.clone();
                    let mut index = [None; 9];
                    for (i, header) in headers.iter().enumerate() {
                        let header = header.trim_start_matches('\u{feff}').trim().to_ascii_lowercase();
                        match COLUMNS.iter().position(|c| *c == header) {
                            Some(c) => index[c] = Some(i),
                            None => {
                                return Err(ImportError::Invalid(format!(
                                    "line 1: unknown column `{header}` (columns: {})",
                                    COLUMNS.join(",")
                                )));
                            }
                        }
                    }
                    if index[0].is_none() {
                        return Err(ImportError::Invalid("line 1: the header has no `username` column".into()));
                    }
                    Inner::Csv { reader, index }
                }
            },
        })
    }

    /// The next record: `None` at the end, `Some(Err((line, reason)))` for a bad line.
    pub fn next_record(&mut self) -> Option<Result<Record, (u64, String)>> {
        match &mut self.inner {
            Inner::Csv { reader, index } => {
                let mut row = csv::StringRecord::new();
                let line = reader.position().line();
                match reader.read_record(&mut row) {
                    Ok(false) => None,
                    Err(e) => Some(Err((line.max(1), e.to_string()))),
                    Ok(true) => {
                        let line = row.position().map_or(line, |p| p.line());
                        let field = |c: usize| index[c].and_then(|i| row.get(i)).unwrap_or("");
                        Some(csv_record(line, &field).map_err(|e| (line, e)))
                    }
                }
            }
            Inner::Json { lines, line } => loop {
                *line += 1;
                let text = match lines.next()? {
                    Ok(text) => text,
                    Err(e) => return Some(Err((*line, e.to_string()))),
                };
                if text.trim().is_empty() {
                    continue;
                }
                let n = *line;
                return Some(json_record(n, &text).map_err(|e| (n, e)));
            },
        }
    }
}

fn csv_record<'a>(line: u64, field: &dyn Fn(usize) -> &'a str) -> Result<Record, String> {
    let email_verified = flag(field(3)).map_err(|e| format!("email_verified: {e}"))?;
    let phone_verified = flag(field(5)).map_err(|e| format!("phone_verified: {e}"))?;
    Ok(Record {
        line,
        account: NewAccount {
            username: field(0).to_owned(),
            display_name: opt(field(1)),
            email: opt(field(2)),
            email_verified: email_verified.unwrap_or(false),
            phone: opt(field(4)),
            phone_verified: phone_verified.unwrap_or(false),
            roles: parse_roles(items(field(6)))?,
        },
        email_verified,
        phone_verified,
        unionid: opt(field(7)),
        openids: parse_openids(items(field(8)))?,
    })
}

fn json_record(line: u64, text: &str) -> Result<Record, String> {
    let j: JsonLine = serde_json::from_str(text).map_err(|e| format!("not a JSON object of the import: {e}"))?;
    let roles = j.roles.as_ref().map(ListOrString::items).unwrap_or_default();
    let openids = j.openids.as_ref().map(ListOrString::items).unwrap_or_default();
    Ok(Record {
        line,
        account: NewAccount {
            username: j.username,
            display_name: j.name.as_deref().and_then(opt),
            email: j.email.as_deref().and_then(opt),
            email_verified: j.email_verified.unwrap_or(false),
            phone: j.phone.as_deref().and_then(opt),
            phone_verified: j.phone_verified.unwrap_or(false),
            roles: parse_roles(roles.iter().map(String::as_str))?,
        },
        email_verified: j.email_verified,
        phone_verified: j.phone_verified,
        unionid: j.unionid.as_deref().and_then(opt),
        openids: parse_openids(openids.iter().map(String::as_str))?,
    })
}

/// The Open Platform a file's UnionIDs belong to: the one given, else the
/// only one registered.
pub fn open_platform(conn: &mut DbConn, given: Option<&str>) -> Result<Option<String>, ImportError> {
    if let Some(platform) = given.map(str::trim).filter(|p| !p.is_empty()) {
        return Ok(Some(platform.to_owned()));
    }
    let mut platforms: Vec<String> =
        crate::wechat::apps::list(conn)?.into_iter().filter_map(|a| a.open_platform).collect();
    platforms.sort();
    platforms.dedup();
    Ok(if platforms.len() == 1 { platforms.pop() } else { None })
}

/// Duplicates inside the file (by username key, UnionID, OpenID).
#[derive(Default)]
struct Seen {
    usernames: HashSet<String>,
    unionids: HashSet<String>,
    openids: HashSet<(String, String)>,
}

impl Seen {
    fn check(&mut self, record: &Record) -> Result<(), String> {
        let username = Username::parse(&record.account.username).map_err(|m| m.to_string())?;
        if !self.usernames.insert(username.key()) {
            return Err(format!("the username `{}` appears earlier in the file", username.as_str()));
        }
        if let Some(unionid) = &record.unionid
            && !self.unionids.insert(unionid.clone())
        {
            return Err("this UnionID appears earlier in the file".into());
        }
        for pair in &record.openids {
            if !self.openids.insert(pair.clone()) {
                return Err(format!("the OpenID of {} appears earlier in the file", pair.0));
            }
        }
        Ok(())
    }
}

enum LineError {
    Refused(String),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for LineError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

fn refused_console(e: manage::ConsoleError) -> LineError {
    match e {
        manage::ConsoleError::Db(e) | manage::ConsoleError::Manage(manage::ManageError::Db(e)) => LineError::Db(e),
        manage::ConsoleError::Manage(manage::ManageError::Invalid(m)) => LineError::Refused(m.to_string()),
        other => LineError::Refused(other.to_string()),
    }
}

/// The stored account with what the row gives laid over it: an empty cell
/// keeps the stored value. `None` when that changes nothing.
fn profile_change(current: &super::Account, record: &Record) -> Option<manage::ProfileUpdate> {
    let new = &record.account;
    let update = manage::ProfileUpdate {
        display_name: new.display_name.clone().or_else(|| current.display_name.clone()),
        email: new.email.clone().or_else(|| current.email.clone()),
        email_verified: record.email_verified.unwrap_or(current.email_verified),
        phone: new.phone.clone().or_else(|| current.phone.clone()),
        phone_verified: record.phone_verified.unwrap_or(current.phone_verified),
    };
    let same = update.display_name == current.display_name
        && update.email == current.email
        && update.email_verified == current.email_verified
        && update.phone == current.phone
        && update.phone_verified == current.phone_verified;
    (!same).then_some(update)
}

/// Imports one record (in a savepoint): creates the account or updates
/// the existing one, then links its identities. Returns what it did
/// (`create`, `update` or `unchanged`) and how many identities it linked.
fn import_one(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    platform: Option<&str>,
    record: &Record,
    reason: &str,
) -> Result<(&'static str, usize), LineError> {
    conn_transaction(conn, |conn| {
        let existing = match manage::find_by_username(conn, &record.account.username) {
            Ok(account) => Some(account),
            Err(manage::ManageError::NotFound(_)) => None,
            Err(manage::ManageError::Db(e)) => return Err(LineError::Db(e)),
            Err(other) => return Err(LineError::Refused(other.to_string())),
        };
        let (account_id, mut action) = match existing {
            None => {
                let account = manage::add(conn, secrets, actor, &record.account, None).map_err(|e| match e {
                    manage::ManageError::Db(e) => LineError::Db(e),
                    other => LineError::Refused(other.to_string()),
                })?;
                (account.id.to_string(), "create")
            }
            Some(current) => {
                let id = current.id.to_string();
                let mut action = "unchanged";
                if let Some(update) = profile_change(&current, record) {
                    manage::update_profile(conn, secrets, actor, &id, &update).map_err(refused_console)?;
                    action = "update";
                }
                // Roles are added, never taken away by an import.
                let missing: Vec<Role> =
                    record.account.roles.iter().filter(|r| !current.roles.contains(r)).copied().collect();
                if !missing.is_empty() {
                    let roles: Vec<Role> = current.roles.iter().chain(&missing).copied().collect();
                    manage::set_roles_by_id(conn, secrets, actor, &id, &roles, reason).map_err(refused_console)?;
                    action = "update";
                }
                (id, action)
            }
        };
        let mut ids = Vec::new();
        if let Some(unionid) = &record.unionid {
            let Some(platform) = platform else {
                return Err(LineError::Refused(
                    "a UnionID needs its Open Platform: several (or none) are registered".into(),
                ));
            };
            ids.push(ExternalId::UnionId { open_platform: platform.to_owned(), unionid: unionid.clone() });
        }
        for (appid, openid) in &record.openids {
            ids.push(ExternalId::OpenId { appid: appid.clone(), openid: openid.clone() });
        }
        let mut linked = 0;
        for id in &ids {
            let known = identities::find_external(conn, id).map_err(|e| match e {
                identities::IdentityError::Db(e) => LineError::Db(e),
                other => LineError::Refused(other.to_string()),
            })?;
            if known.is_some_and(|row| row.account_id.as_deref() == Some(account_id.as_str())) {
                continue; // linked already: nothing to do
            }
            identities::link_external(conn, secrets, actor, &account_id, id, reason).map_err(|e| match e {
                identities::IdentityError::Db(e) => LineError::Db(e),
                other => LineError::Refused(other.to_string()),
            })?;
            linked += 1;
        }
        if linked > 0 && action == "unchanged" {
            action = "update";
        }
        Ok((action, linked))
    })
}

fn conn_transaction<T>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> Result<T, LineError>) -> Result<T, LineError> {
    use diesel::Connection;
    conn.transaction(f)
}

enum BatchEnd {
    Rollback,
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for BatchEnd {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

/// Runs `batch` (each line in its own savepoint), returning the outcomes;
/// with `commit` false (or any refused line) the batch is rolled back.
fn run_batch(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    platform: Option<&str>,
    batch: &[Record],
    reason: &str,
    commit: bool,
) -> Result<Vec<LineOutcome>, ImportError> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let result = db::write_transaction(conn, |conn| {
        let mut refused = false;
        for record in batch {
            let username = record.account.username.clone();
            match import_one(conn, secrets, actor, platform, record, reason) {
                Ok((action, links)) => {
                    outcomes.push(LineOutcome { line: record.line, username, action, links, error: None })
                }
                Err(LineError::Refused(error)) => {
                    refused = true;
                    outcomes.push(LineOutcome {
                        line: record.line,
                        username,
                        action: "error",
                        links: 0,
                        error: Some(error),
                    });
                }
                Err(LineError::Db(e)) => return Err(BatchEnd::Db(e)),
            }
        }
        if commit && !refused { Ok(()) } else { Err(BatchEnd::Rollback) }
    });
    match result {
        Ok(()) | Err(BatchEnd::Rollback) => Ok(outcomes),
        Err(BatchEnd::Db(e)) => Err(e.into()),
    }
}

fn count(report: &mut Report, outcome: &LineOutcome) {
    match outcome.action {
        "create" => report.created += 1,
        "update" => report.updated += 1,
        _ => report.unchanged += 1,
    }
    report.links += outcome.links as u64;
}

/// Checks (and with `dry_run` false, imports) everything `open()` reads;
/// `progress` hears how many lines are imported after each batch.
/// `open` is called once per pass, so a file is streamed twice rather than
/// held in memory.
/// How an import runs.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The Open Platform of the file's UnionIDs (default: the only one).
    pub open_platform: Option<&'a str>,
    /// Recorded with every change.
    pub reason: &'a str,
    pub dry_run: bool,
}

pub fn import<R: BufRead>(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    open: &mut dyn FnMut() -> Result<Reader<R>, ImportError>,
    options: Options,
    progress: &mut dyn FnMut(u64),
) -> Result<Report, ImportError> {
    let Options { open_platform: open_platform_name, reason, dry_run } = options;
    let reason = identities::require_reason(reason).map_err(|e| ImportError::Invalid(e.to_string()))?;
    let platform = open_platform(conn, open_platform_name)?;
    let mut report = Report { dry_run, ..Report::default() };
    // Pass 1: validate every line (rolled back).
    let mut seen = Seen::default();
    let mut reader = open()?;
    let mut batch = Vec::with_capacity(BATCH);
    let flush = |conn: &mut DbConn, batch: &mut Vec<Record>, report: &mut Report| -> Result<(), ImportError> {
        for outcome in run_batch(conn, secrets, actor, platform.as_deref(), batch, &reason, false)? {
            if outcome.error.is_some() {
                report.errors += 1;
                report.outcomes.push(outcome);
            } else {
                count(report, &outcome);
                if report.outcomes.len() < PREVIEW {
                    report.outcomes.push(outcome);
                }
            }
        }
        batch.clear();
        Ok(())
    };
    while let Some(next) = reader.next_record() {
        report.lines += 1;
        let record = match next.and_then(|r| match seen.check(&r) {
            Ok(()) => Ok(r),
            Err(e) => Err((r.line, e)),
        }) {
            Ok(record) => record,
            Err((line, error)) => {
                report.errors += 1;
                report.outcomes.push(LineOutcome {
                    line,
                    username: String::new(),
                    action: "error",
                    links: 0,
                    error: Some(error),
                });
                continue;
            }
        };
        batch.push(record);
        if batch.len() >= BATCH {
            flush(conn, &mut batch, &mut report)?;
        }
    }
    flush(conn, &mut batch, &mut report)?;
    report.outcomes.sort_by_key(|o| o.line);
    if dry_run || report.errors > 0 || report.created + report.updated == 0 {
        return Ok(report);
    }
    // Pass 2: import, one transaction per batch.
    drop(seen);
    let mut done = Report { lines: report.lines, ..Report::default() };
    let mut reader = open()?;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let next = reader.next_record();
        let end = next.is_none();
        if let Some(next) = next {
            batch.push(next.map_err(|(line, e)| ImportError::Invalid(format!("line {line}: {e}")))?);
        }
        if batch.len() >= BATCH || (end && !batch.is_empty()) {
            for outcome in run_batch(conn, secrets, actor, platform.as_deref(), &batch, &reason, true)? {
                if let Some(error) = outcome.error {
                    // Changed since the check (a concurrent change): this batch was rolled back.
                    return Err(ImportError::Invalid(format!(
                        "line {}: {error} ({} lines imported before it)",
                        outcome.line,
                        done.created + done.updated + done.unchanged
                    )));
                }
                count(&mut done, &outcome);
            }
            batch.clear();
            progress(done.created + done.updated + done.unchanged);
        }
        if end {
            break;
        }
    }
    db::write_transaction(conn, |conn| {
        let event = AuditEvent::success(Action::AccountsImported)
            .with_actor(actor.0.clone())
            .with_detail("lines", report.lines)
            .with_detail("created", done.created)
            .with_detail("updated", done.updated)
            .with_detail("unchanged", done.unchanged)
            .with_detail("links", done.links)
            .with_detail("reason", reason.clone());
        audit::append(conn, secrets, &event)
    })?;
    done.imported = true;
    Ok(done)
}

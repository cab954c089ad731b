//! The auditor's search over the trail (issue 9 §2, §3): the filters of
//! the log viewer and the export, as query parameters (`from, to,
//! category, action, outcome, account, client, ip, request_id, q`) so a
//! filtered view is a link an auditor can share, and keyset pages over
//! them in either direction.
//!
//! Filters become SQL in `db::audit_query`, but for two checked here: free
//! text (`q`: no index serves "contains"), and IP-in-CIDR, which SQL only
//! narrows by the network's textual prefix (`10.1.` for `10.1.0.0/16`). A
//! page then reads at most [`SCAN_BUDGET`] rows and may come back short
//! with a cursor to continue, so its cost stays bounded at any table size.

use std::net::IpAddr;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::accounts::manage;
use crate::db::DbConn;
use crate::db::audit::AuditRow;
use crate::db::audit_query::{self, Direction, EventFilter, TextMatch};

/// Rows one page may read while a CIDR filter drops some of them.
pub const SCAN_BUDGET: i64 = 5_000;

/// The filters exactly as given (query string or CLI flags).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct FilterParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

/// Why a filter was refused (a 400 on the web, exit 1 in the CLI).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("`{value}` is not a time for `{field}`: use RFC 3339 (2026-12-02T08:00:00Z) or a date (2026-12-02)")]
    BadTime { field: &'static str, value: String },
    #[error("`{0}` is not an IP address or a CIDR network (e.g. 10.1.0.0/16)")]
    BadIp(String),
    #[error("`{0}` is not an outcome: use success or failure")]
    BadOutcome(String),
    #[error("the filter `{0}` is too long")]
    TooLong(&'static str),
}

/// An IP filter: one address, or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFilter {
    Address(IpAddr),
    Network { base: IpAddr, prefix_len: u8 },
}

impl IpFilter {
    pub fn parse(value: &str) -> Option<Self> {
        let Some((addr, len)) = value.split_once('/') else {
            return value.parse().ok().map(Self::Address);
        };
        let addr: IpAddr = addr.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return None;
        }
        Some(Self::Network { base: mask(addr, len), prefix_len: len })
    }

    /// Whether the recorded text `ip` is in this filter.
    pub fn contains(&self, ip: &str) -> bool {
        let Ok(ip) = ip.parse::<IpAddr>() else { return false };
        match *self {
            Self::Address(address) => ip == address,
            Self::Network { base, prefix_len } => ip.is_ipv4() == base.is_ipv4() && mask(ip, prefix_len) == base,
        }
    }

    /// What SQL can match on the text column: the address exactly, or the
    /// text every address of an IPv4 network starts with (its whole
    /// octets, e.g. `10.1.` for /16 to /23); `None` to scan.
    fn sql(&self) -> Option<TextMatch> {
        match *self {
            Self::Address(address) => Some(TextMatch::Exact(address.to_string())),
            Self::Network { base: IpAddr::V4(base), prefix_len: 32 } => Some(TextMatch::Exact(base.to_string())),
            Self::Network { base: IpAddr::V4(base), prefix_len } if prefix_len >= 8 => {
                let octets = base.octets();
                let whole = usize::from(prefix_len / 8);
                let prefix: Vec<String> = octets[..whole].iter().map(u8::to_string).collect();
                Some(TextMatch::Prefix(format!("{}.", prefix.join("."))))
            }
            Self::Network { .. } => None,
        }
    }

    fn is_exact_in_sql(&self) -> bool {
        matches!(self.sql(), Some(TextMatch::Exact(_)))
            || matches!(*self, Self::Network { base: IpAddr::V4(_), prefix_len } if prefix_len % 8 == 0 && prefix_len > 0)
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// Parsed filters; `account` is resolved to an id against the database
/// when the search runs.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub sql: EventFilter,
    /// Username or id, as given.
    pub account: Option<String>,
    pub ip: Option<IpFilter>,
    /// `q`, lower-cased: searched in `reason` and `detail` by the server
    /// (no index serves "contains"; see [`page`]).
    pub text: Option<String>,
}

fn clean(value: &Option<String>, field: &'static str) -> Result<Option<String>, FilterError> {
    let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    if value.chars().count() > 200 {
        return Err(FilterError::TooLong(field));
    }
    Ok(Some(value.to_owned()))
}

/// A time bound: RFC 3339, or a date meaning that day in UTC (`to` then
/// includes the whole day).
pub fn parse_time(value: &str, field: &'static str, end: bool) -> Result<NaiveDateTime, FilterError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.naive_utc());
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let day = if end { date.succ_opt() } else { Some(date) };
        if let Some(start) = day.and_then(|d| d.and_hms_opt(0, 0, 0)) {
            return Ok(start);
        }
    }
    Err(FilterError::BadTime { field, value: value.to_owned() })
}

impl FilterParams {
    /// The filters with empty ones dropped and values trimmed: what a
    /// shareable link and the audit record of a search carry.
    pub fn normalized(&self) -> Self {
        let keep = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        Self {
            from: keep(&self.from),
            to: keep(&self.to),
            category: keep(&self.category),
            action: keep(&self.action),
            outcome: keep(&self.outcome),
            account: keep(&self.account),
            client: keep(&self.client),
            ip: keep(&self.ip),
            request_id: keep(&self.request_id),
            q: keep(&self.q),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.normalized() == Self::default()
    }

    /// The filters as (name, value) pairs for a URL query string.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let n = self.normalized();
        [
            ("from", n.from),
            ("to", n.to),
            ("category", n.category),
            ("action", n.action),
            ("outcome", n.outcome),
            ("account", n.account),
            ("client", n.client),
            ("ip", n.ip),
            ("request_id", n.request_id),
            ("q", n.q),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }

    /// The filters as an urlencoded query string (no leading `?`).
    pub fn query_string(&self) -> String {
        serde_urlencoded::to_string(self.pairs()).unwrap_or_default()
    }

    pub fn parse(&self) -> Result<Filters, FilterError> {
        let from = clean(&self.from, "from")?.map(|v| parse_time(&v, "from", false)).transpose()?;
        let to = clean(&self.to, "to")?.map(|v| parse_time(&v, "to", true)).transpose()?;
        let outcome = clean(&self.outcome, "outcome")?;
        if let Some(o) = &outcome
            && o != "success"
            && o != "failure"
        {
            return Err(FilterError::BadOutcome(o.clone()));
        }
        // `login.*` (or `login.`) matches every action of that family.
        let action = clean(&self.action, "action")?.map(|a| match a.strip_suffix('*') {
            Some(prefix) => TextMatch::Prefix(prefix.to_owned()),
            None if a.ends_with('.') => TextMatch::Prefix(a),
            None => TextMatch::Exact(a),
        });
        let ip = match clean(&self.ip, "ip")? {
            Some(v) => Some(IpFilter::parse(&v).ok_or(FilterError::BadIp(v))?),
            None => None,
        };
        Ok(Filters {
            sql: EventFilter {
                from,
                to,
                category: clean(&self.category, "category")?,
                action,
                outcome,
                account_id: None,
                client_id: clean(&self.client, "client")?,
                ip: ip.as_ref().and_then(IpFilter::sql),
                request_id: clean(&self.request_id, "request_id")?,
            },
            account: clean(&self.account, "account")?,
            ip,
            text: clean(&self.q, "q")?.map(|q| q.to_lowercase()),
        })
    }
}

impl Filters {
    /// Resolves the account filter: a username names that account, else
    /// the text is taken as an account id.
    pub fn resolve(&mut self, conn: &mut DbConn) -> diesel::QueryResult<()> {
        if let Some(account) = &self.account {
            let id = match manage::find_by_username(conn, account) {
                Ok(found) => found.id.to_string(),
                Err(manage::ManageError::Db(e)) => return Err(e),
                Err(_) => account.clone(),
            };
            self.sql.account_id = Some(id);
        }
        Ok(())
    }

    /// Whether some filter is checked here rather than in SQL: a CIDR
    /// network off an octet boundary, or free text (`q`: no index serves
    /// "contains", so SQL would read the whole table for a rare word).
    fn checks_in_memory(&self) -> bool {
        self.text.is_some() || self.ip.as_ref().is_some_and(|ip| !ip.is_exact_in_sql())
    }

    fn keeps(&self, row: &AuditRow) -> bool {
        let ip_ok = match &self.ip {
            Some(ip) if !ip.is_exact_in_sql() => row.ip.as_deref().is_some_and(|r| ip.contains(r)),
            _ => true,
        };
        ip_ok && self.text.as_deref().is_none_or(|q| text_contains(row, q))
    }
}

/// What the filters look at of a row besides its content: enough to
/// decide, without the content, whether a row of an export was rightly
/// left out (see [`super::proof`]).
#[derive(Debug, Clone, Copy)]
pub struct MetaView<'a> {
    pub occurred_at: NaiveDateTime,
    pub category: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub actor: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

impl<'a> MetaView<'a> {
    pub fn of(row: &'a AuditRow) -> Self {
        Self {
            occurred_at: row.occurred_at,
            category: &row.category,
            action: &row.action,
            outcome: &row.outcome,
            actor: row.actor.as_deref(),
            account_id: row.account_id.as_deref(),
            client_id: row.client_id.as_deref(),
            request_id: row.request_id.as_deref(),
        }
    }
}

/// `q` (lower-cased) in the reason or the detail, case-insensitively.
fn text_contains(row: &AuditRow, q: &str) -> bool {
    row.reason.as_deref().is_some_and(|r| r.to_lowercase().contains(q)) || row.detail.to_lowercase().contains(q)
}

fn text_matches(rule: &TextMatch, value: Option<&str>) -> bool {
    match (rule, value) {
        (TextMatch::Exact(v), Some(value)) => value == v,
        (TextMatch::Prefix(p), Some(value)) => value.starts_with(p.as_str()),
        (_, None) => false,
    }
}

impl Filters {
    /// The filters on metadata, in memory, exactly as SQL applies them
    /// (`db::audit_query`); the account filter must be resolved.
    pub fn matches_metadata(&self, row: &MetaView) -> bool {
        let f = &self.sql;
        let eq = |rule: &Option<String>, value: Option<&str>| rule.as_deref().is_none_or(|r| value == Some(r));
        f.from.is_none_or(|from| row.occurred_at >= from)
            && f.to.is_none_or(|to| row.occurred_at < to)
            && eq(&f.category, Some(row.category))
            && f.action.as_ref().is_none_or(|a| text_matches(a, Some(row.action)))
            && eq(&f.outcome, Some(row.outcome))
            && eq(&f.client_id, row.client_id)
            && eq(&f.request_id, row.request_id)
            && f.account_id.as_deref().is_none_or(|id| {
                row.account_id == Some(id) || row.actor.is_some_and(|a| a.strip_prefix("account:") == Some(id))
            })
    }

    /// Every filter, in memory, on a row with its content: what the export
    /// selects (the same rows as the SQL of the log viewer).
    pub fn matches_row(&self, row: &AuditRow) -> bool {
        let ip_ok = match &self.ip {
            Some(ip) => row.ip.as_deref().is_some_and(|r| ip.contains(r)),
            None => true,
        };
        let text_ok = self.text.as_deref().is_none_or(|q| text_contains(row, q));
        ip_ok && text_ok && self.matches_metadata(&MetaView::of(row))
    }
}

/// A page of events and where the next one starts.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<AuditRow>,
    /// The cursor (a seq) to pass for the next page, if there may be more.
    pub next: Option<i64>,
}

/// At most `limit` events matching `filters` from the cursor on, in the
/// given direction. Reads at most [`SCAN_BUDGET`] rows (only a CIDR filter
/// and free text drop rows after SQL); a short page with `next` means
/// "keep looking".
pub fn page(conn: &mut DbConn, filters: &Filters, direction: Direction, limit: i64) -> diesel::QueryResult<Page> {
    let mut rows = Vec::new();
    let mut scanned = 0;
    let mut cursor = direction;
    // Checked here, in batches big enough to fill a page.
    let batch_size = if filters.checks_in_memory() { limit.max(500) } else { limit };
    loop {
        let batch = audit_query::page(conn, &filters.sql, cursor, batch_size)?;
        let full = batch.len() as i64 == batch_size;
        scanned += batch.len() as i64;
        let Some(last) = batch.last().map(|r| r.seq) else {
            return Ok(Page { rows, next: None });
        };
        cursor = match cursor {
            Direction::NewestBefore(_) => Direction::NewestBefore(Some(last)),
            Direction::OldestAfter(_) => Direction::OldestAfter(last),
        };
        for row in batch {
            if rows.len() as i64 == limit {
                break;
            }
            let seq = row.seq;
            if filters.keeps(&row) {
                rows.push(row);
            }
            if rows.len() as i64 == limit {
                // Continue after the last row kept (even if more of the
                // batch was read): every event is on exactly one page.
                return Ok(Page { rows, next: Some(seq) });
            }
        }
        if !full {
            return Ok(Page { rows, next: None });
        }
        if scanned >= SCAN_BUDGET {
            return Ok(Page { rows, next: Some(last) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_filters_match_their_network_only() {
        let net = IpFilter::parse("10.1.16.0/20").unwrap();
        assert!(net.contains("10.1.16.1") && net.contains("10.1.31.255"));
        assert!(!net.contains("10.1.32.0") && !net.contains("10.10.16.1") && !net.contains("::1"));
        assert_eq!(net.sql(), Some(TextMatch::Prefix("10.1.".into())));
        assert!(!net.is_exact_in_sql());
        let net = IpFilter::parse("10.1.0.0/16").unwrap();
        assert!(net.is_exact_in_sql());
        assert!(IpFilter::parse("2001:db8::/32").unwrap().contains("2001:db8::7"));
        assert!(!IpFilter::parse("2001:db8::/32").unwrap().contains("2001:db9::7"));
        assert_eq!(IpFilter::parse("10.0.0.1"), Some(IpFilter::Address("10.0.0.1".parse().unwrap())));
        assert_eq!(IpFilter::parse("10.0.0.0/33"), None);
        assert_eq!(IpFilter::parse("nope"), None);
    }

    #[test]
    fn dates_are_whole_days_in_utc() {
        let from = parse_time("2026-12-02", "from", false).unwrap();
        let to = parse_time("2026-12-02", "to", true).unwrap();
        assert_eq!(from.to_string(), "2026-12-02 00:00:00");
        assert_eq!(to.to_string(), "2026-12-03 00:00:00");
        let t = parse_time("2026-12-02T08:00:00+08:00", "from", false).unwrap();
        assert_eq!(t.to_string(), "2026-12-02 00:00:00");
        assert!(parse_time("yesterday", "from", false).is_err());
    }

    #[test]
    fn a_shareable_link_keeps_only_the_filters_given() {
        let params = FilterParams { action: Some(" login.password ".into()), q: Some("".into()), ..Default::default() };
        assert_eq!(params.query_string(), "action=login.password");
    }
}

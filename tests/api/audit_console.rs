//! The auditor's console (issue 9 §1–§3): who gets in, every read
//! recorded (category `audit_access`), each filter, keyset pagination,
//! exports on the web and in the CLI. Both backends.

use std::collections::BTreeSet;

use wxfed::accounts::Role;
use wxfed::audit::{self, Action, AuditEvent};
use wxfed::db::audit::AuditRow;

use crate::admin::{PASSWORD, grant, pairs, post, signed_in_admin};
use crate::helpers::{TestApp, TestDb, new_client, spawn_app, wxfed_cli};

/// An auditor account signed in on a browser of its own.
async fn signed_in_auditor(app: &TestApp, username: &str) -> (TestApp, wxfed::accounts::Account) {
    let account = app.add_user(username, PASSWORD).await;
    grant(app, username, Role::Auditor).await;
    let browser = TestApp { client: new_client(), ..app.clone() };
    assert_eq!(browser.login(username, PASSWORD).await.status(), 303);
    (browser, account)
}

async fn seed(app: &TestApp, events: Vec<AuditEvent>) {
    app.record_events(events).await;
}

/// The seqs of the result rows on a log page, in page order.
fn seqs(page: &str) -> Vec<i64> {
    page.split("data-testid=\"event-row\" data-seq=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

fn next_link(page: &str) -> Option<String> {
    let at = page.find("rel=\"next\"")?;
    let href = page[..at].rfind("href=\"").unwrap() + 6;
    Some(page[href..href + page[href..].find('"').unwrap()].replace("&amp;", "&").replace("&#38;", "&"))
}

async fn page_text(app: &TestApp, path: &str) -> String {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

/// Every seq of every page, following the "older" links from `path`.
async fn all_pages(app: &TestApp, path: &str) -> Vec<i64> {
    let mut found = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(path) = next {
        let page = page_text(app, &path).await;
        found.extend(seqs(&page));
        next = next_link(&page);
    }
    found
}

fn event(action: Action, ip: &str, client: &str, request_id: &str, reason: Option<&str>) -> AuditEvent {
    let mut event = AuditEvent::success(action).with_client(client);
    event.ip = Some(ip.to_owned());
    event.request_id = Some(request_id.to_owned());
    event.reason = reason.map(str::to_owned);
    event
}

/// Seeded events' seqs matching `keep`, newest first (the page order).
fn expected(rows: &[AuditRow], keep: impl Fn(&AuditRow) -> bool) -> Vec<i64> {
    let mut seqs: Vec<i64> = rows.iter().filter(|r| keep(r)).map(|r| r.seq).collect();
    seqs.reverse();
    seqs
}

fn accesses(rows: &[AuditRow], action: &str) -> Vec<AuditRow> {
    rows.iter().filter(|r| r.action == action).cloned().collect()
}

#[actix_web::test]
async fn an_admin_without_the_auditor_role_is_refused_and_the_refusal_audited() {
    let (app, _db) = spawn_app().await;
    let admin = signed_in_admin(&app, "ada").await;
    for path in ["/audit", "/audit?action=login.password", "/audit/events/1", "/audit/export?format=csv"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 403, "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("data-testid=\"forbidden\">This page needs the auditor role"), "{page}");
    }
    let denied = accesses(&app.audit_rows().await, "admin.access_denied");
    assert_eq!(denied.len(), 4);
    assert!(denied.iter().all(|r| r.account_id.as_deref() == Some(admin.id.as_str())));
    let detail: serde_json::Value = serde_json::from_str(&denied[0].detail).unwrap();
    assert_eq!(detail["role"], "auditor");
    assert_eq!(detail["path"], "/audit");
    // Nothing was read: no audit_access event.
    assert!(!app.audit_rows().await.iter().any(|r| r.category == "audit_access"));
}

#[actix_web::test]
async fn an_auditor_reads_an_account_without_its_forms_and_cannot_change_it() {
    let (app, _db) = spawn_app().await;
    let target = app.add_user("bob", PASSWORD).await;
    let (auditor, me) = signed_in_auditor(&app, "audrey").await;
    let path = format!("/admin/accounts/{}", target.id);
    let page = page_text(&auditor, &path).await;
    assert!(page.contains("data-testid=\"account-username\">bob"), "{page}");
    assert!(page.contains("data-testid=\"read-only\""));
    assert!(!page.contains("<form method=\"post\""), "no action forms for an auditor: {page}");
    // Every action is refused, with or without a CSRF token, and audited.
    let actions = ["profile", "status", "roles", "password", "reveal", "sessions/revoke", "grants/revoke"];
    for action in actions {
        let fields = pairs(&[("status", "disabled"), ("role", "admin"), ("reason", "x"), ("csrf_token", "t")]);
        let response = post(&auditor, &format!("{path}/{action}"), &fields).await;
        assert_eq!(response.status(), 403, "{action}");
    }
    let rows = app.audit_rows().await;
    let denied = accesses(&rows, "admin.access_denied");
    assert_eq!(denied.len(), actions.len());
    assert!(denied.iter().all(|r| r.actor.as_deref() == Some(&*format!("account:{}", me.id))));
    assert!(denied.iter().all(|r| serde_json::from_str::<serde_json::Value>(&r.detail).unwrap()["method"] == "POST"));
    // Nothing changed, and the read itself was recorded.
    assert!(!rows.iter().any(|r| r.actor.as_deref() == Some(&*format!("account:{}", me.id))
        && r.category == "admin"
        && r.outcome == "success"));
    let viewed = accesses(&rows, "audit.account_viewed");
    assert_eq!(viewed.len(), 1);
    assert_eq!(viewed[0].category, "audit_access");
    assert_eq!(viewed[0].account_id.as_deref(), Some(target.id.as_str()));
    assert_eq!(viewed[0].actor.as_deref(), Some(&*format!("account:{}", me.id)));
    // An admin still gets the forms, and the admin's read is no audit_access event.
    signed_in_admin(&app, "ada").await;
    let page = page_text(&app, &path).await;
    assert!(page.contains("<form method=\"post\""));
    assert_eq!(accesses(&app.audit_rows().await, "audit.account_viewed").len(), 1);
    // A plain user is refused the page.
    let user = TestApp { client: new_client(), ..app.clone() };
    assert_eq!(user.login("bob", PASSWORD).await.status(), 303);
    assert_eq!(user.get(&path).await.status(), 403);
}

#[actix_web::test]
async fn every_auditor_read_is_recorded_with_what_was_read() {
    let (app, _db) = spawn_app().await;
    let (auditor, me) = signed_in_auditor(&app, "audrey").await;
    let actor = format!("account:{}", me.id);
    let page = page_text(&auditor, "/audit").await;
    assert!(page.contains("data-testid=\"chain-status\""));
    page_text(&auditor, "/audit?action=login.password&account=audrey").await;
    let first = app.audit_rows().await.first().unwrap().seq;
    let event_page = page_text(&auditor, &format!("/audit/events/{first}")).await;
    assert!(event_page.contains("data-testid=\"check-link\""));
    let export = auditor.get("/audit/export?outcome=failure&format=jsonl").await;
    assert_eq!(export.status(), 200);
    export.text().await.unwrap();
    let rows = app.audit_rows().await;
    let searched = accesses(&rows, "audit.searched");
    assert_eq!(searched.len(), 2);
    assert!(searched.iter().all(|r| r.category == "audit_access" && r.actor.as_deref() == Some(&*actor)));
    assert!(searched.iter().all(|r| r.ip.is_some() && r.request_id.is_some()));
    let filters = |r: &AuditRow| serde_json::from_str::<serde_json::Value>(&r.detail).unwrap()["filters"].clone();
    assert_eq!(filters(&searched[0]), serde_json::json!({}));
    // Empty filters are left out: the record says what was searched.
    assert_eq!(filters(&searched[1]), serde_json::json!({"action": "login.password", "account": "audrey"}));
    let viewed = accesses(&rows, "audit.event_viewed");
    assert_eq!(viewed.len(), 1);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&viewed[0].detail).unwrap()["seq"], first);
    let exported = accesses(&rows, "audit.exported");
    assert_eq!(exported.len(), 1);
    let detail: serde_json::Value = serde_json::from_str(&exported[0].detail).unwrap();
    assert_eq!(detail["format"], "jsonl");
    assert_eq!(detail["filters"], serde_json::json!({"outcome": "failure"}));
}

#[actix_web::test]
async fn the_event_page_shows_every_field_and_the_rows_place_in_the_chain() {
    let (app, _db) = spawn_app().await;
    let (auditor, _) = signed_in_auditor(&app, "audrey").await;
    seed(&app, vec![event(Action::Logout, "10.9.8.7", "shop", "req-42", Some("user <b>asked</b>"))]).await;
    let row = app.audit_rows().await.into_iter().find(|r| r.request_id.as_deref() == Some("req-42")).unwrap();
    let page = page_text(&auditor, &format!("/audit/events/{}", row.seq)).await;
    for field in [&row.id, &row.hash, &row.prev_hash, "10.9.8.7", "shop", "req-42", "logout"] {
        assert!(page.contains(field), "{field} in {page}");
    }
    // Text is escaped, never markup.
    assert!(page.contains("user &#60;b&#62;asked&#60;/b&#62;") && !page.contains("<b>asked"), "{page}");
    assert!(page.contains("data-testid=\"check-content\"><span class=\"badge\">"), "{page}");
    assert!(page.contains("data-testid=\"check-link\"><span class=\"badge\">"));
    // No checkpoint at or after it yet (checkpoints come every 60 s).
    assert!(page.contains("data-testid=\"not-covered\""), "{page}");
    assert_eq!(auditor.get("/audit/events/999999").await.status(), 404);
    assert_eq!(auditor.get("/audit/events/nope").await.status(), 404);
}

#[actix_web::test]
async fn each_filter_narrows_the_log_to_what_it_names() {
    let (app, _db) = spawn_app().await;
    let (auditor, me) = signed_in_auditor(&app, "audrey").await;
    let bob = app.add_user("bob", PASSWORD).await;
    let mut events = Vec::new();
    for i in 0..24 {
        let ip = ["10.1.16.5", "10.1.40.1", "192.168.0.9", "2001:db8::1"][i % 4];
        let action = if i % 3 == 0 { Action::LoginPassword } else { Action::Logout };
        let mut e = event(action, ip, ["shop", "crm"][i % 2], &format!("req-{i}"), None);
        if i % 5 == 0 {
            e = AuditEvent { outcome: audit::Outcome::Failure, reason: Some("bad_password".into()), ..e };
        }
        if i % 4 == 1 {
            e = e.with_account(bob.id.as_str());
        }
        if i == 7 {
            e = e.with_detail("reason", "Customer 50% refund");
        }
        events.push(e);
    }
    seed(&app, events).await;
    let rows: Vec<AuditRow> = app.audit_rows().await.into_iter().filter(|r| r.client_id.is_some()).collect();
    assert_eq!(rows.len(), 24);
    let ip = |r: &AuditRow| r.ip.clone().unwrap_or_default();
    let cases: Vec<(&str, Vec<i64>)> = vec![
        ("ip=10.1.16.0/20", expected(&rows, |r| ip(r) == "10.1.16.5")),
        ("ip=10.1.0.0/16", expected(&rows, |r| ip(r).starts_with("10.1."))),
        ("ip=10.1.40.1", expected(&rows, |r| ip(r) == "10.1.40.1")),
        ("ip=2001:db8::/32", expected(&rows, |r| ip(r) == "2001:db8::1")),
        (
            "ip=192.168.0.0/24&client=shop",
            expected(&rows, |r| ip(r) == "192.168.0.9" && r.client_id.as_deref() == Some("shop")),
        ),
        ("client=crm", expected(&rows, |r| r.client_id.as_deref() == Some("crm"))),
        (
            "action=login.password&client=crm",
            expected(&rows, |r| r.action == "login.password" && r.client_id.as_deref() == Some("crm")),
        ),
        ("action=logout&outcome=failure", expected(&rows, |r| r.action == "logout" && r.outcome == "failure")),
        ("request_id=req-13", expected(&rows, |r| r.request_id.as_deref() == Some("req-13"))),
        (
            "account=bob&client=crm",
            expected(&rows, |r| {
                r.account_id.as_deref() == Some(bob.id.as_str()) && r.client_id.as_deref() == Some("crm")
            }),
        ),
        (
            "q=BAD_PASS&client=shop",
            expected(&rows, |r| r.reason.as_deref() == Some("bad_password") && r.client_id.as_deref() == Some("shop")),
        ),
        // LIKE's wildcards in the text match only themselves.
        ("q=50%25+refund&client=crm", expected(&rows, |r| r.request_id.as_deref() == Some("req-7"))),
        ("q=5_%25&client=crm", vec![]),
        ("client=shop&to=2000-01-01", vec![]),
    ];
    for (query, want) in &cases {
        assert!(!want.is_empty() || query.contains("2000") || query.contains("5_"), "{query} tests something");
        let got = seqs(&page_text(&auditor, &format!("/audit?{query}")).await);
        assert_eq!(&got, want, "{query}");
    }
    // From today on: every seeded event of a client.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let got = seqs(&page_text(&auditor, &format!("/audit?client=crm&from={today}&to={today}")).await);
    assert_eq!(got, expected(&rows, |r| r.client_id.as_deref() == Some("crm")));
    // An account by id works as by username.
    let got = seqs(&page_text(&auditor, &format!("/audit?account={}&client=crm", bob.id)).await);
    assert_eq!(got, cases[9].1);
    // The auditor's own account: the searches (audit_access) just made,
    // once chained.
    app.audit_rows().await;
    let got = seqs(&page_text(&auditor, "/audit?account=audrey&category=audit_access").await);
    assert!(!got.is_empty());
    let all = app.audit_rows().await;
    assert!(
        got.iter()
            .all(|s| all.iter().any(|r| r.seq == *s && r.actor.as_deref() == Some(&*format!("account:{}", me.id))))
    );
    // Bad filters: a 400 page saying why, never a 500.
    for bad in ["ip=10.0.0.0/33", "ip=banana", "from=yesterday", "outcome=maybe"] {
        let response = auditor.get(&format!("/audit?{bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert!(response.text().await.unwrap().contains("data-testid=\"error\""));
    }
}

#[actix_web::test]
async fn pagination_returns_every_event_exactly_once_newest_first() {
    let (app, _db) = spawn_app().await;
    let (auditor, _) = signed_in_auditor(&app, "audrey").await;
    let events = (0..130)
        .map(|i| {
            event(Action::Logout, if i % 3 == 0 { "10.2.3.4" } else { "10.2.200.4" }, "shop", &format!("r{i}"), None)
        })
        .collect();
    seed(&app, events).await;
    let rows = app.audit_rows().await;
    for (query, keep) in [
        ("/audit?client=shop", Box::new(|_: &AuditRow| true) as Box<dyn Fn(&AuditRow) -> bool>),
        // A CIDR checked row by row (not on an octet boundary).
        ("/audit?client=shop&ip=10.2.0.0/17", Box::new(|r: &AuditRow| r.ip.as_deref() == Some("10.2.3.4"))),
        // A time range pages by (time, seq): the same events, once each.
        ("/audit?client=shop&from=2000-01-01", Box::new(|_: &AuditRow| true)),
        ("/audit?client=shop&action=logout&to=2999-01-01", Box::new(|_: &AuditRow| true)),
    ] {
        let want = expected(&rows, |r| r.client_id.as_deref() == Some("shop") && keep(r));
        let got = all_pages(&auditor, query).await;
        assert_eq!(got, want, "{query}");
        assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), got.len());
    }
    // The first page holds 50 and links on.
    let first = page_text(&auditor, "/audit?client=shop").await;
    assert_eq!(seqs(&first).len(), 50);
    assert!(next_link(&first).unwrap().starts_with("/audit?client=shop&after="));
}

/// The `event` lines of a JSON Lines export (the rest prove it).
fn event_lines(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["type"] == "event")
        .collect()
}

fn csv_rows(body: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let records = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    (header, records)
}

#[actix_web::test]
async fn exports_stream_the_filtered_events_as_csv_and_jsonl() {
    let (app, _db) = spawn_app().await;
    let (auditor, _) = signed_in_auditor(&app, "audrey").await;
    let mut events: Vec<AuditEvent> =
        (0..2500).map(|i| event(Action::Logout, "10.3.0.1", "shop", &format!("x{i}"), None)).collect();
    // Quotes, commas, newlines and non-ASCII survive CSV quoting.
    events.push(event(Action::Logout, "10.3.0.1", "shop", "tricky", Some("a \"quoted\", two\nlines 原因")));
    events.push(event(Action::Logout, "10.3.0.1", "other", "elsewhere", None));
    // A spreadsheet would run this as a formula: CSV defuses it, JSON keeps it.
    events.push(event(Action::Logout, "10.3.0.1", "shop", "formula", Some("=HYPERLINK(\"http://evil\")")));
    seed(&app, events).await;
    let rows: Vec<AuditRow> =
        app.audit_rows().await.into_iter().filter(|r| r.client_id.as_deref() == Some("shop")).collect();
    assert_eq!(rows.len(), 2502);

    let response = auditor.get("/audit/export?client=shop&format=csv").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let (header, records) = csv_rows(&response.text().await.unwrap());
    assert_eq!(header, wxfed::audit::export::COLUMNS.to_vec());
    assert_eq!(records.len(), rows.len());
    for (record, row) in records.iter().zip(&rows) {
        assert_eq!(record[0], row.seq.to_string());
        assert_eq!(record[1], row.id);
        let reason = row.reason.clone().unwrap_or_default();
        let expected = if reason.starts_with('=') { format!("'{reason}") } else { reason };
        assert_eq!(record[6], expected);
        assert_eq!(record[12], row.request_id.clone().unwrap());
        assert_eq!(record[13], row.detail);
        assert_eq!((&record[14], &record[15]), (&row.prev_hash, &row.hash));
    }

    let response = auditor.get("/audit/export?client=shop&request_id=tricky&format=jsonl").await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let lines = event_lines(&body);
    assert_eq!(lines.len(), 1);
    let tricky = rows.iter().find(|r| r.request_id.as_deref() == Some("tricky")).unwrap();
    assert_eq!(lines[0]["seq"], tricky.seq);
    assert_eq!(lines[0]["reason"], "a \"quoted\", two\nlines 原因");
    assert_eq!(lines[0]["hash"], tricky.hash.as_str());
    assert_eq!(lines[0]["detail"], serde_json::from_str::<serde_json::Value>(&tricky.detail).unwrap());
    let body = auditor.get("/audit/export?client=shop&format=jsonl").await.text().await.unwrap();
    let all: Vec<i64> = event_lines(&body).iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(all, rows.iter().map(|r| r.seq).collect::<Vec<_>>(), "chain order, each once");

    assert_eq!(auditor.get("/audit/export?client=shop").await.status(), 400);
    assert_eq!(auditor.get("/audit/export?format=xml").await.status(), 400);
    assert_eq!(auditor.get("/audit/export?format=csv&ip=nope").await.status(), 400);
}

#[actix_web::test]
async fn the_cli_exports_a_time_range_and_records_the_export() {
    let db = TestDb::new();
    let app = crate::helpers::spawn_app_on(&db, |_| {}).await;
    seed(&app, (0..5).map(|i| event(Action::Logout, "10.4.0.1", "shop", &format!("c{i}"), None)).collect()).await;
    let rows: Vec<AuditRow> =
        app.audit_rows().await.into_iter().filter(|r| r.client_id.as_deref() == Some("shop")).collect();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let run = |args: &[&str]| {
        let output = wxfed_cli(args, &db.cli_env(), None, None);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
    };
    let (out, _) = run(&["audit", "export", "--client", "shop", "--from", &today, "--to", &today, "--format", "jsonl"]);
    let seqs: Vec<i64> = event_lines(&out).iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, rows.iter().map(|r| r.seq).collect::<Vec<_>>());
    // RFC 3339 bounds: the range ends before the events.
    let (out, _) = run(&["audit", "export", "--client", "shop", "--to", "2001-01-01T00:00:00Z", "--format", "jsonl"]);
    assert_eq!(event_lines(&out), Vec::<serde_json::Value>::new());
    let (out, _) =
        run(&["audit", "export", "--client", "shop", "--from", "2001-01-01T08:00:00+08:00", "--format", "csv"]);
    let (_, records) = csv_rows(&out);
    assert_eq!(records.len(), 5);
    // To a file, with progress on stderr and nothing on stdout.
    let file = db.dir().join("export.csv");
    let (out, err) =
        run(&["audit", "export", "--ip", "10.4.0.0/16", "--format", "csv", "--output", file.to_str().unwrap()]);
    assert_eq!(out, "");
    assert!(err.contains("exported 5 events") && err.contains("wrote 5 events"), "{err}");
    let (_, records) = csv_rows(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(
        records.iter().map(|r| r[0].parse::<i64>().unwrap()).collect::<Vec<_>>(),
        rows.iter().map(|r| r.seq).collect::<Vec<_>>()
    );
    // Bad input: exit 1 with a message.
    let output = wxfed_cli(&["audit", "export", "--from", "someday", "--format", "csv"], &db.cli_env(), None, None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("someday"));
    // Each export is an audit_access event by the CLI.
    let exports = accesses(&app.audit_rows().await, "audit.exported");
    assert_eq!(exports.len(), 4);
    assert!(exports.iter().all(|r| r.category == "audit_access" && r.actor.as_deref() == Some("cli:tester")));
}

#[actix_web::test]
async fn the_filter_forms_blank_fields_become_a_short_link_to_share() {
    let (app, _db) = spawn_app().await;
    let (auditor, _) = signed_in_auditor(&app, "audrey").await;
    let response = auditor.get("/audit?from=&to=&category=&action=logout&outcome=&account=+bob+&q=").await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/audit?action=logout&account=bob");
    let response = auditor.get("/audit?from=&q=").await;
    assert_eq!(response.headers()["location"], "/audit");
    // The redirect reads nothing, so records nothing; the page it leads to does.
    assert!(accesses(&app.audit_rows().await, "audit.searched").is_empty());
    assert_eq!(auditor.get("/audit?action=logout&account=bob").await.status(), 200);
    assert_eq!(accesses(&app.audit_rows().await, "audit.searched").len(), 1);
}

#[actix_web::test]
async fn the_failed_login_report_ranks_accounts_and_ips_over_a_period() {
    let (app, _db) = spawn_app().await;
    let (auditor, _) = signed_in_auditor(&app, "audrey").await;
    let bob = app.add_user("bob", PASSWORD).await;
    let carol = app.add_user("carol", PASSWORD).await;
    let failure = |account: Option<&str>, ip: &str| {
        let mut e = AuditEvent::failure(Action::LoginPassword, "bad_password");
        e.ip = Some(ip.to_owned());
        if let Some(a) = account {
            e = e.with_account(a);
        }
        e
    };
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(failure(Some(bob.id.as_str()), "10.5.0.1"));
    }
    events.push(failure(Some(carol.id.as_str()), "10.5.0.2"));
    events.push(failure(None, "10.5.0.2"));
    events.push(failure(None, "10.5.0.2"));
    // Successes and other actions do not count.
    events.push(AuditEvent::success(Action::LoginPassword).with_account(carol.id.as_str()));
    events.push(AuditEvent::failure(Action::Logout, "x").with_account(carol.id.as_str()));
    seed(&app, events).await;
    let page = page_text(&auditor, "/audit/reports/failed-logins").await;
    let ranked = |table: &str| -> Vec<(String, i64)> {
        let start = page.find(&format!("data-testid=\"{table}\"")).unwrap();
        let end = start + page[start..].find("</table>").unwrap();
        page[start..end]
            .split("data-key=\"")
            .skip(1)
            .map(|rest| {
                let key = rest[..rest.find('"').unwrap()].to_owned();
                let at = rest.find("data-testid=\"count\">").unwrap() + 20;
                (key, rest[at..at + rest[at..].find('<').unwrap()].parse().unwrap())
            })
            .collect()
    };
    assert_eq!(ranked("top-accounts"), vec![(bob.id.to_string(), 3), (carol.id.to_string(), 1)]);
    // Ties in count go by IP text.
    assert_eq!(ranked("top-ips"), vec![("10.5.0.1".to_owned(), 3), ("10.5.0.2".to_owned(), 3)]);
    assert!(page.contains(">bob<"), "usernames shown: {page}");
    // A period before the events: empty; a bad one: 400.
    let empty = page_text(&auditor, "/audit/reports/failed-logins?from=2000-01-01&to=2000-01-02").await;
    assert!(!empty.contains("data-testid=\"top-ip\""));
    assert_eq!(auditor.get("/audit/reports/failed-logins?from=soon").await.status(), 400);
    // Each view of the report is recorded.
    let viewed = accesses(&app.audit_rows().await, "audit.report_viewed");
    assert_eq!(viewed.len(), 3);
    assert!(viewed.iter().all(|r| r.category == "audit_access"));
    // Admins without the role are refused.
    signed_in_admin(&app, "ada").await;
    assert_eq!(app.get("/audit/reports/failed-logins").await.status(), 403);
}

/// `data-<attr>` values of the rows with `data-testid="<testid>"`.
fn row_attrs(page: &str, testid: &str, attr: &str) -> Vec<String> {
    page.split(&format!("data-testid=\"{testid}\""))
        .skip(1)
        .map(|rest| {
            let end = rest.find('>').unwrap();
            let at = rest[..end].find(&format!("data-{attr}=\"")).unwrap() + attr.len() + 7;
            rest[at..at + rest[at..].find('"').unwrap()].to_owned()
        })
        .collect()
}

fn login_event(ok: bool, account: &str, surface: Option<&str>, ip: &str) -> AuditEvent {
    let action = if surface.is_some() { Action::LoginWechat } else { Action::LoginPassword };
    let mut e = if ok { AuditEvent::success(action) } else { AuditEvent::failure(action, "bad_password") };
    e = e.with_account(account);
    e.ip = Some(ip.to_owned());
    if let Some(surface) = surface {
        e = e.with_detail("surface", surface).with_client("mp-shop");
    }
    e
}

#[actix_web::test]
async fn the_login_history_shows_one_accounts_sign_ins_with_surface_client_and_ip() {
    let (app, _db) = spawn_app().await;
    let (auditor, _) = signed_in_auditor(&app, "audrey").await;
    let bob = app.add_user("bob", PASSWORD).await;
    let carol = app.add_user("carol", PASSWORD).await;
    let mut events = vec![
        login_event(true, bob.id.as_str(), None, "10.7.0.1"),
        login_event(false, bob.id.as_str(), None, "10.7.0.2"),
        login_event(true, bob.id.as_str(), Some("miniprogram"), "10.7.0.3"),
        login_event(true, carol.id.as_str(), None, "10.7.0.4"),
        // Not a sign-in.
        AuditEvent::success(Action::UserProfileUpdated).with_account(bob.id.as_str()),
    ];
    // Enough of bob's for a second page.
    for _ in 0..55 {
        events.push(login_event(false, bob.id.as_str(), None, "10.7.0.9"));
    }
    seed(&app, events).await;
    let rows = app.audit_rows().await;
    let bobs: Vec<i64> =
        expected(&rows, |r| r.account_id.as_deref() == Some(bob.id.as_str()) && r.action.starts_with("login."));
    assert_eq!(bobs.len(), 58);

    let first = page_text(&auditor, "/audit/reports/logins?account=bob").await;
    assert!(first.contains("data-testid=\"account-link\""), "{first}");
    let mut shown: Vec<i64> = row_attrs(&first, "login-row", "seq").iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(shown.len(), 50);
    let next = next_link(&first).expect("a second page");
    let second = page_text(&auditor, &next).await;
    shown.extend(row_attrs(&second, "login-row", "seq").iter().map(|s| s.parse::<i64>().unwrap()));
    assert_eq!(shown, bobs, "every sign-in of bob's, once, newest first");
    assert!(next_link(&second).is_none());
    // Surface, client and IP of the WeChat sign-in; a password sign-in is one.
    let surfaces = row_attrs(&second, "login-row", "surface");
    assert_eq!(surfaces[surfaces.len() - 3..], ["miniprogram", "password", "password"]);
    assert!(second.contains("Mini-program") && second.contains("mp-shop") && second.contains("10.7.0.3"), "{second}");

    // By id, and only the failures.
    let failures = page_text(&auditor, &format!("/audit/reports/logins?account={}&outcome=failure", bob.id)).await;
    let outcomes = row_attrs(&failures, "login-row", "outcome");
    assert_eq!(outcomes.len(), 50);
    assert!(outcomes.iter().all(|o| o == "failure"));
    // An unknown account is said to be unknown; a bad period is a 400.
    let unknown = auditor.get("/audit/reports/logins?account=nobody").await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("No account is called"));
    assert_eq!(auditor.get("/audit/reports/logins?account=bob&from=soon").await.status(), 400);
    // Without an account: the form, nothing listed.
    let blank = page_text(&auditor, "/audit/reports/logins").await;
    assert!(blank.contains("data-testid=\"pick-account\"") && !blank.contains("data-testid=\"login-row\""));

    // Each view is recorded with what was asked.
    let viewed = accesses(&app.audit_rows().await, "audit.report_viewed");
    assert_eq!(viewed.len(), 6);
    let detail: serde_json::Value = serde_json::from_str(&viewed[0].detail).unwrap();
    assert_eq!((detail["report"].as_str(), detail["account"].as_str()), (Some("logins"), Some("bob")));
    // Admins without the role are refused.
    signed_in_admin(&app, "ada").await;
    assert_eq!(app.get("/audit/reports/logins?account=bob").await.status(), 403);
}

#[actix_web::test]
async fn the_admin_action_report_says_who_changed_what_with_reasons() {
    let (app, _db) = spawn_app().await;
    let (auditor, _) = signed_in_auditor(&app, "audrey").await;
    let ada = app.add_user("ada", PASSWORD).await;
    let bob = app.add_user("bob", PASSWORD).await;
    let by_ada = |action: Action, reason: &str| {
        let mut e = AuditEvent::success(action).with_actor(format!("account:{}", ada.id)).with_account(bob.id.as_str());
        e.reason = Some(reason.to_owned());
        e
    };
    seed(
        &app,
        vec![
            by_ada(Action::UserDisabled, "ticket 7: left the company"),
            by_ada(Action::UserEnabled, "ticket 8: came back"),
            AuditEvent::success(Action::ClientAdded).with_actor("cli").with_client("erp"),
            // Not an admin action.
            AuditEvent::success(Action::LoginPassword).with_actor(format!("account:{}", ada.id)),
        ],
    )
    .await;
    let page = page_text(&auditor, "/audit/reports/admin-actions").await;
    let actors = row_attrs(&page, "top-actor", "key");
    // The test's own setup (accounts, roles) was done by an actor too.
    let ada_at = actors.iter().position(|a| *a == format!("account:{}", ada.id)).expect("ada ranked");
    let counts: Vec<i64> = page
        .split("data-testid=\"count\">")
        .skip(1)
        .map(|rest| rest[..rest.find('<').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(counts[ada_at], 2, "{page}");
    assert!(actors.contains(&"cli".to_owned()));
    assert!(page.contains(">ada</a>"), "ada's username shown: {page}");
    let actions = row_attrs(&page, "change-row", "action");
    assert_eq!(&actions[..3], ["client.added", "user.enabled", "user.disabled"]);
    assert!(!actions.contains(&"login.password".to_owned()));
    assert!(page.contains("ticket 7: left the company") && page.contains("ticket 8: came back"));
    assert!(page.contains("Account disabled"), "actions by their label: {page}");
    // The period bounds it.
    let empty = page_text(&auditor, "/audit/reports/admin-actions?from=2000-01-01&to=2000-01-02").await;
    assert!(!empty.contains("data-testid=\"change-row\""));
    let viewed = accesses(&app.audit_rows().await, "audit.report_viewed");
    assert_eq!(viewed.len(), 2);
    assert!(viewed[0].detail.contains("admin_actions"));
}

#[actix_web::test]
async fn the_checkpoints_page_lists_signed_checkpoints_and_the_public_keys() {
    let (app, _db) = spawn_app().await;
    let (auditor, _) = signed_in_auditor(&app, "audrey").await;
    app.audit_rows().await;
    let state = app.state.clone();
    let signed = actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        wxfed::audit::chainer::checkpoint_now(&mut conn, &state.secrets).unwrap()
    })
    .await
    .unwrap();
    let page = page_text(&auditor, "/audit/checkpoints").await;
    let seqs: Vec<String> = row_attrs(&page, "checkpoint", "seq");
    assert_eq!(seqs.first(), Some(&signed.seq.to_string()), "newest first: {page}");
    let published: serde_json::Value = app.get("/audit/checkpoints.json").await.json().await.unwrap();
    let key = published["keys"][0]["public_key"].as_str().unwrap();
    assert!(page.contains(key), "the public key, as --public-key takes it");
    assert!(page.contains(&signed.head_hash), "the head hash (in the title)");
    let viewed = accesses(&app.audit_rows().await, "audit.report_viewed");
    assert_eq!(viewed.len(), 1);
    assert!(viewed[0].detail.contains("checkpoints"));
    // Auditors only, like the rest of /audit.
    signed_in_admin(&app, "ada").await;
    assert_eq!(app.get("/audit/checkpoints").await.status(), 403);
}

#[actix_web::test]
async fn the_log_shows_categories_actions_and_outcomes_by_their_labels_in_both_languages() {
    let (app, _db) = spawn_app().await;
    let (auditor, _) = signed_in_auditor(&app, "audrey").await;
    seed(&app, vec![AuditEvent::failure(Action::LoginPassword, "bad_password")]).await;
    let zh = auditor
        .client
        .get(auditor.url("/audit?action=login.password"))
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("密码登录") && zh.contains("失败") && zh.contains("登录认证"), "{zh}");
    let en = page_text(&auditor, "/audit?action=login.password").await;
    assert!(en.contains("Password sign-in") && en.contains(">failure<") && en.contains(">Sign-in<"), "{en}");
}

//! The operator CLI, run as a real process against the same database as a
//! running server.

use crate::helpers::{TestDb, spawn_app_on, wxfed_cli};

const PASSWORD: &str = "correct horse battery";

fn run(db: &TestDb, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let output = wxfed_cli(args, &db.cli_env(), stdin, None);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(db: &TestDb, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    let (ok, out, err) = run(db, &args, stdin);
    // With --json an error is JSON on stdout: show both.
    assert!(ok, "{args:?} failed:\nstdout: {out}\nstderr: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

#[test]
fn help_explains_every_command() {
    let output = wxfed_cli(&["--help"], &[], None, None);
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "migrate", "user", "audit"] {
        assert!(help.contains(command), "{command} in {help}");
    }
    let output = wxfed_cli(&["user", "--help"], &[], None, None);
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["add", "list", "set-password", "disable", "enable", "add-role"] {
        assert!(help.contains(command), "{command} in {help}");
    }
}

#[actix_web::test]
async fn an_account_added_by_the_cli_logs_in_on_a_running_server() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |_| {}).await;
    let added = json(
        &db,
        &[
            "user",
            "add",
            "Quinn",
            "--name",
            "Quinn Q",
            "--email",
            "q@example.com",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(added["username"], "Quinn");
    assert_eq!(added["display_name"], "Quinn Q");
    assert_eq!(added["roles"], serde_json::json!(["auditor"]));
    assert_eq!(added["status"], "active");
    assert!(uuid::Uuid::parse_str(added["id"].as_str().unwrap()).is_ok());
    assert!(added.get("password_hash").is_none(), "never printed");

    assert_eq!(app.login("quinn", PASSWORD).await.status(), 303);

    let event = app.audit_rows().await.into_iter().find(|e| e.action == "user.added").unwrap();
    assert_eq!(event.actor.as_deref(), Some("cli:tester"));
    assert_eq!(event.account_id.as_deref(), added["id"].as_str());
    assert!(!event.detail.contains(PASSWORD));
}

#[test]
fn usernames_are_unique_regardless_of_case() {
    let db = TestDb::new();
    json(&db, &["user", "add", "rita"], None);
    let (ok, _, err) = run(&db, &["user", "add", "RITA"], None);
    assert!(!ok);
    assert!(err.contains("taken"), "{err}");
    let list = json(&db, &["user", "list"], None);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let db = TestDb::new();
    let (ok, _, err) = run(&db, &["user", "add", "sam", "--password-stdin"], Some("short\n"));
    assert!(!ok && err.contains("at least 8 characters"), "{err}");
    let (ok, _, err) = run(&db, &["user", "add", "sam", "--email", "not-an-email"], None);
    assert!(!ok && err.contains("not an email address"), "{err}");
    let (ok, _, err) = run(&db, &["user", "add", "sam", "--phone", "12345"], None);
    assert!(!ok && err.contains("E.164"), "{err}");
    let (ok, _, err) = run(&db, &["user", "add", "sam", "--role", "superuser"], None);
    assert!(!ok && err.contains("superuser"), "{err}");
    let (ok, _, err) = run(&db, &["user", "disable", "nobody"], None);
    assert!(!ok && err.contains("no account"), "{err}");
    assert_eq!(json(&db, &["user", "list"], None), serde_json::json!([]));
}

#[actix_web::test]
async fn set_password_disable_enable_and_roles_take_effect_and_are_audited() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |_| {}).await;
    json(&db, &["user", "add", "tara", "--password-stdin"], Some(PASSWORD));

    json(&db, &["user", "set-password", "tara", "--password-stdin"], Some("a brand new password\n"));
    assert_eq!(app.login("tara", PASSWORD).await.status(), 401);
    assert_eq!(app.login("tara", "a brand new password").await.status(), 303);

    let disabled = json(&db, &["user", "disable", "tara"], None);
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(app.get("/").await.status(), 303, "the session ended");
    assert_eq!(app.login("tara", "a brand new password").await.status(), 403);
    json(&db, &["user", "enable", "tara"], None);
    assert_eq!(app.login("tara", "a brand new password").await.status(), 303);

    let with_role = json(&db, &["user", "add-role", "tara", "admin"], None);
    assert_eq!(with_role["roles"], serde_json::json!(["admin"]));
    let without = json(&db, &["user", "remove-role", "tara", "admin"], None);
    assert_eq!(without["roles"], serde_json::json!([]));

    let actions: Vec<String> = json(&db, &["audit", "list", "--limit", "100"], None)
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "cli:tester")
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        ["user.role_removed", "user.role_added", "user.enabled", "user.disabled", "user.password_set", "user.added"]
    );
    let (ok, text, _) = run(&db, &["audit", "verify"], None);
    assert!(ok, "{text}");
}

#[test]
fn the_human_output_is_readable() {
    let db = TestDb::new();
    let (ok, out, _) = run(&db, &["user", "add", "uma", "--name", "Uma U"], None);
    assert!(ok);
    assert!(out.starts_with("added ") && out.contains("uma") && out.contains("Uma U"), "{out}");
    let (_, out, _) = run(&db, &["user", "list"], None);
    assert!(out.contains("uma") && out.contains("active"), "{out}");
}

#[test]
fn a_new_master_key_is_32_bytes_of_base64() {
    let output = wxfed_cli(&["keys", "generate-master"], &[], None, None);
    assert!(output.status.success());
    let key = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    use base64::Engine;
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(key).unwrap().len(), 32);
}

#[test]
fn import_accounts_checks_every_line_first_and_imports_nothing_on_error() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "username,name,email,roles\nalice,Alice,alice@example.com,admin\nbob,,not-an-email,\nalice,,,\nerin,,,boss\n",
    )
    .unwrap();
    let (ok, out, _) = run(&db, &["import", "accounts", bad.to_str().unwrap()], None);
    assert!(!ok, "{out}");
    assert!(out.contains("line 3: error:") && out.contains("not an email"), "{out}");
    assert!(out.contains("line 4: error:") && out.contains("earlier in the file"), "{out}");
    assert!(out.contains("line 5: error:") && out.contains("unknown role"), "{out}");
    let list = json(&db, &["user", "list"], None);
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");

    let good = dir.path().join("good.jsonl");
    std::fs::write(
        &good,
        "{\"username\":\"alice\",\"roles\":[\"auditor\"]}\n{\"username\":\"carol\",\"email\":\"c@example.com\"}\n",
    )
    .unwrap();
    let dry = json(&db, &["import", "accounts", good.to_str().unwrap(), "--dry-run"], None);
    assert_eq!(dry["created"], 2, "{dry}");
    assert_eq!(json(&db, &["user", "list"], None).as_array().unwrap().len(), 0);
    let done = json(&db, &["import", "accounts", good.to_str().unwrap(), "--reason", "HR sync"], None);
    assert_eq!(done["imported"], true, "{done}");
    assert_eq!(json(&db, &["user", "list"], None).as_array().unwrap().len(), 2);
    // Again: idempotent, nothing changes and nothing more is recorded.
    let events = json(&db, &["audit", "list", "--limit", "1000"], None).as_array().unwrap().len();
    let again = json(&db, &["import", "accounts", good.to_str().unwrap(), "--reason", "HR sync"], None);
    assert_eq!(
        (again["created"].as_u64(), again["updated"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(0), Some(2)),
        "{again}"
    );
    let after = json(&db, &["audit", "list", "--limit", "1000"], None).as_array().unwrap().len();
    assert_eq!(after, events, "nothing changed, so nothing is recorded");

    // A row naming an existing username updates it: the cells it gives,
    // roles added, identities linked (CSV lists separated by spaces).
    let (ok, _, err) = run(
        &db,
        &[
            "wechat-app",
            "add",
            "--kind",
            "miniprogram",
            "--appid",
            "wx5f2a3c4b1d0e9f87",
            "--name",
            "Shop",
            "--open-platform",
            "acme",
            "--secret-stdin",
        ],
        Some("9c1f4e2a7b3d5c8e0f6a1b2c3d4e5f60\n"),
    );
    assert!(ok, "{err}");
    let update = dir.path().join("update.csv");
    std::fs::write(
        &update,
        "username,name,phone,phone_verified,roles,unionid,openids\n\
         alice,Alice Wang,+8613800138000,true,admin auditor,oUnionAlice,wx5f2a3c4b1d0e9f87:oOpenAlice\n\
         carol,,,,,,\n",
    )
    .unwrap();
    let done = json(&db, &["import", "accounts", update.to_str().unwrap(), "--reason", "HR sync"], None);
    assert_eq!(
        (done["updated"].as_u64(), done["unchanged"].as_u64(), done["links"].as_u64()),
        (Some(1), Some(1), Some(2)),
        "{done}"
    );
    let alice = json(&db, &["user", "show", "alice"], None);
    assert_eq!(alice["display_name"], "Alice Wang", "{alice}");
    assert_eq!(alice["phone"], "+8613800138000");
    assert_eq!(alice["email"], serde_json::Value::Null, "an empty cell keeps what is stored");
    let roles = alice["roles"].to_string();
    assert!(roles.contains("admin") && roles.contains("auditor"), "{roles}");
    // The same UnionID for another account: the linking policy refuses it.
    let clash = dir.path().join("clash.jsonl");
    std::fs::write(&clash, "{\"username\":\"carol\",\"unionid\":\"oUnionAlice\"}\n").unwrap();
    let (ok, out, _) = run(&db, &["import", "accounts", clash.to_str().unwrap(), "--reason", "HR sync"], None);
    assert!(!ok && out.contains("line 1: error:"), "{out}");
}

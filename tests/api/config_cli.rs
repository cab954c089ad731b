//! `wxfed config check` (issue 12 §7): every problem named, every setting
//! printed with its source, no secret in the output.

use crate::helpers::{TestDb, wxfed_cli};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn check(args: &[&str], env: &[(String, String)]) -> (Option<i32>, String) {
    let mut all = vec!["config", "check"];
    all.extend_from_slice(args);
    let output = wxfed_cli(&all, env, None, None);
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

fn json_check(args: &[&str], env: &[(String, String)]) -> (Option<i32>, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out) = check(&all, env);
    let value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("no JSON ({e}): {out}"));
    (code, value)
}

fn setting<'a>(report: &'a serde_json::Value, env: &str) -> &'a serde_json::Value {
    report["settings"].as_array().unwrap().iter().find(|s| s["env"] == env).unwrap_or_else(|| panic!("{env}"))
}

const MASTER_KEY: &str = "c2VjcmV0LW1hc3Rlci1rZXktMzItYnl0ZXMtbG9uZyE=";
const DB_PASSWORD: &str = "db-pass-9f3k2";
const SINK_TOKEN: &str = "sink-token-77x1";

#[test]
fn secrets_never_appear_in_the_output() {
    let secrets = env(&[
        ("WXFED_MASTER_KEY", MASTER_KEY),
        ("WXFED_DATABASE_URL", &format!("postgres://wxfed:{DB_PASSWORD}@127.0.0.1:1/wxfed")),
        ("WXFED_AUDIT_CHECKPOINT_SINK", &format!("https://relay.example/checkpoints?token={SINK_TOKEN}")),
    ]);
    let (code, text) = check(&[], &secrets);
    assert_eq!(code, Some(0), "{text}");
    let (_, json) = json_check(&[], &secrets);
    for out in [text, json.to_string()] {
        for secret in [MASTER_KEY, DB_PASSWORD, SINK_TOKEN] {
            assert!(!out.contains(secret), "{secret} printed:\n{out}");
        }
        assert!(out.contains("[redacted]"), "{out}");
        // What is not secret stays readable.
        assert!(out.contains("postgres://wxfed:[redacted]@127.0.0.1:1/wxfed"), "{out}");
        assert!(out.contains("relay.example/checkpoints"), "{out}");
    }
    assert_eq!(setting(&json, "WXFED_MASTER_KEY")["value"], "[redacted]");
    assert_eq!(setting(&json, "WXFED_MASTER_KEY")["source"], "env");

    // A malformed secret is named, but not echoed.
    let bad = env(&[("WXFED_MASTER_KEY", "[1, 2]"), ("WXFED_DATABASE_URL", "mysql://u:hunter2@db/x")]);
    let (code, text) = check(&[], &bad);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("WXFED_DATABASE_URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn every_invalid_value_is_named_at_once() {
    let bad = env(&[
        ("WXFED_BIND", "not-an-address"),
        ("WXFED_WORKERS", "many"),
        ("WXFED_ACCESS_TOKEN_TTL_SECS", "0"),
        ("WXFED_DEFAULT_LOCALE", "fr"),
        ("WXFED_AUDIT_RETENTION_OIDC_DAYS", "0"),
        ("WXFED_NO_SUCH_SETTING", "1"),
        // Kubernetes' service variables are not ours: not refused.
        ("WXFED_SERVICE_HOST", "10.0.0.1"),
    ]);
    let (code, text) = check(&[], &bad);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("configuration is invalid (6 problem(s))"), "{text}");
    for name in [
        "WXFED_BIND",
        "WXFED_WORKERS",
        "WXFED_ACCESS_TOKEN_TTL_SECS",
        "WXFED_DEFAULT_LOCALE",
        "WXFED_AUDIT_RETENTION_OIDC_DAYS",
        "WXFED_NO_SUCH_SETTING",
    ] {
        assert!(text.lines().any(|l| l.contains("invalid setting") && l.contains(name)), "{name} not named:\n{text}");
    }
    assert!(!text.contains("WXFED_SERVICE_HOST ("), "{text}");

    let (code, json) = json_check(&[], &bad);
    assert_eq!(code, Some(2));
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"].as_array().unwrap().len(), 6, "{json}");
}

#[test]
fn defaults_and_sources_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wxfed.toml");
    std::fs::write(&file, "login_block_secs = 120\nbind = \"127.0.0.1:9999\"\n").unwrap();
    let vars = env(&[("WXFED_BIND", "127.0.0.1:7777"), ("WXFED_DATA_DIR", &dir.path().display().to_string())]);
    let (code, json) = json_check(&["--config", &file.display().to_string()], &vars);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["valid"], true);
    // The environment wins over the file, the file over the defaults.
    assert_eq!(setting(&json, "WXFED_BIND")["value"], "127.0.0.1:7777");
    assert_eq!(setting(&json, "WXFED_BIND")["source"], "env");
    assert_eq!(setting(&json, "WXFED_LOGIN_BLOCK_SECS")["value"], "120");
    assert_eq!(setting(&json, "WXFED_LOGIN_BLOCK_SECS")["source"], "file");
    assert_eq!(setting(&json, "WXFED_SESSION_IDLE_TIMEOUT_SECS")["value"], "1800");
    assert_eq!(setting(&json, "WXFED_SESSION_IDLE_TIMEOUT_SECS")["source"], "default");
    assert_eq!(setting(&json, "WXFED_METRICS_BIND")["value"], serde_json::Value::Null);
    // Every setting is listed, the pattern ones once per category.
    let documented = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
    for s in json["settings"].as_array().unwrap() {
        let name = s["env"].as_str().unwrap();
        let documented_as =
            if name.starts_with("WXFED_AUDIT_RETENTION_") { "WXFED_AUDIT_RETENTION_<CATEGORY>_DAYS" } else { name };
        assert!(documented.contains(&format!("`{documented_as}`")), "{name} is not in docs/configuration.md");
    }
    assert!(setting(&json, "WXFED_AUDIT_RETENTION_AUDIT_ACCESS_DAYS")["source"] == "default");

    let (code, text) = check(&[], &vars);
    assert_eq!(code, Some(0), "{text}");
    let line = text.lines().find(|l| l.starts_with("WXFED_SESSION_IDLE_TIMEOUT_SECS")).unwrap();
    assert!(line.contains("default") && line.ends_with("1800"), "{line}");
    let line = text.lines().find(|l| l.starts_with("WXFED_WORKERS ")).unwrap();
    assert!(line.contains("CPU cores"), "{line}");

    // A file that is not there is a problem, not a silent default.
    let (code, text) = check(&["--config", "/nonexistent/wxfed.toml"], &vars);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("is not a readable file"), "{text}");
}

#[test]
fn connect_checks_the_database_and_the_master_key() {
    let db = TestDb::new();
    // Before the first start nothing is recorded, and checking creates nothing.
    let (code, text) = check(&["--connect"], &db.cli_env());
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("master key: not recorded yet"), "{text}");

    let migrated = wxfed_cli(&["migrate"], &db.cli_env(), None, None);
    assert!(migrated.status.success(), "{migrated:?}");
    let (code, json) = json_check(&["--connect"], &db.cli_env());
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["connect"]["pending_migrations"], 0);
    assert_eq!(json["connect"]["master_key"], "matches the database");

    // Another key: the settings are valid, the database says no.
    let mut other = db.cli_env();
    for (k, v) in &mut other {
        if k == "WXFED_MASTER_KEY" {
            *v = wxfed::secrets::generate_master_key();
        }
    }
    let (code, text) = check(&["--connect"], &other);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("configuration is valid"), "{text}");
    assert!(text.contains("master key does not match"), "{text}");
}

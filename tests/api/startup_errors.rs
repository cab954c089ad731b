//! A misconfigured start fails with one clear line and creates nothing.

use crate::helpers::{TestDb, wxfed_cli};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Runs `wxfed serve` in an empty directory and returns (stderr, files left).
fn failed_start(pairs: &[(&str, &str)]) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let output = wxfed_cli(&["serve"], &env(pairs), None, Some(dir.path()));
    assert!(!output.status.success(), "serve must fail");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let files =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    (stderr, files)
}

#[test]
fn an_unknown_database_scheme_is_refused() {
    let (stderr, files) = failed_start(&[("WXFED_DATABASE_URL", "mysql://root@localhost/wxfed")]);
    assert!(stderr.contains("WXFED_DATABASE_URL") && stderr.contains("mysql"), "{stderr}");
    assert!(files.is_empty(), "nothing created: {files:?}");
}

#[test]
fn a_bare_path_is_not_silently_taken_for_sqlite() {
    let (stderr, files) = failed_start(&[("WXFED_DATABASE_URL", "wxfed.db")]);
    assert!(stderr.contains("WXFED_DATABASE_URL"), "{stderr}");
    assert!(files.is_empty(), "{files:?}");
}

#[test]
fn an_unreachable_database_is_reported() {
    let key = wxfed::secrets::generate_master_key();
    let (stderr, files) =
        failed_start(&[("WXFED_DATABASE_URL", "postgres://postgres@127.0.0.1:1/nope"), ("WXFED_MASTER_KEY", &key)]);
    assert!(stderr.contains("cannot connect to the database"), "{stderr}");
    assert!(files.is_empty());
}

#[test]
fn an_unreadable_master_key_file_is_reported_before_anything_is_created() {
    let (stderr, files) = failed_start(&[("WXFED_MASTER_KEY_FILE", "/nonexistent/master.key")]);
    assert!(stderr.contains("/nonexistent/master.key"), "{stderr}");
    assert!(files.is_empty(), "{files:?}");
}

#[test]
fn a_malformed_master_key_is_reported() {
    let (stderr, files) = failed_start(&[("WXFED_MASTER_KEY", "too-short")]);
    assert!(stderr.contains("WXFED_MASTER_KEY"), "{stderr}");
    assert!(files.is_empty());
}

#[test]
fn postgres_requires_an_explicit_master_key() {
    let (stderr, _) = failed_start(&[("WXFED_DATABASE_URL", "postgres://postgres@127.0.0.1:1/nope")]);
    assert!(stderr.contains("WXFED_MASTER_KEY"), "{stderr}");
}

#[test]
fn a_bad_bind_address_names_the_setting() {
    let (stderr, files) = failed_start(&[("WXFED_BIND", "not-an-address")]);
    assert!(stderr.contains("WXFED_BIND"), "{stderr}");
    assert!(files.is_empty());
}

#[test]
fn an_issuer_with_a_query_is_refused() {
    let (stderr, _) = failed_start(&[("WXFED_ISSUER", "https://id.example.com/?x=1")]);
    assert!(stderr.contains("WXFED_ISSUER"), "{stderr}");
}

#[test]
fn an_unknown_setting_in_the_config_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wxfed.toml");
    std::fs::write(&file, "bind = \"127.0.0.1:9\"\ndatabse_url = \"sqlite://x.db\"\n").unwrap();
    let (stderr, _) = failed_start(&[("WXFED_CONFIG", file.to_str().unwrap())]);
    assert!(stderr.contains("databse_url") && stderr.contains("unknown setting"), "{stderr}");
}

#[test]
fn another_master_key_than_the_databases_is_refused() {
    let db = TestDb::new();
    let ok = wxfed_cli(&["migrate"], &db.cli_env(), None, None);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let mut env = db.cli_env();
    env.retain(|(k, _)| k != "WXFED_MASTER_KEY");
    env.push(("WXFED_MASTER_KEY".into(), wxfed::secrets::generate_master_key()));
    let output = wxfed_cli(&["migrate"], &env, None, None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("master key does not match"));
}

#[test]
fn the_sqlite_default_creates_a_private_key_file_and_refuses_to_lose_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = wxfed_cli(&["migrate"], &[], None, Some(dir.path()));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let key_file = dir.path().join("wxfed-data/master.key");
    assert!(dir.path().join("wxfed-data/wxfed.db").is_file());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);

    std::fs::remove_file(&key_file).unwrap();
    let output = wxfed_cli(&["migrate"], &[], None, Some(dir.path()));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("master key file"));
    assert!(!key_file.exists(), "no new key was made for the old database");
}

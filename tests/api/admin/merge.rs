//! `/admin/accounts/{id}/merge` and `wxfed account merge`: the preview,
//! conflicts refused until a side is chosen, the merge itself.

use serde_json::Value;

use super::{PASSWORD, make_authentication_stale, page_token, pairs, post, signed_in_admin};
use crate::helpers::{TestApp, TestDb, new_client, spawn_app, wxfed_cli};

fn insert_identity(db: &TestDb, id: &str, platform: &str, account: &str) {
    db.execute(&format!(
        "INSERT INTO wechat_identities (id, platform_key, open_platform, unionid, account_id, created_at, updated_at)
         VALUES ('{id}', 'op:{platform}', '{platform}', 'oUnion{id}', '{account}', '2026-01-01 00:00:00', '2026-01-01 00:00:00');"
    ));
}

fn set_phone(db: &TestDb, account: &str, phone: &str) {
    let t = if db.is_postgres() { "TRUE" } else { "1" };
    db.execute(&format!("UPDATE accounts SET phone = '{phone}', phone_verified = {t} WHERE id = '{account}'"));
}

fn account_row(db: &TestDb, id: &str) -> (String, Option<String>, Option<String>) {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        merged_into: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        phone: Option<String>,
    }
    use diesel::RunQueryDsl;
    let mut conn = db.connect();
    let row: Row = diesel::sql_query(format!("SELECT status, merged_into, phone FROM accounts WHERE id = '{id}'"))
        .get_result(&mut conn)
        .unwrap();
    (row.status, row.merged_into, row.phone)
}

fn identity_account(db: &TestDb, id: &str) -> Option<String> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        account_id: Option<String>,
    }
    use diesel::RunQueryDsl;
    let mut conn = db.connect();
    diesel::sql_query(format!("SELECT account_id FROM wechat_identities WHERE id = '{id}'"))
        .get_result::<Row>(&mut conn)
        .unwrap()
        .account_id
}

#[actix_web::test]
async fn the_preview_lists_what_moves_and_a_conflict_is_refused_until_a_side_is_chosen() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let wx = app.add_user("wx-abc", PASSWORD).await;
    let real = app.add_user("zhangsan", PASSWORD).await;
    insert_identity(&db, "ident-wx", "acme", wx.id.as_str());
    set_phone(&db, wx.id.as_str(), "+8613800000001");
    set_phone(&db, real.id.as_str(), "+8613800000002");
    // wx-abc has a session of its own (another browser): it must end.
    let other = TestApp { address: app.address.clone(), client: new_client(), state: app.state.clone() };
    assert_eq!(other.login("wx-abc", PASSWORD).await.status(), 303);

    let path = format!("/admin/accounts/{}/merge", wx.id);
    let preview = app.get(&format!("{path}?into=zhangsan")).await;
    assert_eq!(preview.status(), 200);
    let page = preview.text().await.unwrap();
    assert!(page.contains("data-testid=\"merge-plan\""));
    assert!(page.contains("<code>acme</code>"), "the identity that moves");
    assert!(page.contains("data-testid=\"conflict-phone\""));
    assert!(page.contains("+8613800000001") && page.contains("+8613800000002"));
    let token = crate::helpers::extract_csrf(&page);
    let into = real.id.to_string();

    let base = |extra: &[(&str, &str)]| {
        let mut fields = pairs(&[("into", into.as_str()), ("csrf_token", token.as_str())]);
        fields.extend(pairs(extra));
        fields
    };
    // No CSRF: 403. No reason: 400. Conflict without a side: 409.
    let no_csrf = pairs(&[("into", into.as_str()), ("reason", "r")]);
    assert_eq!(post(&app, &path, &no_csrf).await.status(), 403);
    assert_eq!(post(&app, &path, &base(&[])).await.status(), 400);
    let refused = post(&app, &path, &base(&[("reason", "同一人")])).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(account_row(&db, wx.id.as_str()).0, "active", "nothing merged");
    // Into itself: 400.
    let own = pairs(&[("into", wx.id.as_str()), ("reason", "r"), ("csrf_token", token.as_str())]);
    assert_eq!(post(&app, &path, &own).await.status(), 400);

    // Stale authentication: the password prompt first.
    make_authentication_stale(&db);
    let prompt = post(&app, &path, &base(&[("reason", "同一人"), ("prefer_phone", "into")])).await;
    assert!(prompt.text().await.unwrap().contains("data-testid=\"reauth-form\""));
    assert_eq!(app.login("ada", PASSWORD).await.status(), 303);
    let token = page_token(&app, &format!("{path}?into=zhangsan")).await;
    let fields = pairs(&[
        ("into", into.as_str()),
        ("csrf_token", token.as_str()),
        ("reason", "同一人"),
        ("prefer_phone", "into"),
    ]);
    let merged = post(&app, &path, &fields).await;
    assert_eq!(merged.status(), 303);

    let (status, merged_into, _) = account_row(&db, wx.id.as_str());
    assert_eq!(status, "disabled");
    assert_eq!(merged_into.as_deref(), Some(real.id.as_str()));
    assert_eq!(account_row(&db, real.id.as_str()).2.as_deref(), Some("+8613800000002"), "the chosen side");
    assert_eq!(identity_account(&db, "ident-wx").as_deref(), Some(real.id.as_str()), "the identity moved");
    assert_eq!(other.get("/admin").await.status(), 303, "the merged-away account's session ended");
    let rows = app.audit_rows().await;
    let event = rows.iter().rfind(|r| r.action == "user.merged").unwrap();
    let detail: Value = serde_json::from_str(&event.detail).unwrap();
    assert_eq!(detail["from"], wx.id.as_str());
    assert_eq!(detail["into"], real.id.as_str());
    assert_eq!(detail["reason"], "同一人");
    // Merging it again: refused (409).
    let again = post(&app, &path, &fields).await;
    assert_eq!(again.status(), 409);
}

#[actix_web::test]
async fn non_admins_get_403_on_the_merge_pages() {
    let (app, _db) = spawn_app().await;
    let wu = app.add_user("wu", PASSWORD).await;
    assert_eq!(app.login("wu", PASSWORD).await.status(), 303);
    let path = format!("/admin/accounts/{}/merge", wu.id);
    assert_eq!(app.get(&format!("{path}?into=wu")).await.status(), 403);
    assert_eq!(post(&app, &path, &pairs(&[("into", "x"), ("reason", "r")])).await.status(), 403);
}

#[actix_web::test]
async fn wxfed_account_merge_dry_run_then_merge_and_identity_conflicts_are_refused() {
    let (app, db) = spawn_app().await;
    let a = app.add_user("aa", PASSWORD).await;
    let b = app.add_user("bb", PASSWORD).await;
    let c = app.add_user("cc", PASSWORD).await;
    insert_identity(&db, "ident-a", "acme", a.id.as_str());
    insert_identity(&db, "ident-c", "acme", c.id.as_str());
    let env = db.cli_env();

    let dry = wxfed_cli(&["--json", "account", "merge", "aa", "bb", "--reason", "dup", "--dry-run"], &env, None, None);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let value: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(value["dry_run"], true);
    assert_eq!(value["plan"]["identities"][0][0], "ident-a");
    assert_eq!(identity_account(&db, "ident-a").as_deref(), Some(a.id.as_str()), "a dry run changes nothing");

    // cc and aa both have an acme identity: refused, whatever the flags.
    let refused =
        wxfed_cli(&["account", "merge", "aa", "cc", "--reason", "dup", "--prefer-phone", "into"], &env, None, None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("acme"));

    let merged = wxfed_cli(&["--json", "account", "merge", "aa", "bb", "--reason", "dup"], &env, None, None);
    assert!(merged.status.success(), "{}", String::from_utf8_lossy(&merged.stderr));
    assert_eq!(identity_account(&db, "ident-a").as_deref(), Some(b.id.as_str()));
    let (status, merged_into, _) = account_row(&db, a.id.as_str());
    assert_eq!((status.as_str(), merged_into.as_deref()), ("disabled", Some(b.id.as_str())));
    // The merged-away account cannot log in.
    assert_ne!(app.login("aa", PASSWORD).await.status(), 303);
}

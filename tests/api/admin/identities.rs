//! `/admin/identities`: list and search, the detail page, link, unlink,
//! pre-provisioning (console and `wxfed link`), and every refusal.

use serde_json::Value;
use wxfed::config::UnlinkedPolicy;

use super::{PASSWORD, make_authentication_stale, page_token, pairs, post, signed_in_admin};
use crate::helpers::{TestApp, TestDb, new_client, spawn_app, wxfed_cli};
use crate::wechat::{PLATFORM, WEB_APPID, World, location};

/// Inserts an identity `id` (UnionID `unionid` of platform `wxop`, one
/// OpenID in `wxapp1`), linked to `account` when given.
fn insert_identity(
    db: &TestDb,
    id: &str,
    unionid: &str,
    openid: &str,
    nickname: &str,
    account: Option<&str>,
    at: &str,
) {
    let account = account.map(|a| format!("'{a}'")).unwrap_or_else(|| "NULL".into());
    db.execute(&format!(
        "INSERT INTO wechat_identities (id, platform_key, open_platform, unionid, account_id, nickname, created_at, updated_at)
         VALUES ('{id}', 'op:wxop', 'wxop', '{unionid}', {account}, '{nickname}', '{at}', '{at}');
         INSERT INTO wechat_openids (appid, openid, identity_id, created_at, last_login_at)
         VALUES ('wxapp1', '{openid}', '{id}', '{at}', '{at}');"
    ));
}

fn listed(page: &str) -> Vec<String> {
    page.split("data-identity=\"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].to_owned()).collect()
}

fn more_link(page: &str) -> Option<String> {
    let at = page.find("data-testid=\"more\"")?;
    let href = page[..at].rfind("href=\"").unwrap() + 6;
    Some(page[href..href + page[href..].find('"').unwrap()].replace("&#38;", "&"))
}

async fn search(app: &TestApp, query: &[(&str, &str)]) -> Vec<String> {
    let url = format!("/admin/identities?{}", serde_urlencoded::to_string(query).unwrap());
    let page = app.get(&url).await;
    assert_eq!(page.status(), 200, "{url}");
    listed(&page.text().await.unwrap())
}

#[actix_web::test]
async fn search_finds_identities_by_any_identifier_and_filters_linked() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let zhang = app.add_user("zhangsan", PASSWORD).await;
    insert_identity(
        &db,
        "id-a",
        "oUnionAAAA1234567890",
        "oOpenAAAA1234567890",
        "Xiao Ming",
        Some(zhang.id.as_str()),
        "2026-01-01 00:00:01",
    );
    insert_identity(
        &db,
        "id-b",
        "oUnionBBBB1234567890",
        "oOpenBBBB1234567890",
        "Lao Wang",
        None,
        "2026-01-01 00:00:02",
    );

    for (q, expected) in [
        ("oUnionAAAA1234567890", vec!["id-a"]),
        ("oOpenBBBB1234567890", vec!["id-b"]),
        ("wxapp1", vec!["id-b", "id-a"]),
        ("wxop", vec!["id-b", "id-a"]),
        ("xiao", vec!["id-a"]),
        ("ZhangSan", vec!["id-a"]),
        ("id-b", vec!["id-b"]),
        ("nobody", vec![]),
    ] {
        assert_eq!(search(&app, &[("q", q)]).await, expected, "q={q}");
    }
    assert_eq!(search(&app, &[("linked", "yes")]).await, vec!["id-a"]);
    assert_eq!(search(&app, &[("linked", "no")]).await, vec!["id-b"]);
    assert_eq!(search(&app, &[("q", "wxop"), ("linked", "no")]).await, vec!["id-b"]);

    // Identifiers are masked on the list.
    let page = app.get("/admin/identities").await.text().await.unwrap();
    assert!(!page.contains("oUnionAAAA1234567890"));
    assert!(page.contains("oUni…7890"));
    assert!(page.contains(">zhangsan</a>"), "the linked account is named");
}

#[actix_web::test]
async fn the_list_pages_with_a_keyset_cursor() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    for n in 0..60 {
        // Ten identities share a creation time: the id breaks the tie.
        let at = format!("2026-01-01 00:00:{:02}", n / 10);
        insert_identity(
            &db,
            &format!("id-{n:03}"),
            &format!("oUnion{n:014}"),
            &format!("oOpen{n:015}"),
            "n",
            None,
            &at,
        );
    }
    let first = app.get("/admin/identities").await.text().await.unwrap();
    let page1 = listed(&first);
    assert_eq!(page1.len(), 50);
    assert_eq!(page1[0], "id-059", "newest first");
    let next = more_link(&first).expect("a second page");
    assert!(next.contains("after="));
    let second = app.get(&next).await.text().await.unwrap();
    let page2 = listed(&second);
    assert_eq!(page2.len(), 10);
    assert!(more_link(&second).is_none());
    let mut all: Vec<String> = page1.into_iter().chain(page2).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 60, "every identity exactly once");
    // A forged cursor is ignored, not a 500.
    assert_eq!(app.get("/admin/identities?after=garbage").await.status(), 200);
}

#[actix_web::test]
async fn non_admins_get_403_on_every_identity_page_and_action() {
    let (app, db) = spawn_app().await;
    app.add_user("wu", PASSWORD).await;
    assert_eq!(app.login("wu", PASSWORD).await.status(), 303);
    insert_identity(&db, "id-a", "oUnionAAAA1234567890", "oOpenAAAA1234567890", "n", None, "2026-01-01 00:00:00");
    for path in ["/admin/identities", "/admin/identities/id-a", "/admin/identities/new"] {
        assert_eq!(app.get(path).await.status(), 403, "{path}");
    }
    for path in ["/admin/identities", "/admin/identities/id-a/link", "/admin/identities/id-a/unlink"] {
        let response = post(&app, path, &pairs(&[("username", "wu"), ("reason", "r")])).await;
        assert_eq!(response.status(), 403, "{path}");
    }
}

#[actix_web::test]
async fn link_and_unlink_from_the_identity_page_with_reasons_and_refusals() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let wu = app.add_user("wu", PASSWORD).await;
    let li = app.add_user("li", PASSWORD).await;
    insert_identity(&db, "id-a", "oUnionAAAA1234567890", "oOpenAAAA1234567890", "n", None, "2026-01-01 00:00:00");
    insert_identity(&db, "id-b", "oUnionBBBB1234567890", "oOpenBBBB1234567890", "n", None, "2026-01-01 00:00:01");
    let path = "/admin/identities/id-a";
    let token = page_token(&app, path).await;

    // Missing CSRF token: 403, nothing linked.
    let response = post(&app, &format!("{path}/link"), &pairs(&[("username", "wu"), ("reason", "r")])).await;
    assert_eq!(response.status(), 403);
    // Missing reason: 400.
    let response =
        post(&app, &format!("{path}/link"), &pairs(&[("username", "wu"), ("reason", " "), ("csrf_token", &token)]))
            .await;
    assert_eq!(response.status(), 400);
    // Unknown account: 404 on the page, with the message.
    let response =
        post(&app, &format!("{path}/link"), &pairs(&[("username", "nobody"), ("reason", "r"), ("csrf_token", &token)]))
            .await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("data-testid=\"error\""));
    assert!(!app.audit_rows().await.iter().any(|r| r.action == "wechat_identity.linked"));

    let linked = post(
        &app,
        &format!("{path}/link"),
        &pairs(&[("username", "wu"), ("reason", "工单 #42"), ("csrf_token", &token)]),
    )
    .await;
    assert_eq!(linked.status(), 303);
    assert_eq!(location(&linked), "/admin/identities/id-a?done=1");
    let page = app.get(path).await.text().await.unwrap();
    assert!(page.contains("data-testid=\"linked-account\">wu</a>"));
    let rows = app.audit_rows().await;
    let event = rows.iter().rfind(|r| r.action == "wechat_identity.linked").unwrap();
    assert_eq!(event.actor.as_deref(), Some(format!("account:{}", signed_in_id(&app).await).as_str()));
    assert_eq!(event.account_id.as_deref(), Some(wu.id.as_str()));
    let detail: Value = serde_json::from_str(&event.detail).unwrap();
    assert_eq!(detail["reason"], "工单 #42");
    assert_eq!(detail["after"], wu.id.as_str());
    assert_eq!(detail["before"], Value::Null);

    // The identity is linked to wu: linking it to li conflicts (409).
    let response =
        post(&app, &format!("{path}/link"), &pairs(&[("username", "li"), ("reason", "r"), ("csrf_token", &token)]))
            .await;
    assert_eq!(response.status(), 409);
    assert!(response.text().await.unwrap().contains("wu"), "names the other account");
    // wu already has an identity of this Open Platform: a second one conflicts (409).
    let response = post(
        &app,
        "/admin/identities/id-b/link",
        &pairs(&[("username", "wu"), ("reason", "r"), ("csrf_token", &token)]),
    )
    .await;
    assert_eq!(response.status(), 409);
    assert!(response.text().await.unwrap().contains("wxop"));

    // Unlink: reason required, then done and audited with before/after.
    let response = post(&app, &format!("{path}/unlink"), &pairs(&[("csrf_token", &token)])).await;
    assert_eq!(response.status(), 400);
    let response = post(&app, &format!("{path}/unlink"), &pairs(&[("reason", "离职"), ("csrf_token", &token)])).await;
    assert_eq!(response.status(), 303);
    let rows = app.audit_rows().await;
    let event = rows.iter().rfind(|r| r.action == "wechat_identity.unlinked").unwrap();
    let detail: Value = serde_json::from_str(&event.detail).unwrap();
    assert_eq!(detail["reason"], "离职");
    assert_eq!(detail["before"], wu.id.as_str());
    assert_eq!(event.account_id.as_deref(), Some(wu.id.as_str()));
    // Now li can have it.
    let response =
        post(&app, &format!("{path}/link"), &pairs(&[("username", "li"), ("reason", "r"), ("csrf_token", &token)]))
            .await;
    assert_eq!(response.status(), 303);
    let _ = li;
}

async fn signed_in_id(app: &TestApp) -> String {
    let state = app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        wxfed::accounts::manage::find_by_username(&mut conn, "ada").unwrap().id.to_string()
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn a_stale_admin_gets_the_password_prompt_before_linking() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    app.add_user("wu", PASSWORD).await;
    insert_identity(&db, "id-a", "oUnionAAAA1234567890", "oOpenAAAA1234567890", "n", None, "2026-01-01 00:00:00");
    let token = page_token(&app, "/admin/identities/id-a").await;
    make_authentication_stale(&db);
    for (path, fields) in [
        ("/admin/identities/id-a/link", pairs(&[("username", "wu"), ("reason", "r"), ("csrf_token", &token)])),
        ("/admin/identities/id-a/unlink", pairs(&[("reason", "r"), ("csrf_token", &token)])),
        (
            "/admin/identities",
            pairs(&[
                ("username", "wu"),
                ("kind", "unionid"),
                ("open_platform", "wxop"),
                ("unionid", "oUnionNEW01234567890"),
                ("reason", "r"),
                ("csrf_token", &token),
            ]),
        ),
    ] {
        let prompt = post(&app, path, &fields).await;
        assert_eq!(prompt.status(), 200, "{path}");
        assert!(prompt.text().await.unwrap().contains("data-testid=\"reauth-form\""), "{path}");
    }
    assert!(!app.audit_rows().await.iter().any(|r| r.action.starts_with("wechat_identity.")));
}

#[actix_web::test]
async fn the_detail_page_shows_openids_masked_the_account_and_the_wechat_login_history() {
    let world = World::new(UnlinkedPolicy::Deny).await;
    let app = &world.app;
    app.add_user("alice", PASSWORD).await;
    // A WeChat login in another browser (not the admin's), refused: not linked.
    let browser = TestApp { address: app.address.clone(), client: new_client(), state: app.state.clone() };
    let state = world.start_login_with(&browser, "/", None).await;
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    assert!(world.callback(&browser, &code, &state).await.status().is_client_error());
    let linked = world.link("alice", "wx-alice").await;
    assert!(linked.status.success(), "{}", String::from_utf8_lossy(&linked.stderr));
    let state = world.start_login_with(&browser, "/", None).await;
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    assert_eq!(world.callback(&browser, &code, &state).await.status(), 303);

    signed_in_admin(app, "ada").await;
    // The page reads the chained trail; chain what is pending (group commit).
    app.audit_rows().await;
    let (openid, unionid) = world.wechat.identity("wx-alice", WEB_APPID).await;
    let unionid = unionid.unwrap();
    let ids = search(app, &[("q", &unionid)]).await;
    assert_eq!(ids.len(), 1);
    let path = format!("/admin/identities/{}", ids[0]);
    let page = app.get(&path).await.text().await.unwrap();
    assert!(!page.contains(&openid) && !page.contains(&unionid), "masked");
    assert!(page.contains(WEB_APPID));
    assert!(page.contains("data-testid=\"linked-account\">alice</a>"));
    let logins = &page[page.find("data-testid=\"logins\"").expect("a login history")..];
    assert_eq!(logins.matches("<tr><td>").count(), 2, "the refused and the successful login");
    assert!(logins.contains("wechat_not_linked"));

    // Reveal: unmasked, audited.
    let token = crate::helpers::extract_csrf(&page);
    let revealed = post(app, &format!("{path}/reveal"), &pairs(&[("csrf_token", &token)])).await;
    assert_eq!(revealed.status(), 200);
    let page = revealed.text().await.unwrap();
    assert!(page.contains(&openid) && page.contains(&unionid));
    let rows = app.audit_rows().await;
    let event = rows.iter().rfind(|r| r.action == "admin.identifiers_revealed").unwrap();
    assert!(event.detail.contains(&ids[0]));
    assert_eq!(app.get("/admin/identities/no-such-id").await.status(), 404);
}

#[actix_web::test]
async fn a_preprovisioned_unionid_leads_the_first_wechat_login_to_the_account() {
    let world = World::new(UnlinkedPolicy::Deny).await;
    let app = &world.app;
    signed_in_admin(app, "ada").await;
    let alice = app.add_user("alice", PASSWORD).await;
    app.add_user("bob", PASSWORD).await;
    // wxfed has never seen wx-alice; the enterprise knows her UnionID.
    let (_, unionid) = world.wechat.identity("wx-alice", WEB_APPID).await;
    let unionid = unionid.unwrap();
    let token = page_token(app, "/admin/identities/new?username=alice").await;
    let fields = |username: &str, reason: &str| {
        pairs(&[
            ("username", username),
            ("kind", "unionid"),
            ("open_platform", PLATFORM),
            ("unionid", &unionid),
            ("reason", reason),
            ("csrf_token", &token),
        ])
    };
    assert_eq!(post(app, "/admin/identities", &fields("alice", "")).await.status(), 400);
    let mut no_csrf = fields("alice", "r");
    no_csrf.retain(|(k, _)| k != "csrf_token");
    assert_eq!(post(app, "/admin/identities", &no_csrf).await.status(), 403);
    let bad = pairs(&[
        ("username", "alice"),
        ("kind", "openid"),
        ("appid", "wxnope"),
        ("openid", "oX"),
        ("reason", "r"),
        ("csrf_token", &token),
    ]);
    assert_eq!(post(app, "/admin/identities", &bad).await.status(), 400);

    let created = post(app, "/admin/identities", &fields("alice", "迁移小程序用户")).await;
    assert_eq!(created.status(), 303);
    let detail_path = location(&created);
    let page = app.get(&detail_path).await.text().await.unwrap();
    assert!(page.contains("data-testid=\"linked-account\">alice</a>"));
    assert!(page.contains("data-testid=\"no-openids\""), "never logged in");
    // Pre-provisioning it again for bob: linked elsewhere (409).
    let again = post(app, "/admin/identities", &fields("bob", "r")).await;
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("alice"));

    let rows = app.audit_rows().await;
    let event = rows.iter().rfind(|r| r.action == "wechat_identity.linked").unwrap();
    let detail: Value = serde_json::from_str(&event.detail).unwrap();
    assert_eq!(detail["how"], "preprovisioned");
    assert_eq!(detail["reason"], "迁移小程序用户");
    assert!(rows.iter().all(|r| !r.detail.contains(&unionid)), "no raw UnionID in the audit trail");

    // Her first WeChat login (another browser) lands on alice.
    let browser = TestApp { address: app.address.clone(), client: new_client(), state: app.state.clone() };
    let state = world.start_login_with(&browser, "/", None).await;
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    let back = world.callback(&browser, &code, &state).await;
    assert_eq!(back.status(), 303);
    let rows = app.audit_rows().await;
    let login = rows.iter().rfind(|r| r.action == "login.wechat").unwrap();
    assert_eq!(login.outcome, "success");
    assert_eq!(login.account_id.as_deref(), Some(alice.id.as_str()));
    // The same identity record, now with her OpenID.
    let page = app.get(&detail_path).await.text().await.unwrap();
    assert!(!page.contains("data-testid=\"no-openids\""));
    assert!(page.contains(WEB_APPID));
}

#[actix_web::test]
async fn wxfed_link_preprovisions_an_unseen_unionid_or_openid_and_refuses_conflicts() {
    let world = World::new(UnlinkedPolicy::Deny).await;
    let app = &world.app;
    let alice = app.add_user("alice", PASSWORD).await;
    app.add_user("bob", PASSWORD).await;
    let env = world.db.cli_env();
    let (_, unionid) = world.wechat.identity("wx-alice", WEB_APPID).await;
    let unionid = unionid.unwrap();
    let out = wxfed_cli(
        &["--json", "link", "alice", "--unionid", &unionid, "--open-platform", PLATFORM, "--reason", "import"],
        &env,
        None,
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["created"], true);
    assert_eq!(value["username"], "alice");
    // Again: already linked to alice, nothing created.
    let out = wxfed_cli(&["--json", "link", "alice", "--unionid", &unionid], &env, None, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["created"], false);
    // bob: refused, naming alice.
    let out = wxfed_cli(&["link", "bob", "--unionid", &unionid, "--reason", "x"], &env, None, None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("alice"), "{}", String::from_utf8_lossy(&out.stderr));
    // An OpenID of a registered app, unseen: created for bob.
    let out = wxfed_cli(
        &["--json", "link", "bob", "--appid", crate::wechat::OA_APPID, "--openid", "oBobOpenId0123456789"],
        &env,
        None,
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["created"], true);
    // An unregistered app: refused.
    let out = wxfed_cli(&["link", "bob", "--appid", "wxunknown", "--openid", "oBobOpenId0123456789"], &env, None, None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wxunknown"));

    let audit = app.audit_rows().await;
    let event = audit.iter().find(|r| r.action == "wechat_identity.linked").unwrap();
    assert_eq!(serde_json::from_str::<Value>(&event.detail).unwrap()["reason"], "import");

    // Her first login lands on alice.
    let response = world.qr_login("wx-alice").await;
    assert_eq!(response.status(), 303);
    let rows = app.audit_rows().await;
    let login = rows.iter().rfind(|r| r.action == "login.wechat").unwrap();
    assert_eq!(login.account_id.as_deref(), Some(alice.id.as_str()));

    // wxfed unlink, with a reason.
    let out = wxfed_cli(&["--json", "unlink", "alice", "--unionid", &unionid, "--reason", "left"], &env, None, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = app.audit_rows().await;
    let event = rows.iter().rfind(|r| r.action == "wechat_identity.unlinked").unwrap();
    assert_eq!(serde_json::from_str::<Value>(&event.detail).unwrap()["reason"], "left");
    let _ = spawn_app;
}

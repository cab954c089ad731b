//! `/api/admin/accounts`: every operation, the console's rules and
//! reasons, and the audit events with the client as the actor.

use serde_json::json;
use wxfed::accounts::Role;

use super::{Api, with_reason};

const ACCOUNTS: &str = "/api/admin/accounts";
const ACCOUNT: &str = "/api/admin/accounts/{id}";

#[actix_rt::test]
async fn an_account_is_created_found_changed_and_every_change_audited() {
    let api = Api::new().await;
    let actor = format!("client:{}", api.admin_client);
    let created = api
        .send(
            "post",
            ACCOUNTS,
            &[],
            &api.admin,
            json!({"username": "Zhang.Wei", "display_name": "张伟", "email": "wei@example.com", "phone": "+8613800138000", "phone_verified": true}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.header("location"), format!("/api/admin/accounts/{id}"));
    assert_eq!(created.body["phone"], "+8613800138000");
    let added = api.events("user.added").await;
    assert_eq!(added.last().unwrap().actor.as_deref(), Some(actor.as_str()));
    assert_eq!(added.last().unwrap().account_id.as_deref(), Some(id.as_str()));

    // The same username, differently cased: 409.
    api.send("post", ACCOUNTS, &[], &api.admin, json!({"username": "zhang.wei"})).await.problem(409, "username_taken");
    // Invalid email: 400.
    api.send("post", ACCOUNTS, &[], &api.admin, json!({"username": "li", "email": "nope"}))
        .await
        .problem(400, "invalid");

    // Search: by prefix, by phone (exact), with filters; the phone is masked in lists.
    let found = api.get(&format!("{ACCOUNTS}?q=zhang"), &[], &api.admin).await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body["items"][0]["id"], id.as_str());
    assert_eq!(found.body["items"][0]["phone"], "+861…8000");
    let by_phone = api.get(&format!("{ACCOUNTS}?q=%2B8613800138000&status=active&linked=false"), &[], &api.admin).await;
    assert_eq!(by_phone.body["items"].as_array().unwrap().len(), 1, "{}", by_phone.text);
    let none = api.get(&format!("{ACCOUNTS}?q=zhang&status=disabled"), &[], &api.admin).await;
    assert!(none.body["items"].as_array().unwrap().is_empty());
    api.get(&format!("{ACCOUNTS}?status=sleeping"), &[], &api.admin).await.problem(400, "invalid_field");
    api.get(&format!("{ACCOUNTS}?linked=maybe"), &[], &api.admin).await.problem(400, "invalid_query");

    // Detail.
    let detail = api.get(ACCOUNT, &[("id", &id)], &api.admin).await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    assert_eq!(detail.body["account"]["username"], "Zhang.Wei");
    assert_eq!(detail.body["identities"], json!([]));
    api.get(ACCOUNT, &[("id", "no-such-id")], &api.admin).await.problem(404, "not_found");

    // Profile: replaced as a whole.
    let profile = api
        .send(
            "put",
            "/api/admin/accounts/{id}/profile",
            &[("id", &id)],
            &api.admin,
            json!({"display_name": "Wei Zhang", "email": "wz@example.com", "email_verified": true}),
        )
        .await;
    assert_eq!(profile.status, 200, "{}", profile.text);
    assert_eq!(profile.body["email"], "wz@example.com");
    assert_eq!(profile.body["phone"], serde_json::Value::Null);
    let updated = api.events("user.profile_updated").await;
    assert_eq!(updated[0].actor.as_deref(), Some(actor.as_str()));
    assert!(updated[0].detail.contains("wz@example.com"));

    // Status and roles need a reason, as on the console.
    let status = "/api/admin/accounts/{id}/status";
    let refused = api.send("put", status, &[("id", &id)], &api.admin, json!({"status": "disabled"})).await;
    assert_eq!(refused.problem(400, "reason_required")["errors"][0]["field"], "reason");
    api.send("put", status, &[("id", &id)], &api.admin, with_reason(json!({"status": "asleep"}), "x"))
        .await
        .problem(400, "invalid_field");
    let disabled = api
        .send("put", status, &[("id", &id)], &api.admin, with_reason(json!({"status": "disabled"}), "left the company"))
        .await;
    assert_eq!(disabled.body, json!({"changed": true}), "{}", disabled.text);
    let again = api
        .send("put", status, &[("id", &id)], &api.admin, with_reason(json!({"status": "disabled"}), "left the company"))
        .await;
    assert_eq!(again.body, json!({"changed": false}));
    let event = &api.events("user.disabled").await[0];
    assert_eq!(event.actor.as_deref(), Some(actor.as_str()));
    assert!(event.detail.contains("left the company"), "{}", event.detail);
    api.send("put", status, &[("id", &id)], &api.admin, with_reason(json!({"status": "active"}), "came back")).await;

    let roles = "/api/admin/accounts/{id}/roles";
    api.send("put", roles, &[("id", &id)], &api.admin, json!({"roles": ["auditor"]}))
        .await
        .problem(400, "reason_required");
    api.send("put", roles, &[("id", &id)], &api.admin, with_reason(json!({"roles": ["owner"]}), "x"))
        .await
        .problem(400, "invalid_field");
    let granted = api
        .send("put", roles, &[("id", &id)], &api.admin, with_reason(json!({"roles": ["admin", "auditor"]}), "on call"))
        .await;
    assert_eq!(granted.body, json!({"changed": true}));
    let event = api.events("user.role_added").await;
    assert_eq!(event.last().unwrap().actor.as_deref(), Some(actor.as_str()));
    // The only active admin keeps the role and stays enabled.
    let last = api.send("put", roles, &[("id", &id)], &api.admin, with_reason(json!({"roles": []}), "cleanup")).await;
    last.problem(409, "last_admin");
    api.send("put", status, &[("id", &id)], &api.admin, with_reason(json!({"status": "disabled"}), "x"))
        .await
        .problem(409, "last_admin");

    // Password: generated once, or set; too short is refused.
    let password = "/api/admin/accounts/{id}/password";
    let generated = api.send("post", password, &[("id", &id)], &api.admin, json!({"mode": "generate"})).await;
    assert_eq!(generated.status, 200, "{}", generated.text);
    let one_time = generated.body["one_time_password"].as_str().unwrap().to_owned();
    assert_eq!(one_time.len(), 20);
    assert_eq!(api.app.login("Zhang.Wei", &one_time).await.status(), 303);
    let short =
        api.send("post", password, &[("id", &id)], &api.admin, json!({"mode": "set", "password": "short"})).await;
    assert_eq!(short.problem(400, "invalid_field")["errors"][0]["field"], "password");
    let set = api
        .send("post", password, &[("id", &id)], &api.admin, json!({"mode": "set", "password": "a long passphrase"}))
        .await;
    assert_eq!(set.body, json!({"one_time_password": null}));
    assert!(
        !api.app
            .audit_rows()
            .await
            .iter()
            .any(|r| r.detail.contains(&one_time) || r.detail.contains("a long passphrase"))
    );
    let event = api.events("user.password_set").await;
    assert_eq!(event.len(), 2);
    assert!(event.iter().all(|e| e.actor.as_deref() == Some(actor.as_str())));
    api.send("post", password, &[("id", "nobody")], &api.admin, json!({"mode": "generate"}))
        .await
        .problem(404, "not_found");

    // Sessions: a login, then all of them ended.
    assert_eq!(api.app.login("Zhang.Wei", "a long passphrase").await.status(), 303);
    let revoke = "/api/admin/accounts/{id}/sessions/revoke";
    let ended = api.send("post", revoke, &[("id", &id)], &api.admin, json!({})).await;
    assert_eq!(ended.body, json!({"sessions_ended": 1}), "{}", ended.text);
    assert_eq!(api.events("user.sessions_revoked").await[0].actor.as_deref(), Some(actor.as_str()));

    api.validate_responses().await;
}

#[actix_rt::test]
async fn bad_bodies_are_problems_never_500s() {
    let api = Api::new().await;
    // Not JSON, the wrong shape, unknown fields, the wrong media type.
    let response = api
        .app
        .client
        .post(api.app.url(ACCOUNTS))
        .bearer_auth(&api.admin)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    api.send("post", ACCOUNTS, &[], &api.admin, json!({"username": 7})).await.problem(400, "invalid_body");
    let unknown = api.send("post", ACCOUNTS, &[], &api.admin, json!({"username": "a", "roles": ["admin"]})).await;
    assert_eq!(unknown.problem(400, "invalid_body")["errors"][0]["field"], "roles");
    let missing = api.send("post", ACCOUNTS, &[], &api.admin, json!({})).await;
    assert_eq!(missing.problem(400, "invalid_body")["errors"][0]["field"], "username");
    let response = api
        .app
        .client
        .post(api.app.url(ACCOUNTS))
        .bearer_auth(&api.admin)
        .form(&[("username", "a")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    // Unknown paths under /api/admin are problems too.
    let response =
        api.app.client.get(api.app.url("/api/admin/nothing-here")).bearer_auth(&api.admin).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    api.validate_responses().await;
}

#[actix_rt::test]
async fn an_audit_client_reads_and_every_read_is_recorded() {
    let api = Api::new().await;
    let account = api.app.add_user("li.na", "a long passphrase").await;
    crate::admin::grant(&api.app, "li.na", Role::Auditor).await;
    let id = account.id.to_string();
    let actor = format!("client:{}", api.audit_client);

    let list = api.get(&format!("{ACCOUNTS}?q=li"), &[], &api.audit).await;
    assert_eq!(list.body["items"][0]["roles"], json!(["auditor"]));
    let searched = api.events("audit.searched").await;
    assert_eq!(searched.len(), 1);
    assert_eq!(searched[0].actor.as_deref(), Some(actor.as_str()));
    assert_eq!(searched[0].category, "audit_access");
    assert!(searched[0].detail.contains("\"q\":\"li\""), "{}", searched[0].detail);

    let detail = api.get(ACCOUNT, &[("id", &id)], &api.audit).await;
    assert_eq!(detail.status, 200);
    let viewed = api.events("audit.account_viewed").await;
    assert_eq!(viewed[0].actor.as_deref(), Some(actor.as_str()));
    assert_eq!(viewed[0].account_id.as_deref(), Some(id.as_str()));
    // Revealing identifiers is for admins.
    api.get(&format!("{ACCOUNT}?reveal=true"), &[("id", &id)], &api.audit).await.problem(403, "insufficient_scope");
    // The admin client's reads are not audit reads; its reveal is recorded.
    api.get(ACCOUNT, &[("id", &id)], &api.admin).await;
    assert_eq!(api.events("audit.account_viewed").await.len(), 1);
    let revealed = api.get(&format!("{ACCOUNT}?reveal=true"), &[("id", &id)], &api.admin).await;
    assert_eq!(revealed.body["revealed"], true);
    let event = api.events("admin.identifiers_revealed").await;
    assert_eq!(event[0].actor.as_deref(), Some(format!("client:{}", api.admin_client).as_str()));

    // Every write is refused to the audit scope.
    for (method, path, body) in [
        ("put", "/api/admin/accounts/{id}/profile", json!({})),
        ("put", "/api/admin/accounts/{id}/status", json!({"status": "disabled", "reason": "x"})),
        ("put", "/api/admin/accounts/{id}/roles", json!({"roles": [], "reason": "x"})),
        ("post", "/api/admin/accounts/{id}/password", json!({"mode": "generate"})),
        ("post", "/api/admin/accounts/{id}/sessions/revoke", json!({})),
    ] {
        api.send(method, path, &[("id", &id)], &api.audit, body).await.problem(403, "insufficient_scope");
    }
    api.validate_responses().await;
}

#[actix_rt::test]
async fn lists_page_with_a_cursor() {
    let api = Api::new().await;
    for i in 0..55 {
        let answer = api.send("post", ACCOUNTS, &[], &api.admin, json!({"username": format!("user{i:02}")})).await;
        assert_eq!(answer.status, 201);
    }
    let first = api.get(ACCOUNTS, &[], &api.admin).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 50);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = api.get(&format!("{ACCOUNTS}?cursor={cursor}"), &[], &api.admin).await;
    let names: Vec<&str> =
        second.body["items"].as_array().unwrap().iter().map(|a| a["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["user50", "user51", "user52", "user53", "user54"]);
    assert!(second.body.get("next_cursor").is_none_or(|c| c.is_null()));
    api.validate_responses().await;
}

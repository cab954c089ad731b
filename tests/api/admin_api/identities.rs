//! `/api/admin/identities` and `/api/admin/accounts/{id}/merge`: the
//! console's linking rules and reasons, through the API.

use serde_json::json;
use wxfed::config::SecretString;
use wxfed::wechat::apps::{AppKind, NewApp};

use super::{Api, with_reason};

const IDENTITIES: &str = "/api/admin/identities";
const IDENTITY: &str = "/api/admin/identities/{id}";
const APPID: &str = "wx1234567890abcdef";
const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
const UNIONID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

async fn register_app(api: &Api) {
    let state = api.app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        let new = NewApp {
            appid: APPID.into(),
            kind: AppKind::MiniProgram,
            name: "Shop".into(),
            open_platform: Some("acme".into()),
            redirect_domain: None,
            secret: SecretString::new("s3cret"),
        };
        wxfed::wechat::apps::register(&mut conn, &state.secrets, &wxfed::accounts::manage::Actor("test".into()), &new)
            .unwrap();
    })
    .await
    .unwrap();
}

#[actix_rt::test]
async fn identities_are_pre_provisioned_linked_unlinked_and_searched() {
    let api = Api::new().await;
    register_app(&api).await;
    let actor = format!("client:{}", api.admin_client);
    let alice = api.app.add_user("alice", "a long passphrase").await.id.to_string();
    let bob = api.app.add_user("bob", "a long passphrase").await.id.to_string();

    // Pre-provision an OpenID for alice: reason required, then created.
    let body = json!({"username": "alice", "appid": APPID, "openid": OPENID});
    api.send("post", IDENTITIES, &[], &api.admin, body.clone()).await.problem(400, "reason_required");
    let made =
        api.send("post", IDENTITIES, &[], &api.admin, with_reason(body.clone(), "migrated from the old shop")).await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(made.body["created"], true);
    let id = made.body["identity"]["id"].as_str().unwrap().to_owned();
    assert_eq!(made.body["identity"]["account_id"], alice.as_str());
    assert_eq!(made.body["identity"]["openids"][0]["openid"], "o6_b…fL2M");
    assert_eq!(made.header("location"), format!("/api/admin/identities/{id}"));
    let linked = api.events("wechat_identity.linked").await;
    assert_eq!(linked[0].actor.as_deref(), Some(actor.as_str()));
    assert!(linked[0].detail.contains("migrated from the old shop"));
    assert_eq!(api.events("wechat_identity.created").await[0].actor.as_deref(), Some(actor.as_str()));
    // Unknown app, both kinds of id, unknown account: 400s.
    let unknown = with_reason(json!({"username": "alice", "appid": "wxffffffffffffffff", "openid": OPENID}), "x");
    assert_eq!(
        api.send("post", IDENTITIES, &[], &api.admin, unknown).await.problem(400, "invalid_field")["errors"][0]["field"],
        "appid"
    );
    let both = with_reason(json!({"username": "alice", "unionid": UNIONID, "openid": OPENID}), "x");
    api.send("post", IDENTITIES, &[], &api.admin, both).await.problem(400, "invalid_field");
    let nobody = with_reason(json!({"username": "nobody", "appid": APPID, "openid": "oOther"}), "x");
    api.send("post", IDENTITIES, &[], &api.admin, nobody).await.problem(400, "invalid_field");

    // Search by the OpenID (exact), by appid; detail, masked and revealed.
    let found = api.get(&format!("{IDENTITIES}?q={OPENID}"), &[], &api.admin).await;
    assert_eq!(found.body["items"][0]["id"], id.as_str(), "{}", found.text);
    assert_eq!(found.body["items"][0]["username"], "alice");
    let unlinked = api.get(&format!("{IDENTITIES}?linked=false"), &[], &api.admin).await;
    assert!(unlinked.body["items"].as_array().unwrap().is_empty());
    let detail = api.get(IDENTITY, &[("id", &id)], &api.admin).await;
    assert_eq!(detail.body["openids"][0]["app_name"], "Shop");
    let revealed = api.get(&format!("{IDENTITY}?reveal=true"), &[("id", &id)], &api.admin).await;
    assert_eq!(revealed.body["openids"][0]["openid"], OPENID);
    assert_eq!(api.events("admin.identifiers_revealed").await.len(), 1);
    api.get(IDENTITY, &[("id", "missing")], &api.admin).await.problem(404, "not_found");

    // Linking it to bob: it is alice's (409, the console's rule).
    let link = "/api/admin/identities/{id}/link";
    let taken = api.send("post", link, &[("id", &id)], &api.admin, with_reason(json!({"account_id": bob}), "x")).await;
    taken.problem(409, "linked_elsewhere");
    api.send("post", link, &[("id", &id)], &api.admin, json!({"account_id": bob}))
        .await
        .problem(400, "reason_required");

    // Unlink (the expected account must match), then link to bob.
    let unlink = "/api/admin/identities/{id}/unlink";
    api.send("post", unlink, &[("id", &id)], &api.admin, json!({})).await.problem(400, "reason_required");
    let wrong =
        api.send("post", unlink, &[("id", &id)], &api.admin, with_reason(json!({"account_id": bob}), "x")).await;
    wrong.problem(409, "not_linked_to");
    let done = api.send("post", unlink, &[("id", &id)], &api.admin, with_reason(json!({}), "wrong person")).await;
    assert_eq!(done.body, json!({"changed": true}), "{}", done.text);
    let again = api.send("post", unlink, &[("id", &id)], &api.admin, with_reason(json!({}), "wrong person")).await;
    assert_eq!(again.body, json!({"changed": false}));
    let unlinked = api.events("wechat_identity.unlinked").await;
    assert_eq!(unlinked[0].actor.as_deref(), Some(actor.as_str()));
    assert!(unlinked[0].detail.contains("wrong person"));
    let relinked = api
        .send("post", link, &[("id", &id)], &api.admin, with_reason(json!({"username": "bob"}), "right person"))
        .await;
    assert_eq!(relinked.status, 200, "{}", relinked.text);
    assert_eq!(relinked.body["account_id"], bob.as_str());

    // Another OpenID of the same app for bob: one identity per platform.
    let second = with_reason(json!({"account_id": bob, "appid": APPID, "openid": "oSecondOpenId1234567890"}), "x");
    api.send("post", IDENTITIES, &[], &api.admin, second).await.problem(409, "account_has_identity");
    // A UnionID is its Open Platform's identity: created and linked.
    let union = with_reason(json!({"account_id": bob, "open_platform": "acme", "unionid": UNIONID}), "x");
    let made = api.send("post", IDENTITIES, &[], &api.admin, union.clone()).await;
    assert_eq!((made.status, &made.body["identity"]["unionid"]), (201, &json!("oUpF…eS6o")), "{}", made.text);
    // Again: it exists and is bob's already (200, not created).
    let same = api.send("post", IDENTITIES, &[], &api.admin, union).await;
    assert_eq!((same.status, &same.body["created"]), (200, &json!(false)), "{}", same.text);

    // The account's detail lists the identity.
    let account = api.get("/api/admin/accounts/{id}", &[("id", &bob)], &api.admin).await;
    assert!(account.body["identities"].as_array().unwrap().iter().any(|i| i["id"] == id.as_str()), "{}", account.text);

    // The audit scope reads (recorded) but never writes.
    assert_eq!(api.get(IDENTITIES, &[], &api.audit).await.status, 200);
    assert_eq!(api.get(IDENTITY, &[("id", &id)], &api.audit).await.status, 200);
    let reads: Vec<_> = api
        .app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.actor.as_deref() == Some(format!("client:{}", api.audit_client).as_str()))
        .filter(|r| r.category == "audit_access")
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!((reads[0].action.as_str(), reads[1].action.as_str()), ("audit.searched", "audit.account_viewed"));
    api.send("post", unlink, &[("id", &id)], &api.audit, with_reason(json!({}), "x"))
        .await
        .problem(403, "insufficient_scope");
    api.get(&format!("{IDENTITY}?reveal=true"), &[("id", &id)], &api.audit).await.problem(403, "insufficient_scope");
    api.validate_responses().await;
}

#[actix_rt::test]
async fn accounts_are_merged_after_a_preview() {
    let api = Api::new().await;
    register_app(&api).await;
    let wechat_only = api.app.add_user("wx-user", "a long passphrase").await.id.to_string();
    let real = api.app.add_user("zhang.wei", "a long passphrase").await.id.to_string();
    let provision = with_reason(json!({"account_id": wechat_only, "appid": APPID, "openid": OPENID}), "x");
    let identity = api.send("post", IDENTITIES, &[], &api.admin, provision).await.body["identity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let merge = "/api/admin/accounts/{id}/merge";

    let preview = api.get(&format!("{merge}?into={real}"), &[("id", &wechat_only)], &api.admin).await;
    assert_eq!(preview.status, 200, "{}", preview.text);
    assert_eq!(preview.body["identities"][0]["id"], identity.as_str());
    assert_eq!(preview.body["into_username"], "zhang.wei");
    assert_eq!(preview.body["blocked"], false);
    api.get(&format!("{merge}?into={wechat_only}"), &[("id", &wechat_only)], &api.admin)
        .await
        .problem(400, "invalid_field");
    api.get(&format!("{merge}?into=nobody"), &[("id", &wechat_only)], &api.admin).await.problem(404, "not_found");
    api.get(merge, &[("id", &wechat_only)], &api.admin).await.problem(400, "invalid_query");
    // Merge previews and merges are admin work.
    api.get(&format!("{merge}?into={real}"), &[("id", &wechat_only)], &api.audit)
        .await
        .problem(403, "insufficient_scope");

    api.send("post", merge, &[("id", &wechat_only)], &api.admin, json!({"into": real}))
        .await
        .problem(400, "reason_required");
    let bad_side = with_reason(json!({"into": real, "prefer_phone": "both"}), "x");
    api.send("post", merge, &[("id", &wechat_only)], &api.admin, bad_side).await.problem(400, "invalid_field");
    let merged = api
        .send("post", merge, &[("id", &wechat_only)], &api.admin, with_reason(json!({"into": real}), "same person"))
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    let event = &api.events("user.merged").await[0];
    assert_eq!(event.actor.as_deref(), Some(format!("client:{}", api.admin_client).as_str()));
    assert!(event.detail.contains("same person"));
    let detail = api.get("/api/admin/identities/{id}", &[("id", &identity)], &api.admin).await;
    assert_eq!(detail.body["account_id"], real.as_str());
    let again =
        api.send("post", merge, &[("id", &wechat_only)], &api.admin, with_reason(json!({"into": real}), "x")).await;
    again.problem(409, "already_merged");
    api.validate_responses().await;
}

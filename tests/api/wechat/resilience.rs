//! WeChat as it really behaves: used and expired codes, wrong secrets,
//! busy answers, outages and slowness. Never a 500, never a hang.

use serde_json::json;
use wxfed::config::UnlinkedPolicy;

use super::{WEB_APPID, World};

async fn reason_of_last_failure(world: &World) -> (String, serde_json::Value) {
    let event = world.app.audit_rows().await.into_iter().rev().find(|e| e.action == "login.wechat").unwrap();
    (event.reason.unwrap_or_default(), serde_json::from_str(&event.detail).unwrap())
}

#[actix_web::test]
async fn a_reused_code_is_refused() {
    let world = World::new(UnlinkedPolicy::Create).await;
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    let state = world.start_login("/").await;
    assert_eq!(world.callback(&world.app, &code, &state).await.status(), 303);
    let state = world.start_login("/").await;
    let again = world.callback(&world.app, &code, &state).await;
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("Please try again"));
    let (reason, detail) = reason_of_last_failure(&world).await;
    assert_eq!(reason, "invalid_code");
    assert_eq!(detail["errcode"], 40163);
}

#[actix_web::test]
async fn an_expired_code_is_refused() {
    let world = World::new(UnlinkedPolicy::Create).await;
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    world.wechat.advance(11 * 60).await;
    let state = world.start_login("/").await;
    assert_eq!(world.callback(&world.app, &code, &state).await.status(), 400);
    assert_eq!(reason_of_last_failure(&world).await.0, "invalid_code");
}

#[actix_web::test]
async fn a_wrong_app_secret_is_an_operator_problem_with_a_clear_page() {
    let world = World::new(UnlinkedPolicy::Create).await;
    let rotated = crate::helpers::wxfed_cli(
        &["wechat-app", "rotate-secret", WEB_APPID, "--secret-stdin"],
        &world.db.cli_env(),
        Some("wrong-secret"),
        None,
    );
    assert!(rotated.status.success());
    let response = world.qr_login("wx-alice").await;
    assert_eq!(response.status(), 502);
    assert!(response.text().await.unwrap().contains("configuration problem"));
    let (reason, detail) = reason_of_last_failure(&world).await;
    assert_eq!(reason, "configuration");
    assert_eq!(detail["errcode"], 40125);
}

#[actix_web::test]
async fn a_busy_answer_is_retried_once() {
    let world = World::new(UnlinkedPolicy::Create).await;
    world
        .wechat
        .fault(json!({"path": "/sns/oauth2/access_token", "errcode": -1, "errmsg": "system error", "times": 1}))
        .await;
    assert_eq!(world.qr_login("wx-alice").await.status(), 303);
    assert_eq!(world.wechat.calls("/sns/oauth2/access_token").await, 2);
}

#[actix_web::test]
async fn a_busy_wechat_twice_in_a_row_gives_a_try_again_page() {
    let world = World::new(UnlinkedPolicy::Create).await;
    world.wechat.fault(json!({"path": "/sns/oauth2/access_token", "errcode": -1, "times": 2})).await;
    let response = world.qr_login("wx-alice").await;
    assert_eq!(response.status(), 503);
    assert_eq!(world.wechat.calls("/sns/oauth2/access_token").await, 2, "one bounded retry, not more");
}

#[actix_web::test]
async fn wechat_down_or_slow_gives_a_clear_page_quickly() {
    // Slow: the simulator answers after 5 s, wxfed gives up after 500 ms.
    let world = World::with(UnlinkedPolicy::Create, |s| s.wechat.timeout_ms = 500).await;
    world.wechat.fault(json!({"path": "/sns/oauth2/access_token", "delay_ms": 5000, "times": 1})).await;
    // Had wxfed waited, the delayed answer would have logged alice in.
    let response = world.qr_login("wx-alice").await;
    assert_eq!(response.status(), 503);
    assert!(response.text().await.unwrap().contains("could not be reached"));

    // An HTTP 500 from WeChat.
    world.wechat.fault(json!({"path": "/sns/oauth2/access_token", "http_status": 500, "times": 1})).await;
    assert_eq!(world.qr_login("wx-alice").await.status(), 503);

    // Down: nothing listens at the API base.
    let down = World::with(UnlinkedPolicy::Create, |s| s.wechat.api_base = "http://127.0.0.1:9".into()).await;
    let response = down.qr_login("wx-alice").await;
    assert_eq!(response.status(), 503);
    assert_eq!(reason_of_last_failure(&down).await.0, "unreachable");
}

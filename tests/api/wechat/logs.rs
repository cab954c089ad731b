//! The log output of a whole WeChat login holds no secret or identifier.

use super::{WEB_APPID, WEB_SECRET, Wechat, urlencode};
use crate::helpers::{ServerProcess, TestDb, new_client, wxfed_cli};

#[actix_web::test]
async fn a_full_wechat_login_logs_no_code_token_session_key_openid_or_unionid() {
    let wechat = Wechat::start();
    wechat.add_app(WEB_APPID, WEB_SECRET, "website", Some(super::PLATFORM)).await;
    wechat.add_user("wx-alice", "Alice WX").await;
    let db = TestDb::new();
    let mut env = db.cli_env();
    for (key, value) in [
        ("WXFED_WECHAT_API_BASE", wechat.base.clone()),
        ("WXFED_WECHAT_OPEN_BASE", wechat.base.clone()),
        ("WXFED_WECHAT_UNLINKED", "create".into()),
        // As chatty as an operator can make it.
        ("WXFED_LOG_LEVEL", "debug".into()),
    ] {
        env.push((key.into(), value));
    }
    let added = wxfed_cli(
        &[
            "wechat-app",
            "add",
            "--kind",
            "website",
            "--appid",
            WEB_APPID,
            "--name",
            "Web",
            "--open-platform",
            super::PLATFORM,
            "--secret-stdin",
        ],
        &env,
        Some(WEB_SECRET),
        None,
    );
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));

    let server = ServerProcess::start(&env).await;
    let address = server.address.clone();
    let browser = new_client();

    let start = browser.get(format!("{address}/login/wechat?return_to=/")).send().await.unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let state = url::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let code = wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    let back = browser
        .get(format!("{address}/login/wechat/callback?code={}&state={}", urlencode(&code), urlencode(&state)))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    let session = back
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("wxfed_session="))
        .unwrap();
    let session = session.trim_start_matches("wxfed_session=").split(';').next().unwrap().to_owned();
    assert_eq!(browser.get(format!("{address}/")).send().await.unwrap().status(), 200);

    let output = server.finish();
    let logs = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(logs.contains("request finished"), "the server did log: {logs}");
    let (openid, unionid) = wechat.identity("wx-alice", WEB_APPID).await;
    for (what, secret) in [
        ("code", code),
        ("state", state),
        ("OpenID", openid),
        ("UnionID", unionid.unwrap()),
        ("AppSecret", WEB_SECRET.to_owned()),
        ("session cookie", session),
    ] {
        assert!(!logs.contains(&secret), "the {what} appears in the logs");
    }
}

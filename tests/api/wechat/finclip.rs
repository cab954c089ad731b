//! Mini-programs and apps: the token exchange for WeChat codes, phone
//! verification and auto-phone, and the three FinClip schemes.

use serde_json::{Value, json};
use wxfed::config::UnlinkedPolicy;
use wxfed::oidc::clients::{GrantType, NewClient};
use wxfed::oidc::signing::SigningAlgorithm;
use wxfed::wechat::apps::AppKind;

use super::World;
use super::browser::decode_claims;
use crate::helpers::wxfed_cli;

const MP: &str = "wx00000000000000c1";
const MP_SECRET: &str = "mpsecret000000000000000000000001";
const MP2: &str = "wx00000000000000c2";
const MP2_SECRET: &str = "mpsecret000000000000000000000002";
const LONE_MP: &str = "wx00000000000000c3";
const LONE_SECRET: &str = "mpsecret000000000000000000000003";
const APP: &str = "wx00000000000000d1";
const APP_SECRET: &str = "appsecret00000000000000000000001";
const PASSWORD: &str = "correct horse battery";
const JSCODE: &str = "urn:wxfed:params:oauth:token-type:wechat-jscode";
const OAUTH_CODE: &str = "urn:wxfed:params:oauth:token-type:wechat-oauth-code";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

struct Fin {
    world: World,
    /// Public client of the mini-program MP.
    mp_client: String,
    /// Confidential host-app client (its app logs in with SendAuth codes).
    host_client: String,
    host_secret: String,
}

fn client(name: &str, wechat_app: Option<&str>) -> NewClient {
    NewClient {
        name: name.into(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        public: true,
        first_party: true,
        grant_types: vec![],
        scopes: vec![],
        id_token_signing_alg: SigningAlgorithm::Rs256,
        always_issue_refresh_token: false,
        wechat_app: wechat_app.map(str::to_owned),
        host_app: false,
        trust_host: None,
        access_token_signing_alg: SigningAlgorithm::Rs256,
        host_for: vec![],
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
    }
}

impl Fin {
    async fn new(policy: UnlinkedPolicy) -> Self {
        Self::with(policy, |_| {}).await
    }

    async fn with(policy: UnlinkedPolicy, tweak: impl FnOnce(&mut wxfed::config::Settings)) -> Self {
        let world = World::with(policy, tweak).await;
        let sim = &world.wechat;
        sim.add_app(MP, MP_SECRET, "miniprogram", Some(super::PLATFORM)).await;
        sim.add_app(MP2, MP2_SECRET, "miniprogram", Some(super::PLATFORM)).await;
        sim.add_app(LONE_MP, LONE_SECRET, "miniprogram", None).await;
        sim.add_app(APP, APP_SECRET, "mobile_app", Some(super::PLATFORM)).await;
        world.register(MP, MP_SECRET, AppKind::MiniProgram).await;
        world.register(MP2, MP2_SECRET, AppKind::MiniProgram).await;
        world.register_in(LONE_MP, LONE_SECRET, AppKind::MiniProgram, None).await;
        world.register(APP, APP_SECRET, AppKind::MobileApp).await;
        world.app.add_user("alice", PASSWORD).await;
        let (mp_client, _) = world.app.register_client(client("Shop mini-program", Some(MP))).await;
        let mut host = client("Enterprise app", Some(APP));
        host.public = false;
        host.host_app = true;
        host.host_for = vec![MP.into()];
        let (host_client, host_secret) = world.app.register_client(host).await;
        Self { world, mp_client, host_client, host_secret: host_secret.unwrap() }
    }

    async fn exchange(&self, client_id: &str, secret: Option<&str>, form: &[(&str, &str)]) -> (u16, Value) {
        let mut form = form.to_vec();
        form.push(("grant_type", EXCHANGE));
        let response = self.world.app.token_request(client_id, secret, &form).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// A mini-program login: a fresh wx.login code of `user`.
    async fn mp_login(&self, user: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let code = self.world.wechat.jscode(MP, user).await;
        let mut form =
            vec![("subject_token", code.as_str()), ("subject_token_type", JSCODE), ("scope", "openid wechat")];
        form.extend_from_slice(extra);
        self.exchange(&self.mp_client, None, &form).await
    }

    /// The host app logs `user` in with a SendAuth code: its access token.
    async fn host_token(&self, user: &str) -> String {
        let code = self.world.wechat.oauth_code(APP, user, None).await;
        let (status, body) = self
            .exchange(
                &self.host_client,
                Some(&self.host_secret),
                &[("subject_token", &code), ("subject_token_type", OAUTH_CODE)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Alice first logs in to the host app with WeChat (refused: not
    /// linked, but now wxfed knows her WeChat identity); an admin links it.
    async fn link_alice(&self) {
        let code = self.world.wechat.oauth_code(APP, "wx-alice", None).await;
        let (status, body) = self
            .exchange(
                &self.host_client,
                Some(&self.host_secret),
                &[("subject_token", &code), ("subject_token_type", OAUTH_CODE)],
            )
            .await;
        assert_eq!((status, body["reason"].as_str()), (400, Some("wechat_not_linked")));
        let (_, unionid) = self.world.wechat.identity("wx-alice", MP).await;
        let out = wxfed_cli(&["link", "alice", "--unionid", &unionid.unwrap()], &self.world.db.cli_env(), None, None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    async fn host_code(&self, token: &str, appid: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.world.app.url("/api/host/wx-login-code"))
            .bearer_auth(token)
            .form(&[("appid", appid)])
            .send()
            .await
            .unwrap()
    }

    /// The facade, as a mini-program backend calls WeChat.
    async fn facade(&self, appid: &str, secret: &str, code: &str) -> (String, Value) {
        let response = reqwest::Client::new()
            .get(self.world.app.url("/sns/jscode2session"))
            .query(&[("appid", appid), ("secret", secret), ("js_code", code), ("grant_type", "authorization_code")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "WeChat-style: always 200");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        (content_type, serde_json::from_str(&response.text().await.unwrap()).unwrap())
    }

    async fn actions(&self) -> Vec<String> {
        self.world.app.audit_rows().await.into_iter().map(|e| e.action).collect()
    }
}

#[actix_web::test]
async fn a_mini_program_exchanges_its_wx_login_code_for_the_linked_accounts_tokens() {
    let fin = Fin::new(UnlinkedPolicy::Deny).await;
    let (status, body) = fin.mp_login("wx-alice", &[]).await;
    assert_eq!(status, 400);
    assert_eq!((body["error"].as_str(), body["reason"].as_str()), (Some("invalid_grant"), Some("wechat_not_linked")));
    fin.link_alice().await;

    let (status, body) = fin.mp_login("wx-alice", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert!(body.get("session_key").is_none() && !body.to_string().contains("session_key"), "never on this path");
    let claims = decode_claims(body["id_token"].as_str().unwrap());
    let alice =
        fin.world.app.audit_rows().await.into_iter().find(|e| e.action == "user.added").unwrap().account_id.unwrap();
    assert_eq!(claims["sub"], alice);
    assert_eq!(claims["amr"], json!(["wechat"]));
    let (openid, unionid) = fin.world.wechat.identity("wx-alice", MP).await;
    assert_eq!(claims["openid"], openid, "the mini-program's own OpenID");
    assert_eq!(claims["unionid"], unionid.unwrap());

    let doc: Value = fin.world.app.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert!(doc["grant_types_supported"].as_array().unwrap().contains(&json!(EXCHANGE)));
    assert!(doc["token_exchange_subject_token_types_supported"].as_array().unwrap().contains(&json!(JSCODE)));
    assert!(fin.actions().await.contains(&"oidc.token_exchange".to_owned()));
}

#[actix_web::test]
async fn reused_expired_and_foreign_codes_are_refused() {
    let fin = Fin::new(UnlinkedPolicy::Create).await;
    let code = fin.world.wechat.jscode(MP, "wx-alice").await;
    let form = [("subject_token", code.as_str()), ("subject_token_type", JSCODE)];
    assert_eq!(fin.exchange(&fin.mp_client, None, &form).await.0, 200);
    let (status, body) = fin.exchange(&fin.mp_client, None, &form).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("wechat_code_rejected")));

    let expired = fin.world.wechat.jscode(MP, "wx-alice").await;
    fin.world.wechat.advance(6 * 60).await;
    let (_, body) =
        fin.exchange(&fin.mp_client, None, &[("subject_token", &expired), ("subject_token_type", JSCODE)]).await;
    assert_eq!(body["reason"], "wechat_code_rejected");

    let foreign = fin.world.wechat.jscode(MP2, "wx-alice").await;
    let (_, body) =
        fin.exchange(&fin.mp_client, None, &[("subject_token", &foreign), ("subject_token_type", JSCODE)]).await;
    assert_eq!(body["reason"], "wechat_code_rejected");

    // A client tied to no WeChat app cannot use WeChat codes at all.
    let mut plain_web = client("Plain", None);
    plain_web.redirect_uris = vec!["https://rp.example.com/cb".into()];
    let (other, _) = fin.world.app.register_client(plain_web).await;
    let plain_code = fin.world.wechat.jscode(MP, "wx-alice").await;
    let mut settings = client("Plain2", None);
    settings.grant_types = vec![GrantType::TokenExchange];
    let (plain, _) = fin.world.app.register_client(settings).await;
    let (status, body) =
        fin.exchange(&plain, None, &[("subject_token", &plain_code), ("subject_token_type", JSCODE)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
    let (_, body) = fin.exchange(&other, None, &[("subject_token", &plain_code), ("subject_token_type", JSCODE)]).await;
    assert_eq!(body["error"], "unauthorized_client");
}

#[actix_web::test]
async fn bind_asks_for_the_accounts_password_with_a_new_code() {
    let fin = Fin::new(UnlinkedPolicy::Bind).await;
    let (_, body) = fin.mp_login("wx-alice", &[]).await;
    assert_eq!(body["reason"], "bind_required");
    let (_, body) = fin.mp_login("wx-alice", &[("username", "alice"), ("password", "wrong password")]).await;
    assert_eq!(body["reason"], "bad_credentials");
    let (status, body) = fin.mp_login("wx-alice", &[("username", "alice"), ("password", PASSWORD)]).await;
    assert_eq!(status, 200, "{body}");
    // Linked now: no credentials needed any more.
    assert_eq!(fin.mp_login("wx-alice", &[]).await.0, 200);
}

#[actix_web::test]
async fn create_makes_an_account_on_the_first_exchange() {
    let fin = Fin::new(UnlinkedPolicy::Create).await;
    let (status, first) = fin.mp_login("wx-alice", &[]).await;
    assert_eq!(status, 200);
    let (_, second) = fin.mp_login("wx-alice", &[]).await;
    let sub = |b: &Value| decode_claims(b["id_token"].as_str().unwrap())["sub"].clone();
    assert_eq!(sub(&first), sub(&second), "the same account both times");
}

#[actix_web::test]
async fn auto_phone_links_on_a_verified_phone_and_never_on_ambiguity() {
    let fin = Fin::new(UnlinkedPolicy::AutoPhone).await;
    let db = &fin.world.db;
    db.execute("UPDATE accounts SET phone = '+8613800138000', phone_verified = TRUE WHERE username = 'alice'");
    // Without a phone code there is nothing verified to go on.
    let (_, body) = fin.mp_login("wx-alice", &[]).await;
    assert_eq!(body["reason"], "wechat_not_linked");
    let phone = fin.world.wechat.phone_code(MP, "wx-alice").await;
    let (status, body) = fin.mp_login("wx-alice", &[("phone_code", &phone)]).await;
    assert_eq!(status, 200, "{body}");
    let actions = fin.actions().await;
    assert!(actions.contains(&"wechat_identity.phone_verified".to_owned()));
    let link =
        fin.world.app.audit_rows().await.into_iter().rev().find(|e| e.action == "wechat_identity.linked").unwrap();
    assert!(link.detail.contains("auto-phone"));

    // Two accounts with that verified phone: ambiguous, so no link.
    let ambiguous = Fin::new(UnlinkedPolicy::AutoPhone).await;
    ambiguous.world.app.add_user("alice2", PASSWORD).await;
    ambiguous.world.db.execute("UPDATE accounts SET phone = '+8613800138000', phone_verified = TRUE");
    let phone = ambiguous.world.wechat.phone_code(MP, "wx-alice").await;
    let (_, body) = ambiguous.mp_login("wx-alice", &[("phone_code", &phone)]).await;
    assert_eq!(body["reason"], "wechat_not_linked");

    // An unverified phone on the account: never linked on unverified data.
    let unverified = Fin::new(UnlinkedPolicy::AutoPhone).await;
    unverified.world.db.execute("UPDATE accounts SET phone = '+8613800138000', phone_verified = FALSE");
    let phone = unverified.world.wechat.phone_code(MP, "wx-alice").await;
    let (_, body) = unverified.mp_login("wx-alice", &[("phone_code", &phone)]).await;
    assert_eq!(body["reason"], "wechat_not_linked");
}

#[actix_web::test]
async fn scheme_1_host_codes_give_pseudonyms_first_and_real_openids_once_known() {
    let fin = Fin::new(UnlinkedPolicy::Deny).await;
    fin.link_alice().await;
    let token = fin.host_token("wx-alice").await;

    let issued = fin.host_code(&token, MP).await;
    assert_eq!(issued.status(), 200);
    let issued: Value = issued.json().await.unwrap();
    assert_eq!(issued["expires_in"], 300);
    let code = issued["code"].as_str().unwrap().to_owned();
    assert!(code.len() == 32 && code.bytes().all(|b| b.is_ascii_alphanumeric()), "shaped like a wx.login code");

    let (content_type, answer) = fin.facade(MP, MP_SECRET, &code).await;
    assert!(content_type.starts_with("text/plain"), "like WeChat");
    let (real_openid, unionid) = fin.world.wechat.identity("wx-alice", MP).await;
    let pseudo = answer["openid"].as_str().unwrap().to_owned();
    assert!(pseudo.starts_with("wxf") && pseudo != real_openid, "not seen in this mini-program yet: {answer}");
    assert_eq!(answer["unionid"], unionid.clone().unwrap(), "the real UnionID, known from the app login");
    assert_eq!(answer["session_key"].as_str().unwrap().len(), 24);
    // The pseudonym is stable.
    let again: Value = fin.host_code(&token, MP).await.json().await.unwrap();
    assert_eq!(fin.facade(MP, MP_SECRET, again["code"].as_str().unwrap()).await.1["openid"], pseudo);

    // Single use.
    assert_eq!(fin.facade(MP, MP_SECRET, &code).await.1["errcode"], 40163);

    // The person opens the mini-program inside WeChat: its backend's real
    // wx.login code passes through the facade, unchanged...
    let real_code = fin.world.wechat.jscode(MP, "wx-alice").await;
    let (_, passthrough) = fin.facade(MP, MP_SECRET, &real_code).await;
    assert_eq!(passthrough["openid"], real_openid);
    assert_eq!(passthrough["unionid"], unionid.clone().unwrap());
    // ...and from then on host codes give the same OpenID as inside WeChat.
    let after: Value = fin.host_code(&token, MP).await.json().await.unwrap();
    assert_eq!(fin.facade(MP, MP_SECRET, after["code"].as_str().unwrap()).await.1["openid"], real_openid);

    // WeChat's own errors also pass through unchanged.
    assert_eq!(fin.facade(MP, MP_SECRET, &real_code).await.1["errcode"], 40163);
    let origins: Vec<String> = fin
        .world
        .app
        .audit_rows()
        .await
        .into_iter()
        .filter(|e| e.action == "finclip.jscode2session")
        .map(|e| serde_json::from_str::<Value>(&e.detail).unwrap()["origin"].as_str().unwrap().to_owned())
        .collect();
    assert!(origins.contains(&"host".to_owned()) && origins.contains(&"wechat".to_owned()));
    let actions = fin.actions().await;
    assert!(
        actions.contains(&"finclip.host_code_issued".to_owned())
            && actions.contains(&"finclip.host_code_redeemed".to_owned())
    );
}

#[actix_web::test]
async fn the_facade_refuses_like_wechat() {
    let fin = Fin::new(UnlinkedPolicy::Deny).await;
    fin.link_alice().await;
    let token = fin.host_token("wx-alice").await;
    let code: Value = fin.host_code(&token, MP).await.json().await.unwrap();
    let code = code["code"].as_str().unwrap();
    assert_eq!(fin.facade(MP, "wrong-secret", code).await.1["errcode"], 40125);
    assert_eq!(fin.facade("wx00000000000000ff", MP_SECRET, code).await.1["errcode"], 40013);
    assert_eq!(fin.facade(MP2, MP2_SECRET, code).await.1["errcode"], 40029, "another mini-program's code");
    assert!(fin.facade(MP, MP_SECRET, code).await.1.get("openid").is_some(), "still usable by its own");
    let expired: Value = fin.host_code(&token, MP).await.json().await.unwrap();
    fin.world.db.execute("UPDATE host_codes SET expires_at = '2000-01-01 00:00:00' WHERE consumed_at IS NULL");
    assert_eq!(fin.facade(MP, MP_SECRET, expired["code"].as_str().unwrap()).await.1["errcode"], 40029);
    let missing = |query: &str| {
        let url = fin.world.app.url(&format!("/sns/jscode2session?{query}"));
        async move { reqwest::get(url).await.unwrap().json::<Value>().await.unwrap()["errcode"].clone() }
    };
    assert_eq!(missing("secret=x&js_code=y&grant_type=authorization_code").await, 41002);
    assert_eq!(missing(&format!("appid={MP}&js_code=y&grant_type=authorization_code")).await, 41004);
    assert_eq!(missing(&format!("appid={MP}&secret={MP_SECRET}&grant_type=authorization_code")).await, 41008);

    // Host codes only for host apps' tokens, users, and mini-programs.
    let unauthenticated = reqwest::Client::new()
        .post(fin.world.app.url("/api/host/wx-login-code"))
        .form(&[("appid", MP)])
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let (_, mp_tokens) = fin.mp_login("wx-alice", &[]).await;
    assert_eq!(
        fin.host_code(mp_tokens["access_token"].as_str().unwrap(), MP).await.status(),
        403,
        "not a host app's token"
    );
    assert_eq!(fin.host_code(&token, APP).await.status(), 400, "not a mini-program");
    let json_body = reqwest::Client::new()
        .post(fin.world.app.url("/api/host/wx-login-code"))
        .bearer_auth(&token)
        .json(&json!({"appid": MP}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 200, "the appid may come as JSON too");
}

#[actix_web::test]
async fn scheme_2_routed_codes_resolve_one_person_within_an_open_platform() {
    let fin = Fin::new(UnlinkedPolicy::Create).await;
    let (real_openid, unionid) = fin.world.wechat.identity("wx-alice", MP).await;
    let app_code = format!("app:{APP}:{}", fin.world.wechat.oauth_code(APP, "wx-alice", None).await);
    let (_, from_app) = fin.facade(MP, MP_SECRET, &app_code).await;
    assert_eq!(from_app["unionid"], unionid.clone().unwrap());
    assert!(from_app["openid"].as_str().unwrap().starts_with("wxf"), "MP's OpenID not known yet: a stable pseudonym");
    let mp2_code = format!("mp:{MP2}:{}", fin.world.wechat.jscode(MP2, "wx-alice").await);
    let (_, from_mp2) = fin.facade(MP, MP_SECRET, &mp2_code).await;
    assert_eq!(from_mp2["unionid"], from_app["unionid"], "one person across the two apps");
    assert_eq!(from_mp2["openid"], from_app["openid"]);
    // Once the person used MP in WeChat, its real OpenID is returned.
    fin.facade(MP, MP_SECRET, &fin.world.wechat.jscode(MP, "wx-alice").await).await;
    let again = format!("app:{APP}:{}", fin.world.wechat.oauth_code(APP, "wx-alice", None).await);
    assert_eq!(fin.facade(MP, MP_SECRET, &again).await.1["openid"], real_openid);

    // The same routed codes work in the token exchange.
    let routed = format!("mp:{MP2}:{}", fin.world.wechat.jscode(MP2, "wx-alice").await);
    let (status, _) =
        fin.exchange(&fin.mp_client, None, &[("subject_token", &routed), ("subject_token_type", JSCODE)]).await;
    assert_eq!(status, 200);

    // An app outside the Open Platform: a clear error, not a guess.
    let lone = format!("mp:{LONE_MP}:{}", fin.world.wechat.jscode(LONE_MP, "wx-alice").await);
    let (_, answer) = fin.facade(MP, MP_SECRET, &lone).await;
    assert_eq!(answer["errcode"], 99001);
    assert!(answer["errmsg"].as_str().unwrap().contains("UnionID"));
    let lone = format!("mp:{LONE_MP}:{}", fin.world.wechat.jscode(LONE_MP, "wx-alice").await);
    let (status, body) =
        fin.exchange(&fin.mp_client, None, &[("subject_token", &lone), ("subject_token_type", JSCODE)]).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("no_unionid")));
}

#[actix_web::test]
async fn scheme_3_a_trusted_hosts_access_token_is_exchanged_for_the_mini_programs_tokens() {
    let fin = Fin::new(UnlinkedPolicy::Deny).await;
    fin.link_alice().await;
    let host_token = fin.host_token("wx-alice").await;
    let mut trusting = client("Trusting mini-program", Some(MP));
    trusting.trust_host = Some(fin.host_client.clone());
    let (trusting, _) = fin.world.app.register_client(trusting).await;
    let (status, body) = fin
        .exchange(
            &trusting,
            None,
            &[("subject_token", &host_token), ("subject_token_type", ACCESS_TOKEN), ("scope", "openid")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let access = decode_claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], trusting, "the new token is for the mini-program client");
    assert_eq!(access["client_id"], trusting);

    // A client that trusts no host, and a host it does not trust.
    let (status, body) = fin
        .exchange(&fin.mp_client, None, &[("subject_token", &host_token), ("subject_token_type", ACCESS_TOKEN)])
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
    let mut other_host = client("Other host", Some(APP));
    other_host.public = false;
    other_host.host_app = true;
    let (other_host, other_secret) = fin.world.app.register_client(other_host).await;
    let code = fin.world.wechat.oauth_code(APP, "wx-alice", None).await;
    let (_, other_tokens) = fin
        .exchange(&other_host, other_secret.as_deref(), &[("subject_token", &code), ("subject_token_type", OAUTH_CODE)])
        .await;
    let (_, body) = fin
        .exchange(
            &trusting,
            None,
            &[("subject_token", other_tokens["access_token"].as_str().unwrap()), ("subject_token_type", ACCESS_TOKEN)],
        )
        .await;
    assert_eq!(body["reason"], "untrusted_host");
    let (_, body) =
        fin.exchange(&trusting, None, &[("subject_token", "garbage"), ("subject_token_type", ACCESS_TOKEN)]).await;
    assert_eq!(body["error"], "invalid_grant");
    let (_, body) =
        fin.exchange(&trusting, None, &[("subject_token", &host_token), ("subject_token_type", "urn:x:unknown")]).await;
    assert_eq!(body["error"], "invalid_request");
}

#[actix_web::test]
async fn someone_elses_phone_code_never_links_to_their_account() {
    let fin = Fin::new(UnlinkedPolicy::AutoPhone).await;
    fin.world.wechat.add_user("wx-mallory", "Mallory").await;
    fin.world
        .db
        .execute("UPDATE accounts SET phone = '+8613800138000', phone_verified = TRUE WHERE username = 'alice'");
    // Mallory logs in with her own wx.login code but alice's phone code.
    let alices_phone = fin.world.wechat.phone_code(MP, "wx-alice").await;
    let (status, body) = fin.mp_login("wx-mallory", &[("phone_code", &alices_phone)]).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("phone_code_rejected")), "{body}");
    assert!(!fin.actions().await.contains(&"wechat_identity.linked".to_owned()), "nothing linked");
}

#[actix_web::test]
async fn a_host_code_dies_with_its_account_and_the_facade_takes_post_too() {
    let fin = Fin::new(UnlinkedPolicy::Deny).await;
    fin.link_alice().await;
    let token = fin.host_token("wx-alice").await;
    let code: Value = fin.host_code(&token, MP).await.json().await.unwrap();
    let posted = reqwest::Client::new()
        .post(fin.world.app.url("/sns/jscode2session"))
        .query(&[
            ("appid", MP),
            ("secret", MP_SECRET),
            ("js_code", code["code"].as_str().unwrap()),
            ("grant_type", "authorization_code"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.headers()["cache-control"], "no-store");
    let posted: Value = serde_json::from_str(&posted.text().await.unwrap()).unwrap();
    assert!(posted.get("openid").is_some(), "POST answers like GET: {posted}");

    let outstanding: Value = fin.host_code(&token, MP).await.json().await.unwrap();
    let out = wxfed_cli(&["user", "disable", "alice"], &fin.world.db.cli_env(), None, None);
    assert!(out.status.success());
    assert_eq!(fin.facade(MP, MP_SECRET, outstanding["code"].as_str().unwrap()).await.1["errcode"], 40029);
}

/// Issue 10 item 3: a host app mints codes only for the mini-programs
/// registered for it; any other is refused with 403 and audited, until an
/// operator adds it with `wxfed client update --host-for`.
#[actix_web::test]
async fn a_host_app_mints_codes_only_for_its_own_mini_programs() {
    let fin = Fin::new(UnlinkedPolicy::Deny).await;
    fin.link_alice().await;
    let token = fin.host_token("wx-alice").await;
    assert_eq!(fin.host_code(&token, MP).await.status(), 200);

    let refused = fin.host_code(&token, MP2).await;
    assert_eq!(refused.status(), 403, "MP2 is registered, but not hosted by this app");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    let refusals: Vec<Value> = fin
        .world
        .app
        .audit_rows()
        .await
        .into_iter()
        .filter(|e| e.action == "finclip.host_code_issued" && e.outcome == "failure")
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["appid"], MP2);
    assert_eq!(crate::helpers::count(&fin.world.db, "host_codes"), 1, "no code stored for MP2");

    let output = wxfed_cli(
        &["client", "update", &fin.host_client, "--host-for", MP, "--host-for", MP2, "--json"],
        &fin.world.db.cli_env(),
        None,
        None,
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let updated: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(updated["host_for"], json!([MP, MP2]));
    assert_eq!(fin.host_code(&token, MP2).await.status(), 200);

    // A host app that hosts nothing mints nothing.
    let output =
        wxfed_cli(&["client", "update", &fin.host_client, "--no-host-for"], &fin.world.db.cli_env(), None, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(fin.host_code(&token, MP).await.status(), 403);
}

/// Issue 10 item 6: a routed code for an app outside the client's Open
/// Platform (or an unregistered one) is refused before WeChat sees it, so
/// the code is not burnt: its own app can still redeem it afterwards.
#[actix_web::test]
async fn routed_codes_are_checked_before_wechat_redeems_them() {
    let fin = Fin::new(UnlinkedPolicy::Create).await;
    let inner = fin.world.wechat.jscode(LONE_MP, "wx-alice").await;
    let lone = format!("mp:{LONE_MP}:{inner}");
    let (status, body) =
        fin.exchange(&fin.mp_client, None, &[("subject_token", &lone), ("subject_token_type", JSCODE)]).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("no_unionid")));
    let (_, answer) = fin.facade(MP, MP_SECRET, &lone).await;
    assert_eq!(answer["errcode"], 99001, "the facade refuses it the same way: {answer}");
    // Not redeemed at WeChat: the mini-program it belongs to still can.
    let (_, own) = fin.facade(LONE_MP, LONE_SECRET, &inner).await;
    assert!(own.get("openid").is_some(), "the code was not consumed by the refusals: {own}");

    // A routed code naming the wrong kind of app is refused before WeChat too.
    let inner = fin.world.wechat.jscode(MP2, "wx-alice").await;
    let wrong_kind = format!("app:{MP2}:{inner}");
    let (status, body) =
        fin.exchange(&fin.mp_client, None, &[("subject_token", &wrong_kind), ("subject_token_type", JSCODE)]).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("bad_routed_code")));
    let (_, own) = fin.facade(MP2, MP2_SECRET, &inner).await;
    assert!(own.get("openid").is_some(), "still redeemable by its own app: {own}");
}

/// Issue 10 item 7: once a client has spent its WeChat call budget, a
/// token exchange is refused with 429 + Retry-After (RFC 6585 §4) before
/// WeChat is called, so junk codes cannot burn the app's WeChat quota.
#[actix_web::test]
async fn a_spent_wechat_budget_refuses_the_exchange_before_calling_wechat() {
    let fin = Fin::with(UnlinkedPolicy::Deny, |s| s.wechat_calls_per_client_per_minute = 2).await;
    for _ in 0..2 {
        assert_eq!(fin.mp_login("wx-alice", &[]).await.0, 400, "within the budget WeChat is asked");
    }
    let calls = fin.world.wechat.calls("/sns/jscode2session").await;
    assert_eq!(calls, 2);
    let code = fin.world.wechat.jscode(MP, "wx-alice").await;
    let form = [("subject_token", code.as_str()), ("subject_token_type", JSCODE), ("grant_type", EXCHANGE)];
    let refused = fin.world.app.token_request(&fin.mp_client, None, &form).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(fin.world.wechat.calls("/sns/jscode2session").await, calls, "WeChat was not called");
}

/// The facade spends the same budget (per app) and answers as WeChat
/// itself would: errcode 45011, without calling WeChat.
#[actix_web::test]
async fn a_spent_wechat_budget_gives_the_facade_wechats_45011() {
    let fin = Fin::with(UnlinkedPolicy::Deny, |s| s.wechat_calls_per_client_per_minute = 1).await;
    let first = fin.world.wechat.jscode(MP, "wx-alice").await;
    assert!(fin.facade(MP, MP_SECRET, &first).await.1["openid"].is_string());
    let calls = fin.world.wechat.calls("/sns/jscode2session").await;
    let second = fin.world.wechat.jscode(MP, "wx-alice").await;
    let response = reqwest::Client::new()
        .get(fin.world.app.url("/sns/jscode2session"))
        .query(&[
            ("appid", MP),
            ("secret", MP_SECRET),
            ("js_code", second.as_str()),
            ("grant_type", "authorization_code"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["errcode"], 45011);
    assert_eq!(fin.world.wechat.calls("/sns/jscode2session").await, calls, "WeChat was not called");
}

//! What the provider signs: RFC 9068 access tokens and OIDC ID tokens, and
//! how it checks them when they come back (userinfo, introspection,
//! revocation, `id_token_hint`).

use chrono::{DateTime, Duration, Utc};
use openidconnect::core::CoreGenderClaim;
use openidconnect::{
    AccessToken, AdditionalClaims, Audience, AuthenticationMethodReference, EndUserEmail, EndUserName,
    EndUserPhoneNumber, EndUserUsername, IdTokenClaims, IssuerUrl, Nonce, StandardClaims, SubjectIdentifier,
};
use serde::{Deserialize, Serialize};

use super::error::OAuthError;
use super::keys::KeySet;
use super::signing::{SigningAlgorithm, verify_jws};
use crate::accounts::Account;
use crate::db::{self, DbError};
use crate::state::AppState;
use crate::wechat::claims::WechatClaims;

/// RFC 9068 §2.1: the media type of JWT access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The grant it was issued from (wxfed's own claim): revoking the grant
    /// revokes the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

impl AccessTokenClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// What an access token is issued for.
pub struct AccessTokenRequest<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub auth_time: Option<DateTime<Utc>>,
    pub sid: Option<&'a str>,
    pub grant_id: Option<&'a str>,
    pub lifetime_secs: u64,
}

/// Signs an access token with the active key of `alg` (the client's
/// choice; RS256 by default, what every resource server can verify).
/// Returns the token and its claims.
pub fn mint_access_token(
    keys: &KeySet,
    alg: SigningAlgorithm,
    request: &AccessTokenRequest<'_>,
) -> Result<(String, AccessTokenClaims), OAuthError> {
    let claims = access_token_claims(request);
    let token = sign_access_token(keys, alg, &claims)?;
    Ok((token, claims))
}

/// The claims of a new access token (a fresh `jti`), not yet signed.
pub fn access_token_claims(request: &AccessTokenRequest<'_>) -> AccessTokenClaims {
    let now = Utc::now().timestamp();
    AccessTokenClaims {
        iss: request.issuer.to_owned(),
        sub: request.subject.to_owned(),
        aud: request.client_id.to_owned(),
        client_id: request.client_id.to_owned(),
        scope: request.scope.to_owned(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        exp: now + i64::try_from(request.lifetime_secs).unwrap_or(600),
        auth_time: request.auth_time.map(|t| t.timestamp()),
        sid: request.sid.map(str::to_owned),
        gid: request.grant_id.map(str::to_owned),
    }
}

/// Signs access token claims with the active key of `alg`.
pub fn sign_access_token(
    keys: &KeySet,
    alg: SigningAlgorithm,
    claims: &AccessTokenClaims,
) -> Result<String, OAuthError> {
    let key = keys.signing_key(alg).ok_or_else(|| OAuthError::server_error("no active signing key"))?;
    key.sign_jwt(ACCESS_TOKEN_TYP, claims).map_err(OAuthError::server_error)
}

/// Checks an access token's signature, type, issuer and expiry. Whether it
/// was revoked is a database question the caller asks next.
pub fn verify_access_token(keys: &KeySet, issuer: &str, token: &str) -> Result<AccessTokenClaims, OAuthError> {
    let invalid = || OAuthError::invalid_token("the access token is invalid or expired");
    let (_, payload) = verify_jws(token, Some(ACCESS_TOKEN_TYP), |kid| keys.by_kid(kid)).map_err(|_| invalid())?;
    let claims: AccessTokenClaims = serde_json::from_slice(&payload).map_err(|_| invalid())?;
    if claims.iss != issuer || claims.exp <= Utc::now().timestamp() {
        return Err(invalid());
    }
    Ok(claims)
}

/// Checks a presented access token fully: signature, expiry, and that
/// neither it nor its grant was revoked (RFC 7009 §2, RFC 9068 §4).
pub async fn live_access_token(state: &AppState, token: &str) -> Result<AccessTokenClaims, OAuthError> {
    let claims = verify_access_token(&state.keys.current(), &state.settings.issuer, token)?;
    let (jti, grant) = (claims.jti.clone(), claims.gid.clone());
    let live = db::run(&state.db, move |conn| {
        db::grants::access_token_is_live(conn, &jti, grant.as_deref()).map_err(DbError::from)
    })
    .await?;
    if !live {
        return Err(OAuthError::invalid_token("the access token was revoked"));
    }
    Ok(claims)
}

/// Extra ID token claims: the session id (OIDC Front-/Back-Channel
/// Logout) and, with scope `wechat`, the WeChat identity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(flatten)]
    pub wechat: WechatClaims,
}
impl AdditionalClaims for ExtraClaims {}

/// Userinfo's extra claims (no session id there).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserinfoExtraClaims {
    #[serde(flatten)]
    pub wechat: WechatClaims,
}
impl AdditionalClaims for UserinfoExtraClaims {}

pub type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJwsSigningAlgorithm,
>;

/// The standard claims a scope releases (OIDC Core §5.4). `sub` is the
/// account's stable id.
pub fn standard_claims(account: &Account, scopes: &[&str]) -> StandardClaims<CoreGenderClaim> {
    let mut claims = StandardClaims::new(SubjectIdentifier::new(account.id.as_str().to_owned()));
    if scopes.contains(&"profile") {
        let name = account.display_name.clone().unwrap_or_else(|| account.username.clone());
        claims = claims
            .set_name(Some(EndUserName::new(name).into()))
            .set_preferred_username(Some(EndUserUsername::new(account.username.clone())))
            .set_updated_at(Some(account.updated_at));
    }
    if scopes.contains(&"email")
        && let Some(email) = &account.email
    {
        claims =
            claims.set_email(Some(EndUserEmail::new(email.clone()))).set_email_verified(Some(account.email_verified));
    }
    if scopes.contains(&"phone")
        && let Some(phone) = &account.phone
    {
        claims = claims
            .set_phone_number(Some(EndUserPhoneNumber::new(phone.clone())))
            .set_phone_number_verified(Some(account.phone_verified));
    }
    claims
}

/// What an ID token is issued for.
pub struct IdTokenRequest<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub alg: SigningAlgorithm,
    pub account: &'a Account,
    pub scopes: &'a [&'a str],
    pub nonce: Option<&'a str>,
    pub auth_time: Option<DateTime<Utc>>,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub lifetime_secs: u64,
    pub wechat: WechatClaims,
}

/// Signs an ID token with the client's algorithm (OIDC Core §2), with
/// `at_hash` when an access token comes with it.
pub fn mint_id_token(keys: &KeySet, request: &IdTokenRequest<'_>) -> Result<String, OAuthError> {
    let key = keys.signing_key(request.alg).ok_or_else(|| OAuthError::server_error("no active signing key"))?;
    let issuer = IssuerUrl::new(request.issuer.to_owned()).map_err(OAuthError::server_error)?;
    let now = Utc::now();
    let lifetime = Duration::seconds(i64::try_from(request.lifetime_secs).unwrap_or(3600));
    let mut claims = IdTokenClaims::new(
        issuer,
        vec![Audience::new(request.client_id.to_owned())],
        now + lifetime,
        now,
        standard_claims(request.account, request.scopes),
        ExtraClaims { sid: request.sid.map(str::to_owned), wechat: request.wechat.clone() },
    )
    .set_authorized_party(Some(openidconnect::ClientId::new(request.client_id.to_owned())))
    .set_auth_time(request.auth_time)
    .set_nonce(request.nonce.map(|n| Nonce::new(n.to_owned())));
    if !request.amr.is_empty() {
        claims = claims.set_auth_method_refs(Some(
            request.amr.iter().map(|m| AuthenticationMethodReference::new(m.clone())).collect(),
        ));
    }
    let access_token = request.access_token.map(|t| AccessToken::new(t.to_owned()));
    let token = IdToken::new(claims, key, request.alg.to_jws(), access_token.as_ref(), None)
        .map_err(OAuthError::server_error)?;
    Ok(token.to_string())
}

/// The parts of an `id_token_hint` wxfed relies on.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenHint {
    pub sub: String,
    pub aud: serde_json::Value,
    pub iss: String,
    #[serde(default)]
    pub sid: Option<String>,
}

impl IdTokenHint {
    /// The client it was issued to (single audience, or `azp`).
    pub fn client_id(&self) -> Option<String> {
        match &self.aud {
            serde_json::Value::String(aud) => Some(aud.clone()),
            serde_json::Value::Array(list) if list.len() == 1 => list[0].as_str().map(str::to_owned),
            _ => None,
        }
    }
}

/// Checks an ID token wxfed issued, as a hint (OIDC Core §3.1.2.1): the
/// signature and issuer must be right, and it must be an ID token — not an
/// access token (`typ` `at+jwt`, RFC 9068 §2.1) or any other JWT signed
/// with the same keys — for a single audience, `audience` when given (the
/// client making the request). Expiry does not matter: OIDC allows an
/// expired ID token as a hint.
pub fn verify_id_token_hint(keys: &KeySet, issuer: &str, token: &str, audience: Option<&str>) -> Option<IdTokenHint> {
    let (header, payload) = verify_jws(token, None, |kid| keys.by_kid(kid)).ok()?;
    // wxfed's ID tokens carry no `typ` (openidconnect writes none); RFC 7519
    // §5.1 allows "JWT". Everything else, `at+jwt` first, is another kind.
    if header.typ.as_deref().is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT")) {
        return None;
    }
    let raw: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&payload).ok()?;
    // Claims only access tokens have (RFC 9068 §2.2), and the ones every ID
    // token has (OIDC Core §2).
    if raw.contains_key("client_id") || raw.contains_key("scope") {
        return None;
    }
    if !raw.get("exp").is_some_and(serde_json::Value::is_i64) || !raw.get("iat").is_some_and(serde_json::Value::is_i64)
    {
        return None;
    }
    let hint: IdTokenHint = serde_json::from_value(serde_json::Value::Object(raw)).ok()?;
    let client_id = hint.client_id()?;
    if hint.iss != issuer || audience.is_some_and(|expected| expected != client_id) {
        return None;
    }
    Some(hint)
}

/// JWTs presented as access tokens or as `id_token_hint` (issue 10): any
/// string is refused (`invalid_token`, or no hint) unless it is a token of
/// the right kind that wxfed signed, never a panic. Claims are generated
/// around the edges (wrong types, foreign issuers, audiences, `typ`s) and
/// the verdict is compared with what the rules say it must be.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod proptests {
    use std::sync::OnceLock;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::oidc::error::ErrorCode;
    use crate::oidc::signing::SigningKey;

    const ISSUER: &str = "https://id.example.com";
    const CLIENT: &str = "client-1";

    // An ES256 and an EdDSA key: cheap to make and to use.
    fn keys() -> &'static (KeySet, Vec<SigningKey>) {
        static KEYS: OnceLock<(KeySet, Vec<SigningKey>)> = OnceLock::new();
        KEYS.get_or_init(|| {
            let keys = vec![
                SigningKey::generate(SigningAlgorithm::Es256).unwrap(),
                SigningKey::generate(SigningAlgorithm::EdDsa).unwrap(),
            ];
            (KeySet::of(keys.clone()), keys)
        })
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A compact JWS over any header and payload, signed by `key`.
    fn jws(key: &SigningKey, header: &Value, payload: &[u8]) -> String {
        let signed = format!("{}.{}", b64(&serde_json::to_vec(header).unwrap()), b64(payload));
        let signature = key.sign_message(signed.as_bytes()).unwrap();
        format!("{signed}.{}", b64(&signature))
    }

    fn now() -> i64 {
        Utc::now().timestamp()
    }

    /// Times well away from now (so the verdict cannot flip while a case
    /// runs), and values of the wrong type.
    fn time_value() -> impl Strategy<Value = Value> {
        let now = now();
        prop_oneof![
            (-100_000i64..-30).prop_map(move |d| json!(now + d)),
            (30i64..100_000).prop_map(move |d| json!(now + d)),
            any::<i64>().prop_map(Value::from),
            Just(json!(1.5)),
            Just(json!(u64::MAX)),
            Just(json!("1700000000")),
            Just(Value::Null),
        ]
    }

    fn text_or_junk(text: impl Strategy<Value = String>) -> impl Strategy<Value = Value> {
        prop_oneof![4 => text.prop_map(Value::from), 1 => Just(Value::Null), 1 => Just(json!(12)), 1 => Just(json!({}))]
    }

    prop_compose! {
        fn claims()(
            iss in proptest::option::weighted(0.9, prop_oneof![
                4 => Just(json!(ISSUER)),
                1 => Just(json!("https://evil.example.com")),
                1 => Just(json!(7)),
            ]),
            sub in proptest::option::weighted(0.9, text_or_junk("\\PC{0,20}")),
            aud in proptest::option::weighted(0.9, prop_oneof![
                4 => Just(json!(CLIENT)),
                1 => Just(json!("other")),
                2 => Just(json!([CLIENT])),
                1 => Just(json!([CLIENT, "other"])),
                1 => Just(json!([])),
                1 => Just(json!(7)),
            ]),
            client_id in proptest::option::of(text_or_junk(Just(CLIENT.to_owned()))),
            scope in proptest::option::of(text_or_junk("[a-z ]{0,20}")),
            jti in proptest::option::weighted(0.8, text_or_junk("[a-f0-9-]{1,36}")),
            iat in proptest::option::weighted(0.9, time_value()),
            exp in proptest::option::weighted(0.9, time_value()),
            sid in proptest::option::of(text_or_junk("[a-z0-9]{1,10}")),
        ) -> Map<String, Value> {
            let mut map = Map::new();
            for (name, value) in [
                ("iss", iss), ("sub", sub), ("aud", aud), ("client_id", client_id), ("scope", scope),
                ("jti", jti), ("iat", iat), ("exp", exp), ("sid", sid),
            ] {
                if let Some(value) = value {
                    map.insert(name.to_owned(), value);
                }
            }
            map
        }
    }

    /// A header: mostly the key's own `alg` and `kid`, sometimes not.
    fn header(key: &SigningKey) -> impl Strategy<Value = Value> {
        let (alg, kid) = (key.algorithm().as_str().to_owned(), key.kid().to_owned());
        (
            prop_oneof![6 => Just(alg), 1 => Just("none".to_owned()), 1 => Just("HS256".to_owned()), 1 => Just("RS256".to_owned())],
            proptest::option::weighted(0.9, prop_oneof![6 => Just(kid), 1 => "[A-Za-z0-9_-]{1,43}"]),
            proptest::option::of(prop_oneof![
                Just("at+jwt"), Just("AT+JWT"), Just("JWT"), Just("jwt"), Just("JOSE"), Just("id_token+jwt"),
            ]),
        )
            .prop_map(|(alg, kid, typ)| {
                let mut h = json!({ "alg": alg });
                if let Some(kid) = kid {
                    h["kid"] = json!(kid);
                }
                if let Some(typ) = typ {
                    h["typ"] = json!(typ);
                }
                h
            })
    }

    fn signed_by_us(key: &SigningKey, header: &Value) -> bool {
        header["alg"] == key.algorithm().as_str() && header["kid"] == key.kid()
    }

    fn is_text(claims: &Map<String, Value>, name: &str) -> bool {
        claims.get(name).is_some_and(Value::is_string)
    }

    fn is_i64(claims: &Map<String, Value>, name: &str) -> bool {
        claims.get(name).is_some_and(Value::is_i64)
    }

    fn no_text_or_null(claims: &Map<String, Value>, name: &str) -> bool {
        claims.get(name).is_none_or(|v| v.is_null() || v.is_string())
    }

    /// RFC 9068 §2.1/§2.2 and wxfed's own claims, as `verify_access_token` must apply them.
    fn valid_access_token(key: &SigningKey, header: &Value, claims: &Map<String, Value>) -> bool {
        signed_by_us(key, header)
            && header["typ"] == "at+jwt"
            && claims.get("iss") == Some(&json!(ISSUER))
            && ["sub", "aud", "client_id", "scope", "jti"].iter().all(|n| is_text(claims, n))
            && is_i64(claims, "iat")
            && claims.get("exp").and_then(Value::as_i64).is_some_and(|exp| exp > now())
            && no_text_or_null(claims, "sid")
    }

    /// OIDC Core §3.1.2.1 and issue 10 item 5, as `verify_id_token_hint` must apply them.
    fn valid_hint(key: &SigningKey, header: &Value, claims: &Map<String, Value>) -> bool {
        let typ_ok = header.get("typ").is_none_or(|t| t.as_str().is_some_and(|t| t.eq_ignore_ascii_case("JWT")));
        let single_audience = matches!(claims.get("aud"), Some(a) if *a == json!(CLIENT) || *a == json!([CLIENT]));
        signed_by_us(key, header)
            && typ_ok
            && !claims.contains_key("client_id")
            && !claims.contains_key("scope")
            && is_i64(claims, "exp")
            && is_i64(claims, "iat")
            && claims.get("iss") == Some(&json!(ISSUER))
            && is_text(claims, "sub")
            && single_audience
            && no_text_or_null(claims, "sid")
    }

    fn invalid_token(result: Result<AccessTokenClaims, OAuthError>) -> Result<(), TestCaseError> {
        if let Err(error) = result {
            prop_assert_eq!(error.code, ErrorCode::InvalidToken);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn any_text_is_refused(token in any::<String>()) {
            let (set, _) = keys();
            prop_assert!(verify_access_token(set, ISSUER, &token).is_err());
            invalid_token(verify_access_token(set, ISSUER, &token))?;
            prop_assert!(verify_id_token_hint(set, ISSUER, &token, Some(CLIENT)).is_none());
        }

        #[test]
        fn jwt_shaped_junk_is_refused(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..5),
            raw_text in proptest::bool::ANY,
        ) {
            // Dots and base64url segments of random bytes, or of random text.
            let token = parts
                .iter()
                .map(|p| if raw_text { String::from_utf8_lossy(p).into_owned() } else { b64(p) })
                .collect::<Vec<_>>()
                .join(".");
            let (set, _) = keys();
            invalid_token(verify_access_token(set, ISSUER, &token))?;
            prop_assert!(verify_access_token(set, ISSUER, &token).is_err());
            prop_assert!(verify_id_token_hint(set, ISSUER, &token, Some(CLIENT)).is_none());
        }

        #[test]
        fn signed_junk_payloads_are_refused(
            which in 0usize..2,
            payload in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..80),
                Just(b"null".to_vec()),
                Just(b"[]".to_vec()),
                Just(b"\"text\"".to_vec()),
                Just(b"{\"iss\":".to_vec()),
            ],
        ) {
            let (set, list) = keys();
            let key = &list[which];
            for typ in ["at+jwt", "JWT"] {
                let token = jws(key, &json!({"alg": key.algorithm().as_str(), "kid": key.kid(), "typ": typ}), &payload);
                invalid_token(verify_access_token(set, ISSUER, &token))?;
                prop_assert!(verify_access_token(set, ISSUER, &token).is_err());
                prop_assert!(verify_id_token_hint(set, ISSUER, &token, Some(CLIENT)).is_none());
            }
        }

        #[test]
        fn signed_tokens_are_judged_by_the_rules(
            (which, header, claims) in (0usize..2).prop_flat_map(|which| (Just(which), header(&keys().1[which]), claims())),
        ) {
            let (set, list) = keys();
            let key = &list[which];
            let token = jws(key, &header, &serde_json::to_vec(&claims).unwrap());

            let access = verify_access_token(set, ISSUER, &token);
            prop_assert_eq!(access.is_ok(), valid_access_token(key, &header, &claims), "{} {:?}", header, claims);
            invalid_token(access)?;
            let hint = verify_id_token_hint(set, ISSUER, &token, Some(CLIENT));
            prop_assert_eq!(hint.is_some(), valid_hint(key, &header, &claims), "{} {:?}", header, claims);
            if let Some(hint) = hint {
                prop_assert_eq!(hint.client_id(), Some(CLIENT.to_owned()));
                prop_assert_eq!(Some(json!(hint.sub)), claims.get("sub").cloned());
            }
            // Another client's hint is not this client's.
            prop_assert!(verify_id_token_hint(set, ISSUER, &token, Some("another-client")).is_none());
        }

        #[test]
        fn minted_access_tokens_round_trip_and_are_no_hint(
            which in 0usize..2,
            subject in "\\PC{1,30}",
            scope in "[a-z]{1,8}( [a-z]{1,8}){0,3}",
            sid in proptest::option::of("[a-z0-9]{1,16}"),
        ) {
            let (set, list) = keys();
            let alg = list[which].algorithm();
            let (token, claims) = mint_access_token(set, alg, &AccessTokenRequest {
                issuer: ISSUER,
                subject: &subject,
                client_id: CLIENT,
                scope: &scope,
                auth_time: None,
                sid: sid.as_deref(),
                grant_id: None,
                lifetime_secs: 600,
            }).unwrap();
            let back = verify_access_token(set, ISSUER, &token).unwrap();
            prop_assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&claims).unwrap());
            prop_assert_eq!(back.sub, subject);
            // Issue 10 item 5: an access token is never an id_token_hint.
            prop_assert!(verify_id_token_hint(set, ISSUER, &token, Some(CLIENT)).is_none());
            prop_assert!(verify_id_token_hint(set, ISSUER, &token, None).is_none());
            // And another issuer's access token it is not.
            prop_assert!(verify_access_token(set, "https://other.example.com", &token).is_err());
        }

        #[test]
        fn any_changed_character_invalidates_a_token(which in 0usize..2, at in any::<proptest::sample::Index>(), to in "[A-Za-z0-9_.-]") {
            let (set, list) = keys();
            let (token, _) = mint_access_token(set, list[which].algorithm(), &AccessTokenRequest {
                issuer: ISSUER, subject: "alice", client_id: CLIENT, scope: "api", auth_time: None, sid: None,
                grant_id: None, lifetime_secs: 600,
            }).unwrap();
            let i = at.index(token.len());
            let mut changed = token.clone().into_bytes();
            changed[i] = to.as_bytes()[0];
            let changed = String::from_utf8(changed).unwrap();
            prop_assume!(changed != token);
            invalid_token(verify_access_token(set, ISSUER, &changed))?;
            prop_assert!(verify_access_token(set, ISSUER, &changed).is_err(), "changed at {}", i);
        }
    }
}

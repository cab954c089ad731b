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

/// Signs an access token with the active RS256 key (what every resource
/// server can verify). Returns the token and its claims.
pub fn mint_access_token(
    keys: &KeySet,
    request: &AccessTokenRequest<'_>,
) -> Result<(String, AccessTokenClaims), OAuthError> {
    let claims = access_token_claims(request);
    let token = sign_access_token(keys, &claims)?;
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

/// Signs access token claims with the active RS256 key.
pub fn sign_access_token(keys: &KeySet, claims: &AccessTokenClaims) -> Result<String, OAuthError> {
    let key =
        keys.signing_key(SigningAlgorithm::Rs256).ok_or_else(|| OAuthError::server_error("no active RS256 key"))?;
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
/// signature and issuer must be right; expiry does not matter.
pub fn verify_id_token_hint(keys: &KeySet, issuer: &str, token: &str) -> Option<IdTokenHint> {
    let (_, payload) = verify_jws(token, None, |kid| keys.by_kid(kid)).ok()?;
    let hint: IdTokenHint = serde_json::from_slice(&payload).ok()?;
    (hint.iss == issuer).then_some(hint)
}

//! `/.well-known/openid-configuration` (OIDC Discovery 1.0 §3, RFC 8414)
//! and the JWKS. Only what wxfed really supports is advertised.

use actix_web::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, IssuerUrl, JsonWebKeySetUrl, ProviderMetadata, ResponseTypes, Scope, TokenUrl,
    UserInfoUrl,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::clients::KNOWN_SCOPES;
use super::keys::JWKS_MAX_AGE_SECS;
use super::signing::SigningAlgorithm;
use crate::state::AppState;

/// Endpoint paths, relative to the issuer (one list for every surface).
pub use crate::http::paths;

/// Metadata openidconnect has no field for.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExtraMetadata {
    code_challenge_methods_supported: Vec<String>,
    revocation_endpoint: String,
    revocation_endpoint_auth_methods_supported: Vec<String>,
    introspection_endpoint: String,
    introspection_endpoint_auth_methods_supported: Vec<String>,
    end_session_endpoint: String,
    /// RFC 9207: the authorization response carries `iss`.
    authorization_response_iss_parameter_supported: bool,
    prompt_values_supported: Vec<String>,
    /// The `subject_token_type`s the token exchange grant accepts (RFC 8693).
    token_exchange_subject_token_types_supported: Vec<String>,
    /// OpenID Connect Back-Channel Logout 1.0 §2.1: logout tokens are sent
    /// to a client's `backchannel_logout_uri`, and they carry `sid` (which
    /// ID tokens carry too).
    backchannel_logout_supported: bool,
    backchannel_logout_session_supported: bool,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The discovery document for `issuer`.
pub fn document(issuer: &str) -> Result<serde_json::Value, String> {
    let url = |path: &str| format!("{issuer}{path}");
    let secret_methods = strings(&["client_secret_basic", "client_secret_post"]);
    let extra = ExtraMetadata {
        code_challenge_methods_supported: strings(&["S256"]),
        revocation_endpoint: url(paths::REVOKE),
        revocation_endpoint_auth_methods_supported: strings(&["client_secret_basic", "client_secret_post", "none"]),
        introspection_endpoint: url(paths::INTROSPECT),
        introspection_endpoint_auth_methods_supported: secret_methods,
        end_session_endpoint: url(paths::END_SESSION),
        authorization_response_iss_parameter_supported: true,
        prompt_values_supported: strings(&["none", "login", "consent"]),
        token_exchange_subject_token_types_supported: strings(&[
            crate::oidc::token::exchange::WECHAT_JSCODE,
            crate::oidc::token::exchange::WECHAT_OAUTH_CODE,
            crate::oidc::token::exchange::ACCESS_TOKEN,
        ]),
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
    };
    let metadata = Metadata::new(
        IssuerUrl::new(issuer.to_owned()).map_err(|e| e.to_string())?,
        AuthUrl::new(url(paths::AUTHORIZE)).map_err(|e| e.to_string())?,
        JsonWebKeySetUrl::new(url(paths::JWKS)).map_err(|e| e.to_string())?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        SigningAlgorithm::ALL.iter().map(|a| a.to_jws()).collect(),
        extra,
    )
    .set_token_endpoint(Some(TokenUrl::new(url(paths::TOKEN)).map_err(|e| e.to_string())?))
    .set_userinfo_endpoint(Some(UserInfoUrl::new(url(paths::USERINFO)).map_err(|e| e.to_string())?))
    .set_scopes_supported(Some(KNOWN_SCOPES.iter().map(|s| Scope::new(s.to_string())).collect()))
    .set_response_modes_supported(Some(vec![CoreResponseMode::Query, CoreResponseMode::FormPost]))
    .set_grant_types_supported(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
        CoreGrantType::ClientCredentials,
        CoreGrantType::Extension(crate::oidc::clients::TOKEN_EXCHANGE_GRANT.into()),
    ]))
    .set_token_endpoint_auth_methods_supported(Some(vec![
        CoreClientAuthMethod::ClientSecretBasic,
        CoreClientAuthMethod::ClientSecretPost,
        CoreClientAuthMethod::None,
    ]))
    .set_claim_types_supported(Some(vec![CoreClaimType::Normal]))
    .set_claims_supported(Some(
        [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            "at_hash",
            "sid",
            "name",
            "preferred_username",
            "updated_at",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
        ]
        .iter()
        .map(|c| CoreClaimName::new(c.to_string()))
        .collect(),
    ))
    .set_request_parameter_supported(Some(false))
    .set_request_uri_parameter_supported(Some(false))
    .set_claims_parameter_supported(Some(false));
    serde_json::to_value(&metadata).map_err(|e| e.to_string())
}

/// How long RPs may cache the discovery document: it changes only with a
/// new release or issuer, never with a key rotation.
pub const DISCOVERY_MAX_AGE_SECS: u64 = 300;

/// A document served as-is: serialized once (the discovery document per
/// process, the JWKS per key-set load), with a strong ETag over its bytes.
#[derive(Clone, Debug)]
pub struct StaticDocument {
    body: Bytes,
    etag: String,
}

impl StaticDocument {
    pub fn new(body: Vec<u8>) -> Self {
        // A strong validator (RFC 9110 §8.8.1): equal tags mean equal bytes.
        // 128 bits of SHA-256 is plenty to tell versions apart.
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]));
        Self { body: Bytes::from(body), etag }
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The quoted entity tag, as sent in `ETag`.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// Whether `If-None-Match` names this version (RFC 9110 §13.1.2: weak
    /// comparison, so `W/"x"` matches `"x"`; `*` matches any).
    fn matches(&self, if_none_match: &str) -> bool {
        if_none_match.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == self.etag)
    }

    /// 200 with the bytes, or 304 when the client already holds them.
    /// Both carry the validator and the caching policy (RFC 9110 §15.4.5).
    pub fn respond(&self, request: &HttpRequest, max_age_secs: u64) -> HttpResponse {
        let fresh = request
            .headers()
            .get(IF_NONE_MATCH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| self.matches(value));
        let mut response = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
        response
            .insert_header((ETAG, self.etag.clone()))
            .insert_header((CACHE_CONTROL, format!("public, max-age={max_age_secs}")));
        if fresh { response.finish() } else { response.content_type("application/json").body(self.body.clone()) }
    }
}

/// The discovery document for `issuer`, serialized.
pub fn static_document(issuer: &str) -> Result<StaticDocument, String> {
    let doc = document(issuer)?;
    serde_json::to_vec(&doc).map(StaticDocument::new).map_err(|e| e.to_string())
}

pub async fn openid_configuration(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match state.discovery.as_ref() {
        Ok(doc) => doc.respond(&request, DISCOVERY_MAX_AGE_SECS),
        Err(error) => {
            tracing::error!(%error, "cannot build the discovery document");
            HttpResponse::InternalServerError().finish()
        }
    }
}

pub async fn jwks(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // max-age is part of a new key's publication lead (keys::publication_lead),
    // so an RP honouring it sees a rotated-in key before anything it signed.
    state.keys.current().jwks().respond(&request, JWKS_MAX_AGE_SECS)
}

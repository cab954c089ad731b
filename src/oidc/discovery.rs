//! `/.well-known/openid-configuration` (OIDC Discovery 1.0 §3, RFC 8414)
//! and the JWKS. Only what wxfed really supports is advertised.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
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

use super::clients::KNOWN_SCOPES;
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

pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    match document(&state.settings.issuer) {
        Ok(doc) => HttpResponse::Ok().insert_header((CACHE_CONTROL, "public, max-age=300")).json(doc),
        Err(error) => {
            tracing::error!(%error, "cannot build the discovery document");
            HttpResponse::InternalServerError().finish()
        }
    }
}

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let keys = state.keys.current();
    // Short cache: a rotated-in key must reach relying parties quickly.
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=60"))
        .content_type("application/json")
        .body(keys.jwks_json().to_owned())
}

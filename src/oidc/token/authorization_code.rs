//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6).

use oauth2::{PkceCodeChallenge, PkceCodeVerifier};

use super::issue::{Issuance, TokenResponse, active_account, decide_then_sign, prepare, revoke_for_reuse};
use crate::audit::Action;
use crate::db;
use crate::http::RequestMeta;
use crate::oidc::clients::{Client, GrantType};
use crate::oidc::error::OAuthError;
use crate::oidc::params::Params;
use crate::secrets::{constant_time_eq, sha256_hex};
use crate::state::AppState;

/// RFC 7636 §4.1: 43–128 characters of [A-Z a-z 0-9 - . _ ~]. Checked
/// before hashing (oauth2's helper panics on other lengths).
fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    if !is_valid_verifier(verifier) {
        return false;
    }
    let computed = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.to_owned()));
    constant_time_eq(computed.as_str().as_bytes(), challenge.as_bytes())
}

pub async fn exchange(
    state: &AppState,
    meta: &RequestMeta,
    client: Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code_hash = sha256_hex(params.required("code")?.as_bytes());
    let redirect_uri = params.required("redirect_uri")?.to_owned();
    let verifier = params.get("code_verifier").map(str::to_owned);
    decide_then_sign(state, meta, move |conn, state, meta, now| {
        let invalid = |why: &str| Ok(Err(OAuthError::invalid_grant(why.to_owned())));
        let Some(code) = db::grants::find_code(conn, &code_hash)? else {
            return invalid("the code is invalid");
        };
        // Another client's code: refuse without touching it.
        if code.client_id != client.client_id {
            return invalid("the code is invalid");
        }
        if !db::grants::consume_code(conn, &code_hash, now)? {
            // A second redemption: the code may have leaked, so
            // everything issued from it is revoked (RFC 6749 §4.1.2).
            revoke_for_reuse(conn, state, meta, &code.grant_id, &client.client_id, Action::AuthorizationCodeReused)?;
            return invalid("the code was already used");
        }
        if code.expires_at <= now {
            return invalid("the code has expired");
        }
        if code.redirect_uri != redirect_uri {
            return invalid("redirect_uri does not match the authorization request");
        }
        match (&code.code_challenge, &verifier) {
            (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => {}
            (Some(_), _) => return invalid("the code_verifier does not match the code_challenge"),
            // RFC 9700 §4.8.2: a verifier without a challenge is a downgrade attempt.
            (None, Some(_)) => return invalid("code_verifier given but the authorization used no code_challenge"),
            (None, None) if client.public => return invalid("public clients must use PKCE"),
            (None, None) => {}
        }
        let Some(grant) = db::grants::find_grant(conn, &code.grant_id)? else {
            return invalid("the code is invalid");
        };
        if grant.revoked_at.is_some() {
            return invalid("the authorization was revoked");
        }
        let account = match active_account(conn, &grant) {
            Ok(account) => account,
            Err(error) => return Ok(Err(error)),
        };
        let scopes: Vec<String> = grant.scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let issuance = Issuance {
            grant_type: GrantType::AuthorizationCode,
            client: &client,
            account: account.as_ref(),
            grant: Some(&grant),
            scopes: &scopes,
            nonce: code.nonce.as_deref(),
        };
        Ok(Ok(prepare(conn, state, meta, &issuance, now)?))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(challenge, verifier));
        assert!(!pkce_matches(challenge, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"));
        // Malformed verifiers are refused before hashing (no panic).
        assert!(!pkce_matches(challenge, "short"));
        assert!(!pkce_matches(challenge, &"a".repeat(129)));
        assert!(!pkce_matches(challenge, &format!("{}!", &verifier[..43])));
    }
}

//! Client authentication at the token, revocation and introspection
//! endpoints: `client_secret_basic` (RFC 6749 §2.3.1, with the id and
//! secret form-urlencoded inside the Basic credentials),
//! `client_secret_post`, and `none` for public clients.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::clients::{self, Client};
use super::error::OAuthError;
use super::params::Params;
use crate::db::{self, DbError};
use crate::state::AppState;

/// How the client identified itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    SecretBasic,
    SecretPost,
    None,
}

struct Presented {
    client_id: String,
    secret: Option<String>,
    method: AuthMethod,
}

/// Undoes the form-urlencoding of RFC 6749 §2.3.1 (`+` is a space, `%XX`
/// a byte) over the whole id or secret. `None` when the bytes are not
/// UTF-8. A malformed escape stays as it is, as form decoding does; unlike
/// parsing `x=<value>` as a form, a raw `&` or `=` does not cut the value.
fn form_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => (*hi as char).to_digit(16).zip((*lo as char).to_digit(16)),
            _ => None,
        };
        match (bytes[i], escaped) {
            (_, Some((hi, lo))) => {
                // Two hex digits: at most 0xff.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(u8::MAX));
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (byte, None) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn presented(req: &HttpRequest, params: &Params) -> Result<Presented, OAuthError> {
    let basic = match req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(header) if header.len() > 6 && header[..6].eq_ignore_ascii_case("basic ") => {
            let decoded = STANDARD
                .decode(header[6..].trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) =
                decoded.split_once(':').ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let id = form_decode(id).ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let secret =
                form_decode(secret).ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            Some((id, secret))
        }
        _ => None,
    };
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request("use one client authentication method, not two")),
        (Some((id, _)), Some(body_id), None) if body_id != id => {
            Err(OAuthError::invalid_request("client_id does not match the Authorization header"))
        }
        (Some((id, secret)), _, None) => {
            Ok(Presented { client_id: id, secret: Some(secret), method: AuthMethod::SecretBasic })
        }
        (None, Some(id), Some(secret)) => {
            Ok(Presented { client_id: id.to_owned(), secret: Some(secret.to_owned()), method: AuthMethod::SecretPost })
        }
        (None, Some(id), None) => Ok(Presented { client_id: id.to_owned(), secret: None, method: AuthMethod::None }),
        (None, None, _) => Err(OAuthError::invalid_client("client authentication is required")),
    }
}

/// Identifies and authenticates the client of a back-channel request.
/// Every failure is `invalid_client` (401) and says no more than needed.
pub async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    params: &Params,
) -> Result<(Client, AuthMethod), OAuthError> {
    let presented = presented(req, params)?;
    let client_id = presented.client_id.clone();
    let client = db::run(&state.db, move |conn| clients::find(conn, &client_id).map_err(DbError::from)).await?;
    let Some(client) = client else {
        return Err(OAuthError::invalid_client("client authentication failed"));
    };
    match (client.public, presented.secret) {
        (true, None) => Ok((client, AuthMethod::None)),
        (true, Some(_)) => Err(OAuthError::invalid_client("client authentication failed")),
        (false, Some(secret)) if client.secret_matches(&secret) => Ok((client, presented.method)),
        (false, _) => Err(OAuthError::invalid_client("client authentication failed")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::form_decode;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab").as_deref(), Some("a:b"));
        assert_eq!(form_decode("a+b").as_deref(), Some("a b"));
        assert_eq!(form_decode("plain").as_deref(), Some("plain"));
        assert_eq!(form_decode("%E5%BE%AE").as_deref(), Some("微"));
        // A raw `&` or `=` is part of the value, not a separator.
        assert_eq!(form_decode("a&b=c").as_deref(), Some("a&b=c"));
        // Malformed escapes stay; bytes that are not UTF-8 are refused.
        assert_eq!(form_decode("100%").as_deref(), Some("100%"));
        assert_eq!(form_decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(form_decode("%ff"), None);
    }
}

/// Hostile `Authorization` headers (issue 10): every header either
/// identifies a client or is refused with `invalid_client` /
/// `invalid_request` (RFC 6749 §5.2), never a panic; well-formed Basic
/// credentials decode to the id and secret that were encoded.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod proptests {
    use actix_web::http::header::HeaderValue;
    use actix_web::test::TestRequest;
    use proptest::prelude::*;

    use super::*;
    use crate::oidc::error::ErrorCode;

    fn with_authorization(value: HeaderValue) -> HttpRequest {
        TestRequest::default().insert_header((AUTHORIZATION, value)).to_http_request()
    }

    fn form_encode(value: &str) -> String {
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }

    fn refused_per_rfc(result: Result<Presented, OAuthError>) -> Result<(), TestCaseError> {
        if let Err(error) = result {
            prop_assert!(
                matches!(error.code, ErrorCode::InvalidClient | ErrorCode::InvalidRequest),
                "{:?}",
                error.code
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_header_identifies_a_client_or_is_refused(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            // Only what HTTP can carry in a header value at all.
            let Ok(value) = HeaderValue::from_bytes(&raw) else { return Ok(()) };
            let result = presented(&with_authorization(value), &Params::default());
            // No body parameters: only a Basic header can identify a client.
            if let Ok(found) = &result {
                prop_assert_eq!(found.method, AuthMethod::SecretBasic);
            }
            refused_per_rfc(result)?;
        }

        #[test]
        fn any_basic_payload_identifies_a_client_or_is_invalid_client(
            payload in proptest::collection::vec(any::<u8>(), 0..120),
            scheme in "(?i:basic) {1,3}",
        ) {
            let value = format!("{scheme}{}", STANDARD.encode(&payload));
            let result = presented(&with_authorization(HeaderValue::from_str(&value).unwrap()), &Params::default());
            match &result {
                Ok(_) => prop_assert!(std::str::from_utf8(&payload).is_ok_and(|text| text.contains(':'))),
                Err(error) => prop_assert_eq!(error.code, ErrorCode::InvalidClient),
            }
        }

        #[test]
        fn any_text_after_basic_identifies_a_client_or_is_invalid_client(text in "[ -~]{0,120}") {
            let value = HeaderValue::from_str(&format!("Basic {text}")).unwrap();
            if let Err(error) = presented(&with_authorization(value), &Params::default()) {
                prop_assert_eq!(error.code, ErrorCode::InvalidClient);
            }
        }

        #[test]
        fn encoded_credentials_round_trip(id in "\\PC{1,40}", secret in "\\PC{0,60}") {
            // RFC 6749 §2.3.1: each form-urlencoded, then `id:secret` in Basic.
            let basic = STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret)));
            let value = HeaderValue::from_str(&format!("Basic {basic}")).unwrap();
            let found = presented(&with_authorization(value), &Params::default()).unwrap();
            prop_assert_eq!(found.client_id, id);
            prop_assert_eq!(found.secret, Some(secret));
            prop_assert_eq!(found.method, AuthMethod::SecretBasic);
        }

        #[test]
        fn basic_and_a_body_secret_together_are_refused(id in "[a-z0-9]{1,20}", secret in "[a-z0-9]{1,20}") {
            let basic = STANDARD.encode(format!("{id}:{secret}"));
            let value = HeaderValue::from_str(&format!("Basic {basic}")).unwrap();
            let params = Params::from_pairs(vec![("client_secret".into(), secret)]).unwrap();
            let error = presented(&with_authorization(value), &params).err().unwrap();
            prop_assert_eq!(error.code, ErrorCode::InvalidRequest);
        }
    }
}

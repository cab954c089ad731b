//! Protocol parameters from a query string or a form body.
//!
//! RFC 6749 §3.1: a parameter must not appear twice, and one sent without
//! a value is treated as omitted. Sizes are capped so that a hostile
//! request costs nothing and never reaches storage.

use std::collections::HashMap;

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_TYPE;

use super::error::OAuthError;

const MAX_PARAMS: usize = 64;
const MAX_VALUE_BYTES: usize = 4096;

#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(encoded: &str) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(encoded)
            .map_err(|_| OAuthError::invalid_request("the parameters are not valid form encoding"))?;
        Self::from_pairs(pairs)
    }

    /// Reads an `application/x-www-form-urlencoded` body (RFC 6749 §3.2,
    /// RFC 7009 §2.1 and RFC 7662 §2.1 require that encoding).
    pub fn from_form_body(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
        }
        let text = std::str::from_utf8(body).map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
        Self::parse(text)
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, OAuthError> {
        if pairs.len() > MAX_PARAMS {
            return Err(OAuthError::invalid_request("too many parameters"));
        }
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if value.len() > MAX_VALUE_BYTES || name.len() > 128 {
                return Err(OAuthError::invalid_request(format!("the parameter `{}` is too long", truncate(&name))));
            }
            if value.is_empty() {
                continue;
            }
            if map.insert(name.clone(), value).is_some() {
                return Err(OAuthError::invalid_request(format!("the parameter `{}` is repeated", truncate(&name))));
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("the `{name}` parameter is missing")))
    }

    /// Drops a parameter (e.g. `prompt` once it has been honoured).
    pub fn without(&self, names: &[&str]) -> Self {
        Self(self.0.iter().filter(|(k, _)| !names.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.insert(name.to_owned(), value.into());
        self
    }

    /// Back to a query string (sorted, so equal requests encode equally).
    pub fn encode(&self) -> String {
        let mut pairs: Vec<(&String, &String)> = self.0.iter().collect();
        pairs.sort();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

fn truncate(name: &str) -> String {
    name.chars().take(40).filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_ignored() {
        assert!(Params::parse("a=1&a=2").is_err());
        let params = Params::parse("a=1&b=&c=x%20y").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y"));
        assert!(Params::parse(&format!("a={}", "x".repeat(5000))).is_err());
        assert_eq!(Params::parse("b=2&a=1").unwrap().encode(), "a=1&b=2");
    }
}

/// Hostile input (issue 10): any string either parses or is refused with
/// `invalid_request`, never a panic; well-formed parameters come back as
/// they were sent.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod proptests {
    use std::collections::BTreeMap;

    use proptest::collection::btree_map;
    use proptest::prelude::*;

    use super::*;
    use crate::oidc::error::ErrorCode;

    fn refused_as_invalid_request(result: Result<Params, OAuthError>) -> Result<(), TestCaseError> {
        if let Err(error) = result {
            prop_assert_eq!(error.code, ErrorCode::InvalidRequest);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_parses_or_is_an_invalid_request(input in any::<String>()) {
            refused_as_invalid_request(Params::parse(&input))?;
        }

        #[test]
        fn form_shaped_text_parses_or_is_an_invalid_request(
            input in "([a-z_]{1,3}|[=&+;]|%[0-9A-Fa-f]{0,2}|%[cCeEfF][0-9A-Fa-f]|\\PC){0,120}",
        ) {
            let parsed = Params::parse(&input);
            if let Ok(params) = &parsed {
                // Whatever was accepted is within the caps.
                prop_assert!(params.0.len() <= MAX_PARAMS);
                prop_assert!(params.0.values().all(|v| !v.is_empty() && v.len() <= MAX_VALUE_BYTES));
            }
            refused_as_invalid_request(parsed)?;
        }

        #[test]
        fn well_formed_parameters_round_trip(
            sent in btree_map("[a-z_]{1,20}", "\\PC{1,40}", 0..20),
        ) {
            let encoded = serde_urlencoded::to_string(&sent).unwrap();
            let params = Params::parse(&encoded).unwrap();
            prop_assert_eq!(params.0.len(), sent.len());
            for (name, value) in &sent {
                prop_assert_eq!(params.get(name), Some(value.as_str()));
            }
            // And back: `encode` is what the login round trip relies on.
            let again = Params::parse(&params.encode()).unwrap();
            prop_assert_eq!(again.0.into_iter().collect::<BTreeMap<_, _>>(), sent);
        }

        #[test]
        fn a_repeated_parameter_is_refused(
            name in "[a-z_]{1,20}",
            first in "\\PC{1,20}",
            second in "\\PC{1,20}",
        ) {
            let encoded = serde_urlencoded::to_string([(&name, &first), (&name, &second)]).unwrap();
            let error = Params::parse(&encoded).unwrap_err();
            prop_assert_eq!(error.code, ErrorCode::InvalidRequest);
        }

        #[test]
        fn an_empty_value_counts_as_omitted(name in "[a-z_]{1,20}", value in "\\PC{1,20}") {
            // RFC 6749 §3.1: sent without a value is as if not sent at all.
            let encoded = serde_urlencoded::to_string([(&name, ""), (&name, value.as_str())]).unwrap();
            let params = Params::parse(&encoded).unwrap();
            prop_assert_eq!(params.get(&name), Some(value.as_str()));
        }
    }
}

//! The provider's token signing keys: generation, PKCS#8 import and export
//! (storage, encrypted, belongs to another module), the public JWK, and
//! signing for ID tokens (through openidconnect's [`PrivateSigningKey`]) and
//! for JWT access tokens (RFC 9068, [`SigningKey::sign_jwt`]).
//!
//! Signing goes through OpenSSL rather than openidconnect's own
//! `CoreRsaPrivateSigningKey`: signatures dominate token issuance, OpenSSL
//! RS256 is several times faster than the RustCrypto `rsa` crate, and
//! openidconnect has no ECDSA signer at all (docs/design.md, "Performance").
//! A key is parsed once, when it is generated or loaded, and shared behind an
//! [`Arc`]; nothing here parses a key per request.
//!
//! Verification is left to openidconnect's `CoreJsonWebKey` (RustCrypto),
//! which the tests use on purpose: the signer and the checker are different
//! code bases.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonCurveType, CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKeyId, PrivateSigningKey, SigningError as OidcSigningError};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{Signer, Verifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Size of generated RSA keys, and the smallest size accepted on import
/// (RFC 7518 §3.3 requires at least 2048 bits for RS256).
const RSA_MIN_BITS: u32 = 2048;

/// Length in bytes of a P-256 field element: of each JWK coordinate and of
/// each half of a JOSE ECDSA signature (RFC 7518 §3.4, §6.2.1.2).
const P256_FIELD_LEN: i32 = 32;

/// The only PEM label accepted on import: unencrypted PKCS#8. Encrypted PEM
/// is refused up front so OpenSSL never asks for a passphrase.
const PKCS8_PEM_LABEL: &str = "-----BEGIN PRIVATE KEY-----";

/// A JWS algorithm the provider signs tokens with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3). Mandatory for OpenID
    /// Connect providers (OIDC Core §15.1), so every deployment needs one.
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4): far cheaper to sign.
    #[serde(rename = "ES256")]
    Es256,
    /// EdDSA with Ed25519 (RFC 8037 §3.1): the cheapest to sign and verify,
    /// deterministic signatures (no per-signature randomness to get wrong).
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [SigningAlgorithm; 3] = [SigningAlgorithm::Rs256, SigningAlgorithm::Es256, SigningAlgorithm::EdDsa];

    /// The JOSE name (`alg` header / JWK member).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// The same algorithm as openidconnect names it.
    pub fn to_jws(self) -> CoreJwsSigningAlgorithm {
        match self {
            SigningAlgorithm::Rs256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            SigningAlgorithm::Es256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            SigningAlgorithm::EdDsa => CoreJwsSigningAlgorithm::EdDsa,
        }
    }

    /// The supported algorithm behind an openidconnect one, if any.
    pub fn from_jws(alg: &CoreJwsSigningAlgorithm) -> Option<Self> {
        match alg {
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => Some(SigningAlgorithm::Rs256),
            CoreJwsSigningAlgorithm::EcdsaP256Sha256 => Some(SigningAlgorithm::Es256),
            CoreJwsSigningAlgorithm::EdDsa => Some(SigningAlgorithm::EdDsa),
            _ => None,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = SigningError;

    /// Parses the JOSE name. Case-sensitive, as JOSE `alg` values are
    /// (RFC 7515 §4.1.1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(SigningAlgorithm::Rs256),
            "ES256" => Ok(SigningAlgorithm::Es256),
            "EdDSA" => Ok(SigningAlgorithm::EdDsa),
            other => Err(SigningError::UnknownAlgorithm(other.to_owned())),
        }
    }
}

impl From<SigningAlgorithm> for CoreJwsSigningAlgorithm {
    fn from(alg: SigningAlgorithm) -> Self {
        alg.to_jws()
    }
}

/// What can go wrong with a signing key. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The name is not RS256, ES256 or EdDSA.
    #[error("unknown signing algorithm {0:?} (expected RS256, ES256 or EdDSA)")]
    UnknownAlgorithm(String),
    /// Asked to sign with an algorithm other than the key's own.
    #[error("a {key} key cannot sign with {requested}")]
    AlgorithmMismatch {
        /// The key's algorithm.
        key: SigningAlgorithm,
        /// The algorithm that was asked for.
        requested: String,
    },
    /// The private key is of the wrong type, curve or size for the algorithm.
    #[error("the private key cannot be used for {alg}: {reason}")]
    UnsuitableKey {
        /// The algorithm the key was declared for.
        alg: SigningAlgorithm,
        /// Why it does not fit.
        reason: &'static str,
    },
    /// The key id is empty.
    #[error("a signing key needs a non-empty key id")]
    EmptyKeyId,
    /// The PEM is not unencrypted PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    #[error("the private key is not an unencrypted PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)")]
    NotPkcs8Pem,
    /// OpenSSL failed (malformed key, signing failure).
    #[error("OpenSSL error: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    /// The JWT header or claims could not be serialized.
    #[error("cannot serialize the JWT: {0}")]
    Json(#[from] serde_json::Error),
}

/// A public key as a JSON Web Key (RFC 7517), as published in the JWKS.
///
/// Only public members exist in this type, so a private member cannot be
/// published by accident. Binary members are base64url without padding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    /// `RSA`, `EC` or `OKP` (RFC 8037 §2).
    pub kty: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: &'static str,
    /// The key id, as in the JWS `kid` header.
    pub kid: String,
    /// RSA modulus (big-endian, no leading zeros).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// EC curve, `P-256`, or OKP curve, `Ed25519`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<&'static str>,
    /// EC x coordinate, exactly 32 bytes (RFC 7518 §6.2.1.2), or the
    /// 32-byte Ed25519 public key (RFC 8037 §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, exactly 32 bytes (RFC 7518 §6.2.1.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// Why a compact JWS was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("signed by an unknown key")]
    UnknownKey,
    #[error("unexpected algorithm or type")]
    WrongHeader,
    #[error("bad signature")]
    BadSignature,
}

/// The header fields wxfed looks at.
#[derive(Debug, Deserialize)]
pub struct JwsHeader {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// Verifies a compact JWS signed by one of `find_key`'s keys and returns
/// its header and payload bytes. The algorithm must be the key's own (no
/// `none`, no algorithm confusion); `expected_typ`, when given, must match
/// the header's `typ` exactly.
pub fn verify_jws<'k>(
    token: &str,
    expected_typ: Option<&str>,
    find_key: impl Fn(&str) -> Option<&'k SigningKey>,
) -> Result<(JwsHeader, Vec<u8>), JwtError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| JwtError::Malformed)?;
    let header: JwsHeader = serde_json::from_slice(&header_bytes).map_err(|_| JwtError::Malformed)?;
    let key = header.kid.as_deref().and_then(&find_key).ok_or(JwtError::UnknownKey)?;
    if header.alg != key.algorithm().as_str() || expected_typ.is_some_and(|t| header.typ.as_deref() != Some(t)) {
        return Err(JwtError::WrongHeader);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| JwtError::Malformed)?;
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    if !key.verify_message(&token.as_bytes()[..signed_len], &signature) {
        return Err(JwtError::BadSignature);
    }
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| JwtError::Malformed)?;
    Ok((header, payload))
}

/// The raw public key, from which the JWK forms are derived once.
enum PublicParts {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { x: Vec<u8>, y: Vec<u8> },
    Okp { x: Vec<u8> },
}

/// A private signing key with its id and algorithm.
///
/// Cloning is cheap (one `Arc`), and the key is `Send + Sync`: build it once
/// and hand clones to every worker. `Debug` shows only the id and algorithm.
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
}

struct Inner {
    kid: String,
    alg: SigningAlgorithm,
    pkey: PKey<Private>,
    // Derived at load time because openidconnect asks for the verification
    // key on every ID token (header `kid`, `at_hash`), and the JWKS endpoint
    // for the JWK on every request.
    jwk: PublicJwk,
    verification_key: CoreJsonWebKey,
    thumbprint: String,
}

impl SigningKey {
    /// Generates a new key: RSA 2048 for RS256, P-256 for ES256, Ed25519
    /// for EdDSA.
    ///
    /// The key id is the key's RFC 7638 JWK thumbprint (SHA-256, base64url):
    /// unique without a counter or a random source of its own, and anyone
    /// holding the JWK can recompute it.
    pub fn generate(alg: SigningAlgorithm) -> Result<Self, SigningError> {
        let pkey = match alg {
            SigningAlgorithm::Rs256 => PKey::from_rsa(Rsa::generate(RSA_MIN_BITS)?)?,
            SigningAlgorithm::Es256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
                PKey::from_ec_key(EcKey::generate(&group)?)?
            }
            SigningAlgorithm::EdDsa => PKey::generate_ed25519()?,
        };
        Self::from_pkey(None, alg, pkey)
    }

    /// Loads a key stored with [`SigningKey::to_pkcs8_pem`].
    ///
    /// Only unencrypted PKCS#8 PEM is accepted. The key must fit `alg`:
    /// an RSA key of at least 2048 bits for RS256, a P-256 key for ES256.
    pub fn from_pkcs8_pem(kid: impl Into<String>, alg: SigningAlgorithm, pem: &str) -> Result<Self, SigningError> {
        if !pem.trim_start().starts_with(PKCS8_PEM_LABEL) {
            return Err(SigningError::NotPkcs8Pem);
        }
        // The callback answers any passphrase prompt with "no passphrase"
        // (an error), so a stray encrypted block can never block on a TTY.
        let pkey = PKey::private_key_from_pem_callback(pem.as_bytes(), |_| Ok(0))?;
        Self::from_pkey(Some(kid.into()), alg, pkey)
    }

    /// The private key as unencrypted PKCS#8 PEM, for encrypted storage.
    /// The buffer is wiped when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, SigningError> {
        let pem = Zeroizing::new(self.inner.pkey.private_key_to_pem_pkcs8()?);
        // PEM is ASCII, so the lossy conversion never alters it; it avoids an
        // error path that would carry the key bytes around.
        Ok(Zeroizing::new(String::from_utf8_lossy(&pem).into_owned()))
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The algorithm this key signs with; it signs with no other.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.inner.alg
    }

    /// The public key as a JWK, for the JWKS document.
    pub fn jwk(&self) -> &PublicJwk {
        &self.inner.jwk
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
    /// Equal to [`SigningKey::kid`] for generated keys.
    pub fn jwk_thumbprint(&self) -> &str {
        &self.inner.thumbprint
    }

    /// Signs `message` with the key's own algorithm and returns the JWS
    /// signature bytes (for ES256 the 64-byte `R || S` form, not DER; for
    /// EdDSA the 64-byte Ed25519 signature, RFC 8037 §3.1).
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let pkey = &self.inner.pkey;
        match self.inner.alg {
            SigningAlgorithm::Rs256 => {
                let mut signer = Signer::new(MessageDigest::sha256(), pkey)?;
                // PKCS#1 v1.5 is OpenSSL's default; set it anyway so a changed
                // default could never silently turn RS256 into PS256.
                signer.set_rsa_padding(Padding::PKCS1)?;
                Ok(signer.sign_oneshot_to_vec(message)?)
            }
            SigningAlgorithm::Es256 => {
                ecdsa_der_to_jose(&Signer::new(MessageDigest::sha256(), pkey)?.sign_oneshot_to_vec(message)?)
            }
            // PureEdDSA hashes internally (RFC 8032 §5.1): no digest.
            SigningAlgorithm::EdDsa => Ok(Signer::new_without_digest(pkey)?.sign_oneshot_to_vec(message)?),
        }
    }

    /// Builds a compact JWS (a signed JWT) over `claims` with the header
    /// `{"alg","kid","typ"}`; `header_typ` is e.g. `at+jwt` for RFC 9068
    /// access tokens (RFC 9068 §2.1).
    pub fn sign_jwt(&self, header_typ: &str, claims: &impl Serialize) -> Result<String, SigningError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            kid: &'a str,
            typ: &'a str,
        }
        let header =
            serde_json::to_vec(&Header { alg: self.inner.alg.as_str(), kid: &self.inner.kid, typ: header_typ })?;
        let payload = serde_json::to_vec(claims)?;

        let mut jws = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 360);
        URL_SAFE_NO_PAD.encode_string(&header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
        let signature = self.sign_message(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        Ok(jws)
    }

    /// Checks a JOSE-form signature (RFC 7518 §3.3 / §3.4) over `message`.
    /// Any malformed input is simply "not valid".
    pub fn verify_message(&self, message: &[u8], signature: &[u8]) -> bool {
        let check = || -> Result<bool, openssl::error::ErrorStack> {
            let pkey = &self.inner.pkey;
            match self.inner.alg {
                SigningAlgorithm::Rs256 => {
                    let mut verifier = Verifier::new(MessageDigest::sha256(), pkey)?;
                    verifier.set_rsa_padding(Padding::PKCS1)?;
                    verifier.verify_oneshot(signature, message)
                }
                SigningAlgorithm::Es256 => {
                    if signature.len() != 64 {
                        return Ok(false);
                    }
                    let r = BigNum::from_slice(&signature[..32])?;
                    let s = BigNum::from_slice(&signature[32..])?;
                    let der = EcdsaSig::from_private_components(r, s)?.to_der()?;
                    Verifier::new(MessageDigest::sha256(), pkey)?.verify_oneshot(&der, message)
                }
                SigningAlgorithm::EdDsa => Verifier::new_without_digest(pkey)?.verify_oneshot(signature, message),
            }
        };
        check().unwrap_or(false)
    }

    /// Checks that `pkey` fits `alg` and derives the public forms.
    fn from_pkey(kid: Option<String>, alg: SigningAlgorithm, pkey: PKey<Private>) -> Result<Self, SigningError> {
        let unsuitable = |reason| SigningError::UnsuitableKey { alg, reason };
        let parts = match alg {
            SigningAlgorithm::Rs256 => {
                if pkey.id() != Id::RSA {
                    return Err(unsuitable("not an RSA key"));
                }
                if pkey.bits() < RSA_MIN_BITS {
                    return Err(unsuitable("RSA keys need at least 2048 bits"));
                }
                let rsa = pkey.rsa()?;
                if !rsa.check_key()? {
                    return Err(unsuitable("inconsistent RSA key"));
                }
                PublicParts::Rsa { n: rsa.n().to_vec(), e: rsa.e().to_vec() }
            }
            SigningAlgorithm::Es256 => {
                if pkey.id() != Id::EC {
                    return Err(unsuitable("not an EC key"));
                }
                let ec = pkey.ec_key()?;
                if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                    return Err(unsuitable("not a P-256 key"));
                }
                ec.check_key()?;
                let mut x = BigNum::new()?;
                let mut y = BigNum::new()?;
                let mut ctx = BigNumContext::new()?;
                ec.public_key().affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)?;
                // BigNum::to_vec drops leading zero bytes; JWK coordinates
                // must be the full field length (RFC 7518 §6.2.1.2).
                PublicParts::Ec { x: x.to_vec_padded(P256_FIELD_LEN)?, y: y.to_vec_padded(P256_FIELD_LEN)? }
            }
            SigningAlgorithm::EdDsa => {
                if pkey.id() != Id::ED25519 {
                    return Err(unsuitable("not an Ed25519 key"));
                }
                PublicParts::Okp { x: pkey.raw_public_key()? }
            }
        };

        let thumbprint = rfc7638_thumbprint(&parts);
        let kid = kid.unwrap_or_else(|| thumbprint.clone());
        if kid.is_empty() {
            return Err(SigningError::EmptyKeyId);
        }
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let (jwk, verification_key) = match parts {
            PublicParts::Rsa { n, e } => (
                PublicJwk {
                    kty: "RSA",
                    use_: "sig",
                    alg: alg.as_str(),
                    kid: kid.clone(),
                    n: Some(b64(&n)),
                    e: Some(b64(&e)),
                    crv: None,
                    x: None,
                    y: None,
                },
                CoreJsonWebKey::new_rsa(n, e, Some(JsonWebKeyId::new(kid.clone()))),
            ),
            PublicParts::Ec { x, y } => (
                PublicJwk {
                    kty: "EC",
                    use_: "sig",
                    alg: alg.as_str(),
                    kid: kid.clone(),
                    n: None,
                    e: None,
                    crv: Some("P-256"),
                    x: Some(b64(&x)),
                    y: Some(b64(&y)),
                },
                CoreJsonWebKey::new_ec(x, y, CoreJsonCurveType::P256, Some(JsonWebKeyId::new(kid.clone()))),
            ),
            PublicParts::Okp { x } => (
                PublicJwk {
                    kty: "OKP",
                    use_: "sig",
                    alg: alg.as_str(),
                    kid: kid.clone(),
                    n: None,
                    e: None,
                    crv: Some("Ed25519"),
                    x: Some(b64(&x)),
                    y: None,
                },
                CoreJsonWebKey::new_okp(x, CoreJsonCurveType::Ed25519, Some(JsonWebKeyId::new(kid.clone()))),
            ),
        };

        Ok(SigningKey { inner: Arc::new(Inner { kid, alg, pkey, jwk, verification_key, thumbprint }) })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.inner.kid).field("alg", &self.inner.alg).finish_non_exhaustive()
    }
}

impl PrivateSigningKey for SigningKey {
    type VerificationKey = CoreJsonWebKey;

    /// Signs with the key's own algorithm; any other `signature_alg` is
    /// refused, so a caller cannot make an RSA key emit e.g. PS256 or a
    /// header that lies about the algorithm.
    fn sign(&self, signature_alg: &CoreJwsSigningAlgorithm, message: &[u8]) -> Result<Vec<u8>, OidcSigningError> {
        if SigningAlgorithm::from_jws(signature_alg) != Some(self.inner.alg) {
            return Err(OidcSigningError::UnsupportedAlg(jws_name(signature_alg)));
        }
        self.sign_message(message).map_err(|error| {
            // openidconnect's error type has no room for the cause: log it.
            tracing::error!(kid = %self.inner.kid, %error, "token signing failed");
            match error {
                SigningError::Crypto(_) => OidcSigningError::CryptoError,
                other => OidcSigningError::Other(other.to_string()),
            }
        })
    }

    fn as_verification_key(&self) -> CoreJsonWebKey {
        self.inner.verification_key.clone()
    }
}

/// Converts OpenSSL's DER `ECDSA-Sig-Value` into the JOSE form: `R || S`,
/// each left-padded with zeros to 32 bytes (RFC 7518 §3.4). DER drops leading
/// zeros, so about 1 signature in 128 has a shorter R or S.
fn ecdsa_der_to_jose(der: &[u8]) -> Result<Vec<u8>, SigningError> {
    let signature = EcdsaSig::from_der(der)?;
    let mut raw = signature.r().to_vec_padded(P256_FIELD_LEN)?;
    raw.extend_from_slice(&signature.s().to_vec_padded(P256_FIELD_LEN)?);
    Ok(raw)
}

/// RFC 7638 §3: SHA-256 over the required public members, in lexicographic
/// order, without whitespace. Base64url values need no JSON escaping.
fn rfc7638_thumbprint(parts: &PublicParts) -> String {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let canonical = match parts {
        PublicParts::Rsa { n, e } => {
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n))
        }
        PublicParts::Ec { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, b64(x), b64(y)),
        // RFC 8037 §2: the required OKP members are crv, kty and x.
        PublicParts::Okp { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The JOSE name of an openidconnect algorithm, for error messages.
fn jws_name(alg: &CoreJwsSigningAlgorithm) -> String {
    match serde_json::to_value(alg) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{alg:?}"),
    }
}

#[cfg(test)]
// The crate denies unwrap/expect for production code; in tests a panic is
// the failure report.
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::OnceLock;

    use chrono::{TimeDelta, Utc};
    use openidconnect::core::{CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet};
    use openidconnect::{
        AccessToken, Audience, ClaimsVerificationError, ClientId, EmptyAdditionalClaims, IssuerUrl, JsonWebKey, Nonce,
        StandardClaims, SubjectIdentifier,
    };
    use openssl::pkey::Public;
    use openssl::sign::Verifier;

    use super::*;

    const ISSUER: &str = "https://id.example.com";
    const CLIENT: &str = "client-1";
    const NONCE: &str = "n-0S6_WzA2Mj";

    // RSA key generation takes a noticeable fraction of a second in a test
    // build; tests that do not need a fresh key share one per algorithm.
    fn shared_key(alg: SigningAlgorithm) -> SigningKey {
        static RSA: OnceLock<SigningKey> = OnceLock::new();
        static EC: OnceLock<SigningKey> = OnceLock::new();
        static ED: OnceLock<SigningKey> = OnceLock::new();
        let cell = match alg {
            SigningAlgorithm::Rs256 => &RSA,
            SigningAlgorithm::Es256 => &EC,
            SigningAlgorithm::EdDsa => &ED,
        };
        cell.get_or_init(|| SigningKey::generate(alg).unwrap()).clone()
    }

    fn id_token_claims() -> CoreIdTokenClaims {
        let now = Utc::now();
        CoreIdTokenClaims::new(
            IssuerUrl::new(ISSUER.into()).unwrap(),
            vec![Audience::new(CLIENT.into())],
            now + TimeDelta::minutes(5),
            now,
            StandardClaims::new(SubjectIdentifier::new("alice".into())),
            EmptyAdditionalClaims {},
        )
        .set_nonce(Some(Nonce::new(NONCE.into())))
    }

    fn verifier(key: &SigningKey) -> CoreIdTokenVerifier<'static> {
        CoreIdTokenVerifier::new_public_client(
            ClientId::new(CLIENT.into()),
            IssuerUrl::new(ISSUER.into()).unwrap(),
            CoreJsonWebKeySet::new(vec![key.as_verification_key()]),
        )
        .set_allowed_algs(vec![key.algorithm().to_jws()])
    }

    fn sign_id_token(key: &SigningKey) -> CoreIdToken {
        CoreIdToken::new(id_token_claims(), key, key.algorithm().to_jws(), None, None).unwrap()
    }

    fn public_key(key: &SigningKey) -> PKey<Public> {
        PKey::public_key_from_der(&key.inner.pkey.public_key_to_der().unwrap()).unwrap()
    }

    /// Verifies a JOSE `R || S` ES256 signature with OpenSSL.
    fn openssl_verify_es256(key: &PKey<Public>, message: &[u8], raw: &[u8]) -> bool {
        let (r, s) = raw.split_at(32);
        let der = EcdsaSig::from_private_components(BigNum::from_slice(r).unwrap(), BigNum::from_slice(s).unwrap())
            .unwrap()
            .to_der()
            .unwrap();
        let mut verifier = Verifier::new(MessageDigest::sha256(), key).unwrap();
        verifier.verify_oneshot(&der, message).unwrap()
    }

    fn decode(b64: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(b64).unwrap()
    }

    #[test]
    fn algorithm_names_parse_and_map_to_openidconnect() {
        for alg in SigningAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<SigningAlgorithm>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.as_str());
            assert_eq!(SigningAlgorithm::from_jws(&alg.to_jws()), Some(alg));
            // openidconnect's serde name is the JOSE name.
            assert_eq!(jws_name(&alg.to_jws()), alg.as_str());
            assert_eq!(serde_json::to_value(alg).unwrap(), serde_json::json!(alg.as_str()));
        }
        assert_eq!(
            CoreJwsSigningAlgorithm::from(SigningAlgorithm::Rs256),
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256
        );
        assert_eq!(SigningAlgorithm::Es256.to_jws(), CoreJwsSigningAlgorithm::EcdsaP256Sha256);
        assert_eq!(SigningAlgorithm::EdDsa.to_jws(), CoreJwsSigningAlgorithm::EdDsa);
        for bad in ["rs256", "RS384", "PS256", "HS256", "none", "", "eddsa", "EDDSA", "Ed25519"] {
            assert!(matches!(bad.parse::<SigningAlgorithm>(), Err(SigningError::UnknownAlgorithm(_))));
        }
        assert_eq!(SigningAlgorithm::from_jws(&CoreJwsSigningAlgorithm::RsaSsaPssSha256), None);
    }

    #[test]
    fn id_token_verifies_with_openidconnect_for_each_algorithm() {
        for alg in SigningAlgorithm::ALL {
            let key = shared_key(alg);
            let access_token = AccessToken::new("an-access-token".into());
            let token = CoreIdToken::new(id_token_claims(), &key, alg.to_jws(), Some(&access_token), None).unwrap();

            // Through the wire form, as a relying party would see it.
            let parsed: CoreIdToken = token.to_string().parse().unwrap();
            let claims = parsed.claims(&verifier(&key), &Nonce::new(NONCE.into())).unwrap();
            assert_eq!(claims.subject().as_str(), "alice");
            assert_eq!(claims.issuer().as_str(), ISSUER);
            assert!(claims.access_token_hash().is_some());

            let header: serde_json::Value =
                serde_json::from_slice(&decode(token.to_string().split('.').next().unwrap())).unwrap();
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["kid"], key.kid());

            // A verifier that only allows the other algorithm refuses it.
            let other = SigningAlgorithm::ALL.into_iter().find(|a| *a != alg).unwrap();
            let strict = verifier(&key).set_allowed_algs(vec![other.to_jws()]);
            assert!(parsed.claims(&strict, &Nonce::new(NONCE.into())).is_err());
        }
    }

    #[test]
    fn tampered_or_foreign_id_token_fails_verification() {
        for alg in SigningAlgorithm::ALL {
            let key = shared_key(alg);
            let compact = sign_id_token(&key).to_string();
            let parts: Vec<&str> = compact.split('.').collect();
            assert_eq!(parts.len(), 3);

            // One byte of the payload: "alice" becomes "alicf". Re-encoded so
            // the token still parses and only the signature can catch it.
            let mut payload = decode(parts[1]);
            let at = payload.windows(7).position(|w| w == b"\"alice\"").unwrap();
            payload[at + 5] = b'f';
            let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(&payload), parts[2]);
            let tampered: CoreIdToken = tampered.parse().unwrap();
            let result = tampered.claims(&verifier(&key), &Nonce::new(NONCE.into()));
            assert!(
                matches!(result, Err(ClaimsVerificationError::SignatureVerification(_))),
                "{alg}: tampered payload accepted: {result:?}"
            );

            // One bit of the signature.
            let mut signature = decode(parts[2]);
            signature[10] ^= 0x01;
            let tampered = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&signature));
            let tampered: CoreIdToken = tampered.parse().unwrap();
            assert!(tampered.claims(&verifier(&key), &Nonce::new(NONCE.into())).is_err());

            // A different key that claims the same kid.
            let other = SigningKey::generate(alg).unwrap();
            let impostor_pem = other.to_pkcs8_pem().unwrap();
            let impostor = SigningKey::from_pkcs8_pem(key.kid(), alg, &impostor_pem).unwrap();
            let forged: CoreIdToken = sign_id_token(&impostor).to_string().parse().unwrap();
            assert!(forged.claims(&verifier(&key), &Nonce::new(NONCE.into())).is_err());
        }
    }

    #[test]
    fn public_jwk_has_exactly_the_public_members() {
        let rsa = shared_key(SigningAlgorithm::Rs256);
        let jwk = serde_json::to_value(rsa.jwk()).unwrap();
        let members: BTreeSet<&str> = jwk.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(members, BTreeSet::from(["kty", "use", "alg", "kid", "n", "e"]));
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["kid"], rsa.kid());
        assert_eq!(jwk["e"], "AQAB");
        let n = decode(jwk["n"].as_str().unwrap());
        assert_eq!(n.len(), 256);
        assert_eq!(n, rsa.inner.pkey.rsa().unwrap().n().to_vec());

        let ec = shared_key(SigningAlgorithm::Es256);
        let jwk = serde_json::to_value(ec.jwk()).unwrap();
        let members: BTreeSet<&str> = jwk.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(members, BTreeSet::from(["kty", "use", "alg", "kid", "crv", "x", "y"]));
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["kid"], ec.kid());
        let x = decode(jwk["x"].as_str().unwrap());
        let y = decode(jwk["y"].as_str().unwrap());
        assert_eq!((x.len(), y.len()), (32, 32));
        // x and y are the key's own point: 04 || x || y is its SEC1 form.
        let ec_key = ec.inner.pkey.ec_key().unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let sec1 = ec_key
            .public_key()
            .to_bytes(ec_key.group(), openssl::ec::PointConversionForm::UNCOMPRESSED, &mut ctx)
            .unwrap();
        assert_eq!(sec1, [vec![4], x, y].concat());

        // The openidconnect form carries no private member either.
        for key in [&rsa, &ec] {
            let v = serde_json::to_value(key.as_verification_key()).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                assert!(v.get(private).is_none(), "{private} in {v}");
            }
            assert_eq!(v["kid"], key.kid());
        }
    }

    #[test]
    fn eddsa_matches_the_rfc8037_examples() {
        // RFC 8037 Appendix A.1 (key), A.3 (thumbprint), A.4 (signature).
        // Ed25519 is deterministic, so the signature must match byte for byte.
        let d = decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
        let pkey = PKey::private_key_from_raw_bytes(&d, Id::ED25519).unwrap();
        let key = SigningKey::from_pkey(None, SigningAlgorithm::EdDsa, pkey).unwrap();
        let jwk = serde_json::to_value(key.jwk()).unwrap();
        assert_eq!(
            jwk,
            serde_json::json!({
                "kty": "OKP", "use": "sig", "alg": "EdDSA", "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
            })
        );
        let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let signature = key.sign_message(input).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&signature),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
        assert!(key.verify_message(input, &signature));
        assert!(!key.verify_message(b"eyJhbGciOiJFZERTQSJ9.other", &signature));
        // openidconnect (ed25519-dalek) agrees.
        key.as_verification_key().verify_signature(&CoreJwsSigningAlgorithm::EdDsa, input, &signature).unwrap();

        // Round trip through storage; an EC key is not an Ed25519 key.
        let pem = key.to_pkcs8_pem().unwrap();
        let loaded = SigningKey::from_pkcs8_pem(key.kid(), SigningAlgorithm::EdDsa, &pem).unwrap();
        assert_eq!(loaded.jwk(), key.jwk());
        let ec_pem = shared_key(SigningAlgorithm::Es256).to_pkcs8_pem().unwrap();
        assert!(matches!(
            SigningKey::from_pkcs8_pem("k", SigningAlgorithm::EdDsa, &ec_pem),
            Err(SigningError::UnsuitableKey { .. })
        ));
        assert!(matches!(
            SigningKey::from_pkcs8_pem("k", SigningAlgorithm::Es256, &pem),
            Err(SigningError::UnsuitableKey { .. })
        ));
    }

    #[test]
    fn ec_jwk_coordinates_are_left_padded() {
        // About 1 P-256 key in 128 has a coordinate whose top byte is zero;
        // search for one so the padding path is certainly exercised.
        let padded = (0..20_000)
            .map(|_| SigningKey::generate(SigningAlgorithm::Es256).unwrap())
            .find(|key| {
                let ec = key.inner.pkey.ec_key().unwrap();
                let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
                let mut ctx = BigNumContext::new().unwrap();
                ec.public_key().affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx).unwrap();
                x.num_bytes() < 32 || y.num_bytes() < 32
            })
            .unwrap();
        let jwk = padded.jwk();
        assert_eq!(decode(jwk.x.as_deref().unwrap()).len(), 32);
        assert_eq!(decode(jwk.y.as_deref().unwrap()).len(), 32);
        // openidconnect (p256) rejects a short coordinate, so this also
        // proves the published key is usable.
        let token: CoreIdToken = sign_id_token(&padded).to_string().parse().unwrap();
        token.claims(&verifier(&padded), &Nonce::new(NONCE.into())).unwrap();
    }

    #[test]
    fn es256_signatures_are_64_byte_r_s_and_verify_with_openssl() {
        let key = shared_key(SigningAlgorithm::Es256);
        let public = public_key(&key);
        let verification_key = key.as_verification_key();
        let mut short_seen = 0;
        let mut count = 0;
        // At least 200 signatures, and on until a few had a short R or S
        // (~1 in 128 each) so the padding is exercised, not just likely.
        while count < 200 || (short_seen < 3 && count < 20_000) {
            let message = format!("message number {count}");
            let raw = key.sign_message(message.as_bytes()).unwrap();
            assert_eq!(raw.len(), 64, "signature {count}");
            assert!(openssl_verify_es256(&public, message.as_bytes(), &raw), "signature {count} does not verify");
            if raw[0] == 0 || raw[32] == 0 {
                short_seen += 1;
                // And an independent implementation (RustCrypto p256).
                verification_key.verify_signature(&key.algorithm().to_jws(), message.as_bytes(), &raw).unwrap();
            }
            count += 1;
        }
        assert!(short_seen >= 3, "no short R or S in {count} signatures");
    }

    #[test]
    fn verify_jws_accepts_own_tokens_and_refuses_tampering() {
        for alg in SigningAlgorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let other = SigningKey::generate(alg).unwrap();
            let token = key.sign_jwt("at+jwt", &serde_json::json!({"sub": "a"})).unwrap();
            let find = |kid: &str| (kid == key.kid()).then_some(&key);
            let (header, payload) = verify_jws(&token, Some("at+jwt"), find).unwrap();
            assert_eq!(header.alg, alg.as_str());
            assert_eq!(serde_json::from_slice::<serde_json::Value>(&payload).unwrap()["sub"], "a");
            assert_eq!(verify_jws(&token, Some("JWT"), find).unwrap_err(), JwtError::WrongHeader);
            let mut tampered = token.clone().into_bytes();
            let i = token.find('.').unwrap() + 3;
            tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
            assert!(verify_jws(std::str::from_utf8(&tampered).unwrap(), None, find).is_err());
            let forged = other.sign_jwt("at+jwt", &serde_json::json!({"sub": "a"})).unwrap();
            assert_eq!(verify_jws(&forged, None, find).unwrap_err(), JwtError::UnknownKey);
            let same_kid = |_: &str| Some(&key);
            assert_eq!(verify_jws(&forged, None, same_kid).unwrap_err(), JwtError::BadSignature);
            assert_eq!(verify_jws("a.b", None, find).unwrap_err(), JwtError::Malformed);
        }
    }

    #[test]
    fn der_to_jose_pads_each_half_to_32_bytes() {
        let r = BigNum::from_u32(1).unwrap();
        let s = BigNum::from_slice(&[0xAB; 31]).unwrap();
        let der = EcdsaSig::from_private_components(r, s).unwrap().to_der().unwrap();
        let raw = ecdsa_der_to_jose(&der).unwrap();
        let mut expected = vec![0; 31];
        expected.push(1);
        expected.push(0);
        expected.extend([0xAB; 31]);
        assert_eq!(raw, expected);
        assert!(ecdsa_der_to_jose(b"not der").is_err());
    }

    #[test]
    fn rs256_signature_verifies_with_openssl_pkcs1() {
        let key = shared_key(SigningAlgorithm::Rs256);
        let signature = key.sign_message(b"hello").unwrap();
        assert_eq!(signature.len(), 256);
        let public = public_key(&key);
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        verifier.set_rsa_padding(Padding::PKCS1).unwrap();
        assert!(verifier.verify_oneshot(&signature, b"hello").unwrap());
        // PKCS#1 v1.5 is deterministic: the same message, the same signature.
        assert_eq!(key.sign_message(b"hello").unwrap(), signature);
    }

    #[test]
    fn pem_round_trip_keeps_the_key() {
        for alg in SigningAlgorithm::ALL {
            let key = shared_key(alg);
            let pem = key.to_pkcs8_pem().unwrap();
            assert!(pem.starts_with(PKCS8_PEM_LABEL));
            let loaded = SigningKey::from_pkcs8_pem(key.kid(), alg, &pem).unwrap();
            assert_eq!(loaded.jwk(), key.jwk());
            assert_eq!(loaded.kid(), key.kid());
            assert_eq!(loaded.algorithm(), alg);
            assert_eq!(
                serde_json::to_value(loaded.as_verification_key()).unwrap(),
                serde_json::to_value(key.as_verification_key()).unwrap()
            );
            // The reloaded private key signs for the original public key.
            let token: CoreIdToken = sign_id_token(&loaded).to_string().parse().unwrap();
            token.claims(&verifier(&key), &Nonce::new(NONCE.into())).unwrap();
            // A stored key keeps its stored kid.
            let renamed = SigningKey::from_pkcs8_pem("2026-key-1", alg, &pem).unwrap();
            assert_eq!(renamed.kid(), "2026-key-1");
            assert_eq!(renamed.jwk().kid, "2026-key-1");
            assert_eq!(renamed.jwk_thumbprint(), key.jwk_thumbprint());
        }
    }

    #[test]
    fn pem_import_refuses_keys_that_do_not_fit() {
        let rsa_pem = shared_key(SigningAlgorithm::Rs256).to_pkcs8_pem().unwrap();
        let ec_pem = shared_key(SigningAlgorithm::Es256).to_pkcs8_pem().unwrap();
        let unsuitable = |r: Result<SigningKey, SigningError>| matches!(r, Err(SigningError::UnsuitableKey { .. }));
        assert!(unsuitable(SigningKey::from_pkcs8_pem("k", SigningAlgorithm::Es256, &rsa_pem)));
        assert!(unsuitable(SigningKey::from_pkcs8_pem("k", SigningAlgorithm::Rs256, &ec_pem)));

        let small = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
        let small_pem = String::from_utf8(small.private_key_to_pem_pkcs8().unwrap()).unwrap();
        assert!(unsuitable(SigningKey::from_pkcs8_pem("k", SigningAlgorithm::Rs256, &small_pem)));

        let p384 = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
        let p384 = PKey::from_ec_key(EcKey::generate(&p384).unwrap()).unwrap();
        let p384_pem = String::from_utf8(p384.private_key_to_pem_pkcs8().unwrap()).unwrap();
        assert!(unsuitable(SigningKey::from_pkcs8_pem("k", SigningAlgorithm::Es256, &p384_pem)));

        // PKCS#1 and encrypted PKCS#8 are not what storage writes.
        let rsa = shared_key(SigningAlgorithm::Rs256).inner.pkey.rsa().unwrap();
        let pkcs1 = String::from_utf8(rsa.private_key_to_pem().unwrap()).unwrap();
        assert!(matches!(
            SigningKey::from_pkcs8_pem("k", SigningAlgorithm::Rs256, &pkcs1),
            Err(SigningError::NotPkcs8Pem)
        ));
        let encrypted = shared_key(SigningAlgorithm::Es256)
            .inner
            .pkey
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"pw")
            .unwrap();
        assert!(matches!(
            SigningKey::from_pkcs8_pem("k", SigningAlgorithm::Es256, &String::from_utf8(encrypted).unwrap()),
            Err(SigningError::NotPkcs8Pem)
        ));
        // Public keys are not private keys.
        let public_pem =
            String::from_utf8(shared_key(SigningAlgorithm::Es256).inner.pkey.public_key_to_pem().unwrap()).unwrap();
        assert!(SigningKey::from_pkcs8_pem("k", SigningAlgorithm::Es256, &public_pem).is_err());

        let garbage = format!("{PKCS8_PEM_LABEL}\nAAAA\n-----END PRIVATE KEY-----\n");
        assert!(matches!(
            SigningKey::from_pkcs8_pem("k", SigningAlgorithm::Es256, &garbage),
            Err(SigningError::Crypto(_))
        ));
        assert!(matches!(
            SigningKey::from_pkcs8_pem("", SigningAlgorithm::Es256, &ec_pem),
            Err(SigningError::EmptyKeyId)
        ));
    }

    #[test]
    fn signing_with_another_algorithm_is_an_error() {
        let rsa = shared_key(SigningAlgorithm::Rs256);
        let ec = shared_key(SigningAlgorithm::Es256);
        let ed = shared_key(SigningAlgorithm::EdDsa);
        for (key, wrong) in [
            (&rsa, CoreJwsSigningAlgorithm::EdDsa),
            (&ec, CoreJwsSigningAlgorithm::EdDsa),
            (&ed, CoreJwsSigningAlgorithm::EcdsaP256Sha256),
            (&ed, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
            (&ed, CoreJwsSigningAlgorithm::None),
            (&rsa, CoreJwsSigningAlgorithm::EcdsaP256Sha256),
            (&rsa, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384),
            (&rsa, CoreJwsSigningAlgorithm::RsaSsaPssSha256),
            (&rsa, CoreJwsSigningAlgorithm::HmacSha256),
            (&ec, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
            (&ec, CoreJwsSigningAlgorithm::EcdsaP384Sha384),
            (&ec, CoreJwsSigningAlgorithm::None),
        ] {
            assert!(
                matches!(PrivateSigningKey::sign(key, &wrong, b"message"), Err(OidcSigningError::UnsupportedAlg(_))),
                "{key:?} signed {wrong:?}"
            );
            assert!(CoreIdToken::new(id_token_claims(), key, wrong, None, None).is_err());
        }
        // And the right one works through the trait.
        assert_eq!(PrivateSigningKey::sign(&ec, &CoreJwsSigningAlgorithm::EcdsaP256Sha256, b"m").unwrap().len(), 64);
    }

    #[test]
    fn sign_jwt_makes_a_verifiable_compact_jws() {
        #[derive(Serialize)]
        struct AccessTokenClaims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            client_id: &'a str,
            scope: &'a str,
            exp: i64,
            iat: i64,
            jti: &'a str,
        }
        let claims = AccessTokenClaims {
            iss: ISSUER,
            sub: "alice",
            aud: "https://api.example.com",
            client_id: CLIENT,
            scope: "openid profile",
            exp: 1_900_000_000,
            iat: 1_899_999_000,
            jti: "e6a1c8b1",
        };
        for alg in SigningAlgorithm::ALL {
            let key = shared_key(alg);
            let jwt = key.sign_jwt("at+jwt", &claims).unwrap();
            let parts: Vec<&str> = jwt.split('.').collect();
            assert_eq!(parts.len(), 3);

            let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])).unwrap();
            assert_eq!(header, serde_json::json!({"alg": alg.as_str(), "kid": key.kid(), "typ": "at+jwt"}));
            let payload: serde_json::Value = serde_json::from_slice(&decode(parts[1])).unwrap();
            assert_eq!(payload, serde_json::to_value(&claims).unwrap());

            let signing_input = format!("{}.{}", parts[0], parts[1]);
            let signature = decode(parts[2]);
            key.as_verification_key().verify_signature(&alg.to_jws(), signing_input.as_bytes(), &signature).unwrap();
            // Any change to the signed part breaks it.
            let altered = format!("{}.{}", parts[0], URL_SAFE_NO_PAD.encode(b"{}"));
            assert!(key.as_verification_key().verify_signature(&alg.to_jws(), altered.as_bytes(), &signature).is_err());
        }
    }

    #[test]
    fn generated_kid_is_the_rfc7638_thumbprint() {
        // The worked example of RFC 7638 §3.1.
        let n = decode(
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS\
             oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-6\
             5YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNL\
             yrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJ\
             zKnqDKgw",
        );
        let example = PublicParts::Rsa { n, e: vec![1, 0, 1] };
        assert_eq!(rfc7638_thumbprint(&example), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");

        for alg in SigningAlgorithm::ALL {
            let key = shared_key(alg);
            assert_eq!(key.kid(), key.jwk_thumbprint());
            assert_eq!(key.kid().len(), 43);
        }
        assert_ne!(
            SigningKey::generate(SigningAlgorithm::Es256).unwrap().kid(),
            shared_key(SigningAlgorithm::Es256).kid()
        );
    }

    #[test]
    fn keys_are_shared_cheaply_across_threads() {
        fn assert_shareable<T: Send + Sync + Clone + 'static>() {}
        assert_shareable::<SigningKey>();

        let key = shared_key(SigningAlgorithm::Es256);
        let copy = key.clone();
        assert!(Arc::ptr_eq(&key.inner, &copy.inner));

        let handles: Vec<_> = (0..4)
            .map(|i| {
                let key = key.clone();
                std::thread::spawn(move || key.sign_jwt("at+jwt", &i).unwrap())
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap().split('.').count(), 3);
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        for alg in SigningAlgorithm::ALL {
            let key = shared_key(alg);
            let debug = format!("{key:?}");
            assert!(debug.contains(key.kid()));
            let pem = key.to_pkcs8_pem().unwrap();
            let body: String = pem.lines().nth(1).unwrap().chars().take(20).collect();
            assert!(!debug.contains(&body));
            assert!(!debug.to_lowercase().contains("private"));
        }
    }
}

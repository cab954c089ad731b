//! Signing throughput of the provider's keys, single-threaded.
//!
//! `cargo bench --bench signing`. Plain `Instant` over a fixed number of
//! iterations (no harness) so it runs in a few seconds; the numbers are for
//! comparing backends and spotting regressions, not for publishing.

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use openidconnect::core::{CoreIdToken, CoreIdTokenClaims, CoreRsaPrivateSigningKey};
use openidconnect::{
    AccessToken, Audience, EmptyAdditionalClaims, IssuerUrl, JsonWebKeyId, Nonce, StandardClaims, SubjectIdentifier,
};
use wxfed::oidc::signing::{SigningAlgorithm, SigningKey};

/// Runs `f` `iterations` times (after a short warm-up) and prints the rate.
fn measure(
    label: &str,
    iterations: u32,
    mut f: impl FnMut() -> Result<(), Box<dyn Error>>,
) -> Result<(), Box<dyn Error>> {
    for _ in 0..iterations / 20 + 1 {
        f()?;
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f()?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!("{label}: {:.0}/s ({iterations} in {elapsed:.2} s)", f64::from(iterations) / elapsed);
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    // A typical ID token body: what the token endpoint signs per request.
    let issuer = IssuerUrl::new("https://id.example.com".into())?;
    let claims = || {
        let now = Utc::now();
        CoreIdTokenClaims::new(
            issuer.clone(),
            vec![Audience::new("client-1".into())],
            now + TimeDelta::minutes(5),
            now,
            StandardClaims::new(SubjectIdentifier::new("0f0b6a4e-6f3c-4d0a-9a43-6c2f4b7a1e55".into())),
            EmptyAdditionalClaims {},
        )
        .set_nonce(Some(Nonce::new("n-0S6_WzA2Mj".into())))
    };
    let access_token = AccessToken::new("kq3XvO7bS3m1Yk9aQe2W5r8TzL0cH6nJ".into());
    let message = [0x5a_u8; 600];

    for (alg, iterations, token_iterations) in [
        (SigningAlgorithm::Rs256, 2_000, 1_000),
        (SigningAlgorithm::Es256, 20_000, 10_000),
        (SigningAlgorithm::EdDsa, 20_000, 10_000),
    ] {
        let key = SigningKey::generate(alg)?;
        measure(&format!("{alg} sign"), iterations, || {
            black_box(key.sign_message(black_box(&message))?);
            Ok(())
        })?;
        measure(&format!("{alg} ID token (openidconnect, with at_hash)"), token_iterations, || {
            let token = CoreIdToken::new(claims(), &key, alg.to_jws(), Some(&access_token), None)?;
            black_box(token.to_string());
            Ok(())
        })?;
        measure(&format!("{alg} access token (sign_jwt)"), token_iterations, || {
            black_box(key.sign_jwt("at+jwt", &("sub", 1_900_000_000_u64))?);
            Ok(())
        })?;
    }

    // Baseline: openidconnect's own RSA signer (RustCrypto `rsa`), which this
    // module replaces. PKCS#1 PEM is what it accepts.
    let rsa = openssl::rsa::Rsa::generate(2048)?;
    let pkcs1 = String::from_utf8(rsa.private_key_to_pem()?)?;
    let baseline = CoreRsaPrivateSigningKey::from_pem(&pkcs1, Some(JsonWebKeyId::new("baseline".into())))?;
    measure("RS256 ID token (baseline: CoreRsaPrivateSigningKey)", 200, || {
        let token = CoreIdToken::new(claims(), &baseline, SigningAlgorithm::Rs256.to_jws(), Some(&access_token), None)?;
        black_box(token.to_string());
        Ok(())
    })?;
    Ok(())
}

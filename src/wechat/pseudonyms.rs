//! Stable pseudonymous OpenIDs and UnionIDs for people WeChat has not told
//! us about yet (a host-issued code for an account never seen in WeChat).
//!
//! Derived with a key from the master key, so they are stable across
//! instances and restarts and reveal nothing. Real OpenIDs and UnionIDs
//! start with `o`; these start with `wxf`, so the two never collide.

use crate::secrets::Secrets;

/// The prefix of every pseudonymous id.
pub const PREFIX: &str = "wxf";

fn derive(secrets: &Secrets, kind: &str, basis: &str, scope: &str) -> String {
    let hash = secrets.identifier_hash(kind, &format!("{basis}\0{scope}"));
    format!("{PREFIX}{}", &hash[..25])
}

/// The OpenID of `basis` (an account or identity id) in `appid`.
pub fn openid(secrets: &Secrets, basis: &str, appid: &str) -> String {
    derive(secrets, "pseudo-openid", basis, appid)
}

/// The UnionID of `basis` in an Open Platform (or an app without one).
pub fn unionid(secrets: &Secrets, basis: &str, platform: &str) -> String {
    derive(secrets, "pseudo-unionid", basis, platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_distinct_and_never_look_real() {
        let secrets = Secrets::from_master_key(&[3; 32]);
        let a = openid(&secrets, "account-1", "wx1");
        assert_eq!(a, openid(&secrets, "account-1", "wx1"));
        assert_ne!(a, openid(&secrets, "account-1", "wx2"), "per app, like real OpenIDs");
        assert_ne!(a, openid(&secrets, "account-2", "wx1"));
        assert_ne!(a, unionid(&secrets, "account-1", "wx1"));
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("wxf") && !a.starts_with('o'));
        let other_key = Secrets::from_master_key(&[4; 32]);
        assert_ne!(a, openid(&other_key, "account-1", "wx1"));
    }
}

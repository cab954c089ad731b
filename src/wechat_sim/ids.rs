//! Identifiers: OpenIDs and UnionIDs derived deterministically (so a
//! restarted simulator with the same seed gives everyone the same ids), and
//! random codes, tokens and session keys in WeChat's observed shapes.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};

/// "o" + 27 URL-safe base64 characters: the 28-character shape of real
/// OpenIDs and UnionIDs (`oGZUI0egBJY1zhBYw2KhdUfwVJJE`).
fn wechat_id(material: &str) -> String {
    let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(material.as_bytes()));
    format!("o{}", &digest[..27])
}

/// The OpenID of `user` in `appid`: one per (person, app). A NUL separates
/// the parts so that ("ab", "c") and ("a", "bc") differ.
pub(super) fn openid(user: &str, appid: &str) -> String {
    wechat_id(&format!("openid\0{user}\0{appid}"))
}

/// The UnionID of `user` under an Open Platform account: the same in every
/// app bound to that account.
pub(super) fn unionid(user: &str, open_platform: &str) -> String {
    wechat_id(&format!("{user}#{open_platform}"))
}

/// A random id in the OpenID shape, for snapshot-page virtual accounts.
pub(super) fn fake_id() -> String {
    let bytes: [u8; 20] = rand::thread_rng().r#gen();
    let encoded = URL_SAFE_NO_PAD.encode(bytes);
    format!("o{}", &encoded[..27])
}

fn alphanumeric(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// A login code: 32 characters of `[0-9A-Za-z]` (observed shape of
/// `wx.login` and OAuth codes).
pub(super) fn code() -> String {
    alphanumeric(32)
}

/// A `getPhoneNumber` code: 64 hex characters (observed shape, §3).
pub(super) fn phone_code() -> String {
    let bytes: [u8; 32] = rand::thread_rng().r#gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An access or refresh token in the observed `NN_…` shape, 136
/// characters long (WeChat says to reserve 512).
pub(super) fn token() -> String {
    format!("86_{}", alphanumeric(133))
}

/// A session_key: 16 random bytes, base64 (24 characters).
pub(super) fn session_key() -> String {
    let bytes: [u8; 16] = rand::thread_rng().r#gen();
    STANDARD.encode(bytes)
}

/// A request id as WeChat appends it to errmsg since 2021:
/// `668f2aa4-51c08c03-3d141241` (the first group looks like a hex Unix
/// time).
pub(super) fn rid(unix_now: i64) -> String {
    let mut rng = rand::thread_rng();
    // Truncation to 32 bits is what the observed rids show.
    let time = unix_now as u32;
    format!("{time:08x}-{:08x}-{:08x}", rng.r#gen::<u32>(), rng.r#gen::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_wechat_shapes() {
        let id = openid("alice", "wx1");
        assert_eq!(id.len(), 28);
        assert!(id.starts_with('o'));
        assert_eq!(id, openid("alice", "wx1"));
        assert_ne!(openid("ab", "c"), openid("a", "bc"));
        assert_eq!(code().len(), 32);
        assert_eq!(phone_code().len(), 64);
        assert_eq!(session_key().len(), 24);
        assert_eq!(fake_id().len(), 28);
        assert_eq!(rid(0x668f_2aa4).len(), 26);
        assert!(rid(0x668f_2aa4).starts_with("668f2aa4-"));
    }
}

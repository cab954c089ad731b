//! What every request handler shares.

use std::sync::Arc;

use crate::accounts::password::PasswordHasher;
use crate::accounts::sessions::SessionPolicy;
use crate::accounts::throttle::ThrottlePolicy;
use crate::config::Settings;
use crate::db::DbPool;
use crate::oidc::keys::KeyStore;
use crate::secrets::Secrets;
use crate::wechat::client::WechatClient;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DbPool,
    pub secrets: Arc<Secrets>,
    pub passwords: PasswordHasher,
    pub session_policy: SessionPolicy,
    pub throttle_policy: ThrottlePolicy,
    pub keys: KeyStore,
    pub wechat: WechatClient,
    /// The discovery document, serialized once (issue 11.3).
    pub discovery: Arc<Result<crate::oidc::discovery::StaticDocument, String>>,
}

impl AppState {
    pub fn new(
        settings: Settings,
        db: DbPool,
        secrets: Secrets,
        passwords: PasswordHasher,
        keys: KeyStore,
        wechat: WechatClient,
    ) -> Self {
        let session_policy = SessionPolicy {
            idle_timeout_secs: settings.session_idle_timeout_secs,
            max_age_secs: settings.session_max_age_secs,
        };
        let throttle_policy = ThrottlePolicy::from_settings(&settings);
        let discovery = Arc::new(crate::oidc::discovery::static_document(&settings.issuer));
        Self {
            discovery,
            settings: Arc::new(settings),
            db,
            secrets: Arc::new(secrets),
            passwords,
            session_policy,
            throttle_policy,
            keys,
            wechat,
        }
    }
}

//! Audit event types.

use serde_json::Value;

/// Retention and filtering group events by category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Logins, logouts and sessions: people proving who they are.
    Authentication,
    /// The OpenID Connect protocol: authorizations, consents, tokens issued,
    /// exchanged, reused and revoked, RP-initiated logout.
    Oidc,
    /// WeChat identities appearing and changing through WeChat itself
    /// (first login, merges, phone numbers) and the FinClip host schemes.
    Wechat,
    /// Changes made by operators and admins (CLI, console).
    Admin,
    /// Auditors reading the trail: who searched what, which event or
    /// account they opened, which export they took (issue 9 §1).
    AuditAccess,
}

impl Category {
    /// Every category, in the order pages list them.
    pub const ALL: [Category; 5] = [Self::Authentication, Self::Oidc, Self::Wechat, Self::Admin, Self::AuditAccess];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authentication => "authentication",
            Self::Oidc => "oidc",
            Self::Wechat => "wechat",
            Self::Admin => "admin",
            Self::AuditAccess => "audit_access",
        }
    }
}

/// Every kind of event wxfed records. The string forms are stable: the
/// console, exports and auditors' queries rely on them. Every action has
/// a label in both languages (`audit-action-…` in `audit.ftl`, checked by
/// a test over [`Action::iter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter)]
pub enum Action {
    LoginPassword,
    Logout,
    SessionExpired,
    UserAdded,
    UserPasswordSet,
    UserDisabled,
    UserEnabled,
    UserRoleAdded,
    UserRoleRemoved,
    ClientAdded,
    ClientRemoved,
    ClientSecretRotated,
    SigningKeyCreated,
    SigningKeyRotated,
    AuditKeyCreated,
    AuditKeyRotated,
    Authorization,
    ConsentGiven,
    ConsentWithdrawn,
    TokenIssued,
    RefreshTokenReused,
    AuthorizationCodeReused,
    TokenRevoked,
    EndSession,
    LoginWechat,
    WechatAppAdded,
    WechatAppRemoved,
    WechatAppSecretRotated,
    WechatIdentityCreated,
    WechatIdentityMerged,
    WechatIdentityLinked,
    WechatIdentityUnlinked,
    PhoneVerified,
    TokenExchange,
    HostCodeIssued,
    HostCodeRedeemed,
    FacadeCall,
    ClientUpdated,
    UserSignedOutEverywhere,
    AdminAccessDenied,
    AdminReauthenticated,
    AdminIdentifiersRevealed,
    UserProfileUpdated,
    UserSessionsRevoked,
    UserGrantRevoked,
    UserConsentWithdrawn,
    AuditSearched,
    AuditEventViewed,
    AuditExported,
    AuditAccountViewed,
    AuditReportViewed,
    UserMerged,
    /// Retention removed the content of old rows (issue 9 item 6).
    AuditPruned,
    AccountsImported,
    /// A logout token reached a client's back-channel logout URI (OpenID
    /// Connect Back-Channel Logout 1.0 §2.5).
    BackchannelLogoutDelivered,
    /// A logout token could not be delivered, after every retry.
    BackchannelLogoutFailed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginPassword => "login.password",
            Self::Logout => "logout",
            Self::SessionExpired => "session.expired",
            Self::UserAdded => "user.added",
            Self::UserPasswordSet => "user.password_set",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::UserRoleAdded => "user.role_added",
            Self::UserRoleRemoved => "user.role_removed",
            Self::ClientAdded => "client.added",
            Self::ClientRemoved => "client.removed",
            Self::ClientSecretRotated => "client.secret_rotated",
            Self::SigningKeyCreated => "signing_key.created",
            Self::SigningKeyRotated => "signing_key.rotated",
            Self::AuditKeyCreated => "audit_key.created",
            Self::AuditKeyRotated => "audit_key.rotated",
            Self::Authorization => "oidc.authorization",
            Self::ConsentGiven => "oidc.consent_given",
            Self::ConsentWithdrawn => "oidc.consent_withdrawn",
            Self::TokenIssued => "oidc.token_issued",
            Self::RefreshTokenReused => "oidc.refresh_token_reused",
            Self::AuthorizationCodeReused => "oidc.code_reused",
            Self::TokenRevoked => "oidc.token_revoked",
            Self::EndSession => "oidc.end_session",
            Self::LoginWechat => "login.wechat",
            Self::WechatAppAdded => "wechat_app.added",
            Self::WechatAppRemoved => "wechat_app.removed",
            Self::WechatAppSecretRotated => "wechat_app.secret_rotated",
            Self::WechatIdentityCreated => "wechat_identity.created",
            Self::WechatIdentityMerged => "wechat_identity.merged",
            Self::WechatIdentityLinked => "wechat_identity.linked",
            Self::WechatIdentityUnlinked => "wechat_identity.unlinked",
            Self::PhoneVerified => "wechat_identity.phone_verified",
            Self::TokenExchange => "oidc.token_exchange",
            Self::HostCodeIssued => "finclip.host_code_issued",
            Self::HostCodeRedeemed => "finclip.host_code_redeemed",
            Self::FacadeCall => "finclip.jscode2session",
            Self::ClientUpdated => "client.updated",
            Self::UserSignedOutEverywhere => "user.signed_out_everywhere",
            Self::AdminAccessDenied => "admin.access_denied",
            Self::AdminReauthenticated => "admin.reauthenticated",
            Self::AdminIdentifiersRevealed => "admin.identifiers_revealed",
            Self::UserProfileUpdated => "user.profile_updated",
            Self::UserSessionsRevoked => "user.sessions_revoked",
            Self::UserGrantRevoked => "user.grant_revoked",
            Self::UserConsentWithdrawn => "user.consent_withdrawn",
            Self::AuditSearched => "audit.searched",
            Self::AuditEventViewed => "audit.event_viewed",
            Self::AuditExported => "audit.exported",
            Self::AuditAccountViewed => "audit.account_viewed",
            Self::AuditReportViewed => "audit.report_viewed",
            Self::UserMerged => "user.merged",
            Self::AuditPruned => "audit.pruned",
            Self::AccountsImported => "import",
            Self::BackchannelLogoutDelivered => "oidc.backchannel_logout_delivered",
            Self::BackchannelLogoutFailed => "oidc.backchannel_logout_failed",
        }
    }

    pub fn category(self) -> Category {
        match self {
            Self::LoginPassword | Self::Logout | Self::SessionExpired | Self::LoginWechat => Category::Authentication,
            Self::Authorization
            | Self::ConsentGiven
            | Self::ConsentWithdrawn
            | Self::TokenIssued
            | Self::RefreshTokenReused
            | Self::AuthorizationCodeReused
            | Self::TokenRevoked
            | Self::EndSession
            | Self::TokenExchange
            | Self::BackchannelLogoutDelivered
            | Self::BackchannelLogoutFailed => Category::Oidc,
            Self::WechatIdentityCreated
            | Self::WechatIdentityMerged
            | Self::PhoneVerified
            | Self::HostCodeIssued
            | Self::HostCodeRedeemed
            | Self::FacadeCall => Category::Wechat,
            Self::UserAdded
            | Self::UserPasswordSet
            | Self::UserDisabled
            | Self::UserEnabled
            | Self::UserRoleAdded
            | Self::UserRoleRemoved
            | Self::ClientAdded
            | Self::ClientRemoved
            | Self::ClientSecretRotated
            | Self::ClientUpdated
            | Self::UserSignedOutEverywhere
            | Self::SigningKeyCreated
            | Self::SigningKeyRotated
            | Self::AuditKeyCreated
            | Self::AuditKeyRotated
            | Self::WechatAppAdded
            | Self::WechatAppRemoved
            | Self::WechatAppSecretRotated
            | Self::WechatIdentityLinked
            | Self::WechatIdentityUnlinked
            | Self::AdminAccessDenied
            | Self::AdminReauthenticated
            | Self::AdminIdentifiersRevealed
            | Self::UserProfileUpdated
            | Self::UserSessionsRevoked
            | Self::UserGrantRevoked
            | Self::UserConsentWithdrawn
            | Self::UserMerged
            | Self::AuditPruned
            | Self::AccountsImported => Category::Admin,
            Self::AuditSearched
            | Self::AuditEventViewed
            | Self::AuditExported
            | Self::AuditAccountViewed
            | Self::AuditReportViewed => Category::AuditAccess,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One event before it is chained. Build with [`AuditEvent::new`] and the
/// `with_*` methods.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub action: Action,
    pub outcome: Outcome,
    /// Machine-readable cause of a failure (e.g. `bad_password`).
    pub reason: Option<String>,
    /// Who did it: `account:<id>`, `cli:<os user>`, `client:<id>`.
    pub actor: Option<String>,
    /// The account the event is about.
    pub account_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Small JSON object with event-specific facts (never secrets).
    pub detail: Value,
}

impl AuditEvent {
    pub fn new(action: Action, outcome: Outcome) -> Self {
        Self {
            action,
            outcome,
            reason: None,
            actor: None,
            account_id: None,
            client_id: None,
            ip: None,
            user_agent: None,
            request_id: None,
            detail: Value::Object(Default::default()),
        }
    }

    pub fn success(action: Action) -> Self {
        Self::new(action, Outcome::Success)
    }

    pub fn failure(action: Action, reason: &str) -> Self {
        Self::new(action, Outcome::Failure).with_reason(reason)
    }

    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn with_account(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    pub fn with_client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Copies IP, user agent and request id from the request's context.
    pub fn with_request(mut self, request: &crate::http::RequestMeta) -> Self {
        self.ip = Some(request.ip.clone());
        self.user_agent = request.user_agent.clone();
        self.request_id = Some(request.request_id.clone());
        self
    }

    /// Adds `key: value` to the detail object.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.detail {
            map.insert(key.to_owned(), value.into());
        }
        self
    }
}

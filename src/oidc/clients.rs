//! Relying parties (OAuth clients): registration rules and lookup.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::signing::SigningAlgorithm;
use crate::accounts::manage::Actor;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn, clients::ClientRow};
use crate::i18n::Message;
use crate::secrets::{Secrets, constant_time_eq, random_bytes, random_token, sha256_hex};

/// The grant types a client may be allowed to use.
///
/// On the command line both the kebab-case names and the RFC spellings
/// (`authorization_code`, …, the RFC 8693 URN) are accepted (issue 8 item 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    #[value(alias = "authorization_code")]
    AuthorizationCode,
    #[value(alias = "refresh_token")]
    RefreshToken,
    #[value(alias = "client_credentials")]
    ClientCredentials,
    /// RFC 8693 (WeChat codes, host-app access tokens).
    #[value(alias = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => TOKEN_EXCHANGE_GRANT,
        }
    }
}

impl FromStr for GrantType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "authorization_code" => Ok(Self::AuthorizationCode),
            "refresh_token" => Ok(Self::RefreshToken),
            "client_credentials" => Ok(Self::ClientCredentials),
            TOKEN_EXCHANGE_GRANT => Ok(Self::TokenExchange),
            other => Err(format!("unknown grant type `{other}`")),
        }
    }
}

/// Scopes wxfed understands. Requests may name others; they are ignored.
pub const KNOWN_SCOPES: &[&str] = &["openid", "profile", "email", "phone", "offline_access", "wechat"];

/// The management API's scopes: never a default, granted only when a
/// client's registration lists them (see `NewClient::validate`).
pub const API_SCOPES: &[&str] = &[crate::api::auth::SCOPE_ADMIN, crate::api::auth::SCOPE_AUDIT];

/// A registered client as the provider sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub id_token_signing_alg: SigningAlgorithm,
    pub always_issue_refresh_token: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The WeChat app (mini-program, mobile app) this client is, if any.
    pub wechat_app: Option<String>,
    /// A host app (FinClip): its access tokens may ask for wx.login codes.
    pub host_app: bool,
    /// The host client whose access tokens this client accepts in a token
    /// exchange (FinClip scheme 3).
    pub trust_host: Option<String>,
    /// The algorithm of its JWT access tokens (RFC 9068 §2.1).
    pub access_token_signing_alg: SigningAlgorithm,
    /// For a host app: the mini-program appids it may mint codes for
    /// (issue 10 item 3); no other appid gets a code.
    pub host_for: Vec<String>,
    /// Where logout tokens are POSTed when a session this client holds
    /// tokens from ends (OpenID Connect Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in logout tokens (§2.2; wxfed always sends it).
    pub backchannel_logout_session_required: bool,
    #[serde(skip)]
    secret_hash: Option<String>,
}

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

impl Client {
    /// A client with its hosted mini-programs; only host apps have any, so
    /// only they pay the second query.
    fn load(conn: &mut DbConn, row: ClientRow) -> diesel::QueryResult<Self> {
        let hosted = if row.host_app { db::clients::hosted_apps(conn, &row.id)? } else { Vec::new() };
        let mut client = Self::from_row(row);
        client.host_for = hosted;
        Ok(client)
    }

    fn from_row(row: ClientRow) -> Self {
        Self {
            client_id: row.id,
            name: row.name,
            public: row.is_public,
            first_party: row.first_party,
            redirect_uris: json_list(&row.redirect_uris),
            post_logout_redirect_uris: json_list(&row.post_logout_redirect_uris),
            grant_types: json_list(&row.grant_types).iter().filter_map(|g| g.parse().ok()).collect(),
            scopes: json_list(&row.scopes),
            // An unknown value (a newer version wrote it) falls back to the default.
            id_token_signing_alg: row.id_token_signing_alg.parse().unwrap_or(SigningAlgorithm::Rs256),
            always_issue_refresh_token: row.always_issue_refresh_token,
            created_at: row.created_at.and_utc(),
            wechat_app: row.wechat_appid,
            host_app: row.host_app,
            trust_host: row.trusted_host_client,
            access_token_signing_alg: row.access_token_signing_alg.parse().unwrap_or(SigningAlgorithm::Rs256),
            host_for: Vec::new(),
            backchannel_logout_uri: row.backchannel_logout_uri,
            backchannel_logout_session_required: row.backchannel_logout_session_required,
            secret_hash: row.secret_hash,
        }
    }

    /// Whether this host app may mint wx.login-shaped codes for `appid`.
    pub fn may_host(&self, appid: &str) -> bool {
        self.host_app && self.host_for.iter().any(|a| a == appid)
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Exact, byte-for-byte comparison (RFC 9700 §4.1.3): no prefix,
    /// wildcard or normalisation.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|registered| registered == uri)
    }

    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|registered| registered == uri)
    }

    /// The requested scopes this client may have, in request order;
    /// unknown or unregistered scopes are dropped (RFC 6749 §3.3 lets
    /// the server narrow the scope).
    pub fn grantable_scopes<'a>(&self, requested: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut granted: Vec<String> = Vec::new();
        for scope in requested {
            if self.scopes.iter().any(|s| s == scope) && !granted.iter().any(|g| g == scope) {
                granted.push(scope.to_owned());
            }
        }
        granted
    }

    /// [`Self::grantable_scopes`] for a token a person obtains through the
    /// client (authorization code, token exchange): never the management
    /// API's scopes, which only a client's own client_credentials token
    /// carries (issue 12 §3).
    pub fn grantable_person_scopes<'a>(&self, requested: impl Iterator<Item = &'a str>) -> Vec<String> {
        self.grantable_scopes(requested.filter(|s| !API_SCOPES.contains(s)))
    }

    /// Constant-time check of a presented secret against the stored hash.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(hash) => constant_time_eq(sha256_hex(presented.as_bytes()).as_bytes(), hash.as_bytes()),
            None => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(Message),
    #[error("no client with the id `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// What an operator supplies to register a client.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub first_party: bool,
    /// Empty: authorization_code + refresh_token.
    pub grant_types: Vec<GrantType>,
    /// Empty: every known scope.
    pub scopes: Vec<String>,
    pub id_token_signing_alg: SigningAlgorithm,
    pub always_issue_refresh_token: bool,
    /// Ties the client to a registered WeChat app.
    pub wechat_app: Option<String>,
    pub host_app: bool,
    pub trust_host: Option<String>,
    pub access_token_signing_alg: SigningAlgorithm,
    /// The mini-program appids a host app may mint codes for.
    pub host_for: Vec<String>,
    /// Back-Channel Logout 1.0 §2.2.
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
}

/// Redirect URIs must be absolute, without a fragment (RFC 6749 §3.1.2),
/// and https — except loopback http for native apps and development (RFC
/// 8252 §7.3) and private-use schemes for native apps (§7.1).
pub fn validate_redirect_uri(uri: &str) -> Result<(), Message> {
    let message = |id| Message::new(id).arg("uri", uri);
    let parsed =
        url::Url::parse(uri).map_err(|e| message("error-redirect-uri-not-absolute").arg("error", e.to_string()))?;
    if parsed.fragment().is_some() {
        return Err(message("error-redirect-uri-fragment"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => match parsed.host_str() {
            Some("localhost" | "127.0.0.1" | "[::1]") => Ok(()),
            _ => Err(message("error-redirect-uri-plain-http")),
        },
        "javascript" | "data" | "file" | "vbscript" => Err(message("error-redirect-uri-scheme-forbidden")),
        // Private-use schemes must look like reverse domain names (RFC 8252 §7.1).
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(message("error-redirect-uri-scheme").arg("scheme", scheme)),
    }
}

/// Back-Channel Logout 1.0 §2.2: the `backchannel_logout_uri` is an
/// absolute URI without a fragment (a query is allowed). wxfed POSTs
/// logout tokens there from the server, so it must be https (a token
/// sent in the clear could log the person out of other places, and
/// reveals their session id), except to a loopback address (development).
pub fn validate_backchannel_logout_uri(uri: &str) -> Result<(), Message> {
    let message = |id| Message::new(id).arg("uri", uri);
    let parsed =
        url::Url::parse(uri).map_err(|e| message("error-redirect-uri-not-absolute").arg("error", e.to_string()))?;
    if parsed.fragment().is_some() {
        return Err(message("error-redirect-uri-fragment"));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain == "localhost",
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(message("error-redirect-uri-plain-http")),
        _ => Err(message("error-backchannel-uri-scheme")),
    }
}

/// Generates a client id: 128 random bits as hex. Only letters and
/// digits, so it never starts with `-` (which command lines and config
/// files would take for an option) and needs no escaping anywhere.
fn new_client_id() -> String {
    crate::secrets::hex(&random_bytes::<16>())
}

impl NewClient {
    fn validate(&self) -> Result<(Vec<GrantType>, Vec<String>), ClientError> {
        let invalid = |id| ClientError::Invalid(Message::new(id));
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid("error-client-name"));
        }
        for uri in self.redirect_uris.iter().chain(&self.post_logout_redirect_uris) {
            validate_redirect_uri(uri).map_err(ClientError::Invalid)?;
        }
        match &self.backchannel_logout_uri {
            Some(uri) => validate_backchannel_logout_uri(uri).map_err(ClientError::Invalid)?,
            None if self.backchannel_logout_session_required => {
                return Err(invalid("error-client-backchannel-session-needs-uri"));
            }
            None => {}
        }
        let mut grants = if !self.grant_types.is_empty() {
            self.grant_types.clone()
        } else if self.wechat_app.is_some() || self.trust_host.is_some() {
            // A mini-program or app client logs in by exchanging codes.
            vec![GrantType::TokenExchange, GrantType::RefreshToken]
        } else {
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        };
        grants.dedup();
        if grants.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err(invalid("error-client-code-needs-redirect"));
        }
        if self.public && grants.contains(&GrantType::ClientCredentials) {
            return Err(invalid("error-client-public-credentials"));
        }
        let scopes: Vec<String> = if self.scopes.is_empty() {
            KNOWN_SCOPES.iter().map(|s| s.to_string()).collect()
        } else {
            self.scopes.clone()
        };
        for scope in &scopes {
            if scope.is_empty() || !scope.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\') {
                return Err(ClientError::Invalid(Message::new("error-client-scope").arg("scope", scope.as_str())));
            }
        }
        // The management API's scopes (issue 12 §3) reach a client only
        // when an admin lists them, and only a confidential client that
        // uses client_credentials: its tokens are its own, not a person's.
        if scopes.iter().any(|s| API_SCOPES.contains(&s.as_str()))
            && (self.public || !grants.contains(&GrantType::ClientCredentials))
        {
            return Err(invalid("error-client-api-scope"));
        }
        if !self.host_for.is_empty() && !self.host_app {
            return Err(invalid("error-client-host-for-needs-host-app"));
        }
        Ok((grants, scopes))
    }
}

/// Registers a client; returns it and, for a confidential client, its
/// secret (shown once, stored only as a SHA-256).
pub fn register(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    new: &NewClient,
) -> Result<(Client, Option<String>), ClientError> {
    let (grant_types, scopes) = new.validate()?;
    let secret = (!new.public).then(random_token);
    let now = db::now();
    let grant_names: Vec<String> = grant_types.iter().map(|g| g.as_str().to_owned()).collect();
    let row = ClientRow {
        id: new_client_id(),
        name: new.name.trim().to_owned(),
        secret_hash: secret.as_deref().map(|s| sha256_hex(s.as_bytes())),
        is_public: new.public,
        first_party: new.first_party,
        redirect_uris: to_json(&new.redirect_uris),
        post_logout_redirect_uris: to_json(&new.post_logout_redirect_uris),
        grant_types: to_json(&grant_names),
        scopes: to_json(&scopes),
        id_token_signing_alg: new.id_token_signing_alg.as_str().to_owned(),
        always_issue_refresh_token: new.always_issue_refresh_token,
        created_at: now,
        updated_at: now,
        wechat_appid: new.wechat_app.clone(),
        host_app: new.host_app,
        trusted_host_client: new.trust_host.clone(),
        access_token_signing_alg: new.access_token_signing_alg.as_str().to_owned(),
        backchannel_logout_uri: new.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: new.backchannel_logout_session_required,
    };
    let host_for = dedup(&new.host_for);
    db::write_transaction(conn, |conn| {
        check_references(conn, row.wechat_appid.as_deref(), row.trusted_host_client.as_deref(), &new.host_for)?;
        db::clients::insert(conn, &row)?;
        db::clients::set_hosted_apps(conn, &row.id, &host_for)?;
        let event = AuditEvent::success(Action::ClientAdded)
            .with_actor(actor.0.clone())
            .with_client(row.id.clone())
            .with_detail("name", row.name.clone())
            .with_detail("public", row.is_public)
            .with_detail("first_party", row.first_party)
            .with_detail("redirect_uris", new.redirect_uris.clone())
            .with_detail("grant_types", grant_names.clone())
            .with_detail("host_for", new.host_for.clone())
            .with_detail("backchannel_logout_uri", new.backchannel_logout_uri.clone());
        audit::append(conn, secrets, &event)?;
        Ok::<_, ClientError>(())
    })?;
    let mut client = Client::from_row(row);
    client.host_for = host_for;
    Ok((client, secret))
}

fn dedup(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in list {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// What a client names elsewhere must exist: its WeChat app, the host it
/// trusts (a host app), the mini-programs it hosts (registered
/// mini-programs).
fn check_references(
    conn: &mut DbConn,
    wechat_app: Option<&str>,
    trust_host: Option<&str>,
    host_for: &[String],
) -> Result<(), ClientError> {
    if let Some(appid) = wechat_app
        && db::wechat::find_app(conn, appid)?.is_none()
    {
        return Err(ClientError::Invalid(Message::new("error-client-unknown-wechat-app").arg("appid", appid)));
    }
    if let Some(host) = trust_host {
        match db::clients::find(conn, host)? {
            Some(host) if host.host_app => {}
            Some(_) => {
                return Err(ClientError::Invalid(Message::new("error-client-not-host-app").arg("host", host)));
            }
            None => return Err(ClientError::Invalid(Message::new("error-client-no-host").arg("host", host))),
        }
    }
    for appid in host_for {
        match crate::wechat::apps::find(conn, appid)? {
            Some(app) if app.kind == crate::wechat::apps::AppKind::MiniProgram => {}
            _ => {
                return Err(ClientError::Invalid(
                    Message::new("error-client-not-mini-program").arg("appid", appid.as_str()),
                ));
            }
        }
    }
    Ok(())
}

/// A change to a registered client; `None` leaves a setting as it is.
/// Lists given here replace the registered list, except redirect URIs,
/// which may also be added to or removed from one by one.
#[derive(Debug, Clone, Default)]
pub struct ClientUpdate {
    pub name: Option<String>,
    /// Replaces the redirect URIs (applied before the additions and removals).
    pub redirect_uris: Option<Vec<String>>,
    pub add_redirect_uris: Vec<String>,
    pub remove_redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<GrantType>>,
    pub scopes: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub id_token_signing_alg: Option<SigningAlgorithm>,
    pub access_token_signing_alg: Option<SigningAlgorithm>,
    /// `Some(None)` unties the client from its WeChat app.
    pub wechat_app: Option<Option<String>>,
    pub host_app: Option<bool>,
    pub host_for: Option<Vec<String>>,
    /// `Some(None)` stops trusting a host.
    pub trust_host: Option<Option<String>>,
    /// `Some(None)` removes the back-channel logout URI.
    pub backchannel_logout_uri: Option<Option<String>>,
    pub backchannel_logout_session_required: Option<bool>,
}

/// The non-secret settings of a client, for the audit trail's
/// before/after record of an update.
fn audit_view(client: &Client) -> serde_json::Value {
    serde_json::json!({
        "name": client.name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scopes": client.scopes,
        "first_party": client.first_party,
        "id_token_signing_alg": client.id_token_signing_alg.as_str(),
        "access_token_signing_alg": client.access_token_signing_alg.as_str(),
        "wechat_app": client.wechat_app,
        "host_app": client.host_app,
        "host_for": client.host_for,
        "trust_host": client.trust_host,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
    })
}

/// Changes a registered client under the same rules as registration,
/// audited with the settings before and after (never the secret). Tokens
/// already issued stay valid; the new settings apply to the next request.
pub fn update(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    client_id: &str,
    change: &ClientUpdate,
) -> Result<Client, ClientError> {
    db::write_transaction(conn, |conn| {
        let before = find(conn, client_id)?.ok_or_else(|| ClientError::NotFound(client_id.to_owned()))?;
        let mut redirect_uris = change.redirect_uris.clone().unwrap_or_else(|| before.redirect_uris.clone());
        for uri in &change.add_redirect_uris {
            if !redirect_uris.contains(uri) {
                redirect_uris.push(uri.clone());
            }
        }
        for uri in &change.remove_redirect_uris {
            if !redirect_uris.contains(uri) {
                return Err(ClientError::Invalid(
                    Message::new("error-client-no-such-redirect").arg("uri", uri.as_str()),
                ));
            }
            redirect_uris.retain(|u| u != uri);
        }
        let host_app = change.host_app.unwrap_or(before.host_app);
        let host_for = match &change.host_for {
            Some(list) => dedup(list),
            // A client that stops being a host app hosts nothing.
            None if !host_app => Vec::new(),
            None => before.host_for.clone(),
        };
        let merged = NewClient {
            name: change.name.clone().unwrap_or_else(|| before.name.clone()),
            redirect_uris,
            post_logout_redirect_uris: change
                .post_logout_redirect_uris
                .clone()
                .unwrap_or_else(|| before.post_logout_redirect_uris.clone()),
            public: before.public,
            first_party: change.first_party.unwrap_or(before.first_party),
            grant_types: change.grant_types.clone().unwrap_or_else(|| before.grant_types.clone()),
            scopes: change.scopes.clone().unwrap_or_else(|| before.scopes.clone()),
            id_token_signing_alg: change.id_token_signing_alg.unwrap_or(before.id_token_signing_alg),
            access_token_signing_alg: change.access_token_signing_alg.unwrap_or(before.access_token_signing_alg),
            always_issue_refresh_token: before.always_issue_refresh_token,
            wechat_app: change.wechat_app.clone().unwrap_or_else(|| before.wechat_app.clone()),
            host_app,
            trust_host: change.trust_host.clone().unwrap_or_else(|| before.trust_host.clone()),
            host_for,
            backchannel_logout_uri: change
                .backchannel_logout_uri
                .clone()
                .unwrap_or_else(|| before.backchannel_logout_uri.clone()),
            // Removing the URI drops the requirement that came with it.
            backchannel_logout_session_required: change.backchannel_logout_session_required.unwrap_or(
                before.backchannel_logout_session_required && !matches!(change.backchannel_logout_uri, Some(None)),
            ),
        };
        if change.grant_types.as_ref().is_some_and(Vec::is_empty) || change.scopes.as_ref().is_some_and(Vec::is_empty) {
            return Err(ClientError::Invalid(Message::new("error-client-needs-grant-and-scope")));
        }
        let (grant_types, scopes) = merged.validate()?;
        if merged.trust_host.as_deref() == Some(client_id) {
            return Err(ClientError::Invalid(Message::new("error-client-trusts-itself")));
        }
        check_references(conn, merged.wechat_app.as_deref(), merged.trust_host.as_deref(), &merged.host_for)?;
        if before.host_app && !merged.host_app && db::clients::is_trusted_as_host(conn, client_id)? {
            return Err(ClientError::Invalid(Message::new("error-client-trusted-as-host").arg("client_id", client_id)));
        }
        let grant_names: Vec<String> = grant_types.iter().map(|g| g.as_str().to_owned()).collect();
        db::clients::update_settings(
            conn,
            client_id,
            &db::clients::ClientSettings {
                name: merged.name.trim().to_owned(),
                first_party: merged.first_party,
                redirect_uris: to_json(&merged.redirect_uris),
                post_logout_redirect_uris: to_json(&merged.post_logout_redirect_uris),
                grant_types: to_json(&grant_names),
                scopes: to_json(&scopes),
                id_token_signing_alg: merged.id_token_signing_alg.as_str().to_owned(),
                access_token_signing_alg: merged.access_token_signing_alg.as_str().to_owned(),
                wechat_appid: merged.wechat_app.clone(),
                host_app: merged.host_app,
                trusted_host_client: merged.trust_host.clone(),
                backchannel_logout_uri: merged.backchannel_logout_uri.clone(),
                backchannel_logout_session_required: merged.backchannel_logout_session_required,
                updated_at: db::now(),
            },
        )?;
        db::clients::set_hosted_apps(conn, client_id, &merged.host_for)?;
        let after = find(conn, client_id)?.ok_or_else(|| ClientError::NotFound(client_id.to_owned()))?;
        let event = AuditEvent::success(Action::ClientUpdated)
            .with_actor(actor.0.clone())
            .with_client(client_id)
            .with_detail("before", audit_view(&before))
            .with_detail("after", audit_view(&after));
        audit::append(conn, secrets, &event)?;
        Ok(after)
    })
}

pub fn find(conn: &mut DbConn, client_id: &str) -> diesel::QueryResult<Option<Client>> {
    db::clients::find(conn, client_id)?.map(|row| Client::load(conn, row)).transpose()
}

pub fn list(conn: &mut DbConn) -> diesel::QueryResult<Vec<Client>> {
    db::clients::list(conn)?.into_iter().map(|row| Client::load(conn, row)).collect()
}

/// Removes a client and, through the foreign keys, every grant, code and
/// token issued to it.
pub fn remove(conn: &mut DbConn, secrets: &Secrets, actor: &Actor, client_id: &str) -> Result<(), ClientError> {
    db::write_transaction(conn, |conn| {
        if !db::clients::delete(conn, client_id)? {
            return Err(ClientError::NotFound(client_id.to_owned()));
        }
        let event = AuditEvent::success(Action::ClientRemoved).with_actor(actor.0.clone()).with_client(client_id);
        audit::append(conn, secrets, &event)?;
        Ok(())
    })
}

/// Replaces a confidential client's secret; the old one stops working at
/// once. Returns the new secret.
pub fn rotate_secret(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    client_id: &str,
) -> Result<String, ClientError> {
    let secret = random_token();
    db::write_transaction(conn, |conn| {
        let client = find(conn, client_id)?.ok_or_else(|| ClientError::NotFound(client_id.to_owned()))?;
        if client.public {
            return Err(ClientError::Invalid(
                Message::new("error-client-public-no-secret").arg("client_id", client_id),
            ));
        }
        db::clients::set_secret_hash(conn, client_id, &sha256_hex(secret.as_bytes()), db::now())?;
        let event = AuditEvent::success(Action::ClientSecretRotated).with_actor(actor.0.clone()).with_client(client_id);
        audit::append(conn, secrets, &event)?;
        Ok(())
    })?;
    Ok(secret)
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_plain_hex() {
        for _ in 0..200 {
            let id = new_client_id();
            assert_eq!(id.len(), 32);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }

    #[test]
    fn redirect_uris_follow_rfc_8252_and_9700() {
        assert!(validate_redirect_uri("https://app.example.com/cb").is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1:8000/cb").is_ok());
        assert!(validate_redirect_uri("http://localhost/cb").is_ok());
        assert!(validate_redirect_uri("com.example.app:/oauth2redirect").is_ok());
        assert!(validate_redirect_uri("http://app.example.com/cb").is_err());
        assert!(validate_redirect_uri("https://app.example.com/cb#frag").is_err());
        assert!(validate_redirect_uri("javascript:alert(1)").is_err());
        assert!(validate_redirect_uri("/relative").is_err());
        assert!(validate_redirect_uri("myapp:/cb").is_err());
    }

    #[test]
    fn backchannel_logout_uris_follow_section_2_2() {
        assert!(validate_backchannel_logout_uri("https://rp.example.com/bcl?x=1").is_ok());
        assert!(validate_backchannel_logout_uri("http://127.0.0.1:8000/bcl").is_ok());
        assert!(validate_backchannel_logout_uri("http://[::1]:8000/bcl").is_ok());
        assert!(validate_backchannel_logout_uri("http://localhost/bcl").is_ok());
        assert!(validate_backchannel_logout_uri("http://rp.example.com/bcl").is_err());
        assert!(validate_backchannel_logout_uri("https://rp.example.com/bcl#x").is_err());
        assert!(validate_backchannel_logout_uri("/bcl").is_err());
        assert!(validate_backchannel_logout_uri("com.example.app:/bcl").is_err());
        assert!(validate_backchannel_logout_uri("javascript:alert(1)").is_err());
    }
}

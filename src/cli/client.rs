//! `wxfed client …`

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::output::{CliError, print};
use crate::accounts::manage::Actor;
use crate::oidc::clients::{self, Client, ClientUpdate, GrantType, NewClient};
use crate::oidc::signing::SigningAlgorithm;
use crate::startup::Backend;

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a client; prints its client_id and, for a confidential
    /// client, its secret (shown this once only).
    Add(AddArgs),
    /// List clients.
    List,
    /// Change a client's settings; only the settings named change.
    Update(UpdateArgs),
    /// Remove a client and everything issued to it.
    Remove { client_id: String },
    /// Replace a confidential client's secret; the old one stops working at once.
    RotateSecret { client_id: String },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// A name people see on the consent page.
    name: String,
    /// Where authorization responses may go (exact match; repeatable).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Where the browser may return after logout (exact match; repeatable).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (mobile, single-page, mini-program): no secret, PKCE required.
    #[arg(long)]
    public: bool,
    /// Trusted first-party application: no consent page.
    #[arg(long)]
    first_party: bool,
    /// Allowed grant type (repeatable); default authorization-code and refresh-token.
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<GrantType>,
    /// Allowed scope (repeatable); default openid profile email phone offline_access.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// ID token signing algorithm: RS256, ES256 or EdDSA.
    #[arg(long, default_value = "RS256", value_parser = parse_alg)]
    id_token_alg: SigningAlgorithm,
    /// Access token (RFC 9068 JWT) signing algorithm: RS256, ES256 or EdDSA.
    /// Resource servers verifying the tokens must support it.
    #[arg(long, default_value = "RS256", value_parser = parse_alg)]
    access_token_alg: SigningAlgorithm,
    /// Issue refresh tokens even when offline_access is not requested.
    #[arg(long)]
    refresh_tokens: bool,
    /// The WeChat app (mini-program or mobile app) this client is; its
    /// OpenID is released with scope `wechat`.
    #[arg(long, value_name = "APPID")]
    wechat_app: Option<String>,
    /// The enterprise's own app hosting mini-programs (FinClip): its access
    /// tokens may ask for wx.login-shaped codes.
    #[arg(long)]
    host_app: bool,
    /// Accept this host client's access tokens in a token exchange (FinClip scheme 3).
    #[arg(long, value_name = "CLIENT_ID")]
    trust_host: Option<String>,
    /// With --host-app: a mini-program it may mint codes for (repeatable);
    /// a host app mints codes for no other.
    #[arg(long = "host-for", value_name = "APPID", requires = "host_app")]
    host_for: Vec<String>,
    /// Where wxfed POSTs a logout token when a session this client holds
    /// tokens from ends (OpenID Connect Back-Channel Logout 1.0): https, or
    /// http to a loopback address.
    #[arg(long, value_name = "URI")]
    backchannel_logout_uri: Option<String>,
    /// The client requires `sid` in logout tokens (wxfed always sends it).
    #[arg(long, requires = "backchannel_logout_uri")]
    backchannel_logout_session_required: bool,
}

/// `wxfed client update CLIENT_ID …`. A list option (`--redirect-uri`,
/// `--grant-type`, …) replaces the whole list when given; redirect URIs can
/// also be changed one by one with `--add-redirect-uri` and
/// `--remove-redirect-uri`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    client_id: String,
    #[arg(long)]
    name: Option<String>,
    /// Replace the redirect URIs with these (repeatable).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Add a redirect URI (repeatable).
    #[arg(long = "add-redirect-uri", value_name = "URI")]
    add_redirect_uris: Vec<String>,
    /// Remove a redirect URI (repeatable).
    #[arg(long = "remove-redirect-uri", value_name = "URI")]
    remove_redirect_uris: Vec<String>,
    /// Replace the post-logout redirect URIs with these (repeatable).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI", conflicts_with = "no_post_logout_redirect_uris")]
    post_logout_redirect_uris: Vec<String>,
    /// Remove every post-logout redirect URI.
    #[arg(long)]
    no_post_logout_redirect_uris: bool,
    /// Replace the allowed grant types (repeatable).
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<GrantType>,
    /// Replace the allowed scopes (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Trusted first-party application (no consent page): true or false.
    #[arg(long, value_name = "BOOL")]
    first_party: Option<bool>,
    /// ID token signing algorithm: RS256, ES256 or EdDSA.
    #[arg(long, value_parser = parse_alg)]
    id_token_alg: Option<SigningAlgorithm>,
    /// Access token signing algorithm: RS256, ES256 or EdDSA.
    #[arg(long, value_parser = parse_alg)]
    access_token_alg: Option<SigningAlgorithm>,
    /// Tie the client to this WeChat app.
    #[arg(long, value_name = "APPID", conflicts_with = "no_wechat_app")]
    wechat_app: Option<String>,
    /// Untie the client from its WeChat app.
    #[arg(long)]
    no_wechat_app: bool,
    /// A host app (FinClip): true or false.
    #[arg(long, value_name = "BOOL")]
    host_app: Option<bool>,
    /// Replace the mini-programs a host app may mint codes for (repeatable).
    #[arg(long = "host-for", value_name = "APPID", conflicts_with = "no_host_for")]
    host_for: Vec<String>,
    /// The host app may mint codes for no mini-program.
    #[arg(long)]
    no_host_for: bool,
    /// Accept this host client's access tokens in a token exchange.
    #[arg(long, value_name = "CLIENT_ID", conflicts_with = "no_trust_host")]
    trust_host: Option<String>,
    /// Stop trusting a host app.
    #[arg(long)]
    no_trust_host: bool,
    /// Set the back-channel logout URI (https, or http to a loopback address).
    #[arg(long, value_name = "URI", conflicts_with = "no_backchannel_logout_uri")]
    backchannel_logout_uri: Option<String>,
    /// Remove the back-channel logout URI: the client hears of no logout.
    #[arg(long)]
    no_backchannel_logout_uri: bool,
    /// Whether the client requires `sid` in logout tokens: true or false
    /// (given without a value: true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    backchannel_logout_session_required: Option<bool>,
}

/// A repeatable option given at least once replaces the list.
fn replace(list: Vec<String>, clear: bool) -> Option<Vec<String>> {
    if clear || !list.is_empty() { Some(list) } else { None }
}

/// An optional value that can also be cleared.
fn set_or_clear(value: Option<String>, clear: bool) -> Option<Option<String>> {
    if clear { Some(None) } else { value.map(Some) }
}

impl UpdateArgs {
    fn into_update(self) -> (String, ClientUpdate) {
        let change = ClientUpdate {
            name: self.name,
            redirect_uris: replace(self.redirect_uris, false),
            add_redirect_uris: self.add_redirect_uris,
            remove_redirect_uris: self.remove_redirect_uris,
            post_logout_redirect_uris: replace(self.post_logout_redirect_uris, self.no_post_logout_redirect_uris),
            grant_types: (!self.grant_types.is_empty()).then_some(self.grant_types),
            scopes: replace(self.scopes, false),
            first_party: self.first_party,
            id_token_signing_alg: self.id_token_alg,
            access_token_signing_alg: self.access_token_alg,
            wechat_app: set_or_clear(self.wechat_app, self.no_wechat_app),
            host_app: self.host_app,
            host_for: replace(self.host_for, self.no_host_for),
            trust_host: set_or_clear(self.trust_host, self.no_trust_host),
            backchannel_logout_uri: set_or_clear(self.backchannel_logout_uri, self.no_backchannel_logout_uri),
            backchannel_logout_session_required: self.backchannel_logout_session_required,
        };
        (self.client_id, change)
    }
}

fn parse_alg(value: &str) -> Result<SigningAlgorithm, String> {
    value.parse().map_err(|_| format!("`{value}` is not RS256, ES256 or EdDSA"))
}

fn describe(client: &Client) -> String {
    let grants: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
    format!(
        "{}  {}  {}{}  grants={}  redirect_uris={}",
        client.client_id,
        client.name,
        if client.public { "public" } else { "confidential" },
        if client.first_party { ", first-party" } else { "" },
        grants.join(","),
        client.redirect_uris.join(","),
    )
}

pub fn run(command: ClientCommand, backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    let mut conn = backend.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    let conn = &mut *conn;
    let secrets = &backend.secrets;
    let actor = Actor::cli();
    match command {
        ClientCommand::Add(args) => {
            let new = NewClient {
                name: args.name,
                redirect_uris: args.redirect_uris,
                post_logout_redirect_uris: args.post_logout_redirect_uris,
                public: args.public,
                first_party: args.first_party,
                grant_types: args.grant_types,
                scopes: args.scopes,
                id_token_signing_alg: args.id_token_alg,
                always_issue_refresh_token: args.refresh_tokens,
                wechat_app: args.wechat_app,
                host_app: args.host_app,
                trust_host: args.trust_host,
                access_token_signing_alg: args.access_token_alg,
                host_for: args.host_for,
                backchannel_logout_uri: args.backchannel_logout_uri,
                backchannel_logout_session_required: args.backchannel_logout_session_required,
            };
            let (client, secret) = clients::register(conn, secrets, &actor, &new)?;
            let mut value = serde_json::to_value(&client).unwrap_or_default();
            value["client_secret"] = secret.clone().into();
            let mut text = format!("added {}\nclient_id:     {}", describe(&client), client.client_id);
            if let Some(secret) = &secret {
                text.push_str(&format!("\nclient_secret: {secret}\n(the secret is shown only now; store it safely)"));
            }
            print(json, &value, &text);
        }
        ClientCommand::List => {
            let list = clients::list(conn)?;
            let text = if list.is_empty() {
                "no clients".to_owned()
            } else {
                list.iter().map(describe).collect::<Vec<_>>().join("\n")
            };
            print(json, &list, &text);
        }
        ClientCommand::Update(args) => {
            let (client_id, change) = args.into_update();
            let client = clients::update(conn, secrets, &actor, &client_id, &change)?;
            print(json, &client, &format!("updated {}", describe(&client)));
        }
        ClientCommand::Remove { client_id } => {
            clients::remove(conn, secrets, &actor, &client_id)?;
            print(
                json,
                &serde_json::json!({ "client_id": client_id, "removed": true }),
                &format!("removed {client_id}"),
            );
        }
        ClientCommand::RotateSecret { client_id } => {
            let secret = clients::rotate_secret(conn, secrets, &actor, &client_id)?;
            let value = serde_json::json!({ "client_id": client_id, "client_secret": secret });
            print(
                json,
                &value,
                &format!("client_id:     {client_id}\nclient_secret: {secret}\n(the secret is shown only now)"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

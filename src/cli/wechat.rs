//! `wxfed wechat-app …`, `wxfed link`, `wxfed unlink`, `wxfed identity …`.

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::output::{CliError, print};
use crate::accounts::manage::{self, Actor};
use crate::config::SecretString;
use crate::db;
use crate::startup::Backend;
use crate::wechat::apps::{self, AppKind, NewApp, WechatApp};
use crate::wechat::identities::{self, ExternalId, Identity, IdentityError};

#[derive(Subcommand, Debug)]
pub enum WechatAppCommand {
    /// Register a WeChat app; the AppSecret is read from standard input.
    Add(AddAppArgs),
    /// List registered WeChat apps (never their secrets).
    List,
    /// Remove a WeChat app.
    Remove { appid: String },
    /// Replace an app's AppSecret (read from standard input).
    RotateSecret {
        appid: String,
        #[arg(long, required = true)]
        secret_stdin: bool,
    },
}

#[derive(Args, Debug)]
pub struct AddAppArgs {
    #[arg(long, value_enum)]
    kind: AppKind,
    #[arg(long)]
    appid: String,
    #[arg(long)]
    name: String,
    /// The Open Platform account the app is bound to (apps of one platform share UnionIDs).
    #[arg(long, value_name = "NAME")]
    open_platform: Option<String>,
    /// The web authorization domain registered with WeChat (official accounts, websites).
    #[arg(long, value_name = "HOST")]
    redirect_domain: Option<String>,
    /// Read the AppSecret from standard input.
    #[arg(long, required = true)]
    secret_stdin: bool,
}

/// Which identity: by UnionID, or by an app's OpenID.
#[derive(Args, Debug)]
pub struct IdentitySelector {
    /// The person's UnionID (with --open-platform when several Open
    /// Platforms are registered).
    #[arg(long, conflicts_with_all = ["appid", "openid"])]
    unionid: Option<String>,
    /// The Open Platform of --unionid (default: the only one registered).
    #[arg(long, requires = "unionid", value_name = "NAME")]
    open_platform: Option<String>,
    /// A registered app's AppID, with --openid.
    #[arg(long, requires = "openid")]
    appid: Option<String>,
    /// The person's OpenID in --appid.
    #[arg(long, requires = "appid")]
    openid: Option<String>,
}

/// `wxfed link` / `wxfed unlink` arguments.
#[derive(Args, Debug)]
pub struct LinkArgs {
    /// The account.
    pub username: String,
    #[command(flatten)]
    pub identity: IdentitySelector,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum IdentityCommand {
    /// The most recent WeChat identities.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One identity, with its OpenIDs and linked account.
    Show(IdentitySelector),
}

fn read_secret() -> Result<SecretString, CliError> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| CliError::Other(format!("cannot read the AppSecret from standard input: {e}")))?;
    Ok(SecretString::new(input.trim()))
}

fn describe_app(app: &WechatApp) -> String {
    format!(
        "{}  {}  {}  open_platform={}",
        app.appid,
        app.kind.as_str(),
        app.name,
        app.open_platform.as_deref().unwrap_or("-")
    )
}

pub fn run_app(command: WechatAppCommand, backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    let mut conn = backend.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    let (conn, secrets, actor) = (&mut *conn, &backend.secrets, Actor::cli());
    match command {
        WechatAppCommand::Add(args) => {
            let new = NewApp {
                appid: args.appid,
                kind: args.kind,
                name: args.name,
                open_platform: args.open_platform,
                redirect_domain: args.redirect_domain,
                secret: read_secret()?,
            };
            let app = apps::register(conn, secrets, &actor, &new).map_err(|e| CliError::Other(e.to_string()))?;
            print(json, &app, &format!("added {}", describe_app(&app)));
        }
        WechatAppCommand::List => {
            let list = apps::list(conn)?;
            let text = if list.is_empty() {
                "no WeChat apps".into()
            } else {
                list.iter().map(describe_app).collect::<Vec<_>>().join("\n")
            };
            print(json, &list, &text);
        }
        WechatAppCommand::Remove { appid } => {
            apps::remove(conn, secrets, &actor, &appid).map_err(|e| CliError::Other(e.to_string()))?;
            print(json, &serde_json::json!({ "appid": appid, "removed": true }), &format!("removed {appid}"));
        }
        WechatAppCommand::RotateSecret { appid, .. } => {
            apps::rotate_secret(conn, secrets, &actor, &appid, &read_secret()?)
                .map_err(|e| CliError::Other(e.to_string()))?;
            print(
                json,
                &serde_json::json!({ "appid": appid, "rotated": true }),
                &format!("secret replaced for {appid}"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn select(conn: &mut db::DbConn, selector: &IdentitySelector) -> Result<Identity, CliError> {
    if selector.unionid.is_none() && selector.openid.is_none() {
        return Err(CliError::Other("name the identity with --unionid, or --appid and --openid".into()));
    }
    let row = match external(conn, selector)? {
        Some(id) => identities::find_external(conn, &id)
            .map_err(|e| CliError::Other(e.to_string()))?
            .ok_or_else(|| CliError::Other(IdentityError::NotFound.to_string()))?,
        None => identities::find_by(conn, selector.unionid.as_deref(), None, None)
            .map_err(|e| CliError::Other(e.to_string()))?,
    };
    Ok(identities::describe(conn, row)?)
}

/// The external id the selector names; `None` for a UnionID without an
/// Open Platform when several are registered (then any platform's).
fn external(conn: &mut db::DbConn, selector: &IdentitySelector) -> Result<Option<ExternalId>, CliError> {
    if let (Some(appid), Some(openid)) = (&selector.appid, &selector.openid) {
        return Ok(Some(ExternalId::OpenId { appid: appid.clone(), openid: openid.clone() }));
    }
    let Some(unionid) = &selector.unionid else {
        return Err(CliError::Other("name the identity with --unionid, or --appid and --openid".into()));
    };
    let open_platform = match &selector.open_platform {
        Some(platform) => platform.clone(),
        None => {
            let mut platforms: Vec<String> = apps::list(conn)?.into_iter().filter_map(|a| a.open_platform).collect();
            platforms.sort();
            platforms.dedup();
            // An identity wxfed already knows names its own platform; only
            // a new one (pre-provisioning) needs it said when several exist.
            let mut known = Vec::new();
            for platform in &platforms {
                if db::wechat::find_identity_by_unionid(conn, platform, unionid)?.is_some() {
                    known.push(platform.clone());
                }
            }
            match (known.len(), platforms.len()) {
                (1, _) => known.remove(0),
                (0, 1) => platforms.remove(0),
                _ => return Ok(None),
            }
        }
    };
    Ok(Some(ExternalId::UnionId { open_platform, unionid: unionid.clone() }))
}

fn describe_identity(identity: &Identity, username: Option<&str>) -> String {
    let openids: Vec<String> = identity.openids.iter().map(|o| format!("{}={}", o.appid, o.openid)).collect();
    format!(
        "{}  unionid={}  account={}  nickname={}  openids: {}",
        identity.id,
        identity.unionid.as_deref().unwrap_or("-"),
        username.unwrap_or("-"),
        identity.nickname.as_deref().unwrap_or("-"),
        openids.join(", ")
    )
}

/// `wxfed link <username> …`: an admin links an identity to an account,
/// creating (pre-provisioning) the identity when wxfed has never seen it,
/// so the person's first WeChat login lands on this account.
pub fn run_link(args: &LinkArgs, backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    let mut conn = backend.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    let (conn, secrets, actor) = (&mut *conn, &backend.secrets, Actor::cli());
    let account = manage::find_by_username(conn, &args.username)?;
    let reason = args.reason.as_deref().unwrap_or("").trim();
    let reason = if reason.is_empty() { "wxfed link" } else { reason };
    let (identity, created) = match external(conn, &args.identity)? {
        Some(id) => db::write_transaction(conn, |conn| {
            identities::link_external(conn, secrets, &actor, account.id.as_str(), &id, reason)
        })
        .map_err(|e| CliError::Other(e.to_string()))?,
        None => {
            return Err(CliError::Other(
                "several Open Platforms are registered: name the UnionID's with --open-platform".into(),
            ));
        }
    };
    let value = serde_json::json!({
        "identity": identity.id,
        "account_id": account.id,
        "username": account.username,
        "linked": true,
        "created": created,
    });
    let text = if created {
        format!("WeChat identity {} pre-provisioned and linked to {}", identity.id, account.username)
    } else {
        format!("WeChat identity {} linked to {}", identity.id, account.username)
    };
    print(json, &value, &text);
    Ok(ExitCode::SUCCESS)
}

/// `wxfed unlink <username> …`.
pub fn run_unlink(args: &LinkArgs, backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    let mut conn = backend.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    let (conn, secrets, actor) = (&mut *conn, &backend.secrets, Actor::cli());
    let account = manage::find_by_username(conn, &args.username)?;
    let identity = select(conn, &args.identity)?;
    let reason = args.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or("wxfed unlink");
    db::write_transaction(conn, |conn| {
        identities::unlink(conn, secrets, &actor, &identity.id, Some(account.id.as_str()), Some(reason))
    })
    .map_err(|e| CliError::Other(e.to_string()))?;
    let value = serde_json::json!({ "identity": identity.id, "account_id": account.id, "username": account.username, "linked": false });
    print(json, &value, &format!("WeChat identity {} unlinked from {}", identity.id, account.username));
    Ok(ExitCode::SUCCESS)
}

pub fn run_identity(command: IdentityCommand, backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    let mut conn = backend.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    let conn = &mut *conn;
    let username_of = |conn: &mut db::DbConn, identity: &Identity| -> Result<Option<String>, CliError> {
        Ok(match &identity.account_id {
            Some(id) => manage::find_by_id(conn, &crate::accounts::AccountId::from_db(id.clone()))?.map(|a| a.username),
            None => None,
        })
    };
    match command {
        IdentityCommand::List { limit } => {
            let mut list = Vec::new();
            let mut lines = Vec::new();
            for row in db::wechat::list_identities(conn, limit.clamp(1, 10_000))? {
                let identity = identities::describe(conn, row)?;
                lines.push(describe_identity(&identity, username_of(conn, &identity)?.as_deref()));
                list.push(identity);
            }
            let text = if lines.is_empty() { "no WeChat identities".into() } else { lines.join("\n") };
            print(json, &list, &text);
        }
        IdentityCommand::Show(selector) => {
            let identity = select(conn, &selector)?;
            let text = describe_identity(&identity, username_of(conn, &identity)?.as_deref());
            print(json, &identity, &text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

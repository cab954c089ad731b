//! `wxfed user …`

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::output::{CliError, print};
use crate::accounts::manage::{self, Actor, NewAccount};
use crate::accounts::password::{hash_blocking, validate_new_password};
use crate::accounts::{Account, AccountStatus, Role};
use crate::startup::Backend;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account.
    Add(AddArgs),
    /// List all accounts.
    List,
    /// Show one account.
    Show { username: String },
    /// Replace an account's password (read from standard input); ends its sessions.
    SetPassword {
        username: String,
        /// Read the new password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an account: it can no longer log in, and its sessions end.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// End every session and revoke every grant of an account: its
    /// refresh and access tokens stop working at every client.
    SignOutEverywhere { username: String },
    /// Grant a role.
    AddRole { username: String, role: Role },
    /// Withdraw a role.
    RemoveRole { username: String, role: Role },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Login name (unique, case-insensitive).
    username: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    email: Option<String>,
    /// Mark the email as verified.
    #[arg(long)]
    email_verified: bool,
    /// Phone number in E.164 form, e.g. +8613800138000.
    #[arg(long)]
    phone: Option<String>,
    /// Mark the phone number as verified.
    #[arg(long)]
    phone_verified: bool,
    /// Role to grant (repeatable): admin, auditor.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<Role>,
    /// Read the password from standard input (one line). Without it the
    /// account has no password (it can log in only through WeChat).
    #[arg(long)]
    password_stdin: bool,
}

fn read_password() -> Result<String, CliError> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| CliError::Other(format!("cannot read the password from standard input: {e}")))?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    validate_new_password(password).map_err(|m| CliError::Other(m.to_string()))?;
    Ok(password.to_owned())
}

fn hash_new_password() -> Result<String, CliError> {
    hash_blocking(&read_password()?).map_err(|e| CliError::Other(e.to_string()))
}

fn describe(account: &Account) -> String {
    let mut line = format!("{}  {}  {}", account.id, account.username, account.status.as_str());
    if !account.roles.is_empty() {
        let roles: Vec<&str> = account.roles.iter().map(|r| r.as_str()).collect();
        line.push_str(&format!("  roles={}", roles.join(",")));
    }
    if let Some(name) = &account.display_name {
        line.push_str(&format!("  name={name:?}"));
    }
    line
}

/// Prints the account after a change that may have been a no-op.
fn print_change(json: bool, (account, changed): (Account, bool), done: &str, already: &str) {
    let what = if changed { done } else { already };
    print(json, &account, &format!("{} {what}", account.username));
}

pub fn run(command: UserCommand, backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    let mut conn = backend.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    let conn = &mut *conn;
    let secrets = &backend.secrets;
    let actor = Actor::cli();
    match command {
        UserCommand::Add(args) => {
            let hash = if args.password_stdin { Some(hash_new_password()?) } else { None };
            let new = NewAccount {
                username: args.username,
                display_name: args.name,
                email: args.email,
                email_verified: args.email_verified,
                phone: args.phone,
                phone_verified: args.phone_verified,
                roles: args.roles,
            };
            let account = manage::add(conn, secrets, &actor, &new, hash)?;
            print(json, &account, &format!("added {}", describe(&account)));
        }
        UserCommand::List => {
            let accounts = manage::list(conn)?;
            let text = if accounts.is_empty() {
                "no accounts".to_owned()
            } else {
                accounts.iter().map(describe).collect::<Vec<_>>().join("\n")
            };
            print(json, &accounts, &text);
        }
        UserCommand::Show { username } => {
            let account = manage::find_by_username(conn, &username)?;
            let text = format!(
                "{}\n  email: {} (verified: {})\n  phone: {} (verified: {})\n  password: {}\n  created: {}",
                describe(&account),
                account.email.as_deref().unwrap_or("-"),
                account.email_verified,
                account.phone.as_deref().unwrap_or("-"),
                account.phone_verified,
                if account.has_password { "set" } else { "none" },
                account.created_at.to_rfc3339(),
            );
            print(json, &account, &text);
        }
        UserCommand::SetPassword { username, .. } => {
            // Check the account exists before asking for a password.
            manage::find_by_username(conn, &username)?;
            let hash = hash_new_password()?;
            let account = manage::set_password(conn, secrets, &actor, &username, &hash)?;
            print(json, &account, &format!("password set for {}", account.username));
        }
        UserCommand::Disable { username } => {
            let change = manage::set_status(conn, secrets, &actor, &username, AccountStatus::Disabled)?;
            print_change(json, change, "disabled", "was already disabled");
        }
        UserCommand::Enable { username } => {
            let change = manage::set_status(conn, secrets, &actor, &username, AccountStatus::Active)?;
            print_change(json, change, "enabled", "was already enabled");
        }
        UserCommand::SignOutEverywhere { username } => {
            let (account, ended) = manage::sign_out_everywhere(conn, secrets, &actor, &username)?;
            let value = serde_json::json!({
                "account": account,
                "sessions_ended": ended.sessions_ended,
                "grants_revoked": ended.grants_revoked,
            });
            let text = format!(
                "{} signed out everywhere: {} session(s) ended, {} grant(s) revoked",
                account.username, ended.sessions_ended, ended.grants_revoked
            );
            print(json, &value, &text);
        }
        UserCommand::AddRole { username, role } => {
            let change = manage::set_role(conn, secrets, &actor, &username, role, true)?;
            let role = role.as_str();
            print_change(json, change, &format!("now has the role {role}"), &format!("already had the role {role}"));
        }
        UserCommand::RemoveRole { username, role } => {
            let change = manage::set_role(conn, secrets, &actor, &username, role, false)?;
            let role = role.as_str();
            print_change(
                json,
                change,
                &format!("no longer has the role {role}"),
                &format!("did not have the role {role}"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

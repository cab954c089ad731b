//! `wxfed account merge FROM INTO`: the console's merge (issue 8 §4).

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::output::{CliError, print};
use crate::accounts::manage::{self, Actor};
use crate::accounts::merge::{self, Preferences, Side};
use crate::startup::Backend;

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Merge account FROM into account INTO: FROM's WeChat identities,
    /// consents and roles move to INTO; FROM's sessions end, its grants are
    /// revoked, and it is disabled, pointing to INTO (its id is never
    /// reused). Refused while a conflict is unresolved: two identities of
    /// one Open Platform (unlink one first), or differing verified phones
    /// or emails (choose with --prefer-phone / --prefer-email).
    Merge(MergeArgs),
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The account merged away (username).
    from: String,
    /// The surviving account (username).
    into: String,
    /// Why (required; recorded in the audit trail).
    #[arg(long)]
    reason: String,
    /// Whose verified phone the survivor keeps when they differ.
    #[arg(long, value_parser = parse_side, value_name = "from|into")]
    prefer_phone: Option<Side>,
    /// Whose verified email the survivor keeps when they differ.
    #[arg(long, value_parser = parse_side, value_name = "from|into")]
    prefer_email: Option<Side>,
    /// Show what would move and what conflicts; change nothing.
    #[arg(long)]
    dry_run: bool,
}

fn parse_side(value: &str) -> Result<Side, String> {
    value.parse()
}

pub fn run(command: AccountCommand, backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    let AccountCommand::Merge(args) = command;
    let mut conn = backend.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    let conn = &mut *conn;
    let from = manage::find_by_username(conn, &args.from)?;
    let into = manage::find_by_username(conn, &args.into)?;
    let prefer = Preferences { phone: args.prefer_phone, email: args.prefer_email };
    let plan = if args.dry_run {
        merge::plan(conn, from.id.as_str(), into.id.as_str()).map_err(|e| CliError::Other(e.to_string()))?
    } else {
        merge::merge(conn, &backend.secrets, &Actor::cli(), from.id.as_str(), into.id.as_str(), prefer, &args.reason)
            .map_err(|e| CliError::Other(e.to_string()))?
    };
    let unresolved: Vec<String> = merge::unresolved(&plan, prefer).into_iter().map(merge::describe).collect();
    let mut lines = vec![format!(
        "{} {} into {}",
        if args.dry_run { "would merge" } else { "merged" },
        plan.from_username,
        plan.into_username
    )];
    lines.push(format!("  identities moving: {}", plan.identities.len()));
    lines.push(format!("  consents moving: {} (dropped: {})", plan.consents.len(), plan.consents_dropped.len()));
    lines.push(format!("  grants revoked: {}", plan.grants_revoked.len()));
    lines.push(format!("  sessions ending: {}", plan.sessions_ended));
    lines.push(format!("  roles added: {}", plan.roles_added.join(", ")));
    for conflict in &unresolved {
        lines.push(format!("  conflict: {conflict}"));
    }
    let value =
        serde_json::json!({ "dry_run": args.dry_run, "merged": !args.dry_run, "plan": plan, "unresolved": unresolved });
    print(json, &value, &lines.join("\n"));
    Ok(ExitCode::SUCCESS)
}

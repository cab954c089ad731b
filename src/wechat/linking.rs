//! The WeChat linking policy, in one place: which account a WeChat
//! identity logs in to, what the deployment's unlinked policy
//! (`WXFED_WECHAT_UNLINKED`: deny, create, auto-phone, bind) does on its
//! own, and how a person links by proving an account with its password.
//! The browser login, the token exchange and the console all call this,
//! and all say "no" with the same [`LinkRefusal`] codes.

use super::FlowError;
use super::identities::{self, IdentityError};
use crate::accounts::login::LoginError;
use crate::accounts::manage::{self, Actor, NewAccount};
use crate::accounts::{Account, AccountId};
use crate::config::UnlinkedPolicy;
use crate::db::{DbConn, wechat::IdentityRow};
use crate::secrets::{Secrets, random_token};

/// Why a WeChat identity does not (yet) lead to an account. [`code`]
/// is stable: apps act on it (token exchange `reason`) and the audit
/// trail records it.
///
/// [`code`]: LinkRefusal::code
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    #[error("this WeChat user is not linked to an account; ask an administrator")]
    NotLinked,
    #[error("this WeChat user is not linked to an account yet; sign in with the account's password to link it")]
    BindRequired,
    #[error("the linked account is disabled")]
    AccountDisabled,
    #[error("incorrect username or password")]
    BadCredentials,
    #[error("too many failed attempts; try again later")]
    Throttled,
    /// A linking rule forbids it (the identity has another account, or the
    /// account another identity of that Open Platform).
    #[error("{0}")]
    LinkConflict(String),
    #[error("this WeChat user is linked to two accounts; an administrator must resolve it")]
    IdentityConflict,
}

impl LinkRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotLinked => "wechat_not_linked",
            Self::BindRequired => "bind_required",
            Self::AccountDisabled => "account_disabled",
            Self::BadCredentials => "bad_credentials",
            Self::Throttled => "throttled",
            Self::LinkConflict(_) => "link_conflict",
            Self::IdentityConflict => "identity_conflict",
        }
    }

    /// The refusal an identity error stands for; `None` for a database
    /// fault (not a refusal).
    pub fn from_identity_error(error: &IdentityError) -> Option<Self> {
        match error {
            IdentityError::LinkedElsewhere(_) | IdentityError::AccountHasOne(_) => {
                Some(Self::LinkConflict(error.to_string()))
            }
            // Only admins meet these (console, CLI); a login never does.
            IdentityError::NotLinkedTo(_)
            | IdentityError::ReasonRequired
            | IdentityError::UnknownApp(_)
            | IdentityError::Invalid(_) => Some(Self::LinkConflict(error.to_string())),
            IdentityError::MergeConflict => Some(Self::IdentityConflict),
            IdentityError::NotFound => Some(Self::NotLinked),
            IdentityError::Db(_) => None,
        }
    }

    /// The refusal a failed password proof stands for; `None` for a fault.
    pub fn from_login_error(error: &LoginError) -> Option<Self> {
        match error {
            LoginError::InvalidCredentials => Some(Self::BadCredentials),
            LoginError::Disabled => Some(Self::AccountDisabled),
            LoginError::Throttled { .. } => Some(Self::Throttled),
            _ => None,
        }
    }
}

/// What a WeChat login leads to.
#[derive(Debug)]
pub enum Decision {
    /// An active account: log in to it.
    LogIn(Account),
    /// No login; `account_id` names the account concerned, if any (for
    /// the audit record).
    Refuse { reason: LinkRefusal, account_id: Option<String> },
}

/// The account a WeChat identity logs in to under `policy`, creating or
/// linking one where the policy acts on its own (`create`, `auto-phone`).
/// Runs inside the caller's write transaction.
pub fn login_account(
    conn: &mut DbConn,
    secrets: &Secrets,
    identity: &IdentityRow,
    policy: UnlinkedPolicy,
) -> Result<Decision, FlowError> {
    match account_for(conn, secrets, identity, policy)? {
        Some(account) if account.is_active() => Ok(Decision::LogIn(account)),
        Some(account) => Ok(Decision::Refuse {
            reason: LinkRefusal::AccountDisabled,
            account_id: Some(account.id.as_str().to_owned()),
        }),
        None if policy == UnlinkedPolicy::Bind => {
            Ok(Decision::Refuse { reason: LinkRefusal::BindRequired, account_id: None })
        }
        None => Ok(Decision::Refuse { reason: LinkRefusal::NotLinked, account_id: None }),
    }
}

/// The account of an identity, applying the unlinked policy where it acts
/// on its own (create, auto-phone). `None`: not linked (deny or bind).
fn account_for(
    conn: &mut DbConn,
    secrets: &Secrets,
    identity: &IdentityRow,
    policy: UnlinkedPolicy,
) -> Result<Option<Account>, FlowError> {
    if let Some(account_id) = &identity.account_id {
        return Ok(manage::find_by_id(conn, &AccountId::from_db(account_id.clone()))?);
    }
    match policy {
        UnlinkedPolicy::Create => {
            let new = NewAccount {
                username: format!("wx-{}", &random_token()[..10].to_lowercase().replace(['-', '_'], "x")),
                display_name: identity.nickname.clone(),
                ..Default::default()
            };
            let actor = Actor("system:wechat".into());
            let account = manage::add(conn, secrets, &actor, &new, None)?;
            identities::link(conn, secrets, &actor, &identity.id, account.id.as_str(), "created", None)?;
            Ok(Some(account))
        }
        UnlinkedPolicy::AutoPhone => match super::phone::unique_account_with_phone(conn, identity)? {
            Some(account) => {
                let actor = Actor("system:auto-phone".into());
                identities::link(conn, secrets, &actor, &identity.id, account.id.as_str(), "auto-phone", None)?;
                Ok(Some(account))
            }
            None => Ok(None),
        },
        UnlinkedPolicy::Deny | UnlinkedPolicy::Bind => Ok(None),
    }
}

/// The `bind` policy's last step: the person proved `account_id` with its
/// password; the identity is linked to it unless a linking rule forbids
/// it. Runs inside the caller's write transaction.
pub fn bind_with_password(
    conn: &mut DbConn,
    secrets: &Secrets,
    identity_id: &str,
    account_id: &str,
) -> Result<Result<(), LinkRefusal>, FlowError> {
    let actor = Actor(format!("account:{account_id}"));
    match identities::link(conn, secrets, &actor, identity_id, account_id, "password", None) {
        Ok(()) => Ok(Ok(())),
        Err(error) => match LinkRefusal::from_identity_error(&error) {
            Some(refusal) => Ok(Err(refusal)),
            None => Err(error.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_are_stable_and_distinct() {
        let all = [
            LinkRefusal::NotLinked,
            LinkRefusal::BindRequired,
            LinkRefusal::AccountDisabled,
            LinkRefusal::BadCredentials,
            LinkRefusal::Throttled,
            LinkRefusal::LinkConflict(String::new()),
            LinkRefusal::IdentityConflict,
        ];
        let codes: Vec<&str> = all.iter().map(LinkRefusal::code).collect();
        assert_eq!(
            codes,
            [
                "wechat_not_linked",
                "bind_required",
                "account_disabled",
                "bad_credentials",
                "throttled",
                "link_conflict",
                "identity_conflict"
            ]
        );
    }
}

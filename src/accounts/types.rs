//! Account types and validated values.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::db::accounts::AccountRow;

/// An account's stable id (a UUID, stored as text). It is the `sub` of
/// every token, so it never changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Wraps an id read from the database.
    pub fn from_db(id: String) -> Self {
        Self(id)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A username as typed: 1–64 characters, no whitespace or control
/// characters. Uniqueness is case-insensitive (see [`Username::key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, crate::i18n::Message> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(crate::i18n::Message::new("error-username-empty"));
        }
        if trimmed.chars().count() > 64 {
            return Err(crate::i18n::Message::new("error-username-too-long"));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(crate::i18n::Message::new("error-username-characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lookup key: lower case, so `Alice` and `alice` are one account.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Disabled,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
    fn from_db(value: &str) -> Self {
        // Anything unexpected is treated as disabled: fail closed.
        if value == "active" { Self::Active } else { Self::Disabled }
    }
}

/// Console roles. Every account can log in; roles add powers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages accounts, identities, clients, WeChat apps and keys.
    Admin,
    /// Reads and exports the audit log; changes nothing.
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Auditor => "auditor",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Self::Admin),
            "auditor" => Ok(Self::Auditor),
            other => Err(format!("unknown role `{other}` (roles: admin, auditor)")),
        }
    }
}

/// An account as the rest of wxfed sees it (no password hash).
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: AccountId,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub status: AccountStatus,
    pub roles: Vec<Role>,
    pub has_password: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Account {
    pub fn from_row(row: AccountRow, roles: &[String]) -> Self {
        Self {
            id: AccountId::from_db(row.id),
            username: row.username,
            display_name: row.display_name,
            email: row.email,
            email_verified: row.email_verified,
            phone: row.phone,
            phone_verified: row.phone_verified,
            status: AccountStatus::from_db(&row.status),
            roles: roles.iter().filter_map(|r| r.parse().ok()).collect(),
            has_password: row.password_hash.is_some(),
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == AccountStatus::Active
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_insensitive_and_validated() {
        assert_eq!(Username::parse(" Alice ").unwrap().key(), "alice");
        assert_eq!(Username::parse("Alice").unwrap().as_str(), "Alice");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
        assert!(Username::parse("张三").is_ok());
    }
}

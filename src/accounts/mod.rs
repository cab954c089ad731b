//! Enterprise accounts: who they are, how they prove it (passwords), how
//! long they stay logged in (sessions), and the operations admins run.

pub mod import;
pub mod login;
pub mod manage;
pub mod merge;
pub mod password;
pub mod sessions;
pub mod throttle;
mod types;

pub use types::{Account, AccountId, AccountStatus, Role, Username};

//! Integration tests: the real app on port 0, driven over HTTP, against a
//! fresh SQLite file, or a fresh PostgreSQL database when
//! WXFED_TEST_POSTGRES_URL is set.

// Tests state their expectations with unwrap/expect/panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod admin;
mod audit_chain;
mod cli;
mod health;
mod i18n;
mod login;
mod migrations;
mod oidc;
mod sessions;
mod startup_errors;
mod wechat;

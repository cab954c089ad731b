//! Integration tests: the real app on port 0, driven over HTTP, against a
//! fresh SQLite file, or a fresh PostgreSQL database when
//! WXFED_TEST_POSTGRES_URL is set.

// Tests state their expectations with unwrap/expect/panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod admin;
mod admin_api;
mod audit_chain;
mod audit_checkpoints;
mod audit_console;
mod audit_export_proof;
mod audit_group_commit;
mod audit_sink;
mod cli;
mod config_cli;
mod demo;
mod health;
mod i18n;
mod infra;
mod login;
mod metrics;
mod migrate_data;
mod migrations;
mod oidc;
mod pg_restart;
mod sessions;
mod startup_errors;
mod wechat;

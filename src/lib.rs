//! wxfed: an OpenID Connect provider that federates WeChat identities with
//! an enterprise's own accounts. See README.md and docs/ for the big
//! picture; each module says what it owns.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod i18n;
pub mod metrics;
pub mod oidc;
pub mod routes;
pub mod secrets;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod wechat;
pub mod wechat_sim;

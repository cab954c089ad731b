//! Logging: tracing to stdout, text by default or JSON.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` wins over the configured
/// level when set. Safe to call more than once (later calls do nothing).
pub fn init(format: LogFormat, level: &str, to_stderr: bool) {
    // HTTP client internals stay quiet whatever the level: at debug they
    // print full request URLs, and WeChat's carry secrets and codes.
    let quiet = ",reqwest=warn,hyper=warn,hyper_util=warn,h2=warn,native_tls=warn";
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{level}{quiet}")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = if to_stderr {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    let _ = match (format, to_stderr) {
        (LogFormat::Text, false) => builder.try_init(),
        (LogFormat::Text, true) => builder.with_writer(std::io::stderr).try_init(),
        (LogFormat::Json, false) => builder.json().flatten_event(true).with_current_span(true).try_init(),
        (LogFormat::Json, true) => {
            builder.json().flatten_event(true).with_current_span(true).with_writer(std::io::stderr).try_init()
        }
    };
}

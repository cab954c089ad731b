//! Logging: tracing to stdout, text by default or JSON.

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

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
    let writer = if to_stderr { BoxMakeWriter::new(std::io::stderr) } else { BoxMakeWriter::new(std::io::stdout) };
    let output = match format {
        LogFormat::Text => {
            tracing_subscriber::fmt::layer().with_target(false).with_ansi(ansi).with_writer(writer).boxed()
        }
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
    };
    // actix_http's own ERROR events go to `DowngradeActixHttpErrors`
    // instead of the output, which re-emits them as WARN.
    let output = output.with_filter(filter.and(filter_fn(|meta| !is_actix_http_error(meta))));
    let downgrade = DowngradeActixHttpErrors { emit: emit_warning }.with_filter(filter_fn(is_actix_http_error));
    let _ = tracing_subscriber::registry().with(output).with(downgrade).try_init();
}

/// actix_http logs at ERROR what a client caused: a malformed or truncated
/// request ("stream error: …"), an oversized head ("MAX_BUFFER_SIZE
/// unprocessed data reached"), a peer that hung up. Those are not faults
/// of this server and must not page an operator; they stay visible as WARN.
fn is_actix_http_error(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::ERROR && meta.target().starts_with("actix_http")
}

/// Hands each event it sees (origin target, message) to `emit`, which
/// re-emits it at WARN.
struct DowngradeActixHttpErrors {
    emit: fn(&str, &str),
}

/// Re-emits a downgraded event under the `wxfed::http_layer` target.
/// (Emitting from inside a layer works with the global dispatcher that
/// [`init`] installs; tracing drops re-entrant events only for scoped
/// dispatchers, which is why the test swaps `emit`.)
fn emit_warning(origin: &str, message: &str) {
    tracing::warn!(target: "wxfed::http_layer", origin, "{message}");
}

impl<S: Subscriber> Layer<S> for DowngradeActixHttpErrors {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut message = MessageText(String::new());
        event.record(&mut message);
        (self.emit)(event.metadata().target(), &message.0);
    }
}

/// Collects an event's `message` field (actix_http's events have no others
/// worth keeping).
struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Records the level, target and message of every event it receives.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<(Level, String, String)>>>);

    impl<S: Subscriber> Layer<S> for Recorder {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut message = MessageText(String::new());
            event.record(&mut message);
            let meta = event.metadata();
            self.0.lock().unwrap().push((*meta.level(), meta.target().to_owned(), message.0));
        }
    }

    static DOWNGRADED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

    fn record_downgraded(origin: &str, message: &str) {
        DOWNGRADED.lock().unwrap().push((origin.to_owned(), message.to_owned()));
    }

    #[test]
    fn actix_http_errors_are_downgraded_and_kept_out_of_the_error_output() {
        let recorder = Recorder::default();
        let subscriber = tracing_subscriber::registry()
            .with(recorder.clone().with_filter(EnvFilter::new("info").and(filter_fn(|m| !is_actix_http_error(m)))))
            .with(DowngradeActixHttpErrors { emit: record_downgraded }.with_filter(filter_fn(is_actix_http_error)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", "bad chunk");
            tracing::warn!(target: "actix_http::h1::dispatcher", "a warning stays as it is");
            tracing::error!(target: "wxfed::db", "a real fault");
        });
        assert_eq!(
            recorder.0.lock().unwrap().clone(),
            vec![
                (Level::WARN, "actix_http::h1::dispatcher".to_owned(), "a warning stays as it is".to_owned()),
                (Level::ERROR, "wxfed::db".to_owned(), "a real fault".to_owned()),
            ]
        );
        assert_eq!(
            DOWNGRADED.lock().unwrap().clone(),
            vec![("actix_http::h1::dispatcher".to_owned(), "stream error: bad chunk".to_owned())]
        );
    }
}

//! Logging: JSON lines for CloudWatch Logs, level from RUST_LOG (default info).
//!
//! RUST_LOG takes `level` or `target=level,...` (tracing-subscriber's `Targets` syntax, no
//! regular expressions); a value that does not parse falls back to `info`.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter for a RUST_LOG value.
pub fn filter(value: Option<&str>) -> Targets {
    value
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

pub fn init() {
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_target(false)
                .without_time(),
        )
        .with(filter(std::env::var("RUST_LOG").ok().as_deref()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_and_a_bad_value_falls_back_to_info() {
        assert!(filter(None).would_enable("shared", &Level::INFO));
        assert!(!filter(None).would_enable("shared", &Level::DEBUG));
        assert!(filter(Some("debug")).would_enable("shared", &Level::DEBUG));
        let f = filter(Some("warn,shared=trace"));
        assert!(f.would_enable("shared", &Level::TRACE));
        assert!(!f.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(!filter(Some("=[bad")).would_enable("shared", &Level::DEBUG));
        assert!(filter(Some("=[bad")).would_enable("shared", &Level::INFO));
    }
}

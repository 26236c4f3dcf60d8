//! Structured logs: readable text locally, one JSON object per line when
//! `LOG_FORMAT=json` (production). `RUST_LOG` filters: `info` by default,
//! async-nats's own chatter at `warn` (the platform logs connection changes).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let installed =
        if json { builder.json().flatten_event(true).with_current_span(true).try_init() } else { builder.try_init() };
    if installed.is_ok() {
        tracing::info!(service, "logging initialised");
    }
}

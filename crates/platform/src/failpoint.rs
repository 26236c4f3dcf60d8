//! Named crash points for tests that must kill a process at one exact
//! moment (between a commit and a publish, between an effect and its ack).
//!
//! When the process was started with `FAILPOINT=<name>`, reaching that point
//! writes the file named by `FAILPOINT_MARKER` (if set) and then waits
//! forever, so that the test can SIGKILL the process right there. Without
//! the variable a point costs one comparison of a cached `Option`.

use std::sync::OnceLock;

/// Between the commit that staged events and their publication.
pub const RELAY_BEFORE_PUBLISH: &str = "relay.before_publish";
/// After JetStream acknowledged a batch, before it is marked published.
pub const RELAY_BEFORE_MARK_PUBLISHED: &str = "relay.before_mark_published";
/// After a consumer's effect committed, before the event is acknowledged.
pub const CONSUMER_BEFORE_ACK: &str = "consumer.before_ack";

struct Armed {
    name: String,
    marker: Option<String>,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let name = std::env::var("FAILPOINT").ok().filter(|n| !n.is_empty())?;
            Some(Armed { name, marker: std::env::var("FAILPOINT_MARKER").ok() })
        })
        .as_ref()
}

/// Pauses forever if this point is armed; returns at once otherwise.
pub async fn reached(name: &str) {
    let Some(armed) = armed().filter(|a| a.name == name) else { return };
    tracing::warn!(failpoint = name, "failpoint reached; pausing until killed");
    if let Some(marker) = &armed.marker {
        let _ = std::fs::write(marker, name);
    }
    std::future::pending::<()>().await;
}

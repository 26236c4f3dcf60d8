//! The connection to NATS. It connects in the background and reconnects
//! forever, logging every state change, so a broker outage never stops a
//! service: the outbox keeps its events until the broker is back.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event, ServerAddr, jetstream};

/// Connects to `url` as `name`: one server, or a cluster's servers
/// comma-separated (any live one will do; the client learns the others).
///
/// # Errors
/// Only when a URL itself is unusable; an unreachable server is retried.
pub async fn connect(url: &str, name: &str) -> Result<(Client, jetstream::Context), async_nats::ConnectError> {
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::parse::<ServerAddr>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::ServerParse, error))?;
    let client = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempt| {
            crate::backoff(
                u32::try_from(attempt).unwrap_or(u32::MAX),
                Duration::from_millis(100),
                Duration::from_secs(3),
            )
        })
        .event_callback(|event| async move {
            match event {
                Event::Connected => tracing::info!("connected to NATS"),
                Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
                Event::LameDuckMode => tracing::warn!("NATS server entering lame duck mode"),
                Event::SlowConsumer(sid) => tracing::warn!(sid, "slow NATS consumer"),
                other => tracing::info!(event = %other, "NATS event"),
            }
        })
        .connect(servers)
        .await?;
    let jetstream = jetstream::new(client.clone());
    Ok((client, jetstream))
}

/// Whether the client is connected right now.
pub fn is_connected(client: &Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

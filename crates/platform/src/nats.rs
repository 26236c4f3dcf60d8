//! The connection to NATS. It connects in the background and reconnects
//! forever, logging every state change, so a broker outage never stops a
//! service: the outbox keeps its events until the broker is back.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event, ServerAddr, jetstream};

/// Connects as `name` to any of `urls`: one URL, or several separated by
/// commas (the nodes of a cluster). The client moves to another of them,
/// or to a node the cluster announced, whenever its server goes away.
///
/// # Errors
/// Only when a URL itself is unusable; an unreachable server is retried.
pub async fn connect(urls: &str, name: &str) -> Result<(Client, jetstream::Context), async_nats::ConnectError> {
    let servers = server_addrs(urls)?;
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

/// Parses a comma-separated list of server URLs, naming a bad one.
fn server_addrs(urls: &str) -> Result<Vec<ServerAddr>, async_nats::ConnectError> {
    let parse_error = |reason: String| {
        async_nats::ConnectError::with_source(
            async_nats::ConnectErrorKind::ServerParse,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, reason),
        )
    };
    let servers = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| url.parse::<ServerAddr>().map_err(|e| parse_error(format!("NATS URL {url:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(parse_error(format!("no NATS server URL in {urls:?}")));
    }
    Ok(servers)
}

/// Waits until the client is connected, at most `within`; whether it is.
pub async fn wait_connected(client: &Client, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !is_connected(client) {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Whether the client is connected right now.
pub fn is_connected(client: &Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_separated_list_names_every_node() {
        let servers = server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223,nats://h:4224").unwrap();
        let ports: Vec<u16> = servers.iter().map(ServerAddr::port).collect();
        assert_eq!(ports, [4222, 4223, 4224]);
        assert_eq!(server_addrs("nats://127.0.0.1:4222").unwrap().len(), 1);
    }

    #[test]
    fn an_empty_or_bad_entry_is_named() {
        let error = server_addrs(" , ").unwrap_err();
        assert!(format!("{error:?}").contains("no NATS server URL"), "{error:?}");
        let error = server_addrs("nats://127.0.0.1:4222,nats://h:notaport").unwrap_err();
        assert!(format!("{error:?}").contains("nats://h:notaport"), "{error:?}");
    }
}

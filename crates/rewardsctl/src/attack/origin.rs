//! Where attacks come from: other hosts, as the gateway sees them.
//!
//! Every address of 127.0.0.0/8 is this machine's loopback, so an attacker
//! binds its connections to 127.0.0.2, 127.0.0.3, … and the gateway sees
//! distinct peers, while the canary player calls from 127.0.0.1. A budget
//! the gateway keeps per peer then cuts off the attacker, not the player
//! next to it.

use std::future::Future as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tonic::transport::{Channel, Endpoint, Uri};

/// Hands out attacker addresses, one fresh address per call.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    next: Arc<AtomicU32>,
}

impl Origins {
    /// A loopback address no one used in this run yet (127.0.0.2 onwards,
    /// then 127.0.1.0 …).
    pub fn fresh(&self) -> IpAddr {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let host = 2 + n;
        IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            u8::try_from(host / 256 % 256).unwrap_or(0),
            u8::try_from(host % 256).unwrap_or(0),
        ))
    }
}

/// A TCP connection to `target` from `origin`.
///
/// # Errors
/// When the address cannot be bound or the target refuses.
pub async fn tcp(origin: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(origin, 0))?;
    let stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(target))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A tonic channel to `target` whose connections come from `origin`.
///
/// # Errors
/// When the connection cannot be made.
pub async fn channel(origin: IpAddr, target: SocketAddr) -> anyhow::Result<Channel> {
    let connector = tower::service_fn(move |_: Uri| async move { tcp(origin, target).await.map(TokioIo::new) });
    Endpoint::from_shared(format!("http://{target}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(connector)
        .await
        .with_context(|| format!("cannot connect from {origin} to {target}"))
}

/// An HTTP/2 connection from `origin` driven by the `h2` client: it answers
/// the server's PINGs and SETTINGS on its own, while the caller decides
/// what its streams read. `window` is every stream's receive window: 0 for
/// a client that never reads.
#[derive(Debug)]
pub struct H2 {
    pub send: h2::client::SendRequest<Bytes>,
    /// Ends with the reason the connection closed (`Ok` on a clean close).
    pub driver: tokio::task::JoinHandle<Result<(), h2::Error>>,
    /// What the server advertised as `MAX_CONCURRENT_STREAMS` (`usize::MAX` when unlimited).
    pub max_streams: Arc<std::sync::atomic::AtomicUsize>,
}

impl H2 {
    /// Connects and completes the handshake.
    ///
    /// # Errors
    /// When the connection or the handshake fails (the server refused it).
    pub async fn connect(origin: IpAddr, target: SocketAddr, window: u32) -> anyhow::Result<Self> {
        let tcp = tcp(origin, target).await?;
        let handshake = h2::client::Builder::new()
            .initial_window_size(window)
            // The connection-level window stays open: what stalls is each stream.
            .initial_connection_window_size(1 << 20)
            // An attacker does not limit itself.
            .max_concurrent_reset_streams(usize::MAX)
            .handshake::<_, Bytes>(tcp);
        let (send, connection) =
            tokio::time::timeout(Duration::from_secs(5), handshake).await.context("the handshake timed out")??;
        let mut connection = Box::pin(connection);
        let max_streams = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = max_streams.clone();
        let driver = tokio::spawn(async move {
            futures::future::poll_fn(|cx| {
                let polled = connection.as_mut().poll(cx);
                // Known once the server's SETTINGS arrived.
                seen.store(connection.max_concurrent_send_streams(), Ordering::Relaxed);
                polled
            })
            .await
        });
        Ok(Self { send, driver, max_streams })
    }

    /// Whether the server closed the connection (GOAWAY or a cut).
    pub fn is_closed(&self) -> bool {
        self.driver.is_finished()
    }
}

impl Drop for H2 {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

//! A bare tonic server: `grpc.health.v1` and nothing else, so a
//! `Health/Check` against it costs what tonic, HTTP/2 and the loopback cost
//! and no more. The baseline a service's call is compared with.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// The health entry the echo server answers SERVING for.
pub const ECHO_SERVICE: &str = "loadgen.Echo";

/// Serves health checks on `listener` until `stop` resolves.
///
/// # Errors
/// When the server fails.
pub async fn serve(listener: TcpListener, stop: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status(ECHO_SERVICE, tonic_health::ServingStatus::Serving).await;
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health)
        // Nagle off, as on every service (tonic's own setting only reaches
        // listeners it binds), so the baseline is measured like them.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            stop,
        )
        .await?;
    Ok(())
}

/// Binds `addr` and serves health checks until Ctrl-C.
///
/// # Errors
/// When `addr` cannot be bound or the server fails.
pub async fn serve_until_ctrl_c(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    eprintln!("loadgen: echo (grpc.health.v1) on {}", listener.local_addr()?);
    serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

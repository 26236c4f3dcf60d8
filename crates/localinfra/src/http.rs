//! Just enough HTTP/1.0 to read a local monitoring endpoint (nats-server's
//! `/jsz` and `/healthz`), without an HTTP client dependency.

use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// GETs `path` from `127.0.0.1:port` and returns the status and body.
///
/// # Errors
/// When nothing answers within `timeout` or the answer is not HTTP.
pub async fn get(port: u16, path: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("127.0.0.1:{port}{path} did not answer within {timeout:?}"))??;
    let (head, body) = response.split_once("\r\n\r\n").context("not an HTTP response")?;
    let Some(status) = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()) else {
        bail!("no status in {head:?}");
    };
    Ok((status, body.to_owned()))
}

/// GETs `path` and parses a 200 answer as JSON.
///
/// # Errors
/// As [`get`], on another status, or on a body that is not JSON.
pub async fn get_json(port: u16, path: &str, timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let (status, body) = get(port, path, timeout).await?;
    if status != 200 {
        bail!("127.0.0.1:{port}{path} answered {status}: {body}");
    }
    serde_json::from_str(&body).with_context(|| format!("127.0.0.1:{port}{path} did not answer JSON"))
}

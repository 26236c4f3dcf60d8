//! The gateway's cost: one player query (GetMyPage of a seeded player, the
//! page a player opens most) straight to the service, through the gateway,
//! and through nginx's `grpc_pass` to the same service (the peer proxy, no
//! authentication), at a fixed rate for latency and closed loop for
//! throughput.

use std::sync::Arc;
use std::time::Duration;

use loadgen::grpc::Target;
use loadgen::methods::Method;
use loadgen::run::{ClosedLoop, OpenLoop, Report, closed_loop, open_loop};
use serde::Serialize;

use super::system::System;

/// How the query is driven.
#[derive(Debug, Clone)]
pub struct Options {
    /// Calls per second of the latency runs.
    pub rate: f64,
    /// Calls in flight of the throughput runs.
    pub concurrency: usize,
    pub duration: Duration,
}

/// One path's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Path {
    /// At the fixed rate.
    pub latency: Report,
    /// Closed loop.
    pub throughput: Report,
}

/// Every path.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayCost {
    pub method: &'static str,
    pub direct: Path,
    pub gateway: Path,
    /// Through nginx, when it could run.
    pub nginx: Option<Path>,
    /// nginx's version, or why it did not run.
    pub nginx_note: String,
}

/// Measures GetMyPage of `customer` on every path, direct first; nginx's
/// configuration and logs go under `dir`.
///
/// # Errors
/// When the service or the gateway cannot be reached.
pub async fn run(
    system: &System,
    customer: &str,
    options: &Options,
    dir: &std::path::Path,
) -> anyhow::Result<GatewayCost> {
    let method = Arc::new(Method::MyPage { customer: customer.to_owned() });
    // The player's own token on every path: mypage verifies it either way.
    let headers = [("authorization".to_owned(), system.bearer(customer)?.to_str()?.to_owned())];
    let direct = measure("direct", &system.service("mypage"), &method, &headers, options).await?;
    let gateway = measure("gateway", &system.gateway(), &method, &headers, options).await?;
    let (nginx, nginx_note) = match super::nginx::Nginx::start(&dir.join("nginx"), &system.service("mypage")).await {
        Ok(nginx) => {
            let measured = measure(&format!("nginx {}", nginx.version), &nginx.url, &method, &headers, options).await;
            let version = nginx.version.clone();
            nginx.stop().await;
            match measured {
                Ok(path) => (Some(path), version),
                Err(error) => {
                    println!("  GetMyPage through nginx failed: {error:#}");
                    (None, format!("{version}: {error:#}"))
                }
            }
        }
        Err(error) => {
            println!("  nginx: {error:#} (its figures are missing from this run)");
            (None, format!("{error:#}"))
        }
    };
    Ok(GatewayCost { method: "game.mypage.v1.MyPageService/GetMyPage", direct, gateway, nginx, nginx_note })
}

async fn measure(
    name: &str,
    url: &str,
    method: &Arc<Method>,
    headers: &[(String, String)],
    options: &Options,
) -> anyhow::Result<Path> {
    let target = Target::connect(url, 2, headers).await?;
    let method = Arc::clone(method);
    let call = move |i| {
        let (target, method) = (target.clone(), Arc::clone(&method));
        async move { method.call(&target, i).await }
    };
    let open = OpenLoop { rate: options.rate, duration: options.duration, max_in_flight: 1_024, timeout: TIMEOUT };
    let latency = {
        let call = call.clone();
        open_loop(&open, move |i, _| call(i)).await
    };
    let closed = ClosedLoop { concurrency: options.concurrency, duration: options.duration, timeout: TIMEOUT };
    let throughput = closed_loop(&closed, call).await;
    println!(
        "  GetMyPage {name}: at {:.0}/s ms p50 {:.3} p99 {:.3}; {} in flight: {:.0} calls/s (p50 {:.2} ms)",
        options.rate,
        latency.latency.p50_ms,
        latency.latency.p99_ms,
        options.concurrency,
        throughput.achieved_rate,
        throughput.latency.p50_ms,
    );
    Ok(Path { latency, throughput })
}

const TIMEOUT: Duration = Duration::from_secs(10);

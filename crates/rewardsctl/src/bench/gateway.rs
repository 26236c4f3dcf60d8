//! The gateway's cost: one player query (GetMyPage of a seeded player, the
//! page a player opens most) straight to the service and through the
//! gateway, at a fixed rate for latency and closed loop for throughput.

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

/// Both paths.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayCost {
    pub method: &'static str,
    pub direct: Path,
    pub gateway: Path,
}

/// Measures GetMyPage of `customer` on both paths, direct first.
///
/// # Errors
/// When either address cannot be reached.
pub async fn run(system: &System, customer: &str, options: &Options) -> anyhow::Result<GatewayCost> {
    let method = Arc::new(Method::MyPage { customer: customer.to_owned() });
    // The player's own token on both paths: mypage verifies it either way.
    let headers = [("authorization".to_owned(), system.bearer(customer)?.to_str()?.to_owned())];
    let direct = measure("direct", &system.service("mypage"), &method, &headers, options).await?;
    let gateway = measure("gateway", &system.gateway(), &method, &headers, options).await?;
    Ok(GatewayCost { method: "game.mypage.v1.MyPageService/GetMyPage", direct, gateway })
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

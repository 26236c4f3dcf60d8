//! The gateway's cost: the latency one call gains by going through the edge
//! (token verified, roles and rate limit checked, request read whole,
//! proxied) instead of straight to its service, which verifies the same
//! token either way.
//!
//! With nats-server, the wallet and the gateway only (nothing else is on the
//! path), one player calls `GetWallet` (a store read) one call at a time,
//! alternating between the two paths so both see the same machine load:
//! `--calls` per path after `--warmup` each, then p50/p90/p99/max per path
//! and the difference of the percentiles. Build in release mode for figures
//! that mean anything (`cargo build --release --workspace --bins`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use api::game::wallet::v1::{GetWalletRequest, wallet_service_client::WalletServiceClient};
use dev_issuer::authorized;
use loadgen::Latencies;
use tonic::transport::{Channel, Endpoint};

use crate::mesh::{Layout, Mesh, MeshConfig, Replicas};

/// Options of `rewardsctl bench gateway`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Measured calls per path.
    pub calls: usize,
    /// Calls per path before measuring (connections, caches, JIT-free but cold stores).
    pub warmup: usize,
    /// Where the processes, stores and logs go.
    pub run_dir: PathBuf,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
}

/// The command line of `rewardsctl bench gateway-auth`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Measured calls per path (at least 1).
    #[arg(long, default_value_t = 5_000, value_name = "N")]
    calls: usize,
    /// Calls per path before measuring.
    #[arg(long, default_value_t = 500, value_name = "N")]
    warmup: usize,
    /// Where the processes, stores and logs go (default .run/bench-<UTC time>/gateway).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
}

impl Args {
    /// The run these arguments ask for.
    ///
    /// # Errors
    /// When the running executable has no directory (the service binaries are beside it).
    pub fn options(self) -> anyhow::Result<Options> {
        Ok(Options {
            calls: self.calls.max(1),
            warmup: self.warmup,
            run_dir: self.run_dir.unwrap_or_else(|| crate::runs::benchmark("gateway")),
            bin_dir: crate::runs::bin_dir()?,
        })
    }
}

/// Runs the benchmark and prints the figures.
///
/// # Errors
/// When the processes do not start or a call fails.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let mut layout = Layout::free(crate::mesh::Shape::Single, &Replicas::default())?;
    layout.members.retain(|m| matches!(m.service.name, "wallet" | "gateway"));
    let env = [
        // One player makes thousands of calls a second here: the rate limit
        // would be what is measured otherwise.
        ("gateway", "GATEWAY_RATE_LIMIT_PER_SECOND", "1000000"),
        ("gateway", "GATEWAY_RATE_LIMIT_BURST", "1000000"),
        ("*", "RUST_LOG", "warn"),
    ];
    let config = MeshConfig {
        run_dir: options.run_dir.clone(),
        bin_dir: options.bin_dir.clone(),
        nats_server: None,
        layout,
        env: env.iter().map(|(s, k, v)| ((*s).to_owned(), (*k).to_owned(), (*v).to_owned())).collect(),
        announce: false,
    };
    let mut mesh = Mesh::new(config)?;
    mesh.start_infrastructure().await?;
    mesh.start_members(|_| true);
    mesh.wait_until_serving(Duration::from_secs(60), false).await?;
    let wallet_url = mesh.layout().urls("wallet");
    let gateway_url = mesh.layout().gateway_url();
    let token = mesh.identity().player("player-bench");

    let direct = client(&wallet_url).await?;
    let through = client(&gateway_url).await?;
    let mut samples = [Latencies::new(), Latencies::new()];
    for round in 0..options.warmup + options.calls {
        for (path, client) in [&direct, &through].into_iter().enumerate() {
            let request = authorized(GetWalletRequest { customer_id: "player-bench".into() }, &token);
            let started = Instant::now();
            client.clone().get_wallet(request).await.with_context(|| format!("call {round} failed"))?;
            if round >= options.warmup {
                samples[path].record(started.elapsed());
            }
        }
    }
    mesh.stop().await;

    let [direct, through] = samples.map(|latencies| latencies.summary());
    let profile =
        if cfg!(debug_assertions) { "debug build: build with --release for real figures" } else { "release build" };
    println!(
        "\n== The gateway's added latency: GetWallet with a player's ES256 token, {} calls per path, one at a time ({profile}) ==",
        options.calls
    );
    println!("  {:<28} {:>9} {:>9} {:>9} {:>9}", "path", "p50 ms", "p90 ms", "p99 ms", "max ms");
    for (name, p) in [("straight to wallet", direct), ("through the gateway", through)] {
        println!("  {name:<28} {:>9.3} {:>9.3} {:>9.3} {:>9.3}", p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms);
    }
    println!(
        "  {:<28} {:>9.3} {:>9.3} {:>9.3}",
        "added by the gateway",
        through.p50_ms - direct.p50_ms,
        through.p90_ms - direct.p90_ms,
        through.p99_ms - direct.p99_ms
    );
    println!("  processes, stores and logs in {}", options.run_dir.display());
    Ok(())
}

async fn client(url: &str) -> anyhow::Result<WalletServiceClient<Channel>> {
    let channel = Endpoint::from_shared(url.to_owned())?.tcp_nodelay(true).connect().await?;
    Ok(WalletServiceClient::new(channel))
}

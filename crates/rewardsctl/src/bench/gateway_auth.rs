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

impl Options {
    /// Parses the arguments after `gateway`.
    ///
    /// # Errors
    /// On an unknown or incomplete argument.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            calls: 5_000,
            warmup: 500,
            run_dir: super::run_dir("gateway"),
            bin_dir: super::bin_dir().map_err(|e| e.to_string())?,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut count = |name: &str| -> Result<usize, String> {
                let value = args.next().ok_or(format!("{name} needs a count"))?;
                value.parse().map_err(|_| format!("{name}: {value:?} is not a count"))
            };
            match arg.as_str() {
                "--calls" => options.calls = count("--calls")?.max(1),
                "--warmup" => options.warmup = count("--warmup")?,
                "--run-dir" => options.run_dir = args.next().ok_or("--run-dir needs a directory")?.into(),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(options)
    }
}

/// Latency percentiles of one path.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// The percentiles of `samples` (sorted here).
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
            let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(index).copied().unwrap_or_default()
        };
        Self { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: samples.last().copied().unwrap_or_default() }
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
    let mut samples = [Vec::with_capacity(options.calls), Vec::with_capacity(options.calls)];
    for round in 0..options.warmup + options.calls {
        for (path, client) in [&direct, &through].into_iter().enumerate() {
            let request = authorized(GetWalletRequest { customer_id: "player-bench".into() }, &token);
            let started = Instant::now();
            client.clone().get_wallet(request).await.with_context(|| format!("call {round} failed"))?;
            if round >= options.warmup {
                samples[path].push(started.elapsed());
            }
        }
    }
    mesh.stop().await;

    let [direct, through] = samples.map(|mut s| Percentiles::of(&mut s));
    let profile =
        if cfg!(debug_assertions) { "debug build: build with --release for real figures" } else { "release build" };
    println!(
        "\n== The gateway's added latency: GetWallet with a player's ES256 token, {} calls per path, one at a time ({profile}) ==",
        options.calls
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("  {:<28} {:>9} {:>9} {:>9} {:>9}", "path", "p50 ms", "p90 ms", "p99 ms", "max ms");
    for (name, p) in [("straight to wallet", direct), ("through the gateway", through)] {
        println!("  {name:<28} {:>9.3} {:>9.3} {:>9.3} {:>9.3}", ms(p.p50), ms(p.p90), ms(p.p99), ms(p.max));
    }
    let added = |a: Duration, b: Duration| ms(a) - ms(b);
    println!(
        "  {:<28} {:>9.3} {:>9.3} {:>9.3}",
        "added by the gateway",
        added(through.p50, direct.p50),
        added(through.p90, direct.p90),
        added(through.p99, direct.p99)
    );
    println!("  processes, stores and logs in {}", options.run_dir.display());
    Ok(())
}

async fn client(url: &str) -> anyhow::Result<WalletServiceClient<Channel>> {
    let channel = Endpoint::from_shared(url.to_owned())?.tcp_nodelay(true).connect().await?;
    Ok(WalletServiceClient::new(channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!(
            (p.p50, p.p99, p.max),
            (Duration::from_millis(51), Duration::from_millis(99), Duration::from_millis(100))
        );
    }
}

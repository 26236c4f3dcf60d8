//! `rewardsctl up`: the whole mesh on one machine, with embedded defaults —
//! a nats-server with JetStream and one SQLite file per service, all under
//! the run directory, every process supervised.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use platform::CancellationToken;
use tokio::task::JoinSet;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::supervisor::{ProcessSpec, supervise};

/// One service of the mesh as the runner starts it.
struct Service {
    name: &'static str,
    port: u16,
    /// The health entry that turns SERVING when the service is ready.
    health: &'static str,
}

const SERVICES: [Service; 7] = [
    Service { name: "mission", port: 50051, health: "game.mission.v1.MissionService" },
    Service { name: "reward", port: 50052, health: "game.reward.v1.RewardService" },
    Service { name: "wallet", port: 50053, health: "game.wallet.v1.WalletService" },
    Service { name: "gift", port: 50054, health: "game.gift.v1.GiftService" },
    Service { name: "mypage", port: 50055, health: "game.mypage.v1.MyPageService" },
    Service { name: "settlement", port: 50056, health: "game.settlement.v1.SettlementService" },
    Service { name: "gateway", port: 8080, health: "" },
];

const NATS_PORT: u16 = 14222;
const NATS_MONITOR_PORT: u16 = 18222;

/// Options of `rewardsctl up`.
#[derive(Debug)]
pub struct Options {
    demo: bool,
    run_dir: PathBuf,
}

impl Options {
    /// Parses the arguments after `up`.
    ///
    /// # Errors
    /// On an unknown or incomplete argument.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self { demo: false, run_dir: PathBuf::from(".run") };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--demo" => options.demo = true,
                "--run-dir" => options.run_dir = args.next().ok_or("--run-dir needs a directory")?.into(),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(options)
    }
}

/// Starts everything, waits for SERVING, optionally plays the demo, and runs
/// until Ctrl-C.
///
/// # Errors
/// When a binary is missing or the system does not come up.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let bin_dir = std::env::current_exe()?.parent().context("rewardsctl has no directory")?.to_path_buf();
    let run_dir = options.run_dir;
    for dir in ["data", "logs", "nats"] {
        std::fs::create_dir_all(run_dir.join(dir)).with_context(|| format!("cannot create {}", run_dir.display()))?;
    }
    let run_dir = run_dir.canonicalize()?;
    let nats_url = format!("nats://127.0.0.1:{NATS_PORT}");

    let stop = CancellationToken::new();
    let mut processes = JoinSet::new();
    let nats = nats_process(&run_dir)?;
    processes.spawn(supervise(nats, stop.clone()));
    wait_for_port(NATS_PORT, Duration::from_secs(20)).await.context("nats-server did not start")?;

    for service in &SERVICES {
        let program = bin_dir.join(service.name);
        if !program.exists() {
            bail!("{} is missing: build the services first (`just up` does)", program.display());
        }
        processes.spawn(supervise(service_process(service, program, &run_dir, &nats_url), stop.clone()));
    }

    let ready = tokio::select! {
        ready = wait_until_serving(Duration::from_secs(120)) => ready,
        () = platform::shutdown_signal() => Err(anyhow::anyhow!("interrupted while starting")),
    };
    if let Err(error) = ready {
        stop.cancel();
        while processes.join_next().await.is_some() {}
        return Err(error.context(format!("see the logs in {}", run_dir.join("logs").display())));
    }
    print_endpoints(&run_dir, started.elapsed());

    if options.demo {
        let demo = crate::demo::Options::default();
        if let Err(error) = crate::demo::run(&demo).await {
            eprintln!("[runner] the demo failed: {error:#}");
        }
        println!("\nThe system keeps running; press Ctrl-C to stop it.");
    }

    platform::shutdown_signal().await;
    println!("\n[runner] stopping every service…");
    stop.cancel();
    while processes.join_next().await.is_some() {}
    println!("[runner] stopped.");
    Ok(())
}

fn nats_process(run_dir: &Path) -> anyhow::Result<ProcessSpec> {
    let program = find_nats_server().context("nats-server not found: run `./dev up` (it installs it into .tools/)")?;
    Ok(ProcessSpec {
        name: "nats-server".into(),
        program,
        args: vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            NATS_PORT.to_string(),
            "-m".into(),
            NATS_MONITOR_PORT.to_string(),
            "-js".into(),
            "-sd".into(),
            run_dir.join("nats").display().to_string(),
        ],
        env: Vec::new(),
        log: run_dir.join("logs/nats-server.log"),
    })
}

fn find_nats_server() -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
        return Some(bin.into());
    }
    let local = Path::new(".tools/bin/nats-server");
    if local.exists() {
        return Some(local.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("nats-server")).find(|candidate| candidate.exists())
}

fn service_process(service: &Service, program: PathBuf, run_dir: &Path, nats_url: &str) -> ProcessSpec {
    let mut env = vec![
        ("NATS_URL".to_owned(), nats_url.to_owned()),
        ("RUST_LOG".to_owned(), std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())),
    ];
    if service.name == "gateway" {
        env.push(("GATEWAY_ADDR".into(), format!("127.0.0.1:{}", service.port)));
    } else {
        env.push(("GRPC_ADDR".into(), format!("127.0.0.1:{}", service.port)));
        let database = run_dir.join("data").join(format!("{}.sqlite", service.name));
        env.push(("DATABASE_URL".into(), database.display().to_string()));
    }
    ProcessSpec {
        name: service.name.into(),
        program,
        args: Vec::new(),
        env,
        log: run_dir.join("logs").join(format!("{}.log", service.name)),
    }
}

async fn wait_for_port(port: u16, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} after {}s", within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn is_serving(service: &Service) -> bool {
    let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", service.port))
        .map(|e| e.connect_timeout(Duration::from_millis(500)))
    else {
        return false;
    };
    let Ok(channel) = channel.connect().await else {
        return false;
    };
    let request = HealthCheckRequest { service: service.health.to_owned() };
    matches!(
        HealthClient::new(channel).check(request).await.map(|r| r.into_inner().status()),
        Ok(ServingStatus::Serving)
    )
}

async fn wait_until_serving(within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let mut waiting: Vec<&Service> = SERVICES.iter().collect();
    let mut last_report = Instant::now();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for service in waiting {
            if !is_serving(service).await {
                still.push(service);
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let names: Vec<&str> = waiting.iter().map(|s| s.name).collect();
            bail!("not SERVING after {}s: {}", within.as_secs(), names.join(", "));
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            let names: Vec<&str> = waiting.iter().map(|s| s.name).collect();
            println!("[runner] waiting for {}…", names.join(", "));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn print_endpoints(run_dir: &Path, elapsed: Duration) {
    println!("\nAll services are SERVING ({:.1}s from start).\n", elapsed.as_secs_f64());
    println!("  gateway (the one entry point)  127.0.0.1:8080   (plaintext gRPC, reflection on)");
    for service in SERVICES.iter().filter(|s| s.name != "gateway") {
        println!("  {:<30} 127.0.0.1:{}", service.name, service.port);
    }
    println!(
        "  nats-server (JetStream)        127.0.0.1:{NATS_PORT}  monitoring http://127.0.0.1:{NATS_MONITOR_PORT}/jsz"
    );
    println!("\n  stores and logs under {}", run_dir.display());
    println!(
        "\nTry (grpcurl is in .tools/bin):
  grpcurl -plaintext 127.0.0.1:8080 list
  grpcurl -plaintext 127.0.0.1:8080 describe game.wallet.v1.WalletService
  grpcurl -plaintext -d '{{\"customer_id\":\"player-1\",\"mission_code\":\"FIRST_WIN\"}}' 127.0.0.1:8080 game.mission.v1.MissionService/AchieveMission
  grpcurl -plaintext -d '{{\"customer_id\":\"player-1\"}}' 127.0.0.1:8080 game.mypage.v1.MyPageService/GetMyPage
  grpcurl -plaintext 127.0.0.1:8080 game.gift.v1.GiftService/ListProducts
  just demo     # plays the whole story against this running system"
    );
}

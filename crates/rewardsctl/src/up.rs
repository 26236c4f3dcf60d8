//! `rewardsctl up`: the whole mesh on one machine, with embedded defaults —
//! a nats-server with JetStream and one SQLite file per service, all under
//! the run directory, every process supervised; services may run as several
//! replicas behind the gateway; with `--cluster`, the production shape
//! (three clustered nats-servers, PostgreSQL, two replicas of everything); with `--prometheus`, a real Prometheus
//! scraping every process ([`crate::prometheus`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::mesh::{Layout, Mesh, MeshConfig, Replicas, Shape};

/// Options of `rewardsctl up`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Play the player's story once every service serves.
    #[arg(long)]
    demo: bool,
    /// Also run a Prometheus on 127.0.0.1:9090 scraping every process (Debian's `prometheus`;
    /// ./dev up --prometheus installs it).
    #[arg(long)]
    prometheus: bool,
    /// Where the stores, logs and the development key pair go.
    #[arg(long, default_value = ".run", value_name = "DIR")]
    run_dir: PathBuf,
    /// Services (and the gateway) as several processes, e.g. reward=2,wallet=2.
    #[arg(long, value_name = "SERVICE=N,...", value_parser = Replicas::parse)]
    replicas: Option<Replicas>,
    /// The production shape: three nats-servers clustered with JetStream (streams replicated 3
    /// times), a PostgreSQL of the runner's own with a database per service (Debian's `postgresql`;
    /// ./dev up --cluster installs it), two replicas of everything.
    #[arg(long)]
    cluster: bool,
}

/// Starts everything, waits for SERVING, optionally plays the demo, and runs
/// until Ctrl-C.
///
/// # Errors
/// When a binary is missing or the system does not come up.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let bin_dir = crate::runs::bin_dir()?;
    let shape = if options.cluster { Shape::Cluster } else { Shape::Single };
    let layout = Layout::well_known(shape, &options.replicas.unwrap_or_default());
    let mut env = page_env(&options.run_dir);
    if options.demo {
        env.extend(demo_env());
    }
    let config = MeshConfig { run_dir: options.run_dir, bin_dir, nats_server: None, layout, env, announce: true };
    let mut mesh = Mesh::new(config)?;
    mesh.start_infrastructure().await?;
    mesh.start_members(|_| true);

    let ready = tokio::select! {
        ready = mesh.wait_until_serving(Duration::from_secs(120), true) => ready,
        () = platform::shutdown_signal() => Err(anyhow::anyhow!("interrupted while starting")),
    };
    if let Err(error) = ready {
        mesh.stop().await;
        return Err(error);
    }
    print_endpoints(&mesh, started.elapsed());
    let prometheus = if options.prometheus {
        let layout = mesh.layout().clone();
        let port = crate::prometheus::DEFAULT_PORT;
        match crate::prometheus::Prometheus::start(&layout, mesh.run_dir(), port, Duration::from_secs(5), true).await {
            Ok(prometheus) => {
                crate::prometheus::print_started(&prometheus, &layout);
                Some(prometheus)
            }
            Err(error) => {
                mesh.stop().await;
                return Err(error);
            }
        }
    } else {
        None
    };

    if options.demo {
        let demo = crate::demo::Options::in_run_dir(mesh.run_dir().to_path_buf());
        if let Err(error) = crate::demo::run(&demo).await {
            eprintln!("[runner] the demo failed: {error:#}");
        }
        println!("\nThe system keeps running; press Ctrl-C to stop it.");
    }

    platform::shutdown_signal().await;
    println!("\n[runner] stopping every service…");
    if let Some(prometheus) = prometheus {
        prometheus.stop().await;
    }
    mesh.stop().await;
    println!("[runner] stopped.");
    Ok(())
}

/// What `--demo` changes in the system it starts, unless the caller's
/// environment says otherwise: settlement periods of 10 s, looked for every
/// second once they ended, so that the story shows a period closed with its
/// totals within seconds; and gift's vendor simulation served (to
/// operators, on loopback), so that the story has the vendor cancel an
/// order.
pub fn demo_env() -> Vec<(String, String, String)> {
    [
        ("settlement", "SETTLEMENT_PERIOD", "10s"),
        ("settlement", "SETTLEMENT_CLOSE_INTERVAL_MS", "1000"),
        ("gift", "GIFT_VENDOR_SIMULATION", "true"),
    ]
    .into_iter()
    .filter(|(_, name, _)| std::env::var_os(name).is_none())
    .map(|(service, name, value)| (service.to_owned(), name.to_owned(), value.to_owned()))
    .collect()
}

/// The built development page (`npm --prefix web run build:dev`, which
/// `just up` runs first): with the "play a match" control and the
/// development sign-in, which the production build has not.
const DEV_PAGE: &str = "web/dist-dev";

/// The origin of the page's development server (`npm --prefix web run dev`).
const DEV_SERVER_ORIGINS: &str = "http://localhost:5173,http://127.0.0.1:5173";

/// What the gateway needs to serve the page locally: the built page, the
/// development sign-in with this run's key, and CORS for the page's
/// development server. No page when it was not built.
fn page_env(run_dir: &std::path::Path) -> Vec<(String, String, String)> {
    let gateway = |name: &str, value: String| ("gateway".to_owned(), name.to_owned(), value);
    let mut env = vec![
        gateway("GATEWAY_DEV_SIGN_IN_DIR", run_dir.join("auth").display().to_string()),
        gateway("GATEWAY_CORS_ORIGINS", DEV_SERVER_ORIGINS.to_owned()),
    ];
    let page = std::path::Path::new(DEV_PAGE);
    if page.join("index.html").exists() {
        let page = page.canonicalize().unwrap_or_else(|_| page.to_path_buf());
        env.push(gateway("GATEWAY_WEB_ROOT", page.display().to_string()));
    }
    env
}

fn print_endpoints(mesh: &Mesh, elapsed: Duration) {
    let layout = mesh.layout();
    println!("\nAll services are SERVING ({:.1}s from start).\n", elapsed.as_secs_f64());
    println!("  {:<32} {:<18} metrics (Prometheus text)", "process", "gRPC");
    for member in &layout.members {
        let role = if member.service.name == "gateway" {
            format!("{} (an entry point)", member.name)
        } else {
            member.name.clone()
        };
        println!("  {role:<32} 127.0.0.1:{:<8} http://127.0.0.1:{}/metrics", member.grpc_port, member.metrics_port);
    }
    for (ports, name) in layout.nats.iter().zip(layout.nats_names()) {
        let role = if layout.nats.len() == 1 {
            "nats-server (JetStream)".to_owned()
        } else {
            format!("{name} (JetStream cluster)")
        };
        println!("  {role:<32} 127.0.0.1:{:<8} monitoring http://127.0.0.1:{}/jsz", ports.client, ports.monitor);
    }
    if let Some(port) = layout.postgres_port {
        println!(
            "  {:<32} 127.0.0.1:{port:<8} a database per service: psql -h 127.0.0.1 -p {port} -U postgres mission",
            "PostgreSQL"
        );
    }
    match layout.shape {
        Shape::Single => println!("\n  the embedded defaults: a SQLite file per service, one nats-server"),
        Shape::Cluster => println!(
            "\n  the production shape: every stream and consumer replicated {} times over the NATS cluster, \
             every service on PostgreSQL, two replicas of each and of the gateway",
            layout.shape.stream_replicas()
        ),
    }
    println!("  the gateway serves plaintext gRPC with reflection, balancing over each service's replicas");
    println!("  stores and logs under {}", mesh.run_dir().display());
    let gateway = layout.gateway_url();
    if std::path::Path::new(DEV_PAGE).join("index.html").exists() {
        println!("\n  My page (open it in a browser; sign in with any player id): {gateway}/");
    } else {
        println!("\n  My page is not built: `./dev up` builds it (npm --prefix web run build:dev)");
    }
    let gateway = gateway.trim_start_matches("http://");
    println!(
        "\nTry (grpcurl is in .tools/bin); every game API call needs a token, health and reflection do not:
  grpcurl -plaintext {gateway} list
  grpcurl -plaintext {gateway} describe game.wallet.v1.WalletService
  TOKEN=$(just token player-1)     # signed with the development key in {auth}
  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"customer_id\":\"player-1\",\"mission_code\":\"FIRST_WIN\"}}' {gateway} game.mission.v1.MissionService/AchieveMission
  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"customer_id\":\"player-1\"}}' {gateway} game.mypage.v1.MyPageService/GetMyPage
  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" {gateway} game.gift.v1.GiftService/ListProducts
  just demo     # plays the whole story against this running system",
        auth = mesh.identity().jwks_path().parent().map(|p| p.display().to_string()).unwrap_or_default()
    );
}

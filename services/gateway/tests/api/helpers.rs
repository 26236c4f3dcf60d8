//! Two real mission replicas on one SQLite file and one broker, the real
//! gateway in front of them, and a byte-counting relay that tells which
//! replica a call went to.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api::game::mission::v1::{self as pb, mission_service_client::MissionServiceClient};
use platform::CancellationToken;
use testkit::{AsCaller, Broker, Running, TempStore, service_config};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

/// The mission service's health entry, as the gateway reports it.
pub const MISSION: &str = "game.mission.v1.MissionService";

pub struct TestMesh {
    pub broker: Broker,
    /// The replicas, `None` once stopped.
    pub replicas: Vec<Option<Running>>,
    /// The ports the replicas listen on, kept to restart one on its port.
    pub replica_ports: Vec<u16>,
    /// One relay in front of each replica, when asked for.
    pub relays: Vec<Relay>,
    pub missions: MissionServiceClient<Channel>,
    pub health: HealthClient<Channel>,
    store: TempStore,
    gateway: CancellationToken,
}

impl Drop for TestMesh {
    fn drop(&mut self) {
        self.gateway.cancel();
    }
}

/// Two mission replicas behind the gateway; with `relayed`, the gateway
/// reaches each through a relay that counts the calls it carries.
pub async fn two_replicas_behind_the_gateway(relayed: bool) -> TestMesh {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let mut replicas = Vec::new();
    let mut replica_ports = Vec::new();
    for _ in 0..2 {
        let replica = start_replica(&broker, &store, 0).await;
        replica_ports.push(replica.port());
        replicas.push(Some(replica));
    }
    let mut relays = Vec::new();
    let mut urls = Vec::new();
    for port in &replica_ports {
        if relayed {
            let relay = Relay::start(*port, PROBE.as_bytes()).await;
            urls.push(format!("http://127.0.0.1:{}", relay.port));
            relays.push(relay);
        } else {
            urls.push(format!("http://127.0.0.1:{port}"));
        }
    }

    let mut config = gateway::GatewayConfig::local();
    config.addr = ([127, 0, 0, 1], 0).into();
    config.shutdown_grace = Duration::from_secs(1);
    config.auth = Some(testkit::identity().auth_config());
    // Hundreds of calls of one player in a second are these tests' point.
    config.rate_limit = gateway::rate_limit::RateLimit { per_second: 1e6, burst: 1_000_000 };
    for (service, url) in &mut config.upstreams {
        // Only the mission service is behind this gateway; the others point
        // at a port nobody listens on.
        *url = if *service == MISSION { urls.join(",") } else { "http://127.0.0.1:1".into() };
    }
    let app = gateway::App::build(config).await.expect("the gateway starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    let gateway = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(gateway.clone().cancelled_owned()));
    let channel = Channel::from_shared(url).unwrap().connect().await.expect("the gateway is reachable");
    TestMesh {
        broker,
        replicas,
        replica_ports,
        relays,
        missions: MissionServiceClient::new(channel.clone()),
        health: HealthClient::new(channel),
        store,
        gateway,
    }
}

async fn start_replica(broker: &Broker, store: &TempStore, port: u16) -> Running {
    let mut config = service_config(broker, store.sqlite_url("mission"));
    config.grpc_addr = ([127, 0, 0, 1], port).into();
    Running::serve(mission::build(config).await.expect("a mission replica starts"))
}

impl TestMesh {
    /// Stops replica `index` and waits until its port refuses connections.
    pub async fn stop_replica(&mut self, index: usize) {
        let replica = self.replicas[index].take().expect("the replica is running");
        let port = replica.port();
        drop(replica);
        eventually("the replica's port to close", || async move {
            TcpStream::connect(("127.0.0.1", port)).await.is_err().then_some(())
        })
        .await;
    }

    /// Starts replica `index` again, on its port.
    pub async fn restart_replica(&mut self, index: usize) {
        let replica = start_replica(&self.broker, &self.store, self.replica_ports[index]).await;
        self.replicas[index] = Some(replica);
    }

    /// Achieves a mission through the gateway for `customer`.
    pub async fn achieve(&self, customer: &str) -> Result<pb::Mission, tonic::Status> {
        let request = pb::AchieveMissionRequest {
            customer_id: customer.into(),
            mission_code: "FIRST_WIN".into(),
            achievement_id: None,
        };
        Ok(self.missions.clone().achieve_mission(request.by_player(customer)).await?.into_inner().mission.unwrap())
    }
}

/// What every probing call carries in its body, for the relays to count.
pub const PROBE: &str = "balance-probe";

/// A TCP relay in front of a replica that counts the calls carrying
/// [`PROBE`]: gRPC messages travel uncompressed, so the customer id is
/// there byte for byte, while health checks and other calls never carry it.
pub struct Relay {
    pub port: u16,
    probes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(target: u16, marker: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let probes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&probes);
        let task = tokio::spawn(async move {
            // Dropped with the accept loop, so stopping the relay ends its connections.
            let mut connections = JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                connections.spawn(async move {
                    let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await else { return };
                    let (mut in_read, mut in_write) = inbound.into_split();
                    let (mut out_read, mut out_write) = outbound.into_split();
                    let upstream = async {
                        let mut buffer = vec![0u8; 16 * 1024];
                        let mut carry: Vec<u8> = Vec::new();
                        loop {
                            let read = match in_read.read(&mut buffer).await {
                                Ok(0) | Err(_) => break,
                                Ok(read) => read,
                            };
                            carry.extend_from_slice(&buffer[..read]);
                            let found = carry.windows(marker.len()).filter(|w| *w == marker).count();
                            counted.fetch_add(found, Ordering::SeqCst);
                            // Keep a tail shorter than the marker: a marker split
                            // across reads is counted once, when it completes.
                            let keep = carry.len().min(marker.len() - 1);
                            carry.drain(..carry.len() - keep);
                            if out_write.write_all(&buffer[..read]).await.is_err() {
                                break;
                            }
                        }
                        let _ = out_write.shutdown().await;
                    };
                    let downstream = async {
                        let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
                        let _ = in_write.shutdown().await;
                    };
                    tokio::join!(upstream, downstream);
                });
            }
        });
        Self { port, probes, task }
    }

    /// How many probing calls went through this relay.
    pub fn probes(&self) -> usize {
        self.probes.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `check` until it returns `Some`, for at most 10 seconds.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    testkit::eventually(what, Duration::from_secs(10), check).await
}

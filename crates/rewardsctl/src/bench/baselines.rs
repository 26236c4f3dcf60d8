//! The machine's limits, measured in the same run as the system so every
//! figure can be read against them: a bare tonic call (a server with
//! `grpc.health.v1` only, in its own process), bare JetStream publishes and
//! consumption on a nats-server of its own, and bare single-row commits on a
//! SQLite file (WAL, synchronous=NORMAL, as the services open theirs) on the
//! disk the services use.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt as _;
use loadgen::grpc::Target;
use loadgen::latency::{Latencies, Summary};
use loadgen::methods::Method;
use loadgen::run::{ClosedLoop, OpenLoop, Report, closed_loop, open_loop};
use serde::Serialize;

use crate::mesh::{Layout, Mesh, MeshConfig, Replicas};
use crate::supervisor::{ProcessSpec, supervised};

/// How long and how much.
#[derive(Debug, Clone)]
pub struct Options {
    /// Of each tonic run.
    pub duration: Duration,
    /// Messages published, then consumed.
    pub messages: usize,
    /// Single-row commits.
    pub commits: usize,
}

/// Every baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    /// Health/Check at 1,000 calls/s, one connection's worth of calls in flight.
    pub echo_latency: Report,
    /// Health/Check with 16 in flight, closed loop.
    pub echo_throughput: Report,
    pub jetstream: JetStream,
    pub sqlite: Commits,
}

/// Bare JetStream on a server of its own.
#[derive(Debug, Clone, Serialize)]
pub struct JetStream {
    /// One publish at a time, each waiting for its PubAck.
    pub publish_one_latency: Summary,
    /// Publishes in windows of 256 before their PubAcks are awaited.
    pub publish_batched_per_s: f64,
    /// A durable pull consumer reading and acking the stream.
    pub consume_per_s: f64,
}

/// Bare single-row commits, one transaction each, one after the other.
#[derive(Debug, Clone, Serialize)]
pub struct Commits {
    pub commits_per_s: f64,
    pub commit_latency: Summary,
}

/// Measures every baseline; processes and files go under `dir`.
///
/// # Errors
/// When the echo server or nats-server cannot start, or the file cannot be written.
pub async fn run(dir: &Path, bin_dir: &Path, options: &Options) -> anyhow::Result<Baselines> {
    std::fs::create_dir_all(dir)?;
    let (echo_latency, echo_throughput) = echo(dir, bin_dir, options.duration).await?;
    let jetstream = jetstream(dir, bin_dir, options.messages).await?;
    let sqlite = sqlite(dir.join("baseline.sqlite"), options.commits).await?;
    Ok(Baselines { echo_latency, echo_throughput, jetstream, sqlite })
}

async fn echo(dir: &Path, bin_dir: &Path, duration: Duration) -> anyhow::Result<(Report, Report)> {
    let port = localinfra::ports::RUNNER.take()?;
    let stop = platform::CancellationToken::new();
    let spec = ProcessSpec {
        name: "echo".into(),
        program: bin_dir.join("loadgen"),
        args: vec!["serve-echo".into(), "--addr".into(), format!("127.0.0.1:{port}")],
        env: Vec::new(),
        log: dir.join("echo.log"),
        announce: true,
        owner: None,
    };
    let (_handle, supervision) = supervised(spec, stop.clone());
    let supervisor = tokio::spawn(supervision);
    let url = format!("http://127.0.0.1:{port}");
    let measured = async {
        let target = connect_when_up(&url).await?;
        let method = std::sync::Arc::new(Method::Health { service: loadgen::echo::ECHO_SERVICE.into() });
        let call = move |i| {
            let (target, method) = (target.clone(), std::sync::Arc::clone(&method));
            async move { method.call(&target, i).await }
        };
        let timeout = Duration::from_secs(10);
        let open = OpenLoop { rate: 1_000.0, duration, max_in_flight: 1_024, timeout };
        let latency = {
            let call = call.clone();
            open_loop(&open, move |i, _| call(i)).await
        };
        let throughput = closed_loop(&ClosedLoop { concurrency: 16, duration, timeout }, call).await;
        println!(
            "  tonic echo: at 1000/s ms p50 {:.3} p99 {:.3}; 16 in flight {:.0} calls/s",
            latency.latency.p50_ms, latency.latency.p99_ms, throughput.achieved_rate
        );
        anyhow::Ok((latency, throughput))
    }
    .await;
    stop.cancel();
    let _ = supervisor.await;
    measured
}

async fn connect_when_up(url: &str) -> anyhow::Result<Target> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Target::connect(url, 2, &[]).await {
            Ok(target) => return Ok(target),
            Err(error) if Instant::now() > deadline => return Err(error.context("the echo server did not start")),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn jetstream(dir: &Path, bin_dir: &Path, messages: usize) -> anyhow::Result<JetStream> {
    let mut layout = Layout::free(crate::mesh::Shape::Single, &Replicas::default())?;
    layout.members.clear();
    let config = MeshConfig {
        run_dir: dir.join("nats-baseline"),
        bin_dir: bin_dir.to_path_buf(),
        nats_server: None,
        layout,
        env: Vec::new(),
        announce: true,
    };
    let mut mesh = Mesh::new(config)?;
    mesh.start_infrastructure().await?;
    let measured = measure_jetstream(&mesh.layout().nats_url(), messages).await;
    mesh.stop().await;
    let measured = measured?;
    println!(
        "  JetStream: one publish at a time ms p50 {:.3} p99 {:.3}; batched {:.0}/s; consumed {:.0}/s",
        measured.publish_one_latency.p50_ms,
        measured.publish_one_latency.p99_ms,
        measured.publish_batched_per_s,
        measured.consume_per_s
    );
    Ok(measured)
}

#[allow(clippy::cast_precision_loss)] // message counts fit an f64 exactly
async fn measure_jetstream(url: &str, messages: usize) -> anyhow::Result<JetStream> {
    let js = jetstream::new(async_nats::connect(url).await.context("cannot connect to nats-server")?);
    let stream = js
        .get_or_create_stream(stream::Config {
            name: "BASELINE".into(),
            subjects: vec!["baseline.>".into()],
            ..Default::default()
        })
        .await?;
    // A payload the size of a MissionAchieved.
    let payload = bytes::Bytes::from(vec![7u8; 160]);
    let mut one = Latencies::new();
    for _ in 0..1_000 {
        let started = Instant::now();
        js.publish("baseline.one", payload.clone()).await?.await?;
        one.record(started.elapsed());
    }
    let started = Instant::now();
    let mut published = 0;
    while published < messages {
        let window = (messages - published).min(256);
        let mut acks = Vec::with_capacity(window);
        for _ in 0..window {
            acks.push(js.publish("baseline.batched", payload.clone()).await?);
        }
        for ack in acks {
            ack.await?;
        }
        published += window;
    }
    let publish_batched_per_s = messages as f64 / started.elapsed().as_secs_f64();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("baseline".into()),
            filter_subject: "baseline.batched".into(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut stream = consumer.stream().max_messages_per_batch(256).messages().await?;
    let mut consumed = 0;
    while consumed < messages {
        let Some(message) = stream.next().await else { break };
        message?.ack().await.map_err(|e| anyhow::anyhow!("ack failed: {e}"))?;
        consumed += 1;
    }
    let consume_per_s = consumed as f64 / started.elapsed().as_secs_f64();
    Ok(JetStream { publish_one_latency: one.summary(), publish_batched_per_s, consume_per_s })
}

async fn sqlite(path: PathBuf, commits: usize) -> anyhow::Result<Commits> {
    use diesel::connection::SimpleConnection as _;
    use diesel::{Connection as _, RunQueryDsl as _};
    let measured = tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_file(&path);
        let mut conn = diesel::SqliteConnection::establish(&path.display().to_string())?;
        conn.batch_execute(
            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             CREATE TABLE rows (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, at BIGINT NOT NULL);",
        )?;
        timed_commits(commits, |i| {
            conn.batch_execute("BEGIN IMMEDIATE")?;
            diesel::sql_query("INSERT INTO rows (event_id, at) VALUES (?, ?)")
                .bind::<diesel::sql_types::Text, _>(format!("event-{i}"))
                .bind::<diesel::sql_types::BigInt, _>(platform::db::now_millis())
                .execute(&mut conn)?;
            conn.batch_execute("COMMIT")?;
            Ok(())
        })
    })
    .await??;
    println!(
        "  SQLite (WAL, synchronous=NORMAL): {:.0} single-row commits/s, ms p50 {:.3} p99 {:.3}",
        measured.commits_per_s, measured.commit_latency.p50_ms, measured.commit_latency.p99_ms
    );
    Ok(measured)
}

/// Bare single-row commits on a PostgreSQL instance of its own under `dir`
/// (Debian's server, default settings: every commit flushed), over TCP on
/// loopback as the services reach theirs.
///
/// # Errors
/// When the server binaries are missing or the instance does not start.
pub async fn postgres(dir: &Path, commits: usize) -> anyhow::Result<Commits> {
    use diesel::connection::SimpleConnection as _;
    use diesel::{Connection as _, RunQueryDsl as _};
    use localinfra::postgres::{Binaries, Instance, Owner};
    let binaries = Binaries::find().context(Binaries::MISSING)?;
    let owner = Owner::needed()?;
    let instance = Instance { dir: dir.join("postgres"), port: localinfra::ports::RUNNER.take()? };
    let (init, init_binaries) = (instance.clone(), binaries.clone());
    tokio::task::spawn_blocking(move || init.init(&init_binaries, owner)).await??;
    let mut command = tokio::process::Command::new(&binaries.postgres);
    command.args(instance.server_args()).stdout(std::process::Stdio::null()).kill_on_drop(true);
    command.stderr(std::fs::File::create(dir.join("postgres.log"))?);
    if let Some(owner) = owner {
        command.uid(owner.uid).gid(owner.gid);
    }
    let mut server = command.spawn().context("cannot start postgres")?;
    instance.wait_ready(Duration::from_secs(60)).await?;
    let url = instance.url("postgres");
    let measured = tokio::task::spawn_blocking(move || {
        let mut conn = diesel::PgConnection::establish(&url)?;
        conn.batch_execute("CREATE TABLE rows (id BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL, at BIGINT NOT NULL)")?;
        timed_commits(commits, |i| {
            conn.batch_execute("BEGIN")?;
            diesel::sql_query("INSERT INTO rows (event_id, at) VALUES ($1, $2)")
                .bind::<diesel::sql_types::Text, _>(format!("event-{i}"))
                .bind::<diesel::sql_types::BigInt, _>(platform::db::now_millis())
                .execute(&mut conn)?;
            conn.batch_execute("COMMIT")?;
            Ok(())
        })
    })
    .await?;
    let _ = server.kill().await;
    let measured = measured?;
    println!(
        "  PostgreSQL (defaults, loopback TCP): {:.0} single-row commits/s, ms p50 {:.3} p99 {:.3}",
        measured.commits_per_s, measured.commit_latency.p50_ms, measured.commit_latency.p99_ms
    );
    Ok(measured)
}

/// Runs `commit` for 0..`commits`, one after the other, timing each.
fn timed_commits(commits: usize, mut commit: impl FnMut(usize) -> anyhow::Result<()>) -> anyhow::Result<Commits> {
    let mut latencies = Latencies::new();
    let started = Instant::now();
    for i in 0..commits {
        let begun = Instant::now();
        commit(i)?;
        latencies.record(begun.elapsed());
    }
    #[allow(clippy::cast_precision_loss)] // a commit count fits an f64 exactly
    let commits_per_s = commits as f64 / started.elapsed().as_secs_f64();
    Ok(Commits { commits_per_s, commit_latency: latencies.summary() })
}

//! CPU of the outbox relay, in isolation: MESSAGES events staged one per
//! write at RATE a second, each write waking the relay as a use case does,
//! until the last is marked published; beside it the same staging with no
//! relay. The difference is what the relay costs this process (reads,
//! publishes, acks, marks); nats-server's share is not counted.
//!
//! ```text
//! nats-server -js -p 14222 -sd /tmp/relay-cost-js &
//! NATS_URL=nats://127.0.0.1:14222 cargo run --release -p platform --example relay_cost [MESSAGES] [RATE] [ROUNDS]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement that cannot proceed should stop

use std::time::Duration;

use api::game::mission::v1::MissionAchieved;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::db::Database;
use platform::events::MISSION_STREAM;
use platform::outbox::{self, OutboxSignal, Relay, RelayConfig};
use tokio_util::sync::CancellationToken;

/// Any service's tables would do; the relay reads only the platform's outbox.
static TABLES: EmbeddedMigrations = embed_migrations!("tests/ledger_migrations");

/// CPU time of this process so far, every thread (ended ones too), in
/// clock ticks of 10 ms.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    let after_name = stat.rsplit_once(')').expect("a stat line").1;
    let fields: Vec<u64> = after_name.split_whitespace().skip(11).take(2).map(|f| f.parse().unwrap()).collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

async fn database() -> (Database, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("relay-cost-{}", uuid::Uuid::now_v7()));
    let db = Database::connect(dir.join("outbox.db").to_str().unwrap(), &TABLES).await.unwrap();
    (db, dir)
}

/// Stages `messages` events at `rate` a second, one write each, waking `signal` after each.
async fn stage(db: &Database, signal: &OutboxSignal, messages: usize, rate: u32) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    for i in 0..messages {
        tick.tick().await;
        let event = MissionAchieved {
            event_id: uuid::Uuid::now_v7().to_string(),
            mission_id: uuid::Uuid::now_v7().to_string(),
            customer_id: format!("player-{i}"),
            mission_code: "daily-login".into(),
            reward_points: 10,
            ..MissionAchieved::default()
        };
        db.write(move |conn| outbox::stage(conn, &event)).await.unwrap();
        signal.wake();
    }
}

async fn unpublished(db: &Database) -> i64 {
    db.read(|conn| outbox::backlog(conn).map(|(count, _)| count)).await.unwrap_or(i64::MAX)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let messages: usize = args.next().map_or(5_000, |a| a.parse().expect("MESSAGES is a number"));
    let rate: u32 = args.next().map_or(1_000, |a| a.parse().expect("RATE is a number"));
    let rounds: usize = args.next().map_or(3, |a| a.parse().expect("ROUNDS is a number"));
    let url = std::env::var("NATS_URL").expect("NATS_URL: a JetStream-enabled nats-server");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(&url).await.expect("nats-server at NATS_URL");
        let jetstream = async_nats::jetstream::new(client);
        let (mut alone, mut relayed) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (db, dir) = database().await;
            let before = process_cpu();
            stage(&db, &OutboxSignal::default(), messages, rate).await;
            alone.push(process_cpu() - before);
            drop(db);
            std::fs::remove_dir_all(dir).unwrap();

            let (db, dir) = database().await;
            let (signal, stop) = (OutboxSignal::default(), CancellationToken::new());
            let relay =
                Relay::new(db.clone(), jetstream.clone(), signal.clone(), RelayConfig::default(), &[MISSION_STREAM]);
            let running = tokio::spawn(relay.run(stop.clone()));
            // The stream exists before the clock starts.
            while jetstream.get_stream(MISSION_STREAM.name).await.is_err() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let before = process_cpu();
            stage(&db, &signal, messages, rate).await;
            while unpublished(&db).await > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            relayed.push(process_cpu() - before);
            stop.cancel();
            running.await.unwrap();
            drop(db);
            std::fs::remove_dir_all(dir).unwrap();
        }
        alone.sort();
        relayed.sort();
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        let (alone_ms, relayed_ms) = (ms(&alone[rounds / 2]), ms(&relayed[rounds / 2]));
        let per_1000 = |total: f64| total * 1_000.0 / messages as f64;
        println!(
            "{messages} events at {rate}/s, median of {rounds}: staging alone {alone_ms:.0} CPU-ms, staged and relayed \
             {relayed_ms:.0} CPU-ms; the relay {:.0} CPU-ms per 1,000 events (rounds: alone {:?}, relayed {:?})",
            per_1000(relayed_ms - alone_ms),
            alone.iter().map(ms).collect::<Vec<_>>(),
            relayed.iter().map(ms).collect::<Vec<_>>(),
        );
    });
}

//! What the platform's own tables cost a store per event applied, before and
//! after the rebuild for fewer pages per commit (migration
//! `00000000000002_fewer_pages_per_commit`): each event is an inbox entry
//! and one staged outbox row of the size the chain stages (about 370 bytes),
//! a group of them per transaction, and each transaction also marks the rows
//! of the group before it published, as the relay's marks ride on the next
//! commit. WAL with `synchronous = NORMAL` and SQLite's own checkpoints, as
//! the stores run. Prints µs and bytes written (WAL frames and checkpoints,
//! from `/proc/self/io`) per event, for groups of 1, 4 and 16 events.
//!
//! `cargo run --release -p platform --example outbox_inbox_cost [EVENTS] [ROUNDS]`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement that cannot proceed should stop

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Text};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const PLATFORM: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A store at `path` with the platform's first migration only, or all of them.
fn fresh(path: &std::path::Path, rebuilt: bool) -> SqliteConnection {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut conn = SqliteConnection::establish(&path.display().to_string()).unwrap();
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -8192;",
    )
    .unwrap();
    if rebuilt {
        conn.run_pending_migrations(PLATFORM).unwrap();
    } else {
        conn.run_next_migration(PLATFORM).unwrap();
    }
    conn
}

/// Bytes this process has handed to `write` so far.
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap();
    io.lines().find_map(|line| line.strip_prefix("wchar: ")).unwrap().trim().parse().unwrap()
}

/// Applies `events` in groups of `group`; gives µs and bytes per event.
fn apply(conn: &mut SqliteConnection, events: u64, group: u64) -> (f64, f64) {
    let payload = vec![7_u8; 131];
    let headers =
        format!("{{\"Customer-Id\":\"chain-1000-0\",\"Event-Type\":\"game.mission.v1.MissionAchieved\",{:>120}}}", "");
    let bytes_before = written();
    let started = Instant::now();
    let mut previous: Vec<i64> = Vec::new();
    for g in 0..events / group {
        conn.batch_execute("BEGIN IMMEDIATE").unwrap();
        let mut staged = Vec::with_capacity(usize::try_from(group).unwrap());
        for n in g * group..(g + 1) * group {
            // Time-ordered ids, as the services' event ids are.
            let event_id = format!("01a24e0c-{n:012}-8000-000000000000");
            diesel::sql_query("INSERT INTO inbox (consumer, event_id, processed_at) VALUES ('reward-missions', ?, 1)")
                .bind::<Text, _>(&event_id)
                .execute(conn)
                .unwrap();
            let staged_id = format!("01a24e0c-{n:012}-9000-000000000000");
            diesel::sql_query(
                "INSERT INTO outbox (event_id, subject, payload, headers, created_at) VALUES (?, 'game.reward.v1', ?, ?, 1)",
            )
            .bind::<Text, _>(&staged_id)
            .bind::<Binary, _>(&payload)
            .bind::<Text, _>(&headers)
            .execute(conn)
            .unwrap();
            staged.push(staged_id);
        }
        if !previous.is_empty() {
            let list = previous.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            diesel::sql_query(format!("UPDATE outbox SET published_at = 2 WHERE seq IN ({list})"))
                .execute(conn)
                .unwrap();
        }
        conn.batch_execute("COMMIT").unwrap();
        #[derive(QueryableByName)]
        struct Seq {
            #[diesel(sql_type = BigInt)]
            seq: i64,
        }
        previous = diesel::sql_query("SELECT seq FROM outbox WHERE published_at IS NULL ORDER BY seq")
            .load::<Seq>(conn)
            .unwrap()
            .into_iter()
            .map(|s| s.seq)
            .collect();
    }
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let per_event = |total: f64| total / events as f64;
    #[allow(clippy::cast_precision_loss)]
    let bytes = (written() - bytes_before) as f64;
    (per_event(started.elapsed().as_secs_f64() * 1e6), per_event(bytes))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(48_000, |a| a.parse().expect("EVENTS is a count"));
    let rounds: u32 = args.next().map_or(3, |a| a.parse().expect("ROUNDS is a count"));
    let dir = std::env::temp_dir().join(format!("outbox-inbox-cost-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.sqlite");
    println!("{events} events a run; µs and KB written per event");
    for round in 1..=rounds {
        for group in [1, 4, 16] {
            for (name, rebuilt) in [("before", false), ("rebuilt", true)] {
                let mut conn = fresh(&path, rebuilt);
                let (micros, bytes) = apply(&mut conn, events, group);
                println!(
                    "round {round}, {group:>2} events a commit, {name:<7}: {micros:6.2} µs, {:5.2} KB",
                    bytes / 1000.0
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

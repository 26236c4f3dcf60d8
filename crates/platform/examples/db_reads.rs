//! CPU of a read on a SQLite store's pool, in isolation: READS small reads
//! (the outbox backlog count the relay's gauge takes) one after another,
//! each a hand-off to the blocking pool, a check-out and the query. Prints
//! the process's CPU time (every thread) per read.
//!
//! `cargo run --release -p platform --example db_reads [READS] [ROUNDS]`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement that cannot proceed should stop

use std::time::Duration;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::db::Database;
use platform::outbox;

/// Any service's tables would do; the reads touch only the platform's outbox.
static TABLES: EmbeddedMigrations = embed_migrations!("tests/ledger_migrations");

/// CPU time of this process so far, every thread (ended ones too), in
/// clock ticks of 10 ms.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    let after_name = stat.rsplit_once(')').expect("a stat line").1;
    let fields: Vec<u64> = after_name.split_whitespace().skip(11).take(2).map(|f| f.parse().unwrap()).collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let reads: u32 = args.next().map_or(20_000, |a| a.parse().expect("READS is a number"));
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("ROUNDS is a number"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("db-reads-{}", uuid::Uuid::now_v7()));
        let db = Database::connect(dir.join("reads.db").to_str().unwrap(), &TABLES).await.unwrap();
        let mut spent = Vec::new();
        for _ in 0..rounds {
            let before = process_cpu();
            for _ in 0..reads {
                db.read(outbox::backlog).await.unwrap();
            }
            spent.push(process_cpu() - before);
        }
        spent.sort();
        let us = |d: &Duration| d.as_secs_f64() * 1e6 / f64::from(reads);
        println!(
            "{reads} reads, median of {rounds}: {:.1} CPU-µs a read (rounds: {:?})",
            us(&spent[rounds / 2]),
            spent.iter().map(|d| format!("{:.1}", us(d))).collect::<Vec<_>>()
        );
        drop(db);
        std::fs::remove_dir_all(dir).unwrap();
    });
}

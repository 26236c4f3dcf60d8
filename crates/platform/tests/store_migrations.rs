//! The platform's SQLite migrations on a real file: a store written before
//! the outbox and inbox were rebuilt for fewer pages per commit keeps every
//! pending event in its order, every published one, and every inbox entry,
//! and goes on numbering after the highest seq; and the step reverts with
//! them intact.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::path::PathBuf;

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};

const PLATFORM: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

#[derive(QueryableByName, Debug, PartialEq)]
struct Pending {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    event_id: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut SqliteConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

fn pending(conn: &mut SqliteConnection) -> Vec<Pending> {
    diesel::sql_query("SELECT seq, event_id FROM outbox WHERE published_at IS NULL ORDER BY seq").load(conn).unwrap()
}

fn stage(conn: &mut SqliteConnection, event_id: &str) {
    diesel::sql_query(
        "INSERT INTO outbox (event_id, subject, payload, headers, created_at) VALUES (?, 'game.test', x'0a01', '{}', 1)",
    )
    .bind::<Text, _>(event_id)
    .execute(conn)
    .unwrap();
}

fn apply(conn: &mut SqliteConnection, consumer: &str, event_id: &str) -> QueryResult<usize> {
    diesel::sql_query("INSERT INTO inbox (consumer, event_id, processed_at) VALUES (?, ?, 1)")
        .bind::<Text, _>(consumer)
        .bind::<Text, _>(event_id)
        .execute(conn)
}

fn pending_ids(conn: &mut SqliteConnection) -> Vec<(i64, String)> {
    pending(conn).into_iter().map(|p| (p.seq, p.event_id)).collect()
}

/// A store's directory, removed when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store as the first migration left it, with a hole in its seqs (a
/// rolled-back staging) and the newest row published.
fn store_before_the_rebuild() -> (TempDir, SqliteConnection) {
    let dir = TempDir(std::env::temp_dir().join(format!("store-migrations-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let mut conn = SqliteConnection::establish(dir.0.join("store.sqlite").to_str().unwrap()).unwrap();
    conn.batch_execute("PRAGMA journal_mode = WAL").unwrap();
    conn.run_next_migration(PLATFORM).unwrap();
    for event in ["e-1", "e-2", "e-3", "e-5"] {
        stage(&mut conn, event);
    }
    conn.batch_execute("DELETE FROM outbox WHERE event_id = 'e-3'; UPDATE outbox SET seq = 5 WHERE event_id = 'e-5'")
        .unwrap();
    conn.batch_execute("UPDATE outbox SET published_at = 2 WHERE event_id IN ('e-1', 'e-5')").unwrap();
    apply(&mut conn, "reward-missions", "e-0").unwrap();
    apply(&mut conn, "mypage-missions", "e-0").unwrap();
    (dir, conn)
}

#[test]
fn the_rebuilt_outbox_keeps_pending_events_in_order_and_numbers_after_the_highest_seq() {
    let (_dir, mut conn) = store_before_the_rebuild();

    conn.run_pending_migrations(PLATFORM).unwrap();

    assert_eq!(pending_ids(&mut conn), [(2, "e-2".to_owned())]);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM outbox WHERE published_at IS NOT NULL"), 2);
    stage(&mut conn, "e-6");
    assert_eq!(pending_ids(&mut conn), [(2, "e-2".to_owned()), (6, "e-6".to_owned())]);
    // No counter is rewritten by a commit that stages an event.
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM sqlite_sequence WHERE name = 'outbox'"), 0);
}

#[test]
fn the_clustered_inbox_keeps_every_entry_and_still_refuses_one_applied_twice() {
    let (_dir, mut conn) = store_before_the_rebuild();

    conn.run_pending_migrations(PLATFORM).unwrap();

    assert!(apply(&mut conn, "reward-missions", "e-0").is_err(), "an event applied before the rebuild is known");
    apply(&mut conn, "wallet-rewards", "e-0").unwrap();
    apply(&mut conn, "reward-missions", "e-1").unwrap();
    assert!(apply(&mut conn, "reward-missions", "e-1").is_err());
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM inbox"), 4);
}

#[test]
fn reverting_the_rebuild_keeps_the_events_and_the_inbox() {
    let (_dir, mut conn) = store_before_the_rebuild();
    conn.run_pending_migrations(PLATFORM).unwrap();
    stage(&mut conn, "e-6");

    conn.revert_last_migration(PLATFORM).unwrap();

    assert_eq!(pending_ids(&mut conn), [(2, "e-2".to_owned()), (6, "e-6".to_owned())]);
    stage(&mut conn, "e-7");
    assert_eq!(pending(&mut conn).last().unwrap().seq, 7);
    assert!(apply(&mut conn, "mypage-missions", "e-0").is_err());
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM inbox"), 2);
}

//! What one diesel statement costs on SQLite through [`DbConnection`]
//! (diesel's `MultiConnection`, which every store uses) against diesel's
//! own `SqliteConnection`, with and without a savepoint around each write
//! as the group commit takes one. Each row is an insert and a select by key
//! of a five-column row, in transactions of ten, WAL with
//! `synchronous = NORMAL` as the stores set it. Prints µs per row.
//!
//! `cargo run --release -p platform --example statement_cost [ROWS] [ROUNDS]`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement that cannot proceed should stop

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use platform::db::DbConnection;

diesel::table! {
    rows (id) {
        id -> Text,
        kind -> Text,
        seq -> BigInt,
        player -> Text,
        points -> BigInt,
    }
}

/// Rows per transaction.
const GROUP: u64 = 10;

/// A fresh store at `path`, set up as the stores' connections are.
fn fresh(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut conn = SqliteConnection::establish(&path.display().to_string()).unwrap();
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; CREATE TABLE rows (id TEXT PRIMARY KEY, kind TEXT NOT NULL, \
         seq BIGINT NOT NULL, player TEXT NOT NULL, points BIGINT NOT NULL);",
    )
    .unwrap();
}

/// Writes `$count` rows on `$conn` and gives µs per row: a macro, as the
/// two connections share diesel's DSL but no trait that names it briefly.
macro_rules! write_rows {
    ($conn:expr, $count:expr, $savepoints:expr) => {{
        let (conn, count, savepoints) = ($conn, $count, $savepoints);
        conn.batch_execute("PRAGMA synchronous = NORMAL").unwrap();
        let started = Instant::now();
        for group in 0..count / GROUP {
            conn.batch_execute("BEGIN IMMEDIATE").unwrap();
            for n in group * GROUP..(group + 1) * GROUP {
                if savepoints {
                    conn.batch_execute("SAVEPOINT write").unwrap();
                }
                let id = format!("entry-{n:010}");
                let seq = i64::try_from(n).unwrap();
                diesel::insert_into(rows::table)
                    .values((
                        rows::id.eq(&id),
                        rows::kind.eq("mission-achieved"),
                        rows::seq.eq(seq),
                        rows::player.eq("player-42"),
                        rows::points.eq(7_i64),
                    ))
                    .execute(conn)
                    .unwrap();
                let read: i64 = rows::table.filter(rows::id.eq(&id)).select(rows::seq).first(conn).unwrap();
                assert_eq!(read, seq);
                if savepoints {
                    conn.batch_execute("RELEASE write").unwrap();
                }
            }
            conn.batch_execute("COMMIT").unwrap();
        }
        #[allow(clippy::cast_precision_loss)] // row counts fit an f64 exactly
        let per_row = started.elapsed().as_secs_f64() * 1e6 / (count / GROUP * GROUP) as f64;
        per_row
    }};
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().map_or(60_000, |a| a.parse().expect("ROWS is a number"));
    let rounds: u32 = args.next().map_or(3, |a| a.parse().expect("ROUNDS is a number"));
    let dir = std::env::temp_dir().join(format!("statement-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for round in 0..rounds {
        for savepoints in [false, true] {
            let around = if savepoints { ", each at a savepoint" } else { "" };
            let path = dir.join(format!("plain-{round}-{savepoints}.db"));
            fresh(&path);
            let mut plain = SqliteConnection::establish(&path.display().to_string()).unwrap();
            let plain_us = write_rows!(&mut plain, count, savepoints);
            let path = dir.join(format!("multi-{round}-{savepoints}.db"));
            fresh(&path);
            let mut multi = DbConnection::establish(&path.display().to_string()).unwrap();
            let multi_us = write_rows!(&mut multi, count, savepoints);
            println!(
                "round {round}: SqliteConnection {plain_us:.2} µs, DbConnection {multi_us:.2} µs per row \
                 (insert and select by key{around})"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

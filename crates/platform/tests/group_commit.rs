//! SQLite's writes of a process share transactions (group commit): each
//! write is still all-or-nothing, answered only once it is stored, and one
//! that fails or panics takes nothing of the others with it.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::db::{Database, DbError};

static LEDGER: EmbeddedMigrations = embed_migrations!("tests/ledger_migrations");

diesel::table! {
    ledger (id) {
        id -> BigInt,
        note -> Text,
    }
}

#[derive(Debug, thiserror::Error)]
enum LedgerError {
    #[error("refused {0}")]
    Refused(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

async fn ledger_database() -> (Database, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("group-commit-{}", uuid::Uuid::new_v4()));
    let db = Database::connect(dir.join("ledger.db").to_str().unwrap(), &LEDGER).await.unwrap();
    (db, dir)
}

fn insert(conn: &mut platform::db::DbConnection, id: i64) -> Result<(), DbError> {
    diesel::insert_into(ledger::table).values((ledger::id.eq(id), ledger::note.eq("kept"))).execute(conn)?;
    Ok(())
}

fn stored(conn: &mut platform::db::DbConnection) -> Result<Vec<i64>, DbError> {
    Ok(ledger::table.select(ledger::id).order(ledger::id.asc()).load(conn)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_each_stored_whole_and_a_refused_one_leaves_nothing() {
    let (db, dir) = ledger_database().await;
    let writes = (0..400_i64).map(|id| {
        let db = db.clone();
        tokio::spawn(async move {
            let written = db
                .write(move |conn| {
                    insert(conn, id)?;
                    // Half of it is written before it refuses: that half must go too.
                    insert(conn, id + 1_000)?;
                    if id % 7 == 0 { Err(LedgerError::Refused(id)) } else { Ok(id) }
                })
                .await;
            // Answered means stored: a reader on another connection sees it now.
            let seen = db.read(stored).await.unwrap();
            match written {
                Ok(id) => assert!(seen.contains(&id) && seen.contains(&(id + 1_000)), "{id} answered but not stored"),
                Err(LedgerError::Refused(id)) => {
                    assert!(!seen.contains(&id) && !seen.contains(&(id + 1_000)), "refused {id} left rows")
                }
                Err(other) => panic!("write {id} failed: {other}"),
            }
        })
    });
    for write in writes.collect::<Vec<_>>() {
        write.await.unwrap();
    }
    let seen = db.read(stored).await.unwrap();
    let expected: Vec<i64> = (0..400).filter(|id| id % 7 != 0).flat_map(|id| [id, id + 1_000]).collect();
    let mut expected = expected;
    expected.sort_unstable();
    assert_eq!(seen, expected);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_panics_is_undone_and_answered_while_the_others_commit() {
    let (db, dir) = ledger_database().await;
    let writes: Vec<_> = (0..50_i64)
        .map(|id| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |conn| -> Result<i64, DbError> {
                    insert(conn, id)?;
                    assert!(id != 25, "a bug in write {id}");
                    Ok(id)
                })
                .await
            })
        })
        .collect();
    for (id, write) in (0_i64..).zip(writes) {
        match write.await.unwrap() {
            Ok(written) => assert_eq!(written, id),
            Err(DbError::Panicked) => assert_eq!(id, 25),
            Err(other) => panic!("write {id} failed: {other}"),
        }
    }
    let seen = db.read(stored).await.unwrap();
    assert_eq!(seen, (0..50).filter(|id| *id != 25).collect::<Vec<_>>());
    // The writer carries on after it.
    db.write(|conn| insert(conn, 99)).await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_breaks_a_unique_key_is_refused_and_the_first_one_stays() {
    let (db, dir) = ledger_database().await;
    let writes: Vec<_> = (0..20)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.write(|conn| insert(conn, 7)).await })
        })
        .collect();
    let mut stored_once = 0;
    for write in writes {
        match write.await.unwrap() {
            Ok(()) => stored_once += 1,
            Err(DbError::Query(error)) => assert!(platform::db::is_unique_violation(&error), "{error}"),
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(stored_once, 1);
    assert_eq!(db.read(stored).await.unwrap(), vec![7]);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_riding_on_the_next_commit_waits_for_one_and_is_stored_with_it() {
    let (db, dir) = ledger_database().await;
    let mut riding = db.write_with_next(|conn| insert(conn, 1));
    let refused = db.write_with_next(|conn| {
        insert(conn, 2)?;
        Err::<(), _>(LedgerError::Refused(2))
    });
    // Nothing carries it yet: it is neither answered nor stored.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(matches!(riding.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Empty)));
    assert_eq!(db.read(stored).await.unwrap(), Vec::<i64>::new());
    // The next ordinary write carries it, and the rider that refused leaves nothing.
    db.write(|conn| insert(conn, 3)).await.unwrap();
    riding.await.unwrap().unwrap();
    assert!(matches!(refused.await.unwrap(), Err(LedgerError::Refused(2))));
    assert_eq!(db.read(stored).await.unwrap(), vec![1, 3]);
    // Alone, it is committed by a flush.
    let alone = db.write_with_next(|conn| insert(conn, 4));
    db.flush().await.unwrap();
    alone.await.unwrap().unwrap();
    assert_eq!(db.read(stored).await.unwrap(), vec![1, 3, 4]);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_commit_runs_on_each_commit_until_it_finds_something_and_is_refused_after_a_missed_commit() {
    let (db, dir) = ledger_database().await;
    let seen = db.commits().unwrap();
    let found = db
        .after_commit(seen, |conn, commit| {
            let ids = stored(conn).unwrap();
            ids.contains(&2).then_some((ids, commit))
        })
        .unwrap();
    db.write(|conn| insert(conn, 1)).await.unwrap();
    db.write(|conn| insert(conn, 2)).await.unwrap();
    // It ran after the first commit and found nothing, then after the second.
    assert_eq!(found.await.unwrap(), (vec![1, 2], seen + 2));
    // A commit since the reader last looked: it must look by itself.
    assert_eq!(db.after_commit(seen, |_, _| Some(())).unwrap_err(), Some(seen + 2));
    std::fs::remove_dir_all(dir).ok();
}

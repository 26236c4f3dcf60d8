//! The local infrastructure the tests and the runner start behaves as the
//! real thing does when its parts die: a JetStream cluster elects a new
//! meta leader and takes a killed node back; a private PostgreSQL instance
//! refuses connections while killed and keeps its data across a restart.

use std::time::Duration;

use diesel::{Connection as _, RunQueryDsl as _};
use testkit::{NatsCluster, PostgresServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_elects_a_new_meta_leader_and_takes_a_killed_node_back() {
    let mut cluster = NatsCluster::start(3).await.unwrap();
    assert_eq!(cluster.urls().split(',').count(), 3);
    let leader = cluster.meta_leader().await.unwrap();
    cluster.kill(leader);
    let next = testkit::eventually("a new meta leader", Duration::from_secs(60), || {
        let cluster = &cluster;
        async move { cluster.meta_leader().await.ok().filter(|next| *next != leader) }
    })
    .await;
    assert!(cluster.is_running(next) && !cluster.is_running(leader));
    cluster.restart(leader).unwrap();
    cluster.wait_healthy(Duration::from_secs(30)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_postgres_keeps_committed_rows_across_a_kill() {
    let Some(mut server) = PostgresServer::start().await.unwrap() else { return };
    server.create_database("infra").await.unwrap();
    let url = server.url("infra");
    let write = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = diesel::PgConnection::establish(&write).unwrap();
        diesel::sql_query("CREATE TABLE kept (id INTEGER PRIMARY KEY)").execute(&mut conn).unwrap();
        diesel::sql_query("INSERT INTO kept VALUES (1), (2)").execute(&mut conn).unwrap();
    })
    .await
    .unwrap();

    server.kill();
    let refused = url.clone();
    let while_down =
        tokio::task::spawn_blocking(move || diesel::PgConnection::establish(&format!("{refused}?connect_timeout=2")))
            .await
            .unwrap();
    assert!(while_down.is_err(), "a killed server accepts no connection");

    server.restart().await.unwrap();
    let rows = tokio::task::spawn_blocking(move || {
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        diesel::sql_query("DELETE FROM kept").execute(&mut conn).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(rows, 2, "both committed rows survived the crash");
}

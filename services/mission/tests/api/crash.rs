//! The mission binary killed with SIGKILL at the outbox relay's crash points,
//! then restarted on the same store and broker: MissionAchieved reaches the
//! stream exactly once either way.

use std::time::Duration;

use api::game::mission::v1::{self as pb, mission_service_client::MissionServiceClient};
use diesel::{Connection as _, RunQueryDsl as _, SqliteConnection};
use platform::events::MISSION_STREAM;
use platform::failpoint::{RELAY_BEFORE_MARK_PUBLISHED, RELAY_BEFORE_PUBLISH};
use testkit::{Broker, ServiceCommand, ServiceProcess, TempStore};

use crate::helpers::eventually;
use testkit::AsCaller;

/// How long a process may take to start, or to reach a failpoint.
const WITHIN: Duration = Duration::from_secs(15);

fn mission_process(broker: &Broker, database_url: &str) -> ServiceCommand {
    ServiceCommand::new(env!("CARGO_BIN_EXE_mission"), mission::SPEC.grpc_service, database_url, &broker.url())
}

/// Starts the command, waits until it serves, and returns it with a client.
async fn serving(command: ServiceCommand) -> (ServiceProcess, MissionServiceClient<tonic::transport::Channel>) {
    let mut process = command.spawn().unwrap();
    process.wait_healthy(WITHIN).await.unwrap();
    let client = MissionServiceClient::connect(process.grpc_url()).await.unwrap();
    (process, client)
}

async fn achieve(client: &mut MissionServiceClient<tonic::transport::Channel>, customer: &str) -> pb::Mission {
    let request = pb::AchieveMissionRequest {
        customer_id: customer.into(),
        mission_code: "FIRST_WIN".into(),
        achievement_id: None,
    };
    client.achieve_mission(request.by_player(customer)).await.unwrap().into_inner().mission.unwrap()
}

/// How many messages the MISSION stream holds (0 before it exists).
async fn messages_on_mission_stream(broker: &Broker) -> u64 {
    match broker.js.get_stream(MISSION_STREAM.name).await {
        Ok(mut stream) => stream.info().await.unwrap().state.messages,
        Err(_) => 0,
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Outbox rows of the SQLite file at `database_url` not yet marked published.
fn unpublished_outbox_rows(database_url: &str) -> i64 {
    let mut conn = SqliteConnection::establish(database_url).unwrap();
    diesel::sql_query("PRAGMA busy_timeout = 5000").execute(&mut conn).unwrap();
    let count: Count =
        diesel::sql_query("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL").get_result(&mut conn).unwrap();
    count.n
}

/// Checks that the stream holds exactly one message, MissionAchieved of `mission`.
async fn exactly_one_mission_achieved(broker: &Broker, mission: &pb::Mission) {
    let seen = broker.published(MISSION_STREAM, 1).await;
    assert_eq!(seen.len(), 1, "exactly one MissionAchieved on the stream");
    let expected_id = kernel::derived_uuid(mission.mission_id.parse().unwrap(), b"MissionAchieved").to_string();
    let headers = seen[0].headers.as_ref().unwrap();
    assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), expected_id);
    assert_eq!(headers.get("Event-Id").unwrap().as_str(), expected_id);
    let event: pb::MissionAchieved = prost::Message::decode(seen[0].payload.as_ref()).unwrap();
    assert_eq!(
        (event.event_id.as_str(), event.mission_id.as_str()),
        (expected_id.as_str(), mission.mission_id.as_str())
    );
}

/// Waits until the restarted process published (and marked) what it found in the outbox.
async fn outbox_drained(process: &ServiceProcess, database_url: &str) {
    eventually("the restarted relay to publish the outbox", || async {
        let published = process.metric("rewards_outbox_published_total").await?;
        (published >= 1.0 && unpublished_outbox_rows(database_url) == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_process_killed_between_the_commit_and_the_publish_publishes_mission_achieved_once_after_restart() {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let database_url = store.sqlite_url("mission");

    let (mut crashed, mut client) =
        serving(mission_process(&broker, &database_url).failpoint(RELAY_BEFORE_PUBLISH)).await;
    let mission = achieve(&mut client, "player-crash-1").await;
    assert_eq!(mission.status(), pb::MissionStatus::Achieved, "the call succeeded: the event is in the outbox");
    crashed.wait_failpoint(WITHIN).await.unwrap();
    assert_eq!(messages_on_mission_stream(&broker).await, 0, "nothing was published before the crash");
    assert_eq!(unpublished_outbox_rows(&database_url), 1);
    crashed.kill();

    let (restarted, _client) = serving(mission_process(&broker, &database_url)).await;
    outbox_drained(&restarted, &database_url).await;
    exactly_one_mission_achieved(&broker, &mission).await;
}

#[tokio::test]
async fn a_process_killed_after_the_pub_ack_but_before_marking_the_row_leaves_one_mission_achieved_on_the_stream() {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let database_url = store.sqlite_url("mission");

    let (mut crashed, mut client) =
        serving(mission_process(&broker, &database_url).failpoint(RELAY_BEFORE_MARK_PUBLISHED)).await;
    let mission = achieve(&mut client, "player-crash-2").await;
    crashed.wait_failpoint(WITHIN).await.unwrap();
    assert_eq!(messages_on_mission_stream(&broker).await, 1, "JetStream acknowledged the event before the crash");
    assert_eq!(unpublished_outbox_rows(&database_url), 1, "but its row was never marked published");
    crashed.kill();

    // The restarted relay publishes the row again; its debug log shows that
    // JetStream recognised the Nats-Msg-Id and kept no second copy.
    let restart =
        mission_process(&broker, &database_url).env("RUST_LOG", "info,async_nats=warn,platform::outbox=debug");
    let (restarted, _client) = serving(restart).await;
    outbox_drained(&restarted, &database_url).await;
    assert!(
        restarted.log().contains("JetStream already had this event"),
        "the restarted relay re-published the row and JetStream reported a duplicate; log:\n{}",
        restarted.log()
    );
    assert_eq!(messages_on_mission_stream(&broker).await, 1);
    exactly_one_mission_achieved(&broker, &mission).await;
}

//! Orders the vendor cancels after the fact, through the vendor simulation:
//! the plan is kept with the order, the job carries it out once, on real
//! SQLite and PostgreSQL, also with two replicas racing for each order.

use std::time::Duration;

use api::game::gift::admin::v1::{self as admin, vendor_simulation_service_client::VendorSimulationServiceClient};
use api::game::gift::v1 as pb;
use gift::adapters::clock::SystemClock;
use gift::adapters::store::DieselGiftStore;
use gift::app::Gifts;
use gift::domain::{CancellationPlan, Exchange, GiftOrderStatus, IdempotencyKey, MissionId, ProductSku, RewardId};
use gift::ports::GiftStore as _;
use kernel::{CustomerId, Points};
use platform::db::Database;
use platform::outbox::OutboxSignal;
use testkit::{AsCaller, PostgresSchema, TempStore, eventually};

use crate::helpers::{exchange_request, spawn_with_vendor_simulation};

/// How many planned cancellations two replicas race for.
const ORDERS: usize = 30;

#[tokio::test]
async fn a_share_of_orders_is_cancelled_after_the_delay_with_its_unit_back_and_the_event_published() {
    let app = spawn_with_vendor_simulation().await;
    let mut vendor = VendorSimulationServiceClient::connect(app.service.url()).await.unwrap();
    let cancelling = admin::VendorBehaviour { cancel_percent: 100, cancel_after_ms: 200, ..Default::default() };
    vendor
        .set_vendor_behaviour(admin::SetVendorBehaviourRequest { behaviour: Some(cancelling) }.by_operator())
        .await
        .unwrap();
    let before = app.stock_of("PLUSH-MASCOT").await;

    let order = app.exchange(exchange_request("entry-1:1", "PLUSH-MASCOT", 800)).await;
    assert_eq!(order.status(), pb::GiftOrderStatus::Placed, "placed first");

    let mut client = app.client.clone();
    let cancelled = eventually("the vendor to cancel the order", Duration::from_secs(10), || {
        let (mut client, order_id) = (client.clone(), order.order_id.clone());
        async move {
            let order = client.get_order(pb::GetOrderRequest { order_id }.by_player("player-1")).await.ok()?;
            let order = order.into_inner().order?;
            (order.status() == pb::GiftOrderStatus::Cancelled).then_some(order)
        }
    })
    .await;
    assert_eq!(cancelled.cancel_reason, gift::adapters::vendor::CANCEL_REASON);
    assert!(cancelled.cancelled_at.is_some());
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, before, "the unit is back");
    let published = app.published(2).await;
    assert_eq!(published[1].subject.as_str(), "gift.order_cancelled");
    let event: pb::GiftOrderCancelled = prost::Message::decode(published[1].payload.as_ref()).unwrap();
    assert_eq!((event.order_id.as_str(), event.idempotency_key.as_str()), (order.order_id.as_str(), "entry-1:1"));
    assert_eq!((event.points, event.vendor_cost, event.currency.as_str()), (800, 1250, "EUR"));
    assert_eq!(event.reason, gift::adapters::vendor::CANCEL_REASON);
    let again = client.get_order(pb::GetOrderRequest { order_id: order.order_id }.by_operator()).await.unwrap();
    assert_eq!(again.into_inner().order.unwrap(), cancelled);
}

/// One replica's use cases on the store at `url`.
async fn replica(url: &str) -> Gifts<DieselGiftStore> {
    let db = Database::connect(url, gift::SPEC.migrations).await.unwrap();
    Gifts::new(DieselGiftStore::new(db, OutboxSignal::default()), SystemClock)
}

/// Places [`ORDERS`] sticker packs the vendor cancels at once, then lets
/// two replicas carry out the plans at the same time until none is left;
/// `count` reads the store directly.
async fn two_replicas_cancel_each_order_once(url: &str, count: impl Fn(&str) -> i64) {
    let first = replica(url).await;
    let second = replica(url).await;
    let sku = ProductSku::parse("STICKER-PACK").unwrap();
    let stock_before = stock(&first, &sku).await;
    let mut placed = Vec::new();
    for i in 0..ORDERS {
        let exchange = Exchange {
            key: IdempotencyKey::parse(&format!("race-{i}")).unwrap(),
            customer_id: CustomerId::parse("player-race").unwrap(),
            reward_id: RewardId::generate(),
            mission_id: MissionId::generate(),
            sku: sku.clone(),
            points: Points::new(100).unwrap(),
        };
        let plan = CancellationPlan { after_ms: 0, reason: "no supply".into() };
        placed.push(first.exchange_as_vendor_plans(exchange, Some(plan)).await.unwrap());
    }
    assert_eq!(stock(&first, &sku).await, stock_before - u32::try_from(ORDERS).unwrap());

    let mut cancelled = 0;
    loop {
        let (one, two) = tokio::join!(first.cancel_due(), second.cancel_due());
        let round = one.unwrap() + two.unwrap();
        if round == 0 {
            break;
        }
        cancelled += round;
    }

    assert_eq!(cancelled, ORDERS, "each order cancelled by one replica");
    for order in placed {
        let order = second.order(order.id).await.unwrap();
        assert_eq!((order.status, order.version), (GiftOrderStatus::Cancelled, 2), "cancelled once");
    }
    assert_eq!(stock(&second, &sku).await, stock_before, "each unit back once");
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM outbox WHERE subject = 'gift.order_cancelled'"),
        i64::try_from(ORDERS).unwrap()
    );
    assert_eq!(count("SELECT COUNT(*) AS n FROM vendor_cancellations"), 0, "every plan done");
}

async fn stock(gifts: &Gifts<DieselGiftStore>, sku: &ProductSku) -> u32 {
    gifts.catalogue().await.unwrap().into_iter().find(|p| p.sku == *sku).unwrap().stock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_two_replicas_cancel_each_planned_order_once() {
    let dir = TempStore::new();
    let url = dir.sqlite_url("gift");
    let count = |query: &str| sqlite_count(&url, query);
    two_replicas_cancel_each_order_once(&url, count).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_cancel_each_planned_order_once() {
    let Some(schema) = PostgresSchema::create("gift_cancel") else { return };
    two_replicas_cancel_each_order_once(schema.url(), |query| schema.count(query).unwrap()).await;
}

fn sqlite_count(url: &str, query: &str) -> i64 {
    use diesel::{Connection as _, RunQueryDsl as _};
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = diesel::SqliteConnection::establish(url).unwrap();
    diesel::sql_query(query).get_result::<Count>(&mut conn).unwrap().n
}

#[tokio::test]
async fn due_cancellations_are_read_from_the_store_not_from_memory() {
    // A plan made by one process is carried out by another: the store holds it.
    let dir = TempStore::new();
    let url = dir.sqlite_url("gift");
    let placing = replica(&url).await;
    let exchange = Exchange {
        key: IdempotencyKey::parse("restart-1").unwrap(),
        customer_id: CustomerId::parse("player-1").unwrap(),
        reward_id: RewardId::generate(),
        mission_id: MissionId::generate(),
        sku: ProductSku::parse("AVATAR-FRAME").unwrap(),
        points: Points::new(300).unwrap(),
    };
    let order = placing
        .exchange_as_vendor_plans(exchange, Some(CancellationPlan { after_ms: 0, reason: "gone".into() }))
        .await
        .unwrap();
    drop(placing);

    let restarted = replica(&url).await;
    assert_eq!(restarted.cancel_due().await.unwrap(), 1);
    assert_eq!(restarted.order(order.id).await.unwrap().status, GiftOrderStatus::Cancelled);
    let store =
        DieselGiftStore::new(Database::connect(&url, gift::SPEC.migrations).await.unwrap(), OutboxSignal::default());
    assert!(store.due_cancellations(i64::MAX, 10).await.unwrap().is_empty());
}

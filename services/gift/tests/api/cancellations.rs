//! Orders the vendor cancels after the fact, through the vendor simulation:
//! the plan is kept with the order, the job carries it out once, on real
//! SQLite and PostgreSQL, also with two replicas racing for each order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use api::game::gift::admin::v1::{self as admin, vendor_simulation_service_client::VendorSimulationServiceClient};
use api::game::gift::v1 as pb;
use gift::adapters::clock::SystemClock;
use gift::adapters::store::DieselGiftStore;
use gift::app::Gifts;
use gift::domain::catalogue::{ProgrammeEvent, Restock};
use gift::domain::{
    CancellationPlan, Exchange, GiftEvent, GiftOrder, GiftOrderId, GiftOrderStatus, IdempotencyKey, MissionId, Payer,
    PlannedCancellation, Product, ProductSku, RewardId,
};
use gift::ports::{GiftStore, GiftTx};
use kernel::programme::ProgrammeEventId;
use kernel::{CustomerId, Points, StoreError};
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
            payer: Payer::Reward(RewardId::generate()),
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
        payer: Payer::Reward(RewardId::generate()),
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

/// One replica's store on PostgreSQL whose first transaction that carries
/// out a planned cancellation waits, once its reads are done, until the
/// other replica's has read too: both decide on the same state, as two
/// replicas' jobs racing for one order do. (On SQLite the write lock taken
/// up front puts them in a row, so they cannot meet.)
struct Racing {
    store: DieselGiftStore,
    meet: Arc<Barrier>,
    met: Arc<AtomicBool>,
}

impl GiftStore for Racing {
    async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn GiftTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (meet, met) = (Arc::clone(&self.meet), Arc::clone(&self.met));
        self.store.write(move |tx| work(&mut Meeting { tx, meet, met })).await
    }

    async fn products(&self) -> Result<Vec<Product>, StoreError> {
        self.store.products().await
    }

    async fn programme_events(&self) -> Result<Vec<ProgrammeEvent>, StoreError> {
        self.store.programme_events().await
    }

    async fn order(&self, id: GiftOrderId) -> Result<Option<GiftOrder>, StoreError> {
        self.store.order(id).await
    }

    async fn due_cancellations(&self, now: i64, limit: usize) -> Result<Vec<PlannedCancellation>, StoreError> {
        self.store.due_cancellations(now, limit).await
    }
}

/// A transaction of [`Racing`]: the real one, meeting the rival's before
/// its first write.
struct Meeting<'t> {
    tx: &'t mut dyn GiftTx,
    meet: Arc<Barrier>,
    met: Arc<AtomicBool>,
}

impl GiftTx for Meeting<'_> {
    fn product(&mut self, sku: &ProductSku) -> Result<Option<Product>, StoreError> {
        self.tx.product(sku)
    }

    fn programme_event(&mut self, id: &ProgrammeEventId) -> Result<Option<ProgrammeEvent>, StoreError> {
        self.tx.programme_event(id)
    }

    fn order(&mut self, id: GiftOrderId) -> Result<Option<GiftOrder>, StoreError> {
        self.tx.order(id)
    }

    fn order_by_key(&mut self, key: &IdempotencyKey) -> Result<Option<GiftOrder>, StoreError> {
        self.tx.order_by_key(key)
    }

    fn order_by_payer(&mut self, payer: Payer) -> Result<Option<GiftOrder>, StoreError> {
        self.tx.order_by_payer(payer)
    }

    fn planned_cancellation(&mut self, order: GiftOrderId) -> Result<Option<PlannedCancellation>, StoreError> {
        self.tx.planned_cancellation(order)
    }

    fn update_stock(&mut self, product: &Product) -> Result<(), StoreError> {
        self.tx.update_stock(product)
    }

    fn insert_product(&mut self, product: &Product) -> Result<(), StoreError> {
        self.tx.insert_product(product)
    }

    fn restock(&mut self, key: &IdempotencyKey) -> Result<Option<Restock>, StoreError> {
        self.tx.restock(key)
    }

    fn insert_restock(&mut self, restock: &Restock) -> Result<(), StoreError> {
        self.tx.insert_restock(restock)
    }

    fn save_programme_event(&mut self, event: &ProgrammeEvent) -> Result<(), StoreError> {
        self.tx.save_programme_event(event)
    }

    fn insert_order(&mut self, order: &GiftOrder) -> Result<(), StoreError> {
        self.tx.insert_order(order)
    }

    fn update_order(&mut self, order: &GiftOrder) -> Result<(), StoreError> {
        self.tx.update_order(order)
    }

    fn plan_cancellation(&mut self, planned: &PlannedCancellation) -> Result<(), StoreError> {
        self.tx.plan_cancellation(planned)
    }

    fn remove_planned_cancellation(&mut self, order: GiftOrderId) -> Result<(), StoreError> {
        if !self.met.swap(true, Ordering::SeqCst) {
            self.meet.wait();
        }
        self.tx.remove_planned_cancellation(order)
    }

    fn stage(&mut self, event: &GiftEvent) -> Result<(), StoreError> {
        self.tx.stage(event)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_that_read_one_planned_order_at_once_cancel_it_once() {
    let Some(schema) = PostgresSchema::create("gift_race") else { return };
    let placing = replica(schema.url()).await;
    let exchange = Exchange {
        key: IdempotencyKey::parse("raced-1").unwrap(),
        customer_id: CustomerId::parse("player-race").unwrap(),
        payer: Payer::Reward(RewardId::generate()),
        mission_id: MissionId::generate(),
        sku: ProductSku::parse("PLUSH-MASCOT").unwrap(),
        points: Points::new(800).unwrap(),
    };
    let plan = CancellationPlan { after_ms: 0, reason: "no supply".into() };
    let order = placing.exchange_as_vendor_plans(exchange, Some(plan)).await.unwrap();
    let planned = placing.catalogue().await.unwrap();
    let stock_after_order = planned.iter().find(|p| p.sku.as_str() == "PLUSH-MASCOT").unwrap().stock;
    let meet = Arc::new(Barrier::new(2));
    let racing = || async {
        let db = Database::connect(schema.url(), gift::SPEC.migrations).await.unwrap();
        let store = DieselGiftStore::new(db, OutboxSignal::default());
        Gifts::new(Racing { store, meet: Arc::clone(&meet), met: Arc::default() }, SystemClock)
    };
    let (first, second) = (racing().await, racing().await);
    let due = first.cancel_due();
    let also_due = second.cancel_due();

    let (one, two) = tokio::join!(due, also_due);

    assert_eq!(one.unwrap() + two.unwrap(), 1, "one replica cancelled it, the other found it done");
    let cancelled = placing.order(order.id).await.unwrap();
    assert_eq!((cancelled.status, cancelled.version), (GiftOrderStatus::Cancelled, 2));
    let stock = placing.catalogue().await.unwrap().into_iter().find(|p| p.sku.as_str() == "PLUSH-MASCOT").unwrap();
    assert_eq!(stock.stock, stock_after_order + 1, "the unit back once");
    let staged = schema.count("SELECT COUNT(*) AS n FROM outbox WHERE subject = 'gift.order_cancelled'").unwrap();
    assert_eq!(staged, 1, "GiftOrderCancelled once");
}

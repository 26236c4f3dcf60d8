//! Points that add up, against a real gift service, a real nats-server and
//! real stores (SQLite, and PostgreSQL where the race matters): exchanges
//! paid from several rewards, all or nothing; a repeated request answered
//! with its first exchange; prices learnt from gift's catalogue; orders the
//! vendor cancels refunded once — under redelivery, and with two replicas
//! sharing the consumer; the migration turning earlier exchanges into
//! exchanges refunded the same way. Every check ends with the player's
//! points adding up.

use std::time::Duration;

use api::game::gift::admin::v1::{self as admin, vendor_simulation_service_client::VendorSimulationServiceClient};
use api::game::gift::v1::GiftOrderCancelled;
use api::game::wallet::v1::{self as pb, ExchangeStatus};
use platform::events::{GIFT_STREAM, WALLET_STREAM};
use testkit::{AsCaller, Broker, PostgresSchema, Running, ServiceCommand, TempStore, service_config};
use tonic::Code;

use crate::helpers::{TestApp, eventually};

/// The wallet and a real gift (its vendor simulation served) on one broker;
/// the wallet's store is `wallet_url`, or a fresh SQLite file.
struct Mesh {
    wallet: TestApp,
    gift: Running,
    _gift_store: TempStore,
}

impl std::ops::Deref for Mesh {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.wallet
    }
}

async fn mesh(wallet_url: Option<&str>) -> Mesh {
    let broker = Broker::start().await;
    let gift_store = TempStore::new();
    let mut gift_config = gift::GiftConfig::from(service_config(&broker, gift_store.sqlite_url("gift")));
    gift_config.vendor_simulation = true;
    gift_config.vendor_cancellation_interval = Duration::from_millis(50);
    let gift = Running::serve(gift::build(gift_config).await.unwrap());
    let gift_url = gift.url();
    let wallet = crate::helpers::spawn_app_on(broker, wallet_url, |config| {
        config.gift_url = gift_url;
        config.redrive.interval = Duration::from_millis(200);
        config.redrive.after = Duration::from_millis(500);
    })
    .await;
    Mesh { wallet, gift, _gift_store: gift_store }
}

impl Mesh {
    /// The vendor cancels `percent` of the orders it places, at once.
    async fn vendor_cancels(&self, percent: u32) {
        let mut vendor = VendorSimulationServiceClient::connect(self.gift.url()).await.unwrap();
        let behaviour = admin::VendorBehaviour { cancel_percent: percent, cancel_after_ms: 0, ..Default::default() };
        vendor
            .set_vendor_behaviour(admin::SetVendorBehaviourRequest { behaviour: Some(behaviour) }.by_operator())
            .await
            .unwrap();
    }

    async fn exchange(&self, customer: &str, sku: &str, key: &str) -> Result<pb::Exchange, tonic::Status> {
        let request =
            pb::ExchangeRequest { customer_id: customer.into(), product_sku: sku.into(), idempotency_key: key.into() };
        let answer = self.client.clone().exchange(request.by_player(customer)).await?;
        Ok(answer.into_inner().exchange.unwrap())
    }

    /// A player holding rewards of `points` each, all in the wallet.
    async fn player_with(&self, customer: &str, points: &[i64]) {
        for worth in points {
            let allocated = self.allocate(customer, *worth).await;
            self.entry_for(customer, &allocated.reward_id).await;
        }
    }
}

impl TestApp {
    /// The player's wallet, its points checked to add up.
    pub async fn whole_wallet(&self, customer: &str) -> pb::Wallet {
        let request = pb::GetWalletRequest { customer_id: customer.into() };
        let wallet = self.client.clone().get_wallet(request.by_player(customer)).await.unwrap().into_inner().wallet;
        let wallet = wallet.unwrap();
        assert_eq!(
            wallet.earned,
            wallet.balance + wallet.reserved + wallet.spent + wallet.expired,
            "every point earned is in exactly one place: {wallet:?}"
        );
        for entry in &wallet.entries {
            assert!(entry.remaining_points + entry.expired_points <= entry.points, "{entry:?}");
        }
        wallet
    }
}

async fn an_exchange_is_paid_from_two_rewards_and_refunded_once_when_the_vendor_cancels(wallet_url: Option<&str>) {
    let mesh = mesh(wallet_url).await;
    mesh.player_with("player-1", &[100, 250]).await;

    // Not enough: nothing reserved, the balance and price named.
    let refused = mesh.exchange("player-1", "GAME-SOUNDTRACK", "k-0").await.unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::FailedPrecondition, "player-1 has 350 points; GAME-SOUNDTRACK costs 500")
    );
    let unknown = mesh.exchange("player-1", "NO-SUCH-THING", "k-0").await.unwrap_err();
    assert_eq!((unknown.code(), unknown.message()), (Code::NotFound, "product NO-SUCH-THING does not exist"));

    let exchange = mesh.exchange("player-1", "AVATAR-FRAME", "k-1").await.unwrap();

    assert_eq!(exchange.status(), ExchangeStatus::Placed);
    assert_eq!(exchange.price_points, 300);
    let paid: Vec<i64> = exchange.reservations.iter().map(|r| r.points).collect();
    assert_eq!(paid, [100, 200], "the older reward first, all of it");
    let wallet = mesh.whole_wallet("player-1").await;
    assert_eq!((wallet.balance, wallet.spent, wallet.earned), (50, 300, 350));
    assert_eq!(wallet.exchanges, std::slice::from_ref(&exchange));
    // Asked again under the same key: the same exchange, nothing more spent.
    assert_eq!(mesh.exchange("player-1", "AVATAR-FRAME", "k-1").await.unwrap(), exchange);
    let reused = mesh.exchange("player-1", "STICKER-PACK", "k-1").await.unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");

    // The vendor cancels the next order: its points come back, once.
    mesh.player_with("player-1", &[300]).await;
    mesh.vendor_cancels(100).await;
    let cancelled = mesh.exchange("player-1", "AVATAR-FRAME", "k-2").await.unwrap();
    let refunded = eventually("the cancelled order to be refunded", || async {
        let wallet = mesh.whole_wallet("player-1").await;
        wallet
            .exchanges
            .into_iter()
            .find(|e| e.exchange_id == cancelled.exchange_id && e.status() == ExchangeStatus::Refunded)
    })
    .await;
    assert!(!refunded.cancel_reason.is_empty() && refunded.refunded_at.is_some());
    mesh.settled(GIFT_STREAM, "wallet-refund-points").await;
    let wallet = mesh.whole_wallet("player-1").await;
    assert_eq!((wallet.balance, wallet.spent, wallet.refunded), (350, 300, 300));

    // The cancellation delivered again (as a redelivery or a second copy
    // under another event id would be) changes nothing.
    let copy =
        mesh.published(GIFT_STREAM, 3).await.into_iter().rev().find(|m| m.subject.as_str() == "gift.order_cancelled");
    let mut copy: GiftOrderCancelled = prost::Message::decode(copy.unwrap().payload.as_ref()).unwrap();
    copy.event_id = uuid::Uuid::new_v4().to_string();
    mesh.publish(&copy).await;
    mesh.settled(GIFT_STREAM, "wallet-refund-points").await;
    assert_eq!(mesh.whole_wallet("player-1").await, wallet);
    let refunds = mesh
        .published(WALLET_STREAM, 1)
        .await
        .into_iter()
        .filter(|m| m.subject.as_str() == "wallet.points_refunded")
        .count();
    assert_eq!(refunds, 1, "PointsRefunded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_an_exchange_is_paid_from_two_rewards_and_refunded_once_when_the_vendor_cancels() {
    an_exchange_is_paid_from_two_rewards_and_refunded_once_when_the_vendor_cancels(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_an_exchange_is_paid_from_two_rewards_and_refunded_once_when_the_vendor_cancels() {
    let Some(schema) = PostgresSchema::create("wallet_points") else { return };
    an_exchange_is_paid_from_two_rewards_and_refunded_once_when_the_vendor_cancels(Some(schema.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_an_operator_lists_is_exchanged_at_the_price_the_wallet_learnt() {
    use api::game::gift::admin::v1::catalogue_service_client::CatalogueServiceClient;
    let mesh = mesh(None).await;
    mesh.player_with("player-1", &[300]).await;
    let listing = admin::ListProductRequest {
        sku: "WINTER-SCARF".into(),
        name: "Winter scarf".into(),
        price_points: 250,
        stock: 5,
        vendor_cost: 700,
        currency: "EUR".into(),
        programme_event_id: "LAUNCH".into(),
    };
    let mut catalogue = CatalogueServiceClient::connect(mesh.gift.url()).await.unwrap();
    catalogue.list_product(listing.by_operator()).await.unwrap();

    mesh.settled(GIFT_STREAM, "wallet-keep-product-price").await;
    let exchange = eventually("the price to reach the wallet", || async {
        mesh.exchange("player-1", "WINTER-SCARF", "k-1").await.ok()
    })
    .await;

    assert_eq!((exchange.price_points, exchange.status()), (250, ExchangeStatus::Placed));
    assert_eq!(mesh.whole_wallet("player-1").await.balance, 50);
}

/// Exchanges racing for the same points at once on PostgreSQL.
const RACERS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgresql_exchanges_racing_for_the_same_points_never_spend_a_point_twice() {
    let Some(schema) = PostgresSchema::create("wallet_race") else { return };
    let mesh = mesh(Some(schema.url())).await;
    // 500 points in three rewards: five stickers, not one more.
    mesh.player_with("player-1", &[100, 150, 250]).await;

    let calls = (0..RACERS).map(|n| {
        let mut client = mesh.client.clone();
        let request = pb::ExchangeRequest {
            customer_id: "player-1".into(),
            product_sku: "STICKER-PACK".into(),
            idempotency_key: format!("race-{n}"),
        };
        tokio::spawn(async move { client.exchange(request.by_player("player-1")).await })
    });
    let mut placed = 0;
    let mut answers = Vec::new();
    for call in futures::future::join_all(calls).await {
        match call.unwrap() {
            Ok(answer) => {
                assert_eq!(answer.into_inner().exchange.unwrap().status(), ExchangeStatus::Placed);
                placed += 1;
            }
            // Not enough left, or a race lost more often than retried.
            Err(status) => answers.push((status.code(), status.message().to_owned())),
        }
    }

    assert!(placed <= 5, "{placed} stickers from 500 points");
    for (code, message) in &answers {
        assert!(
            (*code == Code::FailedPrecondition && message.starts_with("player-1 has ")) || *code == Code::Aborted,
            "{code:?}: {message}"
        );
    }
    let wallet = mesh.whole_wallet("player-1").await;
    assert_eq!((wallet.spent, wallet.reserved), (100 * placed, 0));
    assert_eq!(wallet.balance, 500 - 100 * placed);
    // Those turned away for a lost race try again: exactly five in all.
    for n in 0..RACERS {
        let _ = mesh.exchange("player-1", "STICKER-PACK", &format!("race-{n}")).await;
    }
    let wallet = mesh.whole_wallet("player-1").await;
    assert_eq!((wallet.balance, wallet.spent), (0, 500));
    let stored = schema.count("SELECT COUNT(*) AS n FROM wallet_exchanges WHERE status = 2").unwrap();
    assert_eq!(stored, 5);
    let over = schema
        .count("SELECT COUNT(*) AS n FROM wallet_entries WHERE remaining + reserved + spent + expired <> points")
        .unwrap();
    assert_eq!(over, 0);
}

/// Placed exchanges whose cancellations two replicas race for.
const CANCELLED: usize = 20;
/// Copies of each cancellation, each under its own event id: enough of a
/// backlog for both replicas to take a share.
const COPIES: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_refund_each_cancelled_order_exactly_once() {
    let Some(schema) = PostgresSchema::create("wallet_refunds") else { return };
    // Exchanges placed through a first wallet and a real gift.
    let mut cancellations = Vec::new();
    {
        let mesh = mesh(Some(schema.url())).await;
        for n in 0..CANCELLED {
            let customer = format!("player-{n}");
            mesh.player_with(&customer, &[100, 200]).await;
            let exchange = mesh.exchange(&customer, "AVATAR-FRAME", "k-1").await.unwrap();
            cancellations.push(GiftOrderCancelled {
                event_id: uuid::Uuid::new_v4().to_string(),
                order_id: exchange.gift_order_id.clone(),
                idempotency_key: exchange.exchange_id.clone(),
                customer_id: customer,
                product_sku: "AVATAR-FRAME".into(),
                points: 300,
                reason: "no supply".into(),
                exchange_id: exchange.exchange_id,
                ..Default::default()
            });
        }
    }
    // Each cancellation arrives many times, under as many event ids, on a
    // backlog two wallet replicas split.
    let broker = Broker::start().await;
    for _ in 0..COPIES {
        for cancelled in &cancellations {
            broker
                .publish(&GiftOrderCancelled { event_id: uuid::Uuid::new_v4().to_string(), ..cancelled.clone() })
                .await;
        }
    }
    let wallet =
        ServiceCommand::new(env!("CARGO_BIN_EXE_wallet"), wallet::SPEC.grpc_service, schema.url(), &broker.url())
            .env("GIFT_URL", &format!("http://127.0.0.1:{}", testkit::free_port()));
    let split = testkit::split_backlog(
        &broker,
        &schema,
        wallet,
        2,
        &[(GIFT_STREAM, "wallet-refund-points")],
        (COPIES * CANCELLED) as u64,
        Duration::from_secs(60),
    )
    .await
    .unwrap();

    let count = |sql: &str| schema.count(sql).unwrap();
    let cancelled = i64::try_from(CANCELLED).unwrap();
    assert_eq!(count("SELECT COUNT(*) AS n FROM wallet_exchanges WHERE status = 4"), cancelled, "every one refunded");
    assert_eq!(count("SELECT COUNT(*) AS n FROM outbox WHERE subject = 'wallet.points_refunded'"), cancelled, "once");
    assert_eq!(
        count("SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) AS n FROM wallet_entries"),
        300 * cancelled,
        "every point back"
    );
    assert_eq!(count("SELECT CAST(COALESCE(SUM(spent + reserved), 0) AS BIGINT) AS n FROM wallet_entries"), 0);
    drop(split);
}

//! Spawns the real my page service on a free port with a fresh store, and
//! publishes the events it is built from as their producers would.

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use api::game::mission::v1::MissionAchieved;
use api::game::mypage::v1::{self as pb, my_page_service_client::MyPageServiceClient};
use api::game::reward::v1::RewardAllocated;
use api::game::wallet::v1::{
    EntryRefund, ExchangePlaced, PointsExpired, PointsRefunded, Reservation, RewardExchanged, RewardIssued,
};
use platform::CancellationToken;
use testkit::AsCaller;
use testkit::{Broker, TempStore, service_config};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub struct TestApp {
    pub broker: Broker,
    pub client: MyPageServiceClient<Channel>,
    /// The service's store, for tests that play another replica.
    pub database_url: String,
    pub stop: CancellationToken,
    /// The running service; it ends once `stop` is cancelled and it drained.
    pub served: JoinHandle<Result<(), platform::host::StartError>>,
    _store: TempStore,
}

/// The broker's helpers (`publish`, `settled`, `published`, `js`) on the app.
impl Deref for TestApp {
    type Target = Broker;

    fn deref(&self) -> &Broker {
        &self.broker
    }
}

/// The service on a fresh SQLite file.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(None).await
}

/// The service on `database_url`, or on a fresh SQLite file.
pub async fn spawn_app_on(database_url: Option<String>) -> TestApp {
    spawn_app_with(Broker::start().await, database_url).await
}

/// The service on `broker` (as a test prepared it), and on `database_url`
/// or a fresh SQLite file.
pub async fn spawn_app_with(broker: Broker, database_url: Option<String>) -> TestApp {
    let store = TempStore::new();
    let database_url = database_url.unwrap_or_else(|| store.sqlite_url("mypage"));
    let app = mypage::build(service_config(&broker, database_url.clone())).await.expect("mypage service starts");
    let client = MyPageServiceClient::connect(format!("http://127.0.0.1:{}", app.port())).await.expect("connects");
    let stop = CancellationToken::new();
    let served = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    TestApp { broker, client, database_url, stop, served, _store: store }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestApp {
    /// The player's page as GetMyPage answers it.
    pub async fn page(&self, customer: &str) -> pb::MyPage {
        self.client
            .clone()
            .get_my_page(pb::GetMyPageRequest { customer_id: customer.into() }.by_operator())
            .await
            .unwrap()
            .into_inner()
            .my_page
            .unwrap()
    }

    /// Waits until the player's page is as `wanted` says, and returns it.
    pub async fn page_until(&self, customer: &str, what: &str, wanted: impl Fn(&pb::MyPage) -> bool) -> pb::MyPage {
        let wanted = &wanted;
        eventually(what, || async move {
            let page = self.page(customer).await;
            wanted(&page).then_some(page)
        })
        .await
    }

    /// Waits until the player's page is `expected`, whatever its version.
    pub async fn page_becomes(&self, customer: &str, expected: &pb::MyPage) -> pb::MyPage {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let page = self.page(customer).await;
            let unversioned = pb::MyPage { version: expected.version, ..page.clone() };
            if unversioned == *expected {
                return page;
            }
            assert!(tokio::time::Instant::now() < deadline, "the page never became {expected:#?}; last seen {page:#?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the policy `consumer` of `stream` has acknowledged every
    /// event up to stream sequence `sequence`, i.e. applied or discarded it.
    pub async fn consumed(&self, stream: &str, consumer: &str, sequence: u64) {
        eventually(&format!("{consumer} to settle event {sequence}"), || async move {
            let stream = self.js.get_stream(stream).await.ok()?;
            let info = stream.consumer_info(consumer).await.ok()?;
            (info.ack_floor.stream_sequence >= sequence).then_some(())
        })
        .await;
    }
}

/// Polls `check` until it returns `Some`, for at most 10 seconds.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    testkit::eventually(what, Duration::from_secs(10), check).await
}

/// The four events of one mission's life, for one player.
#[derive(Debug, Clone)]
pub struct MissionLife {
    pub customer_id: String,
    pub mission_id: String,
    pub reward_id: String,
    pub entry_id: String,
    pub gift_order_id: String,
}

/// When the mission was achieved, in milliseconds since the Unix epoch.
pub const ACHIEVED_AT: i64 = 1_764_000_000_000;

/// When an expiring reward of the mission expires.
pub const EXPIRES_AT: i64 = ACHIEVED_AT + 40 * 24 * 3_600_000;

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl MissionLife {
    pub fn new(customer: &str) -> Self {
        Self {
            customer_id: customer.into(),
            mission_id: new_id(),
            reward_id: new_id(),
            entry_id: new_id(),
            gift_order_id: new_id(),
        }
    }

    pub fn achieved(&self) -> MissionAchieved {
        MissionAchieved {
            event_id: new_id(),
            mission_id: self.mission_id.clone(),
            customer_id: self.customer_id.clone(),
            mission_code: "FIRST_WIN".into(),
            reward_points: 300,
            achieved_at: Some(platform::events::timestamp(ACHIEVED_AT)),
            programme_event_id: "LAUNCH".into(),
            event_ends_at: None,
        }
    }

    pub fn allocated(&self) -> RewardAllocated {
        RewardAllocated {
            event_id: new_id(),
            reward_id: self.reward_id.clone(),
            mission_id: self.mission_id.clone(),
            customer_id: self.customer_id.clone(),
            mission_code: "FIRST_WIN".into(),
            points: 300,
            allocated_at: Some(platform::events::timestamp(ACHIEVED_AT + 1_000)),
            programme_event_id: "LAUNCH".into(),
            event_ends_at: None,
        }
    }

    pub fn issued(&self) -> RewardIssued {
        RewardIssued {
            event_id: new_id(),
            entry_id: self.entry_id.clone(),
            reward_id: self.reward_id.clone(),
            mission_id: self.mission_id.clone(),
            customer_id: self.customer_id.clone(),
            points: 300,
            issued_at: Some(platform::events::timestamp(ACHIEVED_AT + 2_000)),
            expires_at: None,
        }
    }

    /// RewardIssued for a reward of an event, expiring at [`EXPIRES_AT`].
    pub fn issued_expiring(&self) -> RewardIssued {
        RewardIssued { expires_at: Some(platform::events::timestamp(EXPIRES_AT)), ..self.issued() }
    }

    /// PointsExpired for the entry [`Self::issued_expiring`] issued.
    pub fn expired(&self) -> PointsExpired {
        PointsExpired {
            event_id: new_id(),
            entry_id: self.entry_id.clone(),
            reward_id: self.reward_id.clone(),
            mission_id: self.mission_id.clone(),
            customer_id: self.customer_id.clone(),
            points: 300,
            expires_at: Some(platform::events::timestamp(EXPIRES_AT)),
            expired_at: Some(platform::events::timestamp(EXPIRES_AT + 60_000)),
        }
    }

    pub fn exchanged(&self) -> RewardExchanged {
        RewardExchanged {
            event_id: new_id(),
            entry_id: self.entry_id.clone(),
            reward_id: self.reward_id.clone(),
            mission_id: self.mission_id.clone(),
            customer_id: self.customer_id.clone(),
            gift_order_id: self.gift_order_id.clone(),
            product_sku: "COFFEE_VOUCHER".into(),
            exchanged_at: Some(platform::events::timestamp(ACHIEVED_AT + 3_000)),
        }
    }

    /// The page once all four events were applied (version left at 0).
    pub fn exchanged_page(&self) -> pb::MyPage {
        use api::game::mission::v1::MissionStatus;
        use api::game::reward::v1::RewardStatus;
        use api::game::wallet::v1::WalletEntryStatus;
        pb::MyPage {
            customer_id: self.customer_id.clone(),
            missions: vec![pb::MyPageMission {
                mission_id: self.mission_id.clone(),
                mission_code: "FIRST_WIN".into(),
                status: MissionStatus::Rewarded.into(),
                reward_id: self.reward_id.clone(),
                reward_status: RewardStatus::Exchanged.into(),
                reward_points: 300,
                achieved_at: Some(platform::events::timestamp(ACHIEVED_AT)),
            }],
            wallet: vec![pb::MyPageWalletEntry {
                entry_id: self.entry_id.clone(),
                reward_id: self.reward_id.clone(),
                mission_id: self.mission_id.clone(),
                points: 300,
                status: WalletEntryStatus::Exchanged.into(),
                gift_order_id: self.gift_order_id.clone(),
                product_sku: "COFFEE_VOUCHER".into(),
                expires_at: None,
                remaining_points: 0,
            }],
            available_points: 0,
            version: 0,
            exchanges: vec![],
        }
    }
}

/// When an exchange's order was placed.
pub const PLACED_AT: i64 = ACHIEVED_AT + 10_000;

/// When the vendor's cancellation of it came back as a refund.
pub const REFUNDED_AT: i64 = ACHIEVED_AT + 20_000;

/// One exchange of points for a product, paid by the entries of some
/// lives of one player.
#[derive(Debug, Clone)]
pub struct ExchangeLife {
    pub customer_id: String,
    pub exchange_id: String,
    pub gift_order_id: String,
    /// Each paying life's entry and reward, and the points it paid.
    pub paid: Vec<(String, String, i64)>,
}

impl ExchangeLife {
    pub fn new(paid: &[(&MissionLife, i64)]) -> Self {
        Self {
            customer_id: paid[0].0.customer_id.clone(),
            exchange_id: new_id(),
            gift_order_id: new_id(),
            paid: paid.iter().map(|(life, points)| (life.entry_id.clone(), life.reward_id.clone(), *points)).collect(),
        }
    }

    pub fn price(&self) -> i64 {
        self.paid.iter().map(|(_, _, points)| points).sum()
    }

    pub fn placed(&self) -> ExchangePlaced {
        ExchangePlaced {
            event_id: new_id(),
            exchange_id: self.exchange_id.clone(),
            customer_id: self.customer_id.clone(),
            product_sku: "SNOW_SLED".into(),
            price_points: self.price(),
            gift_order_id: self.gift_order_id.clone(),
            reservations: self
                .paid
                .iter()
                .map(|(entry_id, reward_id, points)| Reservation {
                    entry_id: entry_id.clone(),
                    reward_id: reward_id.clone(),
                    points: *points,
                })
                .collect(),
            placed_at: Some(platform::events::timestamp(PLACED_AT)),
        }
    }

    /// The vendor cancelled the order: every point back, but those of the
    /// `expired` entries, which expire at once.
    pub fn refunded(&self, expired: &[&str]) -> PointsRefunded {
        PointsRefunded {
            event_id: new_id(),
            exchange_id: self.exchange_id.clone(),
            customer_id: self.customer_id.clone(),
            gift_order_id: self.gift_order_id.clone(),
            product_sku: "SNOW_SLED".into(),
            refunds: self
                .paid
                .iter()
                .map(|(entry_id, reward_id, points)| {
                    let past_expiry = expired.contains(&entry_id.as_str());
                    EntryRefund {
                        entry_id: entry_id.clone(),
                        reward_id: reward_id.clone(),
                        refunded_points: if past_expiry { 0 } else { *points },
                        expired_points: if past_expiry { *points } else { 0 },
                    }
                })
                .collect(),
            reason: "the vendor ran out of sleds".into(),
            refunded_at: Some(platform::events::timestamp(REFUNDED_AT)),
        }
    }
}

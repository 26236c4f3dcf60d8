//! `rewardsctl demo`: the player's story, played through the gateway with
//! the generated client stubs, printing every step as it settles; then the
//! operator's event programme ([`programme`]).

mod points;
mod programme;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api::game::gift::v1::{self as gift, gift_service_client::GiftServiceClient};
use api::game::mission::v1::{self as mission, mission_service_client::MissionServiceClient};
use api::game::mypage::v1::{self as mypage, my_page_service_client::MyPageServiceClient};
use api::game::reward::v1::{self as reward, reward_service_client::RewardServiceClient};
use api::game::settlement::v1::{self as settlement, settlement_service_client::SettlementServiceClient};
use api::game::wallet::v1::{self as wallet, wallet_service_client::WalletServiceClient};
use dev_issuer::authorized;
use tonic::transport::Channel;

/// Options of `rewardsctl demo`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The gateway of the running system.
    #[arg(long, default_value_t = api::catalogue::GATEWAY.local_url(), value_name = "URL")]
    gateway: String,
    /// Where `rewardsctl up` keeps the development key pair the tokens are signed with.
    #[arg(long, default_value = ".run", value_name = "DIR")]
    run_dir: PathBuf,
    /// Gift itself, for its vendor simulation (which the gateway never forwards).
    #[arg(long, default_value_t = api::catalogue::GIFT.local_url(), value_name = "URL")]
    gift: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            gateway: api::catalogue::GATEWAY.local_url(),
            run_dir: PathBuf::from(".run"),
            gift: api::catalogue::GIFT.local_url(),
        }
    }
}

impl Options {
    /// The demo against the system `rewardsctl up` runs from `run_dir`.
    pub fn in_run_dir(run_dir: PathBuf) -> Self {
        Self { run_dir, ..Self::default() }
    }

    /// The same, through the gateway at `gateway` (a system on free ports).
    #[must_use]
    pub fn through(mut self, gateway: String) -> Self {
        self.gateway = gateway;
        self
    }

    /// The same, with gift's vendor simulation at `gift` (a system on free ports).
    #[must_use]
    pub fn with_gift(mut self, gift: String) -> Self {
        self.gift = gift;
        self
    }
}

/// How long an asynchronous step may take before the demo gives up.
const SETTLE_WITHIN: Duration = Duration::from_secs(15);

/// The generated clients, all pointed at the gateway, and the queries the
/// story polls until the events have done their work.
#[derive(Clone)]
struct Player {
    customer_id: String,
    /// The player's bearer token, on every call of theirs.
    token: String,
    /// An operator's, for the settlements (players never see them).
    operator: String,
    missions: MissionServiceClient<Channel>,
    rewards: RewardServiceClient<Channel>,
    wallets: WalletServiceClient<Channel>,
    gifts: GiftServiceClient<Channel>,
    my_pages: MyPageServiceClient<Channel>,
    settlements: SettlementServiceClient<Channel>,
}

impl Player {
    async fn mission(mut self, mission_id: String) -> Option<mission::Mission> {
        let request = mission::GetMissionRequest { mission_id };
        self.missions.get_mission(authorized(request, &self.token)).await.ok()?.into_inner().mission
    }

    async fn reward(mut self, reward_id: String) -> Option<reward::Reward> {
        self.rewards
            .get_reward(authorized(reward::GetRewardRequest { reward_id }, &self.token))
            .await
            .ok()?
            .into_inner()
            .reward
    }

    async fn wallet(mut self) -> Option<Vec<wallet::WalletEntry>> {
        let request = wallet::GetWalletRequest { customer_id: self.customer_id };
        Some(self.wallets.get_wallet(authorized(request, &self.token)).await.ok()?.into_inner().wallet?.entries)
    }

    async fn settlements(mut self, product_sku: String) -> Option<Vec<settlement::Settlement>> {
        let request = settlement::ListSettlementsRequest { product_sku, page_size: 500, page_token: String::new() };
        Some(
            self.settlements.list_settlements(authorized(request, &self.operator)).await.ok()?.into_inner().settlements,
        )
    }

    async fn my_page(mut self) -> Option<mypage::MyPage> {
        let request = mypage::GetMyPageRequest { customer_id: self.customer_id };
        self.my_pages.get_my_page(authorized(request, &self.token)).await.ok()?.into_inner().my_page
    }
}

/// Plays the story once.
///
/// # Errors
/// When a step fails or does not settle in time.
pub async fn run(options: &Options) -> anyhow::Result<()> {
    let channel = Channel::from_shared(options.gateway.clone())?
        .connect()
        .await
        .with_context(|| format!("cannot reach the gateway at {}", options.gateway))?;
    let identity = crate::mesh::identity(&options.run_dir)?;
    let customer_id = format!("player-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let suffix = customer_id["player-".len()..].to_uppercase();
    let mut operators =
        programme::Programme::new(&channel, customer_id.clone(), identity.player(&customer_id), identity.operator());
    let mut p = Player {
        token: identity.player(&customer_id),
        operator: identity.operator(),
        customer_id,
        missions: MissionServiceClient::new(channel.clone()),
        rewards: RewardServiceClient::new(channel.clone()),
        wallets: WalletServiceClient::new(channel.clone()),
        gifts: GiftServiceClient::new(channel.clone()),
        my_pages: MyPageServiceClient::new(channel.clone()),
        settlements: SettlementServiceClient::new(channel),
    };
    let customer = p.customer_id.clone();
    let story = Instant::now();
    println!("\n== The player's story, through the gateway at {} ==\n", options.gateway);

    let catalogue =
        p.missions.list_mission_definitions(authorized(mission::ListMissionDefinitionsRequest {}, &p.token)).await?;
    let definition = catalogue
        .into_inner()
        .definitions
        .into_iter()
        .find(|d| d.mission_code == "FIRST_WIN")
        .context("the catalogue has no FIRST_WIN mission")?;
    step(1, format!("the catalogue offers {} ({} points)", definition.mission_code, definition.reward_points));

    let t = Instant::now();
    let request = mission::AchieveMissionRequest {
        customer_id: customer.clone(),
        mission_code: definition.mission_code,
        achievement_id: None,
    };
    let achieved = p
        .missions
        .achieve_mission(authorized(request, &p.token))
        .await?
        .into_inner()
        .mission
        .context("no mission returned")?;
    let line = format!(
        "{customer} achieves {}: mission {} is {}",
        achieved.mission_code,
        achieved.mission_id,
        name(&achieved)
    );
    timed(2, line, t);

    let t = Instant::now();
    let rewarded = settle("the mission to carry its reward", || {
        let query = p.clone().mission(achieved.mission_id.clone());
        async { query.await.filter(|m| m.status() == mission::MissionStatus::Rewarded) }
    })
    .await?;
    let line = format!("the reward {} is allocated and the mission is {}", rewarded.reward_id, name(&rewarded));
    timed(3, line, t);

    let t = Instant::now();
    let issued = reward_reaching(&p, &rewarded.reward_id, reward::RewardStatus::Issued).await?;
    timed(4, format!("reward {} is {} ({} points)", issued.reward_id, reward_name(&issued), issued.points), t);

    let t = Instant::now();
    let entry = settle("the reward to reach the wallet", || {
        let query = p.clone().wallet();
        async { query.await?.into_iter().find(|e| e.reward_id == rewarded.reward_id) }
    })
    .await?;
    let line =
        format!("the wallet holds entry {} worth {} points: {}", entry.entry_id, entry.points, entry_name(&entry));
    timed(5, line, t);

    let products =
        p.gifts.list_products(authorized(gift::ListProductsRequest {}, &p.token)).await?.into_inner().products;
    let product = products
        .iter()
        .filter(|product| product.price_points <= entry.points && product.stock > 0)
        .max_by_key(|product| product.price_points)
        .context("no product in stock is affordable with this reward")?;
    let line = format!(
        "the gift catalogue has {} for {} points ({} in stock)",
        product.sku, product.price_points, product.stock
    );
    step(6, line);

    let exchange = wallet::ExchangeRewardRequest {
        customer_id: customer.clone(),
        entry_id: entry.entry_id.clone(),
        product_sku: product.sku.clone(),
    };
    let t = Instant::now();
    let exchanged = p
        .wallets
        .exchange_reward(authorized(exchange.clone(), &p.token))
        .await?
        .into_inner()
        .entry
        .context("no entry returned")?;
    let line = format!(
        "exchanging it for {}: entry is {}, gift order {}",
        product.sku,
        entry_name(&exchanged),
        exchanged.gift_order_id
    );
    timed(7, line, t);

    match p.wallets.exchange_reward(authorized(exchange, &p.token)).await {
        Err(status) => step(8, format!("exchanging it again is refused: {:?} \"{}\"", status.code(), status.message())),
        Ok(_) => bail!("a second exchange of the same entry was accepted"),
    }

    let t = Instant::now();
    let done = reward_reaching(&p, &rewarded.reward_id, reward::RewardStatus::Exchanged).await?;
    timed(9, format!("reward {} is {}", done.reward_id, reward_name(&done)), t);

    let request = gift::GetOrderRequest { order_id: exchanged.gift_order_id.clone() };
    let order =
        p.gifts.get_order(authorized(request, &p.token)).await?.into_inner().order.context("no order returned")?;
    step(10, format!("gift order {} for {} is {:?}", order.order_id, order.product_sku, order.status()));

    let t = Instant::now();
    let recorded = settle("the settlement", || {
        let query = p.clone().settlements(product.sku.clone());
        async { query.await?.into_iter().find(|s| s.order_id == order.order_id) }
    })
    .await?;
    let line = format!(
        "settlement {} records {} {} owed for order {}",
        recorded.settlement_id,
        format_amount(recorded.amount),
        recorded.currency,
        recorded.order_id
    );
    timed(11, line, t);

    let t = Instant::now();
    let page = settle("my page to show it all", || {
        let query = p.clone().my_page();
        async {
            let page = query.await?;
            let m = page.missions.iter().find(|m| m.mission_id == achieved.mission_id)?;
            let shown = m.reward_status() == reward::RewardStatus::Exchanged
                && page.wallet.iter().any(|e| e.status() == wallet::WalletEntryStatus::Exchanged);
            shown.then_some(page)
        }
    })
    .await?;
    timed(12, format!("my page of {} (version {}):", page.customer_id, page.version), t);
    for m in &page.missions {
        let (status, reward_status) = (m.status(), m.reward_status());
        let points = m.reward_points;
        println!(
            "       mission {} {status:?}, reward {} {reward_status:?} ({points} points)",
            m.mission_code, m.reward_id
        );
    }
    for e in &page.wallet {
        println!(
            "       wallet entry {} {:?}, gift order {} ({})",
            e.entry_id,
            e.status(),
            e.gift_order_id,
            e.product_sku
        );
    }

    println!("\n== The event programme, run by an operator ==\n");
    let next = operators.play(13, &suffix).await?;
    let (next, fate) = operators.exchange_from_two_rewards(next, &options.gift, &suffix).await?;
    operators.periods_closed(next, &recorded.period_id, fate.settlements()).await?;

    println!("\n== Story complete in {} ms ==", story.elapsed().as_millis());
    Ok(())
}

/// Waits until the reward has reached `status` (or gone past it).
async fn reward_reaching(p: &Player, reward_id: &str, status: reward::RewardStatus) -> anyhow::Result<reward::Reward> {
    settle(&format!("reward {reward_id} to be {}", status.as_str_name()), || {
        let query = p.clone().reward(reward_id.to_owned());
        async move { query.await.filter(|r| r.status() >= status) }
    })
    .await
}

fn step(n: u32, text: String) {
    println!("  {n:>2}. {text}");
}

fn timed(n: u32, text: String, since: Instant) {
    println!("  {n:>2}. {text}  [{} ms]", since.elapsed().as_millis());
}

fn name(m: &mission::Mission) -> &'static str {
    m.status().as_str_name()
}

fn reward_name(r: &reward::Reward) -> &'static str {
    r.status().as_str_name()
}

fn entry_name(e: &wallet::WalletEntry) -> &'static str {
    e.status().as_str_name()
}

/// Minor units as a decimal amount: `-350` is `-3.50`.
fn format_amount(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.unsigned_abs() / 100, minor.unsigned_abs() % 100)
}

/// Polls `check` until it yields, for at most [`SETTLE_WITHIN`].
async fn settle<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + SETTLE_WITHIN;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("waited {}s for {what}", SETTLE_WITHIN.as_secs());
        }
        // Well inside the gateway's default rate limit of 50 calls a second.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

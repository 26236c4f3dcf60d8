//! `rewardsctl demo`: the player's story, played through the gateway with
//! the generated client stubs, printing every step as it settles.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api::game::gift::v1::{self as gift, gift_service_client::GiftServiceClient};
use api::game::mission::v1::{self as mission, mission_service_client::MissionServiceClient};
use api::game::mypage::v1::{self as mypage, my_page_service_client::MyPageServiceClient};
use api::game::reward::v1::{self as reward, reward_service_client::RewardServiceClient};
use api::game::settlement::v1::{self as settlement, settlement_service_client::SettlementServiceClient};
use api::game::wallet::v1::{self as wallet, wallet_service_client::WalletServiceClient};
use tonic::transport::Channel;

/// Options of `rewardsctl demo`.
#[derive(Debug)]
pub struct Options {
    gateway: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            gateway: "http://127.0.0.1:8080".into(),
        }
    }
}

impl Options {
    /// Parses the arguments after `demo`.
    ///
    /// # Errors
    /// On an unknown or incomplete argument.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--gateway" => options.gateway = args.next().ok_or("--gateway needs a URL")?.clone(),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(options)
    }
}

/// How long an asynchronous step may take before the demo gives up.
const SETTLE_WITHIN: Duration = Duration::from_secs(15);

struct Clients {
    missions: MissionServiceClient<Channel>,
    rewards: RewardServiceClient<Channel>,
    wallets: WalletServiceClient<Channel>,
    gifts: GiftServiceClient<Channel>,
    my_pages: MyPageServiceClient<Channel>,
    settlements: SettlementServiceClient<Channel>,
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
    let mut c = Clients {
        missions: MissionServiceClient::new(channel.clone()),
        rewards: RewardServiceClient::new(channel.clone()),
        wallets: WalletServiceClient::new(channel.clone()),
        gifts: GiftServiceClient::new(channel.clone()),
        my_pages: MyPageServiceClient::new(channel.clone()),
        settlements: SettlementServiceClient::new(channel),
    };
    let story = Instant::now();
    let customer = format!("player-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    println!(
        "\n== The player's story, through the gateway at {} ==\n",
        options.gateway
    );

    let definitions = c
        .missions
        .list_mission_definitions(mission::ListMissionDefinitionsRequest {})
        .await?;
    let definition = definitions
        .into_inner()
        .definitions
        .into_iter()
        .find(|d| d.mission_code == "FIRST_WIN")
        .context("the catalogue has no FIRST_WIN mission")?;
    step(
        1,
        format!(
            "the catalogue offers {} ({} points)",
            definition.mission_code, definition.reward_points
        ),
    );

    let t = Instant::now();
    let achieved = c
        .missions
        .achieve_mission(mission::AchieveMissionRequest {
            customer_id: customer.clone(),
            mission_code: definition.mission_code.clone(),
        })
        .await?
        .into_inner()
        .mission
        .context("AchieveMission returned no mission")?;
    timed(
        2,
        format!(
            "{customer} achieves {}: mission {} is {}",
            achieved.mission_code,
            achieved.mission_id,
            mission_status(&achieved)
        ),
        t,
    );

    let t = Instant::now();
    let rewarded = settle("the mission to carry its reward", || {
        let mut missions = c.missions.clone();
        let mission_id = achieved.mission_id.clone();
        async move {
            let m = missions
                .get_mission(mission::GetMissionRequest { mission_id })
                .await
                .ok()?
                .into_inner()
                .mission?;
            (m.status() == mission::MissionStatus::Rewarded).then_some(m)
        }
    })
    .await?;
    timed(
        3,
        format!(
            "the reward {} is allocated and the mission is {}",
            rewarded.reward_id,
            mission_status(&rewarded)
        ),
        t,
    );

    let t = Instant::now();
    let issued = settle("the reward to be issued", || {
        let mut rewards = c.rewards.clone();
        let reward_id = rewarded.reward_id.clone();
        async move {
            let r = rewards
                .get_reward(reward::GetRewardRequest { reward_id })
                .await
                .ok()?
                .into_inner()
                .reward?;
            (r.status() >= reward::RewardStatus::Issued).then_some(r)
        }
    })
    .await?;
    timed(
        4,
        format!(
            "reward {} is {} ({} points)",
            issued.reward_id,
            reward_status(&issued),
            issued.points
        ),
        t,
    );

    let t = Instant::now();
    let entry = settle("the reward to reach the wallet", || {
        let mut wallets = c.wallets.clone();
        let (customer_id, reward_id) = (customer.clone(), rewarded.reward_id.clone());
        async move {
            let w = wallets
                .get_wallet(wallet::GetWalletRequest { customer_id })
                .await
                .ok()?
                .into_inner()
                .wallet?;
            w.entries.into_iter().find(|e| e.reward_id == reward_id)
        }
    })
    .await?;
    timed(
        5,
        format!(
            "the wallet holds entry {} worth {} points: {}",
            entry.entry_id,
            entry.points,
            entry_status(&entry)
        ),
        t,
    );

    let products = c
        .gifts
        .list_products(gift::ListProductsRequest {})
        .await?
        .into_inner()
        .products;
    let product = products
        .iter()
        .filter(|p| p.price_points <= entry.points && p.stock > 0)
        .max_by_key(|p| p.price_points)
        .context("no product in stock is affordable with this reward")?;
    step(
        6,
        format!(
            "the gift catalogue has {} for {} points ({} in stock)",
            product.sku, product.price_points, product.stock
        ),
    );

    let t = Instant::now();
    let exchanged = c
        .wallets
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: customer.clone(),
            entry_id: entry.entry_id.clone(),
            product_sku: product.sku.clone(),
        })
        .await?
        .into_inner()
        .entry
        .context("ExchangeReward returned no entry")?;
    timed(
        7,
        format!(
            "exchanging it for {}: entry is {}, gift order {}",
            product.sku,
            entry_status(&exchanged),
            exchanged.gift_order_id
        ),
        t,
    );

    let again = c
        .wallets
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: customer.clone(),
            entry_id: entry.entry_id.clone(),
            product_sku: product.sku.clone(),
        })
        .await;
    match again {
        Err(status) => step(
            8,
            format!(
                "exchanging it again is refused: {:?} \"{}\"",
                status.code(),
                status.message()
            ),
        ),
        Ok(_) => bail!("a second exchange of the same entry was accepted"),
    }

    let t = Instant::now();
    let reward_exchanged = settle("the reward to be exchanged", || {
        let mut rewards = c.rewards.clone();
        let reward_id = rewarded.reward_id.clone();
        async move {
            let r = rewards
                .get_reward(reward::GetRewardRequest { reward_id })
                .await
                .ok()?
                .into_inner()
                .reward?;
            (r.status() == reward::RewardStatus::Exchanged).then_some(r)
        }
    })
    .await?;
    timed(
        9,
        format!(
            "reward {} is {}",
            reward_exchanged.reward_id,
            reward_status(&reward_exchanged)
        ),
        t,
    );

    let order = c
        .gifts
        .get_order(gift::GetOrderRequest {
            order_id: exchanged.gift_order_id.clone(),
        })
        .await?
        .into_inner()
        .order
        .context("GetOrder returned no order")?;
    step(
        10,
        format!(
            "gift order {} for {} is {:?}",
            order.order_id,
            order.product_sku,
            order.status()
        ),
    );

    let t = Instant::now();
    let recorded = settle("the settlement", || {
        let mut settlements = c.settlements.clone();
        let (sku, order_id) = (product.sku.clone(), order.order_id.clone());
        async move {
            let request = settlement::ListSettlementsRequest {
                product_sku: sku,
                page_size: 500,
                page_token: String::new(),
            };
            let page = settlements.list_settlements(request).await.ok()?.into_inner();
            page.settlements.into_iter().find(|s| s.order_id == order_id)
        }
    })
    .await?;
    timed(
        11,
        format!(
            "settlement {} records {} {} owed for order {}",
            recorded.settlement_id,
            format_amount(recorded.amount),
            recorded.currency,
            recorded.order_id
        ),
        t,
    );

    let t = Instant::now();
    let page = settle("my page to show it all", || {
        let mut my_pages = c.my_pages.clone();
        let customer_id = customer.clone();
        let mission_id = achieved.mission_id.clone();
        async move {
            let page = my_pages
                .get_my_page(mypage::GetMyPageRequest { customer_id })
                .await
                .ok()?
                .into_inner()
                .my_page?;
            let m = page.missions.iter().find(|m| m.mission_id == mission_id)?;
            let done = m.status() == mission::MissionStatus::Rewarded
                && m.reward_status() == reward::RewardStatus::Exchanged
                && page
                    .wallet
                    .iter()
                    .any(|e| e.status() == wallet::WalletEntryStatus::Exchanged);
            done.then_some(page)
        }
    })
    .await?;
    timed(
        12,
        format!("my page of {} (version {}):", page.customer_id, page.version),
        t,
    );
    for m in &page.missions {
        println!(
            "       mission {} {:?}, reward {} {:?} ({} points)",
            m.mission_code,
            m.status(),
            m.reward_id,
            m.reward_status(),
            m.reward_points
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
    println!("\n== Story complete in {} ms ==", story.elapsed().as_millis());
    Ok(())
}

fn step(n: u32, text: String) {
    println!("  {n:>2}. {text}");
}

fn timed(n: u32, text: String, since: Instant) {
    println!("  {n:>2}. {text}  [{} ms]", since.elapsed().as_millis());
}

fn mission_status(m: &mission::Mission) -> &'static str {
    m.status().as_str_name()
}

fn reward_status(r: &reward::Reward) -> &'static str {
    r.status().as_str_name()
}

fn entry_status(e: &wallet::WalletEntry) -> &'static str {
    e.status().as_str_name()
}

fn format_amount(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, (minor % 100).abs())
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

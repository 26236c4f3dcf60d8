//! The operator's part of the demo: an event of the programme that opens
//! now, a mission the player may achieve twice in it (and is refused the
//! third time), a product sold in it and restocked under a key, the
//! player's two rewards paying for it in one exchange that the vendor
//! cancels ([`super::points`]), and the settlement periods the story's
//! orders landed in, closed with their totals.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api::game::gift::admin::v1::{self as admin, catalogue_service_client::CatalogueServiceClient};
use api::game::mission::v1::{self as mission, mission_service_client::MissionServiceClient};
use api::game::programme::v1::{self as programme, programme_service_client::ProgrammeServiceClient};
use api::game::settlement::v1::{self as settlement, settlement_service_client::SettlementServiceClient};
use api::game::wallet::v1::wallet_service_client::WalletServiceClient;
use dev_issuer::authorized;
use platform::events::{millis, timestamp};
use tonic::transport::Channel;

use super::{SETTLE_WITHIN, format_amount, settle, step, timed};

/// How long the demo's event stays open: the story is long over by then.
const EVENT_OPEN_FOR_MS: i64 = 3_600_000;
/// The demo's repeatable mission may be achieved this many times.
const TIMES: u32 = 2;
/// A period that ends later than this is not waited for (a system run with
/// the default daily periods): its totals so far are shown instead.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// How long after its end a period must be closed: the closing job looks
/// every `SETTLEMENT_CLOSE_INTERVAL_MS` (1 s under `up --demo`).
const CLOSED_WITHIN: Duration = Duration::from_secs(15);

/// The clients the operator's part calls through the gateway, and whose
/// tokens it calls with.
pub(super) struct Programme {
    /// The player's token and id (the one of the story).
    pub customer_id: String,
    pub player: String,
    /// An operator's token.
    pub operator: String,
    pub programmes: ProgrammeServiceClient<Channel>,
    pub catalogue: CatalogueServiceClient<Channel>,
    pub missions: MissionServiceClient<Channel>,
    pub settlements: SettlementServiceClient<Channel>,
    pub wallets: WalletServiceClient<Channel>,
    /// The demo mission's achievements, once achieved: their rewards pay
    /// for the product.
    pub achieved: Vec<String>,
    /// The product listed in the demo's event, once listed.
    pub sku: String,
}

impl Programme {
    /// The clients over `channel`.
    pub fn new(channel: &Channel, customer_id: String, player: String, operator: String) -> Self {
        Self {
            customer_id,
            player,
            operator,
            programmes: ProgrammeServiceClient::new(channel.clone()),
            catalogue: CatalogueServiceClient::new(channel.clone()),
            missions: MissionServiceClient::new(channel.clone()),
            settlements: SettlementServiceClient::new(channel.clone()),
            wallets: WalletServiceClient::new(channel.clone()),
            achieved: Vec::new(),
            sku: String::new(),
        }
    }

    /// Plays the operator's part from step `first`, this run's names led by
    /// `suffix`; returns the next step's number.
    ///
    /// # Errors
    /// When a step fails, is not refused where it must be, or does not
    /// settle in time.
    pub async fn play(&mut self, first: u32, suffix: &str) -> anyhow::Result<u32> {
        let mut n = first;
        let now = platform::db::now_millis();
        let event_id = format!("DEMO-{suffix}");
        let schedule = programme::ScheduleEventRequest {
            programme_event_id: event_id.clone(),
            title: "Demo event".into(),
            starts_at: Some(timestamp(now)),
            ends_at: Some(timestamp(now + EVENT_OPEN_FOR_MS)),
        };
        let scheduled = self
            .programmes
            .schedule_event(authorized(schedule, &self.operator))
            .await
            .context("ScheduleEvent")?
            .into_inner()
            .programme_event
            .context("no event returned")?;
        let ends_at = kernel::rfc3339(millis(scheduled.ends_at.as_ref()));
        step(n, format!("an operator schedules event {event_id}, open from now until {ends_at}"));
        n += 1;

        let code = format!("DEMO_MATCH_{}", suffix.replace('-', "_"));
        let define = programme::DefineMissionRequest {
            programme_event_id: event_id.clone(),
            mission_code: code.clone(),
            title: "Win a demo match".into(),
            reward_points: 40,
            limit: Some(mission::MissionLimit { kind: mission::MissionLimitKind::Times.into(), times: TIMES }),
        };
        self.programmes.define_mission(authorized(define, &self.operator)).await.context("DefineMission")?;
        step(n, format!("… and defines mission {code} in it: 40 points, at most {TIMES} times per player"));
        n += 1;

        for match_no in 1..=TIMES {
            let t = Instant::now();
            let achieved = self.achieve(&code, &format!("match-{match_no}")).await?.context("no mission returned")?;
            let line = format!(
                "{} achieves it (achievement match-{match_no}): mission {} is {}",
                self.customer_id,
                achieved.mission_id,
                achieved.status().as_str_name()
            );
            timed(n, line, t);
            n += 1;
            self.achieved.push(achieved.mission_id);
        }
        let third = format!("match-{}", TIMES + 1);
        match self.achieve(&code, &third).await {
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                step(n, format!("a third time ({third}) is refused: {:?} \"{}\"", status.code(), status.message()));
            }
            Err(status) => bail!("the third achievement failed otherwise: {:?} {}", status.code(), status.message()),
            Ok(_) => bail!("a third achievement of a mission limited to {TIMES} was accepted"),
        }
        n += 1;

        let sku = format!("DEMO-SLED-{suffix}");
        let t = Instant::now();
        let listed = self.list_product(&sku, &event_id).await?;
        let line = format!(
            "an operator lists {sku} in {event_id} ({} points, {} in stock, the vendor bills {} {}), once gift learned the event",
            listed.price_points,
            listed.stock,
            format_amount(listed.vendor_cost),
            listed.currency
        );
        timed(n, line, t);
        n += 1;

        let key = format!("restock-{suffix}");
        let restocked = self.restock(&sku, 5, &key).await?;
        let again = self.restock(&sku, 5, &key).await?;
        if again.stock != restocked.stock {
            bail!("a restock retried under its key added again: {} then {}", restocked.stock, again.stock);
        }
        step(
            n,
            format!(
                "… restocks it by 5 under key {key}: {} in stock; the same restock retried: still {}",
                restocked.stock, again.stock
            ),
        );
        self.sku = sku;
        Ok(n + 1)
    }

    /// Every settlement period the story's orders landed in (that of
    /// `first_period_id`, and those of the demo product's `settlements`
    /// settlements), each closed with its totals, as step `n`.
    ///
    /// # Errors
    /// When a period cannot be read, or does not close in time.
    pub async fn periods_closed(&mut self, n: u32, first_period_id: &str, settlements: usize) -> anyhow::Result<()> {
        let mut periods = vec![first_period_id.to_owned()];
        if settlements > 0 {
            let (sku, operator) = (self.sku.clone(), self.operator.clone());
            let recorded = settle(&format!("{settlements} settlement(s) of {sku}"), || {
                let mut client = self.settlements.clone();
                let request = settlement::ListSettlementsRequest {
                    product_sku: sku.clone(),
                    page_size: 10,
                    page_token: String::new(),
                };
                let request = authorized(request, &operator);
                async move {
                    let listed = client.list_settlements(request).await.ok()?.into_inner().settlements;
                    (listed.len() >= settlements).then_some(listed)
                }
            })
            .await?;
            periods.extend(recorded.into_iter().map(|s| s.period_id));
        }
        periods.dedup();
        for (period_id, n) in periods.iter().zip(n..) {
            self.period_closed(n, period_id).await?;
        }
        Ok(())
    }

    /// Shows the settlement period `period_id` closed with its totals, as
    /// step `n`: waited for when it ends within a minute; otherwise (the
    /// default daily periods) its totals so far.
    ///
    /// # Errors
    /// When the period cannot be read, or does not close in time.
    pub async fn period_closed(&mut self, n: u32, period_id: &str) -> anyhow::Result<()> {
        let t = Instant::now();
        let period = self.period(period_id).await.with_context(|| format!("period {period_id}"))?;
        let ends_at = millis(period.ends_at.as_ref());
        let ends_in = u64::try_from(ends_at - platform::db::now_millis()).map_or(Duration::ZERO, Duration::from_millis);
        if ends_in > LONGEST_WAIT {
            step(
                n,
                format!(
                    "settlement period {period_id} is OPEN until {} (SETTLEMENT_PERIOD is long; `./dev up --demo` closes one every 10 s); its totals so far:",
                    kernel::rfc3339(ends_at)
                ),
            );
            print_totals(&period.totals);
            return Ok(());
        }
        let closed = wait_for_close(self, period_id, ends_in + CLOSED_WITHIN).await?;
        let line = format!(
            "settlement period {period_id} [{} – {}] is {}, its totals final:",
            kernel::rfc3339(millis(closed.starts_at.as_ref())),
            kernel::rfc3339(millis(closed.ends_at.as_ref())),
            closed.status().as_str_name()
        );
        timed(n, line, t);
        print_totals(&closed.totals);
        Ok(())
    }

    async fn achieve(&mut self, code: &str, achievement: &str) -> Result<Option<mission::Mission>, tonic::Status> {
        let request = mission::AchieveMissionRequest {
            customer_id: self.customer_id.clone(),
            mission_code: code.to_owned(),
            achievement_id: Some(achievement.to_owned()),
        };
        Ok(self.missions.achieve_mission(authorized(request, &self.player)).await?.into_inner().mission)
    }

    /// Lists `sku` in `event_id`, again while gift has not learned the event
    /// (NOT_FOUND: it arrives on the MISSION stream within moments).
    async fn list_product(
        &mut self,
        sku: &str,
        event_id: &str,
    ) -> anyhow::Result<api::game::gift::v1::CatalogueProduct> {
        let listing = admin::ListProductRequest {
            sku: sku.to_owned(),
            name: "Demo sled".into(),
            price_points: 60,
            stock: 3,
            vendor_cost: 450,
            currency: "EUR".into(),
            programme_event_id: event_id.to_owned(),
        };
        let deadline = Instant::now() + SETTLE_WITHIN;
        loop {
            match self.catalogue.list_product(authorized(listing.clone(), &self.operator)).await {
                Ok(answer) => return answer.into_inner().product.context("no product returned"),
                Err(status) if status.code() == tonic::Code::NotFound && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => bail!("ListProduct refused: {:?} {}", status.code(), status.message()),
            }
        }
    }

    async fn restock(
        &mut self,
        sku: &str,
        units: i64,
        key: &str,
    ) -> anyhow::Result<api::game::gift::v1::CatalogueProduct> {
        let request = admin::RestockProductRequest { sku: sku.to_owned(), units, idempotency_key: key.to_owned() };
        self.catalogue
            .restock_product(authorized(request, &self.operator))
            .await
            .context("RestockProduct")?
            .into_inner()
            .product
            .context("no product returned")
    }

    async fn period(&mut self, period_id: &str) -> Result<settlement::SettlementPeriod, tonic::Status> {
        let request = settlement::GetPeriodRequest { period_id: period_id.to_owned() };
        let period = self.settlements.get_period(authorized(request, &self.operator)).await?.into_inner().period;
        period.ok_or_else(|| tonic::Status::internal("no period returned"))
    }
}

/// Polls GetPeriod until `period_id` is CLOSED, for at most `within`.
async fn wait_for_close(
    programme: &mut Programme,
    period_id: &str,
    within: Duration,
) -> anyhow::Result<settlement::SettlementPeriod> {
    let deadline = Instant::now() + within;
    loop {
        let period = programme.period(period_id).await.with_context(|| format!("period {period_id}"))?;
        if period.status() == settlement::PeriodStatus::Closed {
            return Ok(period);
        }
        if Instant::now() > deadline {
            bail!(
                "settlement period {period_id} ended at {} but was not closed within {}s of it: is the settlement service's closing job running (SETTLEMENT_CLOSE_INTERVAL_MS)?",
                kernel::rfc3339(millis(period.ends_at.as_ref())),
                CLOSED_WITHIN.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn print_totals(totals: &[settlement::PeriodTotal]) {
    if totals.is_empty() {
        println!("       (nothing recorded)");
    }
    for total in totals {
        println!(
            "       {:<8} {:<22} {} charge(s), {} reversal(s): {} {} owed",
            total.vendor,
            total.product_sku,
            total.charges,
            total.reversals,
            format_amount(total.amount),
            total.currency
        );
    }
}

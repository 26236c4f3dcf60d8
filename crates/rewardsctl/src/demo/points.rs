//! The demo's points: the player's two rewards of the demo mission pay for
//! the demo's product in one exchange (`WalletService.Exchange`), and the
//! vendor, told through gift's vendor simulation, cancels that order after
//! the fact: the exchange is REFUNDED and the points are back in both
//! entries.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api::game::gift::admin::v1::{self as admin, vendor_simulation_service_client::VendorSimulationServiceClient};
use api::game::wallet::v1 as wallet;
use dev_issuer::authorized;

use super::programme::Programme;
use super::{SETTLE_WITHIN, settle, step, timed};

/// How long after placing the demo's order the vendor cancels it.
const CANCEL_AFTER_MS: u32 = 1_000;

/// What the exchange came to.
pub(super) enum Fate {
    /// The order stands: one settlement (its charge).
    Placed,
    /// The vendor cancelled the order and the points came back: two
    /// settlements (the charge and its reversal).
    Refunded,
}

impl Fate {
    /// The settlements the order leaves.
    pub fn settlements(&self) -> usize {
        match self {
            Self::Placed => 1,
            Self::Refunded => 2,
        }
    }
}

impl Programme {
    /// From step `n`: the two rewards of the demo mission pay for the
    /// demo's product in one exchange; when gift at `gift_url` serves the
    /// vendor simulation (`up --demo` turns it on), the vendor cancels that
    /// order a second later and the points come back. Returns the next
    /// step's number and what became of the exchange.
    ///
    /// # Errors
    /// When a step fails or does not settle in time.
    pub async fn exchange_from_two_rewards(
        &mut self,
        mut n: u32,
        gift_url: &str,
        suffix: &str,
    ) -> anyhow::Result<(u32, Fate)> {
        let t = Instant::now();
        let achieved = self.achieved.clone();
        let (balance, worth) = settle("the demo mission's rewards to reach the wallet", || {
            let query = self.wallet();
            let achieved = achieved.clone();
            async move {
                let wallet = query.await?;
                let worth: Vec<String> = wallet
                    .entries
                    .iter()
                    .filter(|e| achieved.contains(&e.mission_id))
                    .map(|e| e.points.to_string())
                    .collect();
                (worth.len() == achieved.len()).then_some((wallet.balance, worth))
            }
        })
        .await?;
        timed(n, format!("the wallet holds both rewards ({} points): balance {balance}", worth.join(" + ")), t);
        n += 1;

        let vendor = self.tell_vendor(gift_url, CANCEL_AFTER_MS).await;
        match &vendor {
            Ok(()) => step(
                n,
                format!(
                    "the vendor (gift's simulation) is told to cancel orders {CANCEL_AFTER_MS} ms after placing them"
                ),
            ),
            Err(why) => step(n, format!("(no order is cancelled: {why})")),
        }
        n += 1;

        let t = Instant::now();
        let exchange = self.exchange(&format!("sled-{suffix}")).await;
        if vendor.is_ok() {
            // The plan is kept with the order: told to cancel nothing more,
            // the vendor still cancels this one.
            let _ = self.tell_vendor(gift_url, 0).await;
        }
        let placed = exchange?;
        let paid: Vec<String> =
            placed.reservations.iter().map(|r| format!("{} from reward {}", r.points, r.reward_id)).collect();
        let line = format!(
            "{} exchanges {} points for {}: exchange {} is {}, paid {}; gift order {}",
            self.customer_id,
            placed.price_points,
            placed.product_sku,
            placed.exchange_id,
            placed.status().as_str_name(),
            paid.join(" and "),
            placed.gift_order_id
        );
        timed(n, line, t);
        n += 1;
        if placed.status() != wallet::ExchangeStatus::Placed {
            bail!("exchange {} was not placed: {}", placed.exchange_id, placed.failure_reason);
        }
        if vendor.is_err() {
            return Ok((n, Fate::Placed));
        }

        let t = Instant::now();
        let exchange_id = placed.exchange_id.clone();
        let (refunded, balance) = settle("the cancelled order's points to come back", || {
            let query = self.wallet();
            let exchange_id = exchange_id.clone();
            async move {
                let wallet = query.await?;
                let exchange = wallet.exchanges.into_iter().find(|e| e.exchange_id == exchange_id)?;
                (exchange.status() == wallet::ExchangeStatus::Refunded).then_some((exchange, wallet.balance))
            }
        })
        .await?;
        let line = format!(
            "the vendor cancels order {} (\"{}\"): exchange {} is {}, its {} points back in both entries; balance {balance}",
            refunded.gift_order_id,
            refunded.cancel_reason,
            refunded.exchange_id,
            refunded.status().as_str_name(),
            refunded.price_points
        );
        timed(n, line, t);
        Ok((n + 1, Fate::Refunded))
    }

    /// Tells gift's vendor simulation at `gift_url` to cancel every order
    /// `cancel_after_ms` after placing it (none when 0).
    async fn tell_vendor(&self, gift_url: &str, cancel_after_ms: u32) -> Result<(), String> {
        let behaviour = admin::VendorBehaviour {
            cancel_percent: if cancel_after_ms > 0 { 100 } else { 0 },
            cancel_after_ms,
            ..admin::VendorBehaviour::default()
        };
        let endpoint = tonic::transport::Endpoint::from_shared(gift_url.to_owned())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(1));
        let channel = endpoint.connect().await.map_err(|_| format!("gift is not reachable at {gift_url}"))?;
        let request = admin::SetVendorBehaviourRequest { behaviour: Some(behaviour) };
        match VendorSimulationServiceClient::new(channel)
            .set_vendor_behaviour(authorized(request, &self.operator))
            .await
        {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::Unimplemented => Err(
                "gift does not serve the vendor simulation (GIFT_VENDOR_SIMULATION=true; `./dev up --demo` sets it)"
                    .to_owned(),
            ),
            Err(status) => Err(format!("the vendor simulation refused: {:?} {}", status.code(), status.message())),
        }
    }

    /// Exchanges points for the demo's product under `key`, again while the
    /// wallet has not learned its price (NOT_FOUND: gift's ProductListed
    /// reaches it within moments); waits while the exchange is PENDING.
    async fn exchange(&mut self, key: &str) -> anyhow::Result<wallet::Exchange> {
        let request = wallet::ExchangeRequest {
            customer_id: self.customer_id.clone(),
            product_sku: self.sku.clone(),
            idempotency_key: key.to_owned(),
        };
        let deadline = Instant::now() + SETTLE_WITHIN;
        let exchange = loop {
            match self.wallets.exchange(authorized(request.clone(), &self.player)).await {
                Ok(answer) => break answer.into_inner().exchange.context("no exchange returned")?,
                Err(status) if status.code() == tonic::Code::NotFound && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => bail!("Exchange refused: {:?} {}", status.code(), status.message()),
            }
        };
        if exchange.status() != wallet::ExchangeStatus::Pending {
            return Ok(exchange);
        }
        let exchange_id = exchange.exchange_id.clone();
        settle(&format!("exchange {exchange_id} to be decided"), || {
            let query = self.wallet();
            let exchange_id = exchange_id.clone();
            async move {
                let found = query.await?.exchanges.into_iter().find(|e| e.exchange_id == exchange_id)?;
                (found.status() != wallet::ExchangeStatus::Pending).then_some(found)
            }
        })
        .await
    }

    /// The player's wallet, or `None` while it cannot be read.
    fn wallet(&self) -> impl Future<Output = Option<wallet::Wallet>> + use<> {
        let mut wallets = self.wallets.clone();
        let request = authorized(wallet::GetWalletRequest { customer_id: self.customer_id.clone() }, &self.player);
        async move { wallets.get_wallet(request).await.ok()?.into_inner().wallet }
    }
}

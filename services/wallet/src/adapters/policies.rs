//! The wallet context's reactions to other contexts' events: rewards
//! allocated (issued into wallets), products listed (their prices kept),
//! orders cancelled (their points refunded).

use api::game::gift::v1::{GiftOrderCancelled, ProductListed};
use api::game::reward::v1::RewardAllocated;
use kernel::{CustomerId, Points};
use platform::consumer::{Policy, PolicyError, ReceivedEvent};
use platform::db::{DbConnection, now_millis};
use platform::events::{Event as _, GIFT_STREAM, REWARD_STREAM, StreamDef, millis};
use platform::store::DbTx;

use crate::app::{self, AllocatedReward, CancelledOrder, Refund};
use crate::domain::{MissionId, ProductSku, RewardExpiry, RewardId};

/// On RewardAllocated: put the reward in the player's wallet (RewardIssued),
/// expiring `expiry` after the end of the event it was earned in.
#[derive(Debug, Default)]
pub struct IssueReward {
    expiry: RewardExpiry,
}

impl IssueReward {
    /// The policy issuing rewards under `expiry`.
    pub fn new(expiry: RewardExpiry) -> Self {
        Self { expiry }
    }
}

impl Policy for IssueReward {
    fn name(&self) -> &'static str {
        "wallet-issue-reward"
    }

    fn stream(&self) -> StreamDef {
        REWARD_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![RewardAllocated::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let allocated: RewardAllocated = event.decode()?;
        let reward = AllocatedReward {
            reward_id: RewardId::parse(&allocated.reward_id).map_err(|e| malformed("reward_id", &e))?,
            mission_id: MissionId::parse(&allocated.mission_id).map_err(|e| malformed("mission_id", &e))?,
            customer_id: CustomerId::parse(&allocated.customer_id).map_err(|e| malformed("customer_id", &e))?,
            points: Points::new(allocated.points).map_err(|e| malformed("points", &e))?,
            event_ends_at: allocated.event_ends_at.as_ref().map(|at| millis(Some(at))),
        };
        // The effect joins the consumer's transaction, inbox and all.
        app::issue(&mut DbTx::new(conn), reward, self.expiry)?;
        Ok(())
    }
}

/// On gift's ProductListed: keep the product's price, so that an exchange
/// reserves it without asking gift.
#[derive(Debug, Default)]
pub struct KeepProductPrice;

impl Policy for KeepProductPrice {
    fn name(&self) -> &'static str {
        "wallet-keep-product-price"
    }

    fn stream(&self) -> StreamDef {
        GIFT_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![ProductListed::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let listed: ProductListed = event.decode()?;
        let product = listed.product.ok_or_else(|| PolicyError::Malformed("product missing".into()))?;
        let sku = ProductSku::parse(&product.sku).map_err(|e| malformed("product.sku", &e))?;
        let price = Points::new(product.price_points)
            .ok()
            .filter(|price| price.value() > 0)
            .ok_or_else(|| malformed("product.price_points", &product.price_points))?;
        app::keep_price(&mut DbTx::new(conn), &sku, price)?;
        Ok(())
    }
}

/// On gift's GiftOrderCancelled: refund the exchange that paid for the
/// order, once (the inbox, and the exchange's own PLACED → REFUNDED).
#[derive(Debug, Default)]
pub struct RefundPoints;

impl Policy for RefundPoints {
    fn name(&self) -> &'static str {
        "wallet-refund-points"
    }

    fn stream(&self) -> StreamDef {
        GIFT_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![GiftOrderCancelled::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let cancelled: GiftOrderCancelled = event.decode()?;
        let order = CancelledOrder {
            gift_key: cancelled.idempotency_key,
            gift_order_id: cancelled.order_id,
            reason: cancelled.reason,
        };
        // The effect joins the consumer's transaction, inbox and all.
        match app::refund(&mut DbTx::new(conn), &order, now_millis())? {
            Refund::Refunded | Refund::AlreadySettled => {}
            // Not an order this wallet paid for (another system's, or one
            // from before the wallet kept exchanges): nothing to give back.
            Refund::NoExchange => tracing::warn!(
                gift_order_id = %order.gift_order_id,
                idempotency_key = %order.gift_key,
                "a cancelled order no exchange paid for"
            ),
        }
        Ok(())
    }
}

fn malformed(field: &str, e: &dyn std::fmt::Display) -> PolicyError {
    PolicyError::Malformed(format!("{field} {e}"))
}

//! The wallet's client of the gift context: the one synchronous
//! service-to-service call. Every answer is classified for the saga: an
//! order placed, a definite refusal (the reward stays untouched), or an
//! unknown outcome that must be re-driven with the same idempotency key.

use std::time::{Duration, Instant};

use api::game::gift::v1::{self as pb, gift_service_client::GiftServiceClient};
use platform::resilience::{
    CircuitBreaker, RETRY_AFTER_MS, ResilienceConfig, ResilientChannel, Retrier, never_sent, resilient_channel,
};
use tonic::transport::Endpoint;
use tonic::{Code, Status};

use crate::domain::{ExchangeTicket, GiftAnswer, WalletEntry};

/// Why the gift context placed no order, as the player will be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiftRefusal {
    /// The product does not exist.
    UnknownProduct(String),
    /// A rule of the gift context: not enough points, out of stock…
    Rejected(String),
    /// The request itself was refused as malformed.
    Invalid(String),
    /// Gift is unreachable, shedding load, or its circuit is open; nothing
    /// was placed. `retry_after` says when trying again makes sense.
    Busy { reason: String, retry_after: Option<Duration> },
}

/// The classified outcome of one exchange call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiftOutcome {
    Placed {
        gift_order_id: String,
    },
    Refused(GiftRefusal),
    /// The call may have placed an order; `reason` says why we cannot know.
    Unknown {
        reason: String,
    },
}

impl GiftOutcome {
    /// What the saga needs to know of the outcome.
    pub fn answer(&self) -> GiftAnswer {
        match self {
            Self::Placed { gift_order_id } => GiftAnswer::Placed { gift_order_id: gift_order_id.clone() },
            Self::Refused(GiftRefusal::Busy { .. }) => GiftAnswer::NotAsked,
            Self::Refused(_) => GiftAnswer::Refused,
            Self::Unknown { .. } => GiftAnswer::Unknown,
        }
    }

    /// Every result label of `rewards_exchanges_total`, created at zero when
    /// the wallet starts: a counter that first appears at 1 shows no
    /// `increase()`, so the first exchange of each result would be missed.
    pub const LABELS: [&'static str; 4] = ["exchanged", "busy", "refused", "unsettled"];

    /// The result label of `rewards_exchanges_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Placed { .. } => "exchanged",
            Self::Refused(GiftRefusal::Busy { .. }) => "busy",
            Self::Refused(_) => "refused",
            Self::Unknown { .. } => "unsettled",
        }
    }
}

/// A gRPC client of `game.gift.v1.GiftService`, behind the platform's
/// resilience stack (deadline, load shedding, circuit breaker) and retries.
#[derive(Debug, Clone)]
pub struct GiftClient {
    client: GiftServiceClient<ResilientChannel>,
    retrier: Retrier,
    breaker: CircuitBreaker,
}

impl GiftClient {
    /// A client of the gift service at `url`. Connects lazily: the wallet
    /// starts, and keeps issuing rewards, while gift is down.
    ///
    /// # Errors
    /// When `url` is not a valid URI.
    pub fn new(url: &str, config: &ResilienceConfig) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(1))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            .tcp_nodelay(true)
            .connect_lazy();
        let (channel, breaker) = resilient_channel(channel, "gift", config);
        Ok(Self { client: GiftServiceClient::new(channel), retrier: Retrier::new(config.retry.clone()), breaker })
    }

    /// The circuit breaker in front of gift.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Asks gift to exchange `entry` as `ticket` says, under the ticket's key,
    /// giving up by `deadline` (the player's, when one waits) at the latest.
    /// Retrying is safe: gift places at most one order per key.
    pub async fn exchange(
        &self,
        entry: &WalletEntry,
        ticket: &ExchangeTicket,
        deadline: Option<Instant>,
    ) -> GiftOutcome {
        let request = pb::ExchangeRequest {
            idempotency_key: ticket.idempotency_key(),
            customer_id: entry.customer_id.to_string(),
            reward_id: entry.reward_id.to_string(),
            product_sku: ticket.product.to_string(),
            points: entry.points.value(),
            mission_id: entry.mission_id.to_string(),
        };
        let answer = self
            .retrier
            .run(|| {
                let (mut client, mut request) = (self.client.clone(), tonic::Request::new(request.clone()));
                // Each attempt gets what is left; the stack's own deadline caps it.
                if let Some(deadline) = deadline {
                    request.set_timeout(deadline.saturating_duration_since(Instant::now()));
                }
                async move { client.exchange(request).await }
            })
            .await;
        match answer {
            Ok(response) => match response.into_inner().order {
                Some(order) if !order.order_id.is_empty() => GiftOutcome::Placed { gift_order_id: order.order_id },
                _ => GiftOutcome::Unknown { reason: "gift answered without an order".into() },
            },
            Err(status) => classify(&status),
        }
    }
}

/// Sorts a failed call into refused (definitely no order) or unknown.
pub fn classify(status: &Status) -> GiftOutcome {
    let message = status.message().to_owned();
    let busy = |reason: String| {
        let retry_after = status
            .metadata()
            .get(RETRY_AFTER_MS)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis);
        GiftOutcome::Refused(GiftRefusal::Busy { reason, retry_after })
    };
    match status.code() {
        Code::NotFound => GiftOutcome::Refused(GiftRefusal::UnknownProduct(message)),
        Code::FailedPrecondition | Code::AlreadyExists => GiftOutcome::Refused(GiftRefusal::Rejected(message)),
        Code::InvalidArgument | Code::OutOfRange => GiftOutcome::Refused(GiftRefusal::Invalid(message)),
        // Shed before any work, by gift or by our own stack.
        Code::ResourceExhausted => busy(message),
        Code::Unavailable if never_sent(status) => busy(message),
        // Timeouts, broken connections and server faults: the order may exist.
        _ => GiftOutcome::Unknown { reason: format!("{:?}: {message}", status.code()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_is_counted_under_a_result_created_at_start() {
        let outcomes = [
            GiftOutcome::Placed { gift_order_id: "o".into() },
            GiftOutcome::Refused(GiftRefusal::Busy { reason: "open".into(), retry_after: None }),
            GiftOutcome::Refused(GiftRefusal::Rejected("out of stock".into())),
            GiftOutcome::Refused(GiftRefusal::UnknownProduct("X".into())),
            GiftOutcome::Refused(GiftRefusal::Invalid("bad".into())),
            GiftOutcome::Unknown { reason: "timeout".into() },
        ];
        for outcome in &outcomes {
            assert!(GiftOutcome::LABELS.contains(&outcome.label()), "{outcome:?} is counted as {}", outcome.label());
        }
    }
}

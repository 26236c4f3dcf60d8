//! The wallet's client of the gift context: the one synchronous
//! service-to-service call. Every answer is classified for the saga: an
//! order placed, a definite refusal (the points go back), or an
//! unknown outcome that must be re-driven with the same idempotency key.

use std::time::{Duration, Instant};

use api::game::gift::v1::{self as pb, gift_service_client::GiftServiceClient};
use platform::resilience::{
    CircuitBreaker, RETRY_AFTER_MS, ResilienceConfig, ResilientChannel, Retrier, never_sent, resilient_channel,
};
use tonic::transport::Endpoint;
use tonic::{Code, Status};

use crate::domain::{Exchange, GiftPayer};
use crate::ports::{GiftExchange, GiftOutcome, GiftRefusal};

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
}

impl GiftExchange for GiftClient {
    // Retrying is safe: gift places at most one order per key.
    async fn exchange(&self, exchange: &Exchange, deadline: Option<Instant>) -> GiftOutcome {
        // An exchange begun before points added up is asked for as it was
        // then: gift matches a repeated key against what it was first asked.
        let (reward_id, exchange_id) = match (exchange.payer, exchange.reservations.as_slice()) {
            (GiftPayer::Reward, [only]) => (only.reward_id.to_string(), String::new()),
            _ => (String::new(), exchange.id.to_string()),
        };
        let request = pb::ExchangeRequest {
            idempotency_key: exchange.gift_key.to_string(),
            customer_id: exchange.customer_id.to_string(),
            reward_id,
            product_sku: exchange.product.to_string(),
            points: exchange.price.value(),
            mission_id: exchange.mission_id.to_string(),
            exchange_id,
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

    fn with_retry_after(mut status: Status, millis: &str) -> Status {
        status.metadata_mut().insert(RETRY_AFTER_MS, millis.parse().unwrap_or_else(|_| unreachable!()));
        status
    }

    #[test]
    fn gifts_own_refusals_say_no_order_exists() {
        assert_eq!(
            classify(&Status::not_found("no product X")),
            GiftOutcome::Refused(GiftRefusal::UnknownProduct("no product X".into()))
        );
        assert_eq!(
            classify(&Status::failed_precondition("out of stock")),
            GiftOutcome::Refused(GiftRefusal::Rejected("out of stock".into()))
        );
        assert_eq!(
            classify(&Status::invalid_argument("points: must be positive")),
            GiftOutcome::Refused(GiftRefusal::Invalid("points: must be positive".into()))
        );
    }

    #[test]
    fn a_shed_call_or_one_that_never_left_is_busy_with_its_retry_after() {
        let shed = with_retry_after(Status::resource_exhausted("64 calls to gift already in flight"), "250");
        assert_eq!(
            classify(&shed),
            GiftOutcome::Refused(GiftRefusal::Busy {
                reason: "64 calls to gift already in flight".into(),
                retry_after: Some(Duration::from_millis(250)),
            })
        );
        let unreachable = Status::unavailable("no healthy upstream");
        assert!(matches!(classify(&unreachable), GiftOutcome::Refused(GiftRefusal::Busy { retry_after: None, .. })));
    }

    #[test]
    fn a_timeout_or_a_call_lost_after_sending_leaves_the_outcome_unknown() {
        for status in [
            Status::deadline_exceeded("deadline"),
            Status::cancelled("Timeout expired"),
            Status::unavailable("connection reset"),
            Status::internal("boom"),
        ] {
            assert!(matches!(classify(&status), GiftOutcome::Unknown { .. }), "{status:?}");
        }
    }
}

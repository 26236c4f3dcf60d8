//! The wallet's client of the gift context: the one synchronous
//! service-to-service call. Every answer is classified for the saga: an
//! order placed, a definite refusal (the reward stays untouched), or an
//! unknown outcome that must be re-driven with the same idempotency key.

use std::time::Duration;

use api::game::gift::v1::{self as pb, gift_service_client::GiftServiceClient};
use tonic::transport::{Channel, Endpoint};
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
    /// Gift is unreachable or shedding load; nothing was placed.
    Busy(String),
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
            Self::Refused(_) => GiftAnswer::Refused,
            Self::Unknown { .. } => GiftAnswer::Unknown,
        }
    }
}

/// A gRPC client of `game.gift.v1.GiftService`.
#[derive(Debug, Clone)]
pub struct GiftClient {
    client: GiftServiceClient<Channel>,
    timeout: Duration,
}

impl GiftClient {
    /// A client of the gift service at `url`. Connects lazily: the wallet
    /// starts, and keeps issuing rewards, while gift is down.
    ///
    /// # Errors
    /// When `url` is not a valid URI.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(1))
            .timeout(timeout)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Self { client: GiftServiceClient::new(channel), timeout })
    }

    /// Asks gift to exchange `entry` as `ticket` says, under the ticket's key.
    pub async fn exchange(&self, entry: &WalletEntry, ticket: &ExchangeTicket) -> GiftOutcome {
        let mut request = tonic::Request::new(pb::ExchangeRequest {
            idempotency_key: ticket.idempotency_key(),
            customer_id: entry.customer_id.to_string(),
            reward_id: entry.reward_id.to_string(),
            product_sku: ticket.product.to_string(),
            points: entry.points.value(),
            mission_id: entry.mission_id.to_string(),
        });
        request.set_timeout(self.timeout);
        match self.client.clone().exchange(request).await {
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
    match status.code() {
        Code::NotFound => GiftOutcome::Refused(GiftRefusal::UnknownProduct(message)),
        Code::FailedPrecondition | Code::AlreadyExists => GiftOutcome::Refused(GiftRefusal::Rejected(message)),
        Code::InvalidArgument | Code::OutOfRange => GiftOutcome::Refused(GiftRefusal::Invalid(message)),
        // Shed before any work: gift says so explicitly.
        Code::ResourceExhausted => GiftOutcome::Refused(GiftRefusal::Busy(message)),
        Code::Unavailable if never_sent(status) => GiftOutcome::Refused(GiftRefusal::Busy(message)),
        // Timeouts, broken connections and server faults: the order may exist.
        _ => GiftOutcome::Unknown { reason: format!("{:?}: {message}", status.code()) },
    }
}

/// Whether the call failed before its request could reach gift: the
/// connection was refused, so no order can have been placed.
fn never_sent(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound)
        {
            return true;
        }
        if error.to_string().contains("tcp connect error") {
            return true;
        }
        source = error.source();
    }
    false
}

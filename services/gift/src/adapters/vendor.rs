//! The gift context as a third-party vendor under strain: it protects itself
//! with a bounded number of exchanges in flight (beyond it, RESOURCE_EXHAUSTED
//! before any work), and an operator can make it slow, failing or cancelling
//! orders after the fact on purpose through
//! `game.gift.admin.v1.VendorSimulationService` — to show the wallet's
//! deadline, circuit breaker, re-driver and refunds at work. That API is
//! served only when `GIFT_VENDOR_SIMULATION` says so, and answers operators
//! only. The use cases know only the vendor's plan to cancel an order,
//! which they keep with it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use api::game::gift::admin::v1::{self as pb, vendor_simulation_service_server::VendorSimulationService};
use platform::caller::{caller, require_operator};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};

use crate::domain::CancellationPlan;

/// The longest simulated latency accepted, in milliseconds.
const MAX_LATENCY_MS: u32 = 60_000;

/// The longest delay before a simulated cancellation, in milliseconds: a day.
const MAX_CANCEL_AFTER_MS: u32 = 86_400_000;

/// What the simulated vendor says when it cancels an order.
pub const CANCEL_REASON: &str = "the vendor cancelled the order (simulated): the item could not be supplied";

/// How the vendor behaves; all zero is healthy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Behaviour {
    pub latency: Duration,
    pub latency_after_commit: Duration,
    pub failure_percent: u32,
    /// Share of placed orders cancelled `cancel_after` later.
    pub cancel_percent: u32,
    pub cancel_after: Duration,
}

/// The vendor's capacity and simulated behaviour, shared by the exchange
/// path and the admin API.
#[derive(Debug, Clone)]
pub struct Vendor {
    capacity: Arc<Semaphore>,
    max_in_flight: usize,
    behaviour: Arc<RwLock<Behaviour>>,
}

impl Vendor {
    /// A healthy vendor serving at most `max_in_flight` exchanges at once.
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            capacity: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            behaviour: Arc::new(RwLock::new(Behaviour::default())),
        }
    }

    fn behaviour(&self) -> Behaviour {
        *self.behaviour.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a place for one exchange, or sheds it.
    ///
    /// # Errors
    /// RESOURCE_EXHAUSTED when every place is taken: no work was done.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.capacity).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "gift is at capacity ({} exchanges in flight); try again later",
                self.max_in_flight
            ))
        })
    }

    /// The simulated delay and failure before an exchange does any work.
    ///
    /// # Errors
    /// UNAVAILABLE for the simulated share of failing calls.
    pub async fn before_exchange(&self) -> Result<(), Status> {
        let behaviour = self.behaviour();
        if !behaviour.latency.is_zero() {
            tokio::time::sleep(behaviour.latency).await;
        }
        if behaviour.failure_percent > 0 && rand::random_range(0..100) < behaviour.failure_percent {
            return Err(Status::unavailable("the gift vendor is failing (simulated)"));
        }
        Ok(())
    }

    /// Whether the vendor will cancel the order it is about to place, and
    /// when: the simulated share of orders.
    pub fn cancellation_plan(&self) -> Option<CancellationPlan> {
        let behaviour = self.behaviour();
        if behaviour.cancel_percent == 0 || rand::random_range(0..100) >= behaviour.cancel_percent {
            return None;
        }
        Some(CancellationPlan {
            after_ms: i64::try_from(behaviour.cancel_after.as_millis()).unwrap_or(i64::MAX),
            reason: CANCEL_REASON.to_owned(),
        })
    }

    /// The simulated delay between the committed order and the answer.
    pub async fn after_commit(&self) {
        let latency = self.behaviour().latency_after_commit;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    fn in_flight(&self) -> usize {
        self.max_in_flight - self.capacity.available_permits()
    }
}

/// Serves `game.gift.admin.v1.VendorSimulationService`.
#[derive(Debug, Clone)]
pub struct VendorSimulationGrpc {
    vendor: Vendor,
}

impl VendorSimulationGrpc {
    /// The admin API over `vendor`.
    pub fn new(vendor: Vendor) -> Self {
        Self { vendor }
    }
}

fn to_pb(behaviour: Behaviour) -> pb::VendorBehaviour {
    let millis = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    pb::VendorBehaviour {
        latency_ms: millis(behaviour.latency),
        latency_after_commit_ms: millis(behaviour.latency_after_commit),
        failure_percent: behaviour.failure_percent,
        cancel_percent: behaviour.cancel_percent,
        cancel_after_ms: millis(behaviour.cancel_after),
    }
}

fn from_pb(behaviour: Option<pb::VendorBehaviour>) -> Result<Behaviour, Status> {
    let behaviour = behaviour.unwrap_or_default();
    let latency = |field: &str, ms: u32| {
        if ms > MAX_LATENCY_MS {
            Err(Status::invalid_argument(format!("behaviour.{field}: must be at most {MAX_LATENCY_MS}")))
        } else {
            Ok(Duration::from_millis(u64::from(ms)))
        }
    };
    let percent = |field: &str, value: u32| {
        if value > 100 {
            Err(Status::invalid_argument(format!("behaviour.{field}: must be at most 100")))
        } else {
            Ok(value)
        }
    };
    if behaviour.cancel_after_ms > MAX_CANCEL_AFTER_MS {
        return Err(Status::invalid_argument(format!(
            "behaviour.cancel_after_ms: must be at most {MAX_CANCEL_AFTER_MS}"
        )));
    }
    Ok(Behaviour {
        latency: latency("latency_ms", behaviour.latency_ms)?,
        latency_after_commit: latency("latency_after_commit_ms", behaviour.latency_after_commit_ms)?,
        failure_percent: percent("failure_percent", behaviour.failure_percent)?,
        cancel_percent: percent("cancel_percent", behaviour.cancel_percent)?,
        cancel_after: Duration::from_millis(u64::from(behaviour.cancel_after_ms)),
    })
}

#[tonic::async_trait]
impl VendorSimulationService for VendorSimulationGrpc {
    async fn set_vendor_behaviour(
        &self,
        request: Request<pb::SetVendorBehaviourRequest>,
    ) -> Result<Response<pb::SetVendorBehaviourResponse>, Status> {
        // Whoever may slow gift down may deny every player their exchanges.
        require_operator(&caller(&request)?)?;
        let behaviour = from_pb(request.into_inner().behaviour)?;
        *self.vendor.behaviour.write().unwrap_or_else(std::sync::PoisonError::into_inner) = behaviour;
        tracing::warn!(?behaviour, "vendor behaviour changed");
        Ok(Response::new(pb::SetVendorBehaviourResponse { behaviour: Some(to_pb(behaviour)) }))
    }

    async fn get_vendor_behaviour(
        &self,
        request: Request<pb::GetVendorBehaviourRequest>,
    ) -> Result<Response<pb::GetVendorBehaviourResponse>, Status> {
        require_operator(&caller(&request)?)?;
        Ok(Response::new(pb::GetVendorBehaviourResponse {
            behaviour: Some(to_pb(self.vendor.behaviour())),
            exchanges_in_flight: u32::try_from(self.vendor.in_flight()).unwrap_or(u32::MAX),
            max_exchanges_in_flight: u32::try_from(self.vendor.max_in_flight).unwrap_or(u32::MAX),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_out_of_range_are_refused_naming_the_field() {
        let too_slow = pb::VendorBehaviour { latency_ms: 60_001, ..Default::default() };
        assert_eq!(from_pb(Some(too_slow)).unwrap_err().message(), "behaviour.latency_ms: must be at most 60000");
        let too_failing = pb::VendorBehaviour { failure_percent: 101, ..Default::default() };
        assert_eq!(from_pb(Some(too_failing)).unwrap_err().message(), "behaviour.failure_percent: must be at most 100");
        let too_cancelling = pb::VendorBehaviour { cancel_percent: 101, ..Default::default() };
        assert_eq!(
            from_pb(Some(too_cancelling)).unwrap_err().message(),
            "behaviour.cancel_percent: must be at most 100"
        );
        let too_late = pb::VendorBehaviour { cancel_after_ms: 86_400_001, ..Default::default() };
        assert_eq!(
            from_pb(Some(too_late)).unwrap_err().message(),
            "behaviour.cancel_after_ms: must be at most 86400000"
        );
        assert_eq!(from_pb(None).unwrap(), Behaviour::default());
    }

    #[test]
    fn the_vendor_plans_to_cancel_its_share_of_orders_after_the_delay() {
        let vendor = Vendor::new(1);
        assert_eq!(vendor.cancellation_plan(), None, "a healthy vendor cancels nothing");
        let cancelling = pb::VendorBehaviour { cancel_percent: 100, cancel_after_ms: 1_500, ..Default::default() };
        *vendor.behaviour.write().unwrap() = from_pb(Some(cancelling)).unwrap();
        let plan = vendor.cancellation_plan().unwrap();
        assert_eq!((plan.after_ms, plan.reason.as_str()), (1_500, CANCEL_REASON));
        assert_eq!(to_pb(vendor.behaviour()), cancelling, "read back as set");
    }

    #[test]
    fn beyond_its_capacity_the_vendor_sheds_exchanges() {
        let vendor = Vendor::new(2);
        let first = vendor.admit().unwrap();
        let _second = vendor.admit().unwrap();
        let shed = vendor.admit().unwrap_err();
        assert_eq!(shed.code(), tonic::Code::ResourceExhausted);
        assert_eq!(vendor.in_flight(), 2);
        drop(first);
        assert!(vendor.admit().is_ok());
    }
}

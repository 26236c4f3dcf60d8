//! The gift context as a third-party vendor under strain: it protects itself
//! with a bounded number of exchanges in flight (beyond it, RESOURCE_EXHAUSTED
//! before any work), and an operator can make it slow or failing on purpose
//! through `game.gift.admin.v1.VendorSimulationService` — to show the
//! wallet's deadline, circuit breaker and re-driver at work. That API is
//! served only when `GIFT_VENDOR_SIMULATION` says so, and answers operators
//! only. Neither the domain nor the use cases know of any of this.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use api::game::gift::admin::v1::{self as pb, vendor_simulation_service_server::VendorSimulationService};
use platform::caller::{caller, require_operator};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};

/// The longest simulated latency accepted, in milliseconds.
const MAX_LATENCY_MS: u32 = 60_000;

/// How the vendor behaves; all zero is healthy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Behaviour {
    pub latency: Duration,
    pub latency_after_commit: Duration,
    pub failure_percent: u32,
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
    if behaviour.failure_percent > 100 {
        return Err(Status::invalid_argument("behaviour.failure_percent: must be at most 100"));
    }
    Ok(Behaviour {
        latency: latency("latency_ms", behaviour.latency_ms)?,
        latency_after_commit: latency("latency_after_commit_ms", behaviour.latency_after_commit_ms)?,
        failure_percent: behaviour.failure_percent,
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
        assert_eq!(from_pb(None).unwrap(), Behaviour::default());
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

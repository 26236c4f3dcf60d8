//! Adapters named by technology: gRPC in (players' and operators'), diesel
//! store, the system clock, the published form of events, the policy that
//! keeps the programme's events, the vendor's capacity and simulated
//! behaviour.

pub mod catalogue_grpc;
pub mod clock;
pub mod events;
pub mod grpc;
pub mod policies;
pub mod store;
pub mod vendor;

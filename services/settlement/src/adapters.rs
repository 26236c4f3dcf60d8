//! Adapters named by technology: gRPC in, diesel store, JetStream policies
//! in, the system clock, and the published form of events.

pub mod clock;
pub mod events;
pub mod grpc;
pub mod policies;
pub mod store;

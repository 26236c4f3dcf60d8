//! Adapters named by technology: gRPC in, diesel store, JetStream policies
//! in, and the published form of events.

pub mod events;
pub mod grpc;
pub mod policies;
pub mod store;

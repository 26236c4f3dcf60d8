//! Adapters named by technology: gRPC in (players' missions, operators'
//! programme), diesel store, the system clock, JetStream policies in, and the
//! published form of events.

pub mod clock;
pub mod events;
pub mod grpc;
pub mod policies;
pub mod programme_grpc;
pub mod store;

//! Adapters named by technology: gRPC in, diesel store, the published form
//! of events, the vendor's capacity and simulated behaviour. Gift reacts to
//! no other context's events; the outbox relay publishes its own.

pub mod events;
pub mod grpc;
pub mod store;
pub mod vendor;

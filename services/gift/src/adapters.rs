//! Adapters named by technology: gRPC in, diesel store. Gift reacts to no
//! other context's events; the outbox relay publishes its own.

pub mod grpc;
pub mod store;

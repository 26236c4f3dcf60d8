//! Adapters named by technology: gRPC in, diesel store, JetStream policies in.

pub mod grpc;
pub mod policies;
pub mod store;

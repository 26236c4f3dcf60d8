//! Adapters named by technology: gRPC in, the gift gRPC client out, the
//! diesel store, JetStream policies in, and the published form of events.

pub mod events;
pub mod gift_client;
pub mod grpc;
pub mod policies;
pub mod store;

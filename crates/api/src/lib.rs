//! The contracts of the game rewards mesh, generated from `proto/`.
//!
//! One module per bounded context and version, mirroring the protobuf
//! packages: `api::game::mission::v1`, `api::game::wallet::v1`, … Each holds
//! the service stubs (`*_service_client`, `*_service_server`) and the event
//! messages the context publishes on NATS JetStream.
//!
//! [`catalogue`] names the services themselves: ports, gRPC services,
//! health entries.

#![allow(missing_docs, clippy::all, unused_qualifications, missing_debug_implementations)]

include!(concat!(env!("OUT_DIR"), "/contracts.rs"));

/// The encoded `FileDescriptorSet` of every contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

pub mod catalogue;

/// The fully qualified names of the gRPC services behind the gateway, in
/// the catalogue's order.
pub const SERVICE_NAMES: [&str; catalogue::SERVICES.len()] = {
    let mut names = [""; catalogue::SERVICES.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = catalogue::SERVICES[i].grpc_service;
        i += 1;
    }
    names
};

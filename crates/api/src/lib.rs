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
/// the catalogue's order: each service's own, then those it also serves.
pub const SERVICE_NAMES: [&str; catalogue::GRPC_SERVICES] = {
    let mut names = [""; catalogue::GRPC_SERVICES];
    let (mut i, mut n) = (0, 0);
    while i < catalogue::SERVICES.len() {
        names[n] = catalogue::SERVICES[i].grpc_service;
        n += 1;
        let mut j = 0;
        while j < catalogue::SERVICES[i].also_serves.len() {
            names[n] = catalogue::SERVICES[i].also_serves[j];
            n += 1;
            j += 1;
        }
        i += 1;
    }
    names
};

//! The contracts of the game rewards mesh, generated from `proto/`.
//!
//! One module per bounded context and version, mirroring the protobuf
//! packages: `api::game::mission::v1`, `api::game::wallet::v1`, … Each holds
//! the service stubs (`*_service_client`, `*_service_server`) and the event
//! messages the context publishes on NATS JetStream.

#![allow(missing_docs, clippy::all, unused_qualifications, missing_debug_implementations)]

include!(concat!(env!("OUT_DIR"), "/contracts.rs"));

/// The encoded `FileDescriptorSet` of every contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// The fully qualified names of the gRPC services the gateway routes, by
/// package: the player-facing ones, and the operators' programme.
pub const SERVICE_NAMES: &[&str] = &[
    "game.mission.v1.MissionService",
    "game.programme.v1.ProgrammeService",
    "game.reward.v1.RewardService",
    "game.wallet.v1.WalletService",
    "game.gift.v1.GiftService",
    "game.mypage.v1.MyPageService",
    "game.settlement.v1.SettlementService",
];

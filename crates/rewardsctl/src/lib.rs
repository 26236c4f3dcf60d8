//! `rewardsctl`: run the whole mesh on one machine, play the player's story
//! against it, prove its delivery guarantees under chaos, and measure it.
//!
//! - [`attack`]: `rewardsctl attack`, the edge under hostile load beside a canary player.
//! - [`args`]: reading a command's `--name value` options.
//! - [`mesh`]: the processes of the mesh (services in replicas, the gateway,
//!   nats-server), their ports and environment, started supervised.
//! - [`supervisor`]: keeps one process running; kills or replaces it on request.
//! - [`token`]: `rewardsctl token`, a development bearer token for grpcurl.
//! - [`up`]: `rewardsctl up`, the mesh for a developer, until Ctrl-C.
//! - [`prometheus`]: a real Prometheus scraping every process of the mesh.
//! - [`demo`]: `rewardsctl demo`, the player's story through the gateway.
//! - [`chaos`]: `rewardsctl chaos`, load and random SIGKILLs, then the
//!   invariants checked from the stores and the APIs.
//! - [`overload`]: `rewardsctl overload`, the circuit breaker against a slowed gift.
//! - [`dead_letters`]: `rewardsctl dead-letters`, list and re-drive.
//! - [`bench`]: `rewardsctl bench`, the benchmarks (backlog drain, …).
//! - [`rolling`]: a rolling update of a replicated service.
//! - [`stores`]: read-only views of the services' SQLite files.

pub mod args;
pub mod attack;
pub mod bench;
pub mod chaos;
pub mod dead_letters;
pub mod demo;
pub mod mesh;
pub mod overload;
pub mod prometheus;
pub mod rolling;
pub mod stores;
pub mod supervisor;
pub mod token;
pub mod up;

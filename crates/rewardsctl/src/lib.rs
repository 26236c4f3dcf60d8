//! `rewardsctl`: run the whole mesh on one machine, play the player's story
//! against it, prove its delivery guarantees under chaos, and measure it.
//!
//! - [`attack`]: `rewardsctl attack`, the edge under hostile load beside a canary player.
//! - [`cli`]: the command line, one subcommand per command module.
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
//!
//! Shared plumbing of the commands:
//! - [`clients`]: the gateway's clients as players use them, and the retry rule.
//! - [`resources`]: each process's memory and CPU time, from `/proc`.
//! - [`runs`]: a run's own directory under `.run/`, named by its UTC time.
//! - `loadgen`: the latency histogram every printed percentile comes from,
//!   and the mission catalogue as the mission service serves it.

pub mod attack;
pub mod bench;
pub mod chaos;
pub mod cli;
pub mod clients;
pub mod dead_letters;
pub mod demo;
pub mod mesh;
pub mod overload;
pub mod prometheus;
pub mod resources;
pub mod rolling;
pub mod runs;
pub mod stores;
pub mod supervisor;
pub mod token;
pub mod up;

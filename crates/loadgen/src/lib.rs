//! An open-loop gRPC load generator.
//!
//! Calls start on a schedule of intended start times fixed before the run
//! ([`schedule`]), not when an earlier call ends, and each latency is taken
//! from the intended start: a stalled server shows up as the latency its
//! callers would have seen, instead of as fewer samples (coordinated
//! omission). Latencies go into HDR histograms ([`latency`]).
//!
//! - [`schedule`]: when each call of a fixed-rate run should start.
//! - [`latency`]: HDR histograms of microseconds and their percentiles.
//! - [`run`]: the open-loop driver, and a closed-loop one for peak throughput.
//! - [`grpc`]: channels, metadata (`authorization: Bearer …`), and a codec
//!   for pre-encoded protobuf bodies, so any unary method can be driven.
//! - [`catalogue`]: the mission catalogue, asked of the mission service.
//! - [`methods`]: the built-in calls of the `loadgen` binary.
//! - [`echo`]: a bare tonic server (`grpc.health.v1` only), the baseline
//!   every service call is compared with.

pub mod catalogue;
pub mod echo;
pub mod grpc;
pub mod latency;
pub mod methods;
pub mod run;
pub mod schedule;

pub use catalogue::Catalogue;
pub use latency::{Latencies, Summary};
pub use run::{ClosedLoop, OpenLoop, Outcome, Report};
pub use schedule::Schedule;

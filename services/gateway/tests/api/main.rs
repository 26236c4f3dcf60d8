//! The gateway in front of real services: two mission replicas sharing one
//! store and one broker, in this process.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod balancing;
mod browser;
mod edge;
mod helpers;

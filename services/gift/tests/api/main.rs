//! The gift service against a real nats-server and a real store.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod catalogue;
mod concurrency;
mod exchange;
mod helpers;
mod orders;
mod refusals;
mod vendor_simulation;

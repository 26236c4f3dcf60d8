//! The gift service against a real nats-server and a real store.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod admin_catalogue;
mod cancellations;
mod catalogue;
mod concurrency;
mod exchange;
mod helpers;
mod migration;
mod orders;
mod refusals;
mod restock_keys;
mod vendor_simulation;

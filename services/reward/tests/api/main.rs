//! The reward service against a real nats-server and a real store.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod allocate;
mod busy_store;
mod cluster;
mod crash;
mod event_end;
mod fuzz;
mod get_reward;
mod helpers;
mod outage;
mod poison;
mod postgres;
mod processes;
mod replicas;
mod track_expiry;
mod track_wallet;
mod unlisted_consumer;

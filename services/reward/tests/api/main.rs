//! The reward service against a real nats-server and a real store.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod allocate;
mod get_reward;
mod helpers;
mod postgres;
mod track_wallet;

//! The mission service against a real nats-server and a real store.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod achieve;
mod crash;
mod helpers;
mod programme;
mod record_reward;
mod replicas;
mod slots;

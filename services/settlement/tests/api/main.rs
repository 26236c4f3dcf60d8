//! The settlement service against a real nats-server and a real store.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod closing;
mod helpers;
mod list;
mod migration;
mod periods;
mod postgres;
mod race;
mod record;
mod replicas;
mod vendors;

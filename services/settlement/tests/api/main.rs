//! The settlement service against a real nats-server and a real store.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod helpers;
mod list;
mod postgres;
mod record;
mod replicas;

//! The my page service against a real nats-server and a real store.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod exchanges;
mod helpers;
mod merge;
mod postgres;
mod read;
mod replicas;
mod watch;

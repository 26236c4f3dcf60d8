//! The wallet service against a real nats-server and a real store. The
//! exchange with a running gift service is covered by the system tests.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod exchange_without_gift;
mod expiry;
mod helpers;
mod issue;
mod replicas;

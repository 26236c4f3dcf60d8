//! The wallet service against a real nats-server and a real store; its
//! exchanges and refunds against a real gift service too (`points`). The
//! whole mesh, through the gateway, is covered by the system tests.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod exchange_without_gift;
mod expiry;
mod helpers;
mod issue;
mod migration;
mod points;
mod replicas;

//! The player's story and the mesh's promises, through the gateway, against
//! every real service, a real nats-server and real stores.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod authorization;
mod bad_input;
mod broker_crash;
mod browser;
mod clients;
mod exchange_under_pressure;
mod fault_isolation;
mod fuzz;
mod python_client;
mod story;

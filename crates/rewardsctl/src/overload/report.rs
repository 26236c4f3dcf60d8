//! What an overload run saw per phase, and the verdict.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use loadgen::Latencies;

/// The phases of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Healthy,
    Slowed,
    Recovered,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Slowed => "gift slowed",
            Self::Recovered => "gift recovered",
        }
    }
}

/// What one exchange call came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    /// EXCHANGED: the player has the gift.
    Exchanged,
    /// UNAVAILABLE with `retry-after-ms`: the fallback, "try again later".
    TurnedAway,
    /// UNAVAILABLE "stays pending": gift did not answer within the deadline;
    /// the re-driver settles it.
    TimedOut,
    /// Anything else (a bug, for this run).
    Other,
}

/// The latencies the players saw, per phase and answer.
pub type Answers = BTreeMap<(Phase, Answer), Latencies>;

/// How many answers of `answer` in `phase`.
pub fn count(answers: &Answers, phase: Phase, answer: Answer) -> u64 {
    answers.get(&(phase, answer)).map_or(0, Latencies::len)
}

/// What the run saw and found.
#[derive(Debug, Default)]
pub struct Report {
    pub run_dir: PathBuf,
    /// Per phase and answer, the latencies the players saw.
    pub answers: Answers,
    /// Missions achieved (and confirmed) per phase.
    pub missions: BTreeMap<Phase, usize>,
    /// Seconds into the slowed phase when the breaker was first seen open.
    pub opened_after: Option<Duration>,
    /// Seconds into the recovered phase when the breaker was seen closed again.
    pub closed_after: Option<Duration>,
    /// Broken promises; empty when the run passed.
    pub violations: Vec<String>,
    /// Exchanges refunded after the vendor cancelled their order.
    pub refunds: usize,
}

impl Report {
    /// Whether the breaker opened and closed again and every promise held.
    pub fn passed(&self) -> bool {
        self.opened_after.is_some() && self.closed_after.is_some() && self.violations.is_empty()
    }

    /// Every answer matching `which`, in one histogram.
    fn merged(&self, which: impl Fn(Phase, Answer) -> bool) -> Latencies {
        let mut all = Latencies::new();
        for ((phase, answer), latencies) in &self.answers {
            if which(*phase, *answer) {
                all.merge(latencies);
            }
        }
        all
    }

    /// Prints the figures per phase and the verdict.
    pub fn print(&self) {
        let ms = |l: &Latencies, q: f64| if l.is_empty() { "-".to_owned() } else { format!("{:.1}", l.quantile_ms(q)) };
        println!("\n== Exchange under pressure ==");
        println!(
            "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
            "phase", "missions", "exchanged", "timed out", "turned", "p50 ms", "p99 ms"
        );
        println!(
            "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
            "", "achieved", "", "", "away", "(answers)", "(answers)"
        );
        for phase in [Phase::Healthy, Phase::Slowed, Phase::Recovered] {
            let all = self.merged(|p, _| p == phase);
            println!(
                "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
                phase.label(),
                self.missions.get(&phase).copied().unwrap_or_default(),
                count(&self.answers, phase, Answer::Exchanged),
                count(&self.answers, phase, Answer::TimedOut),
                count(&self.answers, phase, Answer::TurnedAway),
                ms(&all, 0.5),
                ms(&all, 0.99),
            );
        }
        let turned = self.merged(|_, answer| answer == Answer::TurnedAway);
        println!(
            "  fallback ('try again later') latency: p50 {} ms, p99 {} ms over {} answers",
            ms(&turned, 0.5),
            ms(&turned, 0.99),
            turned.len()
        );
        let after = |d: Option<Duration>| d.map_or("never".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
        println!("  breaker opened         {} after gift slowed down", after(self.opened_after));
        println!("  breaker closed         {} after gift recovered", after(self.closed_after));
        println!("  orders cancelled       {} refunded once each, the players' points adding up", self.refunds);
        for violation in &self.violations {
            println!("  ! {violation}");
        }
        println!("  logs and stores in {}", self.run_dir.display());
        println!(
            "{}",
            if self.passed() {
                "PASSED: players were turned away at once while gift was overloaded, rewards unchanged, missions kept flowing"
            } else {
                "FAILED"
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_and_merged_per_phase_and_kind() {
        let mut report = Report::default();
        for (phase, answer, ms) in [
            (Phase::Slowed, Answer::TurnedAway, 2),
            (Phase::Slowed, Answer::TimedOut, 2_000),
            (Phase::Recovered, Answer::TurnedAway, 4),
        ] {
            report.answers.entry((phase, answer)).or_default().record(Duration::from_millis(ms));
        }
        assert_eq!(count(&report.answers, Phase::Slowed, Answer::TurnedAway), 1);
        assert_eq!(count(&report.answers, Phase::Healthy, Answer::Exchanged), 0);
        let turned = report.merged(|_, answer| answer == Answer::TurnedAway);
        assert_eq!(turned.len(), 2);
        assert!(turned.quantile_ms(1.0) < 4.01);
        assert_eq!(report.merged(|phase, _| phase == Phase::Slowed).len(), 2);
    }

    #[test]
    fn a_run_passes_only_when_the_breaker_opened_and_closed_and_nothing_broke() {
        let mut report = Report { opened_after: Some(Duration::from_secs(1)), ..Report::default() };
        assert!(!report.passed());
        report.closed_after = Some(Duration::from_secs(5));
        assert!(report.passed());
        report.violations.push("mission m of p was never rewarded".into());
        assert!(!report.passed());
    }
}

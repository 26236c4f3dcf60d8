//! Giving back the memory a burst left behind.
//!
//! glibc's malloc keeps what a process freed in its arenas: after an attack
//! of thousands of connections or stalled streams, the gateway stayed at its
//! peak resident size (24 to 88 MB against 12 at rest) for as long as it
//! ran. [`release_freed_memory`] looks every few seconds at what the
//! allocator holds, and once the load that made it hold that much has
//! dropped, has it give whole free pages back ([`heap::release_free_memory`]).
//! While the load lasts, freed memory is left for reuse: giving it back only
//! to fault it in again would cost CPU when CPU is short.
//!
//! The decision ([`Relief`]) is pure; [`release_freed_memory`] feeds it
//! samples of the process (`/proc/self`) and of the allocator.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often the process and its allocator are looked at.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Freed memory kept resident beyond the least seen, below which nothing is
/// given back: a few megabytes are the allocator's working set.
pub const SLACK_BYTES: u64 = 8 << 20;

/// CPU (in cores) below which the process counts as quiet whatever it did before.
const QUIET_CORES: f64 = 0.05;

/// How many intervals back "the load before" reaches (a minute at 5 s).
const LOAD_MEMORY: usize = 12;

/// One look at the process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Bytes resident (`VmRSS`).
    pub resident: u64,
    /// Bytes the allocator has handed out and not had back.
    pub in_use: u64,
    /// CPU used over the interval before this sample, in cores.
    pub cores: f64,
}

impl Sample {
    /// Resident but not in use: the binary, stacks, and freed memory the
    /// allocator keeps.
    fn idle(&self) -> u64 {
        self.resident.saturating_sub(self.in_use)
    }
}

/// When to give freed memory back: when the allocator keeps at least
/// [`SLACK_BYTES`] more resident than the least it has kept (right after
/// the last time, or ever), and the load has dropped: CPU over the last
/// interval is at most half the busiest interval of the last minute, or the
/// process is quiet.
#[derive(Debug, Clone, Default)]
pub struct Relief {
    /// The least resident-but-unused memory seen, or the most recent after
    /// giving back (what giving back can reach now).
    floor: Option<u64>,
    recent_cores: VecDeque<f64>,
}

impl Relief {
    /// Takes a sample; whether to give freed memory back now.
    pub fn observe(&mut self, sample: Sample) -> bool {
        let idle = sample.idle();
        let floor = *self.floor.get_or_insert(idle);
        let busiest = self.recent_cores.iter().copied().fold(0.0, f64::max);
        if self.recent_cores.len() == LOAD_MEMORY {
            self.recent_cores.pop_front();
        }
        self.recent_cores.push_back(sample.cores);
        self.floor = Some(floor.min(idle));
        let holding = idle >= floor.saturating_add(SLACK_BYTES);
        let dropped = sample.cores <= QUIET_CORES || sample.cores <= busiest / 2.0;
        holding && dropped
    }

    /// After giving back: what is left is the floor from now on (pages
    /// partly in use cannot be given back; trying again would not help).
    pub fn released(&mut self, after: Sample) {
        self.floor = Some(after.idle());
    }
}

/// Looks at the process every [`INTERVAL`] and gives freed memory back when
/// [`Relief`] says so, until the task is dropped. Returns at once where the
/// allocator cannot give memory back (not glibc) or `/proc` is missing.
pub async fn release_freed_memory() {
    if !heap::SUPPORTED {
        return;
    }
    let Some(mut cpu) = Cpu::now() else { return };
    let mut relief = Relief::default();
    let mut every = tokio::time::interval(INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(sample) = sample(&mut cpu) else { return };
        if !relief.observe(sample) {
            continue;
        }
        // malloc_trim holds each arena's lock while it walks it: off the workers.
        let Ok((after, took)) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            heap::release_free_memory();
            (sample_memory(0.0), started.elapsed())
        })
        .await
        else {
            return;
        };
        let Some(after) = after else { return };
        tracing::debug!(
            before_mib = sample.resident >> 20,
            after_mib = after.resident >> 20,
            took_us = took.as_micros(),
            cores = sample.cores,
            "gave freed memory back to the operating system"
        );
        relief.released(after);
    }
}

fn sample(cpu: &mut Cpu) -> Option<Sample> {
    let cores = cpu.cores_since()?;
    sample_memory(cores)
}

fn sample_memory(cores: f64) -> Option<Sample> {
    let resident = resident_bytes(&std::fs::read_to_string("/proc/self/status").ok()?)?;
    let in_use = heap::usage()?.in_use;
    Some(Sample { resident, in_use, cores })
}

/// `VmRSS` of `/proc/<pid>/status`, in bytes.
fn resident_bytes(status: &str) -> Option<u64> {
    let kib: u64 =
        status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// The process's CPU time so far, to tell the CPU used between two looks.
#[derive(Debug)]
struct Cpu {
    ticks: u64,
    at: Instant,
}

impl Cpu {
    /// `/proc` counts CPU time in USER_HZ, 100 a second on every
    /// architecture glibc's Linux runs on.
    const TICKS_PER_SECOND: f64 = 100.0;

    fn now() -> Option<Self> {
        Some(Self { ticks: cpu_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?, at: Instant::now() })
    }

    /// Cores used since the last call (1.0: one core busy all along).
    fn cores_since(&mut self) -> Option<f64> {
        let now = Self::now()?;
        let seconds = now.at.duration_since(self.at).as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // ticks between two looks fit an f64 exactly
        let used = now.ticks.saturating_sub(self.ticks) as f64 / Self::TICKS_PER_SECOND;
        *self = now;
        Some(if seconds > 0.0 { used / seconds } else { 0.0 })
    }
}

/// `utime + stime` of `/proc/<pid>/stat` (fields 14 and 15; the command
/// name before them, in parentheses, may hold spaces).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn at(resident_mib: u64, in_use_mib: u64, cores: f64) -> Sample {
        Sample { resident: resident_mib * MIB, in_use: in_use_mib * MIB, cores }
    }

    #[test]
    fn nothing_is_given_back_at_rest() {
        let mut relief = Relief::default();
        for _ in 0..30 {
            assert!(!relief.observe(at(14, 4, 0.01)));
        }
    }

    #[test]
    fn memory_in_use_is_not_a_reason() {
        let mut relief = Relief::default();
        relief.observe(at(14, 4, 0.01));
        // Thousands of connections held open: resident, but in use.
        assert!(!relief.observe(at(80, 70, 0.02)));
    }

    #[test]
    fn freed_memory_is_kept_while_the_load_lasts_and_given_back_once_it_drops() {
        let mut relief = Relief::default();
        relief.observe(at(14, 4, 0.01));
        // Under attack: a lot freed and reused, CPU steady.
        assert!(!relief.observe(at(60, 30, 1.2)));
        assert!(!relief.observe(at(70, 30, 1.1)));
        assert!(!relief.observe(at(70, 30, 1.0)));
        // The attack ends: the load halves.
        assert!(relief.observe(at(70, 5, 0.3)));
        relief.released(at(16, 5, 0.0));
        // Given back: nothing to do until something is kept again.
        assert!(!relief.observe(at(16, 5, 0.01)));
        assert!(!relief.observe(at(16, 5, 0.01)));
    }

    #[test]
    fn a_busy_process_that_stays_busy_keeps_its_memory() {
        let mut relief = Relief::default();
        relief.observe(at(14, 4, 0.6));
        for _ in 0..20 {
            assert!(!relief.observe(at(60, 20, 0.6)));
        }
        // A quiet process gives back whatever it did before.
        assert!(relief.observe(at(60, 20, 0.01)));
    }

    #[test]
    fn memory_freed_after_a_quiet_hold_is_given_back() {
        // Idle connections held open cost no CPU; closing them frees their
        // memory with no busy interval in between.
        let mut relief = Relief::default();
        relief.observe(at(14, 4, 0.01));
        assert!(!relief.observe(at(80, 70, 0.02)));
        assert!(relief.observe(at(80, 6, 0.01)));
    }

    #[test]
    fn what_cannot_be_given_back_is_not_tried_again_and_again() {
        let mut relief = Relief::default();
        relief.observe(at(14, 4, 0.01));
        assert!(relief.observe(at(60, 4, 0.01)));
        // Fragments: only part came back.
        relief.released(at(30, 4, 0.0));
        assert!(!relief.observe(at(30, 4, 0.01)));
        assert!(!relief.observe(at(35, 4, 0.01)));
        assert!(relief.observe(at(40, 4, 0.01)));
    }

    #[test]
    fn proc_files_are_read() {
        assert_eq!(resident_bytes("Name:\tgateway\nVmRSS:\t   12345 kB\nVmHWM:\t1 kB\n"), Some(12345 * 1024));
        assert_eq!(resident_bytes("Name:\tgateway\n"), None);
        let stat = "4242 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(cpu_ticks(stat), Some(300));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn this_process_can_be_sampled() {
        let mut cpu = Cpu::now().unwrap();
        let sample = sample(&mut cpu).unwrap();
        assert!(sample.resident > 0 && sample.in_use > 0, "{sample:?}");
    }
}

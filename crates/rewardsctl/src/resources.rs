//! What each process of the mesh uses, from `/proc`: resident memory now
//! (`VmRSS`) and at its peak (`VmHWM`), CPU time (user + system), and how
//! often its threads were switched off a CPU (each a sleep and a wake-up,
//! or a preemption).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::mesh::Mesh;

/// One process's use at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    pub cpu_s: f64,
    /// Voluntary and involuntary context switches of its live threads.
    pub context_switches: u64,
}

/// The name the load generator's own process is listed under.
pub const LOAD_GENERATOR: &str = "loadgen(rewardsctl)";

/// Every process of `mesh` that runs now, and this process (the load generator).
pub fn snapshot(mesh: &Mesh) -> BTreeMap<String, Usage> {
    let ticks = clock_ticks();
    let mut usage: BTreeMap<String, Usage> = mesh
        .processes()
        .filter_map(|process| {
            let pid = process.pid()?;
            let mut usage = read(&pid.to_string(), ticks)?;
            if process.name() == crate::mesh::POSTGRES {
                // PostgreSQL works in a process per connection: its CPU is the tree's.
                usage.cpu_s = tree_cpu_s(pid, ticks);
            }
            Some((process.name().to_owned(), usage))
        })
        .collect();
    if let Some(own) = read("self", ticks) {
        usage.insert(LOAD_GENERATOR.to_owned(), own);
    }
    usage
}

/// What each process used between `before` and `after`: CPU seconds spent,
/// and memory as of `after` (the peak is the process's lifetime peak).
pub fn spent(before: &BTreeMap<String, Usage>, after: &BTreeMap<String, Usage>) -> BTreeMap<String, Usage> {
    after
        .iter()
        .map(|(name, now)| {
            let cpu_before = before.get(name).map_or(0.0, |b| b.cpu_s);
            let switches_before = before.get(name).map_or(0, |b| b.context_switches);
            let usage = Usage {
                cpu_s: (now.cpu_s - cpu_before).max(0.0),
                context_switches: now.context_switches.saturating_sub(switches_before),
                ..*now
            };
            (name.clone(), usage)
        })
        .collect()
}

/// Process `pid`'s use now, with `ticks_per_second` from [`clock_ticks`].
pub fn of_process(pid: u32, ticks_per_second: f64) -> Option<Usage> {
    read(&pid.to_string(), ticks_per_second)
}

/// CPU seconds (user + system) of the calling thread so far.
pub fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/stat").ok().and_then(|stat| parse_stat(&stat)).map_or(
        0.0,
        |(user, system)| {
            #[allow(clippy::cast_precision_loss)] // clock ticks of a thread fit an f64 exactly
            let ticks = (user + system) as f64;
            ticks / clock_ticks()
        },
    )
}

/// Context switches of the calling thread so far.
pub fn thread_switches() -> u64 {
    std::fs::read_to_string("/proc/thread-self/status").map_or(0, |status| parse_switches(&status))
}

fn read(pid: &str, ticks_per_second: f64) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (rss_kb, peak_kb) = parse_status(&status);
    let (user, system) = parse_stat(&stat)?;
    #[allow(clippy::cast_precision_loss)] // kB and clock ticks of a benchmark run fit an f64 exactly
    Some(Usage {
        rss_mb: rss_kb as f64 / 1024.0,
        peak_rss_mb: peak_kb as f64 / 1024.0,
        cpu_s: (user + system) as f64 / ticks_per_second,
        context_switches: context_switches(pid),
    })
}

/// The context switches of every thread `pid` has now: the kernel counts
/// them per thread, and `/proc/<pid>/status` shows the main thread's only.
fn context_switches(pid: &str) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .map(|status| parse_switches(&status))
        .sum()
}

/// `voluntary_ctxt_switches` plus `nonvoluntary_ctxt_switches` of a status file.
fn parse_switches(status: &str) -> u64 {
    status
        .lines()
        .filter_map(|line| {
            let count =
                line.strip_prefix("voluntary_ctxt_switches:").or(line.strip_prefix("nonvoluntary_ctxt_switches:"))?;
            count.trim().parse::<u64>().ok()
        })
        .sum()
}

/// CPU seconds of `pid`, its live descendants, and the children it reaped.
fn tree_cpu_s(pid: u32, ticks_per_second: f64) -> f64 {
    let stats: Vec<(u32, u32, u64)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (parent, ticks) = parse_tree_stat(&stat)?;
            Some((pid, parent, ticks))
        })
        .collect();
    let mut tree = vec![pid];
    let mut total = 0u64;
    while let Some(member) = tree.pop() {
        for (child, parent, ticks) in &stats {
            if *child == member {
                total += ticks;
            }
            if *parent == member {
                tree.push(*child);
            }
        }
    }
    #[allow(clippy::cast_precision_loss)] // clock ticks of a benchmark run fit an f64 exactly
    let seconds = total as f64 / ticks_per_second;
    seconds
}

/// The parent and the ticks of a process and its reaped children
/// (`utime + stime + cutime + cstime`) from `/proc/<pid>/stat`.
fn parse_tree_stat(stat: &str) -> Option<(u32, u64)> {
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((fields.get(1)?.parse().ok()?, tick(11)? + tick(12)? + tick(13)? + tick(14)?))
}

/// `value` of each process's usage in `spent`, summed by [`kind`] and
/// divided by `count` (missions, calls): empty when `count` is zero.
pub fn per_kind<'a>(
    spent: impl IntoIterator<Item = (&'a String, &'a Usage)>,
    count: u64,
    value: impl Fn(&Usage) -> f64,
) -> BTreeMap<String, f64> {
    let mut by_kind = BTreeMap::new();
    if count == 0 {
        return by_kind;
    }
    #[allow(clippy::cast_precision_loss)] // mission and call counts fit an f64 exactly
    let count = count as f64;
    for (name, usage) in spent {
        *by_kind.entry(kind(name).to_owned()).or_insert(0.0) += value(usage) / count;
    }
    by_kind
}

/// The kind of process `name` is: a service or the gateway (whatever its
/// replica), `nats-server` (whatever its node), `postgres`, the load generator.
pub fn kind(name: &str) -> &str {
    let base = name.rsplit_once('-').filter(|(_, n)| n.parse::<u32>().is_ok()).map_or(name, |(base, _)| base);
    if base == "nats" { crate::mesh::NATS } else { base }
}

/// `VmRSS` and `VmHWM` in kB from `/proc/<pid>/status`.
fn parse_status(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or_default()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `utime` and `stime` (clock ticks) from `/proc/<pid>/stat`. The command
/// name may hold spaces and parentheses, so fields count from the last `)`.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line; the state (field 3) is the first after the name.
    Some((fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when unknown).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_and_nodes_count_as_their_kind() {
        assert_eq!(kind("mission-2"), "mission");
        assert_eq!(kind("nats-3"), "nats-server");
        assert_eq!(kind("nats-server"), "nats-server");
        assert_eq!(kind("postgres"), "postgres");
        assert_eq!(kind(LOAD_GENERATOR), LOAD_GENERATOR);
    }

    #[test]
    fn a_process_tree_counts_reaped_children() {
        let stat = "42 (postgres) S 1 42 42 0 -1 4194560 1 2 0 0 10 5 7 3 20 0 1 0 100 1000 10 18446744073709551615";
        assert_eq!(parse_tree_stat(stat), Some((1, 25)));
    }

    #[test]
    fn context_switches_are_the_voluntary_and_the_involuntary_ones() {
        let status =
            "Name:\ttokio-runtime-w\nThreads:\t5\nvoluntary_ctxt_switches:\t1200\nnonvoluntary_ctxt_switches:\t34\n";
        assert_eq!(parse_switches(status), 1_234);
        assert_eq!(parse_switches("Name:\tzombie\n"), 0);
    }

    #[test]
    fn memory_comes_from_the_status_lines() {
        let status = "Name:\treward\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\nThreads:\t5\n";
        assert_eq!(parse_status(status), (20_480, 40_960));
        assert_eq!(parse_status("Name:\tzombie\n"), (0, 0));
    }

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name_even_with_spaces_in_it() {
        let stat = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat(stat), Some((250, 75)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn cpu_and_switches_spent_are_the_difference_and_memory_the_latest() {
        let usage = |rss_mb, cpu_s, context_switches| Usage { rss_mb, peak_rss_mb: rss_mb, cpu_s, context_switches };
        let before = BTreeMap::from([("mission".to_owned(), usage(10.0, 1.5, 100))]);
        let after =
            BTreeMap::from([("mission".to_owned(), usage(30.0, 4.0, 350)), ("gift".to_owned(), usage(8.0, 0.5, 20))]);
        let spent = spent(&before, &after);
        assert_eq!(spent["mission"], usage(30.0, 2.5, 250));
        assert_eq!(spent["gift"], usage(8.0, 0.5, 20));
    }

    #[test]
    fn this_process_can_be_read() {
        let own = read("self", clock_ticks()).unwrap();
        assert!(own.rss_mb > 0.0 && own.peak_rss_mb >= own.rss_mb);
    }
}

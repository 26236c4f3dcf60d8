//! Where a run keeps its processes' stores and logs: a directory of its own
//! under `.run/`, named after the kind of run and the UTC time it started,
//! so that runs sort by time and never share a directory; and where it
//! finds the binaries it starts.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context as _;
use time::OffsetDateTime;

/// The directory every run directory is under, beside the `.run/` of `up`.
const RUNS: &str = ".run";

/// The directory of the service binaries: the one `rewardsctl` runs from,
/// where cargo builds them all.
///
/// # Errors
/// When the running executable cannot be found or has no directory.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()?.parent().context("rewardsctl has no directory")?.to_path_buf())
}

/// `.run/<kind>-<YYYYMMDD-HHMMSS>` for a run starting now.
pub fn fresh(kind: &str) -> PathBuf {
    PathBuf::from(RUNS).join(format!("{kind}-{}", utc_stamp(SystemTime::now())))
}

/// `.run/bench-<YYYYMMDD-HHMMSS>/<name>`: where one benchmark (or attack)
/// run on its own keeps its processes, stores and logs.
pub fn benchmark(name: &str) -> PathBuf {
    fresh("bench").join(name)
}

/// `YYYYMMDD-HHMMSS` in UTC, for directory names and reports.
pub fn utc_stamp(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101-000000");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(1_795_603_593)), "20261125-104633");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)), "20000229-000000");
    }

    #[test]
    fn a_fresh_directory_is_under_the_runs_and_named_after_its_kind() {
        let dir = fresh("chaos");
        assert!(dir.starts_with(RUNS));
        assert!(dir.file_name().unwrap().to_str().unwrap().starts_with("chaos-20"));
    }
}

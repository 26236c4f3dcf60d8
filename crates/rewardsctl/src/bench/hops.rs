//! Where the chain's time goes, hop by hop, from the stores a benchmark
//! left (`rewardsctl bench hops .run/bench-<time>/latency-0/data`).
//!
//! For every mission of the run: from its achievement (inside mission's
//! transaction) to reward applying MissionAchieved, from there to wallet
//! applying RewardAllocated, and to my page applying RewardIssued (each
//! inside the consumer's transaction). Each hop is a commit, the outbox
//! relay's publish, JetStream, and the next consumer's transaction. The
//! events are followed by the ids the services derive from the mission's
//! ([`kernel::derived_uuid`]), and the hops' percentiles come
//! from the same histogram as every other figure the tools print.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use kernel::derived_uuid;
use loadgen::Latencies;
use uuid::Uuid;

use crate::stores::Stores;

/// The command line of `rewardsctl bench hops`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The stores of a chain step, e.g. .run/bench-<time>/latency-0/data.
    #[arg(value_name = "DATA_DIR")]
    data: PathBuf,
}

/// The hops, in the order an achievement travels them.
pub const HOPS: [&str; 4] =
    ["mission -> reward applied", "reward -> wallet applied", "wallet -> my page applied", "whole chain"];

/// The consumer of each store whose inbox marks a hop's end.
const CONSUMERS: [(&str, &str); 3] =
    [("reward", "reward-allocate"), ("wallet", "wallet-issue-reward"), ("mypage", "mypage-wallet")];

/// The ids of the events one mission's achievement leads to, as the
/// services derive them: MissionAchieved, RewardAllocated, RewardIssued.
pub fn event_ids(mission: Uuid) -> [Uuid; 3] {
    let reward = derived_uuid(mission, b"Reward");
    let entry = derived_uuid(reward, b"WalletEntry");
    [
        derived_uuid(mission, b"MissionAchieved"),
        derived_uuid(reward, b"RewardAllocated"),
        derived_uuid(entry, b"RewardIssued"),
    ]
}

/// When each consumer applied each event, in milliseconds since the epoch.
pub type Applied = [HashMap<String, i64>; 3];

/// The latency of every hop over the missions whose chain completed:
/// (mission id, achieved at) and when each event was applied.
pub fn hops(missions: &[(String, i64)], applied: &Applied) -> [Latencies; 4] {
    let mut hops = [Latencies::new(), Latencies::new(), Latencies::new(), Latencies::new()];
    for (mission_id, achieved_at) in missions {
        let Ok(mission) = Uuid::parse_str(mission_id) else { continue };
        let mut times = vec![*achieved_at];
        for (event, applied) in event_ids(mission).iter().zip(applied) {
            match applied.get(&event.to_string()) {
                Some(at) => times.push(*at),
                None => break,
            }
        }
        let [start, reward, wallet, page] = times[..] else { continue };
        for (hop, (from, to)) in hops.iter_mut().zip([(start, reward), (reward, wallet), (wallet, page), (start, page)])
        {
            hop.record(millis(to - from));
        }
    }
    hops
}

fn millis(span: i64) -> Duration {
    Duration::from_millis(u64::try_from(span).unwrap_or_default())
}

#[derive(QueryableByName)]
struct MissionAt {
    #[diesel(sql_type = Text)]
    mission_id: String,
    #[diesel(sql_type = BigInt)]
    achieved_at: i64,
}

#[derive(QueryableByName)]
struct AppliedAt {
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = BigInt)]
    processed_at: i64,
}

/// Reads the stores under `args.data` and prints each hop's percentiles.
///
/// # Errors
/// When a store cannot be read.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let stores = Stores::sqlite(args.data.clone());
    let missions: Vec<MissionAt> =
        stores.query_owned("mission", "SELECT mission_id, achieved_at FROM missions".into()).await?;
    let mut applied: Applied = Default::default();
    for ((store, consumer), applied) in CONSUMERS.iter().zip(&mut applied) {
        let sql = format!("SELECT event_id, processed_at FROM inbox WHERE consumer = '{consumer}'");
        let rows: Vec<AppliedAt> = stores.query_owned(store, sql).await?;
        applied.extend(rows.into_iter().map(|row| (row.event_id, row.processed_at)));
    }
    let missions: Vec<(String, i64)> = missions.into_iter().map(|m| (m.mission_id, m.achieved_at)).collect();
    print(&args.data, &hops(&missions, &applied));
    Ok(())
}

fn print(data: &Path, hops: &[Latencies; 4]) {
    println!("hops of the chain in {}, in ms:", data.display());
    for (name, latencies) in HOPS.iter().zip(hops) {
        if latencies.is_empty() {
            println!("{name:28} no complete chains");
            continue;
        }
        let s = latencies.summary();
        println!(
            "{name:28} n={} p50={:.1} p90={:.1} p99={:.1} max={:.1}",
            s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_followed_by_the_ids_the_services_derive() {
        let mission = Uuid::parse_str("0193a0c4-5e6f-7a00-8000-000000000001").unwrap();
        let [achieved, allocated, issued] = event_ids(mission);
        assert_eq!(achieved, derived_uuid(mission, b"MissionAchieved"));
        let reward = derived_uuid(mission, b"Reward");
        assert_eq!(allocated, derived_uuid(reward, b"RewardAllocated"));
        assert_eq!(issued, derived_uuid(derived_uuid(reward, b"WalletEntry"), b"RewardIssued"));
    }

    #[test]
    fn each_hop_is_timed_from_the_one_before_and_incomplete_chains_are_left_out() {
        let done = "0193a0c4-5e6f-7a00-8000-000000000001";
        let stuck = "0193a0c4-5e6f-7a00-8000-000000000002";
        let mut applied: Applied = Default::default();
        let ids = event_ids(Uuid::parse_str(done).unwrap());
        for ((store, id), at) in applied.iter_mut().zip(ids).zip([1_010, 1_030, 1_060]) {
            store.insert(id.to_string(), at);
        }
        applied[0].insert(event_ids(Uuid::parse_str(stuck).unwrap())[0].to_string(), 2_010);
        let hops = hops(&[(done.into(), 1_000), (stuck.into(), 2_000), ("not-a-uuid".into(), 0)], &applied);
        let close = |latencies: &Latencies, ms: f64| (latencies.quantile_ms(0.5) - ms).abs() < 0.1;
        assert!(hops.iter().all(|hop| hop.len() == 1), "only the complete chain counts");
        assert!(close(&hops[0], 10.0) && close(&hops[1], 20.0) && close(&hops[2], 30.0) && close(&hops[3], 60.0));
    }
}

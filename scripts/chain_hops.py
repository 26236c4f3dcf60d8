#!/usr/bin/env python3
"""Where the chain's time goes, hop by hop, from the stores a benchmark left.

    python3 scripts/chain_hops.py .run/bench-<time>/chain-1000/data

For every mission of the run, in milliseconds (p50/p90/p99/max): from its
achievement (inside mission's transaction) to reward applying MissionAchieved,
from there to wallet applying RewardAllocated, and to my page applying
RewardIssued (each inside the consumer's transaction). Each hop is a commit,
the outbox relay's publish, JetStream, and the next consumer's transaction.

The ids are followed the way the services derive them
(`kernel::derived_uuid`); keep the two in step.
"""

import sqlite3
import sys
import uuid


def derived(parent: uuid.UUID, name: str) -> uuid.UUID:
    raw = bytearray(uuid.uuid5(parent, name).bytes)
    raw[:6] = parent.bytes[:6]
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(raw))


def rows(data: str, store: str, sql: str):
    with sqlite3.connect(f"file:{data}/{store}.sqlite?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def main(data: str) -> None:
    applied = {}
    for store, consumer in (("reward", "reward-allocate"), ("wallet", "wallet-issue-reward"), ("mypage", "mypage-wallet")):
        applied[store] = dict(rows(data, store, f"SELECT event_id, processed_at FROM inbox WHERE consumer = '{consumer}'"))
    hops = ["mission -> reward applied", "reward -> wallet applied", "wallet -> my page applied", "whole chain"]
    spans = {hop: [] for hop in hops}
    for mission_id, achieved_at in rows(data, "mission", "SELECT mission_id, achieved_at FROM missions"):
        mission = uuid.UUID(mission_id)
        achieved = str(derived(mission, "MissionAchieved"))
        reward = derived(mission, "Reward")
        allocated = str(derived(reward, "RewardAllocated"))
        issued = str(derived(derived(reward, "WalletEntry"), "RewardIssued"))
        times = [achieved_at, applied["reward"].get(achieved), applied["wallet"].get(allocated),
                 applied["mypage"].get(issued)]
        if None in times:
            continue
        for hop, (start, end) in zip(hops, zip(times, times[1:])):
            spans[hop].append(end - start)
        spans["whole chain"].append(times[-1] - times[0])
    for hop, values in spans.items():
        if not values:
            print(f"{hop:28s} no complete chains")
            continue
        values.sort()
        at = lambda q: values[min(len(values) - 1, int(len(values) * q))]
        print(f"{hop:28s} n={len(values)} p50={at(0.5)} p90={at(0.9)} p99={at(0.99)} max={values[-1]} ms")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])

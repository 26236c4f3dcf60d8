#!/usr/bin/env python3
"""Which tables and indexes a SQLite store's commits write, read off its WAL.

Every commit in WAL mode appends one frame per page it dirtied; a frame's
header names the page. This reads a store's WAL while the service runs (the
read may end mid-commit: frames after the last commit frame are left out),
maps each page to the table or index that owns it with SQLite's `dbstat` on
a read-only connection, and prints pages per commit by owner.

    scripts/wal_pages.py [--window SECS] .run/bench-<time>/chain/data/mission.sqlite ...

With --window, it first holds a read transaction on every store for SECS
seconds: a checkpoint cannot restart a WAL that a reader still needs, so the
WAL keeps every commit of the window, and frames per second can be set
against the missions the benchmark drove in it. Without it, the WAL holds
what was committed since the last checkpoint restarted it.

Read-only on the live files. Frames are counted only while their salt
matches the WAL header's, so a restart during the read leaves fewer frames,
not wrong ones.
"""

import collections
import sqlite3
import struct
import sys
import time

WAL_HEADER = 32
FRAME_HEADER = 24


def frames(wal: bytes):
    """(page number, is a commit frame) of each valid frame, in order."""
    if len(wal) < WAL_HEADER:
        return
    magic, _version, page_size, _ckpt, salt1, salt2 = struct.unpack(">6I", wal[:24])
    if magic not in (0x377F0682, 0x377F0683):
        raise SystemExit("not a WAL file")
    offset = WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(wal):
        pgno, commit_size, s1, s2 = struct.unpack(">4I", wal[offset : offset + 16])
        if (s1, s2) != (salt1, salt2):
            return
        yield pgno, commit_size != 0
        offset += FRAME_HEADER + page_size


def owners(db_path: str) -> dict:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return {pageno: name for name, pageno in conn.execute("SELECT name, pageno FROM dbstat")}
    finally:
        conn.close()


def valid_frames(db: str) -> int:
    with open(db + "-wal", "rb") as f:
        return sum(1 for _ in frames(f.read()))


def report(db: str, seconds: float, skip: int) -> None:
    with open(db + "-wal", "rb") as f:
        wal = f.read()
    # Read after the WAL: a page the store allocated since is named by its
    # owner; one freed since shows as "(free or new)".
    owner = owners(db)

    commits = 0
    by_owner = collections.Counter()
    pending = []
    sizes = []
    for index, (pgno, is_commit) in enumerate(frames(wal)):
        if index < skip:
            continue
        pending.append(pgno)
        if is_commit:
            commits += 1
            sizes.append(len(pending))
            for p in pending:
                by_owner[owner.get(p, "(free or new)")] += 1
            pending = []
    if not commits:
        print(f"{db}: no complete commit in the WAL")
        return
    total = sum(by_owner.values())
    rate = f", {total / seconds:.0f} frames/s" if seconds else ""
    print(f"{db}: {commits} commits, {total} frames, {total / commits:.2f} pages per commit{rate}")
    for name, count in by_owner.most_common():
        print(f"  {count / commits:6.2f}  {name}")


def main(args: list) -> None:
    seconds = 0.0
    if args[:1] == ["--window"]:
        seconds, args = float(args[1]), args[2:]
    if not args:
        raise SystemExit(__doc__)
    readers, skips = [], {}
    if seconds:
        for db in args:
            reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM sqlite_schema").fetchall()
            readers.append(reader)
            # What the WAL held when the window opened is not the window's.
            skips[db] = valid_frames(db)
        time.sleep(seconds)
    for db in args:
        report(db, seconds, skips.get(db, 0))
    for reader in readers:
        reader.close()


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""The third-party files kept in this repository, checked against their record.

``third_party/vendored.yaml`` lists each vendored file or directory with its
upstream (repository, path, tag, commit), version, licence and a sha256 over
its content. Vendored files are never edited: behaviour changes go through
values or our own files, and an upgrade replaces the files and the record
together. This module recomputes each digest, so an edit, a lost file or a
half-done upgrade fails CI with the path that differs.

Usage (exit 0 when every record holds)::

    .tools/venv/bin/python scripts/vendored.py            # check
    .tools/venv/bin/python scripts/vendored.py --digest PATH   # print the digest to record

As a module: ``check() -> list[str]`` (problems) and ``records()``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
RECORD = REPO / "third_party" / "vendored.yaml"
REQUIRED = ("name", "path", "version", "upstream", "upstream_path", "ref", "commit", "license", "license_file",
            "sha256")


def digest(path: Path) -> str:
    """sha256 of a file, or of a directory as ``<relative path>\\0<file sha256>\\n``
    lines in path order (so a renamed, added or removed file changes it too)."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    lines = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        lines.append(f"{file.relative_to(path).as_posix()}\0{hashlib.sha256(file.read_bytes()).hexdigest()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def records() -> list[dict[str, Any]]:
    data = yaml.safe_load(RECORD.read_text(encoding="utf-8")) or []
    if not isinstance(data, list):
        raise ValueError(f"{RECORD.relative_to(REPO)}: expected a list of records")
    return data


def find(name_prefix: str) -> list[dict[str, Any]]:
    """The records whose path starts with ``name_prefix`` (relative to the repository)."""
    return [r for r in records() if str(r.get("path", "")).startswith(name_prefix)]


def check() -> list[str]:
    problems: list[str] = []
    for record in records():
        label = record.get("path", "<no path>")
        missing = [key for key in REQUIRED if not record.get(key)]
        if missing:
            problems.append(f"{label}: the record lacks {', '.join(missing)}")
            continue
        path = REPO / record["path"]
        if not path.exists():
            problems.append(f"{label}: missing: the vendored {record['name']} {record['version']} is gone "
                            f"(restore it with `git checkout -- {record['path']}`)")
            continue
        actual = digest(path)
        if actual != record["sha256"]:
            problems.append(f"{label}: differs from {record['upstream']} {record['upstream_path']} at "
                            f"{record['ref']} (sha256 {actual}, recorded {record['sha256']}): vendored files "
                            "are not edited; override through values, or upgrade files and record together")
        if not (REPO / record["license_file"]).is_file():
            problems.append(f"{label}: licence file {record['license_file']} is missing")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digest", type=Path, help="print the digest of PATH (to record an upgrade)")
    args = parser.parse_args(argv)
    if args.digest:
        print(digest(args.digest))
        return 0
    problems = check()
    for problem in problems:
        print(f"FAIL {problem}")
    for record in records():
        print(f"  {record.get('path')}: {record.get('name')} {record.get('version')} "
              f"({record.get('upstream')} {record.get('ref')})")
    failed = len({problem.split(": ", 1)[0] for problem in problems})
    print(f"vendored: {len(records()) - failed} passed, {failed} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

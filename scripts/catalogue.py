#!/usr/bin/env python3
"""The Helm chart checked against the service catalogue.

The catalogue (crates/api/src/catalogue.rs) is the one place the system's
services are named: their names, gRPC services, health entries, the
variables that tell callers where they are, and the gateway's port. Its
JSON form, contracts/catalogue.json, is kept equal to the code by
`cargo test -p api --test catalogue`. This module holds the chart to it:

  - values: `services` names exactly the catalogue's services and the
    gateway; each runs its own binary with the catalogue's health entry, and
    lists exactly the catalogue's durable consumers (which its consumer-lag
    autoscaling watches);
  - rendered objects: the gateway listens on the catalogue's port and is
    told where every service is under the catalogue's variable; the wallet
    is told where gift is.

check_chart.py runs both on every value set, and proves the values check
fails on each file of scripts/fixtures/catalogue-broken/ with the message
its `# expect:` lines name. Run alone (`python3 scripts/catalogue.py`), it
checks values.yaml and those fixtures, without Helm.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CATALOGUE = REPO / "contracts" / "catalogue.json"
VALUES = REPO / "helm" / "game-rewards" / "values.yaml"
BROKEN = REPO / "scripts" / "fixtures" / "catalogue-broken"
# The port every service but the gateway listens on in its pod (the chart's
# `game-rewards.grpcPort`): one pod per replica, so one port for all.
IN_CLUSTER_PORT = 50051


def load() -> dict[str, Any]:
    return json.loads(CATALOGUE.read_text())


def merged_service(values: dict[str, Any], name: str) -> dict[str, Any]:
    """`defaults` with `services.<name>` on top, as the chart merges them."""
    out = copy.deepcopy(values.get("defaults") or {})
    out.update(copy.deepcopy((values.get("services") or {}).get(name) or {}))
    return out


def values_problems(values: dict[str, Any], catalogue: dict[str, Any]) -> list[str]:
    """What the chart's values say differently from the catalogue."""
    problems = []
    gateway = catalogue["gateway"]
    expected = {s["name"]: s for s in catalogue["services"]}
    in_chart = set((values.get("services") or {}))
    for name in sorted((set(expected) | {gateway["name"]}) - in_chart):
        problems.append(f"services.{name}: missing, but the catalogue (contracts/catalogue.json) lists it")
    for name in sorted(in_chart - set(expected) - {gateway["name"]}):
        problems.append(f"services.{name}: not a service of the catalogue (contracts/catalogue.json): "
                        f"{', '.join([gateway['name'], *expected])}")
    for name in sorted(in_chart & (set(expected) | {gateway["name"]})):
        service = merged_service(values, name)
        is_gateway = name == gateway["name"]
        health = gateway["health"] if is_gateway else expected[name]["health"]
        component = "gateway" if is_gateway else "service"
        for key, want in (("binary", name), ("healthService", health), ("component", component)):
            if service.get(key) != want:
                problems.append(f"services.{name}.{key}: {service.get(key)!r}, but the catalogue says {want!r}")
        consumers = sorted((c.get("name"), c.get("stream")) for c in service.get("consumers") or [])
        listed = [] if is_gateway else sorted((c["name"], c["stream"]) for c in expected[name]["consumes"])
        if consumers != listed:
            show = lambda pairs: ", ".join(f"{n} ({s})" for n, s in pairs) or "none"  # noqa: E731
            problems.append(f"services.{name}.consumers: {show(consumers)}, but the catalogue lists {show(listed)}")
    return problems


def rendered_problems(docs: list[tuple[str, dict[str, Any]]], values: dict[str, Any],
                      catalogue: dict[str, Any]) -> list[str]:
    """What the rendered objects say differently from the catalogue: the
    gateway's port and the variables that tell callers where services are."""
    problems = []
    enabled = {name for name in (values.get("services") or {}) if merged_service(values, name).get("enabled", True)}
    configs = {o["metadata"]["name"]: o.get("data") or {} for _, o in docs if o.get("kind") == "ConfigMap"}
    gateway = catalogue["gateway"]
    if gateway["name"] in enabled:
        config = configs.get(f"{gateway['name']}-config", {})
        addr = config.get("GATEWAY_ADDR", "")
        if not addr.endswith(f":{gateway['port']}"):
            problems.append(f"{gateway['name']}-config GATEWAY_ADDR: {addr!r}, but the catalogue's gateway port "
                            f"is {gateway['port']}")
        for service in catalogue["services"]:
            want = f"http://{service['name']}:{IN_CLUSTER_PORT}"
            got = config.get(service["url_variable"])
            if service["name"] in enabled and got != want:
                problems.append(f"{gateway['name']}-config {service['url_variable']}: {got!r}, expected {want!r} "
                                f"(the catalogue's variable for {service['name']})")
        stray = sorted(k for k in config if k.endswith("_URL") and k not in
                       {s["url_variable"] for s in catalogue["services"]} | {"JWKS_URL"})
        if stray:
            problems.append(f"{gateway['name']}-config: {', '.join(stray)} name no service of the catalogue")
    gift = next(s for s in catalogue["services"] if s["name"] == "gift")
    if "wallet" in enabled:
        got = configs.get("wallet-config", {}).get(gift["url_variable"])
        if got != f"http://gift:{IN_CLUSTER_PORT}":
            problems.append(f"wallet-config {gift['url_variable']}: {got!r}, expected 'http://gift:{IN_CLUSTER_PORT}'")
    for _, obj in docs:
        if obj.get("kind") == "Service" and obj["metadata"]["name"] == gateway["name"]:
            ports = [p.get("port") for p in (obj.get("spec") or {}).get("ports") or [] if p.get("name") == "grpc-edge"]
            if ports != [gateway["port"]]:
                problems.append(f"Service/{gateway['name']} grpc-edge port: {ports}, but the catalogue says "
                                f"{gateway['port']}")
    return problems


def broken_fixtures(values: dict[str, Any], catalogue: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(what each broken fixture was rejected with, fixtures that were not
    rejected as their `# expect:` lines say)."""
    seen, wrong = [], []
    fixtures = sorted(BROKEN.glob("*.yaml"))
    if not fixtures:
        wrong.append(f"{BROKEN}: no broken fixtures")
    for fixture in fixtures:
        text = fixture.read_text()
        expects = re.findall(r"^#\s*expect:\s*(.+?)\s*$", text, re.M)
        broken = copy.deepcopy(values)
        override = yaml.safe_load(text) or {}
        for name, service in (override.get("services") or {}).items():
            if service is None:
                del broken["services"][name]
            else:
                broken["services"].setdefault(name, {}).update(service)
        message = "; ".join(values_problems(broken, catalogue))
        missing = [e for e in expects if e not in message]
        if not expects or not message or missing:
            wrong.append(f"{fixture.name}: expected a problem saying {missing or expects}, got {message!r}")
        else:
            seen.append(f"{fixture.name}: {message}")
    return seen, wrong


def main() -> int:
    catalogue = load()
    values = yaml.safe_load(VALUES.read_text())
    problems = values_problems(values, catalogue)
    seen, wrong = broken_fixtures(values, catalogue)
    for line in seen:
        print(f"  rejected {line}")
    for line in problems + wrong:
        print(f"  FAILED {line}")
    print(f"catalogue: values.yaml {'agrees' if not problems else 'disagrees'}; "
          f"{len(seen)} broken fixtures rejected, {len(wrong)} not")
    return 1 if problems or wrong else 0


if __name__ == "__main__":
    sys.exit(main())

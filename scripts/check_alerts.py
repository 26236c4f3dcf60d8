#!/usr/bin/env python3
"""The chart's alerts against Prometheus's own tools (promtool, from Debian's
`prometheus` package, which ./dev installs when it is missing).

1. Renders the chart's PrometheusRule (monitoring.prometheusRule.enabled, the
   default thresholds, namespace `rewards`) and writes its groups as a
   Prometheus rule file.
2. `promtool check rules` on it: PromQL, durations, label and annotation
   templates.
3. `promtool test rules scripts/tests/alerts.test.yaml`: each alert fires
   when its input series say it should, and stays quiet when they are healthy.
   The tested copy of the rules has no annotations (their text is not what
   is under test; step 2 checks their templates).
4. Fails when an alert has no firing case or no quiet case in the tests, or
   when the tests name an alert the chart does not have.

Exit status 0 when everything holds. Usage:

    .tools/venv/bin/python scripts/check_alerts.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_chart  # noqa: E402  (this directory)

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "scripts" / "tests" / "alerts.test.yaml"


def promtool() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if not found:
        sys.exit("check_alerts: promtool not found: run `./dev check-deploy` (it installs Debian's "
                 "`prometheus` package), or `apt-get install prometheus`")
    return found


def rendered_rules() -> dict:
    values = {"monitoring": {"prometheusRule": {"enabled": True}}}
    docs = check_chart.documents(check_chart.render(values))
    rules = [obj for _, obj in docs if obj["kind"] == "PrometheusRule"]
    if len(rules) != 1:
        sys.exit(f"check_alerts: expected one PrometheusRule, rendered {len(rules)}")
    return {"groups": rules[0]["spec"]["groups"]}


def run(command: list[str], cwd: Path) -> tuple[bool, str]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def coverage(rules: dict, tests: dict) -> tuple[list[str], dict[str, tuple[int, int]]]:
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    cases: dict[str, tuple[int, int]] = {a: (0, 0) for a in alerts}
    problems = []
    for test in tests.get("tests", []):
        for case in test.get("alert_rule_test", []):
            name = case["alertname"]
            if name not in cases:
                problems.append(f"test {test.get('name')!r}: no alert {name} in the chart")
                continue
            fires, quiet = cases[name]
            cases[name] = (fires + 1, quiet) if case.get("exp_alerts") else (fires, quiet + 1)
    for name, (fires, quiet) in cases.items():
        if not fires:
            problems.append(f"{name}: no test where it fires")
        if not quiet:
            problems.append(f"{name}: no test where it stays quiet")
    return problems, cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="write the rule files and tests into DIR and keep them")
    args = parser.parse_args(argv)
    tool = promtool()
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    rules = rendered_rules()
    tests = yaml.safe_load(TESTS.read_text(encoding="utf-8"))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / "rules-full.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
        bare = {"groups": [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
                           for g in rules["groups"]]}
        (work / "rules.yaml").write_text(yaml.safe_dump(bare, sort_keys=False))
        shutil.copy(TESTS, work / TESTS.name)
        print(f"{version}; rules rendered from helm/game-rewards (monitoring.prometheusRule)")
        ok, output = run([tool, "check", "rules", "rules-full.yaml"], work)
        print(f"== promtool check rules: {'ok' if ok else 'FAILED'}\n  " + output.replace("\n", "\n  "))
        failed += not ok
        ok, output = run([tool, "test", "rules", TESTS.name], work)
        print(f"== promtool test rules {TESTS.relative_to(REPO)}: {'ok' if ok else 'FAILED'}\n  "
              + output.replace("\n", "\n  "))
        failed += not ok
    problems, cases = coverage(rules, tests)
    print("== every alert fires when it should and stays quiet when healthy")
    for name, (fires, quiet) in cases.items():
        print(f"  {name}: {fires} firing, {quiet} quiet evaluations")
    for problem in problems:
        print(f"  FAIL {problem}")
    failed += bool(problems)
    print(f"check_alerts: {3 - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

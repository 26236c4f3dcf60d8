#!/usr/bin/env python3
"""Offline checks of the Helm chart helm/game-rewards (no cluster, no helm binary).

For every value set in helm/game-rewards/ci/*.yaml it
  1. lints the chart (helm-python-sdk, the Helm 4 SDK, strict),
  2. renders it (values.schema.json and the templates' `fail` checks apply),
  3. validates every rendered object:
     - Kubernetes built-in kinds with kubernetes-validate, strict (unknown
       fields are errors), against the oldest Kubernetes the chart supports
       (Chart.yaml kubeVersion) and the newest the package knows;
     - Istio kinds with scripts/validate_manifests.py
       (`validate_documents(docs)`: CRD schema + CEL, and
       `check_mesh_policy(docs)`: the mesh rules, on what the release really
       installs), or, should that module be absent, against the CRD schemas
       in ../shared/schemas/istio ($ISTIO_CRDS);
     - other custom resources (ServiceMonitor, PrometheusRule, ScaledObject)
       structurally: apiVersion, kind, metadata.name, spec and the fields
       their controllers need;
  4. checks the chart's own promises on the rendered objects (gRPC probes,
     drain timing, non-root read-only pods, one SQLite pod, rolling updates
     with no unavailability, one ServiceAccount per service, port names),
and prints the rendered objects per kind. Then it checks that
  - every values file in scripts/fixtures/chart-broken/ is REJECTED, by the
    mechanism and with the message its `# expect:` header names;
  - the chart renders without the NATS chart (a dependency, not vendored) when nats.enabled=false
    (and says "helm dependency update" when it is enabled but absent);
  - helm/game-rewards/files/mesh is the symlink to mesh/ (or, if it was ever
    replaced by a copy, that the copy is identical), and every document of
    mesh/{traffic,security,ingress} is rendered when its folder is enabled;
  - the packaged chart (`helm package`, which follows the symlink) renders
    every value set exactly like the source chart;
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

import jsonschema
import kubernetes_validate
import yaml
from helm_python import errors as helm_errors
from helm_python.chart import Chart, lint, package

REPO = Path(__file__).resolve().parent.parent
CHART_DIR = REPO / "helm" / "game-rewards"
CI_VALUES = CHART_DIR / "ci"
BROKEN_FIXTURES = REPO / "scripts" / "fixtures" / "chart-broken"
MESH_DIR = REPO / "mesh"
MESH_LINK = CHART_DIR / "files" / "mesh"
MESH_SUBDIRS = ("traffic", "security", "ingress")
ISTIO_CRDS = Path(os.environ.get("ISTIO_CRDS", REPO.parent / "shared" / "schemas" / "istio" / "crd-all.gen.yaml"))

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
    """The colleague's scripts/validate_manifests.py when present, else the CRD schemas."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import validate_manifests  # type: ignore[import-not-found]
    except ImportError:
        validate_manifests = None
    finally:
        sys.path.pop(0)
    if validate_manifests is not None and hasattr(validate_manifests, "validate_documents"):
        policy = getattr(validate_manifests, "check_mesh_policy", None)

        def via_module(docs: list[dict[str, Any]]) -> list[str]:
            if not docs:
                return []
            try:
                errors = normalise_result(validate_manifests.validate_documents(copy.deepcopy(docs)))
                # The mesh rules (retries, DestinationRule per host, JWT rules…)
                # on what the release really installs, JWT overrides included.
                if policy is not None:
                    errors += normalise_result(policy(copy.deepcopy(docs)))
            except Exception as error:  # a raise means invalid (or the module cannot run)
                return [f"{type(error).__name__}: {error}"]
            return errors
        name = "scripts/validate_manifests.py (schema + CEL" + (" + mesh policy)" if policy else ")")
        return name, via_module
    return f"CRD schemas in {ISTIO_CRDS} (scripts/validate_manifests.py not found)", crd_schema_validator()


def normalise_result(result: Any) -> list[str]:
    """validate_documents may return None/True (valid), False, or a collection of errors."""
    if result is None or result is True:
        return []
    if result is False:
        return ["invalid (validate_documents returned False)"]
    if isinstance(result, str):
        return [result] if result else []
    if isinstance(result, dict):
        return [f"{k}: {v}" for k, v in result.items() if v]
    errors = []
    for item in result:
        if item in (None, True, "", [], {}):
            continue
        if isinstance(item, (tuple, list)) and len(item) == 2 and item[1] in (None, True, "", [], {}):
            continue  # (document, no errors)
        errors.append(str(item))
    return errors


def crd_schema_validator() -> Callable[[list[dict[str, Any]]], list[str]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    if ISTIO_CRDS.is_file():
        for crd in yaml.safe_load_all(ISTIO_CRDS.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = dig(version, "schema.openAPIV3Schema")
                if schema:
                    schemas[(f"{group}/{version['name']}", kind)] = strict_schema(schema)

    def validate(docs: list[dict[str, Any]]) -> list[str]:
        if not schemas:
            return [f"no Istio CRD schemas at {ISTIO_CRDS} (set ISTIO_CRDS)"] if docs else []
        errors = []
        for doc in docs:
            schema = schemas.get((doc.get("apiVersion"), doc.get("kind")))
            if schema is None:
                errors.append(f"{ident(doc)}: no Istio CRD schema for {doc.get('apiVersion')}")
                continue
            body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
            for error in jsonschema.Draft7Validator(schema).iter_errors(body):
                path = ".".join(str(p) for p in error.absolute_path)
                errors.append(f"{ident(doc)}: {path}: {error.message}")
        return errors

    return validate


def strict_schema(schema: Any) -> Any:
    """An OpenAPI schema where objects with listed properties reject unknown ones
    (the API server would silently prune them: a typo would be lost)."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


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
    value_files = sorted(CI_VALUES.glob("*.yaml"))
    if not value_files:
        failures.add(str(CI_VALUES), "no value sets")
    lint_tmp = tempfile.TemporaryDirectory()
    lint_dir = standalone_copy(lint_tmp.name)
    for values_file in value_files:
        where = values_file.name
        failures.unit(f"value set {where}")
        print(f"\n== {where}")
        values = load_values(values_file)
        with quiet_native_logs():
            report = lint(str(lint_dir), values, strict=True, namespace=NAMESPACE,
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
            failures.add(where, f"does not render: {error}")
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
        if values.get("istio", {}).get("enabled"):
            check_mesh_rendered(where, docs, values, failures)
        counts[where] = collections.Counter(obj["kind"] for _, obj in docs)
        width = max(len(k) for k in counts[where])
        for kind, n in sorted(counts[where].items()):
            print(f"  {kind:<{width}}  {n:>3}")
        print(f"  {'total':<{width}}  {sum(counts[where].values()):>3}")
    return counts


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


def one_line(message: str) -> str:
    return re.sub(r"\s+", " ", message).strip()


def check_without_nats_chart(failures: Failures) -> None:
    """nats.enabled=false must not need charts/nats; enabled without it says what to run."""
    print("\n== without the NATS chart (charts/nats absent)")
    failures.unit("without charts/nats")
    with tempfile.TemporaryDirectory() as tmp:
        copy_dir = Path(tmp) / "game-rewards"
        # Follow symlinks: the copy must not point back at a relative mesh/.
        shutil.copytree(CHART_DIR, copy_dir, symlinks=False,
                        ignore=lambda d, names: ["nats"] if Path(d).name == "charts" else [])
        try:
            docs = documents(render(load_values(CI_VALUES / "default-values.yaml"), copy_dir))
            print(f"  nats.enabled=false renders: {len(docs)} objects")
        except helm_errors.HelmError as error:
            failures.add("without charts/nats", f"nats.enabled=false does not render: {one_line(str(error))}")
        try:
            render({"nats": {"enabled": True}}, copy_dir)
        except helm_errors.HelmRenderError as error:
            if "helm dependency update" not in str(error):
                failures.add("without charts/nats", f"unexpected error: {one_line(str(error))}")
            else:
                print("  nats.enabled=true is refused: 'run `helm dependency update …`'")
        else:
            failures.add("without charts/nats", "nats.enabled=true rendered without the NATS chart")


def standalone_copy(tmp: str) -> Path:
    """A copy of the chart without its NATS dependency, for the Helm steps that
    insist on dependencies being present (lint, package): the dependency is
    fetched by `helm dependency build`, which needs the network, and every CI
    value set uses an existing NATS. Symlinks (files/mesh) are copied as files."""
    copy = Path(tmp) / "standalone" / CHART_DIR.name
    shutil.copytree(CHART_DIR, copy, symlinks=False)
    chart_yaml = copy / "Chart.yaml"
    meta = yaml.safe_load(chart_yaml.read_text())
    meta.pop("dependencies", None)
    chart_yaml.write_text(yaml.safe_dump(meta, sort_keys=False))
    return copy


def check_package(failures: Failures) -> None:
    """`helm package` must carry mesh/ (the files/mesh symlink): the packaged
    chart renders every value set like the source. The NATS dependency is
    fetched by `helm dependency build`, which needs the network, so the check
    packages a copy whose Chart.yaml leaves it out (every CI value set uses an
    existing NATS)."""
    print("\n== packaged chart (helm package, without the NATS dependency)")
    failures.unit("packaged chart")
    with tempfile.TemporaryDirectory() as tmp:
        copy = standalone_copy(tmp)
        with quiet_native_logs():
            archive = Path(package(str(copy), destination=tmp))
        for values_file in sorted(CI_VALUES.glob("*.yaml")):
            try:
                with quiet_native_logs(), Chart.load(str(archive)) as chart:
                    docs = documents(chart.render(load_values(values_file), name=RELEASE, namespace=NAMESPACE))
            except helm_errors.HelmError as error:
                failures.add(f"{archive.name} {values_file.name}", f"does not render: {one_line(str(error))}")
                continue
            source = documents(render(load_values(values_file)))
            if [ident(o) for _, o in docs] != [ident(o) for _, o in source]:
                failures.add(f"{archive.name} {values_file.name}", "renders other objects than the source chart")
        print(f"  {archive.name}: renders every value set like the source chart")


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
    check_mesh_link(failures)
    counts = check_value_sets(istio, failures, args.out, args.verbose)
    rejected = check_broken_fixtures(failures)
    check_without_nats_chart(failures)
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

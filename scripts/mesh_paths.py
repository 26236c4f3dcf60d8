#!/usr/bin/env python3
"""Who may reach whom under Istio, proven on the chart's rendered objects.

``scripts/tests/mesh-paths.yaml`` lists calls — a caller (a workload of the
release, or one outside it: the ingress gateway, KEDA's operator, a
Prometheus without a sidecar, a pod of another namespace), a destination
workload, port, method, path, host, and the token's roles — each with the
decision it must get. This module evaluates them the way Istio does, on the
PeerAuthentications, RequestAuthentications and AuthorizationPolicies a value
set renders:

1. mTLS: a caller without a sidecar reaches a port only where the
   destination's PeerAuthentication (workload over namespace, port-level over
   workload) is not STRICT;
2. JWT: a request principal exists when the call carries a token and a
   RequestAuthentication selects the destination;
3. authorization: a matching DENY policy refuses; otherwise, when ALLOW
   policies select the workload, one of them must match.

Then it proves the policies from both sides:

- every case gets its expected decision (a denied case also names the
  policy that denies it, and that policy must be the reason);
- every allowed path the policies open — each (rule, source identity,
  operation, path) of every ALLOW policy, and each PERMISSIVE metrics port —
  is exercised by an allowed case, so a policy that opens something nobody
  listed fails;
- every AuthorizationPolicy and PeerAuthentication has at least one denied case.

Used by scripts/check_chart.py (``check(docs, namespace) -> (lines, problems)``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "scripts" / "tests" / "mesh-paths.yaml"


@dataclass
class Workload:
    name: str
    namespace: str
    labels: dict[str, str]
    service_account: str
    sidecar: bool = True


@dataclass
class Call:
    source: Workload
    target: Workload
    port: int
    method: str = "POST"
    path: str = "/"
    host: str = ""
    roles: list[str] | None = None  # None: no token

    def describe(self) -> str:
        token = f" token roles={self.roles}" if self.roles is not None else " no token"
        host = f" host {self.host}" if self.host else ""
        return f"{self.source.name} -> {self.target.name}:{self.port} {self.method} {self.path}{host}{token}"


@dataclass
class Decision:
    allowed: bool
    reason: str                      # "mtls", "deny-policy", "no-allow-match", "allowed"
    policies: list[str] = field(default_factory=list)  # DENY that matched / ALLOWs that did not / ALLOW that matched
    covered: set[tuple] = field(default_factory=set)    # coverage keys of the ALLOW entries that matched


def _dig(obj: Any, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def _matches(value: str, pattern: str) -> bool:
    """Istio string match: exact, ``prefix*``, ``*suffix`` or ``*`` (non-empty)."""
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _any(value: str, patterns: list[str]) -> bool:
    return any(_matches(value, str(p)) for p in patterns)


def principal(trust_domain: str, workload: Workload) -> str:
    return f"{trust_domain}/ns/{workload.namespace}/sa/{workload.service_account}" if workload.sidecar else ""


class Mesh:
    """The security objects of one rendered value set."""

    def __init__(self, docs: list[dict[str, Any]], namespace: str, trust_domain: str, root_namespace: str):
        self.namespace = namespace
        self.trust_domain = trust_domain
        self.root = root_namespace

        def ns(obj: dict[str, Any]) -> str:
            return str(_dig(obj, "metadata", "namespace", default=namespace))

        self.peer = [(ns(o), o) for o in docs if o.get("kind") == "PeerAuthentication"]
        self.request_auth = [(ns(o), o) for o in docs if o.get("kind") == "RequestAuthentication"]
        self.authz = [(ns(o), o) for o in docs if o.get("kind") == "AuthorizationPolicy"]

    @staticmethod
    def _selects(obj: dict[str, Any], workload: Workload) -> bool:
        selector = _dig(obj, "spec", "selector", "matchLabels", default={}) or {}
        return all(workload.labels.get(k) == v for k, v in selector.items())

    def _applies(self, namespace: str, obj: dict[str, Any], workload: Workload) -> bool:
        if namespace == self.root and not _dig(obj, "spec", "selector"):
            return True  # mesh-wide
        return namespace == workload.namespace and self._selects(obj, workload)

    def mtls_mode(self, workload: Workload, port: int) -> tuple[str, str]:
        """(mode, PeerAuthentication name) for ``port`` of ``workload``: the
        mesh-wide policy, then the namespace's, then the workload's; a
        port-level mode wins over its policy's own."""
        layers = []
        for namespace, obj in self.peer:
            selector = _dig(obj, "spec", "selector")
            if namespace == self.root and not selector:
                layers.append((0, obj))
            elif namespace == workload.namespace and not selector:
                layers.append((1, obj))
            elif namespace == workload.namespace and self._selects(obj, workload):
                layers.append((2, obj))
        mode, owner = "PERMISSIVE", "(Istio default)"
        for _, obj in sorted(layers, key=lambda layer: layer[0]):
            name = _dig(obj, "metadata", "name")
            if _dig(obj, "spec", "mtls", "mode"):
                mode, owner = _dig(obj, "spec", "mtls", "mode"), name
            port_mode = _dig(obj, "spec", "portLevelMtls", str(port), "mode")
            if port_mode:
                mode, owner = port_mode, name
        return mode, owner

    def has_request_principal(self, call: Call) -> bool:
        return call.roles is not None and any(self._applies(n, o, call.target) for n, o in self.request_auth)

    def evaluate(self, call: Call) -> Decision:
        if not call.target.sidecar:
            return Decision(True, "allowed", [])  # nothing enforces anything there
        mode, owner = self.mtls_mode(call.target, call.port)
        if not call.source.sidecar and mode == "STRICT":
            return Decision(False, "mtls", [owner])
        peer = principal(self.trust_domain, call.source)
        request_principal = "issuer/subject" if self.has_request_principal(call) else ""
        applying = [(n, o) for n, o in self.authz if self._applies(n, o, call.target)]
        denies = [o for _, o in applying if _dig(o, "spec", "action") == "DENY"]
        allows = [o for _, o in applying if _dig(o, "spec", "action", default="ALLOW") == "ALLOW"]
        matched_denies = [o["metadata"]["name"] for o in denies
                          if self._policy_matches(o, call, peer, request_principal)]
        if matched_denies:
            return Decision(False, "deny-policy", matched_denies)
        if not allows:
            return Decision(True, "allowed", [])
        decision = Decision(False, "no-allow-match", [o["metadata"]["name"] for o in allows])
        for obj in allows:
            keys = self._policy_matches(obj, call, peer, request_principal)
            if keys:
                decision.allowed, decision.reason = True, "allowed"
                decision.covered |= keys
        if decision.allowed:
            decision.policies = sorted({k[0] for k in decision.covered})
        return decision

    def _policy_matches(self, obj: dict[str, Any], call: Call, peer: str, request_principal: str) -> set[tuple]:
        """The coverage keys of every (rule, source value, operation, path) that
        matches the call; empty when none does."""
        name = obj["metadata"]["name"]
        keys: set[tuple] = set()
        for i, rule in enumerate(_dig(obj, "spec", "rules", default=[]) or []):
            rule = rule or {}
            sources = [(j, self._source_match(f.get("source") or {}, peer, request_principal))
                       for j, f in enumerate(rule.get("from") or [])]
            sources = [(j, m) for j, m in sources if m is not None] if rule.get("from") else [(None, "*")]
            operations = [(j, self._operation_match(t.get("operation") or {}, call))
                          for j, t in enumerate(rule.get("to") or [])]
            operations = [(j, m) for j, m in operations if m is not None] if rule.get("to") else [(None, "*")]
            if not sources or not operations or not self._conditions(rule.get("when") or [], call, request_principal):
                continue
            for j, who in sources:
                for k, what in operations:
                    keys.add((name, i, j, who, k, what))
        return keys

    @staticmethod
    def _source_match(source: dict[str, Any], peer: str, request_principal: str) -> str | None:
        """None when the source does not match; else the principal pattern it
        matched on (the coverage key), ``*`` when it names none."""
        matched = "*"
        if "principals" in source:
            hits = [p for p in source["principals"] if _matches(peer, str(p))]
            if not hits:
                return None
            matched = hits[0]
        if "notPrincipals" in source and _any(peer, source["notPrincipals"]):
            return None
        if "requestPrincipals" in source and not _any(request_principal, source["requestPrincipals"]):
            return None
        if "notRequestPrincipals" in source and _any(request_principal, source["notRequestPrincipals"]):
            return None
        if "namespaces" in source:
            namespace = peer.split("/ns/")[1].split("/")[0] if "/ns/" in peer else ""
            if not _any(namespace, source["namespaces"]):
                return None
        return matched

    @staticmethod
    def _operation_match(operation: dict[str, Any], call: Call) -> str | None:
        checks = [
            ("ports", str(call.port)), ("methods", call.method), ("paths", call.path), ("hosts", call.host),
        ]
        for key, value in checks:
            if key in operation and not _any(value, operation[key]):
                return None
            if "not" + key[0].upper() + key[1:] in operation and _any(value, operation["not" + key[0].upper() + key[1:]]):
                return None
        if "paths" in operation:
            return next(str(p) for p in operation["paths"] if _matches(call.path, str(p)))
        return "*"

    @staticmethod
    def _conditions(conditions: list[dict[str, Any]], call: Call, request_principal: str) -> bool:
        for condition in conditions:
            key = condition.get("key", "")
            if key.startswith("request.auth.claims["):
                claim = key[len("request.auth.claims["):-1]
                held = (call.roles or []) if request_principal and claim == "roles" else []
                if "values" in condition and not any(_any(str(v), condition["values"]) for v in held):
                    return False
                if "notValues" in condition and any(_any(str(v), condition["notValues"]) for v in held):
                    return False
            else:
                raise ValueError(f"condition key {key!r} is not modelled by scripts/mesh_paths.py")
        return True

    def allow_entries(self) -> set[tuple]:
        """Every (policy, rule, source, principal, operation, path) an ALLOW
        policy opens: the paths the cases must exercise."""
        entries: set[tuple] = set()
        for _, obj in self.authz:
            if _dig(obj, "spec", "action", default="ALLOW") != "ALLOW":
                continue
            name = obj["metadata"]["name"]
            for i, rule in enumerate(_dig(obj, "spec", "rules", default=[]) or []):
                rule = rule or {}
                sources = [(j, p) for j, f in enumerate(rule.get("from") or [])
                           for p in ((f.get("source") or {}).get("principals") or ["*"])] or [(None, "*")]
                operations = [(k, p) for k, t in enumerate(rule.get("to") or [])
                              for p in ((t.get("operation") or {}).get("paths") or ["*"])] or [(None, "*")]
                for j, who in sources:
                    for k, what in operations:
                        entries.add((name, i, j, who, k, what))
        return entries


def load_cases(path: Path = CASES) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workloads(docs: list[dict[str, Any]], namespace: str, outside: dict[str, Any]) -> dict[str, Workload]:
    """The release's workloads (by name) and the callers outside it."""
    found: dict[str, Workload] = {}
    for obj in docs:
        if obj.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        pod = _dig(obj, "spec", "template", default={})
        found[obj["metadata"]["name"]] = Workload(
            obj["metadata"]["name"], namespace, dict(_dig(pod, "metadata", "labels", default={}) or {}),
            _dig(pod, "spec", "serviceAccountName", default="default") or "default")
    for name, spec in (outside or {}).items():
        found[name] = Workload(name, spec["namespace"], dict(spec.get("labels") or {}),
                               spec.get("serviceAccount", "default"), bool(spec.get("sidecar", True)))
    return found


def check(docs: list[dict[str, Any]], namespace: str, trust_domain: str,
          cases: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(report lines, problems) of the cases against the rendered ``docs``."""
    cases = cases if cases is not None else load_cases()
    lines: list[str] = []
    problems: list[str] = []
    mesh = Mesh(docs, namespace, trust_domain, cases.get("root_namespace", "istio-system"))
    known = workloads(docs, namespace, cases.get("outside", {}))
    covered: set[tuple] = set()
    denied_by: dict[str, int] = {}
    permissive_hit: set[tuple[str, int]] = set()
    for case in cases["cases"]:
        missing = [w for w in (case["from"], case["to"]) if w not in known]
        if missing:
            problems.append(f"case {case}: no workload {missing} in this value set")
            continue
        call = Call(known[case["from"]], known[case["to"]], int(case["port"]), case.get("method", "POST"),
                    case.get("path", "/"), case.get("host", ""), case.get("roles"))
        decision = mesh.evaluate(call)
        expected = case["expect"]
        verdict = "allow" if decision.allowed else "deny"
        if verdict != expected:
            problems.append(f"{call.describe()}: expected {expected}, got {verdict} "
                            f"({decision.reason}: {', '.join(decision.policies) or '-'})")
            continue
        if decision.allowed:
            covered |= decision.covered
            mode, owner = mesh.mtls_mode(call.target, call.port)
            if not call.source.sidecar and mode == "PERMISSIVE":
                permissive_hit.add((owner, call.port))
            lines.append(f"allow {call.describe()}  [{', '.join(decision.policies) or 'no ALLOW policy selects it'}]")
        else:
            named = case.get("policy")
            if not named or named not in decision.policies:
                problems.append(f"{call.describe()}: denied by {decision.reason} "
                                f"({', '.join(decision.policies)}), but the case names {named!r}")
                continue
            denied_by[named] = denied_by.get(named, 0) + 1
            lines.append(f"deny  {call.describe()}  [{named}: {decision.reason}]")
    for entry in sorted(mesh.allow_entries() - covered, key=str):
        policy, rule, _, who, _, what = entry
        problems.append(f"AuthorizationPolicy {policy} rules[{rule}] allows {who} on {what}, "
                        "but no allowed case exercises it (add one to scripts/tests/mesh-paths.yaml)")
    for _, obj in mesh.peer:
        name = obj["metadata"]["name"]
        for port, level in (_dig(obj, "spec", "portLevelMtls", default={}) or {}).items():
            if level.get("mode") == "PERMISSIVE" and (name, int(port)) not in permissive_hit:
                problems.append(f"PeerAuthentication {name}: port {port} is PERMISSIVE but no allowed case "
                                "from a caller without a sidecar uses it")
    for _, obj in mesh.authz + [(n, o) for n, o in mesh.peer if _dig(o, "spec", "mtls", "mode") == "STRICT"]:
        name = obj["metadata"]["name"]
        if not denied_by.get(name):
            problems.append(f"{obj['kind']} {name}: no denied case proves what it refuses")
    return lines, problems

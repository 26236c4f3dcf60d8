#!/usr/bin/env python3
"""Offline validation of the Istio manifests in mesh/ (no cluster, no istioctl).

Three layers, each catching what the one before cannot:

1. **Schema** — every Istio object (apiVersion ``*.istio.io/*``) is validated
   against the ``openAPIV3Schema`` of its CRD kind and version, taken from
   Istio's generated CRDs, vendored in ``third_party/istio/<version>/``:
   the OLDEST supported Istio and the newest release (listed in
   ``third_party/vendored.yaml``; ``$ISTIO_CRDS`` — paths separated by
   ``:`` — replaces them). An object must be valid for every one of them,
   so no field newer than the floor the READMEs state is ever used.
   Structural strictness: an object schema that lists ``properties`` and says
   nothing of ``additionalProperties`` rejects unknown fields. The API server
   would silently *prune* them, so a typo (``attemps``) would vanish and the
   route would run with Istio's hidden defaults; here it fails.
   ``x-kubernetes-preserve-unknown-fields: true`` is respected, ``nullable``
   and ``x-kubernetes-int-or-string`` mean what Kubernetes means, ``int32``
   values must fit, and ``metadata`` is checked as an ObjectMeta.
2. **CEL** — the CRDs' ``x-kubernetes-validations`` rules (durations such as
   ``timeout: 2 seconds``, mutually exclusive fields, port ranges) are
   evaluated with cel-python, with the Kubernetes CEL library functions the
   Istio CRDs use (``url``, ``isURL``, ``getScheme``, ``substring``).
3. **Mesh policy** (``check_mesh_policy``; the CLI runs it unless
   ``--schema-only``) — what istiod's validating webhook rejects but the
   schema cannot express, and this project's rules (docs/mesh-pitfalls.md):
   explicit ``retries`` on every route, ``attempts: 0``
   on non-idempotent methods, known ``retryOn`` tokens, no array claim in
   ``outputClaimToHeaders``, an explicit ``forwardOriginalToken``, a
   DestinationRule with limits, outlier detection and ISTIO_MUTUAL for every
   in-mesh VirtualService host, JWT-based rules backed by a
   RequestAuthentication, callers named by SPIFFE principal
   (``<trust domain>/ns/<namespace>/sa/<account>``; a bare name never
   matches), every unary route's timeout above the routes behind it, no
   duplicate objects, and every file listed in its kustomization.yaml.

Usage (exit status 0 = all good, 1 = a manifest is invalid or a broken fixture
was accepted, 2 = cannot run)::

    .tools/venv/bin/python scripts/validate_manifests.py mesh
    .tools/venv/bin/python scripts/validate_manifests.py --self-test
    .tools/venv/bin/python scripts/validate_manifests.py mesh --self-test   # both

``--expect-failure DIR`` (``--self-test`` is that for
scripts/fixtures/mesh-broken/) validates every YAML file of DIR on its own and
fails if any file is accepted, or is rejected without the message its
``# expect-error: <text>`` header names — so each fixture proves one check.

As a module (the Helm chart check reuses it on rendered output)::

    import validate_manifests
    sets = validate_manifests.load_istio_schema_sets()     # {version: schemas}, oldest first
    errors = validate_manifests.validate_documents(docs)    # list[str], [] = valid (every version)

``validate_documents`` is schema + CEL only (non-Istio kinds are ignored);
``check_mesh_policy(docs)`` adds layer 3.

Dependencies: scripts/requirements-deploy.txt (PyYAML, jsonschema, cel-python).
"""

from __future__ import annotations

import argparse
import base64
import copy
import functools
import os
import re
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

try:
    import jsonschema
    import yaml
except ImportError as missing:  # pragma: no cover - environment problem
    sys.exit(
        f"validate_manifests: {missing.name} is missing; install the deploy tools with\n"
        "  .tools/venv/bin/pip install -r scripts/requirements-deploy.txt"
    )

REPO_ROOT = Path(__file__).resolve().parent.parent
VENDORED = REPO_ROOT / "third_party" / "vendored.yaml"
ISTIO_DIR = "third_party/istio/"
BROKEN_FIXTURES = REPO_ROOT / "scripts" / "fixtures" / "mesh-broken"

# ---------------------------------------------------------------------------
# Project facts the policy layer checks against (keep in step with mesh/).
# ---------------------------------------------------------------------------

#: gRPC methods a mesh retry could apply twice: every route they can reach
#: must say ``retries: {attempts: 0}``. (AchieveMission and gift's Exchange
#: are idempotent by key and deliberately absent.)
NON_IDEMPOTENT_METHODS = (
    "/game.wallet.v1.WalletService/ExchangeReward",
    # Idempotent per key, but a re-send would race the call still in flight.
    "/game.wallet.v1.WalletService/Exchange",
)

#: JWT claims that are (or may be) arrays: Envoy cannot copy them to a header
#: (istio/istio#49169), the header would silently be missing.
ARRAY_CLAIMS = frozenset({"roles", "groups", "aud", "amr"})

#: retryOn tokens istiod's webhook accepts (pilot validation.go
#: supportedRetryOnPolicies); an HTTP status code is accepted as well.
RETRY_ON_TOKENS = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
    "retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers",
    "envoy-ratelimited", "http3-post-connect-failure",
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
})

#: Envoy retries a try that hit perTryTimeout only under these (router
#: RetryStateImpl); with any other retryOn a perTryTimeout is a second deadline.
RETRY_ON_TIMEOUT_TOKENS = frozenset({"5xx", "gateway-error"})

# ObjectMeta as the API server knows it: unknown keys under metadata are typos.
_STR = {"type": "string"}
_STR_MAP = {"type": "object", "additionalProperties": _STR}
OBJECT_META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": _STR, "generateName": _STR, "namespace": _STR, "uid": _STR,
        "resourceVersion": _STR, "generation": {"type": "integer"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": _STR, "deletionGracePeriodSeconds": {"type": "integer"},
        "labels": _STR_MAP, "annotations": _STR_MAP,
        "finalizers": {"type": "array", "items": _STR},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "managedFields": {"type": "array", "items": {"type": "object"}},
        "selfLink": _STR,
    },
}
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# ---------------------------------------------------------------------------
# YAML loading
# ---------------------------------------------------------------------------

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader that rejects duplicate mapping keys, as kubectl's strict
    decoding does (PyYAML would silently keep the last one)."""

    def construct_mapping(self, node, deep=False):  # noqa: D401 - PyYAML hook
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark)
            seen[key] = True
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)


@dataclass
class Document:
    """One YAML document of a manifest file."""

    source: str          # path as given (for messages)
    index: int           # 1-based document number in its file
    obj: Any             # the parsed document (None for an empty one)
    load_error: str = ""  # set when the file could not be parsed

    @property
    def where(self) -> str:
        return f"{self.source}#{self.index}"


def iter_manifest_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every *.yaml / *.yml under the given files or directories, sorted."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            yield path
        else:
            raise FileNotFoundError(f"no such file or directory: {raw}")


def load_documents(path: Path) -> list[Document]:
    """The documents of one file; a parse error becomes one failed Document."""
    source = os.path.relpath(path)
    try:
        docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_StrictLoader))
    except yaml.YAMLError as error:
        return [Document(source, 1, None, f"not valid YAML: {' '.join(str(error).split())}")]
    return [Document(source, i, doc) for i, doc in enumerate(docs, 1) if doc is not None]


def is_kustomization(path: Path) -> bool:
    return path.name in ("kustomization.yaml", "kustomization.yml", "Kustomization")


# ---------------------------------------------------------------------------
# CRD schemas -> strict JSON Schema
# ---------------------------------------------------------------------------

@dataclass
class IstioSchema:
    """The schema of one Istio kind at one version."""

    api_version: str
    kind: str
    openapi: dict[str, Any]                       # as in the CRD (for CEL)
    _validator: Any = field(default=None, repr=False)

    @property
    def validator(self) -> Any:
        """A jsonschema validator of the strict form (built on first use)."""
        if self._validator is None:
            strict = _strict(copy.deepcopy(self.openapi))
            props = strict.setdefault("properties", {})
            props.setdefault("apiVersion", _STR)
            props.setdefault("kind", _STR)
            props.setdefault("metadata", OBJECT_META_SCHEMA)
            strict["additionalProperties"] = False
            self._validator = jsonschema.Draft7Validator(strict, format_checker=_FORMATS)
        return self._validator


def _strict(node: Any) -> Any:
    """Kubernetes structural-schema semantics, in JSON Schema terms."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: (_strict(v) if k in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "not") else v)
           for k, v in node.items() if k != "description"}
    if "properties" in node:
        out["properties"] = {k: _strict(v) for k, v in node["properties"].items()}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    is_object = node.get("type") == "object"
    if (is_object and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        # Absent additionalProperties on a structural object: unknown fields
        # would be pruned by the API server. For us they are errors.
        out["additionalProperties"] = False
    return out


_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("int32")
def _is_int32(value: Any) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**31) <= value < 2**31


@_FORMATS.checks("int64")
def _is_int64(value: Any) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**63


@_FORMATS.checks("byte")
def _is_base64(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return True


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def crd_files() -> list[tuple[str, Path]]:
    """The Istio CRD files to validate against, oldest first, as (version, path):
    ``$ISTIO_CRDS`` (paths separated by ``:``; the version is the parent
    directory's name) or the vendored ones of third_party/vendored.yaml."""
    env = os.environ.get("ISTIO_CRDS")
    if env:
        files = [(Path(p).resolve().parent.name, Path(p)) for p in env.split(os.pathsep) if p]
    else:
        records = yaml.safe_load(VENDORED.read_text(encoding="utf-8")) if VENDORED.is_file() else []
        files = [(str(r["version"]), REPO_ROOT / r["path"]) for r in records or []
                 if str(r.get("path", "")).startswith(ISTIO_DIR)]
    if not files:
        raise FileNotFoundError(f"no Istio CRDs: {os.path.relpath(VENDORED)} lists none under {ISTIO_DIR} "
                                "(and ISTIO_CRDS is not set)")
    return sorted(files, key=lambda item: _version_key(item[0]))


def oldest_supported_istio() -> str:
    """The floor: the oldest Istio whose CRDs the manifests are validated against."""
    return crd_files()[0][0]


@functools.lru_cache(maxsize=4)
def _load_istio_schemas_cached(path: str, mtime_ns: int) -> dict[tuple[str, str], IstioSchema]:
    del mtime_ns  # part of the cache key only
    schemas: dict[tuple[str, str], IstioSchema] = {}
    with open(path, encoding="utf-8") as handle:
        for crd in yaml.load_all(handle, Loader=_BaseLoader):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd.get("spec") or {}
            group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
            for version in spec.get("versions") or []:
                openapi = ((version.get("schema") or {}).get("openAPIV3Schema"))
                if group and kind and openapi:
                    api_version = f"{group}/{version['name']}"
                    schemas[(api_version, kind)] = IstioSchema(api_version, kind, openapi)
    if not schemas:
        raise ValueError(f"{path}: no CustomResourceDefinition with an openAPIV3Schema")
    return schemas


def load_istio_schemas(path: str | Path) -> dict[tuple[str, str], IstioSchema]:
    """Schemas of every kind and version in one Istio CRD file, keyed by
    ``(apiVersion, kind)``, e.g. ``("networking.istio.io/v1", "VirtualService")``.

    Raises FileNotFoundError when the file is missing."""
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"Istio CRDs not found at {target} (see third_party/vendored.yaml)")
    resolved = target.resolve()
    return _load_istio_schemas_cached(str(resolved), resolved.stat().st_mtime_ns)


SchemaSets = dict[str, dict[tuple[str, str], IstioSchema]]


def load_istio_schema_sets() -> SchemaSets:
    """``{Istio version: schemas}`` for every CRD file of :func:`crd_files`, oldest first."""
    return {version: load_istio_schemas(path) for version, path in crd_files()}


# ---------------------------------------------------------------------------
# CEL (x-kubernetes-validations)
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _cel() -> tuple[Any, dict[str, Any]]:
    try:
        import celpy  # type: ignore[import-not-found]
        from celpy import celtypes  # type: ignore[import-not-found]
    except ImportError as missing:
        raise RuntimeError(
            f"{missing.name} is missing (cel-python): .tools/venv/bin/pip install "
            "-r scripts/requirements-deploy.txt") from missing

    class URL(celtypes.StringType):
        """Kubernetes CEL URL value (k8s.io/apiserver/pkg/cel/library/urls.go)."""

    def k8s_url(value: Any) -> Any:
        text = str(value)
        parts = urllib.parse.urlsplit(text)
        # Like Go's url.ParseRequestURI: an absolute URL or an absolute path.
        if not ((parts.scheme and (parts.netloc or parts.path)) or text.startswith("/")) or " " in text:
            raise ValueError(f"URL parse error during conversion from string: {text}")
        return URL(text)

    def is_url(value: Any) -> Any:
        try:
            k8s_url(value)
        except ValueError:
            return celtypes.BoolType(False)
        return celtypes.BoolType(True)

    def get_scheme(value: Any) -> Any:
        return celtypes.StringType(urllib.parse.urlsplit(str(value)).scheme)

    def substring(value: Any, start: Any, end: Any = None) -> Any:
        text = str(value)
        begin, stop = int(start), (len(text) if end is None else int(end))
        if not 0 <= begin <= stop <= len(text):
            raise ValueError(f"substring: index out of range [{begin}, {stop}) of {len(text)}")
        return celtypes.StringType(text[begin:stop])

    functions = {"url": k8s_url, "isURL": is_url, "getScheme": get_scheme, "substring": substring}
    return celpy, functions


@functools.lru_cache(maxsize=256)
def _cel_program(rule: str) -> Any:
    celpy, functions = _cel()
    env = celpy.Environment()
    return env.program(env.compile(rule), functions=functions)


_PY_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "number": (int, float)}


def _type_matches(schema: dict[str, Any], value: Any) -> bool:
    """CEL runs only on a value of the schema's type (a wrong type is already
    reported by the schema layer, and its CEL result would be noise)."""
    wanted = schema.get("type")
    if wanted is None:
        return True
    if wanted == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if wanted == "number" and isinstance(value, bool):
        return False
    return isinstance(value, _PY_TYPES.get(wanted, object))


def _cel_errors(schema: dict[str, Any], value: Any, path: list[Any]) -> list[str]:
    errors: list[str] = []
    if not isinstance(schema, dict) or not _type_matches(schema, value):
        return errors
    for rule in schema.get("x-kubernetes-validations") or []:
        expression = rule.get("rule", "")
        if "oldSelf" in expression:
            continue  # transition rules need the stored object
        celpy, _ = _cel()
        try:
            raw = _cel_program(expression).evaluate({"self": celpy.json_to_cel(value)})
            if isinstance(raw, Exception):  # celpy may return an error value instead of raising
                raise raw
            # Only a boolean true passes (celpy's BoolType is an int subclass).
            result = isinstance(raw, int) and type(raw).__name__ == "BoolType" and bool(raw)
            detail = "" if result or type(raw).__name__ == "BoolType" else f"result {raw!r} is not a bool"
        except Exception as error:  # a rule that cannot be evaluated fails, as in the API server
            result = False
            detail = " ".join(str(error.args[-1] if error.args else error).split())[:160]
        if not result:
            message = rule.get("message") or f"failed rule `{' '.join(expression.split())}`"
            if not rule.get("message") and detail:
                message += f" ({detail})"
            shown = f" (got {value!r})" if isinstance(value, (str, int, float)) else ""
            errors.append(f"{fmt_path(path)}: {message}{shown}")
    properties = schema.get("properties") or {}
    if isinstance(value, dict):
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                errors.extend(_cel_errors(sub, child, [*path, key]))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, child in enumerate(value):
            errors.extend(_cel_errors(schema["items"], child, [*path, index]))
    return errors


# ---------------------------------------------------------------------------
# Layers 1 and 2: one object against its CRD
# ---------------------------------------------------------------------------

def fmt_path(path: Iterable[Any]) -> str:
    """``spec.http[0].retries.attempts``; odd keys quoted: ``labels["a.b/c"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{str(part)!r}]".replace("'", '"')
    return out or "(root)"


def is_istio(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    group = str(obj.get("apiVersion", "")).partition("/")[0]
    return group == "istio.io" or group.endswith(".istio.io")


def describe(obj: Any) -> str:
    """``Kind name`` of an object (as far as it can be told)."""
    if not isinstance(obj, dict):
        return "<not an object>"
    kind = obj.get("kind") or "<no kind>"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name") or "<no name>"
    namespace = meta.get("namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


_JSON_TYPE_NAMES = {str: "string", dict: "object", list: "array", type(None): "null", bool: "boolean",
                    int: "integer", float: "number"}


def _schema_message(error: Any) -> list[str]:
    """jsonschema's errors rephrased the way a reviewer reads them."""
    where = fmt_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema or {}).get("properties") or {})
        unknown = [k for k in error.instance if k not in known]
        return [f"{fmt_path([*error.absolute_path, k])}: unknown field" for k in unknown] or [
            f"{where}: {error.message}"]
    if error.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        if missing:
            return [f"{fmt_path([*error.absolute_path, missing.group(1)])}: required field missing"]
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        got = _JSON_TYPE_NAMES.get(type(error.instance), type(error.instance).__name__)
        return [f"{where}: expected {wanted}, got {got} {error.instance!r}"]
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value if v is not None)
        return [f"{where}: {error.instance!r} is not one of [{allowed}]"]
    if error.validator == "format":
        return [f"{where}: {error.instance!r} is not a valid {error.validator_value}"]
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        exclusive = sorted({name for branch in error.validator_value
                            for name in (branch.get("required") or []) if name in error.instance})
        if len(exclusive) > 1:
            return [f"{where}: fields {', '.join(exclusive)} are mutually exclusive (set one)"]
    return [f"{where}: {error.message}"]


def validate_object(obj: Any, schemas: dict[tuple[str, str], IstioSchema]) -> list[str]:
    """Errors of one Istio object (messages without the ``Kind name`` prefix)."""
    if not isinstance(obj, dict):
        return [f"(root): expected an object, got {type(obj).__name__}"]
    errors: list[str] = []
    for key in ("apiVersion", "kind"):
        if not obj.get(key):
            errors.append(f"{key}: required field missing")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        errors.append("metadata.name: required field missing")
    elif not isinstance(meta["name"], str) or not DNS1123_SUBDOMAIN.match(meta["name"]) or len(meta["name"]) > 253:
        errors.append(f"metadata.name: {meta['name']!r} is not a DNS-1123 subdomain "
                      "(lower case alphanumerics, '-' and '.')")
    if errors and not obj.get("kind"):
        return errors
    schema = schemas.get((obj.get("apiVersion"), obj.get("kind")))
    if schema is None:
        known = sorted(v for v, k in schemas if k == obj.get("kind"))
        hint = f" (this CRD serves {', '.join(known)})" if known else " (no such Istio kind)"
        return [*errors, f"apiVersion: no CRD schema for {obj.get('kind')} at {obj.get('apiVersion')}{hint}"]
    schema_errors = sorted(schema.validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    for error in schema_errors:
        for message in _schema_message(error):
            if message not in errors and not (message.startswith("metadata.name:") and any(
                    e.startswith("metadata.name:") for e in errors)):
                errors.append(message)
    errors.extend(_cel_errors(schema.openapi, obj, []))
    return errors


def validate_object_versions(obj: Any, sets: SchemaSets) -> list[str]:
    """Errors of one Istio object against every Istio version of ``sets``.

    A problem every version reports is said once; one only some versions
    report names them, and a field only the oldest lacks says so: it is newer
    than the supported floor."""
    found: dict[str, list[str]] = {}
    for version, schemas in sets.items():
        for message in validate_object(obj, schemas):
            found.setdefault(message, []).append(version)
    versions = list(sets)
    errors = []
    for message, where in found.items():
        if len(where) == len(versions):
            errors.append(message)
            continue
        text = f"{message} in Istio {', '.join(where)}"
        if versions[0] in where and "unknown field" in message:
            text += (f" (a field newer than Istio {versions[0]}, the oldest supported release, whose API "
                     "server would silently drop it: use one every supported release has, or raise the "
                     "floor: third_party/vendored.yaml and the READMEs)")
        errors.append(text)
    return errors


def validate_documents(docs: Iterable[Any], sets: SchemaSets | None = None) -> list[str]:
    """Validate Istio objects against their CRD schemas (layers 1 and 2), in
    every supported Istio version (the vendored oldest and newest by default).

    ``docs`` are parsed YAML/JSON objects (non-Istio kinds and ``None`` are
    ignored). Returns one ``"Kind name: path: message"`` string per problem;
    an empty list means every Istio object is valid."""
    sets = sets if sets is not None else load_istio_schema_sets()
    errors: list[str] = []
    for obj in docs:
        if obj is None or not is_istio(obj):
            continue
        errors.extend(f"{describe(obj)}: {message}" for message in validate_object_versions(obj, sets))
    return errors


# ---------------------------------------------------------------------------
# Layer 3: mesh policy (istiod webhook rules + this project's rules)
# ---------------------------------------------------------------------------

def _dig(obj: Any, *keys: Any, default: Any = None) -> Any:
    for key in keys:
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
        if obj is None:
            return default
    return obj


def _route_matches(route: dict[str, Any], path: str) -> bool:
    """Whether an HTTP route would take a request for ``path`` (uri matches only;
    a route matching on anything else is assumed to possibly match)."""
    matches = route.get("match")
    if not matches:
        return True
    for match in matches:
        uri = match.get("uri") if isinstance(match, dict) else None
        if not uri:
            return True
        if "exact" in uri and uri["exact"] == path:
            return True
        if "prefix" in uri and path.startswith(uri["prefix"]):
            return True
        if "regex" in uri:
            try:
                if re.fullmatch(uri["regex"], path):
                    return True
            except re.error:
                return True
    return False


def _labels_subset(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    return all((labels or {}).get(k) == v for k, v in (selector or {}).items())


def _in_mesh_host(host: str) -> bool:
    """A Kubernetes Service of the mesh: a short name or ``*.svc[.cluster.local]``."""
    return "." not in host or host.endswith((".svc", ".svc.cluster.local"))


def _check_virtual_service(obj: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    routes = _dig(obj, "spec", "http", default=[]) or []
    for i, route in enumerate(routes):
        if not isinstance(route, dict):
            continue
        where = f"spec.http[{i}]" + (f" ({route['name']})" if route.get("name") else "")
        retries = route.get("retries")
        if retries is None and not route.get("redirect") and not route.get("directResponse"):
            errors.append(f"{where}.retries: missing: without it Istio retries 2x on "
                          "connect-failure,refused-stream,unavailable,cancelled,503 (set it, "
                          "`attempts: 0` to disable)")
        if isinstance(retries, dict):
            attempts = retries.get("attempts", 0)
            retry_on = retries.get("retryOn", "")
            if attempts == 0 and any(k in retries for k in ("perTryTimeout", "retryOn", "retryRemoteLocalities")):
                errors.append(f"{where}.retries: perTryTimeout/retryOn/retryRemoteLocalities set with "
                              "attempts 0 (istiod rejects: retry policy configured while disabled)")
            if attempts and not retry_on:
                errors.append(f"{where}.retries.retryOn: missing: state the conditions "
                              "(the default includes `cancelled` and 503)")
            for token in filter(None, (t.strip() for t in str(retry_on).split(","))):
                if token not in RETRY_ON_TOKENS and not (token.isdigit() and 100 <= int(token) <= 599):
                    errors.append(f"{where}.retries.retryOn: {token!r} is not a retryOn policy istiod accepts")
            if "perTryTimeout" in retries and attempts and not (
                    RETRY_ON_TIMEOUT_TOKENS & {t.strip() for t in str(retry_on).split(",")}):
                errors.append(f"{where}.retries.perTryTimeout: has no effect as a retry trigger: Envoy "
                              "retries a timed-out try only under 5xx or gateway-error; use `timeout`")
        if "timeout" not in route and "stream" not in str(route.get("name", "")):
            errors.append(f"{where}.timeout: missing: every unary route states its deadline "
                          "(name a long-lived streaming route `...-stream(s)` to exempt it)")
        for j, target in enumerate(route.get("route") or []):
            number = _dig(target, "destination", "port", "number")
            if isinstance(number, int) and not 0 < number <= 65535:
                errors.append(f"{where}.route[{j}].destination.port.number: {number} is not a port (1-65535)")
    for method in NON_IDEMPOTENT_METHODS:
        for i, route in enumerate(routes):
            if isinstance(route, dict) and _route_matches(route, method):
                attempts = _dig(route, "retries", "attempts", default=None)
                if attempts != 0:
                    where = f"spec.http[{i}]" + (f" ({route['name']})" if route.get("name") else "")
                    shown = "unset" if attempts is None else attempts
                    errors.append(f"{where}.retries.attempts: {method} is not idempotent and this "
                                  f"route takes it with attempts {shown}: must be 0")
                break
    return errors


def check_mesh_policy(docs: Iterable[Any]) -> list[str]:
    """Project and istiod-webhook rules across the Istio objects of one set
    (e.g. everything under mesh/). Returns ``"Kind name: path: message"``."""
    objs = [o for o in docs if is_istio(o) and isinstance(o.get("spec", {}), dict)]
    errors: list[str] = []

    def add(obj: dict[str, Any], message: str) -> None:
        errors.append(f"{describe(obj)}: {message}")

    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for obj in objs:
        key = (obj.get("kind", ""), str(_dig(obj, "metadata", "namespace", default="")),
               str(_dig(obj, "metadata", "name", default="")))
        if key in seen:
            add(obj, "metadata.name: duplicate: another object of this kind has this name "
                     "(the later apply silently replaces the earlier)")
        seen[key] = obj

    destination_rules = {}
    for obj in objs:
        if obj.get("kind") == "DestinationRule":
            host = str(_dig(obj, "spec", "host", default=""))
            destination_rules[host] = obj
            if not _in_mesh_host(host):
                continue  # an external service (ServiceEntry) has its own rules
            policy = _dig(obj, "spec", "trafficPolicy", default={}) or {}
            for needed in ("connectionPool", "outlierDetection"):
                if needed not in policy:
                    add(obj, f"spec.trafficPolicy.{needed}: missing: every destination states its "
                             "limits and ejection policy (issue 4)")
            if _dig(policy, "tls", "mode") != "ISTIO_MUTUAL":
                add(obj, "spec.trafficPolicy.tls.mode: must be ISTIO_MUTUAL (the namespace is STRICT mTLS)")

    request_authentications = [o for o in objs if o.get("kind") == "RequestAuthentication"]
    for obj in objs:
        kind = obj.get("kind")
        if kind == "VirtualService":
            errors.extend(f"{describe(obj)}: {m}" for m in _check_virtual_service(obj))
            if not _dig(obj, "spec", "gateways"):
                for host in _dig(obj, "spec", "hosts", default=[]) or []:
                    if _in_mesh_host(host) and host not in destination_rules:
                        add(obj, f"spec.hosts: {host!r} has no DestinationRule in this set "
                                 "(connection pool, outlier detection, mTLS)")
        elif kind == "RequestAuthentication":
            for i, rule in enumerate(_dig(obj, "spec", "jwtRules", default=[]) or []):
                if "forwardOriginalToken" not in rule:
                    add(obj, f"spec.jwtRules[{i}].forwardOriginalToken: missing: it defaults to false, "
                             "which strips Authorization before the workload (say which you mean)")
                for j, output in enumerate(rule.get("outputClaimToHeaders") or []):
                    if output.get("claim") in ARRAY_CLAIMS:
                        add(obj, f"spec.jwtRules[{i}].outputClaimToHeaders[{j}].claim: {output['claim']!r} "
                                 "is an array claim: Envoy copies only string/int/bool claims (istio/istio#49169)")
        elif kind == "AuthorizationPolicy":
            spec = obj.get("spec") or {}
            for message in _check_principals(spec):
                add(obj, message)
            text = repr(spec.get("rules") or []).lower()
            uses_jwt = any(k in text for k in ("requestprincipals", "request.auth."))
            if uses_jwt:
                labels = _dig(spec, "selector", "matchLabels", default={}) or {}
                namespace = _dig(obj, "metadata", "namespace", default="")
                covered = any(_dig(ra, "metadata", "namespace", default="") == namespace
                              and _labels_subset(_dig(ra, "spec", "selector", "matchLabels"), labels)
                              for ra in request_authentications)
                if not covered:
                    add(obj, "spec.rules: uses JWT attributes but no RequestAuthentication in this set "
                             "selects its workloads (the rule could never match / never deny)")
    errors.extend(_check_timeout_order(objs))
    return errors


#: A workload identity as Istio's ``principals`` match it (the SPIFFE id
#: without ``spiffe://``); ``*`` wildcards at either end are allowed.
SPIFFE_PRINCIPAL = re.compile(r"^(\*|\*?[^/*]*/ns/[^/*]+/sa/[^/*]+\*?|[^/*]+/ns/[^/*]+/sa/\*)$")


def _check_principals(spec: dict[str, Any]) -> list[str]:
    """``principals``/``notPrincipals`` entries are SPIFFE identities: a bare
    ServiceAccount name never matches (the rule silently allows or denies
    nothing). ``serviceAccounts`` exist only from Istio 1.25; the schema
    layer reports them against the oldest supported release."""
    errors = []
    for i, rule in enumerate(spec.get("rules") or []):
        for j, source in enumerate((rule or {}).get("from") or []):
            for key in ("principals", "notPrincipals"):
                for value in (_dig(source, "source", key, default=[]) or []):
                    if not SPIFFE_PRINCIPAL.match(str(value)):
                        errors.append(f"spec.rules[{i}].from[{j}].source.{key}: {value!r} is not a workload "
                                      "identity <trust domain>/ns/<namespace>/sa/<service account>: it would "
                                      "never match")
    return errors


def _duration_seconds(text: Any) -> float | None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text).strip())
    if not match:
        return None
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _representative_path(route: dict[str, Any]) -> str | None:
    """A request path the route takes (None when it matches on more than paths)."""
    for match in route.get("match") or [{}]:
        uri = (match or {}).get("uri") if isinstance(match, dict) else None
        if not match:
            return "/unlisted.v1.Service/Method"
        if uri and "exact" in uri:
            return uri["exact"]
        if uri and "prefix" in uri:
            return uri["prefix"] + ("Method" if uri["prefix"].endswith("/") else "")
    return None


def _first_route(routes: list[Any], path: str) -> tuple[int, dict[str, Any]] | None:
    for i, route in enumerate(routes):
        if isinstance(route, dict) and _route_matches(route, path):
            return i, route
    return None


def _check_timeout_order(objs: list[dict[str, Any]]) -> list[str]:
    """Each unary edge route (a VirtualService bound to a Gateway) waits longer
    than the in-mesh route behind it for the same call, so the player gets the
    innermost, most precise answer (wallet's fallback), not a mesh timeout."""
    errors = []
    services = [o for o in objs if o.get("kind") == "VirtualService" and not _dig(o, "spec", "gateways")]
    edges = [o for o in objs if o.get("kind") == "VirtualService" and _dig(o, "spec", "gateways")]
    for inner in services:
        for i, route in enumerate(_dig(inner, "spec", "http", default=[]) or []):
            inner_timeout = _duration_seconds(route.get("timeout")) if isinstance(route, dict) else None
            path = _representative_path(route) if isinstance(route, dict) else None
            if inner_timeout is None or path is None:
                continue
            for edge in edges:
                found = _first_route(_dig(edge, "spec", "http", default=[]) or [], path)
                if found is None:
                    continue
                j, edge_route = found
                edge_timeout = _duration_seconds(edge_route.get("timeout"))
                if edge_timeout is not None and edge_timeout <= inner_timeout:
                    errors.append(
                        f"{describe(edge)}: spec.http[{j}] ({edge_route.get('name', '')}).timeout: "
                        f"{edge_route['timeout']} is not above the {route['timeout']} of {describe(inner)} "
                        f"spec.http[{i}] ({route.get('name', '')}) behind it for {path}: the player would get "
                        "the edge's timeout instead of the service's answer")
    return errors


def check_kustomizations(files: Iterable[Path]) -> list[str]:
    """Every kustomization.yaml lists files that exist, and every manifest in
    its tree is listed (a file it misses is never applied by ``kubectl apply -k``)."""
    errors: list[str] = []
    files = list(files)
    kustomizations = [f for f in files if is_kustomization(f)]
    roots = {k.parent.resolve() for k in kustomizations}
    for kfile in kustomizations:
        where = os.path.relpath(kfile)
        try:
            data = yaml.load(kfile.read_text(encoding="utf-8"), Loader=_StrictLoader) or {}
        except yaml.YAMLError as error:
            errors.append(f"{where}: not valid YAML: {' '.join(str(error).split())}")
            continue
        base = kfile.parent.resolve()
        listed: set[Path] = set()
        for entry in data.get("resources") or []:
            target = (base / entry).resolve()
            if not target.exists():
                errors.append(f"{where}: resources: {entry!r} does not exist")
            elif target.is_dir():
                if not any((target / n).is_file() for n in ("kustomization.yaml", "kustomization.yml")):
                    errors.append(f"{where}: resources: directory {entry!r} has no kustomization.yaml")
                listed.add(target)
            else:
                listed.add(target)
        for manifest in files:
            path = manifest.resolve()
            if is_kustomization(manifest) or base not in path.parents:
                continue
            # A nested kustomization root is either listed (covers its tree) or
            # a separate root, applied on its own: either way not ours to list.
            nested = [r for r in roots if r != base and r in path.parents and base in r.parents]
            if nested or path in listed:
                continue
            errors.append(f"{where}: {os.path.relpath(manifest)} is not listed in resources "
                          "(kubectl apply -k would skip it)")
    return errors


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

@dataclass
class Report:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    lines: list[str] = field(default_factory=list)


def validate_paths(paths: list[str], schemas: SchemaSets, *, policy: bool,
                   emit: bool = True) -> Report:
    """Validate every manifest under ``paths``; print one line per object."""
    report = Report()
    files = list(iter_manifest_files(paths))
    documents: list[Document] = []
    for path in files:
        if not is_kustomization(path):
            documents.extend(load_documents(path))

    per_object: list[tuple[Document, list[str]]] = []
    for doc in documents:
        if doc.load_error:
            per_object.append((doc, [doc.load_error]))
        elif not isinstance(doc.obj, dict) or not doc.obj.get("apiVersion") and not doc.obj.get("kind"):
            per_object.append((doc, ["(root): not a Kubernetes object (no apiVersion/kind)"]))
        elif not is_istio(doc.obj):
            per_object.append((doc, []))
        else:
            per_object.append((doc, validate_object_versions(doc.obj, schemas)))

    if policy:
        istio_docs = [d for d, _ in per_object if is_istio(d.obj)]
        by_id = {id(d.obj): errs for d, errs in per_object}
        for message in check_mesh_policy([d.obj for d in istio_docs]):
            owner = next((d for d in istio_docs if message.startswith(describe(d.obj) + ": ")), None)
            if owner is not None:
                by_id[id(owner.obj)].append(message[len(describe(owner.obj)) + 2:])
        kustomize_errors = check_kustomizations(files)
    else:
        kustomize_errors = []

    def say(line: str) -> None:
        report.lines.append(line)
        if emit:
            print(line)

    for doc, errs in per_object:
        label = describe(doc.obj) if isinstance(doc.obj, dict) else f"<document> {doc.where}"
        if doc.obj is not None and isinstance(doc.obj, dict) and not is_istio(doc.obj) and not errs:
            report.skipped += 1
            say(f"skip {label}: not an Istio kind (the chart check validates Kubernetes kinds)  [{doc.where}]")
        elif errs:
            report.failed += 1
            for message in errs:
                say(f"ERR {label}: {message}  [{doc.where}]")
        else:
            report.passed += 1
            say(f"ok  {label}")
    for message in kustomize_errors:
        report.failed += 1
        say(f"ERR {message}")
    return report


EXPECT = re.compile(r"^#\s*expect-error:\s*(.+?)\s*$", re.MULTILINE)


def expect_failure(directory: Path, schemas: SchemaSets) -> tuple[int, int]:
    """Each YAML file of ``directory`` must be rejected (with the text of its
    ``# expect-error:`` lines). Returns (files rejected as expected, files not)."""
    good = bad = 0
    files = [f for f in iter_manifest_files([directory]) if not is_kustomization(f)]
    if not files:
        print(f"ERR {directory}: no fixtures (*.yaml) to check")
        return 0, 1
    for path in files:
        expected = EXPECT.findall(path.read_text(encoding="utf-8"))
        report = validate_paths([str(path)], schemas, policy=True, emit=False)
        problems = [line for line in report.lines if line.startswith("ERR ")]
        where = os.path.relpath(path)
        missing = [text for text in expected if not any(text in line for line in problems)]
        if report.failed == 0:
            bad += 1
            print(f"ERR {where}: ACCEPTED, but it is a deliberately broken manifest")
        elif report.passed:
            bad += 1
            print(f"ERR {where}: {report.passed} document(s) accepted; each fixture file must hold "
                  "only broken documents")
        elif not expected:
            bad += 1
            print(f"ERR {where}: no `# expect-error: <text>` header saying why it must fail")
        elif missing:
            bad += 1
            print(f"ERR {where}: rejected, but not for the expected reason {missing!r}; got:")
            for line in problems:
                print(f"      {line}")
        else:
            good += 1
            first = next(line for line in problems if any(t in line for t in expected))
            print(f"ok  rejected {where}: {first[4:].split('  [')[0]}")
    return good, bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate Istio manifests offline against Istio's CRD schemas (+ CEL rules, + mesh policy).")
    parser.add_argument("paths", nargs="*", help="files or directories (searched recursively for *.yaml)")
    parser.add_argument("--schema-only", action="store_true",
                        help="only CRD schema + CEL checks (skip the mesh policy checks)")
    parser.add_argument("--expect-failure", metavar="DIR", type=Path, action="append", default=[],
                        help="every YAML file of DIR must be REJECTED (for the reason its "
                             "`# expect-error:` lines name)")
    parser.add_argument("--self-test", action="store_true",
                        help=f"--expect-failure {os.path.relpath(BROKEN_FIXTURES)}")
    args = parser.parse_args(argv)
    if args.self_test:
        args.expect_failure.append(BROKEN_FIXTURES)
    if not args.paths and not args.expect_failure:
        parser.error("give manifest paths (e.g. mesh) and/or --self-test")

    started = time.monotonic()
    try:
        schemas = load_istio_schema_sets()
        _cel()
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"validate_manifests: {error}", file=sys.stderr)
        return 2
    status = 0
    if args.paths:
        try:
            report = validate_paths(args.paths, schemas, policy=not args.schema_only)
        except FileNotFoundError as error:
            print(f"validate_manifests: {error}", file=sys.stderr)
            return 2
        print(f"manifests: {report.passed} passed, {report.failed} failed, {report.skipped} skipped")
        status |= int(report.failed > 0)
    for directory in args.expect_failure:
        if not directory.is_dir():
            print(f"validate_manifests: --expect-failure: no such directory {directory}", file=sys.stderr)
            return 2
        good, bad = expect_failure(directory, schemas)
        print(f"self-test: {good} passed, {bad} failed")
        status |= int(bad > 0)
    print(f"validate_manifests: {'OK' if status == 0 else 'FAILED'} in {time.monotonic() - started:.2f}s "
          f"(Istio {', '.join(schemas)}: {', '.join(os.path.relpath(p) for _, p in crd_files())})")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Reconcile the fleet's Modelfiles with what a server has built, and plan the builds.

Statuses (design.md): `available` (Modelfile and built model agree), `needs_build`
(Modelfile, no built model), `missing` (critical, but neither), `ollama_only` (built, no
Modelfile), `drifted` (both, but they differ; `drift` names the fields), `invalid` (Ollama
would reject the Modelfile, or its FROM chain is a cycle). With the server unreachable,
valid Modelfiles are `unknown`.

Drift is decided field by field on parsed values, never on `ollama show --modelfile` text
(its FROM is a blob path and its PARAMETER order is random: pitfall 16). What a Modelfile
leaves out is inherited from its base, so the base's own `/api/show` is the reference for
those fields; without it only the fields the Modelfile sets are compared.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mirador.config import Config
from mirador.errors import OllamaUnreachable
from mirador.fleet import Fleet, FleetEntry
from mirador.modelfile import ModelDefinition, float32_value
from mirador.names import display_name, name_key

STATUSES = ("available", "needs_build", "missing", "ollama_only", "drifted", "invalid",
            "unknown")


@dataclass
class Drift:
    field: str
    expected: Any
    actual: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "expected": self.expected, "actual": self.actual}


@dataclass
class ModelStatus:
    name: str
    status: str
    critical: bool = False
    priority: int | None = None
    category: str | None = None
    modelfile: str | None = None
    base: str | None = None
    base_available: bool | None = None
    base_kind: str | None = None  # "fleet", "registry", "local" (a file beside it)
    drift: list[Drift] = field(default_factory=list)
    error: str | None = None
    error_line: int | None = None
    digest: str | None = None
    capabilities: list[str] = field(default_factory=list)
    kind: str = "chat"  # "chat" or "embedding": how to probe it
    size: int | None = None
    warnings: list[str] = field(default_factory=list)
    modelfile_sha256: str | None = None
    base_of: list[str] = field(default_factory=list)  # fleet models built FROM this one

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "critical": self.critical,
                "priority": self.priority, "category": self.category,
                "modelfile": self.modelfile, "base": self.base,
                "base_available": self.base_available, "base_kind": self.base_kind,
                "drift": [d.field for d in self.drift],
                "drift_detail": [d.to_dict() for d in self.drift], "error": self.error,
                "error_line": self.error_line, "digest": self.digest,
                "capabilities": self.capabilities, "kind": self.kind,
                "warnings": self.warnings, "base_of": self.base_of}


@dataclass
class Diagnosis:
    host: str
    modelfiles_dir: str
    generated_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    reachable: bool = True
    server_error: str | None = None
    server_version: str | None = None
    server_model_count: int = 0
    server_disk_bytes: int = 0
    models: list[ModelStatus] = field(default_factory=list)
    pulls: list[str] = field(default_factory=list)  # registry bases to pull first
    build_order: list[str] = field(default_factory=list)  # pulls, then models
    fleet_problems: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    # model key → the key of the fleet model it is built FROM, when both need a build
    build_deps: dict[str, str] = field(default_factory=dict)

    def by_key(self) -> dict[str, ModelStatus]:
        return {name_key(m.name): m for m in self.models}

    def summary(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES if s != "unknown" or not self.reachable}
        for m in self.models:
            counts[m.status] = counts.get(m.status, 0) + 1
        return counts

    def critical(self) -> list[ModelStatus]:
        return sorted((m for m in self.models if m.critical), key=lambda m: m.priority or 0)

    def all_critical_available(self) -> bool:
        return all(m.status == "available" for m in self.critical())

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "mirador.diagnostic/1", "generated_at": self.generated_at,
                "host": self.host, "reachable": self.reachable,
                "server_error": self.server_error, "server_version": self.server_version,
                "modelfiles_dir": self.modelfiles_dir, "summary": self.summary(),
                "server": {"model_count": self.server_model_count,
                           "disk_bytes": self.server_disk_bytes},
                "models": [m.to_dict() for m in self.models],
                "build_order": self.build_order, "pulls": self.pulls,
                "fleet_problems": self.fleet_problems,
                "ignored_files": self.ignored_files}


# ---------------------------------------------------------------------------------------
# Reading what /api/show reports

_GO_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _go_unquote(text: str) -> str:
    fixed = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: f"\\u00{m.group(1)}", text)
    fixed = re.sub(r"\\U([0-9a-fA-F]{8})", lambda m: chr(int(m.group(1), 16)), fixed)
    try:
        return json.loads(fixed)
    except ValueError:
        return text[1:-1]


def parse_show_parameters(text: str) -> dict[str, Any]:
    """`/api/show` `parameters` text → {name: value}; `stop` (any repeated key) → list."""
    out: dict[str, Any] = {}
    for line in (text or "").splitlines():
        key, _, raw = line.strip().partition(" ")
        raw = raw.strip()
        if not key:
            continue
        value: Any
        if raw.startswith('"') and _GO_STRING.fullmatch(raw):
            value = _go_unquote(raw)
        elif raw in ("true", "false"):
            value = raw == "true"
        else:
            try:
                value = int(raw)
            except ValueError:
                try:
                    value = float(raw)
                except ValueError:
                    value = raw
        if key == "stop" or key in out:
            prev = out.get(key)
            out[key] = ([*prev] if isinstance(prev, list) else
                        ([prev] if key in out else [])) + [value]
        else:
            out[key] = value
    return out


def _blob_digests(modelfile_text: str, instruction: str) -> list[str]:
    pattern = re.compile(rf"^{instruction} .*sha256[-:]([0-9a-f]{{64}})\s*$", re.M)
    return ["sha256:" + m for m in pattern.findall(modelfile_text or "")]


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        la = a if isinstance(a, list) else [a]
        lb = b if isinstance(b, list) else [b]
        return sorted(map(str, la)) == sorted(map(str, lb))
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        # NOTE: Modelfile floats are float32 on the way in (facts §3.5)
        return math.isclose(float32_value(float(a)), float32_value(float(b)), rel_tol=1e-6,
                            abs_tol=1e-9)
    return str(a) == str(b)


def compare(defn: ModelDefinition, shown: dict[str, Any],
            base_shown: dict[str, Any] | None) -> list[Drift]:
    """Field-by-field differences between a Modelfile and the model built from it."""
    drift: list[Drift] = []
    details = shown.get("details") or {}
    parent = details.get("parent_model") or ""
    if defn.base_is_local:
        weights = _blob_digests(shown.get("modelfile", ""), "FROM")
        expected = "sha256:" + (defn.base or "").removeprefix("file:")
        if weights and expected not in weights:
            drift.append(Drift("base", expected, weights[0]))
    elif parent and defn.base and name_key(parent) != name_key(defn.base):
        drift.append(Drift("base", defn.base, display_name(parent)))

    actual_params = parse_show_parameters(shown.get("parameters", ""))
    if base_shown is not None:
        expected_params = {**parse_show_parameters(base_shown.get("parameters", "")),
                           **defn.parameters}
        keys = set(expected_params) | set(actual_params)
    else:
        expected_params = dict(defn.parameters)
        keys = set(expected_params)
    changed = {}
    for key in sorted(keys):
        want, have = expected_params.get(key), actual_params.get(key)
        if want is None or have is None:
            if want != have:
                changed[key] = (want, have)
        elif not _same_value(want, have):
            changed[key] = (want, have)
    if changed:
        drift.append(Drift("parameters", {k: v[0] for k, v in changed.items()},
                           {k: v[1] for k, v in changed.items()}))

    for fld in ("template", "system"):
        # NOTE: an empty TEMPLATE/SYSTEM does not replace the base's (ApplyModelfileLayers)
        want = getattr(defn, fld) or None
        if want is None and base_shown is not None:
            want = base_shown.get(fld) or ""
        have = shown.get(fld) or ""
        if want is not None and want != have:
            drift.append(Drift(fld, want, have))

    want_msgs = defn.messages or (None if base_shown is None else
                                  list(base_shown.get("messages") or []))
    have_msgs = [{"role": m.get("role"), "content": m.get("content")}
                 for m in shown.get("messages") or []]
    if want_msgs is not None and [dict(m) for m in want_msgs] != have_msgs:
        drift.append(Drift("messages", want_msgs, have_msgs))

    have_license = shown.get("license") or ""
    if base_shown is not None:
        base_license = base_shown.get("license") or ""
        parts = [base_license] if base_license else []
        parts += [lic for lic in defn.license if lic not in parts]
        want_license = "\n".join(parts)
        if want_license != have_license:
            drift.append(Drift("license", want_license, have_license))
    elif any(lic not in have_license for lic in defn.license):
        drift.append(Drift("license", "\n".join(defn.license), have_license))

    have_adapters = _blob_digests(shown.get("modelfile", ""), "ADAPTER")
    if defn.adapter:
        want = sorted(defn.adapter.split(",")) if defn.adapter.startswith("sha256:") else None
        if not have_adapters or (want is not None and sorted(have_adapters) != want):
            drift.append(Drift("adapter", defn.adapter, ",".join(have_adapters) or None))
    elif have_adapters and base_shown is not None and not _blob_digests(
            base_shown.get("modelfile", ""), "ADAPTER"):
        drift.append(Drift("adapter", None, ",".join(have_adapters)))
    return drift


# ---------------------------------------------------------------------------------------
# The diagnosis

def _kind(capabilities: list[str], base_caps: list[str] | None) -> str:
    caps = capabilities or base_caps or []
    return "embedding" if "embedding" in caps and "completion" not in caps else "chat"


def _find_cycles(edges: dict[str, str]) -> dict[str, list[str]]:
    """Each node in a FROM cycle → the cycle, in order (a → b → a)."""
    cycles: dict[str, list[str]] = {}
    for start in edges:
        path, node = [], start
        while node in edges and node not in path:
            path.append(node)
            node = edges[node]
        if node == start:
            cycles[start] = [*path, start]
    return cycles


def diagnose(config: Config, fleet: Fleet, client, *, max_workers: int = 16,
             progress: Callable[[str], None] | None = None) -> Diagnosis:
    """Classify every model and plan the builds. `client` is an OllamaClient."""
    started = time.perf_counter()
    diag = Diagnosis(host=client.host, modelfiles_dir=str(fleet.folder))
    diag.fleet_problems = list(fleet.problems)
    diag.ignored_files = [str(p) for p in fleet.ignored]
    entries = sorted(fleet.entries, key=lambda e: e.key)
    by_key = fleet.by_key()

    try:
        diag.server_version = client.version()
        tags = client.tags()
    except OllamaUnreachable as exc:
        diag.reachable = False
        diag.server_error = str(exc)
        tags = []
    server = {name_key(t.get("name") or t.get("model") or ""): t for t in tags}
    diag.server_model_count = len(server)
    diag.server_disk_bytes = sum(int(t.get("size") or 0) for t in tags)

    # /api/show for every fleet model on the server, every critical one, and their bases
    wanted: dict[str, str] = {}
    for e in entries:
        if e.ok and e.key in server:
            wanted[e.key] = server[e.key]["name"]
        if e.named_base:
            base_key = name_key(e.named_base)
            if base_key in server:
                wanted[base_key] = server[base_key]["name"]
    for c in config.critical_models:
        if name_key(c.name) in server:
            wanted[name_key(c.name)] = server[name_key(c.name)]["name"]
    shows: dict[str, Any] = {}
    if diag.reachable and wanted:
        try:
            got = client.show_many(wanted.values(), max_workers=max_workers, progress=progress)
        except OllamaUnreachable as exc:
            diag.reachable, diag.server_error, got = False, str(exc), {}
        shows = {name_key(k): v for k, v in got.items() if isinstance(v, dict)}

    edges = {e.key: name_key(e.named_base) for e in entries
             if e.named_base and name_key(e.named_base) in by_key}
    cycles = _find_cycles(edges)

    statuses: dict[str, ModelStatus] = {}
    for e in entries:
        if e.key in statuses:
            continue  # a duplicate definition: reported once, with every file named
        statuses[e.key] = _classify_entry(e, config, server, shows, by_key, cycles, diag)
    for c in config.critical_models:
        key = name_key(c.name)
        if key in statuses:
            continue
        tag = server.get(key)
        st = ModelStatus(name=display_name(c.name), status="missing" if tag is None
                         else "ollama_only", critical=True, priority=c.priority,
                         category=c.category)
        if not diag.reachable:
            st.status = "unknown"
        if tag is not None:
            _fill_server_facts(st, tag, shows.get(key))
        statuses[key] = st
    for key, tag in server.items():
        if key not in statuses:
            st = ModelStatus(name=tag.get("name") or key, status="ollama_only",
                             category=config.category(tag.get("name") or key))
            _fill_server_facts(st, tag, shows.get(key))
            statuses[key] = st

    for e in entries:
        if e.named_base:
            base = statuses.get(name_key(e.named_base))
            if base is not None and e.display not in base.base_of:
                base.base_of.append(e.display)
    diag.models = sorted(statuses.values(),
                         key=lambda m: (not m.critical, m.priority or 0, m.name.lower()))
    _plan_builds(diag, statuses, by_key)
    diag.elapsed_s = time.perf_counter() - started
    return diag


def _shown_path(path) -> str:
    """A path as a person would type it: relative to the working folder when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith(os.pardir) else rel


def _fill_server_facts(st: ModelStatus, tag: dict[str, Any], shown: dict | None) -> None:
    st.digest = tag.get("digest")
    st.size = tag.get("size")
    caps = (shown or {}).get("capabilities") or tag.get("capabilities") or []
    st.capabilities = list(caps)
    st.kind = _kind(st.capabilities, None)


def _classify_entry(e: FleetEntry, config: Config, server: dict[str, Any],
                    shows: dict[str, Any], by_key: dict[str, list[FleetEntry]],
                    cycles: dict[str, list[str]], diag: Diagnosis) -> ModelStatus:
    crit = config.critical(e.name)
    files = by_key.get(e.key, [e])
    st = ModelStatus(name=e.display, status="unknown", critical=crit is not None,
                     priority=crit.priority if crit else None,
                     category=config.category(e.name),
                     modelfile=", ".join(_shown_path(f.path) for f in files),
                     error=e.error, error_line=e.error_line, warnings=list(e.warnings))
    st.modelfile_sha256 = e.sha256
    if st.error is not None or e.definition is None:
        st.status = "invalid"
        return st
    defn = e.definition
    if e.key in cycles:
        st.status = "invalid"
        st.error = "FROM cycle: " + " → ".join(display_name(k) for k in cycles[e.key])
        return st
    if defn.base_is_local:
        st.base, st.base_kind, st.base_available = "local file", "local", True
    else:
        st.base = defn.base
        base_key = name_key(defn.base or "")
        st.base_kind = "fleet" if base_key in by_key else "registry"
        st.base_available = base_key in server if diag.reachable else None
    base_show = shows.get(name_key(defn.base)) if not defn.base_is_local and defn.base else None
    if not diag.reachable:
        return st
    tag = server.get(e.key)
    if tag is None:
        st.status = "needs_build"
        st.kind = _kind([], (base_show or {}).get("capabilities"))
        return st
    shown = shows.get(e.key)
    _fill_server_facts(st, tag, shown)
    if shown is None:
        st.status = "drifted"
        st.drift = [Drift("show", "an /api/show answer", "the server did not answer it")]
        return st
    st.drift = compare(defn, shown, base_show)
    st.status = "drifted" if st.drift else "available"
    return st


def _plan_builds(diag: Diagnosis, statuses: dict[str, ModelStatus],
                 by_key: dict[str, list[FleetEntry]]) -> None:
    """Bases to pull, then models in dependency order: critical first by priority."""
    buildable = {k for k, s in statuses.items() if s.status in ("needs_build", "drifted")}
    deps: dict[str, str] = {}
    for key in buildable:
        base = by_key[key][0].named_base
        if base and name_key(base) in buildable:
            deps[key] = name_key(base)
    diag.build_deps = deps
    # a dependency is as urgent as the most urgent model that needs it
    rank = {k: (0, statuses[k].priority or 0, k) if statuses[k].critical else (1, 0, k)
            for k in buildable}
    for key in sorted(buildable):
        node = key
        while node in deps:
            node = deps[node]
            rank[node] = min(rank[node], rank[key])
    children: dict[str, list[str]] = {}
    for child, parent in deps.items():
        children.setdefault(parent, []).append(child)
    ready = [(rank[k], k) for k in buildable if k not in deps]
    heapq.heapify(ready)
    order = []
    while ready:
        _, key = heapq.heappop(ready)
        order.append(key)
        for child in children.get(key, []):
            heapq.heappush(ready, (rank[child], child))
    pulls: list[str] = []
    for key in order:
        st = statuses[key]
        if (st.base_kind == "registry" and st.base and not st.base_available
                and display_name(st.base) not in pulls):
            pulls.append(display_name(st.base))
    diag.pulls = pulls
    diag.build_order = pulls + [statuses[k].name for k in order]


def build_scope(diag: Diagnosis) -> set[str]:
    """Keys the build script builds without --all: critical targets and their fleet bases
    that also need a build."""
    scope: set[str] = set()
    for m in diag.models:
        if m.critical and m.status in ("needs_build", "drifted"):
            key: str | None = name_key(m.name)
            while key is not None and key not in scope:
                scope.add(key)
                key = diag.build_deps.get(key)
    return scope

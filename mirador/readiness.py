"""The phase-2 gate: every check with a status, the measured value, and one action.

It reuses the other tools' library code: the diagnosis decides availability, the
performance runner and scoring decide function and speed, the parser checks the optimized
Modelfiles. Critical checks must all pass (or warn) for READY; recommended ones only warn.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mirador import probes, system
from mirador.categories import category_for
from mirador.config import Thresholds
from mirador.errors import ConfigError, MiradorError, OllamaUnreachable
from mirador.fleet import Fleet, load_fleet
from mirador.modelfile import ModelfileError, check_create, parse
from mirador.names import display_name, name_key
from mirador.ollama_client import processor_text, version_tuple

CRITICAL = ("ollama_service", "critical_models_available", "critical_models_functional",
            "success_rate", "avg_response_time", "quality_score", "backup_scripts",
            "optimized_configs")
MIN_CREATE_API = "0.5.5"


@dataclass
class Check:
    id: str
    title: str
    status: str  # pass, warn, fail, skip
    detail: str
    action: str | None = None

    @property
    def severity(self) -> str:
        return "critical" if self.id in CRITICAL else "recommended"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "severity": self.severity,
                "status": self.status, "detail": self.detail,
                "action": self.action if self.status != "pass" else None}


@dataclass
class Readiness:
    host: str
    checks: list[Check] = field(default_factory=list)
    reachable: bool = True
    server_version: str | None = None
    generated_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def ready(self) -> bool:
        return all(c.status in ("pass", "warn") for c in self.checks if c.severity ==
                   "critical")

    def actions(self) -> list[str]:
        seen: list[str] = []
        for c in self.checks:
            if c.status in ("fail", "warn") and c.action and c.action not in seen:
                seen.append(c.action)
        return seen

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "mirador.readiness/1", "ready": self.ready,
                "generated_at": self.generated_at, "host": self.host,
                "reachable": self.reachable, "server_version": self.server_version,
                "checks": [c.to_dict() for c in self.checks], "actions": self.actions()}


@dataclass
class Gate:
    """Everything the checks share, gathered once."""

    settings: Any  # mirador.cli.Settings
    thresholds: Thresholds
    results_file: Path | None
    results_explicit: bool
    max_age_h: float
    python: str = "python3"
    fleet: Fleet | None = None
    diagnosis: Any = None
    client: Any = None
    reachable: bool = True
    version: str | None = None
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        return self.settings.output_dir

    def tool(self, script: str, args: str = "") -> str:
        return f"{self.python} {script}{(' ' + args) if args else ''}"

    @property
    def critical(self) -> list[str]:
        return [display_name(c.name) for c in self.settings.config.critical_models]


def run_gate(gate: Gate) -> Readiness:
    from mirador.diagnosis import diagnose

    s = gate.settings
    gate.fleet = load_fleet(s.modelfiles)
    rd = Readiness(host=s.host)
    with s.client() as client:
        gate.client = client
        rd.checks.append(check_service(gate))
        rd.reachable, rd.server_version = gate.reachable, gate.version
        if gate.reachable:
            gate.diagnosis = diagnose(s.config, gate.fleet, client)
            gate.tags = {name_key(t["name"]): t for t in client.tags()}
        rd.checks.append(check_available(gate))
        rd.checks.append(check_functional(gate))
        rd.checks += check_performance(gate)
        rd.checks.append(check_backup_scripts(gate))
        rd.checks.append(check_optimized(gate))
        rd.checks.append(check_disk(gate))
        rd.checks.append(check_memory(gate))
        rd.checks.append(check_gpu(gate))
        rd.checks.append(check_migration_scripts(gate))
        rd.checks.append(check_documentation(gate))
    return rd


UNREACHABLE = "the server could not be reached"


def check_service(g: Gate) -> Check:
    title = "Ollama service answers"
    try:
        g.client.heartbeat()
        g.version = g.client.version()
    except OllamaUnreachable as exc:
        g.reachable = False
        return Check("ollama_service", title, "fail", str(exc),
                     "start Ollama (`ollama serve`) or point at it with --host URL / "
                     "OLLAMA_HOST")
    except MiradorError as exc:
        g.reachable = False
        return Check("ollama_service", title, "fail", str(exc),
                     "check the server's logs; it answers but not like Ollama")
    entries = g.fleet.entries if g.fleet else []
    needs = [e.definition.requires for e in entries if e.definition and e.definition.requires]
    required = max(needs, key=version_tuple) if needs else None
    have = version_tuple(g.version)
    if g.version in ("0.0.0", "", None):
        return Check("ollama_service", title, "warn",
                     f"version {g.version!r} (a build from source): requirements not checked",
                     "use a released Ollama for the migration")
    if have < version_tuple(MIN_CREATE_API):
        return Check("ollama_service", title, "warn",
                     f"version {g.version} is older than {MIN_CREATE_API}: it only takes the "
                     "old create API, which current clients no longer send",
                     "upgrade Ollama to 0.5.5 or newer before migrating")
    if required and have < version_tuple(required):
        return Check("ollama_service", title, "warn",
                     f"version {g.version}; the fleet's Modelfiles require {required}",
                     f"upgrade Ollama to {required} or newer")
    return Check("ollama_service", title, "pass",
                 f"version {g.version} at {g.settings.host}"
                 + (f" (fleet requires ≥ {required})" if required else ""))


def check_available(g: Gate) -> Check:
    title = "Critical models built and matching their Modelfiles"
    crit = g.critical
    if not crit:
        return Check("critical_models_available", title, "fail",
                     "no critical_models in mirador.yaml", "list the critical models in "
                     "mirador.yaml (critical_models:)")
    if not g.reachable:
        return Check("critical_models_available", title, "fail", UNREACHABLE,
                     "start the server, then run the gate again")
    statuses = g.diagnosis.by_key()
    bad = [(n, statuses.get(name_key(n))) for n in crit]
    bad = [(n, m) for n, m in bad if m is None or m.status != "available"]
    ok = len(crit) - len(bad)
    detail = f"{ok}/{len(crit)} available (100% required)"
    if not bad:
        return Check("critical_models_available", title, "pass", detail)
    listing = ", ".join(f"{n.removesuffix(':latest')} ({m.status if m else 'missing'}"
                        + (f": {', '.join(d.field for d in m.drift)}" if m and m.drift else "")
                        + ")" for n, m in bad)
    build = g.out / "build_critical_models.sh"
    return Check("critical_models_available", title, "fail", f"{detail}; not ready: {listing}",
                 f"{g.tool('mirador_model_diagnostic.py')}, then bash {build}")


def _runner(g: Gate, requests: int, warmup: int):
    from mirador.performance import Runner, RunSettings

    run = RunSettings(requests=requests, warmup=warmup, timeout=max(g.settings.timeout, 120))
    return Runner(g.client, run, probes.load_queries(),
                  category_of=lambda n: category_for(g.settings.config, n))


def check_functional(g: Gate) -> Check:
    title = "Critical models answer a test query correctly"
    if not g.reachable:
        return Check("critical_models_functional", title, "fail", UNREACHABLE,
                     "start the server, then run the gate again")
    statuses = g.diagnosis.by_key()
    runner = _runner(g, 1, 0)
    results, failed = [], []
    for name in g.critical:
        st = statuses.get(name_key(name))
        if st is None or st.status not in ("available", "drifted"):
            failed.append(f"{name.removesuffix(':latest')}: not built")
            continue
        if st.kind == "embedding":
            items = runner.queries.embedding
            sample = runner.embed(name, items[0]) if items else None
        else:
            qs = runner.queries.for_category(category_for(g.settings.config, name))
            sample = runner.chat(name, qs[0], qs[0].prompt)
        if sample is None or not sample.ok:
            why = (sample.error_kind if sample else "no probe") or "failed"
            failed.append(f"{name.removesuffix(':latest')}: {why}")
        elif sample.quality is not None and sample.quality <= g.thresholds.quality:
            failed.append(f"{name.removesuffix(':latest')}: quality {sample.quality:.2f} ≤ "
                          f"{g.thresholds.quality:g}")
        else:
            results.append(f"{name.removesuffix(':latest')} {sample.quality or 0:.2f}")
    detail = f"{len(results)}/{len(g.critical)} answered correctly"
    if results:
        detail += " (" + ", ".join(results) + ")"
    if failed:
        return Check("critical_models_functional", title, "fail",
                     detail + "; failing: " + "; ".join(failed),
                     f"bash {g.out / 'validate_critical_models.sh'} to see each answer, then "
                     "fix or rebuild the failing models")
    return Check("critical_models_functional", title, "pass", detail)


def usable_results(g: Gate) -> tuple[dict[str, Any] | None, str]:
    """The performance results file if it is fresh and measured the current builds."""
    from mirador.performance import load_results

    path = g.results_file
    if path is None or not path.exists():
        return None, f"no results file at {path}"
    try:
        doc = load_results(path)
    except ConfigError as exc:
        return None, str(exc)
    if doc.get("partial"):
        return None, f"{path} holds a partial (interrupted) run"
    try:
        made = datetime.fromisoformat(doc["generated_at"])
    except (KeyError, ValueError):
        return None, f"{path} has no valid generated_at"
    age_h = (datetime.now(UTC) - made).total_seconds() / 3600
    if age_h > g.max_age_h:
        return None, f"{path} is {age_h:.1f} h old (more than --max-age {g.max_age_h:g} h)"
    models = {name_key(m["name"]): m for m in doc.get("models", [])}
    for name in g.critical:
        m = models.get(name_key(name))
        if m is None or m.get("error"):
            return None, f"{path} does not cover {name.removesuffix(':latest')}"
        current = (g.tags.get(name_key(name)) or {}).get("digest")
        if current and m.get("digest") and m["digest"] != current:
            return None, (f"{path} measured another build of {name.removesuffix(':latest')} "
                          f"(digest {m['digest'][:12]}, now {current[:12]})")
    return doc, f"from {path} ({age_h:.1f} h old)"


def check_performance(g: Gate) -> list[Check]:
    from mirador.performance import overall, summarize

    titles = {"success_rate": "Success rate", "avg_response_time": "Average response time",
              "quality_score": "Answer quality"}
    tester = g.tool("mirador_performance_tester.py", "--critical")
    if not g.reachable:
        return [Check(cid, t, "fail", UNREACHABLE, "start the server, then run the gate again")
                for cid, t in titles.items()]
    doc, source = usable_results(g)
    if doc is None and g.results_explicit:
        return [Check(cid, t, "fail", f"not measured: {source}", tester)
                for cid, t in titles.items()]
    if doc is None:
        runner = _runner(g, 2, 1)
        results = [runner.measure(n) for n in g.critical]
        ov = overall([summarize(r) for r in results], [x for r in results for x in r.samples])
        source = f"from a quick run of 2 requests per model ({source})"
    else:
        ov = doc["overall"]
    th = g.thresholds
    out = []
    sr = ov.get("success_rate")
    out.append(Check("success_rate", titles["success_rate"],
                     "pass" if sr is not None and sr >= th.success_rate else "fail",
                     f"{(sr or 0) * 100:.0f}% (needs ≥ {th.success_rate * 100:.0f}%), {source}",
                     f"{tester}; read performance_report.md for the errors by kind"))
    avg = ov.get("avg_response_s")
    out.append(Check("avg_response_time", titles["avg_response_time"],
                     "pass" if avg is not None and avg < th.avg_response_s else "fail",
                     f"{'—' if avg is None else f'{avg:.2f} s'} (needs < "
                     f"{th.avg_response_s:g} s), {source}",
                     f"{tester}; slow models: check the CPU/GPU split and num_ctx"))
    q = ov.get("quality_mean")
    out.append(Check("quality_score", titles["quality_score"],
                     "pass" if q is not None and q > th.quality else "fail",
                     f"{'—' if q is None else f'{q:.2f}'} (needs > {th.quality:g}), {source}",
                     f"{tester}; read the lowest-scored answers in performance_report.md"))
    return out


def _script_problem(path: Path) -> str | None:
    if not path.exists():
        return f"{path.name} is missing"
    if not os.access(path, os.X_OK):
        return f"{path.name} is not executable"
    res = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True,
                         check=False)
    if res.returncode != 0:
        return f"{path.name} fails bash -n: {res.stderr.strip()[:200]}"
    return None


def check_backup_scripts(g: Gate) -> Check:
    title = "Backup and rollback scripts ready"
    action = g.tool("config_generator.py")
    backup, rollback = g.out / "backup_models.sh", g.out / "rollback_models.sh"
    problems = [p for p in (_script_problem(backup), _script_problem(rollback)) if p]
    if problems:
        fix = action if any("missing" in p for p in problems) else (
            f"chmod +x {backup} {rollback}, or run {g.tool('config_generator.py')} again")
        return Check("backup_scripts", title, "fail", "; ".join(problems), fix)
    covered = set()
    for line in backup.read_text(encoding="utf-8").splitlines():
        if line.startswith("backup "):
            parts = shlex.split(line)
            if len(parts) >= 2:
                covered.add(name_key(parts[1]))
    missing = [n.removesuffix(":latest") for n in g.critical if name_key(n) not in covered]
    if missing:
        return Check("backup_scripts", title, "fail",
                     f"backup_models.sh does not cover: {', '.join(missing)}", action)
    return Check("backup_scripts", title, "pass",
                 f"both present, executable, bash -n clean; {len(covered)} model(s) covered, "
                 "every critical model included")


def check_optimized(g: Gate) -> Check:
    title = "Optimized configurations generated and valid"
    action = g.tool("config_generator.py")
    plan = g.out / "config_plan.json"
    folder = g.out / "optimized_modelfiles"
    if not plan.exists() or not folder.is_dir():
        return Check("optimized_configs", title, "fail",
                     "no config_plan.json / optimized_modelfiles/ in the output folder", action)
    try:
        doc = json.loads(plan.read_text(encoding="utf-8"))
        assert doc.get("schema") == "mirador.config_plan/1"
    except (ValueError, AssertionError):
        return Check("optimized_configs", title, "fail", f"{plan} is not a config plan", action)
    problems = []
    files = sorted(folder.glob("*.modelfile"))
    for f in files:
        try:
            check_create(parse(f.read_bytes()))
        except ModelfileError as exc:
            problems.append(f"{f.name}: {exc}")
    missing = [n.removesuffix(":latest") for n in g.critical
               if not (folder / f"{n.removesuffix(':latest')}.modelfile").exists()]
    if missing:
        problems.append("no optimized Modelfile for " + ", ".join(missing))
    if problems:
        return Check("optimized_configs", title, "fail", "; ".join(problems[:5]), action)
    return Check("optimized_configs", title, "pass",
                 f"{len(files)} optimized Modelfile(s) parse and pass the create checks; "
                 f"every critical model covered; target base {doc.get('target_base')}")


def _host_is_local(host: str) -> bool:
    from urllib.parse import urlsplit

    h = (urlsplit(host).hostname or "").lower()
    return h in ("localhost", "127.0.0.1", "::1") or h.startswith("127.")


def check_disk(g: Gate) -> Check:
    title = "Disk space where the models live"
    folder, label = system.models_folder(_host_is_local(g.settings.host), g.out)
    try:
        d = system.disk_usage(folder)
    except system.Unavailable as exc:
        return Check("disk_space", title, "skip", str(exc))
    gib = 1024**3
    need = len(g.critical) * 2**20  # new template/system/params layers; blobs are shared
    base = g.settings.config.migration.base_from
    if g.reachable and name_key(base) not in g.tags:
        need += 3 * gib  # NOTE: a base to pull; a 3B Q4 model is about 2–3 GB
    detail = (f"{d.used_pct:.0f}% used of {d.total / gib:.1f} GiB at {d.path} ({label}); "
              f"{d.free / gib:.1f} GiB free, the migration needs about "
              f"{max(need / gib, 0.01):.2f} GiB (copies share blobs)")
    th = g.thresholds.disk_used_pct
    if d.used_pct >= th or d.free < need:
        return Check("disk_space", title, "warn", detail + f"; needs < {th:g}% used",
                     f"free space on {d.path} (remove retired models: ollama rm NAME)")
    return Check("disk_space", title, "pass", detail + f" (needs < {th:g}%)")


def check_memory(g: Gate) -> Check:
    title = "Memory for the largest model"
    try:
        m = system.memory()
    except system.Unavailable as exc:
        return Check("memory", title, "skip", str(exc))
    sizes = [(t.get("size") or 0, t["name"]) for k, t in g.tags.items()
             if k in {name_key(n) for n in g.critical}]
    if not sizes:
        return Check("memory", title, "skip",
                     "no critical model on the server to size" if g.reachable else UNREACHABLE)
    size, name = max(sizes)
    need = int(size * 1.2)  # weights plus a KV cache
    detail = (f"{m.available / 2**30:.1f} GiB available of {m.total / 2**30:.1f} GiB; largest "
              f"critical model {name} needs about {need / 2**30:.1f} GiB")
    if g.settings.host and not _host_is_local(g.settings.host):
        detail += " (the server is another machine: this is this machine's memory)"
    if m.available < need:
        return Check("memory", title, "warn", detail,
                     "free memory or use a smaller quantization of the largest model")
    return Check("memory", title, "pass", detail)


def check_gpu(g: Gate) -> Check:
    title = "GPU: critical models run fully on the GPU"
    try:
        info = system.gpus()
        gpu_text = "; ".join(
            f"GPU {d.index} {d.name}: {d.memory_used / 2**30:.1f}/{d.memory_total / 2**30:.1f} "
            f"GiB used, {'—' if d.utilization_pct is None else f'{d.utilization_pct}%'} busy"
            for d in info.devices) or "no NVIDIA GPU found"
        nvml = f"driver {info.driver}; {gpu_text}"
    except system.Unavailable as exc:
        info, nvml = None, str(exc)
    loaded = []
    if g.reachable:
        crit = {name_key(n) for n in g.critical}
        loaded = [m for m in g.client.ps() if name_key(m.get("name") or "") in crit]
    partial = [(m["name"], processor_text(m.get("size") or 0, m.get("size_vram") or 0))
               for m in loaded if (m.get("size_vram") or 0) < (m.get("size") or 0)]
    if partial:
        return Check("gpu", title, "warn",
                     "; ".join(f"{n} runs {p}" for n, p in partial) + f" ({nvml})",
                     "lower num_ctx or use a smaller quantization so the model fits in VRAM "
                     "(see `ollama ps`)")
    if loaded:
        return Check("gpu", title, "pass",
                     f"{len(loaded)} loaded critical model(s) 100% on GPU ({nvml})")
    if info is None:
        return Check("gpu", title, "skip", nvml)
    return Check("gpu", title, "pass", nvml + "; no critical model loaded to check")


def check_migration_scripts(g: Gate) -> Check:
    title = "Migration script ready"
    problem = _script_problem(g.out / "migrate_models.sh")
    if problem:
        return Check("migration_scripts", title, "warn", problem, g.tool("config_generator.py"))
    return Check("migration_scripts", title, "pass",
                 "migrate_models.sh present, executable, bash -n clean")


def check_documentation(g: Gate) -> Check:
    title = "Reports of the previous steps are current"
    reports = ["model_diagnostic_report.md", "performance_report.md",
               "consolidation_report.md"]
    newest = max((e.path.stat().st_mtime for e in (g.fleet.entries if g.fleet else [])
                  if e.path.exists()),
                 default=0.0)
    missing = [r for r in reports if not (g.out / r).exists()]
    stale = [r for r in reports if r not in missing and (g.out / r).stat().st_mtime < newest]
    if missing or stale:
        parts = ([f"missing: {', '.join(missing)}"] if missing else []) + (
            [f"older than the newest Modelfile: {', '.join(stale)}"] if stale else [])
        return Check("documentation", title, "warn", "; ".join(parts),
                     "run the diagnostic, the performance tester and the config generator "
                     "again")
    age = (time.time() - min((g.out / r).stat().st_mtime for r in reports)) / 3600
    return Check("documentation", title, "pass",
                 f"all three reports present and newer than the Modelfiles (oldest "
                 f"{age:.1f} h old)")

"""Run the diagnostic end to end: read the fleet, ask the server, write the four outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mirador.cli import Settings
from mirador.diagnosis import Diagnosis, build_scope, diagnose
from mirador.fleet import Fleet, load_fleet
from mirador.names import name_key
from mirador.outputs import write_atomic
from mirador.render import diagnostic_report, shell

REPORT = "model_diagnostic_report.md"
JSON = "model_diagnostic.json"
BUILD_SCRIPT = "build_critical_models.sh"
VALIDATE_SCRIPT = "validate_critical_models.sh"


@dataclass
class DiagnosticRun:
    diagnosis: Diagnosis
    fleet: Fleet
    files: dict[str, Path]


def build_plan(diag: Diagnosis, fleet: Fleet,
               ) -> tuple[list[shell.PullStep], list[shell.BuildStep]]:
    statuses = diag.by_key()
    scope = build_scope(diag)
    entries = fleet.by_key()
    steps = []
    for name in diag.build_order[len(diag.pulls):]:
        key = name_key(name)
        st = statuses[key]
        entry = entries[key][0]
        dep = diag.build_deps.get(key)
        bases = (statuses[dep].name,) if dep else ()
        steps.append(shell.BuildStep(
            name=st.name.removesuffix(":latest"), modelfile=entry.path,
            sha256=st.modelfile_sha256 or "", status=st.status,
            scope="critical" if key in scope else "all", kind=st.kind,
            fleet_bases=tuple(b.removesuffix(":latest") for b in bases)))
    needed_by_critical = {statuses[name_key(s.name)].base for s in steps
                          if s.scope == "critical"}
    pulls = [shell.PullStep(p.removesuffix(":latest"),
                            "critical" if p in needed_by_critical else "all")
             for p in diag.pulls]
    return pulls, steps


def run_diagnostic(settings: Settings, *, progress=None) -> DiagnosticRun:
    fleet = load_fleet(settings.modelfiles)
    with settings.client() as client:
        diag = diagnose(settings.config, fleet, client, progress=progress)
    out = settings.output_dir
    pulls, steps = build_plan(diag, fleet)
    validate = [shell.ValidateStep(m.name.removesuffix(":latest"), m.kind)
                for m in diag.critical()]
    build_path, validate_path = out / BUILD_SCRIPT, out / VALIDATE_SCRIPT
    files = {
        "report": write_atomic(out / REPORT, diagnostic_report.render(
            diag, build_script=str(build_path), validate_script=str(validate_path))),
        "json": write_atomic(out / JSON, json.dumps(diag.to_dict(), indent=2,
                                                    ensure_ascii=False) + "\n"),
        "build_script": write_atomic(build_path, shell.build_script(
            host=diag.host, script_dir=out, pulls=pulls, steps=steps), mode=0o755),
        "validate_script": write_atomic(validate_path, shell.validate_script(
            host=diag.host, steps=validate), mode=0o755),
    }
    return DiagnosticRun(diag, fleet, files)

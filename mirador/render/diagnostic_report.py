"""`model_diagnostic_report.md`: the diagnosis for a person, built from markdown primitives."""

from __future__ import annotations

import json
from typing import Any

from mirador.diagnosis import Diagnosis, ModelStatus
from mirador.render.markdown import (
    bullets,
    cell,
    code,
    fenced,
    mermaid_pie,
    numbered,
    shorten,
    table,
    text,
)

STATUS_ICON = {"available": "✅", "needs_build": "🔨", "missing": "❓", "ollama_only": "👻",
               "drifted": "⚠️", "invalid": "❌", "unknown": "❔"}
STATUS_MEANING = {
    "available": "Modelfile and built model agree",
    "needs_build": "Modelfile, but the model was never built",
    "missing": "critical in mirador.yaml, but neither a Modelfile nor a built model",
    "ollama_only": "built on the server, but no Modelfile",
    "drifted": "built, but the built model differs from its Modelfile",
    "invalid": "Ollama would reject the Modelfile",
    "unknown": "not checked: the server could not be reached",
}


def next_action(m: ModelStatus, build_script: str, validate_script: str) -> str:
    """The exact next step for one model, as a markdown fragment."""
    if m.status == "available":
        return f"none; prove it answers with {code('bash ' + validate_script)}"
    if m.status == "needs_build":
        if m.base_kind == "fleet" and not m.base_available:
            return (f"build its base {code(m.base)} first; {code('bash ' + build_script)} "
                    "does both in order")
        scope = "" if m.critical else " --all"
        return f"build it: {code('bash ' + build_script + scope)}"
    if m.status == "drifted":
        fields = ", ".join(d.field for d in m.drift)
        scope = "" if m.critical else " --all"
        return (f"rebuild it ({fields} differ), with a backup: "
                f"{code('bash ' + build_script + scope)}")
    if m.status == "invalid":
        where = f" ({m.modelfile})" if m.modelfile else ""
        return f"fix the Modelfile{text(where)}, then run the diagnostic again"
    stem = m.name.split(":")[0]
    if m.status == "missing":
        return (f"write {code(f'modelfiles/{stem}.modelfile')} or remove it from the "
                "critical list in mirador.yaml")
    if m.status == "ollama_only" and m.base_of:
        return f"keep it: the base of {len(m.base_of)} fleet model(s)"
    if m.status == "ollama_only":
        keep = f"ollama show {m.name} --modelfile > modelfiles/{stem}.modelfile"
        return f"keep it: {code(keep)} (then put the real base in FROM), or retire it"
    return "run the diagnostic again when the server is reachable"


def _value(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return "(none)" if v is None else str(v)


def drift_diff(m: ModelStatus) -> str:
    lines = []
    for d in m.drift:
        if d.field == "parameters" and isinstance(d.expected, dict):
            for key in sorted(set(d.expected) | set(d.actual or {})):
                lines.append(f"- PARAMETER {key} {_value(d.expected.get(key))}")
                lines.append(f"+ PARAMETER {key} {_value((d.actual or {}).get(key))}")
        else:
            lines.append(f"- {d.field.upper()} {shorten(_value(d.expected), 160)}")
            lines.append(f"+ {d.field.upper()} {shorten(_value(d.actual), 160)}")
    return fenced("\n".join(lines), "diff")


def _size(n: int) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def render(diag: Diagnosis, *, build_script: str, validate_script: str) -> str:
    crit = diag.critical()
    ok = [m for m in crit if m.status == "available"]
    out: list[str] = ["# Mirador model diagnostic\n\n"]
    if not diag.reachable:
        verdict = (f"**Server unreachable** ({text(diag.host)}): the Modelfiles were checked, "
                   "the built models were not.")
    elif len(ok) == len(crit):
        verdict = f"**All {len(crit)} critical models are available.**"
    else:
        verdict = (f"**{len(crit) - len(ok)} of {len(crit)} critical models are not "
                   "available.** Run the build script below.")
    out.append(f"{verdict}\n\n")
    out.append(f"Server {code(diag.host)}, checked {text(diag.generated_at)} in "
               f"{diag.elapsed_s:.2f} s; Modelfiles from {code(diag.modelfiles_dir)}.\n\n")
    if diag.server_error:
        out.append(f"> {text(diag.server_error)}\n\n")

    counts = diag.summary()
    out.append("## Summary\n\n")
    out.append(table(["Status", "Models", "Meaning"],
                     [[f"{STATUS_ICON[s]} {s}", n, STATUS_MEANING[s]]
                      for s, n in counts.items()]))
    out.append("\n" + mermaid_pie("Models by status", counts) + "\n")

    out.append("## Critical models\n\n")
    rows = [[str(m.priority), code(m.name), f"{STATUS_ICON[m.status]} {m.status}",
             cell(m.category or ""), next_action(m, build_script, validate_script)]
            for m in crit]
    out.append(table(["#", "Model", "Status", "Category", "Next action"], rows, raw=True))
    out.append("\n")

    for status in ("drifted", "needs_build", "invalid", "missing", "ollama_only", "available",
                   "unknown"):
        group = [m for m in diag.models if m.status == status]
        if not group:
            continue
        out.append(f"## {STATUS_ICON[status]} {status} ({len(group)})\n\n"
                   f"{text(STATUS_MEANING[status])}.\n\n")
        if status == "drifted":
            for m in group:
                out.append(f"### {code(m.name)}\n\nModelfile {code(m.modelfile)}; fields that "
                           f"differ: {', '.join(code(d.field) for d in m.drift)}. "
                           f"`-` is the Modelfile, `+` the server.\n\n{drift_diff(m)}\n")
        elif status == "invalid":
            rows = [[code(m.name), code(m.modelfile), cell(m.error_line or ""),
                     code(m.error)] for m in group]
            out.append(table(["Model", "Modelfile", "Line", "Ollama says"], rows, raw=True))
        elif status == "needs_build":
            rows = [[code(m.name), "yes" if m.critical else "", code(m.base),
                     cell(m.base_kind or ""),
                     "yes" if m.base_available else "no — built first" if m.base_kind ==
                     "fleet" else "no — pulled first"]
                    for m in group]
            out.append(table(["Model", "Critical", "FROM", "Base is", "Base present"], rows,
                             raw=True))
        elif status == "ollama_only":
            rows = [[code(m.name), "yes" if m.critical else "", cell(", ".join(m.capabilities)),
                     cell(", ".join(m.base_of) or "—"),
                     next_action(m, build_script, validate_script)] for m in group]
            out.append(table(["Model", "Critical", "Capabilities", "Base of", "Next action"],
                             rows, raw=True))
        else:
            rows = [[code(m.name), "yes" if m.critical else "", code(m.modelfile or "—"),
                     cell(", ".join(m.capabilities))] for m in group]
            out.append(table(["Model", "Critical", "Modelfile", "Capabilities"], rows,
                             raw=True))
        out.append("\n")

    warned = [m for m in diag.models if m.warnings]
    if warned:
        out.append("## Warnings from the create checks\n\n")
        out.append(bullets(f"{code(m.name)}: {text('; '.join(m.warnings))}" for m in warned))
        out.append("\n")

    if diag.build_order:
        out.append("## Build order\n\nBases to pull first, then models in dependency order "
                   "(critical first, by priority):\n\n")
        out.append(numbered(code(n) for n in diag.build_order))
        out.append("\n")

    out.append("## Server\n\n")
    out.append(table(["Fact", "Value"], [
        ["Host", diag.host], ["Reachable", "yes" if diag.reachable else "no"],
        ["Version", diag.server_version or "unknown"],
        ["Models on the server", diag.server_model_count],
        ["Disk size of the models", f"{_size(diag.server_disk_bytes)} (sum of model sizes; "
                                    "layers shared between models are counted per model)"],
    ]))
    if diag.fleet_problems or diag.ignored_files:
        out.append("\n## The Modelfiles folder\n\n")
        out.append(bullets(text(p) for p in diag.fleet_problems))
        if diag.ignored_files:
            out.append(f"- {len(diag.ignored_files)} file(s) ignored (not a Modelfile name): "
                       + ", ".join(code(p) for p in diag.ignored_files[:20]) + "\n")

    out.append("\n## What to run next\n\n")
    steps = []
    if not diag.reachable:
        steps.append("Start the server or point at it with `--host URL` / `OLLAMA_HOST`, "
                     "then run the diagnostic again.")
    if any(m.status == "invalid" and m.critical for m in diag.models):
        steps.append("Fix the invalid critical Modelfiles listed above.")
    if diag.build_order:
        steps.append(f"Review, then run {code('bash ' + build_script)} "
                     f"(add `--dry-run` to preview, `--all` for non-critical models).")
    steps.append(f"Prove the critical models answer: {code('bash ' + validate_script)}.")
    steps.append("Run the diagnostic again: it must exit 0 before the performance tests.")
    out.append(numbered(steps))
    return "".join(out)

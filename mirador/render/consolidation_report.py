"""`consolidation_report.md`: the fleet before and after, and how the migration will run."""

from __future__ import annotations

import json
from typing import Any

from mirador.render.markdown import bullets, cell, code, fenced, numbered, table, text


def _v(value: Any) -> str:
    return "(base default)" if value is None else (
        json.dumps(value) if isinstance(value, list) else str(value))


def _bases_chart(title: str, counts: dict[str, int]) -> str:
    from mirador.render.markdown import mermaid_pie

    return mermaid_pie(title, {k.removesuffix(":latest"): v for k, v in counts.items()})


def render(doc: dict[str, Any], *, scripts: dict[str, str]) -> str:
    size = doc["fleet_size"]
    out = ["# Mirador consolidation plan\n\n"]
    out.append(f"**{size['before']} models → {size['after']}** on one base, "
               f"{code(doc['target_base'])} (built FROM {code(doc['base_from'])}). "
               f"{len(doc['retired'])} retired, each with the model that replaces it.")
    out.append(" Analysed from the Modelfiles alone (offline).\n\n" if doc["offline"]
               else " Joined with the server's state.\n\n")
    if doc["warnings"]:
        out.append("## Warnings\n\n" + bullets(text(w) for w in doc["warnings"]) + "\n")

    out.append("## Families\n\nA name ending in `_vN` is version N of its family; the newest "
               "is kept unless `consolidation.pins` in mirador.yaml names another.\n\n")
    out.append(table(["Family", "Versions found", "Kept", "Retired"],
                     [[code(f["family"]), ", ".join(code(v) for v in f["versions"]),
                       ", ".join(code(v) for v in f["kept"]) or "—",
                       ", ".join(code(v) for v in f["retired"]) or "—"]
                      for f in doc["families"]], raw=True))

    out.append("\n## Retired models and their replacements\n\n")
    out.append(table(["Retired", "Replaced by", "Why"],
                     [[code(r["name"]), code(r["replaced_by"]), cell(r["reason"])]
                      for r in doc["retired"]], raw=True) if doc["retired"] else "None.\n")

    out.append("\n## Duplicates\n\nExact: equal normal forms (merged). Near: same base and "
               "parameters, SYSTEM prompts at least as similar as the threshold (for you to "
               "decide).\n\n")
    out.append(table(["Kind", "Models", "Similarity", "Kept"],
                     [[d["kind"], ", ".join(code(m) for m in d["models"]),
                       f"{d['similarity']:.2f}", code(d["kept"]) if d["kept"] else "review"]
                      for d in doc["duplicates"]], raw=True) if doc["duplicates"] else "None.\n")

    out.append("\n## Base models in use\n\n")
    out.append(_bases_chart("Models per base, before", doc["bases"]["before"]))
    out.append("\n" + _bases_chart("Models per base, after", doc["bases"]["after"]) + "\n")

    out.append("## Chains\n\n")
    for ch in doc["chains"]:
        mark = "✅" if ch["ok"] else "❌"
        steps = " → ".join(
            code(s["model"]) + ("" if s["status"] == "kept" else
                                f" (retired: use {code(s['resolves_to'])})"
                                if s["status"] == "retired" else " (unknown model)")
            for s in ch["steps"])
        out.append(f"- {mark} {code(ch['chain'])}: {steps}\n")
    if not doc["chains"]:
        out.append("No chains in mirador.yaml.\n")

    if doc["invalid"]:
        out.append("\n## Not planned: invalid Modelfiles\n\n")
        out.append(table(["Model", "Modelfile", "Error"],
                         [[code(i["name"]), code(i["modelfile"]), code(i["error"])]
                          for i in doc["invalid"]], raw=True))

    out.append("\n## Parameter changes\n\nPrecedence: `consolidation.overrides` > the "
               "profile's enforced keys > the model's own PARAMETERs > the profile > the "
               "base's defaults.\n\n")
    for o in doc["optimized"]:
        rows = "\n".join(f"- PARAMETER {k} {_v(old)}\n+ PARAMETER {k} {_v(new)}"
                         for k, (old, new) in o["changes"].items())
        out.append(f"### {code(o['name'])} — profile {code(o['profile'])}, FROM "
                   f"{code(o['base'])}\n\n")
        out.append(fenced(rows, "diff") if rows else "No parameter changes.\n")
        out.append("\n")

    out.append("## Migration order\n\nOne model at a time; each is backed up, rebuilt, and "
               "must answer before the next starts.\n\n")
    out.append(numbered(code(n) for n in doc["migration_order"]))
    out.append("\n## What to run\n\n")
    out.append(numbered([
        f"Review {code('optimized_modelfiles/')} and this plan.",
        f"Back up: {code('bash ' + scripts['backup'])}",
        f"Check the gate: {code('phase2_readiness_validator.py')}",
        f"Migrate: {code('bash ' + scripts['migrate'])} (add `--dry-run` first; `--all` for "
        "non-critical models)",
        f"If anything is wrong: {code('bash ' + scripts['rollback'])}",
    ]))
    if doc["variants"]:
        out.append("\n## Variants for experiments\n\n")
        out.append(bullets(f"{code(v['variant'])}: {code(v['path'])}" for v in doc["variants"]))
    return "".join(out)

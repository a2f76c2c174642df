"""`phase2_readiness_report.md` and the JUnit XML of the gate."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from mirador.render.markdown import cell, code, numbered, table, text

ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skip": "⏭️"}


def render(doc: dict[str, Any]) -> str:
    verdict = "READY" if doc["ready"] else "NOT READY"
    out = [f"# {verdict} — Mirador phase-2 readiness\n\n"]
    crit = [c for c in doc["checks"] if c["severity"] == "critical"]
    failed = [c for c in crit if c["status"] == "fail"]
    out.append(f"{len(crit) - len(failed)}/{len(crit)} critical checks pass; server "
               f"{code(doc['host'])}"
               f"{' (Ollama ' + text(doc['server_version']) + ')' if doc['server_version'] else ''}"
               f", {text(doc['generated_at'])}. Recommended checks warn, never block.\n\n")
    out.append(table(["", "Check", "Severity", "Status", "Measured"],
                     [[ICON[c["status"]], code(c["id"]), c["severity"], c["status"],
                       cell(c["detail"])] for c in doc["checks"]], raw=True))
    if doc["actions"]:
        out.append("\n## What to do, in order\n\n")
        out.append(numbered(code(a) if a.startswith(("python", "bash")) else text(a)
                            for a in doc["actions"]))
    out.append("\n## Detail\n\n")
    for c in doc["checks"]:
        out.append(f"### {ICON[c['status']]} {text(c['title'])} ({code(c['id'])}, "
                   f"{c['severity']})\n\n{text(c['detail'])}\n\n")
        if c["action"]:
            out.append(f"Action: {text(c['action'])}\n\n")
    return "".join(out)


def junit(doc: dict[str, Any]) -> str:
    """One test case per check: fail → <failure>, skip → <skipped>, warn → a pass that
    says so in <system-out>."""
    cases = doc["checks"]
    suite = ET.Element("testsuite", name="phase2_readiness", tests=str(len(cases)),
                       failures=str(sum(c["status"] == "fail" for c in cases)),
                       skipped=str(sum(c["status"] == "skip" for c in cases)), errors="0",
                       timestamp=doc["generated_at"])
    for c in cases:
        case = ET.SubElement(suite, "testcase", classname=f"readiness.{c['severity']}",
                             name=c["id"])
        if c["status"] == "fail":
            failure = ET.SubElement(case, "failure", message=c["detail"][:500])
            failure.text = f"{c['detail']}\nAction: {c['action'] or '-'}"
        elif c["status"] == "skip":
            ET.SubElement(case, "skipped", message=c["detail"][:500])
        out = ET.SubElement(case, "system-out")
        out.text = f"{c['status'].upper()}: {c['detail']}"
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
        suite, encoding="unicode") + "\n"

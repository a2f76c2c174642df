"""What the scripts show a person on stderr: rich progress bars and summary tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mirador.cli import Settings, stderr_console

STATUS_STYLE = {"available": "green", "needs_build": "yellow", "missing": "red",
                "ollama_only": "blue", "drifted": "magenta", "invalid": "red",
                "unknown": "dim"}


class Advance:
    """What a progress bar hands to the library: call it per item; `total(n)` once known."""

    def __init__(self, progress=None, task=None):
        self._progress, self._task = progress, task

    def __call__(self, item: Any = None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, item=str(item or ""))

    def total(self, n: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, total=n)


@contextlib.contextmanager
def progress_bar(settings: Settings, label: str, total: int | None = None,
                 ) -> Iterator[Advance]:
    """Yield an `Advance`; draws a transient bar on stderr unless quiet or not a TTY."""
    console = stderr_console(settings.quiet)
    if settings.quiet or not console.is_terminal:
        yield Advance()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[item]}", style="dim")]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=total, item="")
        yield Advance(progress, task)


def print_files(console, files: dict[str, Path]) -> None:
    """Where the outputs are: the last lines every script prints."""
    width = max((len(label) for label in files), default=0) + 2
    for label, path in files.items():
        console.print(f"  {label:<{width}} {path}")


def print_diagnosis(settings: Settings, diag, files: dict[str, Path]) -> None:
    if settings.quiet:
        return
    from rich.table import Table

    console = stderr_console()
    if not diag.reachable:
        console.print(f"[red]Server unreachable:[/] {diag.server_error}")
    summary = Table(title="Models by status", show_edge=False)
    summary.add_column("Status")
    summary.add_column("Count", justify="right")
    for status, count in diag.summary().items():
        summary.add_row(f"[{STATUS_STYLE[status]}]{status}[/]", str(count))
    console.print(summary)
    crit = Table(title="All models" if settings.verbose else "Critical models",
                 show_edge=False)
    for col in ("#", "Model", "Status", "Detail"):
        crit.add_column(col)
    for m in (diag.models if settings.verbose else diag.critical()):
        detail = m.error or ", ".join(d.field for d in m.drift) or ""
        crit.add_row(str(m.priority or ""), m.name,
                     f"[{STATUS_STYLE[m.status]}]{m.status}[/]",
                     detail if settings.verbose else detail[:80])
    console.print(crit)
    ok = sum(m.status == "available" for m in diag.critical())
    console.print(f"{ok}/{len(diag.critical())} critical models available; server "
                  f"{diag.host} ({diag.server_version or 'version unknown'}), "
                  f"{diag.elapsed_s:.2f} s.")
    print_files(console, files)


def print_performance(settings: Settings, doc: dict[str, Any], files: dict[str, Path]) -> None:
    if settings.quiet:
        return
    from rich.table import Table

    from mirador.render.performance_report import number as n

    console = stderr_console()
    t = Table(title="Performance (warm figures)", show_edge=False)
    for col in ("Model", "Success", "Latency mean ms (client)", "TTFT p50 ms (client)",
                "Decode tok/s (server)", "Load ms", "Quality"):
        t.add_column(col, justify="left" if col == "Model" else "right")
    for m in doc["models"]:
        if m["error"]:
            t.add_row(m["name"], "[red]not measured[/]", m["error"][:40], "", "", "", "")
            continue
        t.add_row(m["name"], f"{m['success_rate'] * 100:.0f}%", n(m["latency_ms"]["mean"]),
                  n(m["ttft_ms"]["p50"]), n(m["decode_tokens_per_s"]["mean"], 1),
                  n(m["load_ms"]), n(m["quality"]["mean"], 2))
    console.print(t)
    if settings.verbose:
        samples = Table(title="Every request", show_edge=False)
        for col in ("Model", "Kind", "Warm-up", "Latency ms", "TTFT ms", "Decode tok/s",
                    "Quality", "Error"):
            samples.add_column(col)

        for x in doc["samples"]:
            samples.add_row(x["model"], x["kind"], "yes" if x["warmup"] else "",
                            n(x["latency_ms"]), n(x["ttft_ms"]), n(x["decode_tps"], 1),
                            n(x["quality"], 2), x["error_kind"] or "")
        console.print(samples)
    ov, v = doc["overall"], doc["verdict"]
    mark = "[green]PASS[/]" if v["passed"] else "[red]FAIL[/]"
    avg = "—" if ov["avg_response_s"] is None else f"{ov['avg_response_s']:.2f} s"
    q = "—" if ov["quality_mean"] is None else f"{ov['quality_mean']:.2f}"
    console.print(f"{mark}: success {ov['success_rate'] * 100:.0f}%, average response {avg}, "
                  f"quality {q}{' (partial)' if doc.get('partial') else ''}")
    print_files(console, files)


def print_plan(settings: Settings, doc: dict[str, Any], files: dict[str, Path]) -> None:
    if settings.quiet:
        return
    from rich.table import Table

    console = stderr_console()
    size = doc["fleet_size"]
    console.print(f"Fleet: {size['before']} models → {size['after']} kept, "
                  f"{len(doc['retired'])} retired; target base {doc['target_base']}.")
    t = Table(title="Retired", show_edge=False)
    t.add_column("Model")
    t.add_column("Replaced by")
    t.add_column("Why")
    for r in doc["retired"]:
        t.add_row(r["name"], r["replaced_by"], r["reason"])
    console.print(t)
    for ch in doc["chains"]:
        if not ch["ok"]:
            bad = [s for s in ch["steps"] if s["status"] != "kept"]
            console.print(f"[red]chain {ch['chain']}[/]: " + "; ".join(
                f"{s['model']} is {s['status']}"
                + (f" (use {s['resolves_to']})" if s["resolves_to"] else "") for s in bad))
    for w in doc["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")
    console.print("Migration order: " + ", ".join(doc["migration_order"]))
    if settings.verbose:
        for o in doc["optimized"]:
            changes = ", ".join(f"{k} {old} → {new}" for k, (old, new) in o["changes"].items())
            console.print(f"  {o['name']}: profile {o['profile']}, FROM {o['base']}; "
                          f"{changes or 'no parameter changes'}")
    print_files(console, files)


def print_readiness(settings: Settings, doc: dict[str, Any], files: dict[str, Path]) -> None:
    if settings.quiet:
        return
    from rich.table import Table

    style = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
    console = stderr_console()
    t = Table(title="Phase-2 readiness", show_edge=False)
    for col in ("Check", "Severity", "Status", "Measured"):
        t.add_column(col)
    for c in doc["checks"]:
        t.add_row(c["id"], c["severity"], f"[{style[c['status']]}]{c['status']}[/]",
                  c["detail"] if settings.verbose else c["detail"][:90])
    console.print(t)
    verdict = "[green]READY[/]" if doc["ready"] else "[red]NOT READY[/]"
    console.print(f"{verdict}")
    for i, action in enumerate(doc["actions"], 1):
        console.print(f"  {i}. {action}")
    print_files(console, files)

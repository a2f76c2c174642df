"""Run the performance tester end to end: pick models, measure, write the two outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirador import probes
from mirador.categories import category_for
from mirador.cli import Settings
from mirador.errors import ConfigError
from mirador.names import display_name
from mirador.outputs import write_atomic
from mirador.performance import (
    ModelResult,
    Runner,
    RunSettings,
    compare_baseline,
    load_results,
    overall,
    results_document,
    summarize,
    verdict,
)
from mirador.render import performance_report

REPORT = "performance_report.md"
RESULTS = "performance_results.json"


@dataclass
class PerformanceRun:
    document: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    interrupted: bool = False


def select_models(settings: Settings, client, *, models: tuple[str, ...], critical: bool,
                  all_models: bool) -> list[str]:
    chosen: list[str] = [display_name(m) for m in models]
    if critical or not (models or all_models):
        if not settings.config.critical_models and not (models or all_models):
            raise ConfigError("no models chosen: pass --model NAME, --critical (with "
                              "critical_models in mirador.yaml) or --all")
        chosen += [display_name(c.name) for c in settings.config.critical_models]
    if all_models:
        chosen += [t.get("name") for t in client.tags() if t.get("name")]
    return list(dict.fromkeys(chosen))


def run_performance(settings: Settings, run: RunSettings, *, models: tuple[str, ...],
                    critical: bool, all_models: bool, queries_file: str | None,
                    baseline_file: str | None, latency_pct: float, quality_drop: float,
                    progress=None, on_total=None) -> PerformanceRun:
    queries = probes.load_queries(queries_file)
    baseline = load_results(baseline_file) if baseline_file else None
    with settings.client() as client:
        server_version = client.version()  # unreachable → OllamaUnreachable (exit 3)
        names = select_models(settings, client, models=models, critical=critical,
                              all_models=all_models)
        if on_total:  # warm-up and measured requests, plus a capability probe or two
            on_total(len(names) * (run.warmup + run.requests + 1))
        runner = Runner(client, run, queries, progress=progress,
                        category_of=lambda n: category_for(settings.config, n))
        results: list[ModelResult] = []
        interrupted = False
        try:
            for name in names:
                results.append(runner.measure(name))
        except KeyboardInterrupt:
            runner.stop.set()
            interrupted = True
            current = runner.current
            if current is not None and current not in results and current.samples:
                results.append(current)  # what the interrupted model gathered so far
    summaries = [summarize(r) for r in results]
    samples = [s for r in results for s in r.samples]
    ov = overall(summaries, samples)
    comparison = compare_baseline(summaries, baseline, latency_pct=latency_pct,
                                  quality_drop=quality_drop) if baseline else None
    doc = results_document(host=client.host, settings=run, models=summaries, samples=samples,
                           ov=ov, verdict_=verdict(ov, settings.config.thresholds),
                           partial=interrupted or len(results) < len(names),
                           baseline=comparison, baseline_file=baseline_file,
                           server_version=server_version)
    if doc["partial"]:
        doc["not_measured"] = names[len(results):]
    out = settings.output_dir
    files = {
        "report": write_atomic(out / REPORT, performance_report.render(doc)),
        "results": write_atomic(out / RESULTS, json.dumps(doc, indent=2,
                                                          ensure_ascii=False) + "\n"),
    }
    return PerformanceRun(doc, files, interrupted)

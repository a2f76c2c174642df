#!/usr/bin/env python3
"""phase2_readiness_validator.py: one evidence-based go/no-go for phase 2."""

from __future__ import annotations

import click

from mirador.cli import common_options, error_shell, resolve_settings


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--results", "results_file", metavar="FILE", default=None,
              help="Performance results to judge speed and quality by (default: "
                   "performance_results.json in the output folder; without a fresh one a "
                   "quick run is made).")
@click.option("--max-age", type=click.FloatRange(min=0), default=24.0, show_default=True,
              metavar="HOURS", help="Older results do not count.")
@click.option("--junit", "junit_file", metavar="FILE", default=None,
              help="Also write JUnit XML, one test case per check, for CI.")
@click.option("--min-success-rate", type=click.FloatRange(0, 1), default=None)
@click.option("--max-avg-response", type=click.FloatRange(min=0), default=None,
              metavar="SECONDS")
@click.option("--min-quality", type=click.FloatRange(0, 1), default=None)
@click.option("--max-disk-pct", type=click.FloatRange(0, 100), default=None)
@common_options
@error_shell
def main(results_file, max_age, junit_file, min_success_rate, max_avg_response, min_quality,
         max_disk_pct, **options) -> int:
    """Say READY or NOT READY for phase 2, with the evidence and what to do.

    Critical checks (all must pass): ollama_service, critical_models_available,
    critical_models_functional, success_rate, avg_response_time, quality_score,
    backup_scripts, optimized_configs. Recommended (warn only): disk_space, memory, gpu,
    migration_scripts, documentation. Thresholds come from mirador.yaml; the flags
    override them. Writes phase2_readiness_report.md and phase2_readiness.json.

    \b
    Exit codes: 0 ready; 1 not ready; 2 usage or configuration error;
                3 the server cannot be reached (the report is still written).
    \b
    Example:
      phase2_readiness_validator.py --junit readiness.xml
    """
    import dataclasses
    import json
    import sys
    from pathlib import Path

    from mirador.errors import ExitCode
    from mirador.outputs import write_atomic
    from mirador.readiness import Gate, run_gate
    from mirador.render import readiness_report
    from mirador.render.console import print_readiness

    settings = resolve_settings(**options)
    th = dataclasses.replace(settings.config.thresholds)
    for key, value in (("success_rate", min_success_rate), ("avg_response_s", max_avg_response),
                       ("quality", min_quality), ("disk_used_pct", max_disk_pct)):
        if value is not None:
            setattr(th, key, value)
    explicit = results_file is not None
    path = Path(results_file) if explicit else settings.output_dir / "performance_results.json"
    gate = Gate(settings=settings, thresholds=th, results_file=path, results_explicit=explicit,
                max_age_h=max_age, python=Path(sys.executable).name)
    readiness = run_gate(gate)
    doc = readiness.to_dict()
    out = settings.output_dir
    files = {"report": write_atomic(out / "phase2_readiness_report.md",
                                    readiness_report.render(doc)),
             "json": write_atomic(out / "phase2_readiness.json",
                                  json.dumps(doc, indent=2, ensure_ascii=False) + "\n")}
    if junit_file:
        files["junit"] = write_atomic(junit_file, readiness_report.junit(doc))
    if settings.json_output:
        from mirador.cli import emit_json

        emit_json(doc)
    print_readiness(settings, doc, files)
    if not readiness.reachable:
        return ExitCode.UNREACHABLE
    return ExitCode.OK if readiness.ready else ExitCode.PROBLEMS_FOUND


if __name__ == "__main__":
    main()

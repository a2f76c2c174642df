#!/usr/bin/env python3
"""mirador_performance_tester.py: how fast and how well each model answers."""

from __future__ import annotations

import click

from mirador.cli import common_options, error_shell, resolve_settings


def _levels(_ctx, _param, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        levels = tuple(int(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected numbers like 1,2,4,8") from None
    if any(n < 1 for n in levels):
        raise click.BadParameter(f"{value!r}: levels must be at least 1")
    return levels


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", "models", multiple=True, metavar="NAME",
              help="A model to test (repeatable).")
@click.option("--critical", is_flag=True, help="The critical models of mirador.yaml.")
@click.option("--all", "all_models", is_flag=True, help="Every model built on the server.")
@click.option("--requests", type=click.IntRange(min=1), default=5, show_default=True,
              help="Measured requests per model.")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Warm-up requests per model (not counted in warm figures).")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Requests in flight at once per model.")
@click.option("--sweep", callback=_levels, metavar="1,2,4,8",
              help="Also measure throughput and latency at each concurrency level.")
@click.option("--keep-alive", metavar="DURATION", default=None,
              help="keep_alive sent with each request (e.g. 10m, or -1 for forever).")
@click.option("--seed", type=int, default=None, help="Seed for sampling and prompt variation.")
@click.option("--cold", is_flag=True, help="Unload each model first to measure a cold start.")
@click.option("--queries", "queries_file", metavar="FILE", default=None,
              help="Your own test queries YAML (same shape as the built-in file).")
@click.option("--judge-model", metavar="NAME", default=None,
              help="Also ask this Ollama model to grade answers; blended with the checks.")
@click.option("--judge-weight", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--baseline", "baseline_file", metavar="FILE", default=None,
              help="An earlier performance_results.json to compare with.")
@click.option("--regression-latency-pct", type=float, default=20.0, show_default=True,
              help="Flag a regression when mean latency grew by more than this.")
@click.option("--regression-quality", type=float, default=0.05, show_default=True,
              help="Flag a regression when mean quality fell by more than this.")
@common_options(timeout=120.0)  # a first load can take minutes; 30 s is for metadata
@error_shell
def main(models, critical, all_models, requests, warmup, concurrency, sweep, keep_alive,
         seed, cold, queries_file, judge_model, judge_weight, baseline_file,
         regression_latency_pct, regression_quality, **options) -> int:
    """Measure how fast and how well each model answers, on both sides of the wire.

    Client side: latency, time to first token, gaps between chunks. Server side: load,
    prefill and decode rates from Ollama's own counters. Each answer is scored 0-1 by the
    checks of its category's test queries. Writes performance_report.md and
    performance_results.json (every raw sample included).

    \b
    Exit codes: 0 the thresholds of mirador.yaml are met; 1 they are not;
                2 usage or configuration error; 3 the server cannot be reached;
                130 interrupted (the partial results are still written).
    \b
    Examples:
      mirador_performance_tester.py --critical
      mirador_performance_tester.py --model louisville_expert_v3 --requests 10 --sweep 1,2,4
      mirador_performance_tester.py --critical --baseline old/performance_results.json
    """
    from mirador.errors import ExitCode
    from mirador.performance import RunSettings
    from mirador.performance_run import run_performance
    from mirador.render.console import print_performance, progress_bar

    settings = resolve_settings(**options)
    run = RunSettings(requests=requests, warmup=warmup, concurrency=concurrency,
                      timeout=settings.timeout, keep_alive=keep_alive, seed=seed, cold=cold,
                      judge_model=judge_model, judge_weight=judge_weight, sweep=sweep)
    with progress_bar(settings, "Measuring", total=None) as advance:
        result = run_performance(settings, run, models=models, critical=critical,
                                 all_models=all_models, queries_file=queries_file,
                                 baseline_file=baseline_file,
                                 latency_pct=regression_latency_pct,
                                 quality_drop=regression_quality, progress=advance,
                                 on_total=advance.total)
    if settings.json_output:
        from mirador.cli import emit_json

        emit_json(result.document)
    print_performance(settings, result.document, result.files)
    if result.interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.OK if result.document["verdict"]["passed"] else ExitCode.PROBLEMS_FOUND


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""config_generator.py: consolidate the fleet and plan a safe migration to one base."""

from __future__ import annotations

import click

from mirador.cli import common_options, error_shell, resolve_settings


def _sweep(_ctx, _param, value: str | None):
    if not value:
        return None
    key, sep, values = value.partition("=")
    if not sep or not values:
        raise click.BadParameter(f"{value!r}: expected NAME=v1,v2,… e.g. temperature=0.2,0.7")
    return key.strip(), [v.strip() for v in values.split(",") if v.strip()]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--offline", is_flag=True, help="Analyse the Modelfiles alone; no server.")
@click.option("--target-base", metavar="NAME", default=None,
              help="The base every kept model moves to (default: migration.target_base).")
@click.option("--variants", multiple=True, metavar="NAME",
              help="Also write experiment variants of this model (one per profile).")
@click.option("--sweep-param", "sweep", callback=_sweep, metavar="PARAM=v1,v2",
              help="With --variants: one variant per value of PARAM instead of per profile.")
@common_options
@error_shell
def main(offline, target_base, variants, sweep, **options) -> int:
    """Consolidate the fleet and write a safe migration to one base model.

    Groups models into families (name_vN), keeps the newest version of each (unless
    pinned), merges exact duplicates, flags near-duplicates, checks every chain of
    mirador.yaml, and writes optimized Modelfiles (FROM the target base, parameters from a
    category profile merged with each model's own settings) plus backup_models.sh,
    migrate_models.sh and rollback_models.sh.

    \b
    Exit codes: 0 plan written and every chain resolves; 1 plan written but a chain
                references a retired or unknown model; 2 usage or configuration error;
                3 the server cannot be reached (the plan is still written, offline).
    \b
    Examples:
      config_generator.py
      config_generator.py --offline --variants louisville_expert_v3
      config_generator.py --variants louisville_expert_v3 --sweep-param temperature=0.2,0.7
    """
    from mirador.configgen_run import run_configgen
    from mirador.errors import ExitCode
    from mirador.render.console import print_plan

    if sweep and not variants:
        raise click.UsageError("--sweep-param needs --variants NAME")
    settings = resolve_settings(**options)
    result = run_configgen(settings, offline=offline, target_base=target_base,
                           variants=variants, sweep=sweep)
    if settings.json_output:
        from mirador.cli import emit_json

        emit_json(result.document)
    print_plan(settings, result.document, result.files)
    if not result.reachable:
        return ExitCode.UNREACHABLE
    ok = all(c["ok"] for c in result.document["chains"])
    return ExitCode.OK if ok else ExitCode.PROBLEMS_FOUND


if __name__ == "__main__":
    main()

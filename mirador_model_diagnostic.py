#!/usr/bin/env python3
"""mirador_model_diagnostic.py: plan the fleet against an Ollama server."""

from __future__ import annotations

import click

from mirador.cli import common_options, error_shell, resolve_settings


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@error_shell
def main(**options) -> int:
    """Find every gap between the Modelfiles and an Ollama server, and write the scripts
    that close it.

    Classifies each model as available, needs_build, missing, ollama_only, drifted or
    invalid, and writes into the output folder: model_diagnostic_report.md,
    model_diagnostic.json, build_critical_models.sh and validate_critical_models.sh.

    \b
    Exit codes: 0 every critical model is available; 1 some are not;
                2 usage or configuration error; 3 the server cannot be reached.
    \b
    Example:
      mirador_model_diagnostic.py --host http://gpu-box:11434
      bash diagnostic_output/build_critical_models.sh --dry-run
    """
    from mirador.diagnostic_run import run_diagnostic
    from mirador.errors import ExitCode
    from mirador.render.console import print_diagnosis, progress_bar

    settings = resolve_settings(**options)
    with progress_bar(settings, "Reading models") as advance:
        run = run_diagnostic(settings, progress=advance)
    diag = run.diagnosis
    if settings.json_output:
        from mirador.cli import emit_json

        emit_json(diag.to_dict())
    print_diagnosis(settings, diag, run.files)
    if not diag.reachable:
        return ExitCode.UNREACHABLE
    return ExitCode.OK if diag.all_critical_available() else ExitCode.PROBLEMS_FOUND


if __name__ == "__main__":
    main()

"""`make demo`: the whole Mirador pipeline against the bundled Ollama simulator.

It starts the simulator with the team's phase-1 scenario (scenarios/phase1.yaml), puts the
stand-in `ollama` CLI on PATH for this run only, runs every tool the way a person would
(as subprocesses, through their command lines) and leaves the outputs in demo_output/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo_output"


def main() -> int:
    from rich.console import Console
    from rich.rule import Rule

    from mirador.simulator import Simulator
    from mirador.simulator.ollama_cli import write_wrapper

    console = Console(stderr=True)
    if OUT.exists():
        shutil.rmtree(OUT)  # demo_output/ is the demo's own scratch folder
    (OUT / "bin").mkdir(parents=True)
    write_wrapper(OUT / "bin")
    sim = Simulator.from_file(ROOT / "scenarios" / "phase1.yaml").start()
    env = {**os.environ, "OLLAMA_HOST": sim.url,
           "PATH": f"{OUT / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MIRADOR_RAISE_ERRORS", None)
    console.print(Rule("Mirador demo"))
    console.print(f"Ollama simulator (phase-1 scenario) at [bold]{sim.url}[/]; the stand-in "
                  f"`ollama` CLI in {OUT / 'bin'} is on PATH for this demo only.\n")
    failures: list[str] = []

    def step(title: str, argv: list[str], expect: set[int]) -> int:
        console.print(Rule(title, align="left"))
        console.print(f"[dim]$ {' '.join(argv)}[/]")
        started = time.perf_counter()
        code = subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode
        took = time.perf_counter() - started
        mark = "[green]as expected[/]" if code in expect else "[red]unexpected[/]"
        console.print(f"exit {code} ({mark}) in {took:.1f} s\n")
        if code not in expect:
            failures.append(f"{title}: exit {code}")
        return code

    py = sys.executable
    out = str(OUT)
    try:
        step("1. Diagnose the phase-1 fleet (3 of 6 critical models were never built)",
             [py, "mirador_model_diagnostic.py", "--output-dir", out], {1})
        step("2. Preview the build script", ["bash", f"{out}/build_critical_models.sh",
                                             "--dry-run"], {0})
        step("3. Build the missing critical models",
             ["bash", f"{out}/build_critical_models.sh"], {0})
        step("4. Run it again: nothing left to do",
             ["bash", f"{out}/build_critical_models.sh"], {0})
        step("5. Prove every critical model answers",
             ["bash", f"{out}/validate_critical_models.sh"], {0})
        step("6. Diagnose again: every critical model available",
             [py, "mirador_model_diagnostic.py", "--output-dir", out, "-q"], {0})
        step("7. Measure speed and answer quality of the critical models",
             [py, "mirador_performance_tester.py", "--critical", "--requests", "3",
              "--output-dir", out], {0})
        shutil.copy(OUT / "performance_results.json", OUT / "pre_migration_results.json")
        step("8. Plan the consolidation (exit 1: the legacy_triage chain still names a "
             "retired model)", [py, "config_generator.py", "--output-dir", out], {1})
        step("9. The phase-2 gate", [py, "phase2_readiness_validator.py", "--output-dir", out,
                                     "--junit", f"{out}/phase2_readiness.xml"], {0})
        step("10. Back up every model the migration touches",
             ["bash", f"{out}/backup_models.sh"], {0})
        step("11. Migrate the critical models to llama3.2_balanced, one at a time",
             ["bash", f"{out}/migrate_models.sh"], {0})
        step("12. Prove they still answer", ["bash", f"{out}/validate_critical_models.sh"],
             {0})
        step("13. Measure again and compare with the pre-migration results",
             [py, "mirador_performance_tester.py", "--critical", "--requests", "3",
              "--output-dir", out, "--baseline", f"{out}/pre_migration_results.json"], {0})
    finally:
        sim.stop()
    console.print(Rule("Outputs"))
    for path in sorted(OUT.iterdir()):
        if path.is_file():
            console.print(f"  {path.relative_to(ROOT)}")
    if failures:
        console.print("[red]Demo steps that did not behave as expected:[/] "
                      + "; ".join(failures))
        return 1
    console.print("\nRead the reports in order: model_diagnostic_report.md, "
                  "performance_report.md, consolidation_report.md, "
                  "phase2_readiness_report.md (all in demo_output/). Roll the migration back "
                  "with demo_output/rollback_models.sh against a running server.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

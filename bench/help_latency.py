"""Benchmark: how fast each script answers --help (target: under 250 ms).

Each command runs 15 times; the median wall time is printed next to the interpreter's own
start-up (`python -c pass`) measured in the same run, so a noisy machine shows as noise in
both columns. Run: .venv/bin/python bench/help_latency.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["mirador_model_diagnostic.py", "mirador_performance_tester.py",
           "phase2_readiness_validator.py", "config_generator.py"]


def median_ms(argv: list[str], runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    base = median_ms([sys.executable, "-c", "pass"])
    print(f"{'python -c pass (baseline)':<34} {base:7.1f} ms")
    for script in SCRIPTS:
        if not (ROOT / script).exists():
            continue
        ms = median_ms([sys.executable, script, "--help"])
        verdict = "met" if ms < 250 else "MISSED"
        print(f"{script + ' --help':<34} {ms:7.1f} ms  ({ms / base:.1f}x baseline; "
              f"target < 250 ms: {verdict})")


if __name__ == "__main__":
    main()

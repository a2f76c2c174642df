"""Benchmark: the diagnostic on a 1,000-model fleet against a plain sequential script.

The simulator serves 1,000 built models with 20 ms added to every /api/show; a folder holds
1,000 Modelfiles (900 match their built model, 50 drifted, 50 never built; 50 server models
have no Modelfile). Both contenders run as their own processes so wall time and peak
memory (ru_maxrss of the child) are theirs alone:

  (a) mirador_model_diagnostic.py, all outputs written;
  (b) the usual script: the official `ollama` client, list() then show() per model,
      sequentially, comparing nothing.

Run: .venv/bin/python bench/diagnostic_scale.py [--models 1000] [--latency-ms 20]
Targets (issue 3): (a) <= 2.5 s, >= 8x faster than (b), peak memory <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEQUENTIAL = r"""
import sys, ollama
client = ollama.Client(host=sys.argv[1])
for m in client.list().models:
    client.show(m.model)
"""


def build_fleet(folder: Path, n: int) -> dict:
    """Write n Modelfiles and return the matching scenario."""
    models = [{"name": "llama3.2"}]
    for i in range(n):
        name = f"fleet_model_{i:04d}"
        temp = 0.1 + (i % 9) / 10
        text = (f"FROM llama3.2\nPARAMETER temperature {temp:g}\nPARAMETER num_ctx 4096\n"
                f"SYSTEM You are fleet model number {i}, a helpful assistant.\n")
        (folder / f"{name}.modelfile").write_text(text)
        if i % 20 == 1:
            continue  # never built: needs_build
        built_temp = temp + 0.05 if i % 20 == 2 else temp  # drifted
        models.append({"name": name, "from": "llama3.2",
                       "system": f"You are fleet model number {i}, a helpful assistant.",
                       "parameters": {"temperature": round(built_temp, 3), "num_ctx": 4096}})
    for i in range(n - len(models) + 1):
        models.append({"name": f"server_only_{i:03d}", "from": "llama3.2", "system": "x"})
    return {"models": models}


def timed(argv: list[str], env: dict) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB of the child, exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode not in (0, 1):
        sys.exit(f"{argv[1]} failed ({proc.returncode}): {proc.stderr[-800:]}")
    # NOTE: ru_maxrss of RUSAGE_CHILDREN is the largest child so far; run the big one first
    return wall, max(peak, before) / 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20)
    args = parser.parse_args()

    from mirador.simulator import Simulator, parse_scenario

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "modelfiles"
        folder.mkdir()
        scenario = build_fleet(folder, args.models)
        scenario["server"] = {"faults": {"show_latency_ms": args.latency_ms},
                              "host_check": False}
        sim = Simulator(parse_scenario(scenario, "bench")).start()
        try:
            env = {**os.environ, "OLLAMA_HOST": sim.url}
            env.pop("MIRADOR_RAISE_ERRORS", None)
            cfg = Path(tmp) / "mirador.yaml"
            cfg.write_text("critical_models: [fleet_model_0000]\n")
            out = Path(tmp) / "out"
            ours_argv = [sys.executable, "mirador_model_diagnostic.py", "--config", str(cfg),
                         "--modelfiles", str(folder), "--output-dir", str(out), "-q"]
            timed(ours_argv, env)  # warm the file cache and imports once
            ours, ours_mb, _ = timed(ours_argv, env)
            seq_file = Path(tmp) / "sequential.py"
            seq_file.write_text(SEQUENTIAL)
            seq, _, _ = timed([sys.executable, str(seq_file), sim.url], env)
        finally:
            sim.stop()
        summary = json.loads((out / "model_diagnostic.json").read_text())["summary"]

    ratio = seq / ours
    print(f"fleet: {args.models} Modelfiles, {len(scenario['models'])} server models, "
          f"{args.latency_ms:g} ms added per /api/show; statuses {summary}")
    print(f"(a) mirador diagnostic      {ours:7.2f} s   peak RSS {ours_mb:6.1f} MB")
    print(f"(b) sequential ollama-python {seq:7.2f} s")
    print(f"ratio (b)/(a)               {ratio:7.1f}x")
    verdict = [("(a) <= 2.5 s", ours <= 2.5), ("ratio >= 8x", ratio >= 8),
               ("peak <= 150 MB", ours_mb <= 150)]
    print("targets: " + ", ".join(f"{name}: {'met' if ok else 'MISSED'}"
                                  for name, ok in verdict))


if __name__ == "__main__":
    main()

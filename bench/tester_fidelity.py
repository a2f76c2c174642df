"""Benchmark: are the performance tester's numbers right, and what does measuring cost?

Part 1 (accuracy): the tester measures simulator models whose truth is known — the
configured decode rate and load time, and the moment the simulator actually wrote each
first token (its in-process timeline, same clock) — and prints per metric our figure, the
truth and the error. Targets: decode tokens/s within 1 %, TTFT within 5 ms, cold load
within 5 %.

Part 2 (throughput and overhead): the simulator runs in its own process with 32 parallel
slots; the tester drives 32 concurrent streams and its throughput is compared with what the
simulator can serve (32 slots / service time of one answer). Target: within 5 %. The
tester's own CPU time per request is printed too.

Run: .venv/bin/python bench/tester_fidelity.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ANSWER = " ".join(f"w{i}" for i in range(50))  # 50 tokens


def accuracy() -> None:
    from mirador import probes
    from mirador.ollama_client import OllamaClient
    from mirador.performance import Runner, RunSettings
    from mirador.simulator import Simulator, parse_scenario

    cases = {"m40": (40, 400, 1500), "m120": (120, 2000, 600), "m15": (15, 250, 3000)}
    scenario = {"server": {"max_loaded_models": 5, "host_check": False},
                "models": ["llama3.2"] + [{"name": n, "from": "llama3.2"} for n in cases],
                "behaviours": {n: {"decode_tps": d, "prefill_tps": p, "load_ms": load,
                                   "answers": [ANSWER]} for n, (d, p, load) in cases.items()}}
    print("Part 1: accuracy against ground truth")
    print(f"{'model':<6} {'metric':<18} {'ours':>10} {'truth':>10} {'error':>12}  target")
    with Simulator(parse_scenario(scenario, "bench")) as sim, OllamaClient(sim.url) as c:
        for name, (tps, _prefill, load_ms) in cases.items():
            sim.state.timeline.clear()
            runner = Runner(c, RunSettings(requests=5, warmup=1), probes.load_queries())
            res = runner.measure(name)
            chat = [s for s in res.samples if s.kind == "chat"]
            truth = [t for t in sim.state.timeline if t["model"] == name][: len(chat)]
            ours_tps = statistics.fmean(s.decode_tps for s in chat)
            err = (ours_tps - tps) / tps * 100
            print(f"{name:<6} {'decode tok/s':<18} {ours_tps:>10.2f} {tps:>10.2f} "
                  f"{err:>+11.2f}%  |err| <= 1 %: {'met' if abs(err) <= 1 else 'MISSED'}")
            ttft_err = [s.ttft_ms - (t["first_token"] - t["received"]) * 1000
                        for s, t in zip(chat, truth, strict=True)]
            worst = max(ttft_err, key=abs)
            ours_ttft = statistics.fmean(s.ttft_ms for s in chat[1:])
            true_ttft = statistics.fmean((t["first_token"] - t["received"]) * 1000
                                         for t in truth[1:])
            print(f"{name:<6} {'TTFT warm ms':<18} {ours_ttft:>10.2f} {true_ttft:>10.2f} "
                  f"{worst:>+10.2f}ms  worst |err| <= 5 ms: "
                  f"{'met' if abs(worst) <= 5 else 'MISSED'}")
            cold = chat[0]
            lerr = (cold.load_ms - load_ms) / load_ms * 100
            print(f"{name:<6} {'cold load ms':<18} {cold.load_ms:>10.1f} {load_ms:>10.1f} "
                  f"{lerr:>+11.2f}%  |err| <= 5 %: {'met' if abs(lerr) <= 5 else 'MISSED'}")


def throughput(streams: int = 32, per_stream: int = 4) -> None:
    from mirador import probes
    from mirador.ollama_client import OllamaClient
    from mirador.performance import Runner, RunSettings

    tps, prefill = 50.0, 5000.0
    scenario = f"""
server: {{num_parallel: {streams}, max_queue: 512, host_check: false, gpu_memory: 80GiB}}
models: [llama3.2]
behaviours:
  llama3.2: {{decode_tps: {tps}, prefill_tps: {prefill}, load_ms: 100,
             answers: ["{ANSWER}"]}}
"""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(scenario)
        proc = subprocess.Popen([sys.executable, "-m", "mirador.simulator", "--port", "0",
                                 "--scenario", str(path)], stdout=subprocess.PIPE, text=True,
                                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        url = proc.stdout.readline().strip()
        try:
            with OllamaClient(url, pool_size=streams + 4) as client:
                runner = Runner(client, RunSettings(requests=1, warmup=1),
                                probes.load_queries())
                runner.measure("llama3.2")  # load it
                queries = probes.load_queries().for_category(None)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                level = runner.sweep_level("llama3.2", queries, streams)
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    service_s = 50 / tps + 60 / prefill  # 50 tokens + about 60 prompt tokens
    capacity = streams / service_s
    got = level["throughput_rps"]
    err = (got - capacity) / capacity * 100
    print(f"\nPart 2: {streams} concurrent streams, {level['requests']} requests "
          f"(simulator in its own process, {streams} parallel slots)")
    print(f"throughput achieved     {got:8.2f} req/s")
    print(f"simulator can serve     {capacity:8.2f} req/s (32 slots / {service_s:.3f} s)")
    print(f"difference              {err:+8.2f}%   |diff| <= 5 %: "
          f"{'met' if abs(err) <= 5 else 'MISSED'}")
    print(f"latency p50 / p95       {level['latency_ms']['p50']:.0f} / "
          f"{level['latency_ms']['p95']:.0f} ms; errors {level['errors'] or 'none'}")
    print(f"tester CPU per request  {cpu / level['requests'] * 1000:8.2f} ms "
          f"({cpu:.2f} s CPU over {wall:.2f} s wall)")


if __name__ == "__main__":
    accuracy()
    throughput()

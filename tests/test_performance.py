"""mirador_performance_tester.py on the simulator: measurements against ground truth."""

from __future__ import annotations

import json
import re

import pytest
import requests
from click.testing import CliRunner

import mirador_performance_tester
from mirador import probes
from mirador.ollama_client import OllamaClient
from mirador.performance import Runner, RunSettings, knee, summarize

WORDS = " ".join(f"word{i}" for i in range(40))  # 40 tokens in the simulator


def run_tester(*args: str):
    return CliRunner().invoke(mirador_performance_tester.main, list(args),
                              catch_exceptions=False)


def measure(sim, name: str, **settings):
    settings.setdefault("timeout", 30)
    with OllamaClient(sim.url, timeout=settings["timeout"]) as client:
        runner = Runner(client, RunSettings(**settings), probes.load_queries())
        return runner.measure(name)


@pytest.mark.slow
def test_measurements_match_the_simulators_ground_truth(simulator):
    sim = simulator({"models": ["llama3.2"], "behaviours": {"llama3.2": {
        "load_ms": 1500, "prefill_tps": 400, "decode_tps": 40, "answers": [WORDS]}}})
    res = measure(sim, "llama3.2", requests=3, warmup=1)
    chat = [s for s in res.samples if s.kind == "chat"]
    cold, warm = chat[0], chat[1:]
    assert cold.cold and cold.warmup and not any(s.cold for s in warm)
    for s in chat:
        # our decode rate is exactly the server's counters, and ≈ the configured 40 tok/s
        assert s.eval_count == 40
        assert s.decode_tps == pytest.approx(s.eval_count / (s.eval_ms / 1000))
        assert s.decode_tps == pytest.approx(40, rel=0.01)
        assert s.prefill_tps == pytest.approx(400, rel=0.01)
    assert cold.load_ms == pytest.approx(1500, rel=0.05)
    prefill_ms = cold.prompt_eval_ms
    assert cold.ttft_ms == pytest.approx(1500 + prefill_ms + 25, abs=60)  # + one token
    summary = summarize(res)
    assert summary["load_ms"] == pytest.approx(1500, rel=0.05)  # reported once
    assert summary["latency_ms"]["max"] < 1500  # the load is not in the warm figures
    assert summary["latency_ms"]["mean"] == pytest.approx(1000 + 25, rel=0.1)  # 40 tok @ 40/s


def test_already_loaded_model_has_no_load_ms(simulator):
    sim = simulator({"models": ["llama3.2"], "behaviours": {"llama3.2": {
        "load_ms": 200, "decode_tps": 2000, "prefill_tps": 10000}}})
    requests.post(sim.url + "/api/generate", json={"model": "llama3.2", "stream": False},
                  timeout=5)
    assert summarize(measure(sim, "llama3.2", requests=2))["load_ms"] is None
    cold = summarize(measure(sim, "llama3.2", requests=2, cold=True))
    assert cold["load_ms"] == pytest.approx(200, rel=0.1)  # --cold unloads first


def test_failures_every_third_request_and_their_kinds(simulator):
    sim = simulator({"models": ["llama3.2"], "behaviours": {"llama3.2": {
        "load_ms": 5, "decode_tps": 5000, "prefill_tps": 50000,
        "faults": {"http_500_every": 3}}}})
    summary = summarize(measure(sim, "llama3.2", requests=8, warmup=1))
    # requests 1..10 on the server (warm-up, 8 measured, tools probe): 3, 6 and 9 fail
    assert summary["errors"] == {"http_500": 3}
    assert summary["requests"] == 9 and summary["successes"] == 6


def test_error_mid_stream_truncation_and_empty_answers(simulator):
    sim = simulator({"models": ["llama3.2", {"name": "short", "from": "llama3.2",
                                             "parameters": {"num_predict": 3}}],
                     "behaviours": {"llama3.2": {
                         "load_ms": 5, "decode_tps": 5000, "prefill_tps": 50000,
                         "answers": [WORDS],
                         "faults": {"error_mid_stream": {"every": 2, "after_tokens": 2}}},
                         "short": {"faults": {"error_mid_stream": {"every": 10**6}}}}})
    assert summarize(measure(sim, "llama3.2", requests=4, warmup=0))["errors"] == {
        "stream_error": 2}
    summary = summarize(measure(sim, "short", requests=2, warmup=0))
    assert summary["errors"].get("truncated") == 2 and summary["truncated"] == 2


def test_a_hang_is_a_timeout_not_a_crash(simulator):
    sim = simulator({"models": ["llama3.2"], "behaviours": {"llama3.2": {
        "load_ms": 5, "faults": {"hang": True}}}})
    summary = summarize(measure(sim, "llama3.2", requests=1, warmup=0, timeout=0.5))
    assert summary["errors"]["timeout"] >= 1 and summary["success_rate"] == 0


def test_embedding_models_are_never_asked_to_generate(simulator):
    sim = simulator({"models": ["nomic-embed-text"],
                     "behaviours": {"nomic-embed-text": {"load_ms": 5}}})
    summary = summarize(measure(sim, "nomic-embed-text", requests=3))
    assert summary["kind"] == "embedding" and summary["success_rate"] == 1.0
    assert summary["quality"]["mean"] == 1.0
    stats = requests.get(sim.url + "/__simulator/stats", timeout=5).json()["stats"]
    assert stats.get("embed nomic-embed-text:latest") == 4
    assert not any(k.startswith(("generate", "chat")) for k in stats)


def test_thinking_vision_and_tools_probes(simulator):
    fast = {"load_ms": 5, "decode_tps": 5000, "prefill_tps": 50000}
    sim = simulator({"models": ["qwen3", "llava"],
                     "behaviours": {"qwen3": fast, "llava": {**fast, "answers": [
                         "I see a red circle on a white background."]}}})
    qwen = measure(sim, "qwen3", requests=2)
    assert all(s.thinking_chars > 0 for s in qwen.samples if s.kind == "chat")
    tools = [s for s in qwen.samples if s.kind == "tools"]
    assert len(tools) == 1 and tools[0].quality == 1.0
    llava = measure(sim, "llava", requests=1)
    (vision,) = [s for s in llava.samples if s.kind == "vision"]
    assert vision.ok and vision.quality == 1.0


def test_sweep_finds_the_parallelism_knee(simulator):
    sim = simulator({"server": {"num_parallel": 2}, "models": ["llama3.2"],
                     "behaviours": {"llama3.2": {"load_ms": 5, "decode_tps": 100,
                                                 "prefill_tps": 100000,
                                                 "answers": ["a b c d e f g h i j"]}}})
    res = measure(sim, "llama3.2", requests=4, warmup=1, sweep=(1, 2, 4))
    assert [x["concurrency"] for x in res.sweep] == [1, 2, 4]
    assert res.sweep[1]["throughput_rps"] > 1.6 * res.sweep[0]["throughput_rps"]
    assert knee(res.sweep) == 2


def test_cli_writes_results_report_and_exit_codes(simulator, tmp_path):
    fast = {"load_ms": 5, "decode_tps": 5000, "prefill_tps": 50000}
    sim = simulator({"models": ["llama3.2", {"name": "refuser", "from": "llama3.2"}],
                     "behaviours": {"llama3.2": fast, "refuser": {
                         **fast, "answers": ["As an AI, I cannot help with that."]}}})
    out = tmp_path / "o"
    result = run_tester("--host", sim.url, "--config", "/dev/null", "--output-dir", str(out),
                    "--model", "llama3.2", "--requests", "2", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "mirador.performance/1" and doc["verdict"]["passed"]
    model = doc["models"][0]
    for key in ("name", "kind", "requests", "successes", "success_rate", "latency_ms",
                "ttft_ms", "decode_tokens_per_s", "prefill_tokens_per_s", "load_ms",
                "quality", "errors", "processor", "digest"):
        assert key in model
    assert doc["samples"] and json.loads((out / "performance_results.json").read_text())
    assert "Decode tok/s (server)" in (out / "performance_report.md").read_text()

    bad = run_tester("--host", sim.url, "--config", "/dev/null", "--output-dir", str(out),
                 "--model", "refuser", "--requests", "2", "-q")
    assert bad.exit_code == 1
    report = (out / "performance_report.md").read_text()
    assert "**FAIL**" in report
    assert re.search(r"not_contains: contains \[[^]]*'As an AI'", report)

    assert run_tester("--host", "127.0.0.1:9", "--config", "/dev/null", "--output-dir",
                  str(out), "--model", "x").exit_code == 3
    assert run_tester("--config", "/dev/null", "--output-dir", str(out),
                  "--host", sim.url).exit_code == 2  # no models chosen


def test_baseline_comparison_flags_regressions(simulator, tmp_path):
    sim = simulator({"models": ["llama3.2"], "behaviours": {"llama3.2": {
        "load_ms": 5, "decode_tps": 400, "prefill_tps": 50000, "answers": [WORDS]}}})
    common = ["--host", sim.url, "--config", "/dev/null", "--model", "llama3.2",
              "--requests", "2", "-q"]
    assert run_tester(*common, "--output-dir", str(tmp_path / "before")).exit_code == 0
    requests.post(sim.url + "/__simulator/faults", json={}, timeout=5)
    sim.state.scenario.behaviours["llama3.2"]["decode_tps"] = 100  # four times slower
    result = run_tester(*common, "--output-dir", str(tmp_path / "after"), "--baseline",
                    str(tmp_path / "before" / "performance_results.json"))
    doc = json.loads((tmp_path / "after" / "performance_results.json").read_text())
    (cmp,) = doc["baseline"]["models"]
    assert cmp["regression"] and cmp["latency_delta_pct"] > 100
    assert "latency +" in cmp["reasons"][0]
    assert result.exit_code == 0  # thresholds still met; the regression is reported
    assert run_tester(*common, "--output-dir", str(tmp_path / "x"), "--baseline",
                  str(tmp_path / "nope.json")).exit_code == 2


def test_judge_model_is_blended(simulator):
    fast = {"load_ms": 5, "decode_tps": 5000, "prefill_tps": 50000}
    sim = simulator({"models": ["llama3.2", {"name": "judge", "from": "llama3.2"}],
                     "behaviours": {"llama3.2": fast, "judge": {
                         **fast, "answers": ['{"score": 4, "reason": "vague"}']}}})
    res = measure(sim, "llama3.2", requests=1, warmup=0, judge_model="judge")
    (chat,) = [s for s in res.samples if s.kind == "chat"]
    detail = chat.quality_detail
    assert detail["judge"] == 0.4 and detail["judge_reason"] == "vague"
    assert chat.quality == pytest.approx(0.5 * detail["deterministic"] + 0.5 * 0.4)


def test_ctrl_c_writes_partial_results(simulator, tmp_path, monkeypatch):
    fast = {"load_ms": 5, "decode_tps": 5000, "prefill_tps": 50000}
    sim = simulator({"models": ["llama3.2", {"name": "second", "from": "llama3.2"}],
                     "behaviours": {"llama3.2": fast}})
    calls = {"n": 0}
    original = Runner.chat

    def interrupting(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Runner, "chat", interrupting)
    result = run_tester("--host", sim.url, "--config", "/dev/null", "--output-dir",
                    str(tmp_path), "--model", "llama3.2", "--model", "second",
                    "--requests", "3", "-q")
    assert result.exit_code == 130
    doc = json.loads((tmp_path / "performance_results.json").read_text())
    assert doc["partial"] is True and doc["not_measured"] == ["second:latest"]
    assert len(doc["samples"]) == 3
    assert "partial" in (tmp_path / "performance_report.md").read_text()

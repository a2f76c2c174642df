"""phase2_readiness_validator.py: the gate on the simulator, each check on its own trigger."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import config_generator
import mirador_performance_tester
import phase2_readiness_validator
from mirador import system
from mirador.simulator import Simulator, load_scenario

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "mirador.yaml")
FAST = {"load_ms": 5, "prefill_tps": 20000, "decode_tps": 5000}
CRITICAL = ["financial_planning_expert_v6", "decision_simplifier_v2", "enhanced_agent_fast_v6",
            "matthew_context_provider_v2", "louisville_expert_v3", "enhanced_agent_enforcer_v2"]


def server(all_built: bool, **behaviour) -> Simulator:
    sc = load_scenario(ROOT / "scenarios" / "phase1.yaml")
    sc.server.max_loaded_models = 10
    for name in ("llama3.2", "nomic-embed-text"):
        sc.behaviours[name] = FAST
    for name, extra in behaviour.items():
        sc.behaviours[name] = {**sc.behaviours.get(name, {}), **extra}
    if all_built:
        files = {"financial_planning_expert_v6": "financial_planning_expert_v6.modelfile",
                 "decision_simplifier_v2": "decision_simplifier_v2.Modelfile",
                 "enhanced_agent_fast_v6": "Modelfile.enhanced_agent_fast_v6"}
        for name, file in files.items():
            sc.models.append({"name": name, "modelfile": str(ROOT / "modelfiles" / file)})
    return Simulator(sc).start()


def invoke(command, *args):
    return CliRunner().invoke(command.main, [*args], catch_exceptions=False)


def gate(sim, out, *args):
    result = invoke(phase2_readiness_validator, "--host", sim.url, "--config", CONFIG,
                    "--output-dir", str(out), "-q", *args)
    doc = json.loads((Path(out) / "phase2_readiness.json").read_text())
    return result.exit_code, doc, {c["id"]: c for c in doc["checks"]}


def prepare(sim, out: Path) -> None:
    """The steps before the gate: diagnose, measure, generate the configurations."""
    import mirador_model_diagnostic

    for command, extra in ((mirador_model_diagnostic, ()),
                           (mirador_performance_tester, ("--critical", "--requests", "2")),
                           (config_generator, ())):
        invoke(command, "--host", sim.url, "--config", CONFIG, "--output-dir", str(out), "-q",
               *extra)


@pytest.fixture
def ready(tmp_path):
    sim = server(all_built=True)
    prepare(sim, tmp_path)
    yield sim, tmp_path
    sim.stop()


def test_phase1_is_not_ready_and_building_comes_first(tmp_path):
    sim = server(all_built=False)
    try:
        code, doc, checks = gate(sim, tmp_path)
    finally:
        sim.stop()
    assert code == 1 and doc["ready"] is False
    assert checks["critical_models_available"]["status"] == "fail"
    assert "3/6 available" in checks["critical_models_available"]["detail"]
    assert doc["actions"][0].endswith("build_critical_models.sh")
    assert checks["optimized_configs"]["status"] == "fail"
    assert "config_generator.py" in checks["optimized_configs"]["action"]
    report = (tmp_path / "phase2_readiness_report.md").read_text()
    assert report.startswith("# NOT READY")


def test_ready_after_build_performance_and_config(ready):
    sim, out = ready
    code, doc, checks = gate(sim, out, "--junit", str(out / "gate.xml"))
    failing = {k: v["detail"] for k, v in checks.items() if v["status"] == "fail"}
    assert code == 0 and doc["ready"], failing
    assert "from " in checks["success_rate"]["detail"] and "h old" in checks[
        "success_rate"]["detail"]  # the tester's fresh results were used
    assert (out / "phase2_readiness_report.md").read_text().startswith("# READY")
    suite = ET.parse(out / "gate.xml").getroot()
    assert suite.get("tests") == "13" and suite.get("failures") == "0"
    assert {c.get("name") for c in suite.iter("testcase")} == set(checks)


def test_one_critical_model_missing(ready):
    sim, out = ready
    sim.state.store.delete("decision_simplifier_v2")
    code, _, checks = gate(sim, out)
    c = checks["critical_models_available"]
    assert code == 1 and c["status"] == "fail"
    assert "decision_simplifier_v2 (needs_build)" in c["detail"]
    assert c["action"].endswith("build_critical_models.sh")


def test_stale_and_foreign_results_files(ready):
    sim, out = ready
    results = out / "performance_results.json"
    doc = json.loads(results.read_text())
    doc["generated_at"] = "2020-01-01T00:00:00+00:00"
    stale = out / "stale.json"
    stale.write_text(json.dumps(doc))
    code, _, checks = gate(sim, out, "--results", str(stale))
    assert code == 1
    for cid in ("success_rate", "avg_response_time", "quality_score"):
        assert checks[cid]["status"] == "fail" and "h old" in checks[cid]["detail"]
        assert "mirador_performance_tester.py --critical" in checks[cid]["action"]
    doc = json.loads(results.read_text())
    doc["models"][0]["digest"] = "0" * 64
    foreign = out / "foreign.json"
    foreign.write_text(json.dumps(doc))
    _, _, checks = gate(sim, out, "--results", str(foreign))
    assert "measured another build" in checks["success_rate"]["detail"]


def test_non_executable_backup_script(ready):
    sim, out = ready
    os.chmod(out / "backup_models.sh", 0o644)
    code, _, checks = gate(sim, out)
    c = checks["backup_scripts"]
    assert code == 1 and c["status"] == "fail"
    assert "backup_models.sh is not executable" in c["detail"]
    assert c["action"].startswith("chmod +x")


def test_disk_at_95_percent_warns_without_blocking(ready, monkeypatch):
    sim, out = ready
    monkeypatch.setattr(system, "disk_usage",
                        lambda p: system.Disk(str(p), 100 * 2**30, 95 * 2**30, 5 * 2**30))
    code, _, checks = gate(sim, out)
    assert checks["disk_space"]["status"] == "warn"
    assert checks["disk_space"]["detail"].startswith("95% used")
    assert code == 0  # recommended: warns, never blocks


def test_a_model_40_percent_on_cpu(tmp_path):
    sim = server(all_built=True, louisville_expert_v3={"gpu_fraction": 0.6})
    try:
        prepare(sim, tmp_path)
        _, _, checks = gate(sim, tmp_path)
    finally:
        sim.stop()
    c = checks["gpu"]
    assert c["status"] == "warn"
    assert "louisville_expert_v3:latest runs 40%/60% CPU/GPU" in c["detail"]
    assert "num_ctx" in c["action"]


def test_gpu_check_with_and_without_nvml(ready, monkeypatch):
    sim, out = ready

    def no_nvml():
        raise system.Unavailable("no NVIDIA driver or GPU here (NVML: not found)")

    monkeypatch.setattr(system, "gpus", no_nvml)
    sim.state.settings.gpu_memory = 200 * 2**30  # every model fits
    sim.state.loaded.clear()
    _, _, checks = gate(sim, out, "--results", str(out / "performance_results.json"))
    # the functional probes load the models again; the simulator reports them on GPU
    assert checks["gpu"]["status"] == "pass" and "NVML: not found" in checks["gpu"]["detail"]
    monkeypatch.setattr(system, "gpus", lambda: system.Gpus("550.1", [
        system.Gpu(0, "Fake A100", 80 * 2**30, 10 * 2**30, 35)]))
    _, _, checks = gate(sim, out)
    assert "Fake A100: 10.0/80.0 GiB used, 35% busy" in checks["gpu"]["detail"]


def test_unreachable_server_still_writes_the_report(ready):
    sim, out = ready
    code = invoke(phase2_readiness_validator, "--host", "127.0.0.1:9", "--config", CONFIG,
                  "--output-dir", str(out), "-q").exit_code
    doc = json.loads((out / "phase2_readiness.json").read_text())
    checks = {c["id"]: c for c in doc["checks"]}
    assert code == 3 and not doc["ready"]
    assert checks["ollama_service"]["status"] == "fail"
    assert checks["backup_scripts"]["status"] == "pass"  # checks without the server still run
    assert checks["optimized_configs"]["status"] == "pass"


def test_old_server_version_warns(tmp_path):
    sim = server(all_built=False)
    sim.state.settings.version = "0.5.4"
    try:
        _, _, checks = gate(sim, tmp_path)
    finally:
        sim.stop()
    assert checks["ollama_service"]["status"] == "warn"
    assert "older than 0.5.5" in checks["ollama_service"]["detail"]


def test_json_output_is_clean_for_the_gate_and_the_config_generator(ready):
    sim, out = ready
    gate_run = invoke(phase2_readiness_validator, "--host", sim.url, "--config", CONFIG,
                      "--output-dir", str(out), "--json")
    assert json.loads(gate_run.stdout)["schema"] == "mirador.readiness/1"
    plan_run = invoke(config_generator, "--host", sim.url, "--config", CONFIG,
                      "--output-dir", str(out), "--json")
    assert json.loads(plan_run.stdout)["schema"] == "mirador.config_plan/1"


def test_an_unwritable_output_folder_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = invoke(config_generator, "--offline", "--config", CONFIG, "--output-dir",
                    str(blocker / "out"))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {blocker / 'out'}") and line.endswith("Not a directory")

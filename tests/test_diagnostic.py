"""mirador_model_diagnostic.py end to end on the simulator, with the generated scripts run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mirador_model_diagnostic
from mirador.simulator import Simulator, load_scenario
from mirador.simulator.store import SimModel

ROOT = Path(__file__).resolve().parents[1]
FAST = {"load_ms": 5, "prefill_tps": 20000, "decode_tps": 5000}


def diagnose(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(mirador_model_diagnostic.main, list(args),
                                catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def phase1(**server) -> Simulator:
    sc = load_scenario(ROOT / "scenarios" / "phase1.yaml")
    for name in ("llama3.2", "nomic-embed-text"):
        sc.behaviours[name] = FAST
    for key, value in server.items():
        setattr(sc.server, key, value)
    return Simulator(sc).start()


@pytest.fixture
def sim():
    s = phase1()
    yield s
    s.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example fleet and config that tests may change."""
    shutil.copytree(ROOT / "modelfiles", tmp_path / "modelfiles")
    shutil.copy(ROOT / "mirador.yaml", tmp_path / "mirador.yaml")
    return tmp_path


def bash(script: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


@pytest.mark.slow
def test_phase1_end_to_end(sim, project, fake_ollama):
    out = project / "out"
    args = ["--host", sim.url, "--config", str(project / "mirador.yaml"), "--output-dir",
            str(out)]
    code, _, _ = diagnose(*args)
    assert code == 1
    data = json.loads((out / "model_diagnostic.json").read_text())
    crit = {m["name"]: m["status"] for m in data["models"] if m["critical"]}
    assert sorted(crit.values()) == ["available"] * 3 + ["needs_build"] * 3
    assert data["build_order"][:3] == ["financial_planning_expert_v6:latest",
                                       "decision_simplifier_v2:latest",
                                       "enhanced_agent_fast_v6:latest"]

    env = fake_ollama(sim.url)
    early = bash(out / "validate_critical_models.sh", env=env)  # before building: 3 missing
    assert early.returncode == 1
    assert len(re.findall(r"^FAIL .*not on the server$", early.stdout, re.M)) == 3
    build = out / "build_critical_models.sh"
    assert os.access(build, os.X_OK)
    dry = bash(build, "--dry-run", env=env)
    assert dry.returncode == 0 and "+ ollama create financial_planning_expert_v6" in dry.stderr
    assert len(sim.state.store.list()) == 7  # a dry run changes nothing
    first = bash(build, env=env)
    assert first.returncode == 0, first.stderr
    assert "3 done, 0 skipped, 0 failed" in first.stderr
    original = out / "first_build.sh"
    shutil.copy(build, original)

    code, _, _ = diagnose(*args)
    assert code == 0
    again = bash(build, env=env)  # regenerated: the plan is empty
    assert again.returncode == 0 and "0 done, 0 skipped, 0 failed" in again.stderr
    rerun = bash(original, env=env)  # the first script, run again, skips what it built
    assert rerun.returncode == 0 and "0 done, 3 skipped, 0 failed" in rerun.stderr
    validate = bash(out / "validate_critical_models.sh", env=env)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert len(re.findall(r"^PASS ", validate.stdout, re.M)) == 6


@pytest.mark.slow
def test_drifted_model_is_rebuilt_after_a_backup(sim, project, fake_ollama):
    mf = project / "modelfiles" / "louisville_expert_v3.modelfile"
    mf.write_text(mf.read_text().replace("PARAMETER temperature 0.4",
                                         "PARAMETER temperature 0.6"))
    out = project / "out"
    args = ["--host", sim.url, "--config", str(project / "mirador.yaml"), "--output-dir",
            str(out)]
    assert diagnose(*args)[0] == 1
    data = json.loads((out / "model_diagnostic.json").read_text())
    (lou,) = [m for m in data["models"] if m["name"] == "louisville_expert_v3:latest"]
    assert lou["status"] == "drifted"
    assert lou["drift"] == ["parameters"]
    assert lou["drift_detail"] == [{"field": "parameters", "expected": {"temperature": 0.6},
                                    "actual": {"temperature": 0.4}}]
    report = (out / "model_diagnostic_report.md").read_text()
    assert "- PARAMETER temperature 0.6\n+ PARAMETER temperature 0.4" in report

    old_digest = sim.state.store.get("louisville_expert_v3").digest
    result = bash(out / "build_critical_models.sh", env=fake_ollama(sim.url))
    assert result.returncode == 0, result.stderr
    backups = [m for m in sim.state.store.list() if "-backup-" in m.name]
    assert len(backups) == 1 and backups[0].name.startswith("louisville_expert_v3-backup-")
    assert backups[0].digest == old_digest  # the backup is the pre-rebuild model
    assert f"ollama cp {backups[0].name.removesuffix(':latest')}" in result.stderr or (
        "roll back louisville_expert_v3" in result.stderr)
    assert diagnose(*args)[0] == 0


def test_unreachable_server_still_writes_a_report(project):
    out = project / "out"
    code, _, err = diagnose("--host", "127.0.0.1:9", "--config",
                            str(project / "mirador.yaml"), "--output-dir", str(out), "-q")
    assert code == 3
    report = (out / "model_diagnostic_report.md").read_text()
    assert "Server unreachable" in report and "budget_coach_v1" in report
    data = json.loads((out / "model_diagnostic.json").read_text())
    assert data["reachable"] is False and "127.0.0.1:9" in data["server_error"]
    assert {m["status"] for m in data["models"]} == {"unknown", "invalid"}


def test_json_output_is_the_only_thing_on_stdout(sim, project):
    code, stdout, _ = diagnose("--host", sim.url, "--config", str(project / "mirador.yaml"),
                               "--output-dir", str(project / "o"), "--json")
    data = json.loads(stdout)
    assert code == 1 and data["schema"] == "mirador.diagnostic/1"
    assert set(data["summary"]) >= {"available", "needs_build", "missing", "ollama_only",
                                    "drifted", "invalid"}
    model = data["models"][0]
    for key in ("name", "status", "critical", "priority", "category", "modelfile", "base",
                "base_available", "drift", "error"):
        assert key in model


def test_invalid_modelfile_carries_ollamas_message_and_line(sim, project):
    diagnose("--host", sim.url, "--config", str(project / "mirador.yaml"), "--output-dir",
             str(project / "o"), "-q")
    data = json.loads((project / "o" / "model_diagnostic.json").read_text())
    (bad,) = [m for m in data["models"] if m["status"] == "invalid"]
    assert bad["name"] == "budget_coach_v1:latest" and bad["error_line"] == 4
    assert bad["error"].startswith("(line 4): command must be one of")


def test_missing_critical_and_ollama_only(sim, project):
    cfg = project / "mirador.yaml"
    cfg.write_text(cfg.read_text().replace(
        "  - name: financial_planning_expert_v6\n",
        "  - name: ghost_model\n  - name: phi_experiment\n"
        "  - name: financial_planning_expert_v6\n"))
    diagnose("--host", sim.url, "--config", str(cfg), "--output-dir", str(project / "o"))
    data = json.loads((project / "o" / "model_diagnostic.json").read_text())
    status = {m["name"]: m["status"] for m in data["models"]}
    assert status["ghost_model:latest"] == "missing"
    assert status["phi_experiment:latest"] == "ollama_only"
    (base,) = [m for m in data["models"] if m["name"] == "llama3.2:latest"]
    assert "financial_planning_expert_v6:latest" in base["base_of"]


def test_build_order_pulls_bases_and_builds_fleet_bases_first(simulator, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "child.modelfile").write_text("FROM parent\nSYSTEM child\n")
    (tmp_path / "m" / "parent.modelfile").write_text("FROM qwen3\nSYSTEM parent\n")
    (tmp_path / "m" / "x.modelfile").write_text("FROM y\n")
    (tmp_path / "m" / "y.modelfile").write_text("FROM x\n")
    cfg = tmp_path / "mirador.yaml"
    cfg.write_text("critical_models: [child]\n")
    sim = simulator({"models": []})
    diagnose("--host", sim.url, "--config", str(cfg), "--modelfiles", str(tmp_path / "m"),
             "--output-dir", str(tmp_path / "o"))
    data = json.loads((tmp_path / "o" / "model_diagnostic.json").read_text())
    assert data["build_order"] == ["qwen3:latest", "parent:latest", "child:latest"]
    cyc = {m["name"]: m for m in data["models"]}["x:latest"]
    assert cyc["status"] == "invalid" and cyc["error"] == (
        "FROM cycle: x:latest → y:latest → x:latest")
    script = (tmp_path / "o" / "build_critical_models.sh").read_text()
    assert "pull_base qwen3 critical" in script
    assert re.search(r"build_model parent .* critical chat .*\nbuild_model child .* parent\n",
                     script)


# --- messy fleets ------------------------------------------------------------------------------

def test_messy_folder(simulator, tmp_path, monkeypatch):
    m = tmp_path / "m"
    (m / "dup").mkdir(parents=True)
    (m / "notes.txt").write_text("not a modelfile")
    (m / "dup.modelfile").write_text("FROM llama3.2\n")
    (m / "dup" / "Modelfile").write_text("FROM llama3.2\nSYSTEM other\n")
    (m / "Case.modelfile").write_text("FROM llama3.2\n")
    (m / "Modelfile.case").write_text("FROM llama3.2\n")
    (m / "secret.modelfile").write_text("FROM llama3.2\n")
    os.symlink(m, m / "loop")
    real_read = Path.read_bytes

    def read_bytes(self):
        if self.name == "secret.modelfile":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    sim = simulator({"models": ["llama3.2"]})
    diagnose("--host", sim.url, "--config", "/dev/null", "--modelfiles", str(m),
             "--output-dir", str(tmp_path / "o"))
    data = json.loads((tmp_path / "o" / "model_diagnostic.json").read_text())
    by = {x["name"]: x for x in data["models"]}
    assert by["dup:latest"]["status"] == "invalid"
    assert "defined more than once" in by["dup:latest"]["error"]
    assert "dup.modelfile" in by["dup:latest"]["modelfile"]
    case = [x for x in data["models"] if x["name"].lower() == "case:latest"]
    assert len(case) == 1 and case[0]["status"] == "invalid"
    assert by["secret:latest"]["error"] == "cannot read: Permission denied"
    assert any("symlink loop" in p for p in data["fleet_problems"])
    assert any(p.endswith("notes.txt") for p in data["ignored_files"])


def test_empty_and_missing_folders(simulator, tmp_path):
    sim = simulator({"models": ["llama3.2"]})
    (tmp_path / "empty").mkdir()
    for folder in ("empty", "nowhere"):
        code, _, _ = diagnose("--host", sim.url, "--config", "/dev/null", "--modelfiles",
                              str(tmp_path / folder), "--output-dir", str(tmp_path / "o"))
        assert code == 0  # no critical models configured: nothing is missing
    data = json.loads((tmp_path / "o" / "model_diagnostic.json").read_text())
    assert data["fleet_problems"] == [f"{tmp_path / 'nowhere'}: no such folder"]


def test_config_errors_name_the_file_and_key(tmp_path):
    cfg = tmp_path / "mirador.yaml"
    cfg.write_text("critical_modles: []\n")
    code, _, err = diagnose("--config", str(cfg))
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"Error: {cfg}: unknown key 'critical_modles'")
    cfg.write_text("thresholds: {quality: 2}\n")
    assert "thresholds.quality: must be at most 1" in diagnose("--config", str(cfg))[2]
    cfg.write_text("critical_models: [\n")
    assert f"{cfg}:2: invalid YAML" in diagnose("--config", str(cfg))[2]


# --- hostile names -------------------------------------------------------------------------------

_hostile = st.text(alphabet=st.sampled_from(list("ab $`'\"\\;|&()<>*?!#\n")), min_size=1,
                   max_size=12)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(folder=_hostile, bad_file=_hostile)
def test_hostile_paths_and_names_stay_data(tmp_path_factory, folder, bad_file):
    base = tmp_path_factory.mktemp("hostile")
    canary = base / "PWNED"
    hostile = folder.replace("/", "_").replace("\0", "") + f"$(touch {canary})`touch {canary}`"
    m = base / hostile / "models"
    m.mkdir(parents=True)
    (m / "good_model.modelfile").write_text("FROM llama3.2\nSYSTEM hi\n")
    bad_name = bad_file.replace("/", "_").replace("\n", "_") + ".modelfile"
    (m / bad_name).write_text("FROM llama3.2\n")
    cfg = base / "mirador.yaml"
    cfg.write_text("critical_models: [good_model]\n")
    sc = load_scenario(None)
    sc.models = [{"name": "llama3.2"}]
    with Simulator(sc) as sim:
        # a server-side name no real server would accept, to test escaping on the way out
        sim.state.store.put(SimModel(name="evil|name\n`$(touch x)`:latest",
                                     weights_digest="sha256:" + "0" * 64))
        out = base / "o ut"
        diagnose("--host", sim.url, "--config", str(cfg), "--modelfiles", str(m),
                 "--output-dir", str(out), "-q")
        for script in ("build_critical_models.sh", "validate_critical_models.sh"):
            check = subprocess.run(["bash", "-n", str(out / script)], capture_output=True,
                                   text=True, check=False)
            assert check.returncode == 0, check.stderr
        recorder = base / "record"
        recorder.write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$0.log"\n'
                            'if [ "$1" = list ]; then echo "NAME ID SIZE MODIFIED"; fi\n'
                            'if [ "$1" = run ]; then echo ok; fi\n')
        recorder.chmod(0o755)
        env = {**os.environ, "OLLAMA_BIN": str(recorder), "OLLAMA_HOST": sim.url}
        run = bash(out / "build_critical_models.sh", env=env)
        assert run.returncode == 0, run.stderr
        assert not canary.exists()
        log = Path(str(recorder) + ".log").read_text()
        assert f"create good_model -f {m / 'good_model.modelfile'}" in log.replace(
            str(out) + "/", "") or "create good_model -f" in log
        report = (out / "model_diagnostic_report.md").read_text()
        assert_tables_intact(report)
        assert "evil\\|name" in report
        assert not canary.exists()


def assert_tables_intact(markdown: str) -> None:
    """Every row of every table has exactly as many cell separators as its header."""
    width = None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        cells = len(re.findall(r"(?<!\\)\|", line))
        if width is None:
            width = cells
        assert cells == width, line


def test_help_is_fast_to_import():
    """--help must not pay for rich, requests or yaml (imported where they are used)."""
    code = ("import sys, mirador_model_diagnostic; "
            "print(sorted(m for m in ('rich', 'requests', 'yaml') if m in sys.modules))")
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_verbose_lists_every_model_not_only_the_critical_ones(sim, project):
    args = ["--host", sim.url, "--config", str(project / "mirador.yaml"), "--output-dir",
            str(project / "o")]
    assert "phi_experiment" not in diagnose(*args)[2]
    assert "phi_experiment" in diagnose(*args, "-v")[2]

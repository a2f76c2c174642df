"""config_generator.py: the plan for the example fleet, generated files, and the migration
scripts run against the simulator — including a failure injected at every step."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import config_generator
from mirador import modelfile as mf
from mirador.config import load_config, parse_config
from mirador.configgen import analyse, generate, merge_parameters, plan_document, similarity
from mirador.fleet import load_fleet
from mirador.simulator import Simulator, load_scenario

ROOT = Path(__file__).resolve().parents[1]
CRITICAL = ["financial_planning_expert_v6", "decision_simplifier_v2", "enhanced_agent_fast_v6",
            "matthew_context_provider_v2", "louisville_expert_v3", "enhanced_agent_enforcer_v2"]
FAST = {"load_ms": 5, "prefill_tps": 20000, "decode_tps": 5000}


def offline_plan(tmp_path: Path, **kw):
    cfg = load_config(ROOT / "mirador.yaml")
    plan = analyse(cfg, load_fleet(ROOT / "modelfiles"))
    files = generate(cfg, plan, tmp_path / "optimized_modelfiles", **kw)
    return cfg, plan, files


def test_example_fleet_plan(tmp_path):
    _, plan, _ = offline_plan(tmp_path)
    doc = plan_document(plan)
    assert set(doc["kept"]) >= {f"{n}:latest" for n in CRITICAL}
    retired = {r["name"]: r for r in doc["retired"]}
    assert retired["financial_planning_expert_v4:latest"]["replaced_by"] == (
        "financial_planning_expert_v6:latest")
    assert retired["louisville_expert_v2:latest"]["reason"] == "older version"
    assert retired["fin_planner_v6:latest"]["reason"].startswith("exact duplicate")
    assert [d for d in doc["duplicates"] if d["kind"] == "exact"][0]["models"] == [
        "fin_planner_v6:latest", "financial_planning_expert_v6:latest"]
    chains = {c["chain"]: c for c in doc["chains"]}
    assert chains["budget_review"]["ok"] and not chains["legacy_triage"]["ok"]
    bad = chains["legacy_triage"]["steps"][0]
    assert bad == {"model": "decision_simplifier_v1:latest", "status": "retired",
                   "resolves_to": "decision_simplifier_v2:latest"}
    assert doc["invalid"][0]["name"] == "budget_coach_v1:latest"
    assert doc["migration_order"][:3] == ["matthew_context_provider_v2:latest",
                                          "louisville_expert_v3:latest",
                                          "enhanced_agent_enforcer_v2:latest"]
    order = doc["migration_order"]
    assert order.index("louisville_tourism_guide:latest") > order.index(
        "louisville_expert_v3:latest")


def test_generated_modelfiles_parse_and_follow_the_precedence(tmp_path):
    _, plan, files = offline_plan(tmp_path)
    for path, text in files.items():
        assert path.name.endswith(".modelfile")
        mf.check_create(mf.parse(text))  # the parser and create-checks accept every file
    by_name = {o["name"]: o for o in plan.optimized}
    enforcer = mf.definition(mf.parse(files[Path(by_name["enhanced_agent_enforcer_v2:latest"]
                                                  ["path"])]))
    assert enforcer.base == "llama3.2_balanced:latest"
    assert enforcer.parameters["temperature"] == 0  # its deliberate setting survives
    assert enforcer.parameters["num_ctx"] == 4096 and enforcer.parameters["top_k"] == 20
    fin = by_name["financial_planning_expert_v6:latest"]
    assert fin["profile"] == "quality"
    assert "top_p" not in fin["changes"]  # its own 0.9 beats the profile's 0.95
    assert fin["changes"]["top_k"] == [None, 40]  # the profile fills what it left unset
    embed = by_name["mirador_embed:latest"]
    assert embed["base"] == "nomic-embed-text:latest"  # embeddings keep their own base
    guide = by_name["louisville_tourism_guide:latest"]
    assert guide["base"] == "louisville_expert_v3:latest"
    base = mf.definition(mf.parse(files[tmp_path / "optimized_modelfiles" /
                                        "llama3.2_balanced.modelfile"]))
    assert base.base == "llama3.2:latest" and base.parameters["num_ctx"] == 8192


def test_parameter_precedence():
    profile = {"parameters": {"temperature": 0.5, "num_ctx": 4096, "top_k": 20},
               "enforce": ["num_ctx"]}
    own = {"temperature": 0.0, "num_ctx": 32768, "stop": ["x"]}
    assert merge_parameters(own, profile, {"top_k": 5}) == {
        "temperature": 0.0, "num_ctx": 4096, "top_k": 5, "stop": ["x"]}


def test_near_duplicates_pins_and_critical_warnings(tmp_path):
    m = tmp_path / "m"
    m.mkdir()
    (m / "helper_a.modelfile").write_text("FROM llama3.2\nSYSTEM You are a helpful "
                                          "assistant for budgets.\n")
    (m / "helper_b.modelfile").write_text("FROM llama3.2\nSYSTEM You are a helpful assistant "
                                          "for budgets!\n")
    (m / "tool_v1.modelfile").write_text("FROM llama3.2\nSYSTEM one\n")
    (m / "tool_v2.modelfile").write_text("FROM llama3.2\nSYSTEM two\n")
    (m / "tool_v3.modelfile").write_text("FROM llama3.2\nSYSTEM three\n")
    cfg = parse_config({"critical_models": ["tool_v1"],
                        "consolidation": {"pins": {"tool": "tool_v2"}}}, "cfg", tmp_path)
    plan = analyse(cfg, load_fleet(m))
    near = [d for d in plan.duplicates if d["kind"] == "near"]
    assert near and near[0]["models"] == ["helper_a:latest", "helper_b:latest"]
    assert near[0]["similarity"] >= 0.9 and near[0]["kept"] is None
    assert similarity("Hello, World", "hello world") == 1.0
    retired = {r["name"]: r["replaced_by"] for r in plan.retired}
    assert retired == {"tool_v3:latest": "tool_v2:latest"}  # pinned v2; critical v1 kept
    assert any("tool_v1:latest is critical" in w for w in plan.warnings)


def test_variants_per_profile_and_per_value(tmp_path):
    _, plan, files = offline_plan(tmp_path, variants=("louisville_expert_v3",))
    names = sorted(p.name for p in files if p.parent.name == "variants")
    assert names == ["louisville_expert_v3-balanced.modelfile",
                     "louisville_expert_v3-fast.modelfile",
                     "louisville_expert_v3-quality.modelfile"]
    _, _, files = offline_plan(tmp_path / "s", variants=("louisville_expert_v3",),
                               sweep=("temperature", ["0.2", "0.9"]))
    variant = [t for p, t in files.items() if p.name.endswith("temperature-0.9.modelfile")]
    assert mf.definition(mf.parse(variant[0])).parameters["temperature"] == 0.9


def test_cli_offline_outputs_and_exit_code(tmp_path):
    result = CliRunner().invoke(config_generator.main, [
        "--offline", "--config", str(ROOT / "mirador.yaml"), "--output-dir", str(tmp_path),
        "-q"], catch_exceptions=False)
    assert result.exit_code == 1  # a chain references a retired model
    for name in ("consolidation_report.md", "config_plan.json", "backup_models.sh",
                 "migrate_models.sh", "rollback_models.sh"):
        assert (tmp_path / name).exists(), name
    for script in ("backup_models.sh", "migrate_models.sh", "rollback_models.sh"):
        assert subprocess.run(["bash", "-n", str(tmp_path / script)]).returncode == 0
        assert (tmp_path / script).stat().st_mode & 0o111
    report = (tmp_path / "consolidation_report.md").read_text()
    assert "**16 models → 8**" in report and "pie showData" in report
    assert "❌ `legacy_triage`" in report


# --- migration on the simulator ---------------------------------------------------------------

def built_fleet() -> Simulator:
    """The phase-1 server with every critical model already built from its Modelfile."""
    sc = load_scenario(ROOT / "scenarios" / "phase1.yaml")
    sc.server.max_loaded_models = 10
    for name in ("llama3.2", "nomic-embed-text"):
        sc.behaviours[name] = FAST
    paths = {p.name.split(".")[0] if p.name != "Modelfile" else p.parent.name: p
             for p in (ROOT / "modelfiles").rglob("*") if p.is_file()}
    paths["enhanced_agent_fast_v6"] = ROOT / "modelfiles" / "Modelfile.enhanced_agent_fast_v6"
    built = {m["name"] for m in sc.models}
    for name in CRITICAL:
        if name not in built:
            sc.models.append({"name": name, "modelfile": str(paths[name])})
    return Simulator(sc).start()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan")
    sim = built_fleet()
    try:
        result = CliRunner().invoke(config_generator.main, [
            "--host", sim.url, "--config", str(ROOT / "mirador.yaml"), "--output-dir",
            str(out), "-q"], catch_exceptions=False)
        assert result.exit_code == 1, result.stderr
    finally:
        sim.stop()
    return out


def digests(sim) -> dict[str, str]:
    return {m.name: m.digest for m in sim.state.store.list() if "-backup-" not in m.name}


def bash(path: Path, *args, env):
    return subprocess.run(["bash", str(path), *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def fresh_copy(generated: Path, tmp_path: Path) -> Path:
    work = tmp_path / "plan"
    shutil.copytree(generated, work)
    return work


@pytest.mark.slow
def test_backup_migrate_rollback_end_to_end(generated, tmp_path, fake_ollama):
    sim = built_fleet()
    try:
        env = fake_ollama(sim.url)
        work = fresh_copy(generated, tmp_path)
        before = digests(sim)
        backup = bash(work / "backup_models.sh", env=env)
        assert backup.returncode == 0, backup.stderr
        (stamp,) = [p for p in (work / "backups").iterdir() if p.is_dir()]
        manifest = (stamp / "manifest.tsv").read_text()
        assert all(name in manifest for name in CRITICAL)
        assert (stamp / "louisville_expert_v3.modelfile").read_text().startswith(
            '# Modelfile generated by "ollama show"')
        dry = bash(work / "migrate_models.sh", "--dry-run", env=env)
        assert dry.returncode == 0 and "+ ollama create llama3.2_balanced" in dry.stderr
        assert digests(sim) == before and "(dry run)" in dry.stderr  # nothing changed
        migrate = bash(work / "migrate_models.sh", env=env)
        assert migrate.returncode == 0, migrate.stderr
        for name in CRITICAL:
            model = sim.state.store.get(name)
            assert model.parent_model == "llama3.2_balanced:latest", name
            assert model.digest != before[model.name]
        assert "0 done, 7 skipped" in bash(work / "migrate_models.sh", env=env).stderr
        validate = subprocess.run(["ollama", "run", "louisville_expert_v3", "hi"],
                                  capture_output=True, text=True, env=env, check=True)
        assert validate.stdout.strip()
        one = bash(work / "rollback_models.sh", "louisville_expert_v3", env=env)
        assert one.returncode == 0 and "1 done" in one.stderr
        assert digests(sim)["louisville_expert_v3:latest"] == before[
            "louisville_expert_v3:latest"]
        assert sim.state.store.get("decision_simplifier_v2").parent_model == (
            "llama3.2_balanced:latest")  # the others stay migrated
        rollback = bash(work / "rollback_models.sh", env=env)
        assert rollback.returncode == 0, rollback.stderr
        after = digests(sim)
        assert {n: after[n] for n in before} == before  # every digest of the manifest
    finally:
        sim.stop()


@pytest.mark.slow
@pytest.mark.parametrize("fault,k", [("create_fail_on", k) for k in range(1, 8)]
                         + [("broken_after_create_on", k) for k in (1, 2, 5, 7)])
def test_failure_at_step_k_restores_and_loses_nothing(generated, tmp_path, fake_ollama,
                                                      fault, k):
    sim = built_fleet()
    try:
        env = fake_ollama(sim.url)
        work = fresh_copy(generated, tmp_path)
        assert bash(work / "backup_models.sh", env=env).returncode == 0
        before = digests(sim)
        sim.state.faults[fault] = [sim.state.create_count + k]
        result = bash(work / "migrate_models.sh", env=env)
        assert result.returncode == 1
        order = json.loads((work / "config_plan.json").read_text())["migration_order"]
        critical_order = [n.removesuffix(":latest") for n in order
                          if n.removesuffix(":latest") in CRITICAL]
        now = digests(sim)
        failed_index = k - 2  # step 1 is the target base, step 2 the first model
        for i, name in enumerate(critical_order):
            full = f"{name}:latest"
            if i < failed_index:
                assert sim.state.store.get(name).parent_model == "llama3.2_balanced:latest"
            else:
                assert now[full] == before[full], f"{name} changed (k={k}, {fault})"
        if failed_index >= 0:
            stopped = critical_order[failed_index]
            assert f"resume with: migrate_models.sh --from {stopped}" in result.stderr
            assert f"restored {stopped}" in result.stderr
        untouched = {n: d for n, d in before.items()
                     if n.removesuffix(":latest") not in critical_order[:max(failed_index, 0)]}
        assert {n: now.get(n) for n in untouched} == untouched  # nothing lost
        if fault == "create_fail_on" and failed_index >= 0:
            sim.state.faults.clear()  # the cause is fixed: resume where it stopped
            resumed = bash(work / "migrate_models.sh", "--from", stopped, env=env)
            assert resumed.returncode == 0, resumed.stderr
            assert all(sim.state.store.get(n).parent_model == "llama3.2_balanced:latest"
                       for n in critical_order)
    finally:
        sim.stop()


def test_help_and_sweep_needs_variants():
    result = CliRunner().invoke(config_generator.main, ["--sweep-param", "temperature=1"])
    assert result.exit_code == 2 and "--sweep-param needs --variants" in result.stderr
    out = subprocess.run([sys.executable, "config_generator.py", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert "Exit codes" in out.stdout

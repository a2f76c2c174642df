"""Whole-report comparisons: the diagnostic and consolidation reports for the example fleet.

Volatile parts (ports, times, durations, absolute paths) are normalised first. After an
intended change to a report, regenerate with `UPDATE_GOLDEN=1 make test` and review the
diff like any other change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from click.testing import CliRunner

import config_generator
import mirador_model_diagnostic
from mirador.simulator import Simulator, load_scenario

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"


def normalise(text: str, tmp: Path) -> str:
    text = text.replace(str(tmp), "<OUT>").replace(str(ROOT), "<ROOT>")
    text = re.sub(r"http://127\.0\.0\.1:\d+", "http://<HOST>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", "<TIME>", text)
    return re.sub(r"in \d+\.\d\d s", "in <S> s", text)


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; UPDATE_GOLDEN=1 to accept"


def test_diagnostic_report_for_phase1(tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "phase1.yaml")
    with Simulator(sc) as sim:
        CliRunner().invoke(mirador_model_diagnostic.main, [
            "--host", sim.url, "--config", str(ROOT / "mirador.yaml"), "--output-dir",
            str(tmp_path), "-q"], catch_exceptions=False)
    report = (tmp_path / "model_diagnostic_report.md").read_text()
    check("model_diagnostic_report.md", normalise(report, tmp_path))


def test_consolidation_report_offline(tmp_path):
    CliRunner().invoke(config_generator.main, [
        "--offline", "--config", str(ROOT / "mirador.yaml"), "--output-dir", str(tmp_path),
        "-q"], catch_exceptions=False)
    report = (tmp_path / "consolidation_report.md").read_text()
    check("consolidation_report.md", normalise(report, tmp_path))

"""Shared fixtures: an isolated environment, simulators on loopback, the stand-in CLI."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mirador.simulator import Simulator, parse_scenario
from mirador.simulator.ollama_cli import write_wrapper

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's Ollama settings or writes into the checkout."""
    for var in ("OLLAMA_HOST", "OLLAMA_API_KEY", "OLLAMA_MODELS", "OLLAMA_BIN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MIRADOR_RAISE_ERRORS", "1")


@pytest.fixture
def simulator() -> Iterator[Callable[..., Simulator]]:
    """Start simulators from scenario dicts; all are stopped at the end of the test."""
    started: list[Simulator] = []

    def start(scenario: dict | None = None) -> Simulator:
        sim = Simulator(parse_scenario(scenario or {}, "test scenario", ROOT)).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def fake_ollama(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], dict]:
    """Put the stand-in `ollama` on PATH; returns env(url) for subprocesses."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_wrapper(bin_dir)
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    monkeypatch.setenv("PATH", path)

    def env(url: str) -> dict:
        return {**os.environ, "PATH": path, "OLLAMA_HOST": url}

    return env

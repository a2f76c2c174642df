"""An Ollama-compatible server for demos and tests: `Simulator(scenario).start()`.

    with Simulator.from_file("scenario.yaml") as sim:
        client = OllamaClient(sim.url)

Or from a shell: `python3 -m mirador.simulator --port 0 --scenario FILE` (prints the URL).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

__all__ = ["Simulator", "Scenario", "load_scenario", "parse_scenario"]

if TYPE_CHECKING:
    from mirador.simulator.scenario import Scenario


def __getattr__(name: str):
    # NOTE: lazy, so the stand-in `ollama` CLI (a module of this package) starts fast
    if name in ("Scenario", "load_scenario", "parse_scenario"):
        from mirador.simulator import scenario

        return getattr(scenario, name)
    raise AttributeError(name)


class Simulator:
    """A simulator running in a background thread of this process."""

    def __init__(self, scenario: Scenario | None = None, *, host: str = "127.0.0.1",
                 port: int = 0):
        from mirador.simulator.scenario import parse_scenario
        from mirador.simulator.server import SimulatorServer, SimulatorState

        self.state = SimulatorState(scenario or parse_scenario({}))
        self._server = SimulatorServer((host, port), self.state)
        self._thread: threading.Thread | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> Simulator:
        from mirador.simulator.scenario import load_scenario

        return cls(load_scenario(path), **kwargs)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="ollama-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

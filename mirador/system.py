"""The machine's health: disk, memory (psutil) and NVIDIA GPUs (NVML through pynvml).

Each function returns plain data or raises `Unavailable` with a reason a person can read
("no NVIDIA driver"), never a traceback: a machine without a GPU is a normal machine.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path


class Unavailable(Exception):
    """The thing cannot be measured here; the message says why."""


@dataclass
class Disk:
    path: str
    total: int
    used: int
    free: int

    @property
    def used_pct(self) -> float:
        return 100.0 * self.used / self.total if self.total else 0.0


@dataclass
class Memory:
    total: int
    available: int


@dataclass
class Gpu:
    index: int
    name: str
    memory_total: int
    memory_used: int
    utilization_pct: int | None


@dataclass
class Gpus:
    driver: str
    devices: list[Gpu] = field(default_factory=list)


def models_folder(host_is_local: bool, fallback: Path) -> tuple[Path, str]:
    """Where the models live: OLLAMA_MODELS, else Ollama's default folders when the server
    is on this machine, else `fallback` (the output folder)."""
    env = os.environ.get("OLLAMA_MODELS")
    if env and Path(env).exists():
        return Path(env), "OLLAMA_MODELS"
    if host_is_local:
        for candidate, label in ((Path.home() / ".ollama" / "models", "~/.ollama/models"),
                                 (Path("/usr/share/ollama/.ollama/models"),
                                  "the Linux service's models folder")):
            if candidate.exists():
                return candidate, label
    return fallback, "the output folder (the models folder is not on this machine)"


def disk_usage(path: Path) -> Disk:
    import psutil

    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        u = psutil.disk_usage(str(probe))
    except OSError as exc:
        raise Unavailable(f"cannot read disk usage of {probe}: {exc.strerror or exc}") from None
    return Disk(str(probe), u.total, u.used, u.free)


def memory() -> Memory:
    import psutil

    vm = psutil.virtual_memory()
    return Memory(vm.total, vm.available)


def gpus() -> Gpus:
    """NVIDIA GPUs through NVML; Unavailable when there is no library, driver or device."""
    try:
        import pynvml
    except ImportError:
        raise Unavailable("the pynvml module is not installed (pip install nvidia-ml-py)"
                          ) from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise Unavailable(f"no NVIDIA driver or GPU here (NVML: {exc})") from None
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        out = Gpus(driver.decode() if isinstance(driver, bytes) else str(driver))
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            try:
                util = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
            except pynvml.NVMLError:
                util = None
            out.devices.append(Gpu(i, name.decode() if isinstance(name, bytes) else str(name),
                                   int(mem.total), int(mem.used), util))
        return out
    except pynvml.NVMLError as exc:
        raise Unavailable(f"NVML error: {exc}") from None
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()

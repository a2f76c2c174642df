"""Read YAML that people write by hand: safe_load, errors that name the file, line and key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mirador.errors import ConfigError


def load_yaml(path: str | Path) -> Any:
    """`yaml.safe_load` of a file; every failure is a one-line ConfigError naming the file."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}{where}: invalid YAML ({problem})") from None


def expect_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def expect_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def check_keys(mapping: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Reject unknown keys, naming the first one and where it is (typos must surface)."""
    allowed_set = set(allowed)
    for key in mapping:
        if key not in allowed_set:
            known = ", ".join(sorted(allowed_set))
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {known})")


def expect_number(value: Any, where: str, *, minimum: float | None = None,
                  maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{where}: must be at most {maximum}, got {value}")
    return float(value)


def expect_str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(value: Any, where: str) -> int:
    """Bytes from an int or a string like `8 GiB` / `2.5GB`."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        for unit in sorted(_SIZE_UNITS, key=len, reverse=True):
            if text.endswith(unit):
                try:
                    return int(float(text[: -len(unit)]) * _SIZE_UNITS[unit])
                except ValueError:
                    break
    raise ConfigError(f"{where}: expected a size like 8GiB or a byte count, got {value!r}")

"""`mirador.yaml`: the fleet's configuration, validated with unknown keys rejected.

Precedence for every setting: command-line flag, then environment (OLLAMA_HOST for the
host), then `mirador.yaml`, then the defaults below. Relative paths in the file are taken
from the file's own folder; relative paths given as flags from the current folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirador.errors import ConfigError
from mirador.names import is_valid_name, name_key
from mirador.yamlfile import (
    check_keys,
    expect_list,
    expect_mapping,
    expect_number,
    expect_str,
    load_yaml,
)

DEFAULT_CONFIG_NAME = "mirador.yaml"
TOP_KEYS = {"modelfiles", "output_dir", "critical_models", "thresholds", "migration",
            "chains", "categories", "consolidation"}
CONSOLIDATION_KEYS = {"pins", "profiles", "category_profiles", "model_profiles", "overrides",
                      "similarity_threshold"}


@dataclass(frozen=True)
class CriticalModel:
    name: str
    category: str | None
    priority: int  # 1 is built first


@dataclass
class Thresholds:
    success_rate: float = 0.8  # at least
    avg_response_s: float = 30.0  # below
    quality: float = 0.6  # above
    disk_used_pct: float = 90.0  # below


@dataclass
class Migration:
    target_base: str = "llama3.2_balanced"
    base_from: str = "llama3.2"
    order: list[str] = field(default_factory=list)


@dataclass
class Consolidation:
    """The config generator's knobs (mirador.yaml `consolidation:`)."""

    pins: dict[str, str] = field(default_factory=dict)  # family stem → model to keep
    profiles: dict[str, dict] = field(default_factory=dict)
    category_profiles: dict[str, str] = field(default_factory=dict)
    model_profiles: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, dict] = field(default_factory=dict)
    similarity_threshold: float = 0.9


@dataclass
class Config:
    path: Path | None = None
    modelfiles: Path = Path("modelfiles")
    output_dir: Path = Path("diagnostic_output")
    critical_models: list[CriticalModel] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    migration: Migration = field(default_factory=Migration)
    chains: dict[str, list[str]] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)  # non-critical models
    consolidation: Consolidation = field(default_factory=lambda: Consolidation())

    def critical(self, name: str) -> CriticalModel | None:
        key = name_key(name)
        return next((c for c in self.critical_models if name_key(c.name) == key), None)

    def category(self, name: str) -> str | None:
        crit = self.critical(name)
        if crit is not None and crit.category:
            return crit.category
        key = name_key(name)
        return next((v for k, v in self.categories.items() if name_key(k) == key), None)


def _model_name(value: Any, where: str) -> str:
    text = expect_str(value, where)
    if not is_valid_name(text):
        raise ConfigError(f"{where}: {text!r} is not a valid Ollama model name")
    return text


def parse_config(data: Any, source: str, base_dir: Path) -> Config:
    top = expect_mapping(data, source)
    check_keys(top, TOP_KEYS, source)
    cfg = Config(path=Path(source) if source != "<defaults>" else None)
    if "modelfiles" in top:
        cfg.modelfiles = base_dir / expect_str(top["modelfiles"], f"{source}: modelfiles")
    else:
        cfg.modelfiles = base_dir / "modelfiles"
    if "output_dir" in top:
        cfg.output_dir = base_dir / expect_str(top["output_dir"], f"{source}: output_dir")
    else:
        cfg.output_dir = base_dir / "diagnostic_output"

    seen: dict[str, str] = {}
    for i, raw in enumerate(expect_list(top.get("critical_models"),
                                        f"{source}: critical_models")):
        where = f"{source}: critical_models[{i}]"
        entry = {"name": raw} if isinstance(raw, str) else expect_mapping(raw, where)
        check_keys(entry, {"name", "category"}, where)
        name = _model_name(entry.get("name"), f"{where}.name")
        if name_key(name) in seen:
            raise ConfigError(f"{where}: {name!r} is listed twice (also as "
                              f"{seen[name_key(name)]!r})")
        seen[name_key(name)] = name
        category = entry.get("category")
        if category is not None:
            category = expect_str(category, f"{where}.category")
        cfg.critical_models.append(CriticalModel(name, category, i + 1))

    th = expect_mapping(top.get("thresholds"), f"{source}: thresholds")
    check_keys(th, {"success_rate", "avg_response_s", "quality", "disk_used_pct"},
               f"{source}: thresholds")
    for key, lo, hi in (("success_rate", 0, 1), ("quality", 0, 1), ("disk_used_pct", 0, 100),
                        ("avg_response_s", 0, None)):
        if key in th:
            setattr(cfg.thresholds, key,
                    expect_number(th[key], f"{source}: thresholds.{key}", minimum=lo,
                                  maximum=hi))

    mig = expect_mapping(top.get("migration"), f"{source}: migration")
    check_keys(mig, {"target_base", "base_from", "order"}, f"{source}: migration")
    if "target_base" in mig:
        cfg.migration.target_base = _model_name(mig["target_base"],
                                                f"{source}: migration.target_base")
    if "base_from" in mig:
        cfg.migration.base_from = _model_name(mig["base_from"], f"{source}: migration.base_from")
    cfg.migration.order = [
        _model_name(n, f"{source}: migration.order[{i}]")
        for i, n in enumerate(expect_list(mig.get("order"), f"{source}: migration.order"))]

    for chain, steps in expect_mapping(top.get("chains"), f"{source}: chains").items():
        where = f"{source}: chains.{chain}"
        cfg.chains[str(chain)] = [_model_name(s, f"{where}[{i}]")
                                  for i, s in enumerate(expect_list(steps, where))]
    cfg.consolidation = _consolidation(top.get("consolidation"), source)
    for name, category in expect_mapping(top.get("categories"),
                                         f"{source}: categories").items():
        cfg.categories[_model_name(name, f"{source}: categories")] = expect_str(
            category, f"{source}: categories.{name}")
    return cfg


def _consolidation(raw: Any, source: str) -> Consolidation:
    where = f"{source}: consolidation"
    data = expect_mapping(raw, where)
    check_keys(data, CONSOLIDATION_KEYS, where)
    out = Consolidation()
    for stem, name in expect_mapping(data.get("pins"), f"{where}.pins").items():
        out.pins[str(stem)] = _model_name(name, f"{where}.pins.{stem}")
    for name, prof in expect_mapping(data.get("profiles"), f"{where}.profiles").items():
        p = expect_mapping(prof, f"{where}.profiles.{name}")
        check_keys(p, {"parameters", "enforce"}, f"{where}.profiles.{name}")
        out.profiles[str(name)] = {
            "parameters": dict(expect_mapping(p.get("parameters"),
                                              f"{where}.profiles.{name}.parameters")),
            "enforce": [str(x) for x in expect_list(p.get("enforce"),
                                                    f"{where}.profiles.{name}.enforce")]}
    for key in ("category_profiles", "model_profiles"):
        for name, prof in expect_mapping(data.get(key), f"{where}.{key}").items():
            getattr(out, key)[str(name)] = expect_str(prof, f"{where}.{key}.{name}")
    for name, params in expect_mapping(data.get("overrides"), f"{where}.overrides").items():
        out.overrides[_model_name(name, f"{where}.overrides")] = dict(
            expect_mapping(params, f"{where}.overrides.{name}"))
    if "similarity_threshold" in data:
        out.similarity_threshold = expect_number(data["similarity_threshold"],
                                                 f"{where}.similarity_threshold",
                                                 minimum=0, maximum=1)
    return out


def load_config(path: str | Path | None) -> Config:
    """Load `path`, or `./mirador.yaml` when it exists, or the defaults."""
    if path is None:
        default = Path(DEFAULT_CONFIG_NAME)
        if not default.is_file():
            return parse_config({}, "<defaults>", Path.cwd())
        path = default
    p = Path(path)
    return parse_config(load_yaml(p), str(p), p.resolve().parent)

"""Analyse and consolidate the fleet, and generate optimized Modelfiles for one base.

Families: a name ending in `_vN` / `-vN` is version N of the stem before it
(`louisville_expert_v3` → family `louisville_expert`, version 3); a name without a suffix is
version 0 of its own stem. The newest version of each family is kept unless
`consolidation.pins` names another; critical models are never retired.

Duplicates: two Modelfiles whose normal forms (mirador.modelfile.ModelDefinition) are equal
are exact duplicates and are merged. Near-duplicates have the same base and parameters and
SYSTEM prompts whose similarity is at least `consolidation.similarity_threshold` (0.9):
the similarity is difflib's ratio of the two prompts after lower-casing, dropping
punctuation and folding white space. They are reported for a person to decide.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mirador.categories import category_with_rule
from mirador.config import Config
from mirador.errors import ConfigError
from mirador.fleet import Fleet, FleetEntry
from mirador.modelfile import Command, check_create, convert_parameter, parse, render
from mirador.names import display_name, name_key

_VERSION = re.compile(r"^(?P<stem>.+?)[_-]v(?P<ver>\d+)$", re.IGNORECASE)
EMBEDDING_CATEGORIES = ("embedding",)


@dataclass
class FleetModel:
    name: str  # display name
    stem: str
    version: int
    has_modelfile: bool
    on_server: bool
    status: str | None  # the diagnosis' status; None offline
    critical: bool
    category: str | None
    category_rule: str
    base: str | None
    entry: FleetEntry | None = None
    digest: str | None = None
    kind: str = "chat"

    @property
    def definition(self):
        return self.entry.definition if self.entry else None


@dataclass
class Plan:
    target_base: str
    base_from: str
    offline: bool
    models: list[FleetModel] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    retired: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    chains: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)
    optimized: list[dict[str, Any]] = field(default_factory=list)
    migration_order: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    variants: list[dict[str, Any]] = field(default_factory=list)

    def model(self, name: str) -> FleetModel | None:
        key = name_key(name)
        return next((m for m in self.models if name_key(m.name) == key), None)

    def replacement(self, name: str) -> str | None:
        key = name_key(name)
        for r in self.retired:
            if name_key(r["name"]) == key:
                return r["replaced_by"]
        return None

    def families(self) -> dict[str, list[FleetModel]]:
        out: dict[str, list[FleetModel]] = {}
        for m in self.models:
            out.setdefault(m.stem.lower(), []).append(m)
        return {k: sorted(v, key=lambda m: m.version) for k, v in sorted(out.items())}

    def bases(self, after: bool) -> Counter:
        counts: Counter = Counter()
        if not after:
            for m in self.models:
                counts[m.base or "unknown"] += 1
            return counts
        for name in self.kept:
            opt = next((o for o in self.optimized if name_key(o["name"]) == name_key(name)),
                       None)
            kept = self.model(name)
            counts[(opt or {}).get("base") or (kept.base if kept else None) or "unknown"] += 1
        return counts


def family_of(name: str) -> tuple[str, int]:
    stem = display_name(name).rsplit(":", 1)[0]
    m = _VERSION.match(stem)
    return (m.group("stem"), int(m.group("ver"))) if m else (stem, 0)


def normalise_prompt(text: str | None) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", (text or "").lower()).split())


def similarity(a: str | None, b: str | None) -> float:
    return difflib.SequenceMatcher(None, normalise_prompt(a), normalise_prompt(b)).ratio()


def _fingerprint(m: FleetModel) -> str:
    d = m.definition.to_dict()
    return json.dumps(d, sort_keys=True, ensure_ascii=False)


def load_profiles(config: Config) -> tuple[dict[str, dict], dict[str, str]]:
    import yaml

    text = resources.files("mirador.data").joinpath("profiles.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    profiles: dict[str, dict[str, Any]] = {k: {"parameters": dict(v.get("parameters") or {}),
                    "enforce": list(v.get("enforce") or [])}
                for k, v in data["profiles"].items()}
    profiles.update(config.consolidation.profiles)
    categories = {**data["category_profiles"], **config.consolidation.category_profiles}
    for name, prof in profiles.items():
        for key, value in prof["parameters"].items():
            try:
                convert_parameter(key, _param_text(value))
            except ValueError as exc:
                raise ConfigError(f"profile {name!r}: parameter {key}: {exc}") from None
    return profiles, categories


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------------------------------
# Analysis and consolidation

def analyse(config: Config, fleet: Fleet, diagnosis=None) -> Plan:
    """Families, duplicates, chains and the consolidation plan (no files written)."""
    plan = Plan(target_base=display_name(config.migration.target_base),
                base_from=display_name(config.migration.base_from),
                offline=diagnosis is None)
    statuses = diagnosis.by_key() if diagnosis else {}
    seen: set[str] = set()
    for entries in fleet.by_key().values():
        e = entries[0]
        if not e.ok:
            plan.invalid.append({"name": e.display, "modelfile": str(e.path),
                                 "error": e.error})
            continue
        st = statuses.get(e.key)
        plan.models.append(_model_from_entry(config, e, st))
        seen.add(e.key)
    for key, st in statuses.items():
        if key in seen or st.status not in ("ollama_only",) or st.base_of:
            continue
        stem, version = family_of(st.name)
        category, rule = category_with_rule(config, st.name, None)
        plan.models.append(FleetModel(
            name=st.name, stem=stem, version=version, has_modelfile=False, on_server=True,
            status=st.status, critical=st.critical, category=category, category_rule=rule,
            base=None, digest=st.digest, kind=st.kind))
    plan.models.sort(key=lambda m: (m.stem.lower(), m.version, m.name))
    _consolidate(config, plan)
    _check_chains(config, plan)
    return plan


def _model_from_entry(config: Config, e: FleetEntry, st) -> FleetModel:
    stem, version = family_of(e.name)
    d = e.definition
    assert d is not None  # callers pass valid entries only
    category, rule = category_with_rule(config, e.name, d.system)
    kind = "embedding" if (category in EMBEDDING_CATEGORIES or (st and st.kind == "embedding")
                           ) else "chat"
    return FleetModel(
        name=e.display, stem=stem, version=version, has_modelfile=True,
        on_server=bool(st and st.status in ("available", "drifted")),
        status=st.status if st else None, critical=config.critical(e.name) is not None,
        category=category, category_rule=rule,
        base=d.base if not d.base_is_local else "local file", entry=e,
        digest=st.digest if st else None, kind=kind)


def _consolidate(config: Config, plan: Plan) -> None:
    retire: dict[str, dict[str, Any]] = {}
    pins = {k.lower(): display_name(v) for k, v in config.consolidation.pins.items()}
    for stem, members in plan.families().items():
        pinned = pins.get(stem)
        keep: FleetModel | None = next(
            (m for m in members if pinned and name_key(m.name) == name_key(pinned)), None)
        if pinned and keep is None:
            plan.warnings.append(f"pin {stem!r} → {pinned} names no model of that family")
        if keep is None:
            with_file = [m for m in members if m.has_modelfile]
            keep = (with_file or members)[-1]
        for m in members:
            if m is keep:
                continue
            if m.critical:
                plan.warnings.append(
                    f"{m.name} is critical but not the newest of its family ({keep.name}); "
                    f"it is kept — pin it in mirador.yaml or drop it from the critical list")
                continue
            reason = "pinned version kept instead" if pinned else "older version"
            retire[name_key(m.name)] = {"name": m.name, "replaced_by": keep.name,
                                        "reason": reason}

    family_size = {stem: len(members) for stem, members in plan.families().items()}
    kept = [m for m in plan.models if name_key(m.name) not in retire]
    groups: dict[str, list[FleetModel]] = {}
    for m in kept:
        if m.definition is not None:
            groups.setdefault(_fingerprint(m), []).append(m)
    for members in groups.values():
        if len(members) < 2:
            continue
        winner = sorted(members, key=lambda m: (not m.critical, -family_size[m.stem.lower()],
                                                m.name))[0]
        losers = [m for m in members if m is not winner]
        plan.duplicates.append({"kind": "exact", "models": [m.name for m in members],
                                "kept": winner.name, "similarity": 1.0})
        for m in losers:
            if m.critical:
                plan.warnings.append(f"{m.name} duplicates {winner.name} but is critical; "
                                     "both are kept")
                continue
            retire[name_key(m.name)] = {"name": m.name, "replaced_by": winner.name,
                                        "reason": f"exact duplicate of {winner.name}"}
    kept = [m for m in plan.models if name_key(m.name) not in retire]
    threshold = config.consolidation.similarity_threshold
    defs = [m for m in kept if m.definition is not None]
    for i, a in enumerate(defs):
        for b in defs[i + 1:]:
            da, db = a.definition, b.definition
            if da.base != db.base or da.parameters != db.parameters or da.system == db.system:
                continue
            ratio = similarity(da.system, db.system)
            if ratio >= threshold:
                plan.duplicates.append({"kind": "near", "models": [a.name, b.name],
                                        "kept": None, "similarity": round(ratio, 3)})
    # a replacement that is itself retired points on to the final kept model
    for r in retire.values():
        seen = {name_key(r["name"])}
        while name_key(r["replaced_by"]) in retire and name_key(r["replaced_by"]) not in seen:
            seen.add(name_key(r["replaced_by"]))
            r["replaced_by"] = retire[name_key(r["replaced_by"])]["replaced_by"]
    plan.retired = sorted(retire.values(), key=lambda r: r["name"])
    plan.kept = [m.name for m in plan.models if name_key(m.name) not in retire]


def _check_chains(config: Config, plan: Plan) -> None:
    kept = {name_key(k) for k in plan.kept}
    for chain, steps in config.chains.items():
        rows, ok = [], True
        for step in steps:
            m = plan.model(step)
            if m is None:
                rows.append({"model": display_name(step), "status": "unknown",
                             "resolves_to": None})
                ok = False
            elif name_key(m.name) in kept:
                rows.append({"model": m.name, "status": "kept", "resolves_to": m.name})
            else:
                rows.append({"model": m.name, "status": "retired",
                             "resolves_to": plan.replacement(m.name)})
                ok = False
        plan.chains.append({"chain": chain, "steps": rows, "ok": ok})


# ---------------------------------------------------------------------------------------
# Optimized Modelfiles

def profile_for(config: Config, m: FleetModel, categories: dict[str, str]) -> str:
    for name, prof in config.consolidation.model_profiles.items():
        if name_key(name) == name_key(m.name):
            return prof
    return categories.get(m.category or "", "balanced")


def merge_parameters(own: dict[str, Any], profile: dict[str, Any],
                     overrides: dict[str, Any]) -> dict[str, Any]:
    """The documented precedence: overrides > profile.enforce > own > profile."""
    out = dict(profile["parameters"])
    out.update({k: v for k, v in own.items() if k not in profile["enforce"]})
    out.update(overrides)
    return out


def _rel_source(value: str, original_dir: Path, out_dir: Path) -> str:
    """A FROM/ADAPTER path, re-anchored from the original Modelfile to the new folder."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (original_dir / path).resolve()
    try:
        return os.path.relpath(path, out_dir.resolve())
    except ValueError:
        return str(path)


def optimized_commands(config: Config, plan: Plan, m: FleetModel,
                       profile: dict[str, Any], out_dir: Path,
                       extra_params: dict[str, Any] | None = None,
                       ) -> tuple[list[Command], str, dict[str, list[Any]]]:
    """The commands of an optimized Modelfile, its base, and the parameter changes."""
    d, entry = m.definition, m.entry
    assert d is not None and entry is not None and entry.commands is not None
    original_dir = entry.path.parent
    from_cmds = [c for c in entry.commands if c.name == "model"]
    if d.base_is_local:
        base = "local file"
        froms = [Command("model", _rel_source(c.args, original_dir, out_dir))
                 for c in from_cmds]
    elif m.kind == "embedding":
        base = d.base
        froms = [Command("model", d.base)]
    else:
        parent = plan.model(d.base) if d.base else None
        if parent is not None and parent.has_modelfile:
            target = plan.replacement(parent.name) or parent.name
            base = display_name(target)
            froms = [Command("model", target.removesuffix(":latest"))]
        else:
            base = plan.target_base
            froms = [Command("model", plan.target_base.removesuffix(":latest"))]
    overrides = next((v for k, v in config.consolidation.overrides.items()
                      if name_key(k) == name_key(m.name)), {})
    params = merge_parameters(d.parameters, profile, {**overrides, **(extra_params or {})})
    if m.kind == "embedding":
        params = dict(d.parameters)  # sampling profiles mean nothing to an embedding model
    changes = {k: [d.parameters.get(k), params.get(k)]
               for k in sorted(set(d.parameters) | set(params))
               if d.parameters.get(k) != params.get(k)}
    cmds = list(froms)
    for c in entry.commands:
        if c.name == "adapter":
            cmds.append(Command("adapter", _rel_source(c.args, original_dir, out_dir)))
    if d.template is not None:
        cmds.append(Command("template", d.template))
    if d.system is not None:
        cmds.append(Command("system", d.system))
    for key, value in params.items():
        for v in value if isinstance(value, list) else [value]:
            cmds.append(Command(key, _param_text(v)))
    cmds += [Command("license", text) for text in d.license]
    cmds += [Command("message", f"{msg['role']}: {msg['content']}") for msg in d.messages]
    return cmds, base, changes


def write_modelfile(path: Path, header: str, commands: list[Command]) -> str:
    text = "".join(f"# {line}\n" for line in header.splitlines()) + render(commands)
    check_create(parse(text))  # every generated file must pass our own parser and checks
    return text


def generate(config: Config, plan: Plan, out_dir: Path, *, variants: tuple[str, ...] = (),
             sweep: tuple[str, list[str]] | None = None) -> dict[Path, str]:
    """Optimized Modelfiles for every kept model with a Modelfile; returns path → text."""
    profiles, categories = load_profiles(config)
    files: dict[Path, str] = {}
    base_cmds = [Command("model", plan.base_from.removesuffix(":latest"))] + [
        Command(k, _param_text(v)) for k, v in profiles["balanced"]["parameters"].items()]
    base_path = out_dir / f"{plan.target_base.removesuffix(':latest')}.modelfile"
    files[base_path] = write_modelfile(
        base_path, f"The migration's target base, built first: FROM {plan.base_from} with "
                   "the balanced profile.\nGenerated by config_generator.py.", base_cmds)
    plan.optimized = []
    for name in plan.kept:
        m = plan.model(name)
        if m is None or m.entry is None or m.definition is None:
            continue
        prof_name = profile_for(config, m, categories)
        if prof_name not in profiles:
            raise ConfigError(f"model {m.name}: unknown profile {prof_name!r} (profiles: "
                              f"{', '.join(sorted(profiles))})")
        cmds, base, changes = optimized_commands(config, plan, m, profiles[prof_name], out_dir)
        stem = m.name.removesuffix(":latest")
        path = out_dir / f"{stem}.modelfile"
        files[path] = write_modelfile(
            path, f"Optimized {m.name} (from {m.entry.path}).\nProfile: {prof_name}; "
                  "generated by config_generator.py — edit the source, not this file.", cmds)
        plan.optimized.append({"name": m.name, "path": str(path), "base": base,
                               "profile": prof_name, "changes": changes,
                               "critical": m.critical, "kind": m.kind,
                               "source": str(m.entry.path)})
    plan.variants = []
    for vname in variants:
        m = plan.model(vname)
        if m is None or m.entry is None or m.definition is None:
            raise ConfigError(f"--variants {vname}: no such model with a Modelfile in the fleet")
        stem = m.name.removesuffix(":latest")
        combos: list[tuple[str, dict[str, Any], dict[str, Any] | None]]
        if sweep:
            key, values = sweep
            combos = [(f"{key}-{v}", profiles[profile_for(config, m, categories)],
                       {key: convert_parameter(key, v)}) for v in values]
        else:
            combos = [(p, profiles[p], None) for p in profiles]
        for label, prof, extra in combos:
            cmds, _, _ = optimized_commands(config, plan, m, prof, out_dir / "variants",
                                            extra_params=extra)
            path = out_dir / "variants" / f"{stem}-{label}.modelfile"
            files[path] = write_modelfile(path, f"Variant {label} of {m.name} for experiments"
                                                ".", cmds)
            plan.variants.append({"model": m.name, "variant": f"{stem}-{label}",
                                  "path": str(path)})
    plan.migration_order = migration_order(config, plan)
    return files


def migration_order(config: Config, plan: Plan) -> list[str]:
    """mirador.yaml's migration.order first, then critical by priority, then the rest;
    a model built FROM another fleet model always after it."""
    opt = {name_key(o["name"]): o for o in plan.optimized}
    wanted = [display_name(n) for n in config.migration.order if name_key(n) in opt]
    crit = sorted((c for c in config.critical_models if name_key(c.name) in opt),
                  key=lambda c: c.priority)
    wanted += [display_name(c.name) for c in crit]
    wanted += sorted(o["name"] for o in plan.optimized)
    order: list[str] = []
    for name in dict.fromkeys(wanted):
        base = opt[name_key(name)]["base"]
        if base and name_key(base) in opt and base not in order:
            order.append(display_name(base))
        if name not in order:
            order.append(name)
    return list(dict.fromkeys(order))


def plan_document(plan: Plan) -> dict[str, Any]:
    fams = plan.families()
    kept = {name_key(k) for k in plan.kept}
    return {
        "schema": "mirador.config_plan/1", "target_base": plan.target_base,
        "base_from": plan.base_from, "offline": plan.offline,
        "fleet_size": {"before": len(plan.models), "after": len(plan.kept)},
        "families": [{"family": stem, "versions": [m.name for m in members],
                      "kept": [m.name for m in members if name_key(m.name) in kept],
                      "retired": [m.name for m in members if name_key(m.name) not in kept]}
                     for stem, members in fams.items()],
        "models": [{"name": m.name, "family": m.stem, "version": m.version,
                    "has_modelfile": m.has_modelfile, "on_server": m.on_server,
                    "status": m.status, "critical": m.critical, "category": m.category,
                    "category_rule": m.category_rule, "base": m.base, "kind": m.kind,
                    "kept": name_key(m.name) in kept} for m in plan.models],
        "kept": plan.kept, "retired": plan.retired, "duplicates": plan.duplicates,
        "chains": plan.chains, "invalid": plan.invalid,
        "bases": {"before": dict(plan.bases(False)), "after": dict(plan.bases(True))},
        "optimized": plan.optimized, "variants": plan.variants,
        "migration_order": plan.migration_order, "warnings": plan.warnings,
    }

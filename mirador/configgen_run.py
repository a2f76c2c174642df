"""Run the config generator: analyse, generate, and write every output atomically."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirador.cli import Settings
from mirador.configgen import analyse, generate, plan_document
from mirador.diagnosis import diagnose
from mirador.fleet import load_fleet
from mirador.names import name_key
from mirador.outputs import write_atomic
from mirador.render import consolidation_report, shell

REPORT = "consolidation_report.md"
PLAN = "config_plan.json"
OPTIMIZED = "optimized_modelfiles"
BACKUP, MIGRATE, ROLLBACK = "backup_models.sh", "migrate_models.sh", "rollback_models.sh"


@dataclass
class ConfigRun:
    document: dict[str, Any]
    files: dict[str, Path]
    reachable: bool


def _safe_file(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".modelfile"


def run_configgen(settings: Settings, *, offline: bool, target_base: str | None,
                  variants: tuple[str, ...], sweep: tuple[str, list[str]] | None,
                  ) -> ConfigRun:
    config = settings.config
    if target_base:
        config.migration.target_base = target_base
    fleet = load_fleet(settings.modelfiles)
    diag = None
    reachable = True
    if not offline:
        with settings.client() as client:
            diag = diagnose(config, fleet, client)
        reachable = diag.reachable
        if not reachable:
            diag = None  # analyse the folder alone, and say so
    plan = analyse(config, fleet, diag)
    out = settings.output_dir
    opt_dir = out / OPTIMIZED
    modelfiles = generate(config, plan, opt_dir, variants=variants, sweep=sweep)
    doc = plan_document(plan)
    doc["server_reachable"] = reachable if not offline else None

    host = settings.host
    crit = {name_key(c.name) for c in config.critical_models}
    by_name = {name_key(o["name"]): o for o in plan.optimized}
    steps = []
    for name in plan.migration_order:
        o = by_name[name_key(name)]
        text = modelfiles[Path(o["path"])]
        steps.append(shell.MigrateStep(
            name=name.removesuffix(":latest"), modelfile=Path(o["path"]),
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            scope="critical" if name_key(name) in crit else "all", kind=o["kind"],
            file_name=_safe_file(name.removesuffix(":latest"))))
    touched = [shell.BackupStep(s.name, s.file_name) for s in steps]
    base_path = opt_dir / f"{plan.target_base.removesuffix(':latest')}.modelfile"
    base_text = modelfiles[base_path]
    files: dict[str, Path] = {}
    for path, text in modelfiles.items():
        write_atomic(path, text)
    files["optimized"] = opt_dir
    scripts = {"backup": str(out / BACKUP), "migrate": str(out / MIGRATE),
               "rollback": str(out / ROLLBACK)}
    files["backup_script"] = write_atomic(out / BACKUP, shell.backup_script(
        host=host, steps=touched), mode=0o755)
    files["migrate_script"] = write_atomic(out / MIGRATE, shell.migrate_script(
        host=host, script_dir=out, target_base=plan.target_base.removesuffix(":latest"),
        base_file=base_path, base_sha=hashlib.sha256(base_text.encode()).hexdigest(),
        base_from=plan.base_from.removesuffix(":latest"), steps=steps), mode=0o755)
    files["rollback_script"] = write_atomic(out / ROLLBACK, shell.rollback_script(host=host),
                                            mode=0o755)
    files["report"] = write_atomic(out / REPORT, consolidation_report.render(doc,
                                                                             scripts=scripts))
    files["plan"] = write_atomic(out / PLAN, json.dumps(doc, indent=2, ensure_ascii=False)
                                 + "\n")
    return ConfigRun(doc, files, reachable)

"""Read a folder of Modelfiles into model definitions, the way a team actually keeps them.

Layouts (the model name comes from the path): `NAME.modelfile`, `NAME.Modelfile`,
`Modelfile.NAME`, `NAME/Modelfile` (suffix and prefix matched case-insensitively). Files of
other names are ignored and counted. Symlinked folders are followed once (loops are cut),
unreadable files are reported, and two files that define the same model name (as Ollama
compares names: `:latest` added, case ignored) are both reported, never merged.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from mirador.modelfile import Command, ModelDefinition, ModelfileError, definition, parse
from mirador.names import display_name, is_valid_name, name_key

MAX_MODELFILE_BYTES = 1 << 20  # a Modelfile is text; a 1 MiB one is a mistake


@dataclass
class FleetEntry:
    """One Modelfile found in the folder, parsed and create-checked like Ollama."""

    name: str  # the model name the file defines, as written in the path
    path: Path
    layout: str
    commands: list[Command] | None = None
    definition: ModelDefinition | None = None
    error: str | None = None
    error_line: int | None = None
    warnings: list[str] = field(default_factory=list)
    sha256: str | None = None  # of the file's bytes, as read

    @property
    def key(self) -> str:
        return name_key(self.name)

    @property
    def display(self) -> str:
        return display_name(self.name)

    @property
    def ok(self) -> bool:
        return self.error is None and self.definition is not None

    @property
    def named_base(self) -> str | None:
        """The FROM model's name when the Modelfile is valid and FROM names a model."""
        d = self.definition
        if self.error is None and d is not None and not d.base_is_local and d.base:
            return d.base
        return None


@dataclass
class Fleet:
    folder: Path
    entries: list[FleetEntry] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # folder-level notes (loops, access)

    def by_key(self) -> dict[str, list[FleetEntry]]:
        out: dict[str, list[FleetEntry]] = {}
        for e in self.entries:
            out.setdefault(e.key, []).append(e)
        return out


def model_name_for(path: Path, root: Path) -> tuple[str, str] | None:
    """(model name, layout) for a file path, or None when it is not a Modelfile."""
    name = path.name
    lower = name.lower()
    if lower.endswith(".modelfile") and len(name) > len(".modelfile"):
        return name[: -len(".modelfile")], f"NAME{name[-len('.modelfile'):]}"
    if lower.startswith("modelfile.") and len(name) > len("modelfile."):
        return name[len("modelfile."):], f"{name[:len('modelfile')]}.NAME"
    if lower == "modelfile" and path.parent != root:
        return path.parent.name, f"NAME/{name}"
    return None


def _walk(root: Path, problems: list[str]) -> list[Path]:
    files: list[Path] = []
    seen: set[str] = set()

    def visit(folder: Path) -> None:
        try:
            real = os.path.realpath(folder)
        except OSError:
            return
        if real in seen:
            problems.append(f"{folder}: symlink loop or repeated folder, skipped")
            return
        seen.add(real)
        try:
            children = sorted(os.scandir(folder), key=lambda d: d.name)
        except OSError as exc:
            problems.append(f"{folder}: cannot list ({exc.strerror or exc})")
            return
        for child in children:
            path = Path(child.path)
            try:
                if child.is_dir(follow_symlinks=True):
                    if not child.name.startswith("."):
                        visit(path)
                elif child.is_file(follow_symlinks=True):
                    files.append(path)
                elif child.is_symlink():
                    problems.append(f"{path}: broken symlink, skipped")
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror or exc}")

    visit(root)
    return files


def load_entry(path: Path, name: str, layout: str) -> FleetEntry:
    entry = FleetEntry(name=name, path=path, layout=layout)
    if not is_valid_name(name):
        entry.error = (f"the file name gives {name!r}, which is not a valid Ollama model "
                       "name (letters, digits, _ - . only)")
        return entry
    try:
        if path.stat().st_size > MAX_MODELFILE_BYTES:
            entry.error = f"larger than {MAX_MODELFILE_BYTES} bytes: not a Modelfile"
            return entry
        data = path.read_bytes()
    except OSError as exc:
        entry.error = f"cannot read: {exc.strerror or exc}"
        return entry
    entry.sha256 = hashlib.sha256(data).hexdigest()
    try:
        entry.commands = parse(data)
        entry.definition = definition(entry.commands, path.parent)
        entry.warnings = list(entry.definition.warnings)
    except ModelfileError as exc:
        entry.error, entry.error_line = str(exc), exc.line
    return entry


def load_fleet(folder: str | os.PathLike[str]) -> Fleet:
    """Every Modelfile under `folder`; a missing folder gives an empty fleet with a note."""
    root = Path(folder)
    fleet = Fleet(folder=root)
    if not root.exists():
        fleet.problems.append(f"{root}: no such folder")
        return fleet
    if not root.is_dir():
        fleet.problems.append(f"{root}: not a folder")
        return fleet
    for path in _walk(root, fleet.problems):
        found = model_name_for(path, root)
        if found is None:
            fleet.ignored.append(path)
            continue
        fleet.entries.append(load_entry(path, *found))
    for entries in fleet.by_key().values():
        if len(entries) > 1:
            places = ", ".join(str(e.path) for e in entries)
            for e in entries:
                e.error = f"model {e.display} is defined more than once: {places}"
                e.error_line = None
    return fleet

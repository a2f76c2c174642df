"""Parse, check, normalise and render Modelfiles exactly as Ollama does.

`parse` is a port of the state machine in Ollama's `parser/parser.go` (ollama_facts.md §3.4):
same commands, same quirks, same error texts and line numbers. `check_create` applies the
checks `ollama create` makes before it sends anything (§3.5) and `resolve_sources` decides
whether FROM/ADAPTER name a local path or a model (§3.6). `ModelDefinition` is the normal
form the diagnostic compares with what `/api/show` reports for a built model.

Run `python3 -m mirador.modelfile parse PATH...` to see what the parser makes of a file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirador.names import display_name, is_valid_name

COMMANDS = ("from", "license", "template", "system", "adapter", "draft", "renderer", "parser",
            "parameter", "message", "requires")
MESSAGE_ROLES = ("system", "user", "assistant")

ERR_INVALID_COMMAND = (
    'command must be one of "from", "license", "template", "system", "adapter", "draft", '
    '"renderer", "parser", "parameter", "message", or "requires"'
)
ERR_INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'
ERR_NO_FROM = "no FROM line"
ERR_EOF = "unexpected EOF"
ERR_REQUIRES = "requires must be a valid semver (e.g. 0.14.0)"

# PARAMETER names and their Go types (api.Options + api.Runner JSON tags, facts §3.5).
PARAMETER_TYPES: dict[str, str] = {
    "num_ctx": "int", "num_batch": "int", "num_gpu": "int", "main_gpu": "int",
    "use_mmap": "bool", "num_thread": "int", "draft_num_predict": "int", "num_keep": "int",
    "seed": "int", "num_predict": "int", "top_k": "int", "top_p": "float", "min_p": "float",
    "typical_p": "float", "repeat_last_n": "int", "temperature": "float",
    "repeat_penalty": "float", "presence_penalty": "float", "frequency_penalty": "float",
    "stop": "list",
}
# How Ollama's own tooling names those types (the corpus' `param_types`).
GO_TYPE_NAMES = {"int": "int64", "float": "float32", "bool": "*bool", "list": "[]string"}
DEPRECATED_PARAMETERS = ("penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only",
                         "use_mlock", "mirostat", "mirostat_tau", "mirostat_eta")
# Instructions whose last occurrence wins (facts §3.5).
LAST_WINS = ("template", "system", "renderer", "parser", "requires")


class ModelfileError(ValueError):
    """Ollama rejected the Modelfile. `str()` is Ollama's exact text; `line` when it has one."""

    def __init__(self, message: str, line: int | None = None, stage: str = "parse"):
        self.message = message
        self.line = line
        self.stage = stage
        super().__init__(f"(line {line}): {message}" if line else message)


@dataclass(frozen=True)
class Command:
    """One parsed instruction: `FROM` is `model`, PARAMETERs are named by their own name."""

    name: str
    args: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "args": self.args}


# ---------------------------------------------------------------------------------------
# Parsing (parser.go ParseFile)

_NIL, _NAME, _VALUE, _PARAMETER, _MESSAGE, _COMMENT = range(6)


def decode(data: bytes) -> str:
    """Decode like Go's `unicode.BOMOverride(UTF8)`: a BOM picks UTF-8/16, else UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be", errors="replace")
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", errors="replace")
    return data.decode("utf-8", errors="replace")


def _unquote(s: str) -> tuple[str, bool]:
    # NOTE: only double quotes are special and there is no escaping (parser.go unquote).
    if s.startswith('"""'):
        if len(s) >= 6 and s.endswith('"""'):
            return s[3:-3], True
        return "", False
    if s.startswith('"'):
        if len(s) >= 2 and s.endswith('"'):
            return s[1:-1], True
        return "", False
    return s, True


def _is_space(c: str) -> bool:
    return c in " \t"


def _is_newline(c: str) -> bool:
    return c in "\r\n"


def _is_alpha(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


def _next_state(c: str, state: int) -> tuple[int, str]:
    """parseRuneForState: the next state and the rune to keep ('' for none)."""
    if state == _NIL:
        if c == "#":
            return _COMMENT, ""
        if _is_space(c) or _is_newline(c):
            return _NIL, ""
        return _NAME, c
    if state == _NAME:
        if _is_alpha(c):
            return _NAME, c
        if _is_space(c):
            return _VALUE, ""
        raise ModelfileError(ERR_INVALID_COMMAND)
    if state == _VALUE:
        if _is_newline(c) or _is_space(c):
            return _NIL, c
        return _VALUE, c
    if state == _PARAMETER:
        if _is_alpha(c) or ("0" <= c <= "9") or c == "_":
            return _PARAMETER, c
        if _is_space(c):
            return _VALUE, ""
        raise EOFError
    if state == _MESSAGE:
        if _is_alpha(c):
            return _MESSAGE, c
        if _is_space(c):
            return _VALUE, ""
        raise EOFError
    # _COMMENT
    return (_NIL, "") if _is_newline(c) else (_COMMENT, "")


def parse(source: str | bytes) -> list[Command]:
    """Parse Modelfile text into commands, or raise `ModelfileError` with Ollama's text."""
    text = decode(source) if isinstance(source, bytes) else source
    commands: list[Command] = []
    state, line = _NIL, 1
    buf: list[str] = []
    name = role = ""
    for ch in text:
        if _is_newline(ch):
            line += 1
        try:
            nxt, kept = _next_state(ch, state)
        except EOFError:
            raise ModelfileError(f"{ERR_EOF}: {''.join(buf)}") from None
        except ModelfileError as err:
            raise ModelfileError(err.message, line) from None
        if nxt != state:
            if state == _NAME:
                word = "".join(buf)
                lowered = word.lower()
                if lowered not in COMMANDS:
                    raise ModelfileError(ERR_INVALID_COMMAND, line)
                if lowered == "from":
                    name = "model"
                elif lowered == "parameter":
                    nxt = _PARAMETER
                elif lowered == "message":
                    nxt = _MESSAGE
                    name = lowered
                else:
                    name = lowered
            elif state == _PARAMETER:
                name = "".join(buf)
            elif state == _MESSAGE:
                word = "".join(buf)
                if word not in MESSAGE_ROLES:
                    raise ModelfileError(ERR_INVALID_ROLE, line)
                role = word
            elif state == _VALUE:
                value, ok = _unquote("".join(buf).strip(" \t\r\n\v\f"))
                if not ok or _is_space(kept):
                    buf.append(kept)  # still inside the value: keep spaces and newlines
                    continue
                if role:
                    value = f"{role}: {value}"
                    role = ""
                commands.append(Command(name, value))
            buf.clear()
            state = nxt
        if kept and kept.isprintable():
            buf.append(kept)

    if state == _VALUE:
        value, ok = _unquote("".join(buf).strip(" \t\r\n\v\f"))
        if not ok:
            raise ModelfileError(ERR_EOF)
        if role:
            value = f"{role}: {value}"
        commands.append(Command(name, value))
    elif state not in (_NIL, _COMMENT):
        raise ModelfileError(ERR_EOF)

    if not any(c.name == "model" for c in commands):
        raise ModelfileError(ERR_NO_FROM)
    return commands


def parse_file(path: str | os.PathLike[str]) -> list[Command]:
    return parse(Path(path).read_bytes())


# ---------------------------------------------------------------------------------------
# Create-time checks (CreateRequest + api.FormatParams)

_GO_INT = re.compile(r"[+-]?[0-9]+\Z")
_GO_DEC_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_GO_HEX_FLOAT = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F_]+\.?[0-9a-fA-F_]*|\.[0-9a-fA-F_]+)(?:[pP][+-]?[0-9]+)?\Z")
_GO_SPECIAL_FLOAT = re.compile(r"[+-]?(?:inf|infinity)\Z|nan\Z", re.IGNORECASE)
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
_FLOAT32_MAX = 3.4028234663852886e38


def float32_value(x: float) -> float:
    """Round to float32 and return the shortest decimal that round-trips (Go's JSON form)."""
    if math.isinf(x) or math.isnan(x):
        return x
    f32 = struct.unpack("f", struct.pack("f", x))[0]
    for digits in range(1, 10):
        candidate = float(f"{f32:.{digits}g}")
        if struct.pack("f", candidate) == struct.pack("f", f32):
            return candidate
    return f32


def _parse_go_float32(s: str) -> float | None:
    if _GO_SPECIAL_FLOAT.match(s):
        return float(s)
    if _GO_DEC_FLOAT.match(s):
        value = float(s)
    elif _GO_HEX_FLOAT.match(s):
        body = s.replace("_", "")
        if "p" not in body.lower():
            return None  # Go requires the p exponent in a hex float
        try:
            value = float.fromhex(body)
        except (ValueError, OverflowError):
            return None
    else:
        return None
    if math.isinf(value) or abs(value) > _FLOAT32_MAX * (1 + 2**-25):
        return None  # out of float32 range: ParseFloat returns ErrRange
    return float32_value(value)


def convert_parameter(name: str, value: str) -> Any:
    """Type one PARAMETER value as `api.FormatParams` does, or raise its error."""
    kind = PARAMETER_TYPES.get(name)
    if kind is None:
        raise ModelfileError(f"unknown parameter '{name}'", stage="create")
    if kind == "list":
        return [value]
    if kind == "int":
        if _GO_INT.match(value) and -(2**63) <= int(value) < 2**63:
            return int(value)
        raise ModelfileError(f"invalid int value [{value}]", stage="create")
    if kind == "float":
        parsed = _parse_go_float32(value)
        if parsed is None:
            raise ModelfileError(f"invalid float value [{value}]", stage="create")
        return parsed
    if value in _GO_BOOLS:
        return _GO_BOOLS[value]
    raise ModelfileError(f"invalid bool value [{value}]", stage="create")


_SEMVER = re.compile(
    r"v(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?)?"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\Z")


def _valid_semver(v: str) -> bool:
    """golang.org/x/mod/semver.IsValid: `vMAJOR[.MINOR[.PATCH]][-pre][+build]`."""
    m = _SEMVER.match(v)
    if not m:
        return False
    pre = v.split("+", 1)[0].partition("-")[2]
    # numeric pre-release identifiers may not have leading zeros
    return all(not (p.isdigit() and len(p) > 1 and p[0] == "0") for p in pre.split(".") if pre)


@dataclass
class CreateCheck:
    """What `ollama create` would send, minus file digests: the typed, merged request."""

    parameters: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    template: str | None = None
    system: str | None = None
    license: list[str] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    renderer: str | None = None
    parser: str | None = None
    requires: str | None = None
    froms: list[str] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)
    drafts: list[str] = field(default_factory=list)

    @property
    def param_types(self) -> dict[str, str]:
        return {k: GO_TYPE_NAMES[PARAMETER_TYPES[k]] for k in self.parameters}

    def request_fields(self) -> dict[str, Any]:
        """The non-file fields of the JSON create request, as Ollama would fill them."""
        out: dict[str, Any] = {}
        for key in ("template", "system", "renderer", "parser", "requires"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.license:
            out["license"] = list(self.license)
        if self.messages:
            out["messages"] = [dict(m) for m in self.messages]
        if self.parameters:
            out["parameters"] = {k: (list(v) if isinstance(v, list) else v)
                                 for k, v in self.parameters.items()}
        return out


def check_create(commands: Iterable[Command]) -> CreateCheck:
    """The checks of `Modelfile.CreateRequest`, in command order, without touching files."""
    out = CreateCheck()
    for cmd in commands:
        name = cmd.name
        if name == "model":
            out.froms.append(cmd.args)
        elif name == "draft":
            out.drafts.append(cmd.args)
        elif name == "adapter":
            out.adapters.append(cmd.args)
        elif name == "license":
            out.license.append(cmd.args)
        elif name == "message":
            role, _, content = cmd.args.partition(": ")
            out.messages.append({"role": role, "content": content})
        elif name == "requires":
            version = cmd.args if cmd.args.startswith("v") else "v" + cmd.args
            if not _valid_semver(version):
                raise ModelfileError(ERR_REQUIRES, stage="create")
            out.requires = version[1:]
        elif name in LAST_WINS:
            setattr(out, name, cmd.args)
        elif name in DEPRECATED_PARAMETERS:
            out.warnings.append(f"warning: parameter {name} is deprecated")
        else:
            value = convert_parameter(name, cmd.args)
            if isinstance(value, list) and isinstance(out.parameters.get(name), list):
                out.parameters[name] = out.parameters[name] + value  # stop accumulates
            else:
                out.parameters[name] = value
    return out


# ---------------------------------------------------------------------------------------
# FROM / ADAPTER resolution (CreateRequest expandPath + fileDigestMap)

def expand_path(value: str, modelfile_dir: str | os.PathLike[str]) -> Path:
    """Absolute as is; `~`/`~user` from the home folder; anything else beside the Modelfile."""
    if value.startswith(("/", "\\")) or os.path.isabs(value):
        return Path(os.path.abspath(value))
    if value.startswith("~"):
        return Path(os.path.abspath(os.path.expanduser(value)))
    return Path(os.path.abspath(os.path.join(modelfile_dir, value)))


_DIR_PATTERNS = ("model*.safetensors", "consolidated*.safetensors", "pytorch_model*.bin",
                 "consolidated*.pth", "*.gguf", "*.bin")


def files_for_model(folder: Path) -> list[Path]:
    """The files `ollama create` uploads for a model folder (filesForModel), or raise."""
    chosen: list[Path] = []
    for pattern in _DIR_PATTERNS:
        chosen = sorted(folder.glob(pattern))
        if chosen:
            if pattern == "model*.safetensors":
                chosen += sorted(folder.glob("*/model*.safetensors"))
            break
    if not chosen:
        raise ModelfileError("no Modelfile or safetensors files found", stage="create")
    extras = sorted(folder.glob("*.json")) + sorted(folder.glob("**/*.json"))
    extras += sorted(folder.glob("chat_template.jinja"))
    extras += sorted(folder.glob("tokenizer.model")) or sorted(folder.glob("**/tokenizer.model"))
    seen: set[Path] = set()
    out = []
    for f in chosen + extras:
        real = f.resolve()
        if not real.is_relative_to(folder.resolve()):
            raise ModelfileError(f"insecure path: {os.path.relpath(real, folder)}",
                                 stage="create")
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class Source:
    """What a FROM/ADAPTER/DRAFT line points at: a model name, or local files."""

    kind: str  # "model" or "files"
    value: str  # the model name as written, or the expanded path
    files: tuple[Path, ...] = ()

    def digests(self) -> dict[str, str]:
        """{file name relative to the common root: sha256 digest}, as the CLI sends them."""
        if not self.files:
            return {}
        root = Path(os.path.commonpath([str(f.parent) for f in self.files]))
        return {str(f.relative_to(root)) if len(self.files) > 1 else f.name: sha256_file(f)
                for f in self.files}


def resolve_source(value: str, modelfile_dir: str | os.PathLike[str], *,
                   must_exist: bool = False) -> Source:
    """A path beside the Modelfile when it exists; otherwise the value is a model name."""
    path = expand_path(value, modelfile_dir)
    if path.is_dir():
        return Source("files", str(path), tuple(files_for_model(path)))
    if path.exists():
        return Source("files", str(path), (path,))
    if must_exist:
        raise ModelfileError(f"stat {path}: no such file or directory", stage="create")
    return Source("model", value)


# ---------------------------------------------------------------------------------------
# The normal form used to detect drift

@dataclass
class ModelDefinition:
    """A Modelfile reduced to what a built model can be compared on, field by field."""

    base: str | None  # normalised model name, or "file:<sha256 of first file>"
    base_is_local: bool
    parameters: dict[str, Any]
    template: str | None
    system: str | None
    messages: list[dict[str, str]]
    license: list[str]
    adapter: str | None  # sha256 of the adapter files, or None
    requires: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "base_is_local": self.base_is_local,
                "parameters": self.parameters, "template": self.template,
                "system": self.system, "messages": self.messages, "license": self.license,
                "adapter": self.adapter, "requires": self.requires}


def definition(commands: list[Command], modelfile_dir: str | os.PathLike[str] | None = None,
               ) -> ModelDefinition:
    """Check a parsed Modelfile like `ollama create` and reduce it to its normal form.

    With `modelfile_dir`, FROM/ADAPTER paths are resolved against the disk (a missing
    ADAPTER is an error, as it is for `ollama create`); without it, every FROM is a name.
    """
    check = check_create(commands)
    base: str | None = None
    local = False
    for value in check.froms:  # several FROMs: files merge, the last name wins
        src = resolve_source(value, modelfile_dir) if modelfile_dir is not None else None
        if src is not None and src.kind == "files":
            local = True
            base = "file:" + sha256_file(src.files[0]).removeprefix("sha256:")
        elif not local:
            base = display_name(value) if is_valid_name(value) else value
    adapter = None
    if check.adapters:
        if modelfile_dir is not None:
            src = resolve_source(check.adapters[-1], modelfile_dir, must_exist=True)
            adapter = ",".join(sorted(src.digests().values()))
        else:
            adapter = check.adapters[-1]
    for value in check.drafts:
        if modelfile_dir is not None:
            resolve_source(value, modelfile_dir, must_exist=True)
    return ModelDefinition(base=base, base_is_local=local, parameters=check.parameters,
                           template=check.template, system=check.system,
                           messages=check.messages, license=check.license, adapter=adapter,
                           requires=check.requires, warnings=check.warnings)


# ---------------------------------------------------------------------------------------
# Rendering back to text

class UnrepresentableValue(ValueError):
    """A value no Modelfile quoting can carry (the parser would change it)."""


def _quote_candidates(value: str) -> list[str]:
    if value == "":
        return ['""']
    bare_ok = (value == value.strip(" \t\r\n") and "\n" not in value and "\r" not in value
               and not value.startswith('"'))
    out = [value] if bare_ok else []
    if '"' not in value:
        out.append(f'"{value}"')
    out.append(f'"""{value}"""')
    return out


def render_command(cmd: Command) -> str:
    """One instruction as text that parses back to exactly `cmd`, or raise."""
    if cmd.name == "message":
        role, _, text = cmd.args.partition(": ")
        prefix, value = f"MESSAGE {role} ", text
    elif cmd.name == "model":
        prefix, value = "FROM ", cmd.args
    elif cmd.name in COMMANDS:
        prefix, value = f"{cmd.name.upper()} ", cmd.args
    else:
        prefix, value = f"PARAMETER {cmd.name} ", cmd.args
    for candidate in _quote_candidates(value):
        line = prefix + candidate
        try:
            again = parse("FROM x\n" + line + "\n")[1:]
        except ModelfileError:
            continue
        if again == [cmd]:
            return line
    raise UnrepresentableValue(f"{cmd.name} value cannot be written in a Modelfile: {value!r}")


def render(commands: Iterable[Command]) -> str:
    return "".join(render_command(c) + "\n" for c in commands)


# ---------------------------------------------------------------------------------------
# python3 -m mirador.modelfile parse PATH...

def _parse_result(path: str) -> dict[str, Any]:
    try:
        commands = parse_file(path)
    except ModelfileError as err:
        return {"file": path, "ok": False, "error": str(err)}
    except OSError as err:
        return {"file": path, "ok": False, "error": f"cannot read: {err.strerror or err}"}
    return {"file": path, "ok": True, "commands": [c.to_dict() for c in commands]}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] != "parse" or len(args) < 2:
        print("usage: python3 -m mirador.modelfile parse PATH...\n"
              "Prints one JSON line per file: the commands Ollama's parser makes of it,"
              " or its error.", file=sys.stderr)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    failed = False
    for path in args[1:]:
        result = _parse_result(path)
        failed = failed or not result["ok"]
        print(json.dumps(result, ensure_ascii=False))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""A stand-in for the `ollama` CLI, for tests and the demo only (never installed as `ollama`).

It speaks HTTP to whatever server OLLAMA_HOST names, as the real CLI does, and mimics the
real CLI's output and errors for the subcommands Mirador's generated scripts may use:
`create NAME -f FILE`, `show NAME [--modelfile|--parameters|--template|--system|--license]`,
`list`, `pull NAME`, `cp SRC DST`, `rm NAME...`, `run NAME PROMPT`, `ps`, `--version`.
Failures print `Error: …` on stderr and exit 1, like the real one.

`write_wrapper(folder)` makes an executable `ollama` in a folder to put on PATH.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from mirador.errors import MiradorError, OllamaUnreachable
from mirador.modelfile import ModelfileError, check_create, parse, resolve_source
from mirador.names import is_valid_name


class CLIError(Exception):
    pass


def _client():
    from mirador.ollama_client import OllamaClient

    return OllamaClient(None, timeout=float(os.environ.get("MIRADOR_FAKE_OLLAMA_TIMEOUT",
                                                            "600")))


def _message(exc: BaseException) -> str:
    server = getattr(exc, "server_message", None)
    if server:
        return str(server)
    if isinstance(exc, OllamaUnreachable):
        return "could not connect to ollama app, is it running?"
    return str(exc)


def _human_size(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def cmd_create(args: list[str]) -> int:
    name, path = None, "Modelfile"
    i = 0
    while i < len(args):
        if args[i] in ("-f", "--file") and i + 1 < len(args):
            path = args[i + 1]
            i += 2
            continue
        if args[i] in ("-q", "--quantize") and i + 1 < len(args):
            i += 2
            continue
        if name is None:
            name = args[i]
        i += 1
    if not name:
        raise CLIError("accepts 1 arg(s), received 0")
    if not is_valid_name(name):
        raise CLIError(f"invalid model name: {name}")
    modelfile = Path(path)
    if not modelfile.is_file():
        # NOTE: the real CLI falls back to `FROM .` when -f cannot be read (facts §3.3)
        text, folder = b"FROM .\n", Path.cwd()
    else:
        text, folder = modelfile.read_bytes(), modelfile.resolve().parent
    try:
        commands = parse(text)
        check = check_create(commands)
    except ModelfileError as exc:
        raise CLIError(str(exc)) from None
    for warning in check.warnings:
        print(warning)
    client = _client()

    def upload(value: str, *, must_exist: bool) -> dict[str, str] | None:
        """Push a local FROM/ADAPTER's files as blobs: {name: digest}; None for a model."""
        try:
            src = resolve_source(value, folder, must_exist=must_exist)
        except ModelfileError as exc:
            raise CLIError(str(exc)) from None
        if src.kind == "model":
            return None
        digests = src.digests()
        for (_, digest), file in zip(digests.items(), src.files, strict=True):
            client.push_blob(digest, file)
        return digests

    request = check.request_fields()
    files: dict[str, str] = {}
    for value in check.froms:
        uploaded = upload(value, must_exist=False)
        if uploaded is None:
            request["from_"] = value
        else:
            files.update(uploaded)
    if files:
        request["files"] = files
    for value in check.adapters[-1:]:
        request["adapters"] = upload(value, must_exist=True)
    if "from_" not in request and not files:
        raise CLIError("no Modelfile or safetensors files found")
    client.create(name, on_progress=lambda p: print(p.get("status", ""), file=sys.stderr),
                  **request)
    return 0


def cmd_show(args: list[str]) -> int:
    flags = {a for a in args if a.startswith("--")}
    names = [a for a in args if not a.startswith("--")]
    if len(names) != 1:
        raise CLIError(f"accepts 1 arg(s), received {len(names)}")
    info = _client().show(names[0])
    for flag, key in (("--modelfile", "modelfile"), ("--parameters", "parameters"),
                      ("--template", "template"), ("--system", "system"),
                      ("--license", "license")):
        if flag in flags:
            print(info.get(key, ""))
            return 0
    details = info.get("details") or {}
    mi = info.get("model_info") or {}
    arch = mi.get("general.architecture", details.get("family", ""))
    print("  Model")
    print(f"    architecture        {arch}")
    print(f"    parameters          {details.get('parameter_size', '')}")
    print(f"    context length      {mi.get(f'{arch}.context_length', '')}")
    print(f"    embedding length    {mi.get(f'{arch}.embedding_length', '')}")
    print(f"    quantization        {details.get('quantization_level', '')}")
    print("\n  Capabilities")
    for cap in info.get("capabilities") or []:
        print(f"    {cap}")
    return 0


def _columns(rows: list[list[str]]) -> None:
    """Print like Go's tabwriter in the real CLI: columns padded, never touching."""
    widths = [max(len(r[i]) for r in rows) + 3 for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + r[-1])


def cmd_list(args: list[str]) -> int:
    rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
    rows += [[m["name"], m["digest"][:12], _human_size(m["size"]), m["modified_at"][:19]]
             for m in _client().tags()]
    _columns(rows)
    return 0


def cmd_ps(args: list[str]) -> int:
    rows = [["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]]
    from mirador.ollama_client import processor_text

    for m in _client().ps():
        size = m.get("size", 0)
        proc = processor_text(size, m.get("size_vram", 0))
        rows.append([m["name"], m["digest"][:12], _human_size(size), proc,
                     str(m.get("context_length", "")), m.get("expires_at", "")[:19]])
    _columns(rows)
    return 0


def cmd_pull(args: list[str]) -> int:
    if len(args) != 1:
        raise CLIError(f"accepts 1 arg(s), received {len(args)}")
    _client().pull(args[0], on_progress=lambda p: print(p.get("status", ""), file=sys.stderr))
    return 0


def cmd_cp(args: list[str]) -> int:
    if len(args) != 2:
        raise CLIError(f"accepts 2 arg(s), received {len(args)}")
    _client().copy(args[0], args[1])
    print(f"copied '{args[0]}' to '{args[1]}'")
    return 0


def cmd_rm(args: list[str]) -> int:
    if not args:
        raise CLIError("requires at least 1 arg(s), only received 0")
    client = _client()
    for name in args:
        client.delete(name)
        print(f"deleted '{name}'")
    return 0


def cmd_run(args: list[str]) -> int:
    names = [a for a in args if not a.startswith("--")]
    if not names:
        raise CLIError("requires at least 1 arg(s), only received 0")
    name, prompt = names[0], " ".join(names[1:])
    client = _client()
    from mirador.errors import ModelNotFound

    try:
        info = client.show(name)
    except ModelNotFound:
        client.pull(name)  # `ollama run` pulls a missing model; the API never does
        info = client.show(name)
    caps = info.get("capabilities") or []
    if "embedding" in caps and "completion" not in caps:
        result = client.embed(name, prompt)
        print(json.dumps(result["embeddings"][0] if result["embeddings"] else []))
        return 0
    result = client.generate(name, prompt, think=False if "thinking" in caps else None)
    print(result.text.strip())
    return 0


COMMANDS = {"create": cmd_create, "show": cmd_show, "list": cmd_list, "ls": cmd_list,
            "ps": cmd_ps, "pull": cmd_pull, "cp": cmd_cp, "rm": cmd_rm, "run": cmd_run}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print("Usage:\n  ollama [command]\n\nAvailable Commands (Mirador's test stand-in):\n"
              "  create show run pull list ps cp rm")
        return 0
    if args[0] in ("-v", "--version"):
        try:
            print(f"ollama version is {_client().version()}")
        except MiradorError:
            print("Warning: could not connect to a running Ollama instance")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f'Error: unknown command "{args[0]}" for "ollama"', file=sys.stderr)
        return 1
    try:
        return command(args[1:])
    except CLIError as exc:
        print(f"Error: {exc}", file=sys.stderr)
    except MiradorError as exc:
        print(f"Error: {_message(exc)}", file=sys.stderr)
    except OSError as exc:
        print(f"Error: {exc}", file=sys.stderr)
    return 1


def write_wrapper(folder: str | os.PathLike[str], python: str | None = None) -> Path:
    """Write an executable `ollama` in `folder` that runs this stand-in."""
    target = Path(folder) / "ollama"
    exe = python or sys.executable
    root = Path(__file__).resolve().parents[2]
    from mirador.render.shell import q

    target.write_text("#!/bin/sh\n# Mirador's stand-in ollama CLI (tests and demo only)\n"
                      f"PYTHONPATH={q(root)}${{PYTHONPATH:+:$PYTHONPATH}} "
                      f"exec {q(exe)} -m mirador.simulator.ollama_cli \"$@\"\n")
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return target


if __name__ == "__main__":
    sys.exit(main())

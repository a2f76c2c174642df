"""What the four click scripts share: common options, settings precedence, the error shell.

Kept light on imports on purpose: every script's `--help` must answer in under 250 ms, so
rich, requests and yaml are imported only once a command really runs.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mirador import __version__
from mirador.errors import ExitCode, MiradorError


@dataclass
class Settings:
    """Resolved settings: flag, then environment, then mirador.yaml, then defaults."""

    config: Any  # mirador.config.Config
    host: str
    modelfiles: Path
    output_dir: Path
    timeout: float
    json_output: bool
    verbose: bool
    quiet: bool

    def client(self, **kwargs: Any):
        from mirador.ollama_client import OllamaClient

        return OllamaClient(self.host, timeout=self.timeout, **kwargs)


def common_options(f: Callable | None = None, *, timeout: float = 30.0) -> Callable:
    """The options every script takes (design.md, "Common options").

    `@common_options` or `@common_options(timeout=120.0)` for a script whose requests wait
    for model loads and answers rather than metadata.
    """
    if f is None:
        return functools.partial(common_options, timeout=timeout)
    decorators = [
        click.option("--host", metavar="URL", default=None,
                     help="Ollama server. Default: OLLAMA_HOST, else http://127.0.0.1:11434."),
        click.option("--config", "config_path", metavar="PATH", default=None,
                     help="mirador.yaml (default: ./mirador.yaml when present)."),
        click.option("--modelfiles", metavar="DIR", default=None,
                     help="Folder of Modelfiles (default from mirador.yaml: modelfiles)."),
        click.option("--output-dir", metavar="DIR", default=None,
                     help="Where outputs go (default from mirador.yaml: diagnostic_output)."),
        click.option("--timeout", metavar="SECONDS", type=click.FloatRange(min=0.1),
                     default=timeout, show_default=True, help="Per-request HTTP timeout."),
        click.option("--json", "json_output", is_flag=True,
                     help="Print the JSON result on stdout and nothing else there."),
        click.option("-v", "--verbose", is_flag=True, help="More detail on stderr."),
        click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr."),
        click.version_option(__version__, "--version", prog_name="mirador"),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def resolve_settings(*, host: str | None, config_path: str | None, modelfiles: str | None,
                     output_dir: str | None, timeout: float, json_output: bool,
                     verbose: bool, quiet: bool) -> Settings:
    from mirador.config import load_config
    from mirador.ollama_client import resolve_host

    config = load_config(config_path)
    return Settings(
        config=config, host=resolve_host(host), timeout=timeout,
        modelfiles=Path(modelfiles) if modelfiles else config.modelfiles,
        output_dir=Path(output_dir) if output_dir else config.output_dir,
        json_output=json_output, verbose=verbose, quiet=quiet)


def stderr_console(quiet: bool = False):
    """The console for people: stderr, so that --json keeps stdout clean."""
    from rich.console import Console

    # NOTE: piped or captured stderr would otherwise be cut at 80 columns, folding names
    width = None if sys.stderr.isatty() else 140
    return Console(stderr=True, quiet=quiet, highlight=False, soft_wrap=False, width=width)


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def error_shell(fn: Callable[..., int]) -> Callable[..., None]:
    """Turn the command's return value into the exit code and known errors into one line.

    A MiradorError prints `Error: …` and exits with its code. Anything else is a bug: users
    see one line, while tests (MIRADOR_RAISE_ERRORS=1) see the traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = fn(*args, **kwargs)
        except MiradorError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(int(ExitCode.INTERRUPTED))
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except OSError as exc:
            # NOTE: a folder we cannot write or a file we cannot read is the user's to fix
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"Error: {where}{exc.strerror or exc}", err=True)
            sys.exit(int(ExitCode.USAGE))
        except Exception as exc:
            if os.environ.get("MIRADOR_RAISE_ERRORS"):
                raise
            click.echo(f"Error: internal error: {type(exc).__name__}: {exc} (set "
                       "MIRADOR_RAISE_ERRORS=1 to see the traceback, and please report it)",
                       err=True)
            sys.exit(int(ExitCode.PROBLEMS_FOUND))
        sys.exit(int(code))

    return wrapper

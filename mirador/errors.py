"""Mirador's error types and the exit-code contract every script shares (design.md)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes users script against: documented in the README, stable."""

    OK = 0
    PROBLEMS_FOUND = 1  # it ran and found problems (script-specific)
    USAGE = 2  # usage, configuration or input error
    UNREACHABLE = 3  # the Ollama server could not be reached
    INTERRUPTED = 130


class MiradorError(Exception):
    """An error whose message is meant for the person at the terminal: one line, actionable."""

    exit_code: ExitCode = ExitCode.USAGE


class ConfigError(MiradorError):
    """A configuration or input file is wrong; the message names the file and the key/line."""


class OllamaError(MiradorError):
    """Anything that went wrong talking to an Ollama server."""

    exit_code = ExitCode.PROBLEMS_FOUND


class OllamaUnreachable(OllamaError):
    exit_code = ExitCode.UNREACHABLE

    def __init__(self, host: str, reason: str = ""):
        self.host = host
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"cannot reach Ollama at {host}{detail}; is `ollama serve` running there? "
            "Point elsewhere with --host URL or the OLLAMA_HOST environment variable.")


class OllamaTimeout(OllamaError):
    def __init__(self, host: str, what: str, seconds: float, flag: str = "--timeout"):
        self.host, self.seconds = host, seconds
        super().__init__(
            f"{what} on {host} did not answer within {seconds:g} s; "
            f"raise the limit with {flag} SECONDS (a model's first load can take minutes).")


class ServerError(OllamaError):
    """The server answered with an error status (or an error object)."""

    def __init__(self, status: int, message: str, host: str = "", path: str = ""):
        self.status, self.server_message, self.host, self.path = status, message, host, path
        where = f" from {host}{path}" if host else ""
        super().__init__(f"HTTP {status}{where}: {message}")


class ModelNotFound(ServerError):
    def __init__(self, model: str, message: str, host: str = "", path: str = ""):
        self.model = model
        super().__init__(404, message, host, path)
        self.args = (f"model {model!r} is not on {host or 'the server'} ({message}); "
                     "build it with `ollama create` or pull it with `ollama pull`",)


class CapabilityNotSupported(ServerError):
    def __init__(self, model: str, capability: str, message: str, host: str = "",
                 path: str = ""):
        self.model, self.capability = model, capability
        super().__init__(400, message, host, path)


class StreamError(OllamaError):
    """An `{"error": …}` line arrived inside a 200 stream."""

    def __init__(self, message: str, host: str = "", path: str = "", chunks_before: int = 0):
        self.server_message, self.host, self.path = message, host, path
        self.chunks_before = chunks_before
        super().__init__(f"error inside the stream from {host}{path} after {chunks_before} "
                         f"chunk(s): {message}")

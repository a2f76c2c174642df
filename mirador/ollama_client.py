"""The one HTTP boundary between Mirador and Ollama servers.

Every request Mirador makes goes through `OllamaClient`: one pooled `requests.Session`,
a timeout on every call, requests exceptions translated into our own errors (mirador.errors)
that name the host, and streaming NDJSON read line by line with an `{"error": …}` check on
every line, whatever the status code (ollama_facts.md §1, pitfall 9).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from mirador import __version__
from mirador.errors import (
    CapabilityNotSupported,
    ModelNotFound,
    OllamaTimeout,
    OllamaUnreachable,
    ServerError,
    StreamError,
)

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_TIMEOUT = 30.0


# ---------------------------------------------------------------------------------------
# OLLAMA_HOST, parsed as envconfig.Host() does (facts §4.1)

def _env_var(value: str) -> str:
    """envconfig.Var: trim blanks, then any surrounding quote characters."""
    return value.strip().strip("\"'")


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """net.SplitHostPort: None where Go would return an error."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or not hostport[end + 1:].startswith(":"):
            return None
        return hostport[1:end], hostport[end + 2:]
    if hostport.count(":") != 1:
        return None
    host, port = hostport.split(":")
    return host, port


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_ollama_host(value: str | None) -> str:
    """The server URL Ollama derives from an OLLAMA_HOST value.

    >>> parse_ollama_host("1.2.3.4")
    'http://1.2.3.4:11434'
    >>> parse_ollama_host("http://localhost")
    'http://localhost:80'
    >>> parse_ollama_host("https://example.com/ollama")
    'https://example.com:443/ollama'
    """
    s = _env_var(value or "").strip()
    default_port = "11434"
    scheme, sep, hostport = s.partition("://")
    if not sep:
        scheme, hostport = "http", s
        if s == "ollama.com":
            scheme, hostport = "https", "ollama.com:443"
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport, _, path = hostport.partition("/")
    split = _split_host_port(hostport)
    if split is None:
        host, port = "127.0.0.1", default_port
        ip = _ip(hostport.strip("[]"))
        if ip is not None:
            host = ip
        elif hostport:
            host = hostport
    else:
        host, port = split
    if not re.fullmatch(r"[+-]?[0-9]+", port) or not 0 <= int(port) <= 65535:
        port = default_port
    url = f"{scheme}://{_join_host_port(host, port)}"
    return f"{url}/{path}" if path else url


def connectable_url(url: str) -> str:
    """Map bind-all addresses to loopback (ConnectableHost) and an empty host to localhost."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    mapped = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host)
    if mapped is None:
        return url
    netloc = _join_host_port(mapped, str(parts.port)) if parts.port is not None else mapped
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_url(url: str) -> str:
    """The URL without credentials, for every message a person sees."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, "***@" + parts.netloc.rpartition("@")[2], parts.path,
                       parts.query, parts.fragment))


def resolve_host(flag_value: str | None = None, environ: dict[str, str] | None = None) -> str:
    """--host wins, then OLLAMA_HOST, then the default; always a connectable URL."""
    env = os.environ if environ is None else environ
    raw = flag_value if flag_value else env.get("OLLAMA_HOST", "")
    return connectable_url(parse_ollama_host(raw))


def version_tuple(version: str | None) -> tuple[int, int, int]:
    """`0.32.15` → (0, 32, 15); pre-release suffixes and missing parts count as 0."""
    nums = [int(n) for n in re.findall(r"\d+", (version or "").split("-")[0])[:3]]
    nums += [0] * (3 - len(nums))
    return nums[0], nums[1], nums[2]


def processor_text(size: int, size_vram: int) -> str:
    """`ollama ps`'s PROCESSOR column from /api/ps `size` and `size_vram` (cmd.go)."""
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = round((size - size_vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


# ---------------------------------------------------------------------------------------
# Streaming results with client-side timings

@dataclass
class StreamTimings:
    """Client-side clock (time.perf_counter seconds) of one streamed request."""

    sent: float = 0.0
    first_byte: float | None = None
    first_token: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    done: float | None = None

    def ms(self, t: float | None) -> float | None:
        return None if t is None else (t - self.sent) * 1000.0


@dataclass
class StreamResult:
    """A finished stream: text, thinking, tool calls, the final object and the timings."""

    chunks: int = 0
    text: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    timings: StreamTimings = field(default_factory=StreamTimings)

    def metric(self, key: str) -> int | None:
        """A server counter from the final chunk; missing means unknown, never zero."""
        value = self.final.get(key)
        return int(value) if isinstance(value, (int, float)) else None


def _piece(chunk: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    if "message" in chunk and isinstance(chunk["message"], dict):
        msg = chunk["message"]
        return (msg.get("content") or "", msg.get("thinking") or "",
                list(msg.get("tool_calls") or []))
    return chunk.get("response") or "", chunk.get("thinking") or "", []


# ---------------------------------------------------------------------------------------
# The client

_CAPABILITY_ERROR = re.compile(r"does not support (\w+)")


class OllamaClient:
    """A client for one Ollama server. Thread-safe: share it across a worker pool."""

    def __init__(self, host: str | None = None, timeout: float = DEFAULT_TIMEOUT, *,
                 pool_size: int = 16):
        import requests  # imported here so `--help` stays fast
        from requests.adapters import HTTPAdapter

        self.base_url = resolve_host(host).rstrip("/")
        self.host = redact_url(self.base_url)
        self.timeout = timeout
        self._requests = requests
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = f"mirador/{__version__}"
        api_key = os.environ.get("OLLAMA_API_KEY")
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.session.max_redirects = 3  # a proxy looping redirects should fail fast
        self._embed_legacy: bool | None = None

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the low-level request ------------------------------------------------------------

    def _send(self, method: str, path: str, body: Any = None, *, stream: bool = False,
              timeout: float | None = None, data: bytes | Any = None):
        limit = self.timeout if timeout is None else timeout
        url = self.base_url + path
        req = self._requests
        try:
            return self.session.request(
                method, url, json=body if data is None else None, data=data, stream=stream,
                timeout=(min(limit, 10.0), limit))
        except req.exceptions.ConnectTimeout as exc:
            raise OllamaUnreachable(self.host, "connection timed out") from exc
        except req.exceptions.Timeout as exc:
            raise OllamaTimeout(self.host, f"{method} {path}", limit) from exc
        except req.exceptions.RequestException as exc:  # refused, reset, DNS, TLS …
            raise OllamaUnreachable(self.host, _reason(exc)) from exc

    def _raise_for(self, resp: Any, path: str, model: str = "") -> None:
        if resp.status_code < 400:
            return
        message = _error_text(resp)
        if resp.status_code == 404 and model:
            raise ModelNotFound(model, message, self.host, path)
        cap = _CAPABILITY_ERROR.search(message)
        if resp.status_code == 400 and cap:
            raise CapabilityNotSupported(model, cap.group(1), message, self.host, path)
        raise ServerError(resp.status_code, message, self.host, path)

    def _json(self, method: str, path: str, body: Any = None, *, model: str = "",
              timeout: float | None = None) -> Any:
        resp = self._send(method, path, body, timeout=timeout)
        try:
            self._raise_for(resp, path, model)
            if not resp.content:
                return {}
            try:
                payload = resp.json()
            except ValueError as exc:
                raise ServerError(resp.status_code, f"not JSON: {resp.text[:200]!r}",
                                  self.host, path) from exc
            if isinstance(payload, dict) and payload.get("error"):
                raise ServerError(resp.status_code, str(payload["error"]), self.host, path)
            return payload
        finally:
            resp.close()

    def _stream(self, path: str, body: dict[str, Any], *, model: str = "",
                timeout: float | None = None,
                on_chunk: Callable[[dict[str, Any]], None] | None = None,
                ) -> Iterator[tuple[dict[str, Any], float]]:
        """Yield (object, arrival time) per NDJSON line; raise on any error line."""
        resp = self._send("POST", path, body, stream=True, timeout=timeout)
        try:
            self._raise_for(resp, path, model)
            count = 0
            limit = self.timeout if timeout is None else timeout
            try:
                for line in resp.iter_lines(chunk_size=None):
                    now = time.perf_counter()
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except ValueError as exc:
                        raise StreamError(f"malformed line {line[:120]!r}", self.host, path,
                                          count) from exc
                    if isinstance(obj, dict) and obj.get("error"):
                        raise StreamError(str(obj["error"]), self.host, path, count)
                    count += 1
                    if on_chunk:
                        on_chunk(obj)
                    yield obj, now
            except self._requests.exceptions.ConnectionError as exc:
                if "timed out" in str(exc).lower():
                    raise OllamaTimeout(self.host, f"stream {path}", limit) from exc
                raise StreamError(f"connection broken: {_reason(exc)}", self.host, path,
                                  count) from exc
            except self._requests.exceptions.Timeout as exc:
                raise OllamaTimeout(self.host, f"stream {path}", limit) from exc
        finally:
            resp.close()

    # -- liveness and listings ------------------------------------------------------------

    def heartbeat(self) -> str:
        """GET / — 'Ollama is running' on a live server."""
        resp = self._send("GET", "/", timeout=min(self.timeout, 10.0))
        try:
            self._raise_for(resp, "/")
            return resp.text.strip()
        finally:
            resp.close()

    def version(self) -> str:
        return str(self._json("GET", "/api/version").get("version", ""))

    def tags(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/tags").get("models") or [])

    def ps(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/ps").get("models") or [])

    def show(self, model: str, *, verbose: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model}
        if verbose:
            body["verbose"] = True
        return self._json("POST", "/api/show", body, model=model)

    def show_many(self, models: Iterable[str], *, max_workers: int = 16,
                  progress: Callable[[str], None] | None = None,
                  ) -> dict[str, dict[str, Any] | Exception]:
        """/api/show for many models at once with a bounded pool; errors are returned."""
        names = list(dict.fromkeys(models))

        def one(name: str) -> tuple[str, dict[str, Any] | Exception]:
            try:
                result: dict[str, Any] | Exception = self.show(name)
            except OllamaUnreachable:
                raise
            except Exception as exc:  # noqa: BLE001 - per-model errors are data here
                result = exc
            if progress:
                progress(name)
            return name, result

        if not names:
            return {}
        workers = max(1, min(max_workers, len(names)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="show") as pool:
            return dict(pool.map(one, names))

    # -- inference ------------------------------------------------------------------------

    def generate(self, model: str, prompt: str, *, stream: bool = True,
                 timeout: float | None = None, **fields: Any) -> StreamResult:
        body = {"model": model, "prompt": prompt, "stream": stream, **_drop_none(fields)}
        return self._inference("/api/generate", body, model, stream, timeout)

    def chat(self, model: str, messages: list[dict[str, Any]], *, stream: bool = True,
             timeout: float | None = None, **fields: Any) -> StreamResult:
        body = {"model": model, "messages": messages, "stream": stream, **_drop_none(fields)}
        return self._inference("/api/chat", body, model, stream, timeout)

    def _inference(self, path: str, body: dict[str, Any], model: str, stream: bool,
                   timeout: float | None) -> StreamResult:
        result = StreamResult()
        # NOTE: pieces are joined once at the end; `attr += piece` per chunk would copy the
        # whole answer on every chunk (CPython's in-place append only helps local names)
        text: list[str] = []
        thinking: list[str] = []
        result.timings.sent = time.perf_counter()
        if not stream:
            obj = self._json("POST", path, body, model=model, timeout=timeout)
            result.timings.first_byte = result.timings.done = time.perf_counter()
            _accumulate(result, obj, result.timings.done, text, thinking)
            result.final = obj
            result.text, result.thinking = "".join(text), "".join(thinking)
            return result
        for obj, at in self._stream(path, body, model=model, timeout=timeout):
            if result.timings.first_byte is None:
                result.timings.first_byte = at
            _accumulate(result, obj, at, text, thinking)
            if obj.get("done"):
                result.final = obj
                result.timings.done = at
        result.text, result.thinking = "".join(text), "".join(thinking)
        if not result.final:
            raise StreamError("stream ended without a final done:true object", self.host,
                              path, result.chunks)
        return result

    def load(self, model: str, *, keep_alive: str | float | None = None) -> dict[str, Any]:
        """Empty-prompt generate: load the model (done_reason 'load'), no metrics."""
        body = _drop_none({"model": model, "keep_alive": keep_alive, "stream": False})
        return self._json("POST", "/api/generate", body, model=model)

    def unload(self, model: str) -> dict[str, Any]:
        """keep_alive 0 with no prompt: unload now (done_reason 'unload')."""
        return self.load(model, keep_alive=0)

    def embed(self, model: str, inputs: str | list[str], *, timeout: float | None = None,
              **fields: Any) -> dict[str, Any]:
        """/api/embed; on servers older than 0.2.6 (404 on the path) falls back to
        /api/embeddings, one prompt at a time, and returns the /api/embed shape."""
        if self._embed_legacy is not True:
            body = {"model": model, "input": inputs, **_drop_none(fields)}
            resp = self._send("POST", "/api/embed", body, timeout=timeout)
            try:
                legacy = resp.status_code == 404 and "json" not in resp.headers.get(
                    "Content-Type", "")
                if not legacy:
                    self._raise_for(resp, "/api/embed", model)
                    self._embed_legacy = False
                    return resp.json()
            finally:
                resp.close()
            self._embed_legacy = True  # gin's plain-text 404: the route does not exist
        prompts = [inputs] if isinstance(inputs, str) else list(inputs)
        vectors = []
        for prompt in prompts:
            obj = self._json("POST", "/api/embeddings", {"model": model, "prompt": prompt},
                             model=model, timeout=timeout)
            vectors.append(obj.get("embedding") or [])
        return {"model": model, "embeddings": vectors, "legacy_endpoint": True}

    # -- model management -----------------------------------------------------------------

    def create(self, model: str, *, stream: bool = True,
               on_progress: Callable[[dict[str, Any]], None] | None = None,
               timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """JSON /api/create (0.5.5+): from/files/adapters/template/system/parameters/…"""
        body = {"model": model, "stream": stream, **_drop_none(fields)}
        if "from_" in body:
            body["from"] = body.pop("from_")
        return self._progress("/api/create", body, model, stream, on_progress, timeout)

    def pull(self, model: str, *, stream: bool = True,
             on_progress: Callable[[dict[str, Any]], None] | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        return self._progress("/api/pull", {"model": model, "stream": stream}, "", stream,
                              on_progress, timeout)

    def _progress(self, path: str, body: dict[str, Any], model: str, stream: bool,
                  on_progress: Callable[[dict[str, Any]], None] | None,
                  timeout: float | None) -> dict[str, Any]:
        if not stream:
            return self._json("POST", path, body, model=model, timeout=timeout)
        last: dict[str, Any] = {}
        for obj, _ in self._stream(path, body, timeout=timeout, on_chunk=on_progress):
            last = obj
        if last.get("status") != "success":
            raise StreamError(f"ended without success (last status {last.get('status')!r})",
                              self.host, path)
        return last

    def copy(self, source: str, destination: str) -> None:
        self._json("POST", "/api/copy", {"source": source, "destination": destination},
                   model=source)

    def delete(self, model: str) -> None:
        self._json("DELETE", "/api/delete", {"model": model}, model=model)

    def blob_exists(self, digest: str) -> bool:
        resp = self._send("HEAD", f"/api/blobs/{quote(digest, safe=':')}")
        try:
            if resp.status_code == 404:
                return False
            self._raise_for(resp, "/api/blobs")
            return True
        finally:
            resp.close()

    def push_blob(self, digest: str, path: str | os.PathLike[str]) -> None:
        with open(path, "rb") as fh:
            resp = self._send("POST", f"/api/blobs/{quote(digest, safe=':')}", data=fh,
                              timeout=max(self.timeout, 600.0))
        try:
            self._raise_for(resp, "/api/blobs")
        finally:
            resp.close()


def _accumulate(result: StreamResult, obj: dict[str, Any], at: float, texts: list[str],
                thinkings: list[str]) -> None:
    result.chunks += 1
    result.timings.chunk_times.append(at)
    text, thinking, calls = _piece(obj)
    if (text or thinking) and result.timings.first_token is None:
        result.timings.first_token = at
    texts.append(text)
    thinkings.append(thinking)
    result.tool_calls.extend(calls)


def _drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _error_text(resp: Any) -> str:
    try:
        payload = resp.json()
    except ValueError:
        return resp.text.strip() or resp.reason or f"HTTP {resp.status_code}"
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])
    return resp.text.strip()


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host",
                   "timed out", "Connection reset", "Remote end closed"):
        if marker.lower() in text.lower():
            return marker.lower()
    return type(exc).__name__

"""An Ollama-compatible HTTP server for demos and tests (real HTTP on loopback).

Endpoints, response shapes, status codes and error texts follow ollama_facts.md §1–§2.
Timing is real: a model loads for `load_ms`, prefills at `prefill_tps` and streams tokens
at `decode_tps` on the wall clock, and the counters it reports (`load_duration`,
`eval_duration`, …) are the times it actually spent, so they are ground truth for checking
Mirador's own measurements.

Test hooks live under `/__simulator/` (a real server answers 404 there): `GET stats`,
`POST faults` (merge server or per-model faults at run time).
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import json
import random
import re
import select
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from mirador.modelfile import PARAMETER_TYPES, ModelfileError, check_create, parse
from mirador.names import is_valid_name, parse_name
from mirador.ollama_client import version_tuple
from mirador.simulator import engine
from mirador.simulator.gofmt import FOREVER_NS, DurationError, keep_alive_ns, rfc3339
from mirador.simulator.scenario import Scenario
from mirador.simulator.store import ModelStore, SimModel, StoreError

BUSY = "server busy, please try again.  maximum pending requests exceeded"


class HTTPError(Exception):
    """An error answer: JSON `{"error": msg}` unless `plain` (gin's own texts)."""

    def __init__(self, status: int, message: str, *, plain: bool = False):
        self.status, self.message, self.plain = status, message, plain
        super().__init__(message)


@dataclass
class Loaded:
    key: str
    name: str
    digest: str
    size: int
    size_vram: int
    context_length: int
    expires_ns: int
    in_use: int = 0
    last_used: float = 0.0
    prompt_cache: tuple[str, ...] = ()


class SimulatorState:
    """Everything the server knows; shared by the handler threads under one lock."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.settings = scenario.server
        self.version = version_tuple(self.settings.version)
        self.store = ModelStore(scenario.registry)
        self.lock = threading.RLock()
        self.loaded: dict[str, Loaded] = {}
        self.slots: dict[str, threading.Semaphore] = {}
        self.load_locks: dict[str, threading.Lock] = {}
        self.inflight: dict[str, int] = {}
        self.pending = 0
        self.requests: dict[str, int] = {}  # per model key: inference requests seen
        self.stats: dict[str, int] = {}  # "endpoint model" → count, for tests
        self.create_count = 0
        # in-process ground truth for benchmarks: when each answer really started and ended
        self.timeline: collections.deque[dict[str, Any]] = collections.deque(maxlen=10000)
        self.faults = dict(self.settings.faults)
        self.model_faults: dict[str, dict[str, Any]] = {}
        self.rng = random.Random()
        self.default_keep_alive_ns = keep_alive_ns(self.settings.keep_alive, 300 * 10**9)
        self._seed_models()

    def at_least(self, version: str) -> bool:
        return self.version >= version_tuple(version)

    def _seed_models(self) -> None:
        for entry in self.scenario.models:
            name = entry["name"]
            if entry.get("modelfile"):
                path = (self.scenario.base_dir / entry["modelfile"]).resolve()
                try:
                    request = modelfile_request(parse(path.read_bytes()))
                except (OSError, ModelfileError) as exc:
                    raise ValueError(f"scenario model {name}: {path}: {exc}") from exc
            elif entry.get("from"):
                request = {k: entry[k] for k in ("from", "template", "system", "parameters",
                                                 "messages", "license") if k in entry}
            else:
                self.store.pull_model(name)
                continue
            try:
                self.store.create(name, request)
            except StoreError as exc:
                raise ValueError(f"scenario model {name}: {exc.message}") from exc

    def behaviour(self, model: SimModel) -> dict[str, Any]:
        b = engine.behaviour_for(model, self.scenario)
        extra = self.model_faults.get(parse_name(model.name).key())
        if extra:
            b["faults"] = {**b["faults"], **extra}
        return b

    def count(self, what: str) -> None:
        with self.lock:
            self.stats[what] = self.stats.get(what, 0) + 1

    # -- scheduling --------------------------------------------------------------

    def expire(self) -> None:
        now = time.time_ns()
        with self.lock:
            for key in [k for k, v in self.loaded.items()
                        if v.in_use == 0 and v.expires_ns <= now]:
                del self.loaded[key]

    def vram_free(self, excluding: str = "") -> int:
        used = sum(v.size_vram for k, v in self.loaded.items() if k != excluding)
        return max(0, self.settings.gpu_memory - used)


def modelfile_request(commands) -> dict[str, Any]:
    """A JSON create request from parsed commands (FROM taken as a model name)."""
    check = check_create(commands)
    req = check.request_fields()
    req["from"] = check.froms[-1]
    return req


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SimulatorState):
        self.state = state
        if ":" in address[0]:
            self.address_family = socket.AF_INET6  # e.g. --host ::1
        super().__init__(address, Handler)

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that hung up or timed out is normal here
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimulatorServer
    server_version = "Ollama-Simulator"
    _raw_body: bytes | None = None

    # -- plumbing --------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # NOTE: headers and body go out in separate writes; without TCP_NODELAY, Nagle plus
        # the client's delayed ACK stall every keep-alive reply by ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: tests and the demo read stdout

    @property
    def state(self) -> SimulatorState:
        return self.server.state

    def _send(self, status: int, body: bytes = b"", ctype: str = "application/json; "
              "charset=utf-8", *, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Date", self.date_time_string())
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode())

    def _error(self, err: HTTPError) -> None:
        if err.plain:
            self._send(err.status, err.message.encode(), "text/plain; charset=utf-8")
        else:
            self._json(err.status, {"error": err.message})

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Date", self.date_time_string())
        self.end_headers()

    def _line(self, obj: Any) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _read_body(self) -> bytes:
        if self._raw_body is None:
            self._raw_body = self._read_raw_body()
        return self._raw_body

    def _read_raw_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _body_json(self) -> dict[str, Any]:
        raw = self._read_body()
        if not raw.strip():
            raise HTTPError(400, "missing request body")
        try:
            obj = json.loads(raw)
        except ValueError:
            text = raw.decode("utf-8", "replace").lstrip()
            ch = text[:1]
            if ch in "{[\"" or ch.isdigit():
                raise HTTPError(400, "unexpected EOF") from None
            raise HTTPError(400, f"invalid character '{ch}' looking for beginning of value",
                            ) from None
        if not isinstance(obj, dict):
            raise HTTPError(400, "json: cannot unmarshal array into Go value of type "
                                 "api.Request")
        return obj

    def _client_gone(self) -> bool:
        try:
            ready, _, _ = select.select([self.connection], [], [], 0)
            return bool(ready) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _host_allowed(self) -> bool:
        """allowedHostsMiddleware: a loopback-bound server answers only local Host names."""
        if not self.state.settings.host_check:
            return True
        bound = str(self.server.server_address[0])
        try:
            if not ipaddress.ip_address(bound).is_loopback:
                return True
        except ValueError:
            return True
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if host in ("", "localhost", socket.gethostname().lower()) or host.endswith(
                (".localhost", ".local", ".internal")):
            return True
        try:
            ip = ipaddress.ip_address(host)
            return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified
        except ValueError:
            return False

    # -- dispatch --------------------------------------------------------------

    ROUTES = {
        "/": {"GET", "HEAD"}, "/api/version": {"GET", "HEAD"}, "/api/tags": {"GET", "HEAD"},
        "/api/ps": {"GET"}, "/api/show": {"POST"}, "/api/generate": {"POST"},
        "/api/chat": {"POST"}, "/api/embed": {"POST"}, "/api/embeddings": {"POST"},
        "/api/create": {"POST"}, "/api/copy": {"POST"}, "/api/delete": {"DELETE"},
        "/api/pull": {"POST"}, "/__simulator/stats": {"GET"},
        "/__simulator/faults": {"POST"},
    }

    def _dispatch(self, method: str) -> None:
        path = unquote(self.path.split("?", 1)[0])
        self._raw_body = None
        try:
            if not self._host_allowed():
                self._read_body()
                self._send(403)
                return
            if path.startswith("/api/blobs/"):
                self._blob(method, path.removeprefix("/api/blobs/"))
                return
            allowed = self.ROUTES.get(path)
            if allowed is None or (path == "/api/embed" and not self.state.at_least("0.2.6")):
                raise HTTPError(404, "404 page not found", plain=True)
            if method not in allowed:
                raise HTTPError(405, "405 method not allowed", plain=True)
            handler = getattr(self, "h_" + (path.strip("/").replace("/", "_") or "root"))
            handler(method)
        except HTTPError as err:
            self._read_body()  # NOTE: drain it, or the keep-alive connection desyncs
            if method != "HEAD" or err.plain:
                self._error(err)
            else:
                self._send(err.status, head=True)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - stdlib names
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    # -- simple endpoints --------------------------------------------------------------

    def h_root(self, method: str) -> None:
        self._send(200, b"Ollama is running", "text/plain; charset=utf-8",
                   head=method == "HEAD")

    def h_api_version(self, method: str) -> None:
        body = json.dumps({"version": self.state.settings.version}).encode()
        self._send(200, body, head=method == "HEAD")

    def h_api_tags(self, method: str) -> None:
        st = self.state
        v030 = st.at_least("0.30.0")
        models = [st.store.tags_entry(m, v030=v030) for m in st.store.list()]
        self._send(200, json.dumps({"models": models}).encode(), head=method == "HEAD")

    def h_api_ps(self, method: str) -> None:
        st = self.state
        st.expire()
        out = []
        with st.lock:
            for lm in sorted(st.loaded.values(), key=lambda v: v.expires_ns, reverse=True):
                model = st.store.get(lm.name)
                details = model.details(version_at_least_030=st.at_least("0.30.0"),
                                        for_ps=True) if model else {}
                entry = {"name": lm.name, "model": lm.name, "size": lm.size,
                         "digest": lm.digest, "details": details,
                         "expires_at": _expires_text(lm.expires_ns), "size_vram": lm.size_vram}
                if st.at_least("0.10.0"):
                    entry["context_length"] = lm.context_length
                out.append(entry)
        self._json(200, {"models": out})

    def h_api_show(self, method: str) -> None:
        st = self.state
        body = self._body_json()
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise HTTPError(400, "model is required")
        if not is_valid_name(name):
            raise HTTPError(400, "invalid model name")
        latency = st.faults.get("show_latency_ms", 0)
        model = st.store.get(name)
        if model is not None:
            latency = st.behaviour(model)["faults"].get("show_latency_ms", latency)
        if latency:
            time.sleep(latency / 1000.0)
        st.count(f"show {parse_name(name).key()}")
        if model is None:
            raise HTTPError(404, f"model '{name}' not found")
        resp = st.store.show_response(model, st.rng)
        if not st.at_least("0.6.4"):
            resp.pop("capabilities", None)
        self._json(200, resp)

    def h___simulator_stats(self, method: str) -> None:
        st = self.state
        with st.lock:
            self._json(200, {"stats": dict(st.stats), "create_count": st.create_count,
                             "loaded": sorted(st.loaded)})

    def h___simulator_faults(self, method: str) -> None:
        st = self.state
        body = self._body_json()
        with st.lock:
            st.faults.update(body.get("server") or {})
            for name, faults in (body.get("models") or {}).items():
                key = parse_name(name).key()
                st.model_faults[key] = {**st.model_faults.get(key, {}), **faults}
        self._json(200, {"faults": st.faults, "models": st.model_faults})

    # -- blobs, copy, delete, pull, create --------------------------------------------------------

    def _blob(self, method: str, digest: str) -> None:
        st = self.state
        if not re.fullmatch(r"sha256[:-][0-9a-f]{64}", digest):
            raise HTTPError(400, "invalid digest format")
        digest = digest.replace("sha256-", "sha256:")
        if method == "HEAD":
            with st.store.lock:
                exists = digest in st.store.blobs
            self._send(200 if exists else 404, head=True)
            return
        if method != "POST":
            raise HTTPError(405, "405 method not allowed", plain=True)
        data = self._read_body()
        try:
            created = st.store.add_blob(digest, data)
        except StoreError as exc:
            raise HTTPError(exc.status, exc.message) from None
        self._send(201 if created else 200)

    def h_api_copy(self, method: str) -> None:
        body = self._body_json()
        src, dst = body.get("source", ""), body.get("destination", "")
        if not is_valid_name(src):
            raise HTTPError(400, f'source "{src}" is invalid')
        if not is_valid_name(dst):
            raise HTTPError(400, f'destination "{dst}" is invalid')
        try:
            self.state.store.copy(src, dst)
        except StoreError as exc:
            raise HTTPError(exc.status, exc.message) from None
        self._send(200)

    def h_api_delete(self, method: str) -> None:
        st = self.state
        body = self._body_json()
        name = body.get("model") or body.get("name") or ""
        if not is_valid_name(name):
            raise HTTPError(400, f'name "{name}" is invalid')
        try:
            st.store.delete(name)
        except StoreError as exc:
            raise HTTPError(exc.status, exc.message) from None
        with st.lock:
            st.loaded.pop(parse_name(name).key(), None)
        self._send(200)

    def _early_stream_error(self, stream: bool, status: int, message: str) -> None:
        """Before v0.12.6 early errors of streaming endpoints came as 200 NDJSON lines."""
        if stream and not self.state.at_least("0.12.6"):
            self._start_stream()
            self._line({"error": message, "status": status})
            self._end_stream()
            return
        raise HTTPError(status, message)

    def h_api_pull(self, method: str) -> None:
        st = self.state
        body = self._body_json()
        name = body.get("model") or body.get("name") or ""
        stream = body.get("stream", True) is not False
        if not is_valid_name(name):
            self._early_stream_error(stream, 400, "invalid model name")
            return
        found = st.store.registry_entry(name)
        if not stream:
            if found is None:
                raise HTTPError(500, "pull model manifest: file does not exist")
            st.store.pull_model(name)
            self._json(200, {"status": "success"})
            return
        self._start_stream()
        self._line({"status": "pulling manifest"})
        if found is None:
            self._line({"error": "pull model manifest: file does not exist"})
            self._end_stream()
            return
        reg_name, entry = found
        total = int(entry.get("size", 2_000_000_000))
        pull_s = float((entry.get("behaviour") or {}).get("pull_ms", 300)) / 1000.0
        digest = engine.hashlib.sha256(reg_name.encode()).hexdigest()
        for step in range(5):
            time.sleep(pull_s / 5)
            self._line({"status": f"pulling {digest[:12]}", "digest": f"sha256:{digest}",
                        "total": total, "completed": total * (step + 1) // 5})
        st.store.pull_model(name)
        for status in ("verifying sha256 digest", "writing manifest", "success"):
            self._line({"status": status})
        self._end_stream()

    def h_api_create(self, method: str) -> None:
        st = self.state
        body = self._body_json()
        name = body.get("model") or body.get("name") or ""
        stream = body.get("stream", True) is not False
        if not st.at_least("0.5.5"):
            # NOTE: old servers take the Modelfile text (facts §3.1)
            if not body.get("modelfile") and not body.get("path"):
                self._early_stream_error(stream, 400, "path or Modelfile are required")
                return
            try:
                body = {**modelfile_request(parse(body["modelfile"])), "model": name}
            except ModelfileError as exc:
                self._early_stream_error(stream, 400, str(exc))
                return
        if not is_valid_name(name):
            self._early_stream_error(stream, 400, "invalid model name")
            return
        if not body.get("from") and not body.get("files"):
            self._early_stream_error(stream, 400, "neither 'from' or 'files' was specified")
            return
        template = body.get("template") or ""
        if template.count("{{") != template.count("}}"):
            self._early_stream_error(stream, 400, "template error: template: :1: unclosed "
                                                  "action")
            return
        with st.lock:
            st.create_count += 1
            number = st.create_count
        fail = number in (st.faults.get("create_fail_on") or [])
        broken = number in (st.faults.get("broken_after_create_on") or [])
        lines: list[dict[str, Any]] = []
        if stream:
            self._start_stream()

        def say(obj: dict[str, Any]) -> None:
            if stream:
                self._line(obj)
            else:
                lines.append(obj)

        try:
            say({"status": "gathering model components"})
            if fail:
                raise StoreError(500, f"simulated create failure (create #{number})")
            request = {k: v for k, v in body.items() if k not in ("model", "name", "stream")}
            model = st.store.create(name, request, on_status=say)
            model.broken = broken
            with st.lock:  # a rebuilt model is not the one that is loaded
                lm = st.loaded.get(parse_name(name).key())
                if lm is not None and lm.digest != model.digest:
                    del st.loaded[lm.key]
            say({"status": "success"})
        except StoreError as exc:
            if stream:
                self._line({"error": exc.message})
            else:
                raise HTTPError(exc.status, exc.message) from None
        if stream:
            self._end_stream()
        else:
            self._json(200, lines[-1] if lines else {"status": "success"})

    # -- inference --------------------------------------------------------------

    def _lookup(self, name: str, endpoint: str) -> SimModel:
        if not name:
            if endpoint in ("chat", "embeddings"):
                raise HTTPError(400, "model is required")
            raise HTTPError(404, "model '' not found")
        if not is_valid_name(name):
            raise HTTPError(400, "invalid model name")
        model = self.state.store.get(name)
        if model is None:
            if endpoint == "embeddings":
                raise HTTPError(404, f'model "{name}" not found, try pulling it first')
            raise HTTPError(404, f"model '{name}' not found")
        return model

    def _check_options(self, options: Any) -> dict[str, Any]:
        if options is None:
            return {}
        if not isinstance(options, dict):
            raise HTTPError(400, "json: cannot unmarshal options")
        for key, value in options.items():
            kind = PARAMETER_TYPES.get(key)
            ok = {None: True,
                  "int": isinstance(value, (int, float)) and not isinstance(value, bool)
                  and float(value).is_integer(),
                  "float": isinstance(value, (int, float)) and not isinstance(value, bool),
                  "bool": isinstance(value, bool),
                  "list": isinstance(value, list) and all(isinstance(x, str) for x in value),
                  }[kind]
            if not ok:
                go = {"int": "int", "float": "float32", "bool": "bool",
                      "list": "[]string"}[kind]  # type: ignore[index]
                raise HTTPError(500, f'option "{key}" must be of type {go}')
        return options

    def _keep_alive(self, body: dict[str, Any]) -> int:
        try:
            return keep_alive_ns(body.get("keep_alive"), self.state.default_keep_alive_ns)
        except DurationError as exc:
            raise HTTPError(400, str(exc)) from None

    def _acquire(self, model: SimModel, behaviour: dict[str, Any]) -> threading.Semaphore:
        st = self.state
        key = parse_name(model.name).key()
        faults = behaviour["faults"]
        with st.lock:
            inflight = st.inflight.get(key, 0) + 1
            limit = faults.get("max_inflight")
            if (limit and inflight > limit) or st.pending + 1 > st.settings.max_queue:
                raise HTTPError(503, BUSY)
            st.inflight[key] = inflight
            st.pending += 1
            slot = st.slots.setdefault(key, threading.Semaphore(st.settings.num_parallel))
        slot.acquire()
        return slot

    def _release(self, model: SimModel, slot: threading.Semaphore) -> None:
        st = self.state
        key = parse_name(model.name).key()
        slot.release()
        with st.lock:
            st.inflight[key] = max(0, st.inflight.get(key, 1) - 1)
            st.pending = max(0, st.pending - 1)

    def _ensure_loaded(self, model: SimModel, behaviour: dict[str, Any], num_ctx: int,
                       ) -> tuple[Loaded, float]:
        """Load (or reload on a new num_ctx) the model; return it and the seconds it took."""
        st = self.state
        st.expire()
        key = parse_name(model.name).key()
        started = time.perf_counter()
        with st.lock:
            load_lock = st.load_locks.setdefault(key, threading.Lock())
        with load_lock:  # concurrent first requests wait for one load, as the scheduler does
            with st.lock:
                lm = st.loaded.get(key)
                if lm is not None and (lm.context_length != num_ctx
                                       or lm.digest != model.digest):
                    del st.loaded[key]  # a runner option changed: Ollama reloads (pitfall 6)
                    lm = None
                if lm is not None:
                    lm.in_use += 1
                    return lm, time.perf_counter() - started
            time.sleep(float(behaviour["load_ms"]) / 1000.0)
            return self._register_loaded(model, behaviour, num_ctx, key), (
                time.perf_counter() - started)

    def _register_loaded(self, model: SimModel, behaviour: dict[str, Any], num_ctx: int,
                         key: str) -> Loaded:
        st = self.state
        with st.lock:
            while len(st.loaded) >= st.settings.max_loaded_models:
                idle = [v for v in st.loaded.values() if v.in_use == 0]
                if not idle:
                    break
                del st.loaded[min(idle, key=lambda v: v.last_used).key]
            kv = num_ctx * model.embedding_length * 16
            size = int(model.size * 1.05) + kv
            frac = behaviour.get("gpu_fraction")
            vram = int(size * float(frac)) if frac is not None else min(size, st.vram_free())
            lm = st.loaded.get(key) or Loaded(key, model.name, model.digest, size, vram,
                                              num_ctx, 0)
            lm.in_use += 1
            st.loaded[key] = lm
        return lm

    @contextlib.contextmanager
    def _scheduled(self, model: SimModel, behaviour: dict[str, Any], num_ctx: int,
                   keep_ns: int):
        """One request's hold on the server, as Ollama's scheduler gives it: a parallel slot
        and the loaded model; yields (loaded model, seconds spent waiting and loading)."""
        slot = self._acquire(model, behaviour)
        try:
            lm, load_s = self._ensure_loaded(model, behaviour, num_ctx)
            try:
                yield lm, load_s
            finally:
                self._finish_loaded(lm, keep_ns)
        finally:
            self._release(model, slot)

    def _finish_loaded(self, lm: Loaded, keep_ns: int) -> None:
        st = self.state
        with st.lock:
            lm.in_use = max(0, lm.in_use - 1)
            lm.last_used = time.time()
            if keep_ns == 0 and lm.in_use == 0:
                st.loaded.pop(lm.key, None)
            else:
                lm.expires_ns = FOREVER_NS if keep_ns >= FOREVER_NS else time.time_ns() + keep_ns

    def _maybe_fault(self, model: SimModel, behaviour: dict[str, Any]) -> int:
        """Apply request-level faults; returns this request's number for the model."""
        st = self.state
        key = parse_name(model.name).key()
        with st.lock:
            n = st.requests.get(key, 0) + 1
            st.requests[key] = n
        faults = behaviour["faults"]
        if faults.get("hang"):
            deadline = time.monotonic() + float(faults.get("hang_s", 3600))
            while time.monotonic() < deadline and not self._client_gone():
                time.sleep(0.05)
            self.close_connection = True
            raise ConnectionResetError
        if model.broken:
            raise HTTPError(500, "llama runner process has terminated: error loading model: "
                                 "simulated broken build")
        if n <= int(faults.get("fail_first", 0)):
            raise HTTPError(500, "llama runner process has terminated: exit status 2")
        every = faults.get("http_500_every")
        if every and n % int(every) == 0:
            raise HTTPError(500, "llama runner process has terminated: exit status 2")
        return n

    def h_api_generate(self, method: str) -> None:
        self._inference("generate", self._body_json())

    def h_api_chat(self, method: str) -> None:
        self._inference("chat", self._body_json())

    def _inference(self, endpoint: str, body: dict[str, Any]) -> None:
        st = self.state
        name = body.get("model") or ""
        stream = body.get("stream", True) is not False
        received = time.perf_counter()
        model = self._lookup(name, endpoint)
        caps = model.capabilities
        st.count(f"{endpoint} {parse_name(model.name).key()}")
        if "completion" not in caps:
            verb = "generate" if endpoint == "generate" else "chat"
            raise HTTPError(400, f'"{name}" does not support {verb}')
        think = body.get("think")
        if isinstance(think, str) and think not in ("low", "medium", "high", "max"):
            raise HTTPError(400, "invalid think value")
        if think is not None and "thinking" not in caps and (
                think is not False or not st.at_least("0.12.5")):
            raise HTTPError(400, f'"{name}" does not support thinking')
        if endpoint == "chat" and body.get("tools") and "tools" not in caps:
            raise HTTPError(400, f"{model.qualified_name()} does not support tools")
        if body.get("suffix") and "insert" not in caps:
            raise HTTPError(400, f"{model.qualified_name()} does not support insert")
        if body.get("raw") and (body.get("template") or body.get("system") or
                                body.get("context")):
            raise HTTPError(400, "raw mode does not support template, system, or context")
        images = body.get("images") or [img for m in body.get("messages") or []
                                        if isinstance(m, dict) for img in m.get("images") or []]
        if images and "vision" not in caps:
            raise HTTPError(400, f"{model.qualified_name()} does not support vision")
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            raise HTTPError(400, f"invalid format: {json.dumps(fmt)}; expected \"json\" or a "
                                 "valid JSON Schema object")
        options = self._check_options(body.get("options"))
        keep_ns = self._keep_alive(body)
        behaviour = st.behaviour(model)

        system = body.get("system") if body.get("system") is not None else model.system
        if endpoint == "chat":
            messages = body.get("messages")
            if messages is None:
                messages = []
            prompt_text = "\n".join(str(m.get("content") or "") for m in messages
                                    if isinstance(m, dict))
            last_user = next((str(m.get("content") or "") for m in reversed(messages)
                              if isinstance(m, dict) and m.get("role") == "user"), prompt_text)
            load_only = len(messages) == 0
        else:
            prompt_text = last_user = str(body.get("prompt") or "")
            load_only = prompt_text == "" and not body.get("suffix")
        params = {**model.parameters, **options}
        num_ctx = int(params.get("num_ctx") or st.settings.default_context)
        num_ctx = min(num_ctx, model.context_length)

        n = self._maybe_fault(model, behaviour)
        with self._scheduled(model, behaviour, num_ctx, keep_ns) as (lm, load_s):
            if load_only:
                self._load_reply(endpoint, name, stream, keep_ns)
                return
            plan = self._plan(model, behaviour, endpoint, body, system or "", prompt_text,
                              last_user, params, n, lm)
            self._stream_answer(endpoint, name, stream, plan, behaviour, received, load_s,
                                fmt)

    def _load_reply(self, endpoint: str, name: str, stream: bool, keep_ns: int) -> None:
        reply: dict[str, Any] = {"model": name, "created_at": rfc3339(local=False)}
        if endpoint == "chat":
            reply["message"] = {"role": "assistant", "content": ""}
        else:
            reply["response"] = ""
        reply.update({"done": True, "done_reason": "unload" if keep_ns == 0 else "load"})
        if stream:
            self._start_stream()
            self._line(reply)
            self._end_stream()
        else:
            self._json(200, reply)

    def _plan(self, model: SimModel, behaviour: dict[str, Any], endpoint: str,
              body: dict[str, Any], system: str, prompt_text: str, last_user: str,
              params: dict[str, Any], n: int, lm: Loaded) -> engine.InferencePlan:
        plan = engine.InferencePlan()
        full_prompt = f"{system}\n{prompt_text}"
        prompt_tokens = tuple(full_prompt.split())
        with self.state.lock:
            cached = 0
            for a, b in zip(lm.prompt_cache, prompt_tokens, strict=False):
                if a != b:
                    break
                cached += 1
            lm.prompt_cache = prompt_tokens
        # NOTE: a shared prefix with the previous prompt is cached (not re-evaluated), so a
        # repeated prompt reports no prompt_eval_count at all, as Ollama does (pitfall 17)
        overhead = engine.TEMPLATE_OVERHEAD_TOKENS if cached == 0 else 0
        plan.prompt_tokens = len(prompt_tokens) - cached + overhead
        plan.raw = bool(body.get("raw"))
        caps = model.capabilities
        think = body.get("think", True if "thinking" in caps else None)
        if "thinking" in caps and think not in (False, None):
            plan.thinking_tokens = engine.tokens(behaviour.get("thinking") or
                                                 "Let me think about this.")
        if endpoint == "chat" and body.get("tools"):
            plan.tool_calls = engine.tool_calls_for(behaviour, body["tools"])
        else:
            text = engine.pick_answer(behaviour, last_user, system)
            fmt = body.get("format")
            if fmt:
                text = engine.json_answer(text, fmt)
            plan.answer_tokens = engine.tokens(text)
        limit = int(params.get("num_predict") or -1)
        if limit >= 0:
            budget = limit
            plan.thinking_tokens = plan.thinking_tokens[:budget]
            budget -= len(plan.thinking_tokens)
            if len(plan.answer_tokens) > budget:
                plan.answer_tokens = plan.answer_tokens[:max(budget, 0)]
                plan.done_reason = "length"
        mid = behaviour["faults"].get("error_mid_stream")
        if mid and n % int(mid.get("every", 1)) == 0:
            plan.error_after = int(mid.get("after_tokens", 3))
            plan.error_message = mid.get("message", "an error was encountered while running "
                                                    "the model: unexpected EOF")
        return plan

    def _stream_answer(self, endpoint: str, name: str, stream: bool,
                       plan: engine.InferencePlan, behaviour: dict[str, Any],
                       received: float, load_s: float, fmt: Any) -> None:
        prefill_s = plan.prompt_tokens / float(behaviour["prefill_tps"])
        time.sleep(prefill_s)
        tps = float(behaviour["decode_tps"])
        if stream:
            self._start_stream()  # NOTE: headers only after load + prefill, like Ollama
        pieces = [("thinking", t) for t in plan.thinking_tokens] + [
            ("content", t) for t in plan.answer_tokens]
        if plan.tool_calls:
            pieces.append(("tool_calls", ""))
        text, thinking = [], []
        decode_start = time.perf_counter()
        last = decode_start
        first_written: float | None = None
        for i, (kind, piece) in enumerate(pieces):
            if plan.error_after is not None and i >= plan.error_after:
                if stream:
                    self._line({"error": plan.error_message})
                    self._end_stream()
                    return
                raise HTTPError(500, plan.error_message)
            deadline = decode_start + (i + 1) / tps
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            last = time.perf_counter()
            if kind == "content":
                text.append(piece)
            elif kind == "thinking":
                thinking.append(piece)
            if stream:
                self._line(self._chunk(endpoint, name, kind, piece, plan))
            if first_written is None and piece:
                first_written = time.perf_counter()
        eval_count = len(plan.thinking_tokens) + len(plan.answer_tokens) + (
            1 if plan.tool_calls else 0)
        final = self._chunk(endpoint, name, "content", "", plan) if stream else self._chunk(
            endpoint, name, "content", "".join(text), plan, thinking="".join(thinking),
            tool_calls=plan.tool_calls)
        final["done"] = True
        final["done_reason"] = plan.done_reason
        metrics = {
            "total_duration": int((time.perf_counter() - received) * 1e9),
            "load_duration": int(load_s * 1e9),
            "prompt_eval_count": plan.prompt_tokens,
            "prompt_eval_duration": int(prefill_s * 1e9),
            "eval_count": eval_count,
            "eval_duration": int((last - decode_start) * 1e9),
        }
        # NOTE: metrics are omitempty: a zero counter is left out (facts §1, pitfall 17)
        final.update({k: v for k, v in metrics.items() if v})
        if endpoint == "generate" and not plan.raw:
            final["context"] = list(range(1, min(eval_count, 16) + 1))
        if stream:
            self._line(final)
            self._end_stream()
        else:
            self._json(200, final)
        self.state.timeline.append({
            "model": name, "received": received, "first_token": first_written,
            "done": time.perf_counter(), "load_s": load_s, "prefill_s": prefill_s,
            "eval_count": eval_count, "eval_s": last - decode_start})

    @staticmethod
    def _chunk(endpoint: str, name: str, kind: str, piece: str, plan: engine.InferencePlan,
               *, thinking: str = "", tool_calls: list[dict] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"model": name, "created_at": rfc3339(local=False)}
        if endpoint == "chat":
            msg: dict[str, Any] = {"role": "assistant", "content": ""}
            if kind == "content":
                msg["content"] = piece
            elif kind == "thinking":
                msg["thinking"] = piece
            elif kind == "tool_calls":
                msg["tool_calls"] = plan.tool_calls
            if thinking:
                msg["thinking"] = thinking
            if tool_calls:
                msg["tool_calls"] = tool_calls
            out["message"] = msg
        else:
            out["response"] = piece if kind == "content" else ""
            if kind == "thinking":
                out["thinking"] = piece
            if thinking:
                out["thinking"] = thinking
        out["done"] = False
        return out

    # -- embeddings --------------------------------------------------------------

    def h_api_embed(self, method: str) -> None:
        st = self.state
        body = self._body_json()
        received = time.perf_counter()
        name = body.get("model") or ""
        model = self._lookup(name, "embed")
        st.count(f"embed {parse_name(model.name).key()}")
        raw = body.get("input")
        if raw is None:
            inputs: list[str] = []
        elif isinstance(raw, str):
            inputs = [raw] if raw else []
        elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            inputs = raw
        else:
            raise HTTPError(400, "invalid input type")
        self._check_options(body.get("options"))
        keep_ns = self._keep_alive(body)
        behaviour = st.behaviour(model)
        if "embedding" not in model.capabilities:
            raise HTTPError(500, "this model does not support embeddings")
        if body.get("truncate") is False and any(
                engine.count_tokens(t) > model.context_length for t in inputs):
            raise HTTPError(400, "the input length exceeds the context length")
        self._maybe_fault(model, behaviour)
        with self._scheduled(model, behaviour, model.context_length, keep_ns) as (_, load_s):
            count = sum(engine.count_tokens(t) for t in inputs)
            time.sleep(count / float(behaviour["prefill_tps"]))
            dim = int(behaviour.get("embedding_dim") or model.embedding_length)
            want = body.get("dimensions")
            vectors = [engine.embedding(t, dim) for t in inputs]
            if isinstance(want, int) and 0 < want < dim:
                vectors = [_renorm(v[:want]) for v in vectors]
            reply = {"model": name, "embeddings": vectors,
                     "total_duration": int((time.perf_counter() - received) * 1e9),
                     "load_duration": int(load_s * 1e9)}
            if count:
                reply["prompt_eval_count"] = count
            self._json(200, reply)

    def h_api_embeddings(self, method: str) -> None:
        st = self.state
        body = self._body_json()
        name = body.get("model") or ""
        model = self._lookup(name, "embeddings")
        st.count(f"embeddings {parse_name(model.name).key()}")
        prompt = body.get("prompt") or ""
        behaviour = st.behaviour(model)
        keep_ns = self._keep_alive(body)
        with self._scheduled(model, behaviour, model.context_length, keep_ns):
            if "embedding" not in model.capabilities and prompt:
                raise HTTPError(500, "this model does not support embeddings")
            dim = int(behaviour.get("embedding_dim") or model.embedding_length)
            vector = engine.embedding(prompt, dim, normalise=False) if prompt else []
            self._json(200, {"embedding": vector})


def _renorm(v: list[float]) -> list[float]:
    norm = sum(x * x for x in v) ** 0.5 or 1.0
    return [x / norm for x in v]


def _expires_text(ns: int) -> str:
    if ns >= FOREVER_NS:
        return "2318-02-27T12:00:00.000000000Z"  # MaxInt64 ns ahead: centuries away
    return rfc3339(ns / 1e9)

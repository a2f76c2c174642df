"""Measure how fast and how well each model answers, on both sides of the wire.

Client side (our clock): end-to-end latency, time to first token (first non-empty content
or thinking chunk), gaps between chunks. Server side (the final chunk's counters):
load, prefill and decode durations and rates, `done_reason`. Missing counters are unknown
(None), never zero (pitfall 17). The first request to a model that was not loaded is the
cold one: its `load_duration` is reported as `load_ms`, and warm figures exclude it and
every warm-up request.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mirador import probes, scoring
from mirador.errors import (
    CapabilityNotSupported,
    ConfigError,
    MiradorError,
    ModelNotFound,
    OllamaError,
    OllamaTimeout,
    OllamaUnreachable,
    ServerError,
    StreamError,
)
from mirador.names import name_key
from mirador.ollama_client import processor_text

SCHEMA = "mirador.performance/1"


@dataclass
class RunSettings:
    requests: int = 5
    warmup: int = 1
    concurrency: int = 1
    timeout: float = 120.0
    keep_alive: str | None = None
    seed: int | None = None
    cold: bool = False
    judge_model: str | None = None
    judge_weight: float = 0.5
    sweep: tuple[int, ...] = ()


@dataclass
class Sample:
    model: str
    kind: str  # chat, embedding, vision, tools, sweep
    query_id: str
    prompt: str
    warmup: bool = False
    cold: bool = False
    concurrency: int = 1
    ok: bool = False
    error_kind: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    gap_mean_ms: float | None = None
    gap_max_ms: float | None = None
    load_ms: float | None = None
    prompt_eval_count: int | None = None
    prompt_eval_ms: float | None = None
    prefill_tps: float | None = None
    eval_count: int | None = None
    eval_ms: float | None = None
    decode_tps: float | None = None
    total_ms: float | None = None
    done_reason: str | None = None
    answer: str = ""
    thinking_chars: int = 0
    quality: float | None = None
    quality_detail: dict[str, Any] | None = None


@dataclass
class ModelResult:
    name: str
    kind: str = "completion"
    category: str | None = None
    capabilities: list[str] = field(default_factory=list)
    digest: str | None = None
    error: str | None = None  # the model could not be measured at all
    samples: list[Sample] = field(default_factory=list)
    processor: str | None = None
    size: int | None = None
    size_vram: int | None = None
    context_length: int | None = None
    sweep: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Statistics

def _clean(values) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(v)]


def percentile(values, p: float) -> float | None:
    """Nearest-rank percentile (p in 0–100); None for no data."""
    vs = sorted(_clean(values))
    if not vs:
        return None
    rank = max(1, math.ceil(p / 100 * len(vs)))
    return vs[rank - 1]


def stats(values, keys=("mean", "p50", "p95", "max")) -> dict[str, float | None]:
    vs = _clean(values)
    out: dict[str, float | None] = {}
    for key in keys:
        if not vs:
            out[key] = None
        elif key == "mean":
            out[key] = round(statistics.fmean(vs), 3)
        elif key == "min":
            out[key] = round(min(vs), 3)
        elif key == "max":
            out[key] = round(max(vs), 3)
        else:
            out[key] = round(percentile(vs, float(key[1:])) or 0.0, 3)
    return out


# ---------------------------------------------------------------------------------------
# One request

def error_kind(exc: BaseException) -> str:
    if isinstance(exc, OllamaTimeout):
        return "timeout"
    if isinstance(exc, OllamaUnreachable):
        return "connection"
    if isinstance(exc, StreamError):
        return "stream_error"
    if isinstance(exc, CapabilityNotSupported):
        return "capability_unsupported"
    if isinstance(exc, ServerError):
        return f"http_{exc.status}"
    return "error"


def _ms(ns: Any) -> float | None:
    return None if not isinstance(ns, (int, float)) else ns / 1e6


def _rate(count: int | None, ns: Any) -> float | None:
    if not count or not isinstance(ns, (int, float)) or ns <= 0:
        return None
    return count / (ns / 1e9)


def fill_from_stream(sample: Sample, result) -> None:
    """Client-side timings and server counters from a finished StreamResult."""
    t = result.timings
    sample.latency_ms = t.ms(t.done)
    sample.ttft_ms = t.ms(t.first_token)
    times = t.chunk_times
    gaps = [(b - a) * 1000 for a, b in zip(times, times[1:], strict=False)]
    if gaps:
        sample.gap_mean_ms = statistics.fmean(gaps)
        sample.gap_max_ms = max(gaps)
    final = result.final
    sample.load_ms = _ms(final.get("load_duration"))
    sample.prompt_eval_count = result.metric("prompt_eval_count")
    sample.prompt_eval_ms = _ms(final.get("prompt_eval_duration"))
    sample.prefill_tps = _rate(sample.prompt_eval_count, final.get("prompt_eval_duration"))
    sample.eval_count = result.metric("eval_count")
    sample.eval_ms = _ms(final.get("eval_duration"))
    sample.decode_tps = _rate(sample.eval_count, final.get("eval_duration"))
    sample.total_ms = _ms(final.get("total_duration"))
    sample.done_reason = final.get("done_reason")
    sample.answer = result.text
    sample.thinking_chars = len(result.thinking)


class Runner:
    """Runs the measurement plan against one client; safe to stop from another thread."""

    def __init__(self, client, settings: RunSettings, queries: probes.QuerySet, *,
                 category_of: Callable[[str], str | None] = lambda _n: None,
                 progress: Callable[[str], None] | None = None):
        self.client = client
        self.settings = settings
        self.queries = queries
        self.category_of = category_of
        self.progress = progress or (lambda _s: None)
        self.rng = random.Random(settings.seed)
        self.stop = threading.Event()
        self.current: ModelResult | None = None  # kept for partial results on Ctrl-C

    def _options(self) -> dict[str, Any] | None:
        return {"seed": self.settings.seed} if self.settings.seed is not None else None

    def chat(self, model: str, query: probes.Query, prompt: str, *, kind: str = "chat",
             warmup: bool = False, cold: bool = False, concurrency: int = 1,
             images: list[str] | None = None, tools: list[dict] | None = None,
             tool: dict[str, Any] | None = None) -> Sample:
        sample = Sample(model=model, kind=kind, query_id=query.id, prompt=prompt,
                        warmup=warmup, cold=cold, concurrency=concurrency)
        message: dict[str, Any] = {"role": "user", "content": prompt}
        if images:
            message["images"] = images
        try:
            result = self.client.chat(model, [message], timeout=self.settings.timeout,
                                      keep_alive=self.settings.keep_alive,
                                      options=self._options(), tools=tools)
        except MiradorError as exc:
            sample.error_kind, sample.error = error_kind(exc), str(exc)[:300]
            return sample
        fill_from_stream(sample, result)
        if tool is not None:
            q = scoring.score_tool_calls(result.tool_calls, tool)
            sample.answer = json.dumps(result.tool_calls)[:400] if result.tool_calls else (
                result.text)
            if not result.tool_calls and not result.text.strip():
                sample.error_kind = "empty_answer"
        else:
            q = scoring.score_answer(result.text, list(query.checks))
            if not result.text.strip():
                sample.error_kind = "empty_answer"
        if sample.error_kind is None and sample.done_reason == "length":
            sample.error_kind = "truncated"
        if self.settings.judge_model and tool is None and result.text.strip() and not warmup:
            judge, reason = self._judge(prompt, result.text)
            q = scoring.blend(q, judge, reason, self.settings.judge_weight)
        sample.quality = q.score
        sample.quality_detail = q.to_dict()
        sample.ok = sample.error_kind is None
        sample.answer = sample.answer[:600]
        return sample

    def _judge(self, question: str, answer: str) -> tuple[float | None, str]:
        try:
            reply = self.client.chat(self.settings.judge_model,
                                     scoring.judge_request(question, answer), stream=False,
                                     format="json", options={"temperature": 0},
                                     timeout=self.settings.timeout)
        except MiradorError as exc:
            return None, f"judge failed: {str(exc)[:120]}"
        return scoring.parse_judge(reply.text)

    def embed(self, model: str, item: dict[str, str], *, warmup: bool = False,
              cold: bool = False) -> Sample:
        texts = [item["text"], item["paraphrase"], item["unrelated"]]
        sample = Sample(model=model, kind="embedding", query_id=item.get("id", "embedding"),
                        prompt=item["text"], warmup=warmup, cold=cold)
        started = time.perf_counter()
        try:
            reply = self.client.embed(model, texts, timeout=self.settings.timeout,
                                      keep_alive=self.settings.keep_alive)
        except MiradorError as exc:
            sample.error_kind, sample.error = error_kind(exc), str(exc)[:300]
            return sample
        sample.latency_ms = sample.ttft_ms = (time.perf_counter() - started) * 1000
        sample.load_ms = _ms(reply.get("load_duration"))
        sample.total_ms = _ms(reply.get("total_duration"))
        sample.prompt_eval_count = reply.get("prompt_eval_count")
        vectors = reply.get("embeddings") or []
        if len(vectors) != 3:
            sample.error_kind = "empty_answer"
            sample.error = f"{len(vectors)} vectors for 3 inputs"
            return sample
        q = scoring.score_embeddings(vectors)
        sample.quality, sample.quality_detail = q.score, q.to_dict()
        sample.answer = f"{len(vectors[0])}-dimensional vectors"
        sample.ok = True
        return sample

    # -- a whole model ----------------------------------------------------------------------

    def measure(self, name: str) -> ModelResult:
        res = ModelResult(name=name, category=self.category_of(name))
        self.current = res
        try:
            info = self.client.show(name)
        except ModelNotFound as exc:
            res.error = f"not on the server ({exc.server_message})"
            return res
        except OllamaUnreachable:
            raise
        except OllamaError as exc:
            res.error = str(exc)[:300]
            return res
        res.capabilities = list(info.get("capabilities") or [])
        caps = res.capabilities
        res.kind = "embedding" if "embedding" in caps and "completion" not in caps else (
            "completion")
        loaded = self._loaded(name)
        if self.settings.cold and loaded:
            try:
                self.client.unload(name)
                loaded = False
            except OllamaError as exc:
                res.error = f"could not unload for a cold start: {exc}"
        if res.kind == "embedding":
            self._measure_embedding(res, loaded)
        else:
            self._measure_chat(res, loaded)
        for m in self.client.ps():
            if name_key(m.get("name") or "") == name_key(name):
                res.size, res.size_vram = m.get("size"), m.get("size_vram")
                res.context_length = m.get("context_length")
                if res.size is not None and res.size_vram is not None:
                    res.processor = processor_text(res.size, res.size_vram)
                res.digest = m.get("digest")
        if res.digest is None:
            res.digest = next((t.get("digest") for t in self.client.tags()
                               if name_key(t.get("name") or "") == name_key(name)), None)
        return res

    def _loaded(self, name: str) -> bool:
        return any(name_key(m.get("name") or "") == name_key(name) for m in self.client.ps())

    def _measure_chat(self, res: ModelResult, loaded: bool) -> None:
        s = self.settings
        qs = self.queries.for_category(res.category)
        if not qs:
            raise ConfigError(f"no test queries for category {res.category!r} nor generic")
        total = s.warmup + s.requests
        plan = [(i, qs[i % len(qs)], probes.vary(qs[i % len(qs)].prompt, i, self.rng))
                for i in range(total)]
        cold_pending = not loaded
        for _, q, prompt in plan[: s.warmup]:
            if self.stop.is_set():
                return
            res.samples.append(self.chat(res.name, q, prompt, warmup=True, cold=cold_pending))
            cold_pending = False
            self.progress(res.name)
        measured = plan[s.warmup:]

        def one(item, cold: bool = False) -> Sample:
            _, q, prompt = item
            if self.stop.is_set():
                return Sample(res.name, "chat", q.id, prompt, error_kind="interrupted")
            sample = self.chat(res.name, q, prompt, cold=cold, concurrency=s.concurrency)
            self.progress(res.name)
            return sample

        if cold_pending and measured:
            res.samples.append(one(measured[0], cold=True))
            measured = measured[1:]
        if s.concurrency <= 1:
            for item in measured:
                res.samples.append(one(item))
        else:
            with ThreadPoolExecutor(max_workers=s.concurrency) as pool:
                res.samples.extend(pool.map(one, measured))
        res.samples = [x for x in res.samples if x.error_kind != "interrupted"]
        caps = res.capabilities
        if "vision" in caps and self.queries.vision and not self.stop.is_set():
            v = self.queries.vision
            q = probes.Query("vision", v["prompt"], tuple(v.get("checks") or ()))
            res.samples.append(self.chat(res.name, q, v["prompt"], kind="vision",
                                         images=[probes.probe_image_b64()]))
            self.progress(res.name)
        if "tools" in caps and self.queries.tools and not self.stop.is_set():
            t = self.queries.tools
            q = probes.Query("tools", t["prompt"])
            res.samples.append(self.chat(res.name, q, t["prompt"], kind="tools",
                                         tools=[t["tool"]], tool=t["tool"]))
            self.progress(res.name)
        for level in s.sweep:
            if self.stop.is_set():
                break
            res.sweep.append(self.sweep_level(res.name, qs, level))

    def _measure_embedding(self, res: ModelResult, loaded: bool) -> None:
        s = self.settings
        items = self.queries.embedding or [{"id": "embedding", "text": "hello world",
                                            "paraphrase": "hello, world",
                                            "unrelated": "a horse race in May"}]
        cold_pending = not loaded
        for i in range(s.warmup + s.requests):
            if self.stop.is_set():
                return
            sample = self.embed(res.name, items[i % len(items)], warmup=i < s.warmup,
                                cold=cold_pending)
            cold_pending = False
            res.samples.append(sample)
            self.progress(res.name)

    def sweep_level(self, name: str, qs: list[probes.Query], level: int) -> dict[str, Any]:
        """Throughput and latency with `level` requests in flight at once."""
        count = max(self.settings.requests, 2 * level)
        plan = [(qs[i % len(qs)], probes.vary(qs[i % len(qs)].prompt, 1000 + i, self.rng))
                for i in range(count)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=level) as pool:
            samples = list(pool.map(lambda item: self.chat(name, item[0], item[1],
                                                           kind="sweep", concurrency=level),
                                    plan))
        wall = time.perf_counter() - started
        ok = [x for x in samples if x.ok]
        tokens = sum(x.eval_count or 0 for x in ok)
        return {"concurrency": level, "requests": count, "successes": len(ok),
                "wall_s": round(wall, 3), "throughput_rps": round(len(ok) / wall, 3),
                "tokens_per_s": round(tokens / wall, 2),
                "latency_ms": stats([x.latency_ms for x in ok], ("p50", "p95")),
                "ttft_ms": stats([x.ttft_ms for x in ok], ("p50", "p95")),
                "http_503": sum(x.error_kind == "http_503" for x in samples),
                "errors": dict(Counter(x.error_kind for x in samples if x.error_kind))}


# ---------------------------------------------------------------------------------------
# Summaries

def summarize(res: ModelResult) -> dict[str, Any]:
    measured = [x for x in res.samples if not x.warmup]
    main = [x for x in measured if x.kind in ("chat", "embedding")]
    warm = [x for x in main if x.ok and not x.cold] or [x for x in main if x.ok]
    cold = next((x for x in res.samples if x.cold), None)
    scored = [x.quality for x in measured if x.ok and x.quality is not None]
    errors = Counter(x.error_kind for x in measured if x.error_kind)
    thinking = [x for x in measured if x.thinking_chars]
    return {
        "name": res.name, "kind": res.kind, "category": res.category,
        "capabilities": res.capabilities, "digest": res.digest, "error": res.error,
        "requests": len(measured), "successes": sum(x.ok for x in measured),
        "success_rate": round(sum(x.ok for x in measured) / len(measured), 4)
        if measured else 0.0,
        "latency_ms": stats([x.latency_ms for x in warm]),
        "ttft_ms": stats([x.ttft_ms for x in warm], ("mean", "p50", "p95")),
        "decode_tokens_per_s": stats([x.decode_tps for x in warm], ("mean", "p50")),
        "prefill_tokens_per_s": stats([x.prefill_tps for x in warm], ("mean",)),
        "chunk_gap_ms": stats([x.gap_mean_ms for x in warm], ("mean", "max")),
        "load_ms": round(cold.load_ms, 3) if cold and cold.load_ms is not None else None,
        "cold_latency_ms": round(cold.latency_ms, 3) if cold and cold.latency_ms else None,
        "quality": stats(scored, ("mean", "min")),
        "errors": dict(errors),
        "truncated": errors.get("truncated", 0),
        "thinking": {"requests": len(thinking),
                     "mean_chars": round(statistics.fmean(x.thinking_chars for x in thinking))
                     if thinking else 0},
        "processor": res.processor, "size": res.size, "size_vram": res.size_vram,
        "context_length": res.context_length, "sweep": res.sweep,
    }


def overall(models: list[dict[str, Any]], samples: list[Sample]) -> dict[str, Any]:
    measured = [x for x in samples if not x.warmup]
    warm_chat = [x.latency_ms for x in measured
                 if x.ok and not x.cold and x.kind == "chat" and x.latency_ms is not None]
    if not warm_chat:
        warm_chat = [x.latency_ms for x in measured if x.ok and x.latency_ms is not None]
    scored = [x.quality for x in measured if x.ok and x.quality is not None]
    return {
        "requests": len(measured),
        "success_rate": round(sum(x.ok for x in measured) / len(measured), 4)
        if measured else 0.0,
        "avg_response_s": round(statistics.fmean(warm_chat) / 1000, 4) if warm_chat else None,
        "quality_mean": round(statistics.fmean(scored), 4) if scored else None,
        "models": len(models),
        "models_not_measured": [m["name"] for m in models if m["error"]],
    }


def verdict(ov: dict[str, Any], thresholds) -> dict[str, Any]:
    checks = {
        "success_rate": (ov["success_rate"] is not None
                         and ov["success_rate"] >= thresholds.success_rate),
        "avg_response_s": (ov["avg_response_s"] is not None
                           and ov["avg_response_s"] < thresholds.avg_response_s),
        "quality": ov["quality_mean"] is not None and ov["quality_mean"] > thresholds.quality,
    }
    return {"passed": all(checks.values()), "checks": checks,
            "thresholds": {"success_rate": thresholds.success_rate,
                           "avg_response_s": thresholds.avg_response_s,
                           "quality": thresholds.quality}}


def knee(sweep: list[dict[str, Any]]) -> int | None:
    """The concurrency after which throughput stops growing while latency does."""
    for prev, cur in zip(sweep, sweep[1:], strict=False):
        gain = cur["throughput_rps"] / prev["throughput_rps"] if prev["throughput_rps"] else 0
        p50_prev = (prev["latency_ms"] or {}).get("p50") or 0
        p50_cur = (cur["latency_ms"] or {}).get("p50") or 0
        if gain < 1.15 and p50_prev and p50_cur > 1.3 * p50_prev:
            return prev["concurrency"]
    return None


# ---------------------------------------------------------------------------------------
# Baselines

def load_results(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{p}: not a readable JSON results file ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ConfigError(f"{p}: not a Mirador performance results file "
                          f"(schema {data.get('schema') if isinstance(data, dict) else None!r},"
                          f" expected {SCHEMA!r})")
    return data


def compare_baseline(current: list[dict[str, Any]], baseline: dict[str, Any], *,
                     latency_pct: float, quality_drop: float) -> list[dict[str, Any]]:
    base = {name_key(m["name"]): m for m in baseline.get("models", [])}
    out = []
    for m in current:
        b = base.get(name_key(m["name"]))
        if b is None:
            out.append({"name": m["name"], "in_baseline": False})
            continue
        lat_now, lat_then = m["latency_ms"].get("mean"), (b.get("latency_ms") or {}).get("mean")
        q_now, q_then = m["quality"].get("mean"), (b.get("quality") or {}).get("mean")
        d_now = m["decode_tokens_per_s"].get("mean")
        d_then = (b.get("decode_tokens_per_s") or {}).get("mean")
        lat_delta = (lat_now - lat_then) / lat_then * 100 if lat_now and lat_then else None
        q_delta = q_now - q_then if q_now is not None and q_then is not None else None
        reasons = []
        if lat_delta is not None and lat_delta > latency_pct:
            reasons.append(f"latency +{lat_delta:.0f}% (> {latency_pct:g}%)")
        if q_delta is not None and -q_delta > quality_drop:
            reasons.append(f"quality {q_delta:+.2f} (drop > {quality_drop:g})")
        sr_delta = m["success_rate"] - (b.get("success_rate") or 0)
        if sr_delta < -0.1:
            reasons.append(f"success rate {sr_delta:+.0%}")
        out.append({"name": m["name"], "in_baseline": True,
                    "latency_mean_ms": [lat_then, lat_now],
                    "latency_delta_pct": None if lat_delta is None else round(lat_delta, 1),
                    "quality_mean": [q_then, q_now],
                    "quality_delta": None if q_delta is None else round(q_delta, 4),
                    "decode_tps_mean": [d_then, d_now],
                    "success_rate": [b.get("success_rate"), m["success_rate"]],
                    "regression": bool(reasons), "reasons": reasons})
    return out


def results_document(*, host: str, settings: RunSettings, models: list[dict[str, Any]],
                     samples: list[Sample], ov: dict[str, Any], verdict_: dict[str, Any],
                     partial: bool, baseline: list[dict[str, Any]] | None,
                     baseline_file: str | None, server_version: str | None) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host, "server_version": server_version, "partial": partial,
        "settings": {"requests": settings.requests, "warmup": settings.warmup,
                     "concurrency": settings.concurrency, "timeout_s": settings.timeout,
                     "keep_alive": settings.keep_alive, "seed": settings.seed,
                     "cold": settings.cold, "judge_model": settings.judge_model,
                     "judge_weight": settings.judge_weight, "sweep": list(settings.sweep)},
        "models": models, "overall": ov, "verdict": verdict_,
        "baseline": {"file": baseline_file, "models": baseline} if baseline is not None
        else None,
        "units": {"times": "milliseconds", "rates": "tokens per second",
                  "client_side": ["latency_ms", "ttft_ms", "chunk_gap_ms"],
                  "server_side": ["load_ms", "decode_tokens_per_s", "prefill_tokens_per_s"]},
        "samples": [asdict(x) for x in samples],
    }

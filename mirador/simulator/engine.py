"""What a simulated model says and how long it takes: behaviour, answers, tokens, embeddings.

Nothing here does I/O: the server asks the engine for a plan (token pieces, timing rates,
faults) and then streams it on the wall clock, so the counters it reports are ground truth.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from mirador.names import parse_name
from mirador.simulator.scenario import Scenario
from mirador.simulator.store import SimModel

DEFAULT_BEHAVIOUR: dict[str, Any] = {
    "load_ms": 800, "prefill_tps": 300.0, "decode_tps": 30.0, "answers": [], "thinking": "",
    "tool_calls": None, "embedding_dim": None, "gpu_fraction": None, "faults": {},
    "pull_ms": 300,
}
TEMPLATE_OVERHEAD_TOKENS = 8
_TOKEN = re.compile(r"\S+\s*|\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_STOPWORDS = {"what", "which", "when", "where", "would", "could", "should", "about", "there",
              "their", "this", "that", "with", "from", "have", "your", "please", "give",
              "tell", "explain", "short", "briefly", "answer", "question", "into", "them"}


def tokens(text: str) -> list[str]:
    """Split text into the simulator's tokens: a word with its trailing blanks."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(re.findall(r"\S+", text))


def behaviour_for(model: SimModel, scenario: Scenario) -> dict[str, Any]:
    """Defaults, then each ancestor's behaviour root first, then the model's own entry."""
    b = {**DEFAULT_BEHAVIOUR, "faults": {}}
    by_key = {parse_name(name).key(): beh for name, beh in scenario.behaviours.items()}
    for key in model.lineage:
        if key.startswith("registry:"):
            src = scenario.registry.get(key.removeprefix("registry:"), {}).get("behaviour", {})
        else:
            src = by_key.get(key, {})
        for k, v in src.items():
            b[k] = {**b["faults"], **v} if k == "faults" else v
    return b


def pick_answer(behaviour: dict[str, Any], prompt: str, system: str) -> str:
    for ans in behaviour.get("answers") or []:
        if isinstance(ans, str):
            return ans
        pattern = ans.get("match")
        if not pattern or re.search(pattern, prompt):
            return ans["text"]
    return default_answer(prompt, system)


def default_answer(prompt: str, system: str) -> str:
    """A deterministic, on-topic answer built from the prompt's own key words."""
    words: list[str] = []
    for w in _WORD.findall(prompt):
        if w.lower() not in _STOPWORDS and w.lower() not in (x.lower() for x in words):
            words.append(w)
    topic = ", ".join(words[:4]) or "your request"
    role = ""
    m = re.search(r"[Yy]ou are (an? [^.\n]{3,80}?)(?:[.\n]|$)", system)
    if m:
        role = f" As {m.group(1).strip()},"
    return (f"Here is a clear answer about {topic}.{role} First, focus on the key facts "
            f"about {words[0] if words else 'the request'}. Second, weigh the options "
            "against your goals and constraints. Third, take one concrete next step today "
            "and review the result next week.")


def json_answer(text: str, fmt: Any) -> str:
    if isinstance(fmt, dict):
        return json.dumps(_fill_schema(fmt, text))
    try:
        json.loads(text)
        return text
    except ValueError:
        return json.dumps({"answer": text})


def _fill_schema(schema: dict[str, Any], text: str) -> Any:
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: _fill_schema(v if isinstance(v, dict) else {}, text)
                for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_fill_schema(schema.get("items") or {"type": "string"}, text)]
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    return " ".join(text.split()[:6])


def tool_calls_for(behaviour: dict[str, Any], tools: list[dict[str, Any]]) -> list[dict]:
    """The configured tool calls, or one well-formed call of the first tool offered."""
    configured = behaviour.get("tool_calls")
    calls = []
    if configured:
        for i, c in enumerate(configured):
            calls.append({"id": f"call_{i}", "function": {
                "index": i, "name": c.get("name", ""), "arguments": c.get("arguments", {})}})
        return calls
    fn = (tools[0] or {}).get("function", {}) if tools else {}
    params = fn.get("parameters") or {}
    args = {}
    for key in params.get("required") or list(params.get("properties") or {})[:1]:
        prop = (params.get("properties") or {}).get(key, {})
        args[key] = _fill_schema(prop if isinstance(prop, dict) else {}, "Louisville")
    return [{"id": "call_0", "function": {"index": 0, "name": fn.get("name", ""),
                                          "arguments": args}}]


def embedding(text: str, dim: int, *, normalise: bool = True) -> list[float]:
    """A deterministic bag-of-words vector: texts sharing words point the same way."""
    vec = [0.0] * dim
    for word in re.findall(r"[a-z0-9]+", text.lower()) or [text]:
        stem = word[:6]
        h = hashlib.sha256(stem.encode()).digest()
        for j in range(4):
            idx = int.from_bytes(h[4 * j: 4 * j + 4], "little") % dim
            vec[idx] += 1.0 if h[16 + j] % 2 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    scale = 1.0 / norm if normalise else 3.0 / norm
    return [round(v * scale, 7) for v in vec]


@dataclass
class InferencePlan:
    """Everything the server needs to stream one answer."""

    thinking_tokens: list[str] = field(default_factory=list)
    answer_tokens: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    done_reason: str = "stop"
    error_after: int | None = None  # stream an error line after this many tokens
    error_message: str = ""
    raw: bool = False

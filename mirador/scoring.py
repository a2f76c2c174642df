"""Answer quality, 0–1: deterministic checks per test query, weighted; optional LLM judge.

Every check returns a score in [0, 1] and a short reason, so a report can say *why* an
answer scored low. The answer's quality is the weighted mean of its checks.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

CHECK_KINDS = ("contains_any", "contains_all", "regex", "not_contains", "min_words",
               "max_words", "json", "json_schema")


@dataclass
class CheckResult:
    name: str
    score: float
    weight: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "score": round(self.score, 4), "weight": self.weight,
                "detail": self.detail}


@dataclass
class Quality:
    score: float | None
    checks: list[CheckResult] = field(default_factory=list)
    judge_score: float | None = None
    judge_reason: str = ""
    deterministic: float | None = None

    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.score < 1]

    def to_dict(self) -> dict[str, Any]:
        return {"score": None if self.score is None else round(self.score, 4),
                "deterministic": None if self.deterministic is None
                else round(self.deterministic, 4),
                "judge": self.judge_score, "judge_reason": self.judge_reason,
                "checks": [c.to_dict() for c in self.checks]}


def _has(text: str, term: str) -> bool:
    return term.lower() in text.lower()


def extract_json(answer: str) -> Any:
    """The JSON in an answer: the whole text, or a ```json fenced block; raise ValueError."""
    text = answer.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fence:
        text = fence.group(1).strip()
    return json.loads(text)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "number": (int, float),
    "integer": int, "null": type(None)}


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """A small JSON Schema subset: type, required, properties, items, enum, min/max."""
    errors: list[str] = []
    kind = schema.get("type")
    if kind:
        kinds = kind if isinstance(kind, list) else [kind]
        ok = any(isinstance(value, _TYPES.get(k, object)) and not (
            k in ("number", "integer") and isinstance(value, bool)) for k in kinds)
        if not ok:
            return [f"{path}: expected {kind}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        errors += [f"{path}: missing {key!r}" for key in schema.get("required", [])
                   if key not in value]
        for key, sub in (schema.get("properties") or {}).items():
            if key in value and isinstance(sub, dict):
                errors += schema_errors(value[key], sub, f"{path}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} > {schema['maximum']}")
    return errors


def run_check(check: dict[str, Any], answer: str) -> CheckResult:
    weight = float(check.get("weight", 1))
    words = len(answer.split())
    if "contains_any" in check:
        terms = check["contains_any"]
        hit = next((t for t in terms if _has(answer, t)), None)
        return CheckResult("contains_any", 1.0 if hit else 0.0, weight,
                           f"found {hit!r}" if hit else f"none of {terms}")
    if "contains_all" in check:
        terms = check["contains_all"]
        missing = [t for t in terms if not _has(answer, t)]
        score = (len(terms) - len(missing)) / len(terms) if terms else 1.0
        return CheckResult("contains_all", score, weight,
                           f"missing {missing}" if missing else "all present")
    if "regex" in check:
        ok = re.search(check["regex"], answer) is not None
        return CheckResult("regex", float(ok), weight,
                           f"{'matches' if ok else 'no match for'} {check['regex']!r}")
    if "not_contains" in check:
        bad = [t for t in check["not_contains"] if _has(answer, t)]
        return CheckResult("not_contains", 0.0 if bad else 1.0, weight,
                           f"contains {bad}" if bad else "clean")
    if "min_words" in check or "max_words" in check:
        lo, hi = check.get("min_words", 0), check.get("max_words", math.inf)
        ok = lo <= words <= hi
        return CheckResult("length", float(ok), weight,
                           f"{words} words ({'within' if ok else 'outside'} {lo}–{hi})")
    if "json_schema" in check:
        try:
            value = extract_json(answer)
        except ValueError as exc:
            return CheckResult("json_schema", 0.0, weight, f"not JSON: {exc}")
        errors = schema_errors(value, check["json_schema"])
        return CheckResult("json_schema", 0.0 if errors else 1.0, weight,
                           "; ".join(errors[:3]) or "valid")
    if check.get("json"):
        try:
            extract_json(answer)
            return CheckResult("json", 1.0, weight, "valid JSON")
        except ValueError as exc:
            return CheckResult("json", 0.0, weight, f"not JSON: {exc}")
    raise ValueError(f"unknown check {sorted(check)}")


def weighted(checks: list[CheckResult]) -> float | None:
    total = sum(c.weight for c in checks)
    return None if total == 0 else sum(c.score * c.weight for c in checks) / total


def score_answer(answer: str, checks: list[dict[str, Any]]) -> Quality:
    results = [run_check(c, answer) for c in checks]
    value = weighted(results)
    return Quality(score=value, checks=results, deterministic=value)


def score_tool_calls(calls: list[dict[str, Any]], tool: dict[str, Any]) -> Quality:
    """A tool call that names the offered tool with arguments that fit its parameters."""
    fn = tool.get("function", {})
    results = []
    if not calls:
        results.append(CheckResult("tool_call", 0.0, 2, "no tool call"))
        return Quality(weighted(results), results, deterministic=weighted(results))
    call = (calls[0] or {}).get("function", {})
    name_ok = call.get("name") == fn.get("name")
    results.append(CheckResult("tool_name", float(name_ok), 1,
                               f"called {call.get('name')!r}"))
    args = call.get("arguments")
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            args = None
    if not isinstance(args, dict):
        results.append(CheckResult("tool_arguments", 0.0, 2, "arguments are not an object"))
    else:
        errors = schema_errors(args, fn.get("parameters") or {"type": "object"})
        results.append(CheckResult("tool_arguments", 0.0 if errors else 1.0, 2,
                                   "; ".join(errors[:3]) or "valid"))
    value = weighted(results)
    return Quality(value, results, deterministic=value)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(y * y for y in b)) or 1.0
    return dot / (na * nb)


def score_embeddings(vectors: list[list[float]], expected_dim: int | None = None) -> Quality:
    """vectors = [text, paraphrase, unrelated]."""
    results = []
    dims = {len(v) for v in vectors}
    dim = dims.pop() if len(dims) == 1 else None
    dim_ok = dim is not None and dim > 0 and (expected_dim is None or dim == expected_dim)
    results.append(CheckResult("dimension", float(dim_ok), 1,
                               f"{dim}" + (f" (expected {expected_dim})" if expected_dim
                                           else "")))
    norms = [math.sqrt(sum(x * x for x in v)) for v in vectors]
    unit = all(abs(n - 1) < 0.01 for n in norms)
    results.append(CheckResult("unit_norm", float(unit), 1,
                               "norms " + ", ".join(f"{n:.3f}" for n in norms)))
    if len(vectors) == 3 and dim:
        near, far = cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])
        results.append(CheckResult("paraphrase_closer", float(near > far), 2,
                                   f"paraphrase {near:.3f} vs unrelated {far:.3f}"))
    value = weighted(results)
    return Quality(value, results, deterministic=value)


JUDGE_PROMPT = """You grade answers. Question:
<<<{question}>>>
Answer:
<<<{answer}>>>
Rate how correct, relevant and useful the answer is, from 0 (useless) to 10 (excellent).
Reply with JSON only: {{"score": <0-10>, "reason": "<one sentence>"}}"""


def judge_request(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": JUDGE_PROMPT.format(question=question[:2000],
                                                           answer=answer[:4000])}]


def parse_judge(reply: str) -> tuple[float | None, str]:
    """(score in 0–1, reason) from the judge's reply, or (None, why not)."""
    try:
        data = extract_json(reply)
        score = float(data["score"])
    except (ValueError, KeyError, TypeError):
        m = re.search(r"\b(10|[0-9](?:\.[0-9]+)?)\s*(?:/\s*10)?\b", reply)
        if not m:
            return None, f"unparseable judge reply: {reply[:80]!r}"
        return max(0.0, min(1.0, float(m.group(1)) / 10)), "score read from free text"
    return max(0.0, min(1.0, score / 10)), str(data.get("reason", ""))[:200]


def blend(q: Quality, judge: float | None, reason: str, weight: float) -> Quality:
    q.judge_score, q.judge_reason = judge, reason
    if judge is not None and q.deterministic is not None:
        q.score = (1 - weight) * q.deterministic + weight * judge
    elif judge is not None:
        q.score = judge
    return q

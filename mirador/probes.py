"""Capability-aware test requests: which queries a model gets, and how they vary.

Queries live in YAML (mirador/data/test_queries.yaml, plus a user file whose categories
replace the built-in ones by name). Chat/completion models get their category's queries;
embedding models an embedding check (never generate: it fails on them); vision models also
an image prompt; tools models also a tool-call prompt.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mirador.errors import ConfigError
from mirador.scoring import CHECK_KINDS
from mirador.yamlfile import check_keys, expect_list, expect_mapping, expect_str, load_yaml

CHECK_KEYS = set(CHECK_KINDS) | {"weight"}


@dataclass(frozen=True)
class Query:
    id: str
    prompt: str
    checks: tuple[dict[str, Any], ...] = ()


@dataclass
class QuerySet:
    categories: dict[str, list[Query]] = field(default_factory=dict)
    embedding: list[dict[str, str]] = field(default_factory=list)
    vision: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, Any] = field(default_factory=dict)

    def for_category(self, category: str | None) -> list[Query]:
        return self.categories.get(category or "") or self.categories.get("generic", [])


def _queries(raw: Any, where: str) -> list[Query]:
    out = []
    for i, item in enumerate(expect_list(raw, where)):
        q = expect_mapping(item, f"{where}[{i}]")
        check_keys(q, {"id", "prompt", "checks"}, f"{where}[{i}]")
        qid = expect_str(q.get("id"), f"{where}[{i}].id")
        checks = []
        for j, c in enumerate(expect_list(q.get("checks"), f"{where}.{qid}.checks")):
            check = dict(expect_mapping(c, f"{where}.{qid}.checks[{j}]"))
            check_keys(check, CHECK_KEYS, f"{where}.{qid}.checks[{j}]")
            if not set(check) - {"weight"}:
                raise ConfigError(f"{where}.{qid}.checks[{j}]: no check given")
            checks.append(check)
        out.append(Query(qid, expect_str(q.get("prompt"), f"{where}.{qid}.prompt"),
                         tuple(checks)))
    return out


def parse_queries(data: Any, source: str, into: QuerySet | None = None) -> QuerySet:
    top = expect_mapping(data, source)
    check_keys(top, {"categories", "embedding", "vision", "tools", "refusals"}, source)
    qs = into or QuerySet()
    for name, raw in expect_mapping(top.get("categories"), f"{source}: categories").items():
        qs.categories[str(name)] = _queries(raw, f"{source}: categories.{name}")
    if "embedding" in top:
        qs.embedding = []
        for i, item in enumerate(expect_list(top["embedding"], f"{source}: embedding")):
            e = dict(expect_mapping(item, f"{source}: embedding[{i}]"))
            check_keys(e, {"id", "text", "paraphrase", "unrelated"},
                       f"{source}: embedding[{i}]")
            for key in ("text", "paraphrase", "unrelated"):
                expect_str(e.get(key), f"{source}: embedding[{i}].{key}")
            qs.embedding.append(e)
    if "vision" in top:
        qs.vision = dict(expect_mapping(top["vision"], f"{source}: vision"))
    if "tools" in top:
        qs.tools = dict(expect_mapping(top["tools"], f"{source}: tools"))
    return qs


def load_queries(user_file: str | Path | None = None) -> QuerySet:
    import yaml

    text = resources.files("mirador.data").joinpath("test_queries.yaml").read_text("utf-8")
    qs = parse_queries(yaml.safe_load(text), "built-in test_queries.yaml")
    if user_file is not None:
        parse_queries(load_yaml(user_file), str(user_file), into=qs)
    return qs


def probe_image_b64() -> str:
    data = resources.files("mirador.data").joinpath("probe.png").read_bytes()
    return base64.b64encode(data).decode("ascii")


def vary(prompt: str, index: int, rng: random.Random) -> str:
    """A different first line per repetition, so the prompt cache cannot flatter prefill."""
    return f"(ref {index + 1}-{rng.randrange(16**6):06x}) {prompt}"

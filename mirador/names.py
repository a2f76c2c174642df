"""Ollama model names: parse, validate, display and compare them the way Ollama does.

Grammar and rules follow ollama_facts.md §5 (`types/model/name.go`): a name is
`[host/][namespace/]model[:tag]`, defaults `registry.ollama.ai`, `library`, `latest`;
lookups are case-insensitive; `/api/tags` shows the shortest display form, tag included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

# First character, later characters, maximum length, per part (facts §5 table).
_PART_RULES = {
    "host": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*\Z"), 350),
    "namespace": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z"), 80),
    "model": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z"), 80),
    "tag": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z"), 80),
}


@dataclass(frozen=True)
class ModelName:
    """A parsed model name; empty parts mean "not written" and take the defaults."""

    host: str
    namespace: str
    model: str
    tag: str

    @property
    def is_valid(self) -> bool:
        parts = {"host": self.host_or_default, "namespace": self.namespace_or_default,
                 "model": self.model, "tag": self.tag_or_default}
        for part, value in parts.items():
            pattern, limit = _PART_RULES[part]
            if not value or len(value) > limit or not pattern.match(value):
                return False
        return True

    @property
    def host_or_default(self) -> str:
        return self.host or DEFAULT_HOST

    @property
    def namespace_or_default(self) -> str:
        return self.namespace or DEFAULT_NAMESPACE

    @property
    def tag_or_default(self) -> str:
        return self.tag or DEFAULT_TAG

    def display(self) -> str:
        """The shortest display form, as `/api/tags` shows it (`llama3.2:latest`)."""
        host, ns = self.host_or_default, self.namespace_or_default
        tail = f"{self.model}:{self.tag_or_default}"
        if host.lower() == DEFAULT_HOST:
            return tail if ns.lower() == DEFAULT_NAMESPACE else f"{ns}/{tail}"
        return f"{host}/{ns}/{tail}"

    def key(self) -> str:
        """The comparison key: display form, lower-cased (lookups ignore case)."""
        return self.display().lower()


def parse_name(text: str) -> ModelName:
    """Split a name into parts without validating it (see `ModelName.is_valid`)."""
    s = text
    for scheme in ("https://", "http://"):
        if s.startswith(scheme):
            s = s[len(scheme):]
            break
    s = s.split("@", 1)[0]  # a trailing @sha256:… digest is not part of the name
    tag = ""
    colon, slash = s.rfind(":"), s.rfind("/")
    if colon > slash:
        s, tag = s[:colon], s[colon + 1:]
        if tag == "":
            tag = "\0"  # "model:" has an empty tag: invalid, not defaulted
    parts = s.split("/")
    host = namespace = ""
    if len(parts) == 1:
        model = parts[0]
    elif len(parts) == 2:
        namespace, model = parts
    else:
        host, namespace, model = "/".join(parts[:-2]), parts[-2], parts[-1]
    return ModelName(host=host, namespace=namespace, model=model, tag=tag)


def is_valid_name(text: str) -> bool:
    return bool(text) and parse_name(text).is_valid


def display_name(text: str) -> str:
    """`llama3.2` → `llama3.2:latest`; invalid names come back unchanged."""
    name = parse_name(text)
    return name.display() if name.is_valid else text


def name_key(text: str) -> str:
    """The key two names share when Ollama treats them as the same model."""
    name = parse_name(text)
    return name.key() if name.is_valid else text.lower()

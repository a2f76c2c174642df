"""Scenario files: what a simulated Ollama server has, and how its models behave.

A scenario is YAML with four sections (all optional):

    server:        version, gpu_memory, num_parallel, max_loaded_models, keep_alive,
                   max_queue, host_check, faults (server-wide: create_fail_on,
                   broken_after_create_on, show_latency_ms)
    registry:      models `/api/pull` can fetch (and `create` FROM auto-pulls), with family,
                   size, capabilities, context length, template, parameters, behaviour
    models:        models already built at start: a registry name, or FROM + fields, or a
                   Modelfile path (parsed with Mirador's parser, relative to the scenario)
    behaviours:    per-model behaviour by name: load_ms, prefill_tps, decode_tps, answers,
                   thinking, tool_calls, embedding_dim, gpu_fraction, faults

A created model inherits its base's behaviour; `behaviours:` entries override by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirador.errors import ConfigError
from mirador.yamlfile import (
    check_keys,
    expect_list,
    expect_mapping,
    expect_number,
    expect_str,
    load_yaml,
    parse_size,
)

BEHAVIOUR_KEYS = {"load_ms", "prefill_tps", "decode_tps", "answers", "thinking",
                  "tool_calls", "embedding_dim", "gpu_fraction", "faults", "pull_ms"}
MODEL_FAULT_KEYS = {"http_500_every", "error_mid_stream", "hang", "hang_s", "max_inflight",
                    "show_latency_ms", "fail_first"}
SERVER_FAULT_KEYS = {"create_fail_on", "broken_after_create_on", "show_latency_ms"}
REGISTRY_KEYS = {"family", "families", "format", "parameter_size", "quantization_level", "size",
                 "capabilities", "context_length", "embedding_length", "template", "system",
                 "parameters", "license", "behaviour"}
MODEL_KEYS = {"name", "from", "modelfile", "template", "system", "parameters", "messages",
              "license", "modified_at"}
SERVER_KEYS = {"version", "gpu_memory", "num_parallel", "max_loaded_models", "keep_alive",
               "max_queue", "host_check", "faults", "default_context"}


@dataclass
class ServerSettings:
    version: str = "0.32.15"
    gpu_memory: int = 8 * 2**30
    num_parallel: int = 1
    max_loaded_models: int = 3
    keep_alive: str = "5m"
    max_queue: int = 512
    host_check: bool = True
    default_context: int = 4096
    faults: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scenario:
    server: ServerSettings = field(default_factory=ServerSettings)
    registry: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    behaviours: dict[str, dict[str, Any]] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)


DEFAULT_REGISTRY: dict[str, dict[str, Any]] = {
    "llama3.2": {
        "family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M",
        "size": 2019393189, "capabilities": ["completion", "tools"],
        "context_length": 131072, "embedding_length": 3072,
        "template": (
            "<|start_header_id|>system<|end_header_id|>\n\n{{ if .System }}{{ .System }}"
            "{{ end }}{{ if .Tools }}You have tools.{{ end }}<|eot_id|>{{ range .Messages }}"
            "<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>"
            "{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"),
        "parameters": {"stop": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]},
        "license": "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT (simulated excerpt)",
    },
    "nomic-embed-text": {
        "family": "nomic-bert", "parameter_size": "137M", "quantization_level": "F16",
        "size": 274302450, "capabilities": ["embedding"], "context_length": 2048,
        "embedding_length": 768, "template": "{{ .Prompt }}",
        "parameters": {"num_ctx": 8192},
        "behaviour": {"embedding_dim": 768, "load_ms": 300},
    },
    "qwen3": {
        "family": "qwen3", "parameter_size": "8.2B", "quantization_level": "Q4_K_M",
        "size": 5225387923, "capabilities": ["completion", "tools", "thinking"],
        "context_length": 40960, "embedding_length": 4096,
        "template": "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
                    "{{ if .Tools }}# Tools{{ end }}{{ range .Messages }}<|im_start|>"
                    "{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
        "parameters": {"temperature": 0.6, "top_k": 20, "top_p": 0.95,
                       "stop": ["<|im_start|>", "<|im_end|>"]},
        "behaviour": {"thinking": "Let me think about this step by step."},
    },
    "llava": {
        "family": "llama", "families": ["llama", "clip"], "parameter_size": "7B",
        "quantization_level": "Q4_0", "size": 4733363377,
        "capabilities": ["completion", "vision"], "context_length": 32768,
        "embedding_length": 4096, "template": "[INST] {{ if .System }}{{ .System }} {{ end }}"
                                              "{{ .Prompt }} [/INST]",
        "parameters": {"stop": ["[INST]", "[/INST]"]},
    },
}


def _check_behaviour(raw: Any, where: str) -> dict[str, Any]:
    b = dict(expect_mapping(raw, where))
    check_keys(b, BEHAVIOUR_KEYS, where)
    for key in ("load_ms", "prefill_tps", "decode_tps", "embedding_dim", "pull_ms",
                "gpu_fraction"):
        if key in b:
            expect_number(b[key], f"{where}.{key}", minimum=0)
    for key in ("prefill_tps", "decode_tps"):
        if key in b and b[key] <= 0:
            raise ConfigError(f"{where}.{key}: must be above 0")
    answers = expect_list(b.get("answers"), f"{where}.answers")
    for i, ans in enumerate(answers):
        if isinstance(ans, str):
            continue
        a = expect_mapping(ans, f"{where}.answers[{i}]")
        check_keys(a, {"match", "text"}, f"{where}.answers[{i}]")
        expect_str(a.get("text"), f"{where}.answers[{i}].text")
    faults = expect_mapping(b.get("faults"), f"{where}.faults")
    check_keys(faults, MODEL_FAULT_KEYS, f"{where}.faults")
    return b


def parse_scenario(data: Any, source: str = "<scenario>", base_dir: Path | None = None,
                   ) -> Scenario:
    top = expect_mapping(data, source)
    check_keys(top, {"server", "registry", "models", "behaviours"}, source)
    sc = Scenario(base_dir=base_dir or Path.cwd())
    srv = expect_mapping(top.get("server"), f"{source}: server")
    check_keys(srv, SERVER_KEYS, f"{source}: server")
    s = sc.server
    if "version" in srv:
        s.version = str(srv["version"])
    if "gpu_memory" in srv:
        s.gpu_memory = parse_size(srv["gpu_memory"], f"{source}: server.gpu_memory")
    for key in ("num_parallel", "max_loaded_models", "max_queue", "default_context"):
        if key in srv:
            setattr(s, key, int(expect_number(srv[key], f"{source}: server.{key}", minimum=1)))
    if "keep_alive" in srv:
        s.keep_alive = str(srv["keep_alive"])
    if "host_check" in srv:
        s.host_check = bool(srv["host_check"])
    s.faults = dict(expect_mapping(srv.get("faults"), f"{source}: server.faults"))
    check_keys(s.faults, SERVER_FAULT_KEYS, f"{source}: server.faults")

    sc.registry = {k: dict(v) for k, v in DEFAULT_REGISTRY.items()}
    for name, raw in expect_mapping(top.get("registry"), f"{source}: registry").items():
        entry = dict(expect_mapping(raw, f"{source}: registry.{name}"))
        check_keys(entry, REGISTRY_KEYS, f"{source}: registry.{name}")
        if "size" in entry:
            entry["size"] = parse_size(entry["size"], f"{source}: registry.{name}.size")
        if "behaviour" in entry:
            entry["behaviour"] = _check_behaviour(entry["behaviour"],
                                                  f"{source}: registry.{name}.behaviour")
        sc.registry[str(name)] = entry
    for i, raw in enumerate(expect_list(top.get("models"), f"{source}: models")):
        where = f"{source}: models[{i}]"
        entry = {"name": raw} if isinstance(raw, str) else dict(expect_mapping(raw, where))
        check_keys(entry, MODEL_KEYS, where)
        expect_str(entry.get("name"), f"{where}.name")
        sc.models.append(entry)
    for name, raw in expect_mapping(top.get("behaviours"), f"{source}: behaviours").items():
        sc.behaviours[str(name)] = _check_behaviour(raw, f"{source}: behaviours.{name}")
    return sc


def load_scenario(path: str | Path | None) -> Scenario:
    if path is None:
        return parse_scenario({})
    p = Path(path)
    return parse_scenario(load_yaml(p), str(p), p.resolve().parent)

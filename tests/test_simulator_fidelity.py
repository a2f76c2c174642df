"""The simulator against the official `ollama` Python client and the facts sheet.

The official client validates every reply with its pydantic types, so a round trip of
every endpoint without a ValidationError proves the shapes; the error texts and codes are
the ones ollama_facts.md lists for the pitfalls.
"""

from __future__ import annotations

import hashlib
import json
import time

import ollama
import pytest
import requests

FAST = {"load_ms": 10, "prefill_tps": 5000, "decode_tps": 2000}
SCENARIO = {
    "models": ["llama3.2", "nomic-embed-text", "qwen3", "llava"],
    "behaviours": {"llama3.2": FAST, "nomic-embed-text": FAST, "qwen3": FAST, "llava": FAST},
}


@pytest.fixture
def sim(simulator):
    return simulator(SCENARIO)


@pytest.fixture
def official(sim):
    return ollama.Client(host=sim.url, timeout=10)


def test_official_client_round_trips_every_endpoint(official, sim, tmp_path):
    listed = official.list()
    assert {m.model for m in listed.models} >= {"llama3.2:latest", "qwen3:latest"}
    assert all(len(m.digest) == 64 for m in listed.models)

    show = official.show("llama3.2")
    assert show.modelinfo["general.architecture"] == "llama"
    assert "tools" in show.capabilities and show.details.family == "llama"

    gen = official.generate("llama3.2", "Say hi")
    assert gen.done and gen.eval_count and isinstance(gen.eval_duration, int)
    chunks = list(official.generate("llama3.2", "Say hi", stream=True))
    assert chunks[-1].done and not chunks[0].done

    chat = official.chat("llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert chat.message.role == "assistant" and chat.message.content
    streamed = list(official.chat("qwen3", messages=[{"role": "user", "content": "hi"}],
                                  stream=True))
    assert any(c.message.thinking for c in streamed)

    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "weather for a city",
        "parameters": {"type": "object", "required": ["city"],
                       "properties": {"city": {"type": "string"}}}}}]
    tool_chat = official.chat("llama3.2", messages=[{"role": "user", "content": "weather?"}],
                              tools=tools)
    call = tool_chat.message.tool_calls[0]
    assert call.function.name == "get_weather" and "city" in call.function.arguments

    emb = official.embed("nomic-embed-text", input=["a", "b"])
    assert len(emb.embeddings) == 2
    assert abs(sum(x * x for x in emb.embeddings[0]) - 1.0) < 1e-3  # L2-normalised
    legacy = official.embeddings("nomic-embed-text", prompt="a")
    assert len(legacy.embedding) == 768

    official.generate("llama3.2", "", keep_alive="10m")  # load only
    ps = official.ps()
    assert ps.models and ps.models[0].size_vram is not None

    progress = list(official.pull("llama3.2", stream=True))
    assert progress[-1].status == "success"

    created = official.create("mine", from_="llama3.2", system="You are terse.",
                              parameters={"temperature": 0.1, "stop": ["END"]})
    assert created.status == "success"
    assert official.show("mine").parameters.count("stop") == 1  # stop replaced, not merged

    data = b"GGUF" + b"\0" * 128
    path = tmp_path / "tiny.gguf"
    path.write_bytes(data)
    digest = official.create_blob(path)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert official.create("from-file", files={"tiny.gguf": digest}).status == "success"

    assert official.copy("mine", "mine-copy").status == "success"
    assert official.delete("mine-copy").status == "success"


@pytest.mark.parametrize("call,status,text", [
    (lambda c: c.show("ghost"), 404, "model 'ghost' not found"),
    (lambda c: c.generate("ghost", "x"), 404, "model 'ghost' not found"),
    (lambda c: c.generate("nomic-embed-text", "x"), 400,
     '"nomic-embed-text" does not support generate'),
    (lambda c: c.chat("nomic-embed-text", messages=[{"role": "user", "content": "x"}]), 400,
     '"nomic-embed-text" does not support chat'),
    (lambda c: c.embeddings("ghost", prompt="x"), 404,
     'model "ghost" not found, try pulling it first'),
    (lambda c: c.copy("ghost", "x"), 404, 'model "ghost" not found'),
    (lambda c: c.delete("ghost"), 404, "model 'ghost' not found"),
    (lambda c: c.generate("llama3.2", "x", think=True), 400,
     '"llama3.2" does not support thinking'),
    (lambda c: c.generate("llama3.2", "x", keep_alive="3600"), 400,
     'time: missing unit in duration "3600"'),
    (lambda c: c.pull("not-in-registry"), 500, "pull model manifest: file does not exist"),
])
def test_error_texts_and_codes_match_the_facts_sheet(official, call, status, text):
    with pytest.raises(ollama.ResponseError) as err:
        call(official)
    assert err.value.status_code == status and err.value.error == text


def test_pitfall_texts_seen_through_raw_http(sim):
    post = lambda path, body: requests.post(sim.url + path, json=body, timeout=5)  # noqa: E731
    # old-style create against a 0.5.5+ server (pitfall 20)
    r = post("/api/create", {"model": "x", "modelfile": "FROM llama3.2", "stream": False})
    assert (r.status_code, r.json()) == (400, {
        "error": "neither 'from' or 'files' was specified"})
    # tools on a model whose template has no .Tools: fully qualified name (pitfall 4)
    r = post("/api/chat", {"model": "llava", "stream": False, "tools": [{"type": "function",
             "function": {"name": "f"}}], "messages": [{"role": "user", "content": "x"}]})
    assert r.json() == {"error": "registry.ollama.ai/library/llava:latest does not support "
                                 "tools"}
    # gin's own texts are plain text
    r = requests.get(sim.url + "/api/nothing", timeout=5)
    assert (r.status_code, r.text) == (404, "404 page not found")
    r = requests.get(sim.url + "/api/show", timeout=5)
    assert (r.status_code, r.text) == (405, "405 method not allowed")
    r = requests.post(sim.url + "/api/show", data=b"", timeout=5)
    assert r.json() == {"error": "missing request body"}
    r = requests.post(sim.url + "/api/show", data=b"x", timeout=5)
    assert r.json() == {"error": "invalid character 'x' looking for beginning of value"}
    # the host-header check answers 403 with an empty body (pitfall 13)
    r = requests.get(sim.url + "/api/tags", headers={"Host": "evil.example.com"}, timeout=5)
    assert (r.status_code, r.content) == (403, b"")


def test_old_server_takes_only_the_old_create_form(simulator):
    sim = simulator({**SCENARIO, "server": {"version": "0.5.4"}})
    r = requests.post(sim.url + "/api/create", json={"model": "x", "from": "llama3.2",
                                                      "stream": False}, timeout=5)
    assert r.json() == {"error": "path or Modelfile are required"}
    r = requests.post(sim.url + "/api/create", json={
        "model": "x", "modelfile": "FROM llama3.2\nSYSTEM hi", "stream": False}, timeout=5)
    assert r.json() == {"status": "success"}


def test_streams_are_ndjson_with_an_error_line_mid_stream(simulator):
    sim = simulator({"models": ["llama3.2"], "behaviours": {"llama3.2": {
        **FAST, "answers": ["a b c d e f"],
        "faults": {"error_mid_stream": {"every": 1, "after_tokens": 2}}}}})
    r = requests.post(sim.url + "/api/generate", json={"model": "llama3.2", "prompt": "x"},
                      stream=True, timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in r.iter_lines()]
    assert len(lines) == 3 and "error" in lines[-1]


def test_timing_ground_truth(simulator):
    """A 20-token answer at 20 tokens/s takes about a second and reports eval_duration 1e9."""
    sim = simulator({"models": ["llama3.2"], "behaviours": {"llama3.2": {
        "load_ms": 300, "prefill_tps": 1000, "decode_tps": 20,
        "answers": [" ".join(["tok"] * 20)]}}})
    client = ollama.Client(host=sim.url)
    started = time.perf_counter()
    reply = client.generate("llama3.2", "one two three")
    wall = time.perf_counter() - started
    assert reply.eval_count == 20
    assert abs(reply.eval_duration - 1e9) < 0.03e9
    assert abs(reply.load_duration - 0.3e9) < 0.05e9
    assert reply.prompt_eval_count == 3 + 8  # words + template overhead
    assert 1.25 < wall < 1.8
    warm = client.generate("llama3.2", "four five six")
    assert warm.load_duration < 0.02e9  # already loaded


def test_ps_reports_vram_split_and_keep_alive_expiry(simulator):
    sim = simulator({"server": {"gpu_memory": "1GiB"}, "models": ["llama3.2"],
                     "behaviours": {"llama3.2": FAST}})
    client = ollama.Client(host=sim.url)
    client.generate("llama3.2", "hi", keep_alive=0.5)
    (loaded,) = client.ps().models
    assert 0 < loaded.size_vram < loaded.size  # partly on the CPU
    assert loaded.context_length == 4096
    time.sleep(0.7)
    assert client.ps().models == []


def test_created_models_inherit_and_digests_follow_the_definition(official):
    official.create("a", from_="llama3.2", system="one")
    official.create("b", from_="llama3.2", system="one")
    official.create("c", from_="llama3.2", system="two")
    official.create("d", from_="c", system="")  # empty: keeps the base's, as Ollama does
    assert "SYSTEM two" in official.show("d").modelfile
    digests = {m.model: m.digest for m in official.list().models}
    assert digests["a:latest"] == digests["b:latest"] != digests["c:latest"]
    shown = official.show("c")
    assert "<|eot_id|>" in shown.parameters  # base stop tokens inherited
    assert shown.modelfile.splitlines()[4].startswith("FROM /root/.ollama/models/blobs/sha256-")


def test_too_many_requests_in_flight_get_503_with_ollamas_text(simulator):
    from concurrent.futures import ThreadPoolExecutor

    sim = simulator({"models": ["llama3.2"], "behaviours": {"llama3.2": {
        "load_ms": 5, "decode_tps": 50, "answers": ["a b c d e f g h i j"],
        "faults": {"max_inflight": 2}}}})

    def ask(_):
        return requests.post(sim.url + "/api/generate", json={
            "model": "llama3.2", "prompt": "x", "stream": False}, timeout=10)

    with ThreadPoolExecutor(max_workers=5) as pool:
        replies = list(pool.map(ask, range(5)))
    busy = [r for r in replies if r.status_code == 503]
    assert busy and len([r for r in replies if r.status_code == 200]) >= 2
    assert busy[0].json() == {"error": "server busy, please try again.  maximum pending "
                                       "requests exceeded"}

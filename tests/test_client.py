"""OllamaClient against the simulator: endpoints, streaming timings, and every error type."""

from __future__ import annotations

import socket
import time

import pytest

from mirador.errors import (
    CapabilityNotSupported,
    ExitCode,
    ModelNotFound,
    OllamaTimeout,
    OllamaUnreachable,
    ServerError,
    StreamError,
)
from mirador.ollama_client import OllamaClient

FAST = {"load_ms": 10, "prefill_tps": 5000, "decode_tps": 2000}
SCENARIO = {
    "models": ["llama3.2", "nomic-embed-text", "qwen3",
               {"name": "helper", "from": "llama3.2", "system": "You are a helper."}],
    "behaviours": {"llama3.2": FAST, "nomic-embed-text": FAST, "qwen3": FAST,
                   "helper": {"answers": [{"match": "(?i)capital", "text": "Paris is it."},
                                          {"text": "I do not know."}]}},
}


@pytest.fixture
def client(simulator):
    sim = simulator(SCENARIO)
    with OllamaClient(sim.url, timeout=10) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_listing_endpoints(client):
    assert client.heartbeat() == "Ollama is running"
    assert client.version() == "0.32.15"
    names = {m["name"] for m in client.tags()}
    assert names == {"llama3.2:latest", "nomic-embed-text:latest", "qwen3:latest",
                     "helper:latest"}
    assert client.ps() == []
    show = client.show("HELPER")  # names are case-insensitive
    assert show["system"] == "You are a helper."
    assert show["details"]["parent_model"] == "llama3.2:latest"


def test_streamed_chat_records_timings_and_counters(client):
    r = client.chat("helper", [{"role": "user", "content": "What is the capital?"}])
    assert r.text == "Paris is it."
    t = r.timings
    assert t.sent < t.first_byte <= t.first_token <= t.done
    assert len(t.chunk_times) == r.chunks == 4  # 3 tokens + the final object
    assert r.metric("eval_count") == 3 and r.final["done_reason"] == "stop"
    assert r.metric("missing_counter") is None


def test_generate_and_thinking(client):
    r = client.generate("qwen3", "why is the sky blue?")
    assert r.thinking and r.text
    assert client.generate("llama3.2", "hi", stream=False).final["done"] is True


def test_embed_and_load_unload(client):
    out = client.embed("nomic-embed-text", ["a", "b"])
    assert len(out["embeddings"]) == 2 and len(out["embeddings"][0]) == 768
    assert client.load("llama3.2")["done_reason"] == "load"
    assert {m["name"] for m in client.ps()} >= {"llama3.2:latest"}
    assert client.unload("llama3.2")["done_reason"] == "unload"
    assert "llama3.2:latest" not in {m["name"] for m in client.ps()}


def test_create_copy_delete_pull(client):
    client.create("mine", from_="llama3.2", system="s", parameters={"temperature": 0.2})
    assert client.show("mine")["parameters"].count("temperature") == 1
    client.copy("mine", "mine-backup")
    digests = {m["name"]: m["digest"] for m in client.tags()}
    assert digests["mine:latest"] == digests["mine-backup:latest"]
    client.delete("mine")
    with pytest.raises(ModelNotFound):
        client.show("mine")
    client.pull("llava")
    assert "llava:latest" in {m["name"] for m in client.tags()}


def test_blob_upload_and_files_create(client, tmp_path):
    import hashlib

    data = b"GGUF" + b"\0" * 64
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (tmp_path / "w.gguf").write_bytes(data)
    assert not client.blob_exists(digest)
    client.push_blob(digest, tmp_path / "w.gguf")
    assert client.blob_exists(digest)
    client.create("local", files={"w.gguf": digest})
    assert client.show("local")["details"]["parent_model"] == ""


def test_show_many_is_concurrent_and_returns_errors(simulator):
    sim = simulator({**SCENARIO, "server": {"faults": {"show_latency_ms": 100}}})
    with OllamaClient(sim.url) as c:
        started = time.perf_counter()
        out = c.show_many(["llama3.2", "qwen3", "helper", "nomic-embed-text", "nope"],
                          max_workers=8)
        elapsed = time.perf_counter() - started
    assert isinstance(out["nope"], ModelNotFound)
    assert out["helper"]["system"] == "You are a helper."
    assert elapsed < 0.45  # five 100 ms calls, not one after the other


# --- errors --------------------------------------------------------------------------------

def test_unreachable_names_the_host_and_how_to_point_elsewhere():
    port = free_port()
    with pytest.raises(OllamaUnreachable) as err:
        OllamaClient(f"127.0.0.1:{port}", timeout=2).version()
    assert f"http://127.0.0.1:{port}" in str(err.value)
    assert "OLLAMA_HOST" in str(err.value) and "--host" in str(err.value)
    assert err.value.exit_code == ExitCode.UNREACHABLE


def test_timeout_names_the_value_and_the_flag(simulator):
    sim = simulator({**SCENARIO, "behaviours": {"helper": {"faults": {"hang": True}}}})
    with OllamaClient(sim.url, timeout=0.5) as c, pytest.raises(OllamaTimeout) as err:
        c.chat("helper", [{"role": "user", "content": "x"}])
    assert "0.5 s" in str(err.value) and "--timeout" in str(err.value)


def test_model_not_found_and_capability_errors(client):
    with pytest.raises(ModelNotFound) as err:
        client.generate("ghost", "hi")
    assert err.value.server_message == "model 'ghost' not found"
    with pytest.raises(CapabilityNotSupported) as err:
        client.chat("nomic-embed-text", [{"role": "user", "content": "x"}])
    assert err.value.capability == "chat"
    assert err.value.server_message == '"nomic-embed-text" does not support chat'


def test_server_error_carries_status_and_message(simulator):
    sim = simulator({**SCENARIO, "behaviours": {"helper": {"faults": {"http_500_every": 1}}}})
    with OllamaClient(sim.url) as c, pytest.raises(ServerError) as err:
        c.generate("helper", "x")
    assert err.value.status == 500 and "llama runner" in err.value.server_message


def test_error_inside_a_200_stream_is_raised(simulator):
    sim = simulator({**SCENARIO, "behaviours": {"helper": {
        "answers": ["one two three four five six"],
        "faults": {"error_mid_stream": {"every": 1, "after_tokens": 2, "message": "boom"}}}}})
    with OllamaClient(sim.url) as c, pytest.raises(StreamError) as err:
        c.chat("helper", [{"role": "user", "content": "x"}])
    assert err.value.server_message == "boom" and err.value.chunks_before == 2


def test_early_stream_error_on_old_server_comes_as_a_200_line(simulator):
    sim = simulator({**SCENARIO, "server": {"version": "0.12.5"}})
    with OllamaClient(sim.url) as c, pytest.raises(StreamError, match="invalid model name"):
        c.pull("bad name!")


def test_embed_falls_back_to_legacy_endpoint_on_old_servers(simulator):
    sim = simulator({**SCENARIO, "server": {"version": "0.2.5"}})
    with OllamaClient(sim.url) as c:
        out = c.embed("nomic-embed-text", ["hello world"])
    assert out["legacy_endpoint"] is True and len(out["embeddings"][0]) == 768


def test_simulator_and_client_over_ipv6_loopback():
    import socket as _socket

    from mirador.simulator import Simulator, parse_scenario

    if not _socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        sim = Simulator(parse_scenario({}), host="::1").start()
    except OSError as exc:  # a kernel without an IPv6 loopback
        pytest.skip(f"cannot bind ::1: {exc}")
    try:
        assert sim.url.startswith("http://[::1]:")
        with OllamaClient(sim.url) as c:
            assert c.version() == "0.32.15"
    finally:
        sim.stop()

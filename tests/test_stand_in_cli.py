"""The stand-in `ollama` executable: real subprocesses, HTTP to the simulator, real-CLI output."""

from __future__ import annotations

import subprocess

import pytest

FAST = {"load_ms": 10, "prefill_tps": 5000, "decode_tps": 2000}


@pytest.fixture
def run(simulator, fake_ollama):
    sim = simulator({"models": ["llama3.2", "nomic-embed-text"],
                     "behaviours": {"llama3.2": {**FAST, "answers": ["Hello there."]},
                                    "nomic-embed-text": FAST}})
    env = fake_ollama(sim.url)

    def ollama(*args: str, cwd=None) -> subprocess.CompletedProcess:
        return subprocess.run(["ollama", *args], capture_output=True, text=True, env=env,
                              cwd=cwd, timeout=60, check=False)

    ollama.sim = sim
    return ollama


def test_create_show_list_cp_rm_run(run, tmp_path):
    (tmp_path / "weights.gguf").write_bytes(b"GGUF" + b"\1" * 32)
    mf = tmp_path / "my model.modelfile"
    mf.write_text("FROM llama3.2\nSYSTEM You are terse.\nPARAMETER temperature 0.2\n"
                  "PARAMETER mirostat 1\n")
    out = run("create", "terse", "-f", str(mf))
    assert out.returncode == 0, out.stderr
    assert "warning: parameter mirostat is deprecated" in out.stdout
    assert "success" in out.stderr
    shown = run("show", "terse", "--modelfile")
    assert "SYSTEM You are terse." in shown.stdout and "# FROM terse:latest" in shown.stdout
    assert "terse:latest" in run("list").stdout
    assert run("cp", "terse", "terse-backup").stdout.strip() == (
        "copied 'terse' to 'terse-backup'")
    assert run("rm", "terse-backup").stdout.strip() == "deleted 'terse-backup'"
    assert run("run", "terse", "hello").stdout.strip() == "Hello there."
    assert run("run", "nomic-embed-text", "hello").stdout.startswith("[")

    local = tmp_path / "Modelfile"
    local.write_text("FROM ./weights.gguf\n")
    assert run("create", "from-weights", "-f", str(local)).returncode == 0
    assert "from-weights:latest" in run("list").stdout
    assert "NAME" in run("ps").stdout


@pytest.mark.parametrize("args,modelfile,error", [
    (["create", "x", "-f", "{mf}"], "FROM llama3.2\nMESSAGE tool hi\n",
     'Error: (line 2): message role must be one of "system", "user", or "assistant"'),
    (["create", "x", "-f", "{mf}"], "FROM llama3.2\nPARAMETER num_gqa 8\n",
     "Error: unknown parameter 'num_gqa'"),
    (["create", "x", "-f", "{mf}"], "FROM not-in-registry\n",
     "Error: pull model manifest: file does not exist"),
    (["create", "bad name", "-f", "{mf}"], "FROM llama3.2\n",
     "Error: invalid model name: bad name"),
    (["create", "x", "-f", "missing.modelfile"], None,
     "Error: no Modelfile or safetensors files found"),
    (["show", "ghost"], None, "Error: model 'ghost' not found"),
    (["run", "ghost", "hi"], None, "Error: pull model manifest: file does not exist"),
    (["cp", "ghost", "x"], None, 'Error: model "ghost" not found'),
    (["frobnicate"], None, 'Error: unknown command "frobnicate" for "ollama"'),
])
def test_failures_print_error_and_exit_1(run, tmp_path, args, modelfile, error):
    mf = tmp_path / "m.modelfile"
    if modelfile is not None:
        mf.write_text(modelfile)
    out = run(*[a.format(mf=mf) for a in args], cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == error


def test_unreachable_server(fake_ollama):
    import os

    env = {**os.environ, "OLLAMA_HOST": "127.0.0.1:9"}
    out = subprocess.run(["ollama", "list"], capture_output=True, text=True, env=env,
                         timeout=30, check=False)
    assert out.returncode == 1
    assert out.stderr.strip() == "Error: could not connect to ollama app, is it running?"

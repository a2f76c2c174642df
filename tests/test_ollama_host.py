"""OLLAMA_HOST is read exactly as Ollama reads it (envconfig/config_test.go TestHost)."""

import pytest

from mirador.ollama_client import connectable_url, parse_ollama_host, redact_url, resolve_host

# Ollama's own table, verbatim (envconfig/config_test.go)
OLLAMA_CASES = {
    "empty": ("", "http://127.0.0.1:11434"),
    "only address": ("1.2.3.4", "http://1.2.3.4:11434"),
    "only port": (":1234", "http://:1234"),
    "address and port": ("1.2.3.4:1234", "http://1.2.3.4:1234"),
    "hostname": ("example.com", "http://example.com:11434"),
    "hostname and port": ("example.com:1234", "http://example.com:1234"),
    "zero port": (":0", "http://:0"),
    "too large port": (":66000", "http://:11434"),
    "too small port": (":-1", "http://:11434"),
    "ipv6 localhost": ("[::1]", "http://[::1]:11434"),
    "ipv6 world open": ("[::]", "http://[::]:11434"),
    "ipv6 no brackets": ("::1", "http://[::1]:11434"),
    "ipv6 + port": ("[::1]:1337", "http://[::1]:1337"),
    "extra space": (" 1.2.3.4 ", "http://1.2.3.4:11434"),
    "extra quotes": ('"1.2.3.4"', "http://1.2.3.4:11434"),
    "extra space+quotes": (' " 1.2.3.4 " ', "http://1.2.3.4:11434"),
    "extra single quotes": ("'1.2.3.4'", "http://1.2.3.4:11434"),
    "http": ("http://1.2.3.4", "http://1.2.3.4:80"),
    "http port": ("http://1.2.3.4:4321", "http://1.2.3.4:4321"),
    "https": ("https://1.2.3.4", "https://1.2.3.4:443"),
    "https port": ("https://1.2.3.4:4321", "https://1.2.3.4:4321"),
    "proxy path": ("https://example.com/ollama", "https://example.com:443/ollama"),
}


@pytest.mark.parametrize("value,expect", OLLAMA_CASES.values(), ids=OLLAMA_CASES.keys())
def test_parse_matches_ollama(value, expect):
    assert parse_ollama_host(value) == expect


def test_ollama_com_alone_is_https():
    assert parse_ollama_host("ollama.com") == "https://ollama.com:443"


@pytest.mark.parametrize("value,expect", [
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("[::]:8080", "http://[::1]:8080"),
    (":1234", "http://127.0.0.1:1234"),
    ("10.1.2.3", "http://10.1.2.3:11434"),
])
def test_bind_addresses_map_to_loopback_for_connecting(value, expect):
    assert connectable_url(parse_ollama_host(value)) == expect


def test_credentials_are_never_printed():
    assert redact_url("http://user:secret@h:1/x") == "http://***@h:1/x"
    assert redact_url("http://h:1") == "http://h:1"


def test_flag_beats_environment(monkeypatch):
    assert resolve_host("h1:1", {"OLLAMA_HOST": "h2:2"}) == "http://h1:1"
    assert resolve_host(None, {"OLLAMA_HOST": "h2:2"}) == "http://h2:2"
    assert resolve_host(None, {}) == "http://127.0.0.1:11434"

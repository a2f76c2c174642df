"""The parser against Ollama's own verdicts (shared corpus) and the edge cases of facts §3.4."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirador import modelfile as mf
from mirador.modelfile import Command, ModelfileError

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
if not CORPUS.exists():  # CI clones main with shared/ beside it
    CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def _jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (CORPUS / name).read_text().splitlines()]


PARSE_CASES = _jsonl("expected_parse.jsonl") if CORPUS.exists() else []
CREATE_CASES = _jsonl("expected_create.jsonl") if CORPUS.exists() else []


def test_corpus_is_present():
    assert len(PARSE_CASES) == 170 and len(CREATE_CASES) == 170


@pytest.mark.parametrize("case", PARSE_CASES, ids=lambda c: c["file"][:40])
def test_corpus_parse_matches_ollama(case):
    data = (CORPUS / "modelfiles" / case["file"]).read_bytes()
    if case["ok"]:
        assert [c.to_dict() for c in mf.parse(data)] == case["commands"]
    else:
        with pytest.raises(ModelfileError) as err:
            mf.parse(data)
        assert str(err.value) == case["error"]
        assert err.value.line == case.get("error_line")


@pytest.mark.parametrize("case", CREATE_CASES, ids=lambda c: c["file"][:40])
def test_corpus_create_checks_match_ollama(case):
    data = (CORPUS / "modelfiles" / case["file"]).read_bytes()
    if not case["ok"]:
        with pytest.raises(ModelfileError) as err:
            mf.check_create(mf.parse(data))
        assert str(err.value) == case["error"]
        assert err.value.stage == case["stage"]
        return
    check = mf.check_create(mf.parse(data))
    assert (check.parameters or None) == case["parameters"]
    assert (check.param_types or None) == (case["param_types"] or None)
    assert check.warnings == case["warnings"]
    request = {k: v for k, v in check.request_fields().items() if k != "parameters"}
    assert request == case["request"]


def cmds(text: str | bytes) -> list[tuple[str, str]]:
    return [(c.name, c.args) for c in mf.parse(text)]


def error_of(text: str | bytes) -> str:
    with pytest.raises(ModelfileError) as err:
        mf.parse(text)
    return str(err.value)


# --- encodings and newlines -------------------------------------------------------------

@pytest.mark.parametrize("codec,bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
                                       ("utf-8", b"\xef\xbb\xbf")])
def test_bom_selects_the_encoding(codec, bom):
    data = bom + "FROM llama3.2\nSYSTEM Grüß dich — 你好\n".encode(codec)
    assert cmds(data) == [("model", "llama3.2"), ("system", "Grüß dich — 你好")]


def test_utf16_without_bom_is_read_as_utf8_and_fails():
    data = "FROM llama3.2\n".encode("utf-16-le")
    assert error_of(data).startswith("(line 1): command must be one of")


def test_cr_alone_is_a_newline_and_crlf_doubles_line_numbers():
    assert cmds("FROM a\rSYSTEM b\r") == [("model", "a"), ("system", "b")]
    assert error_of("FROM a\r\nSYSTEM b\r\nBOGUS x\r\n") == (
        "(line 5): " + mf.ERR_INVALID_COMMAND)


def test_non_printable_characters_are_dropped():
    assert cmds("FROM a\nSYSTEM x\u200by\u00a0z\x07\n") == [("model", "a"), ("system", "xyz")]


# --- instructions and comments ------------------------------------------------------------

def test_keywords_are_case_insensitive():
    assert cmds("fRoM a\nsystem s\nParameter temperature 1\n") == [
        ("model", "a"), ("system", "s"), ("temperature", "1")]


def test_keyword_alone_on_a_line_is_an_error_one_line_late():
    assert error_of("FROM a\nSYSTEM\nx\n") == "(line 3): " + mf.ERR_INVALID_COMMAND


def test_comments_only_where_an_instruction_starts():
    assert cmds("  # a comment\nFROM a # not a comment\nSYSTEM hi # x\n") == [
        ("model", "a # not a comment"), ("system", "hi # x")]


def test_no_from_line():
    assert error_of("# FROM a\nSYSTEM s\n") == "no FROM line"
    assert error_of("") == "no FROM line"


# --- values and quoting -----------------------------------------------------------------------

def test_triple_quotes_keep_newlines_and_inner_quotes():
    text = 'FROM a\nTEMPLATE """{{ if .System }}"sys"\n{{ end }}"""\n'
    assert cmds(text)[1] == ("template", '{{ if .System }}"sys"\n{{ end }}')


def test_double_quotes_span_lines_and_keep_inner_quotes():
    assert cmds('FROM a\nSYSTEM "one\ntwo"\n')[1] == ("system", "one\ntwo")
    assert cmds('FROM a\nSYSTEM "a"b"\n')[1] == ("system", 'a"b')


def test_single_quotes_and_backslashes_are_literal():
    assert cmds("FROM a\nPARAMETER stop '<|eot|>'\nSYSTEM a\\nb\n")[1:] == [
        ("stop", "'<|eot|>'"), ("system", "a\\nb")]


def test_quoted_value_followed_by_text_swallows_following_lines():
    text = 'FROM a\nSYSTEM "hello" world\nPARAMETER temperature 0.1\nTEMPLATE "y"\nSYSTEM z\n'
    assert cmds(text) == [
        ("model", "a"),
        ("system", 'hello" world\nPARAMETER temperature 0.1\nTEMPLATE "y'),
        ("system", "z"),
    ]


def test_empty_values():
    assert cmds('FROM a\nSYSTEM ""\nTEMPLATE """"""\nLICENSE \n') == [
        ("model", "a"), ("system", ""), ("template", ""), ("license", "")]


@pytest.mark.parametrize("text", ['FROM a\nSYSTEM """never closed\n', 'FROM a\nSYSTEM "open\n',
                                  "FROM", "FROM a\nPARAMETER temperature", "FROM a\nMESSAGE user"])
def test_unterminated_input_is_unexpected_eof(text):
    assert error_of(text) == "unexpected EOF"


def test_leading_and_trailing_blanks_are_trimmed_but_kept_inside_quotes():
    assert cmds('FROM a\nSYSTEM    hi there   \nTEMPLATE "  x  "\n')[1:] == [
        ("system", "hi there"), ("template", "  x  ")]


# --- PARAMETER and MESSAGE ----------------------------------------------------------------------

def test_parameter_name_with_other_characters_is_unexpected_eof_with_buffer():
    assert error_of("FROM a\nPARAMETER num-ctx 4\n") == "unexpected EOF: num"
    assert error_of("FROM a\nPARAMETER stop\nx\n") == "unexpected EOF: stop"


def test_message_roles_are_case_sensitive_and_tool_is_not_allowed():
    assert cmds("FROM a\nMESSAGE user hi there\n")[1] == ("message", "user: hi there")
    for role in ("tool", "User", "ASSISTANT"):
        assert error_of(f"FROM a\nMESSAGE {role} x\n") == "(line 2): " + mf.ERR_INVALID_ROLE


def test_create_check_types_and_merges_parameters():
    check = mf.check_create(mf.parse(
        "FROM a\nPARAMETER stop <a>\nPARAMETER temperature 0.3\nPARAMETER stop <b>\n"
        "PARAMETER temperature .7\nPARAMETER num_ctx +4096\nPARAMETER use_mmap T\n"
        "PARAMETER mirostat 2\nLICENSE one\nLICENSE two\nSYSTEM s1\nSYSTEM s2\n"))
    assert check.parameters == {"stop": ["<a>", "<b>"], "temperature": 0.7, "num_ctx": 4096,
                                "use_mmap": True}
    assert check.warnings == ["warning: parameter mirostat is deprecated"]
    assert check.license == ["one", "two"] and check.system == "s2"


@pytest.mark.parametrize("line,error", [
    ("PARAMETER num_ctx 4096.0", "invalid int value [4096.0]"),
    ("PARAMETER top_k notanumber", "invalid int value [notanumber]"),
    ("PARAMETER temperature 1_0", "invalid float value [1_0]"),
    ("PARAMETER temperature 1e99", "invalid float value [1e99]"),
    ("PARAMETER use_mmap yes", "invalid bool value [yes]"),
    ("PARAMETER Temperature 1", "unknown parameter 'Temperature'"),
    ("PARAMETER tfs_z 1", "unknown parameter 'tfs_z'"),
    ("REQUIRES 0.14", None),
    ("REQUIRES latest", mf.ERR_REQUIRES),
    ("REQUIRES 01.2.3", mf.ERR_REQUIRES),
])
def test_create_check_errors(line, error):
    commands = mf.parse(f"FROM a\n{line}\n")
    if error is None:
        assert mf.check_create(commands).requires == "0.14"
        return
    with pytest.raises(ModelfileError) as err:
        mf.check_create(commands)
    assert str(err.value) == error and err.value.stage == "create"


def test_float_values_are_float32_like_ollama():
    assert mf.convert_parameter("temperature", "0.1") == 0.1
    assert mf.convert_parameter("top_p", "0x1p-2") == 0.25
    assert mf.convert_parameter("min_p", "0.123456789") == 0.12345679


# --- FROM / ADAPTER resolution ----------------------------------------------------------------

def test_from_resolves_an_existing_path_beside_the_modelfile(tmp_path):
    (tmp_path / "w.gguf").write_bytes(b"GGUF" + b"\0" * 16)
    (tmp_path / "llama3").mkdir()
    (tmp_path / "llama3" / "model.gguf").write_bytes(b"GGUF")
    assert mf.resolve_source("./w.gguf", tmp_path).kind == "files"
    assert mf.resolve_source("llama3", tmp_path).kind == "files"  # a folder wins over a name
    assert mf.resolve_source("missing.gguf", tmp_path) == mf.Source("model", "missing.gguf")
    with pytest.raises(ModelfileError, match="no such file"):
        mf.resolve_source("./lora", tmp_path, must_exist=True)


def test_definition_normalises_the_base_name(tmp_path):
    d = mf.definition(mf.parse("FROM Llama3.2\nPARAMETER stop a\nMESSAGE user hi\n"), tmp_path)
    assert d.base == "Llama3.2:latest" and not d.base_is_local
    assert d.parameters == {"stop": ["a"]} and d.messages == [{"role": "user", "content": "hi"}]
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    local = mf.definition(mf.parse("FROM ./m.gguf\n"), tmp_path)
    assert local.base_is_local and local.base.startswith("file:")


def test_missing_adapter_is_a_create_error(tmp_path):
    with pytest.raises(ModelfileError, match="no such file or directory"):
        mf.definition(mf.parse("FROM a\nADAPTER ./lora.gguf\n"), tmp_path)


# --- rendering round trip ---------------------------------------------------------------------

_value_text = st.text(alphabet=st.sampled_from(list('ab "#\n\t\'\\|{}$`é你')), max_size=30)
_commands = st.lists(st.one_of(
    st.builds(Command, st.sampled_from(["template", "system", "license", "adapter", "model"]),
              _value_text),
    st.builds(Command, st.sampled_from(["temperature", "stop", "num_ctx"]), _value_text),
    st.builds(lambda r, t: Command("message", f"{r}: {t}"),
              st.sampled_from(mf.MESSAGE_ROLES), _value_text),
), max_size=8)


@settings(max_examples=300, deadline=None)
@given(_commands)
def test_render_then_parse_gives_the_same_commands(commands):
    commands = [Command("model", "base")] + commands
    rendered = []
    for c in commands:
        try:
            rendered.append(mf.render_command(c))
        except mf.UnrepresentableValue:
            # only values whose trimmed/quoted forms the parser cannot hold are refused
            assert c.args != c.args.strip() or '"' in c.args
            return
    assert mf.parse("\n".join(rendered) + "\n") == commands


def test_render_quotes_only_when_needed():
    assert mf.render([Command("model", "llama3.2"), Command("system", "a b"),
                      Command("template", "x\ny"), Command("stop", 'say "hi"\n')]) == (
        'FROM llama3.2\nSYSTEM a b\nTEMPLATE "x\ny"\nPARAMETER stop """say "hi"\n"""\n')


# --- the debugging entry point -------------------------------------------------------------------

def test_parse_entry_point_prints_json_lines(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("FROM llama3.2\nPARAMETER temperature 0.2\n")
    bad.write_text("FROM a\nMESSAGE tool x\n")
    out = subprocess.run([sys.executable, "-m", "mirador.modelfile", "parse", str(good), str(bad)],
                         capture_output=True, text=True, check=False)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0] == {"file": str(good), "ok": True, "commands": [
        {"name": "model", "args": "llama3.2"}, {"name": "temperature", "args": "0.2"}]}
    assert lines[1] == {"file": str(bad), "ok": False,
                        "error": "(line 2): " + mf.ERR_INVALID_ROLE}
    assert out.returncode == 1

"""Drift comparison, show parsing, cycles and build order, without a server."""

from __future__ import annotations

from mirador import modelfile as mf
from mirador.diagnosis import _find_cycles, compare, parse_show_parameters

BASE_SHOW = {
    "parameters": 'stop                           "<|eot_id|>"\n'
                  'stop                           "<|end_header_id|>"',
    "template": "{{ .Prompt }}", "system": "", "license": "BASE LICENSE", "messages": [],
    "modelfile": "FROM /blobs/sha256-" + "a" * 64 + "\n",
}


def defn(text: str) -> mf.ModelDefinition:
    return mf.definition(mf.parse(text))


def built(params: str, system: str = "s", template: str = "{{ .Prompt }}",
          license_: str = "BASE LICENSE", parent: str = "llama3.2:latest") -> dict:
    return {"parameters": params, "system": system, "template": template,
            "license": license_, "messages": [], "details": {"parent_model": parent},
            "modelfile": "FROM /blobs/sha256-" + "a" * 64 + "\n"}


def test_show_parameters_parse_go_values_in_any_order():
    text = ('temperature                    0.7\nstop                           "a\\"b"\n'
            'num_ctx                        4096\nuse_mmap                       false\n'
            'stop                           "<|eot_id|>"\nnum_predict                    1e+06')
    assert parse_show_parameters(text) == {"temperature": 0.7, "stop": ['a"b', "<|eot_id|>"],
                                           "num_ctx": 4096, "use_mmap": False,
                                           "num_predict": 1e6}


def test_matching_model_has_no_drift_whatever_the_parameter_order():
    d = defn("FROM llama3.2\nSYSTEM s\nPARAMETER temperature 0.3\nPARAMETER num_ctx 8192\n")
    shown = built('num_ctx                        8192\n'
                  'stop                           "<|end_header_id|>"\n'
                  'temperature                    0.3\n'
                  'stop                           "<|eot_id|>"')
    assert compare(d, shown, BASE_SHOW) == []


def test_changed_fields_are_named_with_expected_and_actual():
    d = defn("FROM llama3.2\nSYSTEM new prompt\nPARAMETER temperature 0.3\n")
    shown = built('temperature                    0.9\nstop "<|eot_id|>"\n'
                  'stop "<|end_header_id|>"', system="old prompt")
    drift = {x.field: x for x in compare(d, shown, BASE_SHOW)}
    assert set(drift) == {"parameters", "system"}
    assert drift["parameters"].expected == {"temperature": 0.3}
    assert drift["parameters"].actual == {"temperature": 0.9}
    assert drift["system"].expected == "new prompt"


def test_a_parameter_removed_from_the_modelfile_is_drift_when_the_base_is_known():
    d = defn("FROM llama3.2\nSYSTEM s\n")
    shown = built('temperature 0.9\nstop "<|eot_id|>"\nstop "<|end_header_id|>"')
    (drift,) = compare(d, shown, BASE_SHOW)
    assert drift.field == "parameters" and drift.expected == {"temperature": None}
    # without the base's show only what the Modelfile sets can be compared
    assert compare(d, shown, None) == []


def test_base_template_license_messages_and_stop_lists():
    d = defn("FROM llama3.2\nSYSTEM s\nTEMPLATE {{ .System }}\nLICENSE mine\n"
             "MESSAGE user hi\nPARAMETER stop A\nPARAMETER stop B\n")
    shown = built('stop "B"\nstop "A"', template="{{ .Prompt }}", parent="qwen3:latest",
                  license_="BASE LICENSE")
    fields = {x.field for x in compare(d, shown, BASE_SHOW)}
    assert fields == {"base", "template", "license", "messages"}  # stop order is not drift


def test_cycles_are_found_and_named():
    assert _find_cycles({"a": "b", "b": "a", "c": "a"}) == {"a": ["a", "b", "a"],
                                                            "b": ["b", "a", "b"]}


def test_an_empty_system_or_template_inherits_the_base():
    base = {**BASE_SHOW, "system": "base system"}
    d = defn('FROM llama3.2\nSYSTEM ""\nTEMPLATE ""\n')
    shown = built('stop "<|eot_id|>"\nstop "<|end_header_id|>"', system="base system")
    assert compare(d, shown, base) == []

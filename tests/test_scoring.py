"""Quality checks: answers built to pass and to fail each check score as expected."""

from __future__ import annotations

import pytest

from mirador import scoring

REFUSALS = ["I cannot", "As an AI"]


@pytest.mark.parametrize("check,good,bad", [
    ({"contains_any": ["budget", "fund"]}, "Build an emergency FUND first.", "Buy stocks."),
    ({"regex": r"\$\d"}, "Save $9,000.", "Save a lot."),
    ({"not_contains": REFUSALS}, "Here is the plan.", "As an AI, I cannot help."),
    ({"min_words": 3, "max_words": 5}, "one two three four", "one two"),
    ({"json": True}, '```json\n{"a": 1}\n```', "{a: 1}"),
    ({"json_schema": {"type": "object", "required": ["allowed"],
                      "properties": {"allowed": {"type": "boolean"}}}},
     '{"allowed": false, "reason": "over budget"}', '{"allowed": "no"}'),
])
def test_each_check_passes_and_fails(check, good, bad):
    assert scoring.run_check(check, good).score == 1.0
    assert scoring.run_check(check, bad).score == 0.0


def test_contains_all_is_partial_and_weights_average():
    partial = scoring.run_check({"contains_all": ["a", "b", "c", "d"]}, "a b")
    assert partial.score == 0.5 and "missing ['c', 'd']" in partial.detail
    q = scoring.score_answer("alpha", [{"contains_any": ["alpha"], "weight": 3},
                                       {"contains_any": ["beta"]}])
    assert q.score == 0.75 and [c.name for c in q.failed()] == ["contains_any"]


def test_schema_subset_reports_paths():
    errors = scoring.schema_errors({"a": [1, "x"], "b": 5},
                                   {"type": "object", "required": ["a", "c"],
                                    "properties": {"a": {"type": "array",
                                                         "items": {"type": "integer"}},
                                                   "b": {"type": "number", "maximum": 3}}})
    assert errors == ["$: missing 'c'", "$.a[1]: expected integer, got str", "$.b: 5 > 3"]
    assert scoring.schema_errors(True, {"type": "integer"}) == [
        "$: expected integer, got bool"]


def test_tool_calls():
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}
    good = [{"function": {"name": "get_weather", "arguments": {"city": "Louisville"}}}]
    assert scoring.score_tool_calls(good, tool).score == 1.0
    wrong = [{"function": {"name": "get_weather", "arguments": {"town": 3}}}]
    assert scoring.score_tool_calls(wrong, tool).score == pytest.approx(1 / 3)
    assert scoring.score_tool_calls([], tool).score == 0.0


def test_embedding_checks():
    a, b, c = [1.0, 0.0], [0.8, 0.6], [0.0, 1.0]
    assert scoring.score_embeddings([a, b, c], 2).score == 1.0
    assert scoring.score_embeddings([a, c, b], 2).score == pytest.approx(0.5)
    unnormal = scoring.score_embeddings([[2.0, 0.0], [1.6, 1.2], [0.0, 2.0]], 3)
    assert [x.score for x in unnormal.checks] == [0.0, 0.0, 1.0]


def test_judge_parsing_and_blending():
    assert scoring.parse_judge('{"score": 8, "reason": "good"}') == (0.8, "good")
    assert scoring.parse_judge("I would give it 7/10.")[0] == 0.7
    assert scoring.parse_judge("no idea")[0] is None
    q = scoring.blend(scoring.score_answer("x", [{"contains_any": ["x"]}]), 0.5, "ok", 0.5)
    assert q.score == 0.75 and q.deterministic == 1.0 and q.judge_score == 0.5

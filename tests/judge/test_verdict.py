"""Verdict mapping as a pure function: whatever the judge says, only a real approval approves."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atryum.judge.verdict import Answer, Failure, outcome, parse_answer

confidences = st.none() | st.floats(min_value=0, max_value=1)


@given(st.text() | st.none(), st.floats(min_value=0, max_value=1))
def test_any_text_maps_to_a_verdict_and_approves_only_a_wellformed_approval(
    raw: str | None, min_confidence: float
) -> None:
    result = parse_answer(raw)
    verdict, reason = outcome(result, min_confidence=min_confidence)
    assert verdict in ("approve", "deny", "human", "escalate", "next_rule")
    assert reason
    if verdict == "approve":
        assert isinstance(result, Answer) and result.verdict == "approved"
        assert (result.confidence or 0) >= min_confidence


@given(
    st.sampled_from(["approved", "denied", "human_approval", "next_rule"]),
    confidences,
    st.floats(min_value=0, max_value=1),
)
def test_the_table_of_the_spec(verdict: str, confidence: float | None, minimum: float) -> None:
    raw = json.dumps({"verdict": verdict, "confidence": confidence, "reason": "r"})
    got, _ = outcome(parse_answer(raw), min_confidence=minimum)
    if verdict == "approved":
        enough = (confidence is None and minimum <= 0) or (
            confidence is not None and confidence >= minimum
        )
        assert got == ("approve" if enough else "human")
    else:
        assert (
            got
            == {"denied": "deny", "human_approval": "escalate", "next_rule": "next_rule"}[verdict]
        )


@given(st.sampled_from(["timeout", "http_5xx", "refusal", "config_disabled"]), st.text())
def test_every_failure_asks_a_human(kind: str, message: str) -> None:
    assert outcome(Failure(kind, message), min_confidence=0)[0] == "human"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("I approve.", "unparseable"),
        ('{"verdict": "approved", "conf', "unparseable"),
        ("[1, 2]", "unparseable"),
        ('{"verdict": "yes"}', "unknown_verdict"),
        ('{"verdict": null}', "unknown_verdict"),
        ('{"verdict": "approved", "confidence": "high"}', "unparseable"),
        ('{"verdict": "approved", "confidence": true}', "unparseable"),
        ('{"verdict": "approved", "confidence": 1.5}', "unparseable"),
    ],
)
def test_malformed_answers_fail_with_their_kind(raw: str, kind: str) -> None:
    result = parse_answer(raw)
    assert isinstance(result, Failure) and result.kind == kind


def test_a_json_answer_in_a_code_fence_is_read() -> None:
    raw = '```json\n{"verdict": "denied", "confidence": 0.8, "reason": "merges are forbidden"}\n```'
    assert parse_answer(raw) == Answer("denied", 0.8, "merges are forbidden")

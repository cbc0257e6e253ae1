"""Reading the judge's answer and turning it into a rule verdict — failing closed.

Pure functions (like `sync/planner.py`): whatever the judge answers, or fails to answer, maps
to exactly one of the verdicts of judge.md §3, and only a well-formed `approved` at or above
the rule's `min_confidence` can approve.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from atryum.gateway.policy import Verdict
from atryum.judge.prompt import VERDICTS

MAX_REASON_CHARS = 1000

# Why a judge could not answer (metrics label `kind`, event field `error`).
FAILURE_KINDS = (
    "timeout",
    "transport",
    "http_4xx",
    "http_5xx",
    "refusal",
    "empty",
    "unparseable",
    "unknown_verdict",
    "config_disabled",
    "config_missing",
    "no_judge",
    "not_configured",
)

NO_CHARTER = (
    "the agent has no charter, so the charter judge cannot allow the call; add a charter to "
    "its ValidMind record (or the agent) first"
)


@dataclass(frozen=True)
class Answer:
    verdict: str  # one of VERDICTS
    confidence: float | None
    reason: str


@dataclass(frozen=True)
class Failure:
    kind: str  # one of FAILURE_KINDS
    message: str


_CODE_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_answer(raw: str | Mapping[str, Any] | None) -> Answer | Failure:
    """The judge's answer (text, or an already decoded object) → an Answer or why not."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Failure("empty", "the judge gave an empty answer")
    data: Any = raw
    if isinstance(raw, str):
        text = raw.strip()
        fenced = _CODE_FENCE.match(text)
        if fenced:
            text = fenced.group(1).strip()
        try:
            data = json.loads(text)
        except ValueError:
            return Failure("unparseable", f"the judge's answer is not JSON: {_excerpt(text)}")
    if not isinstance(data, Mapping):
        return Failure("unparseable", "the judge's answer is not a JSON object")
    verdict = data.get("verdict")
    if not isinstance(verdict, str) or verdict not in VERDICTS:
        return Failure(
            "unknown_verdict", f"the judge answered an unknown verdict: {_excerpt(repr(verdict))}"
        )
    confidence = data.get("confidence")
    if confidence is not None:
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or not math.isfinite(confidence)
            or not 0 <= confidence <= 1
        ):
            return Failure("unparseable", "the judge's confidence is not a number from 0 to 1")
        confidence = float(confidence)
    reason = data.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    return Answer(verdict, confidence, reason[:MAX_REASON_CHARS])


def _excerpt(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def outcome(result: Answer | Failure, *, min_confidence: float) -> tuple[Verdict, str]:
    """The rule verdict for a judge's result (judge.md §3)."""
    if isinstance(result, Failure):
        return "human", f"the judge could not decide ({result.kind}: {result.message})"
    why = result.reason or "no reason given"
    if result.verdict == "approved":
        conf = result.confidence
        if conf is None and min_confidence <= 0:
            return "approve", why
        if conf is not None and conf >= min_confidence:
            return "approve", f"{why} (confidence {conf:.2f})"
        shown = "no confidence" if conf is None else f"confidence {conf:.2f}"
        return "human", (
            f"the judge approved with {shown}, below the rule's minimum of {min_confidence:.2f}: "
            f"{why}"
        )
    if result.verdict == "denied":
        return "deny", why
    if result.verdict == "human_approval":
        return "escalate", f"the judge asks a human: {why}"
    return "next_rule", f"the charter does not cover this call: {why}"

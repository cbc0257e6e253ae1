"""Judge metrics on Atryum's registry (/metrics). Labels never carry a key or a prompt."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from atryum.metrics import REGISTRY

EVALUATIONS = Counter(
    "atryum_judge_evaluations_total",
    "Rule evaluations by the charter judge, by judge (llm, validmind, none), the judge's verdict "
    "('none' when it could not answer) and the rule outcome (approve, deny, human, escalate, "
    "next_rule), shadow rules included",
    ["judge", "verdict", "outcome"],
    registry=REGISTRY,
)
CACHE_HITS = Counter(
    "atryum_judge_cache_hits_total",
    "Rule evaluations answered from the judge's cache",
    ["judge"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "atryum_judge_latency_seconds",
    "Time the judge took to answer (model or ValidMind calls; cache hits excluded)",
    ["judge"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60),
    registry=REGISTRY,
)
ERRORS = Counter(
    "atryum_judge_errors_total",
    "Judge failures by kind (timeout, transport, http_4xx, http_5xx, refusal, empty, "
    "unparseable, unknown_verdict, config_disabled, config_missing, no_judge, not_configured)",
    ["judge", "kind"],
    registry=REGISTRY,
)

"""Gateway metrics, registered on Atryum's registry and exposed at /metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from atryum.metrics import REGISTRY

DECISIONS = Counter(
    "atryum_gateway_decisions_total",
    "Decisions on gated calls by outcome (auto_approved, auto_denied, pending_approval, "
    "approved, denied, expired) and the rule that decided ('none' for the default policy or an "
    "agent check, 'human' for a person)",
    ["decision", "rule"],
    registry=REGISTRY,
)
DECISION_LATENCY = Histogram(
    "atryum_gateway_decision_seconds",
    "Time from submission to decision: 'auto' is the hook path's own work, 'human' includes the "
    "wait for a person",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 10, 60, 600, 3600),
    registry=REGISTRY,
)

_engines: list[sa.Engine] = []
_lock = threading.Lock()


def track(engine: sa.Engine) -> None:
    with _lock:
        _engines.append(engine)


def untrack(engine: sa.Engine) -> None:
    with _lock:
        if engine in _engines:
            _engines.remove(engine)


class _PendingCollector(Collector):
    """Pending approvals, counted in the database (so every replica reports the same number)."""

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily(
            "atryum_gateway_pending_approvals", "Gated calls waiting for a human decision"
        )
        with _lock:
            engine = _engines[0] if _engines else None
        if engine is not None:
            from atryum.gateway import store

            try:
                with engine.connect() as conn:
                    family.add_metric([], store.count_by_status(conn).get("pending_approval", 0))
            except sa.exc.SQLAlchemyError:
                pass
        yield family


REGISTRY.register(_PendingCollector())

"""Prometheus metrics exposed at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

SYNC_RUNS = Counter(
    "atryum_sync_runs_total", "Sync runs by final status", ["status", "trigger"], registry=REGISTRY
)
SYNC_DURATION = Histogram(
    "atryum_sync_duration_seconds",
    "Wall time of sync runs",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
AGENTS = Gauge("atryum_agents", "Agents in the registry by state", ["state"], registry=REGISTRY)

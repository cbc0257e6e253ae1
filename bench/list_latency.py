"""List latency with a big registry: first and deep pages of every list, API and UI.

    .venv/bin/python bench/list_latency.py [--agents 100000] [--invocations 100000]
                                           [--dialects sqlite,postgresql] [--requests 30]

For each dialect a fresh database is filled directly (agents with 1 KB charters, a twentieth as
many retired ones, invocations,
200 sync runs) and one `atryum run` serves it; each URL is asked `--requests` times in a row
(after one warm-up) and its p50/p95 printed next to the issue's target (API ≤ 50 ms, UI ≤ 100 ms).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import sqlalchemy as sa

from atryum.db import migrate
from atryum.db.engine import make_engine
from atryum.db.tables import agent_sync_runs, agents, invocations
from benchkit import scratch_database
from gate_latency import Server, percentile

CHARTER = ("May read the ledger and draft reports. May not move money. " * 20)[:1000]


def fill(url: str, n_agents: int, n_invocations: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for start in range(0, n_agents, 5000):
            conn.execute(
                agents.insert(),
                [
                    {
                        "id": str(uuid.uuid4()),
                        "source": "validmind",
                        "vm_organization_cuid": "org-bench",
                        "vm_cuid": f"rec-{i:07d}",
                        "name": f"Agent {i:07d}",
                        "charter": CHARTER,
                        "tags": [],
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(start, min(start + 5000, n_agents))
                ],
            )
        # And a twentieth as many retired agents (archived in ValidMind), named among them.
        conn.execute(
            agents.insert(),
            [
                {
                    "id": str(uuid.uuid4()),
                    "source": "validmind",
                    "vm_organization_cuid": "org-bench",
                    "vm_cuid": f"gone-{i:07d}",
                    "name": f"Agent {i:07d} (retired)",
                    "charter": CHARTER,
                    "tags": [],
                    "created_at": now,
                    "updated_at": now,
                    "removed_at": now,
                    "removal_reason": "archived_in_source",
                }
                for i in range(0, n_agents, 20)
            ],
        )
        for start in range(0, n_invocations, 5000):
            conn.execute(
                invocations.insert(),
                [
                    {
                        "id": str(uuid.uuid4()),
                        "source": "claude-code",
                        "tool": "Read",
                        "input": {"file_path": "/repo/README.md"},
                        "status": "approved",
                        "submitted_at": now - timedelta(seconds=i),
                        "updated_at": now,
                    }
                    for i in range(start, min(start + 5000, n_invocations))
                ],
            )
        conn.execute(
            agent_sync_runs.insert(),
            [
                {
                    "id": str(uuid.uuid4()),
                    "trigger": "schedule",
                    "status": "succeeded",
                    "started_at": now - timedelta(minutes=i),
                    "finished_at": now - timedelta(minutes=i),
                    "warnings": [],
                }
                for i in range(200)
            ],
        )
    if engine.dialect.name == "postgresql":
        # What autovacuum has done by the time anyone browses a registry this size (statistics,
        # the visibility map); a sync runs ANALYZE too.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--invocations", type=int, default=100_000)
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    deep_agents, deep_inv = max(args.agents - 50, 0), max(args.invocations - 50, 0)
    deep_retired = max(args.agents // 20 - 50, 0)
    urls = [
        ("API agents, first page", "/api/v1/agents", 50),
        ("API agents, deep page", f"/api/v1/agents?offset={deep_agents}", 50),
        ("API agents, every state, deep", f"/api/v1/agents?state=all&offset={deep_agents}", 50),
        ("API agents, retired, deep", f"/api/v1/agents?state=retired&offset={deep_retired}", 50),
        ("API agent search", "/api/v1/agents/search?q=agent%200099", 50),
        ("API agent search, every agent", "/api/v1/agents/search?q=agent", 50),
        ("API runs, first page", "/api/v1/agents/sync/runs", 50),
        ("API runs, deep page", "/api/v1/agents/sync/runs?offset=150", 50),
        ("API invocations, first page", "/api/v1/review/invocations", 50),
        ("API invocations, deep page", f"/api/v1/review/invocations?offset={deep_inv}", 50),
        ("UI agents, first page", "/ui/", 100),
        ("UI agents, deep page", f"/ui/?offset={deep_agents}", 100),
        ("UI agents, search", "/ui/?q=agent%200099", 100),
        ("UI agents, search, every agent", "/ui/?q=agent", 100),
        ("UI rule form (picker)", "/ui/rules/new", 100),
        ("UI runs", "/ui/sync/runs", 100),
        ("UI invocations, first page", "/ui/invocations", 100),
        ("UI invocations, deep page", f"/ui/invocations?offset={deep_inv}", 100),
    ]
    print(f"{args.agents} agents, {args.invocations} invocations, 200 runs")
    header = f"{'dialect':<10} {'what':<32} {'p50 ms':>8} {'p95 ms':>8} {'KB':>6}  target"
    print(header)
    print("-" * len(header))
    for dialect in args.dialects.split(","):
        work = Path(tempfile.mkdtemp(prefix="atryum-lists-"))
        with scratch_database(dialect, work) as url:
            fill(url, args.agents, args.invocations)
            with Server(url, work) as server, httpx2.Client(base_url=server.url, timeout=60) as c:
                for what, path, target in urls:
                    assert c.get(path).status_code == 200, path
                    times, size = [], 0
                    for _ in range(args.requests):
                        start = time.perf_counter()
                        r = c.get(path)
                        times.append((time.perf_counter() - start) * 1000)
                        size = len(r.content)
                    p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
                    verdict = "met" if p95 <= target else "NOT met"
                    print(
                        f"{dialect:<10} {what:<32} {p50:>8.1f} {p95:>8.1f} {size / 1024:>6.0f}  "
                        f"p95 <= {target} ms: {verdict}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()

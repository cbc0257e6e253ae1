"""Change-event latency: a record archived in ValidMind → the agent gone from Atryum.

    python bench/event_latency.py [--changes 50] [--database-url postgresql://…]

Starts the simulator (with 100 agent records) and `atryum run` as a separate process on a fresh
SQLite file (or the given database), wires the simulator's signed change events to Atryum with the
default 2 s debounce, then archives records one at a time (each after a quiet period longer than
the debounce, so each is an isolated event) and measures, for each, the time until
`GET /api/v1/agents` no longer lists it; then a burst: 50 archives within a second, counting the
sync runs it causes. Prints median, p95 and max, and the burst's runs.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from atryum.validmind.sim.app import SimServer
from atryum.validmind.sim.state import SimState
from benchkit import free_port

ORG, SLUG = "org-bench", "ai-agent"


def poll(check: object, timeout: float, interval: float = 0.01) -> float:
    """Seconds until `check()` is truthy."""
    assert callable(check)
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"timed out after {timeout} s")
        time.sleep(interval)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="atryum-latency-"))
    db = args.database_url or f"sqlite:///{tmp / 'atryum.db'}"
    secret = secrets.token_urlsafe(32)
    state = SimState()
    state.add_org(ORG, "Bench Org")
    state.add_record_type(ORG, SLUG, "AI Agent")
    state.add_custom_field(ORG, SLUG, "charter", "Charter", "long-text")
    cuids = state.bulk_create(ORG, SLUG, count=max(100, args.changes + 60))
    port = free_port()
    atryum_url = f"http://127.0.0.1:{port}"
    with SimServer(state) as sim:
        config = tmp / "atryum.toml"
        config.write_text(
            f'[server]\nlisten_addr = "127.0.0.1:{port}"\ndatabase_url = "{db}"\n'
            f'[backend]\nbase_url = "{sim.url}"\nmachine_key = "sim-machine-key"\n'
            'machine_secret = "sim-machine-secret"\n'
            f'[sync]\nmax_removals = 1000\n[validmind]\nwebhook_secret = "{secret}"\n'
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "atryum.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "atryum.log").open("wb"),
            env={**os.environ},
        )
        try:
            with httpx2.Client(base_url=atryum_url, timeout=10) as api:

                def up() -> bool:
                    try:
                        return api.get("/healthz").status_code == 200
                    except httpx2.HTTPError:
                        return False

                poll(up, 30)
                scope = {"org_cuid": ORG, "agent_record_type_slug": SLUG}
                api.put("/api/v1/settings", json=scope).raise_for_status()

                def active() -> set[str]:
                    page = api.get("/api/v1/agents", params={"limit": 500}).json()
                    return {a["vm_cuid"] for a in page["items"]}

                poll(lambda: len(active()) == len(cuids), 60)
                httpx2.put(
                    f"{sim.url}/admin/notify",
                    json={"atryum_url": atryum_url, "mode": "event", "webhook_secret": secret},
                ).raise_for_status()
                latencies = []
                for cuid in cuids[: args.changes]:
                    time.sleep(2.1)  # a quiet period: the event is the first of its window
                    state.archive_record(cuid)
                    latencies.append(poll(lambda c=cuid: c not in active(), 30))

                def run_count() -> int:
                    return int(api.get("/api/v1/agents/sync/runs?limit=1").json()["total"])

                time.sleep(2.1)
                before = run_count()
                burst = cuids[args.changes : args.changes + 50]
                started = time.perf_counter()
                for cuid in burst:
                    state.archive_record(cuid)
                    time.sleep(max(0.0, 1.0 / len(burst) - 0.001))
                burst_seconds = time.perf_counter() - started
                poll(lambda: not (set(burst) & active()), 60)
                time.sleep(2.5)  # a follow-up run, if any, has started by now
                poll(
                    lambda: all(
                        r["finished_at"]
                        for r in api.get("/api/v1/agents/sync/runs?limit=5").json()["items"]
                    ),
                    60,
                )
                burst_runs = run_count() - before
        finally:
            proc.terminate()
            proc.wait(20)
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)]
    print(f"{'changes':>8} {'debounce s':>10} {'median s':>9} {'p95 s':>7} {'max s':>7}  target")
    print(
        f"{len(latencies):>8} {2.0:>10.1f} {statistics.median(latencies):>9.3f} {p95:>7.3f} "
        f"{latencies[-1]:>7.3f}  isolated p95 <= 0.3 s: {'met' if p95 <= 0.3 else 'NOT met'}"
    )
    print(
        f"burst: 50 archives in {burst_seconds:.2f} s -> {burst_runs} sync runs  "
        f"(<= 2: {'met' if burst_runs <= 2 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()

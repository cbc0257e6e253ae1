"""Hook-path latency while 100 `POST /api/v1/agents/sync?wait=true` callers wait on a stalled
ValidMind (issue 14 row 5), next to the same load with nobody waiting, in one run.

    .venv/bin/python bench/gate_under_sync_wait.py [--rate 50] [--duration 10] [--waiters 100]
                                                   [--dialects sqlite,postgresql]

One `atryum run` per dialect against the simulator (in this process); the simulator's agents
endpoint is made to stall for longer than the measurement, a sync is started, and `--waiters`
callers ask for it with `wait=true`. Meanwhile hook submissions (auto-approved by a rule) are
sent open-loop at `--rate`. Target: p99 < 50 ms with the waiters.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import httpx2

from atryum.validmind.sim.app import SimServer
from atryum.validmind.sim.state import SimState
from benchkit import scratch_database
from gate_latency import Server, drive, percentile

ORG, SLUG = "org-bench", "ai-agent"
TARGET_P99_MS = 50.0


def _sim_state() -> SimState:
    state = SimState()
    state.add_org(ORG, "Bench Org")
    state.add_record_type(ORG, SLUG, "AI Agent")
    state.add_custom_field(ORG, SLUG, "charter", "Charter", "long-text")
    state.bulk_create(ORG, SLUG, count=10)
    return state


async def _with_waiters(url: str, waiters: int, rate: int, duration: float) -> tuple:
    limits = httpx2.Limits(max_connections=waiters + 10)
    async with httpx2.AsyncClient(base_url=url, timeout=duration + 120, limits=limits) as http:
        calls = [
            asyncio.create_task(http.post("/api/v1/agents/sync?wait=true")) for _ in range(waiters)
        ]
        await asyncio.sleep(1.0)  # let them all arrive and park before measuring
        measured = await drive(url, rate, duration)
        parked = sum(not c.done() for c in calls)
        for c in calls:
            c.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
    return measured, parked


def bench(dialect: str, rate: int, duration: float, waiters: int) -> list[tuple]:
    state = _sim_state()
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="atryum-bench-") as tmp,
        SimServer(state) as sim,
    ):
        workdir = Path(tmp)
        backend = (
            f'[backend]\nbase_url = "{sim.url}"\nmachine_key = "sim-machine-key"\n'
            'machine_secret = "sim-machine-secret"\n'
        )
        with scratch_database(dialect, workdir) as db, Server(db, workdir, backend) as server:
            scope = {"org_cuid": ORG, "agent_record_type_slug": SLUG}
            httpx2.put(f"{server.url}/api/v1/settings", json=scope).raise_for_status()
            rule = {"action": "auto_approve", "tool_patterns": ["Read"]}
            httpx2.post(f"{server.url}/api/v1/rules", json=rule).raise_for_status()
            asyncio.run(drive(server.url, rate, 2))  # warm-up
            print(f"  {dialect}: quiet, {rate}/s for {duration:.0f} s …", file=sys.stderr)
            rows.append(
                (dialect, "nobody waiting", asyncio.run(drive(server.url, rate, duration)), 0)
            )
            # the next pull stalls past the measurement (1 s of arrivals + duration), then ends
            state.set_faults(delay_seconds=duration + 4, times=1)
            httpx2.post(f"{server.url}/api/v1/agents/sync").raise_for_status()
            print(f"  {dialect}: {waiters} waiters, {rate}/s …", file=sys.stderr)
            measured, parked = asyncio.run(_with_waiters(server.url, waiters, rate, duration))
            rows.append((dialect, f"{waiters} sync?wait=true waiting", measured, parked))
            state.clear_faults()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--waiters", type=int, default=100)
    parser.add_argument("--dialects", default="sqlite,postgresql")
    args = parser.parse_args()
    rows = []
    for dialect in [d.strip() for d in args.dialects.split(",") if d.strip()]:
        rows.extend(bench(dialect, args.rate, args.duration, args.waiters))
    head = f"{'dialect':<11}{'while':<30}{'parked':>7}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    print(head + "  target")
    print("-" * (len(head) + 8))
    for dialect, label, (lat, errors, _wall), parked in rows:
        p99 = percentile(lat, 0.99)
        p50 = statistics.median(lat) if lat else float("nan")
        verdict = ("met" if p99 < TARGET_P99_MS and not errors else "MISSED") if parked else ""
        print(f"{dialect:<11}{label:<30}{parked:>7}{p50:>9.2f}{p99:>9.2f}{errors:>8}  {verdict}")
    print(f"\ntarget: hook p99 < {TARGET_P99_MS:.0f} ms while the waiters are parked")


if __name__ == "__main__":
    main()

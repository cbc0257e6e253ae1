"""Hook-path latency: auto-approve decisions at fixed request rates against one `atryum run`.

    .venv/bin/python bench/gate_latency.py [--rates 50,200,500] [--duration 30]
                                           [--dialects sqlite,postgresql] [--workers 1,2]

For each dialect a fresh database (a temporary SQLite file; a fresh schema in the PostgreSQL at
ATRYUM_TEST_POSTGRES_URL) and one `atryum run` subprocess with an `auto_approve` rule. The
client is open-loop: request i is sent at t0 + i/rate whatever earlier requests are doing, and
its latency counts from that scheduled moment (so a stalled server cannot hide its queue). Each
request is a full hook submission (`POST /api/v1/external/invocations`) with a fresh request id:
agent resolution, rule evaluation, the invocation row, its two events and its approval row, in
one transaction. An error is a transport failure, a non-2xx answer or a status other than
`approved`. Targets at 200/s: p50 ≤ 5 ms, p99 ≤ 25 ms, zero errors. The load comes from
`benchkit.LeanClient`, which leaves the cores to the server. `--workers 1,2` measures each
dialect once per `atryum run --workers` count (SQLite refuses more than one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx2

from benchkit import LeanClient, free_port, open_loop, scratch_database

TARGET_RATE, TARGET_P50_MS, TARGET_P99_MS = 200, 5.0, 25.0


@dataclass
class Result:
    dialect: str
    workers: int
    rate: int
    sent: int
    achieved: float
    p50: float
    p95: float
    p99: float
    errors: int


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Server:
    """One `atryum run` subprocess on a free port, with its own config file."""

    def __init__(
        self, database_url: str, workdir: Path, extra_config: str = "", workers: int = 1
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "atryum.toml"
        config.write_text(
            f'[server]\nlisten_addr = "127.0.0.1:{self.port}"\ndatabase_url = "{database_url}"\n'
            + extra_config
        )
        self.log = (workdir / "atryum.log").open("w")
        atryum = Path(sys.executable).with_name("atryum")
        cmd = [str(atryum)] if atryum.exists() else [sys.executable, "-m", "atryum.cli"]
        self.proc = subprocess.Popen(
            [*cmd, "run", "--config", str(config), "--workers", str(workers)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx2.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"atryum run did not start; see {self.log.name}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def drive(
    url: str,
    rate: int,
    duration: float,
    *,
    headers: dict[str, str] | None = None,
    agent_id: str | None = None,
) -> tuple[list[float], int, float]:
    """Open-loop hook submissions; returns (latencies in ms of approvals, errors, wall s)."""
    client = LeanClient(url, headers)

    async def one() -> bool:
        body = {
            "source": "claude-code",
            "tool": "Read",
            "input": {"file_path": "/repo/README.md"},
            "request_id": f"toolu_{uuid.uuid4().hex}",
            "client_session_id": "bench",
            "agent_id": agent_id,
        }
        status, answer = await client.request(
            "POST", "/api/v1/external/invocations", json.dumps(body).encode()
        )
        return status in (200, 201) and json.loads(answer)["status"] == "approved"

    try:
        return await open_loop(one, rate, duration)
    finally:
        client.close()


def bench_dialect(
    dialect: str, rates: list[int], duration: float, workers: int = 1
) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="atryum-bench-") as tmp:
        workdir = Path(tmp)
        with (
            scratch_database(dialect, workdir) as url,
            Server(url, workdir, workers=workers) as server,
        ):
            r = httpx2.post(
                f"{server.url}/api/v1/rules",
                json={"action": "auto_approve", "tool_patterns": ["Read"]},
            )
            r.raise_for_status()
            asyncio.run(drive(server.url, 50, 2))  # warm-up: connections, caches
            for rate in rates:
                what = f"{dialect}, {workers} worker(s)"
                print(f"  {what}: {rate}/s for {duration:.0f} s …", file=sys.stderr)
                lat, errors, wall = asyncio.run(drive(server.url, rate, duration))
                results.append(
                    Result(
                        dialect=dialect,
                        workers=workers,
                        rate=rate,
                        sent=len(lat) + errors,
                        achieved=len(lat) / wall,
                        p50=statistics.median(lat) if lat else float("nan"),
                        p95=percentile(lat, 0.95),
                        p99=percentile(lat, 0.99),
                        errors=errors,
                    )
                )
    return results


def table(results: list[Result]) -> str:
    head = (
        f"{'dialect':<11}{'workers':>8}{'target/s':>9}{'achieved/s':>12}{'sent':>8}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}  target"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        verdict = ""
        if r.rate == TARGET_RATE:
            met = r.p50 <= TARGET_P50_MS and r.p99 <= TARGET_P99_MS and r.errors == 0
            verdict = "met" if met else "MISSED"
        lines.append(
            f"{r.dialect:<11}{r.workers:>8}{r.rate:>9}{r.achieved:>12.1f}{r.sent:>8}"
            f"{r.p50:>9.2f}{r.p95:>9.2f}{r.p99:>9.2f}{r.errors:>8}  {verdict}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rates", default="50,200,500", help="requests/s, comma-separated")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per rate")
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument(
        "--workers", default="1", help="`atryum run --workers` counts to compare, e.g. 1,2"
    )
    args = parser.parse_args()
    rates = [int(x) for x in args.rates.split(",") if x]
    results: list[Result] = []
    for dialect in [d.strip() for d in args.dialects.split(",") if d.strip()]:
        for workers in [int(x) for x in args.workers.split(",") if x]:
            results.extend(bench_dialect(dialect, rates, args.duration, workers))
    print(table(results))
    print(
        f"\ntargets at {TARGET_RATE}/s: p50 ≤ {TARGET_P50_MS:.0f} ms, p99 ≤ "
        f"{TARGET_P99_MS:.0f} ms, zero errors (latency from each request's scheduled send time)"
    )


if __name__ == "__main__":
    main()

"""MCP proxy overhead: `tools/call` latency direct to the upstream vs through Atryum, and the
stdio pool vs spawning a process per call.

    .venv/bin/python bench/mcp_overhead.py [--rates 50,200,400] [--duration 10] [--workers 1,2]

The upstream is the demo's own MCP server (`atryum.mcp.demo_server`, tool `add`), once over
stdio and once over streamable HTTP. "direct" drives it with the `mcp` SDK's client session
(stdio) or plain HTTP on an initialised upstream session (HTTP); "atryum" posts the same
`tools/call` to one `atryum run` subprocess (SQLite) at `/mcp/<server>`, where an
`auto_approve` rule decides it and the invocation, its events and its outcome are committed
before the answer. Both HTTP loads come from `benchkit.LeanClient` (httpx would spend as much
CPU per request as it measures, on the same two cores). The load is open-loop: request i is sent
at t0 + i/rate, and its latency counts from that moment; each rate runs 2 s before it is
measured. Added latency = through Atryum - direct, per percentile. `--workers 1,2` measures
Atryum once per `atryum run --workers` count (on a SQLite file; rows "atryum xN").

Then throughput of the stdio pool (one long-lived process, calls interleaved) against the Go
original's way (a process spawned, initialised and stopped for every call), both with 4
callers. Targets: added p50 ≤ 3 ms and p99 ≤ 15 ms at 200/s; pooled ≥ 20 times spawn-per-call.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from benchkit import LeanClient, free_port, open_loop, scratch_database

TARGET_RATE, TARGET_P50_MS, TARGET_P99_MS, TARGET_POOL_RATIO = 200, 3.0, 15.0, 20.0
STDIO = StdioServerParameters(command=sys.executable, args=["-m", "atryum.mcp.demo_server"])
TOOL, ARGUMENTS = "add", {"a": 2, "b": 3}
CALL: dict[str, Any] = {"name": TOOL, "arguments": ARGUMENTS}
ACCEPT = {"Accept": "application/json, text/event-stream"}
#: Seconds at each rate before it is measured.
WARM_UP = 2.0


@dataclass
class Row:
    upstream: str
    path: str
    rate: int
    achieved: float
    p50: float
    p99: float
    errors: int


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(upstream: str, path: str, rate: int, measured: tuple[list[float], int, float]) -> Row:
    lat, errors, wall = measured
    return Row(
        upstream=upstream,
        path=path,
        rate=rate,
        achieved=len(lat) / wall,
        p50=statistics.median(lat) if lat else float("nan"),
        p99=percentile(lat, 0.99),
        errors=errors,
    )


async def measure(
    upstream: str, path: str, one: Callable[[], Awaitable[bool]], rates: list[int], duration: float
) -> list[Row]:
    """Each rate after WARM_UP seconds at that rate (not counted): connections, threads and
    caches grow to what the rate needs, and the table shows the steady state."""
    rows = []
    for rate in rates:
        print(f"  {path} {upstream}: {rate}/s …", file=sys.stderr)
        await open_loop(one, rate, WARM_UP)
        rows.append(row(upstream, path, rate, await open_loop(one, rate, duration)))
    return rows


async def direct_stdio(rates: list[int], duration: float) -> list[Row]:
    async with stdio_client(STDIO) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        async def one() -> bool:
            result = await session.call_tool(TOOL, ARGUMENTS)
            return not result.is_error

        return await measure("stdio", "direct", one, rates, duration)


def _message(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The JSON-RPC message of a plain JSON or an SSE answer."""
    if headers.get("content-type", "").startswith("text/event-stream"):
        data = [ln[5:] for ln in body.decode().splitlines() if ln.startswith("data:")]
        message: dict[str, Any] = json.loads(data[-1])
        return message
    answer: dict[str, Any] = json.loads(body)
    return answer


def _succeeded(headers: dict[str, str], body: bytes) -> bool:
    answer = _message(headers, body)
    return "result" in answer and not answer["result"].get("isError")


def _lean(url: str) -> tuple[LeanClient, str]:
    """A lean client for `url`'s server, and the path of `url`."""
    base, _, path = url.removeprefix("http://").partition("/")
    return LeanClient(f"http://{base}"), "/" + path


async def direct_http(url: str, rates: list[int], duration: float) -> list[Row]:
    http, path = _lean(url)
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    }
    _, answered, _ = await http.fetch("POST", path, json.dumps(init).encode(), ACCEPT)
    headers = {
        **ACCEPT,
        "Mcp-Session-Id": answered["mcp-session-id"],
        "MCP-Protocol-Version": "2025-11-25",
    }
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await http.fetch("POST", path, json.dumps(done).encode(), headers)
    ids = itertools.count(1)

    async def one() -> bool:  # ids unique within the upstream session
        body = {"jsonrpc": "2.0", "id": next(ids), "method": "tools/call", "params": CALL}
        _, answered, answer = await http.fetch("POST", path, json.dumps(body).encode(), headers)
        return _succeeded(answered, answer)

    try:
        return await measure("http", "direct", one, rates, duration)
    finally:
        http.close()


async def through_atryum(
    url: str, upstream: str, label: str, rates: list[int], duration: float
) -> list[Row]:
    http, path = _lean(url)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": CALL}).encode()

    async def one() -> bool:
        _, answered, answer = await http.fetch("POST", path, body)
        return _succeeded(answered, answer)

    try:
        return await measure(upstream, label, one, rates, duration)
    finally:
        http.close()


class Process:
    def __init__(self, args: list[str], log: Path, ready: str) -> None:
        self.log = log.open("w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx2.get(ready, timeout=2)
                return
            except httpx2.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{args} did not start; see {log}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def atryum_config(workdir: Path, database_url: str, port: int, http_url: str) -> Path:
    config = workdir / "atryum.toml"
    args = json.dumps(["-m", "atryum.mcp.demo_server"])
    config.write_text(
        f'[server]\nlisten_addr = "127.0.0.1:{port}"\ndatabase_url = "{database_url}"\n'
        f'[[upstreams]]\nname = "stdio-calc"\nmode = "stdio"\n'
        f"command = {json.dumps(sys.executable)}\nargs = {args}\n"
        f'[[upstreams]]\nname = "http-calc"\nmode = "http"\nbase_url = "{http_url}"\n'
    )
    return config


async def throughput(call: Callable[[], Awaitable[None]], seconds: float, callers: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(callers)))
    return done / (time.perf_counter() - start)


async def pool_vs_spawn(seconds: float, callers: int = 4) -> tuple[float, float]:
    from atryum.db.types import utcnow
    from atryum.mcp.models import Server
    from atryum.mcp.pool import Upstream

    now = utcnow()
    server = Server(
        id="bench", name="bench", endpoint_slug="bench", mode="stdio", base_url="",
        command=STDIO.command, args=list(STDIO.args), env={}, auth_token=None, headers={},
        timeout_seconds=30, enabled=True, connection_status="unknown", last_checked_at=None,
        last_error_summary=None, created_at=now, updated_at=now,
    )  # fmt: skip
    pooled = Upstream(server)

    async def via_pool() -> None:
        await pooled.request("tools/call", CALL)

    async def spawned() -> None:
        async with stdio_client(STDIO) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool(TOOL, ARGUMENTS)

    await via_pool()  # start the process
    pool_rate = await throughput(via_pool, seconds, callers)
    await pooled.close()
    spawn_rate = await throughput(spawned, seconds, callers)
    return pool_rate, spawn_rate


def table(rows: list[Row]) -> str:
    head = (
        f"{'upstream':<9}{'path':<11}{'target/s':>9}{'achieved/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>7}{'added p50':>11}{'added p99':>11}  target"
    )
    lines = [head, "-" * len(head)]
    direct = {(r.upstream, r.rate): r for r in rows if r.path == "direct"}
    for r in rows:
        added, verdict = "", ""
        base = direct.get((r.upstream, r.rate))
        if r.path != "direct" and base is not None:
            d50, d99 = r.p50 - base.p50, r.p99 - base.p99
            added = f"{d50:>11.2f}{d99:>11.2f}"
            if r.rate == TARGET_RATE:
                met = d50 <= TARGET_P50_MS and d99 <= TARGET_P99_MS and r.errors == 0
                verdict = "met" if met else "MISSED"
        lines.append(
            f"{r.upstream:<9}{r.path:<11}{r.rate:>9}{r.achieved:>11.1f}{r.p50:>9.2f}"
            f"{r.p99:>9.2f}{r.errors:>7}{added or ' ' * 22}  {verdict}"
        )
    return "\n".join(lines)


def through_atryum_run(
    workdir: Path, http_url: str, workers: int, rates: list[int], duration: float
) -> list[Row]:
    """Both upstreams through one `atryum run --workers N` on a fresh SQLite file."""
    label = "atryum" if workers == 1 else f"atryum x{workers}"
    port = free_port()
    rows: list[Row] = []
    own = workdir / f"workers-{workers}"
    own.mkdir()
    with scratch_database("sqlite", own) as db:
        config = atryum_config(workdir, db, port, http_url)
        atryum_url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "atryum.cli", "run", "--config", str(config)]
        cmd += ["--workers", str(workers)]
        atryum = Process(cmd, workdir / f"atryum-{workers}.log", f"{atryum_url}/healthz")
        try:
            rule = {"action": "auto_approve", "tool_patterns": ["add"]}
            httpx2.post(f"{atryum_url}/api/v1/rules", json=rule).raise_for_status()
            for name in ("stdio", "http"):
                url = f"{atryum_url}/mcp/{name}-calc"
                rows += asyncio.run(through_atryum(url, name, label, rates, duration))
        finally:
            atryum.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rates", default="50,200,400", help="requests/s, comma-separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--pool-seconds", type=float, default=5.0)
    parser.add_argument("--workers", default="1", help="`atryum run --workers` counts")
    args = parser.parse_args()
    rates = [int(x) for x in args.rates.split(",") if x]
    worker_counts = [int(x) for x in args.workers.split(",") if x]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="atryum-bench-") as tmp:
        workdir = Path(tmp)
        http_port = free_port()
        http_url = f"http://127.0.0.1:{http_port}/mcp"
        upstream = Process(
            [sys.executable, "-m", "atryum.mcp.demo_server", "http", str(http_port)],
            workdir / "upstream.log",
            f"http://127.0.0.1:{http_port}/",
        )
        try:
            rows += asyncio.run(direct_stdio(rates, args.duration))
            rows += asyncio.run(direct_http(http_url, rates, args.duration))
            for workers in worker_counts:
                rows += through_atryum_run(workdir, http_url, workers, rates, args.duration)
        finally:
            upstream.stop()
    print("  stdio pool vs spawn-per-call …", file=sys.stderr)
    pooled, spawned = asyncio.run(pool_vs_spawn(args.pool_seconds))
    rows.sort(key=lambda r: (r.upstream != "stdio", r.rate, r.path != "direct", r.path))
    print(table(rows))
    ratio = pooled / spawned if spawned else float("inf")
    verdict = "met" if ratio >= TARGET_POOL_RATIO else "MISSED"
    print(
        f"\nstdio throughput, 4 callers: pooled {pooled:.0f} calls/s, spawn-per-call "
        f"{spawned:.1f} calls/s: {ratio:.0f}x  (target ≥ {TARGET_POOL_RATIO:.0f}x: {verdict})"
    )
    print(
        f"targets at {TARGET_RATE}/s: added p50 ≤ {TARGET_P50_MS:.0f} ms, added p99 ≤ "
        f"{TARGET_P99_MS:.0f} ms, zero errors (latency from each request's scheduled send time)"
    )


if __name__ == "__main__":
    main()

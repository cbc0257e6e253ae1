"""Sync at scale: Atryum's planned bulk apply vs a naive per-record baseline.

    python bench/sync_scale.py [--sizes 1000,10000,100000] [--dialects sqlite,postgresql]
    python bench/sync_scale.py --e2e [--sizes 10000,100000] [--dialects sqlite,postgresql]

`--e2e`: the simulator (`atryum vm-sim`, a process of its own) serves records with 1 KB charters
over HTTP; printed per size and dialect: the bare fetch-and-parse of every page (httpx2 + json,
nothing else: the limit; then the same with orjson, the parser the sync uses), then a first sync,
a re-sync with nothing changed and a re-sync with 1 % changed, each in a process of its own —
wall time, peak RSS and the ratio to the limit.

For each size and dialect, in a fresh database: full first sync, re-sync with nothing changed,
re-sync with 1 % changed and 1 % archived — wall time and peak RSS, each phase in a process of its
own (so its peak memory is its own, pull included) — next to a baseline doing one upsert statement
per record and then one `DELETE … NOT IN (all kept cuids)`. Records carry ~1 KB charters. The
ValidMind pull is served from memory so the numbers are the sync's own (fetch cost depends on the
network and ValidMind).
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa

from atryum.config import parse_config
from atryum.db import migrate
from atryum.db.engine import make_engine
from atryum.sync.coordinator import SyncCoordinator
from atryum.sync.settings import update_settings
from atryum.validmind.client import (
    API_PREFIX,
    AgentsPull,
    PageSink,
    ValidMindClient,
    parse_json,
)
from benchkit import free_port, scratch_database

SIM_HEADERS = {"X-MACHINE-KEY": "sim-machine-key", "X-MACHINE-SECRET": "sim-machine-secret"}

ORG, SLUG = "org-bench", "ai-agent"
PHASES = ("first sync", "re-sync, no change", "re-sync, 1% changed + 1% archived")
CHARTER = ("May read the ledger and draft reports. May not move money. " * 20)[:1000]


def make_records(n: int, *, changed: int = 0, archived: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(archived, n):
        charter = CHARTER + (" (revised)" if i < archived + changed else "")
        out.append(
            {
                "cuid": f"rec-{i:07d}",
                "name": f"Agent {i}",
                "custom_fields": {"charter": charter, "description": "benchmark agent"},
            }
        )
    return out


class MemoryClient:
    """Stands in for ValidMindClient: answers the pull from memory."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def __enter__(self) -> MemoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def fetch_agents(
        self, org_cuid: str, record_type_slug: str, *, on_page: PageSink | None = None
    ) -> AgentsPull:
        if on_page is None:
            return AgentsPull(ORG, "Bench Org", self.records, len(self.records), True, [])
        n = len(self.records)
        for start in range(0, n, 500):
            on_page("Bench Org", n, self.records[start : start + 500])
        return AgentsPull(ORG, "Bench Org", [], n, True, [], received=n)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pull_for(phase: int, n: int) -> list[dict[str, Any]]:
    if phase < 2:
        return make_records(n)
    return make_records(n, changed=n // 100, archived=n // 100)


def run_atryum(url: str, n: int, phase: int) -> dict[str, Any]:
    engine = make_engine(url)
    config = parse_config({"sync": {"max_removals": n, "max_removal_ratio": 1.0}}, "(bench)")
    if phase == 0:
        migrate.upgrade(engine)
        update_settings(
            engine, changes={"org_cuid": ORG, "agent_record_type_slug": SLUG}, defaults=config.sync
        )
    records = pull_for(phase, n)
    factory = cast(Callable[[], ValidMindClient], functools.partial(MemoryClient, records))
    coordinator = SyncCoordinator(engine, config=config, client_factory=factory)
    start = time.perf_counter()
    run = coordinator.run_blocking(trigger="manual")
    seconds = time.perf_counter() - start
    engine.dispose()
    ok = run["status"] == "succeeded"
    return {
        "seconds": seconds,
        "peak_mb": peak_mb(),
        "error": "" if ok else f"{run['status']}: {run['error'][:80]}",
    }


def run_baseline(url: str, n: int, phase: int) -> dict[str, Any]:
    """One upsert per record, then DELETE … NOT IN (every kept cuid)."""
    engine = make_engine(url)
    if phase == 0:
        migrate.upgrade(engine)
    upsert = sa.text(
        "INSERT INTO agents (id, source, vm_organization_cuid, vm_cuid, name, description, "
        "charter, enabled, tags, created_at, updated_at) VALUES (:id, 'validmind', :org, :cuid, "
        ":name, :description, :charter, true, '[]', :now, :now) ON CONFLICT (vm_cuid) DO UPDATE "
        "SET name = excluded.name, description = excluded.description, "
        "charter = excluded.charter, updated_at = excluded.updated_at"
    )
    records = pull_for(phase, n)
    start = time.perf_counter()
    error = ""
    try:
        with engine.begin() as conn:
            now = time.strftime("%Y-%m-%d %H:%M:%S")
            for r in records:
                conn.execute(
                    upsert,
                    {
                        "id": str(uuid.uuid4()),
                        "org": ORG,
                        "cuid": r["cuid"],
                        "name": r["name"],
                        "description": r["custom_fields"]["description"],
                        "charter": r["custom_fields"]["charter"],
                        "now": now,
                    },
                )
            kept = [r["cuid"] for r in records]
            conn.execute(
                sa.text(
                    "DELETE FROM agents WHERE source = 'validmind' AND vm_cuid NOT IN :kept"
                ).bindparams(sa.bindparam("kept", expanding=True)),
                {"kept": kept},
            )
    except Exception as exc:  # the baseline is expected to hit parameter limits
        first_line = str(exc).splitlines()[0]
        if first_line.startswith("("):  # SQLAlchemy's "(driver.Error) message"
            first_line = first_line.split(") ", 1)[-1]
        error = f"{type(exc).__name__}: {first_line[:90]}"
    seconds = time.perf_counter() - start
    engine.dispose()
    return {"seconds": seconds, "peak_mb": peak_mb(), "error": error}


def child(impl: str, url: str, n: int, phase: int) -> None:
    row = (run_atryum if impl == "atryum" else run_baseline)(url, n, phase)
    print(json.dumps(row))


# -- end to end, over HTTP ---------------------------------------------------------------------
E2E_LIMIT = "bare fetch + parse"
#: One round: (row, phase of the child process).
E2E_ROUND = (
    (E2E_LIMIT, "bare"),
    ("bare, orjson parse", "bare-orjson"),
    ("re-sync, no change", "re-sync"),
    ("re-sync, 1% changed", "re-sync changed"),
)


def _sim_backend(sim_url: str) -> dict[str, Any]:
    return {
        "base_url": sim_url,
        "machine_key": "sim-machine-key",
        "machine_secret": "sim-machine-secret",
    }


def e2e_child(sim_url: str, db: str, n: int, phase: str) -> None:
    """One measurement in a fresh process: `bare` fetch, or a sync of the given phase."""
    import httpx2

    if phase.startswith("bare"):
        parse = parse_json if phase == "bare-orjson" else json.loads
        start = time.perf_counter()
        with httpx2.Client(base_url=sim_url + API_PREFIX, headers=SIM_HEADERS, timeout=60) as c:
            page, got = 1, 0
            while True:
                params: dict[str, Any] = {"org_cuid": ORG, "primary_record_type_slug": SLUG}
                params["page"] = page
                data = parse(c.get("/agents", params={**params, "limit": 500}).content)
                got += len(data["results"])
                if not data["results"] or got >= data["total"]:
                    break
                page += 1
        print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": peak_mb()}))
        return
    config = parse_config(
        {"backend": _sim_backend(sim_url), "sync": {"max_removals": n, "max_removal_ratio": 1.0}},
        "(bench)",
    )
    engine = make_engine(db)
    coordinator = SyncCoordinator(
        engine, config=config, client_factory=lambda: ValidMindClient(config.backend)
    )
    start = time.perf_counter()
    run = coordinator.run_blocking(trigger="manual")
    seconds = time.perf_counter() - start
    engine.dispose()
    ok = run["status"] == "succeeded"
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": peak_mb(),
                "error": "" if ok else f"{run['status']}: {run['error'][:80]}",
                "counts": [run["created"], run["updated"], run["unchanged"]],
            }
        )
    )


def _e2e_run(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--e2e-child", *args], capture_output=True, text=True
    )
    if out.returncode:
        return {"seconds": float("nan"), "peak_mb": float("nan"), "error": out.stderr[-200:]}
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def _revise(admin: Any, cuids: list[str], round_no: int) -> None:
    """A new charter for each of these records, different in every round."""
    for cuid in cuids:
        charter = f"{CHARTER} (revision {round_no})"
        admin.patch(f"/admin/records/{cuid}", json={"custom_fields": {"charter": charter}})


def _median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median time (its own peak memory), with every run's error."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    row = dict(ordered[len(ordered) // 2])
    row["error"] = " ".join(sorted({r.get("error", "") for r in runs} - {""}))
    return row


def _e2e_phases(
    sim_url: str, db: str, n: int, repeat: int, revise: Callable[[int], None]
) -> list[tuple[str, dict[str, Any], float]]:
    """(phase, its median run, its median ratio to the bare fetch of the same round).

    The first sync runs once; then each round runs the bare fetch (json, then orjson) and the two
    re-syncs back to back, so a machine slowing down or speeding up moves a round's limit and its
    syncs together, and each re-sync is divided by its own round's limit.
    """
    first = _e2e_run(sim_url, db, str(n), "first sync")
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in E2E_ROUND}
    ratios: dict[str, list[float]] = {name: [] for name, _ in E2E_ROUND}
    for i in range(repeat):
        got: dict[str, dict[str, Any]] = {}
        for name, phase in E2E_ROUND:
            if phase == "re-sync changed":
                revise(i)
            got[name] = _e2e_run(sim_url, db, str(n), phase)
        for name, row in got.items():
            rounds[name].append(row)
            ratios[name].append(row["seconds"] / got[E2E_LIMIT]["seconds"])
    limit = statistics.median(r["seconds"] for r in rounds[E2E_LIMIT])
    out = [
        (name, _median_row(runs), statistics.median(ratios[name])) for name, runs in rounds.items()
    ]
    out.insert(2, ("first sync", first, first["seconds"] / limit))
    return out


def e2e(sizes: list[int], dialects: list[str], repeat: int) -> None:
    import httpx2

    header = (
        f"{'dialect':<10} {'records':>8}  {'phase':<22} {'seconds':>8} {'x limit':>8} "
        f"{'peak MB':>8}  note"
    )
    print(f"median of {repeat} rounds (the first sync: one run)")
    print(header)
    print("-" * len(header))
    for dialect in dialects:
        for n in sizes:
            port = free_port()
            sim_url = f"http://127.0.0.1:{port}"
            sim = subprocess.Popen(
                [sys.executable, "-m", "atryum.cli", "vm-sim", "--empty", "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        httpx2.get(sim_url + "/admin/health")
                        break
                    except httpx2.HTTPError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                admin = httpx2.Client(base_url=sim_url, timeout=300)
                admin.post("/admin/orgs", json={"cuid": ORG, "name": "Bench Org"})
                admin.post(
                    "/admin/record-types", json={"org_cuid": ORG, "slug": SLUG, "name": "AI Agent"}
                )
                cuids = admin.post(
                    "/admin/records/bulk",
                    json={"org_cuid": ORG, "slug": SLUG, "count": n, "charter_bytes": 1000},
                ).json()["cuids"]
                with scratch_database(dialect) as db:
                    engine = make_engine(db)
                    migrate.upgrade(engine)
                    update_settings(
                        engine,
                        changes={"org_cuid": ORG, "agent_record_type_slug": SLUG},
                        defaults=parse_config({}, "(bench)").sync,
                    )
                    engine.dispose()
                    revise = functools.partial(_revise, admin, cuids[: n // 100])
                    rows = _e2e_phases(sim_url, db, n, repeat, revise)
                for name, row, ratio in rows:
                    print(
                        f"{dialect:<10} {n:>8}  {name:<22} {row['seconds']:>8.2f} {ratio:>7.2f}x "
                        f"{row['peak_mb']:>8.0f}  {row.get('error', '')}",
                        flush=True,
                    )
            finally:
                sim.terminate()
                sim.wait(10)


def measure(impl: str, dialect: str, n: int) -> list[dict[str, Any]]:
    """The three phases on one fresh database, each in its own process."""
    rows = []
    with scratch_database(dialect) as url:
        for phase, name in enumerate(PHASES):
            out = subprocess.run(
                [sys.executable, __file__, "--child", impl, url, str(n), str(phase)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode == 0:
                row = json.loads(out.stdout.strip().splitlines()[-1])
            else:
                msg = (out.stderr.strip().splitlines() or ["crashed"])[-1][:70]
                row = {"seconds": float("nan"), "peak_mb": float("nan"), "error": msg}
            rows.append({"phase": name, **row})
    return rows


def ratio(base: dict[str, Any], ours: dict[str, Any], key: str) -> str:
    """base / ours; when only the baseline failed, its time until failing is a lower bound."""
    if ours["error"] or not ours[key]:
        return "n/a"
    if base["error"]:
        return f">={base[key] / ours[key]:.1f}x" if key == "seconds" else "n/a"
    return f"{base[key] / ours[key]:.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="")
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--e2e", action="store_true", help="the simulator over HTTP")
    parser.add_argument("--repeat", type=int, default=3, help="--e2e: rounds of each re-sync")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--e2e-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sizes_given = bool(args.sizes)
    args.sizes = args.sizes or "1000,10000,100000"
    if args.e2e_child:
        sim_url, db, n, phase = args.e2e_child
        e2e_child(sim_url, db, int(n), phase)
        return
    if args.e2e:
        sizes = [int(x) for x in (args.sizes if args.sizes_given else "10000,100000").split(",")]
        e2e(sizes, args.dialects.split(","), args.repeat)
        return
    if args.child:
        impl, url, n, phase = args.child
        child(impl, url, int(n), int(phase))
        return
    header = (
        f"{'dialect':<10} {'records':>8}  {'phase':<34} {'atryum s':>9} {'peak MB':>8}"
        f" {'baseline s':>10} {'peak MB':>8} {'speed-up':>8} {'mem ratio':>9}  note"
    )
    print(header)
    print("-" * len(header))
    for dialect in args.dialects.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            ours, base = measure("atryum", dialect, n), measure("baseline", dialect, n)
            for a, b in zip(ours, base, strict=True):
                note = "; ".join(
                    x
                    for x in (
                        f"atryum {a['error']}" if a["error"] else "",
                        f"baseline failed: {b['error']}" if b["error"] else "",
                    )
                    if x
                )
                print(
                    f"{dialect:<10} {n:>8}  {a['phase']:<34} {a['seconds']:>9.2f} "
                    f"{a['peak_mb']:>8.0f} {b['seconds']:>10.2f} {b['peak_mb']:>8.0f} "
                    f"{ratio(b, a, 'seconds'):>8} {ratio(b, a, 'peak_mb'):>9}  {note}",
                    flush=True,
                )
    print(
        "\nspeed-up = baseline time / atryum time (>= when the baseline failed: its time until "
        "failing);\nmem ratio = baseline peak / atryum peak (each phase in its own process)."
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()

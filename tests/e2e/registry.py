"""Compare Atryum's registry with ValidMind, and poll the run history, over real HTTP/SQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
import sqlalchemy as sa

from atryum.sync.runs import list_runs
from tests.support import ORG, SLUG

Row = tuple[str, str, str]


def atryum_view(url: str) -> list[Row]:
    """(vm_cuid, name, charter) of every active synced agent, as Atryum's API lists them."""
    items: list[dict[str, Any]] = []
    while True:  # the list is paged
        page = httpx2.get(
            f"{url}/api/v1/agents", params={"offset": len(items), "limit": 500}, timeout=10
        ).json()
        items += page["items"]
        if not page["items"] or len(items) >= page["total"]:
            break
    return sorted((a["vm_cuid"], a["name"], a["charter"]) for a in items if a["source"] != "manual")


def validmind_view(state: Any, org: str = ORG, slug: str = SLUG) -> list[Row]:
    """(cuid, name, charter) of every active record in the simulator."""
    records, _ = state.active_records(org, slug)
    return sorted((r["cuid"], r["name"], r["custom_fields"].get("charter", "")) for r in records)


def in_line(url: str, state: Any) -> bool:
    return atryum_view(url) == validmind_view(state)


def idle(engine: sa.Engine) -> bool:
    """Runs were written and none of them is still running."""
    runs = list_runs(engine, limit=1000)
    return bool(runs) and all(r["status"] != "running" for r in runs)


def settled(url: str, state: Any, engine: sa.Engine) -> bool:
    """No run running and the registry exactly matches ValidMind."""
    return idle(engine) and in_line(url, state)


def assert_never(check: Callable[[], Any], *, seconds: float, interval: float = 0.02) -> None:
    """Poll `check` for `seconds` (a deadline, not a sleep); fail as soon as it turns truthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        assert not value, f"happened within {seconds} s: {value!r}"
        time.sleep(interval)

"""Body size and JSON depth limits on every route, over real HTTP, on both databases; reads show
what was stored before the limits existed instead of failing (issue 14 rows 2 and 3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from atryum.db.tables import invocations
from tests.gateway.live import HOOK, REVIEW, Api
from tests.support import LiveServer, make_config


@pytest.fixture
def server(engine: sa.Engine, live_atryum: Any) -> Iterator[LiveServer]:
    config = make_config(limits={"max_body_bytes": 64 * 1024, "max_json_depth": 16})
    with live_atryum(config, engine) as s:
        yield s


@pytest.fixture
def api(server: LiveServer) -> Iterator[Api]:
    with Api(server.url) as a:
        yield a


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth - 1):
        value = [value] if i % 2 else {"k": value}
    return value


def hook_body(value: Any) -> bytes:
    return json.dumps({"source": "claude-code", "tool": "Bash", "input": {"v": value}}).encode()


def stored(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(invocations)).scalar_one())


def refused(r: httpx2.Response, status: int, fragment: str) -> None:
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]["message"], r.text


def test_the_default_cap_is_one_mebibyte() -> None:
    limits = make_config().limits
    assert (limits.max_body_bytes, limits.max_json_depth) == (1024 * 1024, 64)


def test_a_body_over_the_cap_is_413_declared_or_streamed(
    server: LiveServer, api: Api, engine: sa.Engine
) -> None:
    big = hook_body("x" * (64 * 1024))
    refused(api.http.post(HOOK, content=big), 413, "larger than 65536 bytes")

    def chunked() -> Iterator[bytes]:  # no Content-Length: the cap counts what arrives
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    headers = {"content-type": "application/json"}
    refused(api.http.post(HOOK, content=chunked(), headers=headers), 413, "max_body_bytes")
    refused(api.http.put("/api/v1/policy", content=b" " * 70_000), 413, "larger")
    assert stored(engine) == 0
    assert api.submit("Read", input={"v": "x" * 60_000})["status"] == "pending_approval"


@pytest.mark.parametrize("where", ["input", "result"])
def test_json_nested_too_deep_is_422_and_the_review_stays_green(
    server: LiveServer, api: Api, engine: sa.Engine, where: str
) -> None:
    inv = api.submit("Bash", input={"v": nested(14)})  # within 16 with the envelope
    if where == "input":
        r = api.http.post(HOOK, content=hook_body(nested(900)), headers=JSON)
    else:
        api.decide(inv["invocation_id"], "approve")
        api.ok(api.http.patch(f"{HOOK}/{inv['invocation_id']}", json=running()))
        body = {"execution_status": "completed", "result": nested(900)}
        r = api.http.patch(f"{HOOK}/{inv['invocation_id']}", json=body)
    refused(r, 422, "levels deep; at most 16")
    assert stored(engine) == 1
    assert api.ok(api.http.get(REVIEW))["total"] == 1
    # brackets inside strings are text, not nesting
    assert api.submit("Read", input={"v": "[" * 5000})["status"] == "pending_approval"


JSON = {"content-type": "application/json"}


def running() -> dict[str, str]:
    return {"execution_status": "running"}


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(
    server: LiveServer, api: Api, engine: sa.Engine, constant: bytes
) -> None:
    body = b'{"source": "s", "tool": "t", "input": {"x": ' + constant + b"}}"
    refused(api.http.post(HOOK, content=body, headers=JSON), 422, "NaN or Infinity")
    assert stored(engine) == 0
    assert api.submit("t", input={"x": constant.decode()})["status"] == "pending_approval"


def test_what_was_stored_before_the_limits_is_still_readable(
    server: LiveServer, api: Api, engine: sa.Engine
) -> None:
    """A value nested 900 levels deep got in before the limits: the review list, the invocation,
    the UI and a deny still answer (they answered 500, and the deny committed anyway)."""
    inv = api.submit("Bash")
    with engine.begin() as conn:
        conn.execute(
            invocations.update()
            .where(invocations.c.id == inv["invocation_id"])
            .values(input={"v": nested(900)})
        )
    items = api.ok(api.http.get(REVIEW))["items"]
    assert items[0]["input"] == {"unreadable": "the stored value is nested deeper than 200 levels"}
    assert api.poll(inv["invocation_id"])["input"]["unreadable"]
    page = api.http.get(f"/ui/invocations/{inv['invocation_id']}")
    assert page.status_code == 200 and "nested deeper than 200 levels" in page.text
    assert api.decide(inv["invocation_id"], "deny")["status"] == "denied"

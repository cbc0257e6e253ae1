"""A pending MCP call survives kill -9 of Atryum (the client retries the same request on the
same session and gets the result once a human approves; nothing runs before), and a waiting
client gets the result of an approval given on another replica (PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa

from tests.conftest import _pg_schema_url
from tests.e2e.processes import AtryumProcess
from tests.gateway.live import REVIEW, Api
from tests.mcp.conftest import RunLog, stdio_upstream
from tests.mcp.test_proxy import AGENT, Raw, in_thread, pending_ids, register
from tests.support import wait_until

WRITE = {"name": "write_note", "arguments": {"title": "kept", "text": "through a restart"}}


def _procs(tmp: Path, db_url: str, run_log: RunLog, *names: str) -> list[AtryumProcess]:
    return [
        AtryumProcess(
            tmp,
            name,
            database_url=db_url,
            sim_url="",
            upstreams=[stdio_upstream("calc", run_log)],
        )
        for name in names
    ]


def _mcp(proc: AtryumProcess, session_id: str | None = None) -> Raw:
    return Raw(f"{proc.url}/mcp/calc?agent_id={AGENT}", session_id)


def test_a_pending_call_survives_kill_9(db_url: str, tmp_path: Path, run_log: RunLog) -> None:
    (atryum,) = _procs(tmp_path, db_url, run_log, "a")
    atryum.start()
    try:
        with Api(atryum.url) as api:
            register(api)
        client = _mcp(atryum)
        client.initialize()
        first = in_thread(lambda: client.call(5, "tools/call", WRITE))
        with Api(atryum.url) as api:
            (inv_id,) = wait_until(lambda: pending_ids(api, "write_note"))
        atryum.kill9()
        first["thread"].join(20)
        assert isinstance(first.get("error"), httpx2.HTTPError)  # the client lost Atryum

        atryum.start()
        with Api(atryum.url) as api:
            assert pending_ids(api, "write_note") == [inv_id]  # the same call, still pending
            assert run_log.runs() == []
            # approved before the client is back: its retry of the same request resumes the
            # call (runs it once), it is not a new call waiting for a human
            api.decide(inv_id, "approve", "after the restart")
            retry = _mcp(atryum, client.session_id).call(5, "tools/call", WRITE)
            assert retry["result"]["content"][0]["text"] == "saved kept"
            again = _mcp(atryum, client.session_id).call(5, "tools/call", WRITE)
            assert again["result"]["content"][0]["text"] == "saved kept"  # the recorded result
            assert api.ok(api.http.get(f"{REVIEW}/{inv_id}"))["status"] == "succeeded"
            assert pending_ids(api, "write_note") == []
        assert run_log.runs("write_note") == ["write_note kept"]
    finally:
        atryum.stop()


@pytest.fixture
def pg_url(pg_admin: sa.Engine, request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL schema shared by the replicas of one test."""
    schema, url = _pg_schema_url(pg_admin)

    def drop() -> None:
        with pg_admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

    request.addfinalizer(drop)
    return url


def test_an_approval_on_another_replica_reaches_the_waiting_client(
    pg_url: str, tmp_path: Path, run_log: RunLog
) -> None:
    a, b = _procs(tmp_path, pg_url, run_log, "a", "b")
    a.start()
    b.start()
    try:
        with Api(a.url) as api:
            register(api)
        client = _mcp(a)
        client.initialize()
        waiting = in_thread(lambda: client.call(1, "tools/call", WRITE))
        with Api(b.url) as api_b:
            (inv_id,) = wait_until(lambda: pending_ids(api_b, "write_note"))
            api_b.decide(inv_id, "approve", "from replica B")
        waiting["thread"].join(90)
        assert waiting["value"]["result"]["content"][0]["text"] == "saved kept"
        assert run_log.runs("write_note") == ["write_note kept"]  # run once, by replica A
    finally:
        a.stop()
        b.stop()

"""`atryum demo` as a real process on free ports: the five seeded agents appear, an archive in
the simulator reaches Atryum as a signed event, and it stops cleanly. Leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from atryum.demo import DEMO_ORG, DEMO_RECORD_TYPE
from tests.support import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]


class Demo:
    def __init__(self, tmp: Path) -> None:
        self.port, self.sim_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.database = tmp / "demo.db"
        self.log = tmp / "demo.log"
        args = ["--port", str(self.port), "--sim-port", str(self.sim_port)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "atryum.cli",
                    "demo",
                    *args,
                    "--database",
                    str(self.database),
                ],
                cwd=tmp,  # anything written relative to the working directory stays in tmp
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def _get(self, url: str) -> Any:
        if self.proc.poll() is not None:
            raise AssertionError(f"atryum demo exited early:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx2.get(url, timeout=2).json()
        except httpx2.HTTPError:
            return None

    def names(self) -> list[str] | None:
        """Names of the agents Atryum lists (None while it does not answer)."""
        data = self._get(f"{self.url}/api/v1/agents")
        return None if data is None else sorted(a["name"] for a in data["items"])

    def seeded(self) -> list[dict[str, Any]] | None:
        """The simulator's active demo agent records (None while it does not answer)."""
        data = self._get(f"{self.sim_url}/admin/state")
        if data is None:
            return None
        return [
            r
            for r in data["records"]
            if (r["org_cuid"], r["record_type_slug"], r["status"])
            == (DEMO_ORG, DEMO_RECORD_TYPE, "active")
        ]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path)
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait(10)


def test_demo_starts_syncs_and_follows_events(demo: Demo) -> None:
    seeded = wait_until(demo.seeded, timeout=60)
    names = sorted(r["name"] for r in seeded)
    assert len(names) == 5
    wait_until(lambda: demo.names() == names, timeout=60)

    gone = next(r for r in seeded if r["name"] == names[0])
    r = httpx2.post(f"{demo.sim_url}/admin/records/{gone['cuid']}/archive", timeout=10)
    assert r.status_code == 200, r.text
    wait_until(lambda: demo.names() == names[1:], timeout=30)  # via a signed change event
    events = httpx2.get(f"{demo.url}/api/v1/validmind/events", timeout=10).json()["items"]
    assert [(e["type"], e["record_cuid"]) for e in events] == [("record.archived", gone["cuid"])]

    # the MCP proxy in front of the demo's own server, with the example rules
    mcp = f"{demo.url}/mcp/demo-tools"

    def call(tool: str, **arguments: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
        body["params"] = {"name": tool, "arguments": arguments}
        return httpx2.post(mcp, json=body, timeout=30).json()["result"]

    assert call("add", a=2, b=3)["structuredContent"] == {"result": 5.0}
    assert call("delete_note", title="x")["isError"] is True
    assert (
        "Claude Code:  claude mcp add --transport http atryum-demo " + mcp in demo.log.read_text()
    )

    demo.proc.send_signal(signal.SIGTERM)
    assert demo.proc.wait(30) == 0, demo.log.read_text()[-3000:]
    assert demo.database.exists()
    assert not (REPO / "atryum-demo.db").exists()

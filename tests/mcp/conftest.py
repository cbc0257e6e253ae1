"""Atryum over real HTTP in front of real upstream MCP servers (stdio and streamable HTTP)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from tests.gateway.live import Api
from tests.support import LiveServer, free_port, make_config, wait_until

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = REPO / "tests" / "mcp" / "upstream.py"
SECRET = "s3cr3t-upstream-token-4711"


class RunLog:
    """The upstream's record of every tool it ran."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def runs(self, tool: str | None = None) -> list[str]:
        lines = self.path.read_text().splitlines()
        return [line for line in lines if tool is None or line.split(" ")[0] == tool]


@pytest.fixture
def run_log(tmp_path: Path) -> RunLog:
    return RunLog(tmp_path / "runs.log")


def stdio_upstream(name: str, run_log: RunLog, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "mode": "stdio",
        "command": sys.executable,
        "args": [str(UPSTREAM), "stdio"],
        "env": {"RUN_LOG": str(run_log.path), "UPSTREAM_SECRET": SECRET},
        **extra,
    }


class HttpUpstream:
    def __init__(self, run_log: RunLog, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.run_log = run_log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HttpUpstream:
        env = {"RUN_LOG": str(self.run_log.path), "UPSTREAM_SECRET": SECRET, "PATH": "/usr/bin"}
        self.proc = subprocess.Popen(
            [sys.executable, str(UPSTREAM), "http", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._up, timeout=30)
        return self

    def _up(self) -> bool:
        try:
            httpx2.get(self.url.replace("/mcp", "/"), timeout=1)
        except httpx2.HTTPError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def http_upstream(run_log: RunLog) -> Iterator[HttpUpstream]:
    up = HttpUpstream(run_log).start()
    yield up
    up.stop()


Start = Callable[..., LiveServer]


@pytest.fixture
def atryum(engine: sa.Engine, live_atryum: Start) -> Iterator[Callable[..., LiveServer]]:
    """Start Atryum with these `[[upstreams]]` (and other config sections)."""
    started: list[LiveServer] = []

    def start(upstreams: list[dict[str, Any]], **sections: Any) -> LiveServer:
        server = live_atryum(make_config(upstreams=upstreams, **sections), engine)
        started.append(server.__enter__())
        return server

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)


@pytest.fixture
def api() -> Callable[[str], Api]:
    return Api

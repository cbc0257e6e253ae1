"""Run `atryum run` as a real OS process (replicas, restarts, kill -9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2

from tests.support import free_port, wait_until


def write_config(path: Path, *, database_url: str, sim_url: str, port: int, **extra: Any) -> Path:
    sync = extra.get("sync", {})
    lines = [
        "[server]",
        f'listen_addr = "127.0.0.1:{port}"',
        f'database_url = "{database_url}"',
        *(f"{k} = {json.dumps(v)}" for k, v in extra.get("server", {}).items()),
        "[backend]",
        f'base_url = "{sim_url}"',
        'machine_key = "sim-machine-key"',
        'machine_secret = "sim-machine-secret"',
        "[sync]",
        *(f"{k} = {v}" for k, v in sync.items()),
        "[api_key]",
        'key = "test-key"',
        'secret = "test-secret"',
    ]
    if "webhook_secret" in extra:
        lines += ["[validmind]", f'webhook_secret = "{extra["webhook_secret"]}"']
    for upstream in extra.get("upstreams", []):  # [[upstreams]] of the MCP proxy
        lines += ["[[upstreams]]", *(f"{k} = {_toml(v)}" for k, v in upstream.items())]
    for block in extra.get("auth", []):  # [[auth]] blocks: JSON scalars are TOML scalars
        lines += ["[[auth]]", *(f"{k} = {json.dumps(v)}" for k, v in block.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    """A TOML value: JSON's spelling, except for tables."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


class AtryumProcess:
    def __init__(self, tmp: Path, name: str, **config: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = write_config(tmp / f"{name}.toml", port=self.port, **config)
        self.log_path = tmp / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AtryumProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atryum.cli", "run", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        wait_until(self._healthy, timeout=30)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"atryum exited early:\n{self.log_path.read_text()[-3000:]}")
        try:
            return httpx2.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx2.HTTPError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()

"""`atryum vm-sim` as a real process: --notify-url/--webhook-secret make every record change a
signed change event sent to Atryum (here a tiny receiving server)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from atryum import cli
from atryum.validmind.sim import app as sim_app
from atryum.validmind.sim.notify import NotifyConfig
from tests.support import free_port, wait_until

SECRET = "cli-webhook-secret"
Item = tuple[str, dict[str, str], bytes]


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(signature, f"v1={expected.hexdigest()}")


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Item], threading.Lock]]:
    """A tiny HTTP server standing in for Atryum: records every POST, answers 202."""
    items: list[Item] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                items.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", items, lock
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_vm_sim_sends_signed_events_to_the_notify_url(
    receiver: tuple[str, list[Item], threading.Lock], tmp_path: Path
) -> None:
    url, items, lock = receiver
    port = free_port()
    sim = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ATRYUM_SIM_WEBHOOK_SECRET", "ATRYUM_SIM_API_KEY", "ATRYUM_SIM_API_SECRET")
    }
    log_path = tmp_path / "vm-sim.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from atryum.cli import main; main()",
            "vm-sim",
            "--port",
            str(port),
            "--notify-url",
            url,
            "--webhook-secret",
            SECRET,
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:

        def up() -> bool:
            if proc.poll() is not None:
                output = log_path.read_text(errors="replace")
                raise AssertionError(f"vm-sim exited with {proc.returncode}:\n{output}")
            try:
                return httpx2.get(f"{sim}/admin/health", timeout=2).status_code == 200
            except httpx2.HTTPError:
                return False

        wait_until(up, timeout=60)
        admin = httpx2.Client(base_url=f"{sim}/admin", timeout=10)
        notify = admin.get("/notify").json()
        assert (notify["mode"], notify["atryum_url"], notify["webhook_secret_set"]) == (
            "event",
            url,
            True,
        )
        assert SECRET not in json.dumps(notify)
        record = next(r for r in admin.get("/state").json()["records"] if r["status"] == "active")
        assert admin.post(f"/records/{record['cuid']}/archive").status_code == 200
        admin.close()

        def arrived() -> list[Item]:
            with lock:
                return list(items)

        ((path, headers, body),) = wait_until(arrived, timeout=20)
        assert path == "/api/v1/validmind/events"
        timestamp = headers["x-atryum-timestamp"]
        assert verify(SECRET, timestamp, body, headers["x-atryum-signature"])
        assert abs(int(timestamp) - time.time()) < 300
        event = json.loads(body)
        assert (event["type"], event["record_cuid"]) == ("record.archived", record["cuid"])
        assert SECRET not in log_path.read_text(errors="replace")  # never logged
    finally:
        proc.kill()
        proc.wait(10)
        log_file.close()


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, NotifyConfig()),
        (
            ["--notify-url", "http://a", "--webhook-secret", "w"],
            {},
            NotifyConfig(atryum_url="http://a", mode="event", webhook_secret="w"),
        ),
        (
            ["--notify-url", "http://a"],
            {"ATRYUM_SIM_WEBHOOK_SECRET": "w"},
            NotifyConfig(atryum_url="http://a", mode="event", webhook_secret="w"),
        ),
        (
            ["--notify-url", "http://a"],
            {"ATRYUM_SIM_API_KEY": "k", "ATRYUM_SIM_API_SECRET": "s"},
            NotifyConfig(atryum_url="http://a", mode="sync", api_key="k", api_secret="s"),
        ),
        (
            ["--notify-url", "http://a", "--notify-mode", "sync", "--webhook-secret", "w"],
            {},
            NotifyConfig(atryum_url="http://a", mode="sync", webhook_secret="w"),
        ),
        (["--notify-url", "http://a"], {}, NotifyConfig(atryum_url="http://a")),
        (
            ["--notify-url", "http://a", "--webhook-secret", "w", "--notify-mode", "none"],
            {},
            NotifyConfig(atryum_url="http://a", webhook_secret="w"),
        ),
    ],
)
def test_vm_sim_notify_options(
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    expected: NotifyConfig,
) -> None:
    for name in ("ATRYUM_SIM_WEBHOOK_SECRET", "ATRYUM_SIM_API_KEY", "ATRYUM_SIM_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    served: list[NotifyConfig | None] = []
    monkeypatch.setattr(sim_app, "serve", lambda *a, notify=None, **k: served.append(notify))
    result = CliRunner().invoke(cli.app, ["vm-sim", "--empty", *args], env=env)
    assert result.exit_code == 0, result.output
    assert served == [expected]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webhook-secret", "w"], "needs --notify-url"),
        (["--notify-url", "http://a", "--notify-mode", "smoke"], "must be none, sync or event"),
        (["--notify-url", "http://a", "--notify-mode", "event"], "webhook_secret"),
        (["--notify-url", "http://a", "--api-key", "k"], "api_secret"),
    ],
)
def test_vm_sim_rejects_bad_notify_options(
    monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    for name in ("ATRYUM_SIM_WEBHOOK_SECRET", "ATRYUM_SIM_API_KEY", "ATRYUM_SIM_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    served: list[Any] = []
    monkeypatch.setattr(sim_app, "serve", lambda *a, **k: served.append(k))
    result = CliRunner().invoke(cli.app, ["vm-sim", "--empty", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert served == []

"""No configured secret and no URL credential reaches any log line (issue 14 row 6): a real
`atryum run` process's whole log, and (tests/conftest.py) every test's captured logs."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from atryum import logsafe
from atryum.validmind.sim.notify import sign
from tests.e2e.processes import AtryumProcess
from tests.support import ORG, SLUG, make_config

WEBHOOK_SECRET = "log-webhook-secret-" + "w" * 24
URL_PASSWORD = "url-pass-7f3a"


def test_a_whole_run_logs_no_secret(tmp_path: Path, db_url: str, sim: Any, sim_state: Any) -> None:
    sim_state.create_record(ORG, SLUG, name="A", custom_fields={"charter": "c"})
    host = sim.url.removeprefix("http://")
    atryum = AtryumProcess(
        tmp_path,
        "run",
        database_url=db_url,
        sim_url=f"http://vm-user:{URL_PASSWORD}@{host}",
        webhook_secret=WEBHOOK_SECRET,
    ).start()
    try:
        http = httpx2.Client(base_url=atryum.url, timeout=60)
        scope = {"org_cuid": ORG, "agent_record_type_slug": SLUG, "charter_field_key": "charter"}
        assert http.patch("/api/v1/settings", json=scope).status_code == 200
        assert http.post("/api/v1/agents/sync", params={"wait": "true"}).status_code == 200
        http.post("/api/v1/external/invocations", json={"source": "s", "tool": "t"})
        stamp = str(int(time.time()))
        http.post(
            "/api/v1/validmind/events",
            content=b"{}",
            headers={"X-Atryum-Timestamp": stamp, "X-Atryum-Signature": sign("x", stamp, b"")},
        )
        sim_state.set_faults(status=500)  # failures log the ValidMind URL and its error
        http.post("/api/v1/agents/sync", params={"wait": "true"})
        http.close()
    finally:
        atryum.stop()
    log = atryum.log_path.read_text()
    requests = [line for line in log.splitlines() if "msg=HTTP Request: GET" in line]
    assert requests and all("GET http://[redacted]@127.0.0.1" in line for line in requests)
    for secret in (URL_PASSWORD, "vm-user:", "sim-machine-secret", "test-secret", WEBHOOK_SECRET):
        assert secret not in log, (secret, log[-3000:])


def test_records_are_redacted_for_every_handler(caplog: pytest.LogCaptureFixture) -> None:
    config = make_config(
        backend={"base_url": "http://u:p@vm", "api_key": "key-abcd", "api_secret": "secret-wxyz"}
    )
    logsafe.install(logsafe.secrets_of(config))
    caplog.set_level(logging.INFO)
    log = logging.getLogger("some.library")
    log.info("GET %s with %s", "https://u:pw@vm.example/x", "secret-wxyz")
    try:
        raise RuntimeError("boom secret-wxyz")
    except RuntimeError:
        log.exception("failed for postgresql://app:db-pass@db/atryum")
    assert "pw@" not in caplog.text and "secret-wxyz" not in caplog.text
    assert "db-pass" not in caplog.text
    assert "GET https://[redacted]@vm.example/x with [redacted]" in caplog.text

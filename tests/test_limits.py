"""Hostile or careless input is a 4xx with a message on both databases, never a 500, and the
database is still writable afterwards (issue 14 rows 10, 16)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from tests.support import make_config

HOOK = "/api/v1/external/invocations"
SECRET = "event-secret-" + "x" * 24


@pytest.fixture
def client(engine: sa.Engine, sim: Any) -> Iterator[TestClient]:
    config = make_config(
        backend={
            "base_url": sim.url,
            "machine_key": "sim-machine-key",
            "machine_secret": "sim-machine-secret",
            "retry_attempts": 1,
        },
        validmind={"webhook_secret": SECRET},
    )
    app = create_app(build_context(config, engine), background=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def assert_refused(r: Any, status: int, fragment: str) -> None:
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]["message"], r.text


def assert_still_writable(client: TestClient) -> None:
    r = client.post(HOOK, json={"source": "claude-code", "tool": "Read", "input": {"a": 1}})
    assert r.status_code == 201, r.text
    assert client.get("/api/v1/review/invocations").status_code == 200


@pytest.mark.parametrize(
    ("since", "fragment"),
    [
        ("2026-01-01T00:00:00", "timezone"),
        ("0001-01-01T00:00:00+05:00", "out of range"),
    ],
)
def test_a_since_without_zone_or_utc_form_is_422(
    client: TestClient, since: str, fragment: str
) -> None:
    r = client.get("/api/v1/review/invocations", params={"since": since})
    assert_refused(r, 422, fragment)
    ok = client.get("/api/v1/review/invocations", params={"since": "0001-01-01T00:00:00Z"})
    assert ok.status_code == 200
    assert_still_writable(client)


def test_a_huge_webhook_timestamp_is_refused_before_the_signature_check(
    client: TestClient,
) -> None:
    r = client.post(
        "/api/v1/validmind/events",
        content=b"{}",
        headers={"X-Atryum-Timestamp": "9" * 400, "X-Atryum-Signature": "v1=00"},
    )
    assert_refused(r, 401, "unix timestamp")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/vm/record-types", {"org_cuid": "org-é"}),
        ("/api/v1/vm/custom-fields", {"org_cuid": "org é", "primary_record_type_slug": "x"}),
    ],
)
def test_a_non_ascii_org_cuid_is_422_not_a_header_crash(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    assert_refused(client.get(path, params=params), 422, "printable ASCII")
    assert_refused(client.patch("/api/v1/settings", json=params), 422, "printable ASCII")


@pytest.mark.parametrize("path", ["/ui/invocations", "/ui/invocations/rows"])
def test_an_offset_past_the_database_integers_is_422(client: TestClient, path: str) -> None:
    for _ in range(4):  # the 500 left SQLite's write lock held in 3 of 4 tries
        assert_refused(client.get(path, params={"offset": str(2**63)}), 422, "offset")
    assert_still_writable(client)


LLM = {"name": "j", "provider": "openai", "model": "m"}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("put", "/api/v1/policy", {"approval_timeout_seconds": True}, "approval_timeout_seconds"),
        ("patch", "/api/v1/settings", {"max_removals": True}, "max_removals"),
        ("patch", "/api/v1/settings", {"interval_seconds": "300"}, "interval_seconds"),
        ("patch", "/api/v1/settings", {"max_removal_ratio": False}, "max_removal_ratio"),
        ("post", "/api/v1/rules", {"action": "auto_deny", "enabled": 1}, "enabled"),
        ("post", "/api/v1/agents", {"name": "a", "enabled": 0}, "enabled"),
        ("post", "/api/v1/agents/sync", {"allow_removals": 1}, "allow_removals"),
        ("post", "/api/v1/servers", {"name": "s", "command": "x", "enabled": 1}, "enabled"),
        (
            "post",
            "/api/v1/servers",
            {"name": "s", "command": "x", "timeout_seconds": True},
            "timeout_seconds",
        ),
        ("post", "/api/v1/llm-configs", {**LLM, "enabled": "yes"}, "enabled"),
        ("post", "/api/v1/llm-configs", {**LLM, "timeout_seconds": False}, "timeout_seconds"),
    ],
)
def test_booleans_are_not_numbers_and_numbers_are_not_text(
    client: TestClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    before = client.get("/api/v1/policy").json(), client.get("/api/v1/settings").json()
    assert_refused(getattr(client, method)(path, json=body), 422, field)
    assert (client.get("/api/v1/policy").json(), client.get("/api/v1/settings").json()) == before
    assert client.get("/api/v1/rules").json()["items"] == []
    assert client.get("/api/v1/agents").json()["items"] == []
    assert client.get("/api/v1/servers").json()["items"] == []
    assert client.get("/api/v1/llm-configs").json()["items"] == []

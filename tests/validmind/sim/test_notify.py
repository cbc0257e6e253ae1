"""Outbound notifications: signature, sync calls, signed events, background delivery, errors,
and the whole path over real HTTP (simulator → a small receiving server)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest

from atryum.validmind.sim.app import SimServer
from atryum.validmind.sim.notify import Notifier, NotifyConfig, event_payload, sign
from atryum.validmind.sim.state import Change, SimState

ORG = "org-1"
SLUG = "ai-agent"
SECRET = "whsec-test"


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        threading.Event().wait(0.01)


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What Atryum's verifier does, written out independently."""
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(signature, f"v1={expected}")


class Recorder:
    """A MockTransport handler that records requests (optionally blocking or failing)."""

    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.requests: list[httpx2.Request] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.error: Exception | None = None

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        self.requests.append(request)
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.error is not None:
            raise self.error
        return httpx2.Response(self.status, json={"ok": True})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def notifier(recorder: Recorder) -> Iterator[Notifier]:
    client = httpx2.Client(transport=httpx2.MockTransport(recorder))
    n = Notifier(client=client, clock=lambda: 1_700_000_000.0)
    yield n
    n.close()
    client.close()


def change(kind: str = "record.created", cuid: str = "rec-1") -> Change:
    return Change(kind, ORG, cuid)  # type: ignore[arg-type]


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"e1"}'
    signature = sign("secret", "1700000000", body)
    expected = hmac.new(b"secret", b'1700000000.{"id":"e1"}', hashlib.sha256).hexdigest()
    assert signature == f"v1={expected}"
    assert verify("secret", "1700000000", body, signature)
    assert not verify("other", "1700000000", body, signature)
    assert not verify("secret", "1700000001", body, signature)


def test_config_validation() -> None:
    assert not NotifyConfig().enabled
    with pytest.raises(ValueError, match="atryum_url"):
        NotifyConfig(mode="sync")
    with pytest.raises(ValueError, match="webhook_secret"):
        NotifyConfig(atryum_url="http://x", mode="event")
    with pytest.raises(ValueError, match="api_secret"):
        NotifyConfig(atryum_url="http://x", mode="sync", api_key="k")
    with pytest.raises(ValueError, match="mode"):
        NotifyConfig(atryum_url="http://x", mode="smoke")  # type: ignore[arg-type]
    public = NotifyConfig(
        atryum_url="http://x", mode="event", webhook_secret="s", api_key="k", api_secret="p"
    ).public()
    assert public == {
        "atryum_url": "http://x",
        "mode": "event",
        "api_key_set": True,
        "webhook_secret_set": True,
    }


def test_nothing_is_sent_until_configured(notifier: Notifier, recorder: Recorder) -> None:
    notifier(change())
    assert notifier.wait_idle(5)
    assert recorder.requests == [] and notifier.status()["pending"] == 0


def test_event_mode_posts_a_signed_event(notifier: Notifier, recorder: Recorder) -> None:
    notifier.configure(
        NotifyConfig(atryum_url="http://atryum.test/", mode="event", webhook_secret=SECRET)
    )
    notifier(change("record.archived", "rec-9"))
    assert notifier.wait_idle(5)
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == "http://atryum.test/api/v1/validmind/events"
    assert request.headers["content-type"] == "application/json"
    timestamp = request.headers["x-atryum-timestamp"]
    assert timestamp == "1700000000"
    assert verify(SECRET, timestamp, request.content, request.headers["x-atryum-signature"])
    event = json.loads(request.content)
    assert set(event) == {"id", "type", "org_cuid", "record_cuid", "occurred_at"}
    assert (event["type"], event["org_cuid"], event["record_cuid"]) == (
        "record.archived",
        ORG,
        "rec-9",
    )
    assert datetime.fromisoformat(event["occurred_at"]).utcoffset() is not None
    assert "x-api-key" not in request.headers
    assert notifier.status()["sent"] == 1


def test_every_event_has_its_own_id(notifier: Notifier, recorder: Recorder) -> None:
    notifier.configure(NotifyConfig(atryum_url="http://a", mode="event", webhook_secret=SECRET))
    for kind in ("record.created", "record.updated", "record.deleted"):
        notifier(change(kind))
    assert notifier.wait_idle(5)
    events = [json.loads(r.content) for r in recorder.requests]
    assert [e["type"] for e in events] == ["record.created", "record.updated", "record.deleted"]
    assert len({e["id"] for e in events}) == 3  # events are never coalesced
    assert event_payload(change(), "fixed")["id"] == "fixed"


def test_sync_mode_calls_the_sync_endpoint(notifier: Notifier, recorder: Recorder) -> None:
    notifier.configure(
        NotifyConfig(atryum_url="http://atryum.test", mode="sync", api_key="k", api_secret="s")
    )
    notifier(change())
    assert notifier.wait_idle(5)
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == "http://atryum.test/api/v1/agents/sync"
    assert (request.headers["x-api-key"], request.headers["x-api-secret"]) == ("k", "s")
    assert "x-atryum-signature" not in request.headers


def test_sync_mode_without_key_sends_no_auth_headers(
    notifier: Notifier, recorder: Recorder
) -> None:
    notifier.configure(NotifyConfig(atryum_url="http://a", mode="sync"))
    notifier(change())
    assert notifier.wait_idle(5)
    assert "x-api-key" not in recorder.requests[0].headers


def test_a_burst_of_changes_becomes_one_sync_call(notifier: Notifier, recorder: Recorder) -> None:
    notifier.configure(NotifyConfig(atryum_url="http://a", mode="sync"))
    recorder.gate = threading.Event()
    notifier(change(cuid="first"))
    assert recorder.entered.wait(5)  # the first call is in flight, blocked
    for i in range(5):
        notifier(change(cuid=f"burst-{i}"))
    assert notifier.status()["pending"] == 6  # never blocked the caller
    recorder.gate.set()
    assert notifier.wait_idle(5)
    assert len(recorder.requests) == 2


def test_delivery_never_blocks_the_state_change(notifier: Notifier, recorder: Recorder) -> None:
    state = SimState()
    state.add_org(ORG, "Org One")
    state.add_record_type(ORG, SLUG, "AI Agent")
    state.add_listener(notifier)
    notifier.configure(NotifyConfig(atryum_url="http://a", mode="event", webhook_secret=SECRET))
    recorder.gate = threading.Event()
    rec = state.create_record(ORG, SLUG, name="A")  # returns while delivery is blocked
    assert recorder.entered.wait(5)
    state.update_record(rec["cuid"], name="B")
    state.archive_record(rec["cuid"])
    state.unarchive_record(rec["cuid"])
    state.delete_record(rec["cuid"])
    assert not notifier.wait_idle(0.05)
    recorder.gate.set()
    assert notifier.wait_idle(5)
    types = [json.loads(r.content)["type"] for r in recorder.requests]
    assert types == [
        "record.created",
        "record.updated",
        "record.archived",
        "record.created",  # unarchive
        "record.deleted",
    ]


@pytest.mark.parametrize("failure", ["connect", "status", "bug"])
def test_errors_are_logged_and_swallowed_without_secrets(
    notifier: Notifier, recorder: Recorder, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    caplog.set_level(logging.INFO, logger="atryum.validmind.sim.notify")
    if failure == "connect":
        recorder.error = httpx2.ConnectError("connection refused")
    elif failure == "status":
        recorder.status = 500
    else:
        recorder.error = RuntimeError("unexpected")
    notifier.configure(
        NotifyConfig(
            atryum_url="http://a",
            mode="sync",
            api_key="key-id",
            api_secret="super-secret-value",
            webhook_secret="webhook-secret-value",
        )
    )
    notifier(change())
    assert notifier.wait_idle(5)
    assert notifier.status()["failed"] == 1 and notifier.status()["sent"] == 0
    assert "sim notify" in caplog.text
    assert "super-secret-value" not in caplog.text
    assert "webhook-secret-value" not in caplog.text
    # and the worker keeps going
    recorder.error, recorder.status = None, 202
    notifier(change())
    assert notifier.wait_idle(5)
    assert notifier.status()["sent"] == 1


def test_close_drains_and_the_notifier_can_restart() -> None:
    recorder = Recorder()
    built: list[httpx2.Client] = []

    def factory() -> httpx2.Client:
        built.append(httpx2.Client(transport=httpx2.MockTransport(recorder)))
        return built[-1]

    notifier = Notifier(client_factory=factory)
    notifier.configure(NotifyConfig(atryum_url="http://a", mode="event", webhook_secret=SECRET))
    notifier(change(cuid="one"))
    notifier.close()
    assert len(recorder.requests) == 1 and built[0].is_closed  # its own client is closed
    notifier(change(cuid="two"))
    assert notifier.wait_idle(5)
    notifier.close()
    assert len(recorder.requests) == 2 and len(built) == 2
    notifier.close()  # idempotent


# ---------------------------------------------------------------------- over real HTTP
class Received:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[str, dict[str, str], bytes]] = []

    def snapshot(self) -> list[tuple[str, dict[str, str], bytes]]:
        with self.lock:
            return list(self.items)


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A tiny real HTTP server standing in for Atryum."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with received.lock:
                received.items.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def live_sim() -> Iterator[SimServer]:
    state = SimState()
    state.add_org(ORG, "Org One")
    state.add_record_type(ORG, SLUG, "AI Agent")
    with SimServer(state) as server:
        yield server


def test_admin_changes_send_signed_events_over_http(
    live_sim: SimServer, receiver: tuple[str, Received]
) -> None:
    url, received = receiver
    admin = httpx2.Client(base_url=f"{live_sim.url}/admin", timeout=10)
    r = admin.put("/notify", json={"atryum_url": url, "mode": "event", "webhook_secret": SECRET})
    assert r.status_code == 200, r.text
    cuid = admin.post(
        "/records", json={"org_cuid": ORG, "slug": SLUG, "name": "A", "custom_fields": {}}
    ).json()["cuid"]
    assert admin.post(f"/records/{cuid}/archive").status_code == 200
    items = wait_until(lambda: len(received.snapshot()) == 2 and received.snapshot())
    for path, headers, body in items:
        assert path == "/api/v1/validmind/events"
        assert verify(SECRET, headers["x-atryum-timestamp"], body, headers["x-atryum-signature"])
        assert abs(int(headers["x-atryum-timestamp"]) - time.time()) < 300
    assert [json.loads(body)["type"] for _, _, body in items] == [
        "record.created",
        "record.archived",
    ]
    assert {json.loads(body)["record_cuid"] for _, _, body in items} == {cuid}
    admin.close()


def test_state_changes_send_sync_calls_over_http(
    live_sim: SimServer, receiver: tuple[str, Received]
) -> None:
    url, received = receiver
    r = httpx2.put(
        f"{live_sim.url}/admin/notify",
        json={"atryum_url": url, "mode": "sync", "api_key": "k", "api_secret": "s"},
        timeout=10,
    )
    assert r.status_code == 200
    live_sim.state.create_record(ORG, SLUG, name="Direct")  # state changes notify too
    (path, headers, _), *_ = wait_until(received.snapshot)
    assert path == "/api/v1/agents/sync"
    assert (headers["x-api-key"], headers["x-api-secret"]) == ("k", "s")
    assert live_sim.notifier.wait_idle(5)
    assert live_sim.notifier.status()["sent"] >= 1


def test_stopped_sim_stops_notifying(receiver: tuple[str, Received]) -> None:
    url, received = receiver
    state = SimState()
    state.add_org(ORG, "Org One")
    state.add_record_type(ORG, SLUG, "AI Agent")
    with SimServer(state) as server:
        server.notifier.configure(NotifyConfig(atryum_url=url, mode="sync"))
    state.create_record(ORG, SLUG, name="After stop")
    assert server.notifier.wait_idle(1)
    assert received.snapshot() == []

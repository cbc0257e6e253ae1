"""Outbound notifications: signature, sync calls, signed events, background delivery, errors,
and the whole path over real HTTP (simulator → a small receiving server)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest
from tests.support import wait_until

from atryum.validmind.sim.app import SimServer
from atryum.validmind.sim.notify import (
    Notifier,
    NotifyConfig,
    backoff_delay,
    event_payload,
    sign,
)
from atryum.validmind.sim.state import Change, SimState

ORG = "org-1"
SLUG = "ai-agent"
SECRET = "whsec-test"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What Atryum's verifier does, written out independently."""
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(signature, f"v1={expected}")


class Recorder:
    """A MockTransport handler that records requests (optionally blocking or failing).

    `statuses`, when set, are answered first, one per request, before `status`."""

    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.statuses: list[int] = []
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
        status = self.statuses.pop(0) if self.statuses else self.status
        return httpx2.Response(status, json={"ok": status < 400})


class FakeTime:
    """Injected backoff: records each delay and advances a fake monotonic clock instead of
    sleeping (it still honours the stop event)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.delays: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, delay: float) -> bool:
        self.delays.append(delay)
        self.now += delay
        return stop.is_set()


class Ticker:
    """A wall clock that moves on one second per reading (so re-signing is visible)."""

    def __init__(self, start: int = 1_700_000_000) -> None:
        self.count = itertools.count(start)

    def __call__(self) -> float:
        return float(next(self.count))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def notifier(recorder: Recorder, fake_time: FakeTime) -> Iterator[Notifier]:
    client = httpx2.Client(transport=httpx2.MockTransport(recorder))
    n = Notifier(
        client=client,
        clock=lambda: 1_700_000_000.0,
        wait=fake_time.wait,
        monotonic=fake_time.monotonic,
    )
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


def test_repr_hides_the_secrets() -> None:
    config = NotifyConfig(
        atryum_url="http://a",
        mode="event",
        api_key="key-id",
        api_secret="super-secret-value",
        webhook_secret="webhook-secret-value",
    )
    shown = repr(config) + str(config)
    assert "super-secret-value" not in shown and "webhook-secret-value" not in shown
    assert "key-id" in shown and "http://a" in shown


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
            atryum_url="http://atryum-user:url-password@a",
            mode="sync",
            api_key="key-id",
            api_secret="super-secret-value",
            webhook_secret="webhook-secret-value",
        )
    )
    notifier(change())
    assert notifier.wait_idle(5)
    assert notifier.status()["failed"] == 1 and notifier.status()["sent"] == 0
    assert notifier.status()["atryum_url"] == "http://[redacted]@a"
    assert "url-password" not in caplog.text and "atryum-user" not in caplog.text
    assert "url=http://[redacted]@a/api/v1/agents/sync" in caplog.text
    # Atryum down (connection error, 5xx) is retried until the budget runs out; a bug is not
    assert (len(recorder.requests) > 1) == (failure != "bug")
    assert "sim notify" in caplog.text
    assert "super-secret-value" not in caplog.text
    assert "webhook-secret-value" not in caplog.text
    # and the worker keeps going
    recorder.error, recorder.status = None, 202
    recorder.requests.clear()
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


# ---------------------------------------------------------------------- retries
def event_config(url: str = "http://a") -> NotifyConfig:
    return NotifyConfig(atryum_url=url, mode="event", webhook_secret=SECRET)


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    lows = [backoff_delay(n, rand=lambda: 0.0) for n in range(1, 10)]
    highs = [backoff_delay(n, rand=lambda: 1.0) for n in range(1, 10)]
    assert highs[:6] == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0])
    assert highs[6:] == pytest.approx([5.0] * 3)  # capped
    assert lows == pytest.approx([h / 2 for h in highs])  # jitter: between half and all
    assert backoff_delay(1000) <= 5.0


@pytest.mark.parametrize("failure", [503, 500, 429, "connect", "timeout"])
def test_atryum_down_is_retried_with_the_same_event_re_signed(
    recorder: Recorder, fake_time: FakeTime, failure: int | str
) -> None:
    errors: list[Exception]
    if failure == "connect":
        errors = [httpx2.ConnectError("connection refused")]
    elif failure == "timeout":
        errors = [httpx2.ReadTimeout("timed out")]
    else:
        errors = []
        recorder.statuses = [int(failure), int(failure)]

    def handler(request: httpx2.Request) -> httpx2.Response:
        if errors:
            request.read()
            recorder.requests.append(request)
            raise errors.pop()
        return recorder(request)

    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    n = Notifier(client=client, clock=Ticker(), wait=fake_time.wait, monotonic=fake_time.monotonic)
    try:
        n.configure(event_config())
        n(change("record.updated", "rec-7"))
        assert n.wait_idle(5)
    finally:
        n.close()
        client.close()
    attempts = 2 if isinstance(failure, str) else 3
    assert len(recorder.requests) == attempts
    ids = {json.loads(r.content)["id"] for r in recorder.requests}
    assert len(ids) == 1  # the same event every time
    stamps = [r.headers["x-atryum-timestamp"] for r in recorder.requests]
    assert len(set(stamps)) == attempts  # re-signed with a fresh timestamp each attempt
    for r in recorder.requests:
        assert verify(
            SECRET, r.headers["x-atryum-timestamp"], r.content, r.headers["x-atryum-signature"]
        )
    assert len(fake_time.delays) == attempts - 1
    assert 0.1 <= fake_time.delays[0] <= 0.2
    status = n.status()
    assert (status["sent"], status["failed"], status["retries"]) == (1, 0, attempts - 1)


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_not_retried(
    notifier: Notifier,
    recorder: Recorder,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
    code: int,
) -> None:
    caplog.set_level(logging.WARNING, logger="atryum.validmind.sim.notify")
    recorder.status = code
    notifier.configure(event_config())
    notifier(change())
    assert notifier.wait_idle(5)
    assert len(recorder.requests) == 1 and fake_time.delays == []
    status = notifier.status()
    assert (status["sent"], status["failed"], status["retries"]) == (0, 1, 0)
    assert f"status={code}" in caplog.text
    assert SECRET not in caplog.text


def test_retries_stop_after_the_budget_with_a_warning(
    recorder: Recorder, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="atryum.validmind.sim.notify")
    recorder.status = 503
    client = httpx2.Client(transport=httpx2.MockTransport(recorder))
    n = Notifier(
        client=client,
        retry_for_seconds=30,
        wait=fake_time.wait,
        monotonic=fake_time.monotonic,
    )
    try:
        n.configure(
            NotifyConfig(
                atryum_url="http://a", mode="sync", api_key="key-id", api_secret="sync-secret"
            )
        )
        n(change())
        assert n.wait_idle(5)
    finally:
        n.close()
        client.close()
    assert sum(fake_time.delays) <= 30
    assert max(fake_time.delays) <= 5.0
    assert fake_time.delays[:3] == sorted(fake_time.delays[:3])  # backing off
    assert len(recorder.requests) == len(fake_time.delays) + 1 > 5
    status = n.status()
    assert (status["sent"], status["failed"]) == (0, 1)
    gave_up = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert len(gave_up) == 1 and gave_up[0].levelno == logging.WARNING
    assert "sync-secret" not in caplog.text


def test_no_retries_when_the_budget_is_zero(recorder: Recorder, fake_time: FakeTime) -> None:
    recorder.status = 503
    client = httpx2.Client(transport=httpx2.MockTransport(recorder))
    n = Notifier(client=client, retry_for_seconds=0, wait=fake_time.wait)
    try:
        n.configure(event_config())
        n(change())
        assert n.wait_idle(5)
    finally:
        n.close()
        client.close()
    assert len(recorder.requests) == 1 and fake_time.delays == []
    assert n.status()["failed"] == 1
    with pytest.raises(ValueError):
        Notifier(retry_for_seconds=-1)


class HeldBackoff:
    """Injected backoff the test releases by hand; `entered` is set on each backoff."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.delays: list[float] = []

    def wait(self, stop: threading.Event, delay: float) -> bool:
        self.delays.append(delay)
        self.entered.set()
        while not self.release.wait(0.01):
            if stop.is_set():
                return True
        self.release.clear()
        return stop.is_set()


def test_deliveries_stay_in_order_while_retrying(recorder: Recorder) -> None:
    held = HeldBackoff()
    recorder.statuses = [503]
    client = httpx2.Client(transport=httpx2.MockTransport(recorder))
    n = Notifier(client=client, wait=held.wait)
    try:
        n.configure(event_config())
        n(change("record.created", "first"))
        assert held.entered.wait(5)  # the first event is backing off
        n(change("record.updated", "second"))
        n(change("record.deleted", "third"))
        assert n.status()["pending"] == 3 and n.status()["retrying"] is True
        held.release.set()
        assert n.wait_idle(5)
    finally:
        n.close()
        client.close()
    events = [json.loads(r.content) for r in recorder.requests]
    assert [e["record_cuid"] for e in events] == ["first", "first", "second", "third"]
    assert events[0]["id"] == events[1]["id"]
    assert n.status()["sent"] == 3


def test_sync_changes_collapse_into_the_call_being_retried(recorder: Recorder) -> None:
    held = HeldBackoff()
    recorder.statuses = [503, 503]
    client = httpx2.Client(transport=httpx2.MockTransport(recorder))
    n = Notifier(client=client, wait=held.wait)
    try:
        n.configure(NotifyConfig(atryum_url="http://a", mode="sync", api_key="k", api_secret="s"))
        n(change(cuid="first"))
        assert held.entered.wait(5)
        held.entered.clear()
        for i in range(5):
            n(change(cuid=f"burst-{i}"))
        held.release.set()
        assert held.entered.wait(5)  # second backoff: the burst joined the retried call
        assert n.status()["pending"] == 1
        n(change(cuid="late"))
        held.release.set()
        assert n.wait_idle(5)
    finally:
        n.close()
        client.close()
    # 503, 503, then one successful call that covers everything queued meanwhile
    assert len(recorder.requests) == 3
    assert all(str(r.url) == "http://a/api/v1/agents/sync" for r in recorder.requests)
    status = n.status()
    assert (status["sent"], status["failed"], status["retries"]) == (1, 0, 2)


def test_close_during_backoff_returns_promptly(recorder: Recorder) -> None:
    recorder.status = 503
    client = httpx2.Client(transport=httpx2.MockTransport(recorder))
    # the real Event-based wait, with a backoff far longer than the test may take
    n = Notifier(client=client, backoff_initial=60, backoff_max=60, rand=lambda: 1.0)
    try:
        n.configure(event_config())
        n(change(cuid="stuck"))
        wait_until(lambda: n.status()["retrying"])
        started = time.monotonic()
        n.close(timeout=30)
        assert time.monotonic() - started < 5
        assert len(recorder.requests) == 1
        status = n.status()
        assert (status["sent"], status["failed"], status["pending"]) == (0, 1, 0)
        # and it works again afterwards
        recorder.status = 202
        n(change(cuid="after"))
        assert n.wait_idle(5)
        assert n.status()["sent"] == 1
    finally:
        n.close()
        client.close()


def test_reconfiguring_abandons_the_retried_delivery(recorder: Recorder) -> None:
    held = HeldBackoff()
    recorder.status = 503
    client = httpx2.Client(transport=httpx2.MockTransport(recorder))
    n = Notifier(client=client, wait=held.wait)
    try:
        n.configure(event_config("http://old"))
        n(change())
        assert held.entered.wait(5)
        n.configure(NotifyConfig())
        held.release.set()
        assert n.wait_idle(5)
    finally:
        n.close()
        client.close()
    assert len(recorder.requests) == 1 and n.status()["failed"] == 1


# ---------------------------------------------------------------------- over real HTTP
class Received:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[str, dict[str, str], bytes]] = []

    def snapshot(self) -> list[tuple[str, dict[str, str], bytes]]:
        with self.lock:
            return list(self.items)


@contextlib.contextmanager
def serve_receiver(port: int = 0) -> Iterator[tuple[str, Received]]:
    """A tiny real HTTP server standing in for Atryum (answers 202 to every POST)."""
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

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    with serve_receiver() as found:
        yield found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


def test_event_reaches_atryum_once_it_comes_up(caplog: pytest.LogCaptureFixture) -> None:
    """Atryum down (connection refused) for a few attempts, then up: the event arrives once,
    with the id every attempt carried and a valid signature."""
    caplog.set_level(logging.INFO, logger="atryum.validmind.sim.notify")
    port = free_port()
    attempted: list[httpx2.Request] = []
    delays: list[float] = []

    def short_wait(stop: threading.Event, delay: float) -> bool:
        delays.append(delay)
        return stop.wait(min(delay, 0.02))  # observed, and kept short for the test

    def record(request: httpx2.Request) -> None:
        attempted.append(request)

    client = httpx2.Client(timeout=5, event_hooks={"request": [record]})
    n = Notifier(client=client, wait=short_wait)
    try:
        n.configure(event_config(f"http://127.0.0.1:{port}"))
        n(change("record.archived", "rec-down"))
        wait_until(lambda: len(delays) >= 3)  # refused three times, backing off
        assert n.status()["sent"] == 0
        with serve_receiver(port) as (_, received):
            ((path, headers, body),) = wait_until(received.snapshot)
            assert n.wait_idle(10)
            assert len(received.snapshot()) == 1  # exactly once
        assert path == "/api/v1/validmind/events"
        assert verify(SECRET, headers["x-atryum-timestamp"], body, headers["x-atryum-signature"])
        event = json.loads(body)
        assert (event["type"], event["record_cuid"]) == ("record.archived", "rec-down")
        assert len(attempted) >= 4
        assert {json.loads(r.content)["id"] for r in attempted} == {event["id"]}
        status = n.status()
        assert (status["sent"], status["failed"]) == (1, 0)
        assert status["retries"] == len(delays) >= 3
        assert SECRET not in caplog.text
    finally:
        n.close()
        client.close()

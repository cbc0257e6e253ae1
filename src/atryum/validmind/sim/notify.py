"""Outbound notifications from the simulator to Atryum on every record change.

Two modes, as ValidMind's backend would do it (agent-sync.md §5):
* ``sync``  — ``POST {atryum_url}/api/v1/agents/sync`` with the ``X-API-KEY``/``X-API-SECRET``
  headers (a burst of changes queued together becomes one call);
* ``event`` — ``POST {atryum_url}/api/v1/validmind/events`` with a signed change event.

Deliveries run on one background worker thread, in order; the admin call that caused a change
never waits for them. Errors are logged (never with credentials) and swallowed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx2

from atryum.validmind.sim.state import Change

log = logging.getLogger(__name__)

NotifyMode = Literal["none", "sync", "event"]
SYNC_PATH = "/api/v1/agents/sync"
EVENTS_PATH = "/api/v1/validmind/events"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, f"{timestamp}.{raw body}")>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


@dataclass(frozen=True)
class NotifyConfig:
    atryum_url: str = ""
    mode: NotifyMode = "none"
    api_key: str | None = None
    api_secret: str | None = None
    webhook_secret: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("none", "sync", "event"):
            raise ValueError(f"notify mode must be none, sync or event, not {self.mode!r}")
        if self.mode != "none" and not self.atryum_url:
            raise ValueError(f"notify mode {self.mode!r} needs atryum_url")
        if self.mode == "event" and not self.webhook_secret:
            raise ValueError("notify mode 'event' needs webhook_secret (the shared signing secret)")
        if bool(self.api_key) != bool(self.api_secret):
            missing = "api_secret" if self.api_key else "api_key"
            raise ValueError(f"notify API credentials need both api_key and api_secret ({missing})")

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def public(self) -> dict[str, Any]:
        """The configuration without its secrets."""
        return {
            "atryum_url": self.atryum_url,
            "mode": self.mode,
            "api_key_set": bool(self.api_key),
            "webhook_secret_set": bool(self.webhook_secret),
        }


def event_payload(change: Change, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": change.type,
        "org_cuid": change.org_cuid,
        "record_cuid": change.record_cuid,
        "occurred_at": change.occurred_at.isoformat(),
    }


@dataclass(frozen=True)
class _Item:
    config: NotifyConfig
    change: Change
    event_id: str


class Notifier:
    """Delivers record changes to Atryum from a background thread.

    ``client`` (or ``client_factory``) makes the HTTP client injectable, e.g. an
    ``httpx2.Client(transport=httpx2.MockTransport(...))`` in tests. A given ``client`` is not
    closed by the notifier; one it builds itself is.
    """

    def __init__(
        self,
        *,
        client: httpx2.Client | None = None,
        client_factory: Callable[[], httpx2.Client] | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._owns_client = client is None
        self._factory = client_factory or (lambda: httpx2.Client(timeout=timeout))
        self._clock = clock
        self._config = NotifyConfig()
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._busy = False
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.sent = 0
        self.failed = 0

    # ------------------------------------------------------------------ configuration
    @property
    def config(self) -> NotifyConfig:
        with self._cond:
            return self._config

    def configure(self, config: NotifyConfig) -> None:
        with self._cond:
            self._config = config
        log.info("sim notify configured: mode=%s url=%s", config.mode, config.atryum_url)

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                **self._config.public(),
                "pending": len(self._queue) + (1 if self._busy else 0),
                "sent": self.sent,
                "failed": self.failed,
            }

    # ------------------------------------------------------------------ queueing
    def __call__(self, change: Change) -> None:
        """State listener: queue the change for delivery (never blocks on the network)."""
        with self._cond:
            config = self._config
            if not config.enabled:
                return
            self._queue.append(_Item(config, change, str(uuid.uuid4())))
            self._ensure_worker()
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery has been attempted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker after it has drained the queue (bounded by `timeout`)."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            self._thread = None
            self._stopping = False
            client, self._client = self._client, (None if self._owns_client else self._client)
        if self._owns_client and client is not None:
            client.close()

    # ------------------------------------------------------------------ worker
    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="sim-notifier", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                item = self._queue.popleft()
                if item.config.mode == "sync":
                    # one sync call covers every change already waiting for the same target
                    while self._queue and self._queue[0].config == item.config:
                        self._queue.popleft()
                self._busy = True
            try:
                self._deliver(item)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _http(self) -> httpx2.Client:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def _deliver(self, item: _Item) -> None:
        config = item.config
        base = config.atryum_url.rstrip("/")
        url = base + (SYNC_PATH if config.mode == "sync" else EVENTS_PATH)
        try:
            if config.mode == "sync":
                headers: dict[str, str] = {}
                if config.api_key and config.api_secret:
                    headers = {"X-API-KEY": config.api_key, "X-API-SECRET": config.api_secret}
                response = self._http().post(url, headers=headers)
            else:
                body = json.dumps(
                    event_payload(item.change, item.event_id), separators=(",", ":")
                ).encode()
                timestamp = str(int(self._clock()))
                assert config.webhook_secret is not None  # checked by NotifyConfig
                headers = {
                    "Content-Type": "application/json",
                    "X-Atryum-Timestamp": timestamp,
                    "X-Atryum-Signature": sign(config.webhook_secret, timestamp, body),
                }
                response = self._http().post(url, content=body, headers=headers)
        except httpx2.HTTPError as exc:
            self._count(ok=False)
            log.warning(
                "sim notify failed: mode=%s url=%s record=%s error=%s",
                config.mode,
                url,
                item.change.record_cuid,
                exc.__class__.__name__,
            )
            return
        except Exception:
            self._count(ok=False)
            log.exception("sim notify failed: mode=%s url=%s", config.mode, url)
            return
        ok = response.status_code < 400
        self._count(ok=ok)
        level = logging.INFO if ok else logging.WARNING
        log.log(
            level,
            "sim notify: mode=%s url=%s record=%s change=%s status=%s",
            config.mode,
            url,
            item.change.record_cuid,
            item.change.type,
            response.status_code,
        )

    def _count(self, *, ok: bool) -> None:
        with self._cond:
            if ok:
                self.sent += 1
            else:
                self.failed += 1

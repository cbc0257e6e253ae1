"""Outbound notifications from the simulator to Atryum on every record change.

Two modes, as ValidMind's backend would do it (agent-sync.md §5):
* ``sync``  — ``POST {atryum_url}/api/v1/agents/sync`` with the ``X-API-KEY``/``X-API-SECRET``
  headers (a burst of changes queued together becomes one call);
* ``event`` — ``POST {atryum_url}/api/v1/validmind/events`` with a signed change event.

Deliveries run on one background worker thread, in order; the admin call that caused a change
never waits for them. When Atryum is down or restarting (a connection/transport error, HTTP 5xx or
429) the same delivery is retried — an event keeps its id and is re-signed with a fresh timestamp
each attempt — with exponential backoff and jitter for at most ``retry_for_seconds``; other 4xx
answers are final. Errors are logged (never with credentials) and swallowed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2

from atryum import logsafe
from atryum.validmind.redact import redact_url
from atryum.validmind.sim.state import Change

log = logging.getLogger(__name__)

NotifyMode = Literal["none", "sync", "event"]
SYNC_PATH = "/api/v1/agents/sync"
EVENTS_PATH = "/api/v1/validmind/events"

RETRY_FOR_SECONDS = 120.0
BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 5.0

Wait = Callable[[threading.Event, float], bool]
"""``wait(stop, delay)`` backs off for ``delay`` seconds; True when ``stop`` was set meanwhile."""


def _event_wait(stop: threading.Event, delay: float) -> bool:
    return stop.wait(delay)


def backoff_delay(
    attempt: int,
    *,
    initial: float = BACKOFF_INITIAL,
    cap: float = BACKOFF_MAX,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (1-based): ``min(cap, initial * 2**(attempt-1))``
    with "equal jitter" (between half of it and all of it)."""
    base = min(cap, initial * 2 ** min(attempt - 1, 32))
    return base / 2 + base / 2 * rand()


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, f"{timestamp}.{raw body}")>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


@dataclass(frozen=True)
class NotifyConfig:
    atryum_url: str = ""
    mode: NotifyMode = "none"
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)

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
        """The configuration without its secrets (nor a user:password@ in the URL)."""
        return {
            "atryum_url": redact_url(self.atryum_url),
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


@dataclass(frozen=True)
class _Attempt:
    """The outcome of one delivery attempt."""

    ok: bool
    retry: bool  # worth trying again (Atryum down or restarting)
    detail: str  # for logs: an exception class name or "HTTP <status>", never a secret


class Notifier:
    """Delivers record changes to Atryum from a background thread.

    ``client`` (or ``client_factory``) makes the HTTP client injectable, e.g. an
    ``httpx2.Client(transport=httpx2.MockTransport(...))`` in tests. A given ``client`` is not
    closed by the notifier; one it builds itself is.

    Retries: ``retry_for_seconds`` bounds how long one delivery is retried (0 disables retries);
    ``backoff_initial``/``backoff_max`` shape the backoff; ``wait`` (``wait(stop, delay) -> bool``,
    default ``stop.wait(delay)``), ``monotonic`` and ``rand`` are injectable so tests neither sleep
    nor guess. ``close()`` sets ``stop``, so a backing-off worker gives up at once.
    """

    def __init__(
        self,
        *,
        client: httpx2.Client | None = None,
        client_factory: Callable[[], httpx2.Client] | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        retry_for_seconds: float = RETRY_FOR_SECONDS,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        wait: Wait = _event_wait,
        monotonic: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if retry_for_seconds < 0:
            raise ValueError("retry_for_seconds must not be negative")
        self._client = client
        self._owns_client = client is None
        self._factory = client_factory or (lambda: httpx2.Client(timeout=timeout))
        self._clock = clock
        self._retry_for = retry_for_seconds
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._wait = wait
        self._monotonic = monotonic
        self._rand = rand
        self._stop = threading.Event()
        self._config = NotifyConfig()
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._busy = False
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.sent = 0
        self.failed = 0
        self.retries = 0
        self.retrying = False

    # ------------------------------------------------------------------ configuration
    @property
    def config(self) -> NotifyConfig:
        with self._cond:
            return self._config

    def configure(self, config: NotifyConfig) -> None:
        with self._cond:
            self._config = config
        logsafe.install([config.api_key, config.api_secret, config.webhook_secret])
        log.info(
            "sim notify configured: mode=%s url=%s", config.mode, redact_url(config.atryum_url)
        )

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                **self._config.public(),
                "pending": len(self._queue) + (1 if self._busy else 0),
                "sent": self.sent,
                "failed": self.failed,
                "retries": self.retries,
                "retrying": self.retrying,
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
        """Stop the worker after it has drained the queue (bounded by `timeout`).

        A delivery that is backing off gives up at once, and what is still queued gets one
        attempt each, without retries."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._stop.set()
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            if self._thread is not None and not self._thread.is_alive():
                self._thread = None
            self._stopping = False
            self._stop.clear()
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
                    if self._thread is threading.current_thread():
                        self._thread = None  # a change queued from now on starts a new worker
                    return
                item = self._queue.popleft()
                self._absorb(item)
                self._busy = True
            try:
                self._deliver(item)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _absorb(self, item: _Item) -> None:
        """One sync call covers every change already waiting (next in line) for the same target.

        Called with the lock held, before each attempt, so changes that arrive while a sync call
        is being retried collapse into it."""
        if item.config.mode == "sync":
            while self._queue and self._queue[0].config == item.config:
                self._queue.popleft()

    def _http(self) -> httpx2.Client:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def _deliver(self, item: _Item) -> None:
        """Deliver `item`, retrying while Atryum is down, within the retry budget."""
        config = item.config
        url = config.atryum_url.rstrip("/") + (SYNC_PATH if config.mode == "sync" else EVENTS_PATH)
        shown = redact_url(url)  # for logs
        started = self._monotonic()
        attempt = 1
        while True:
            outcome = self._attempt(item, url)
            if outcome.ok or not outcome.retry:
                break
            delay = backoff_delay(
                attempt, initial=self._backoff_initial, cap=self._backoff_max, rand=self._rand
            )
            reason = self._why_not_retry(item, self._monotonic() - started + delay)
            if reason is None:
                log.info(
                    "sim notify retrying: mode=%s url=%s record=%s attempt=%d in=%.2fs last=%s",
                    config.mode,
                    shown,
                    item.change.record_cuid,
                    attempt,
                    delay,
                    outcome.detail,
                )
                with self._cond:
                    self.retries += 1
                    self.retrying = True
                try:
                    stopped = self._wait(self._stop, delay)
                finally:
                    with self._cond:
                        self.retrying = False
                reason = "closing" if stopped else self._why_not_retry(item, None)
            if reason is not None:
                log.warning(
                    "sim notify gave up: mode=%s url=%s record=%s change=%s attempts=%d "
                    "elapsed=%.1fs reason=%s last=%s",
                    config.mode,
                    shown,
                    item.change.record_cuid,
                    item.change.type,
                    attempt,
                    self._monotonic() - started,
                    reason,
                    outcome.detail,
                )
                break
            with self._cond:
                self._absorb(item)
            attempt += 1
        self._count(ok=outcome.ok)

    def _why_not_retry(self, item: _Item, elapsed_after_wait: float | None) -> str | None:
        """Why `item` must not be tried again (None: retry), `elapsed_after_wait` against the
        budget when given."""
        if self._stop.is_set():
            return "closing"
        if elapsed_after_wait is not None and elapsed_after_wait > self._retry_for:
            return f"retried for {self._retry_for:g}s"
        with self._cond:
            if self._config != item.config:
                return "notify target reconfigured"
        return None

    def _attempt(self, item: _Item, url: str) -> _Attempt:
        """One POST; an event is (re-)signed with a fresh timestamp, keeping its id."""
        config = item.config
        shown = redact_url(url)  # for logs
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
            # Atryum down or restarting: retried, and a warning follows if it never answers
            log.info(
                "sim notify failed: mode=%s url=%s record=%s error=%s",
                config.mode,
                shown,
                item.change.record_cuid,
                exc.__class__.__name__,
            )
            return _Attempt(ok=False, retry=True, detail=exc.__class__.__name__)
        except Exception as exc:  # a bug: logged without a traceback that could show the URL
            log.error(
                "sim notify failed: mode=%s url=%s error=%s",
                config.mode,
                shown,
                exc.__class__.__name__,
            )
            return _Attempt(ok=False, retry=False, detail="unexpected error")
        status = response.status_code
        ok = status < 400
        retry = not ok and _retryable_status(status)
        log.log(
            logging.WARNING if not ok and not retry else logging.INFO,
            "sim notify: mode=%s url=%s record=%s change=%s status=%s",
            config.mode,
            shown,
            item.change.record_cuid,
            item.change.type,
            status,
        )
        return _Attempt(ok=ok, retry=retry, detail=f"HTTP {status}")

    def _count(self, *, ok: bool) -> None:
        with self._cond:
            if ok:
                self.sent += 1
            else:
                self.failed += 1

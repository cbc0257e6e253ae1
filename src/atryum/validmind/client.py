"""HTTP client for the ValidMind backend API (spec: validmind-api.md).

One `ValidMindClient` per unit of work (it holds a connection pool; use it as a context manager).
Every call retries connect/transport errors, 429 and 5xx with exponential backoff and jitter
(honouring `Retry-After`), and turns every failure into a `ValidMindError` that names the
endpoint, the HTTP status and the start of the body — never the credentials.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx2
import orjson
import stamina

from atryum.config import BackendConfig
from atryum.validmind.redact import redact_url, userinfo

API_PREFIX = "/api/atryum/unstable"

#: How much of a response body an error carries.
BODY_EXCERPT_CHARS = 500
#: Longest wait a `Retry-After` header can impose, in seconds.
RETRY_AFTER_CAP_SECONDS = 30.0
#: Backoff between attempts (seconds): initial * 2**(n-1) + jitter, at most WAIT_MAX.
WAIT_INITIAL = 0.25
WAIT_MAX = 5.0
WAIT_JITTER = 0.5
#: Pages asked beyond total/limit before the /agents pull gives up on a misbehaving server.
EXTRA_PAGES = 5

log = logging.getLogger("atryum.validmind")


def parse_json(body: bytes) -> Any:
    """The body as JSON: orjson's parse, about 5x the standard library's on a page of agents.

    What orjson refuses and the standard library reads (`NaN`, `Infinity`, a lone surrogate
    escape) is read by the standard library, so the answers accepted are the same. One reading
    differs: an integer beyond 64 bits comes back as a float. The integer fields Atryum reads
    (`total`, `next_page`) then refuse it as not an integer, where the standard library's
    integer would have been taken as a count no pull can reach; any other field is not read.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


class ValidMindError(Exception):
    """A call to ValidMind failed.

    `endpoint` is "METHOD /path", `status` the HTTP status (None when no response arrived),
    `body_excerpt` the first 500 characters of the response body (credentials redacted).
    """

    def __init__(
        self,
        endpoint: str,
        detail: str,
        *,
        status: int | None = None,
        body_excerpt: str = "",
        message: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.detail = detail
        self.status = status
        self.body_excerpt = body_excerpt
        super().__init__(message or f"ValidMind {endpoint} failed: {detail}")


class ValidMindNotConfigured(ValidMindError):
    """The integration is off: `[backend] base_url` is empty."""

    def __init__(self) -> None:
        super().__init__(
            "(not configured)",
            "base_url is empty",
            message="ValidMind is not configured: set [backend] base_url and credentials in "
            "atryum.toml (or VM_BASE_URL with VM_MACHINE_KEY/VM_MACHINE_SECRET)",
        )


@dataclass
class AgentsPull:
    """The result of pulling the active agent records of one organization and record type."""

    org_cuid: str
    org_name: str
    records: list[dict[str, Any]]  # empty when the pull was streamed to an `on_page` callback
    total: int
    complete: bool
    problems: list[str] = field(default_factory=list)
    received: int = -1  # records received (len(records) unless streamed)

    def __post_init__(self) -> None:
        if self.received < 0:
            self.received = len(self.records)


#: Receives each page's new records as it arrives: (org_name and total from page 1, records).
PageSink = Callable[[str, int, list[dict[str, Any]]], None]


class _PagesAhead:
    """The pages of one pull, each asked for once. When enabled, `get(page, then)` also asks for
    the guessed page `then` while `page` is awaited and read, so the server prepares it in the
    meantime; a guess the answers do not confirm is dropped unread."""

    def __init__(self, ask: Callable[[int], dict[str, Any]], *, enabled: bool) -> None:
        self._ask = ask
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="atryum-vm-page") if enabled else None
        self._ahead: dict[int, Future[dict[str, Any]]] = {}

    def get(self, page: int, then: int | None) -> dict[str, Any]:
        if self._pool is None:
            return self._ask(page)
        current = self._ahead.pop(page, None) or self._pool.submit(self._ask, page)
        for guess in [p for p in self._ahead if p != then]:
            self._ahead.pop(guess).cancel()
        if then is not None and then not in self._ahead:
            self._ahead[then] = self._pool.submit(self._ask, then)
        return current.result()

    def __enter__(self) -> _PagesAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            # A guess still on its way is not waited for; its answer is never read.
            self._pool.shutdown(wait=False, cancel_futures=True)


def _page_label(page: int) -> str:
    return "GET /agents" if page == 1 else f"GET /agents (page {page})"


class _Retryable(Exception):
    """Internal: an attempt failed in a way worth retrying (a 429/5xx answer or a transport
    error). Carries the attempt number so the backoff hook can honour `Retry-After`."""

    def __init__(
        self,
        attempt: int,
        *,
        response: httpx2.Response | None = None,
        error: httpx2.TransportError | None = None,
    ) -> None:
        super().__init__(attempt)
        self.attempt = attempt
        self.response = response
        self.error = error

    def cause(self) -> str:
        if self.response is not None:
            return f"HTTP {self.response.status_code}"
        return type(self.error).__name__

    def retry_after(self) -> float | None:
        if self.response is None:
            return None
        return parse_retry_after(self.response.headers.get("retry-after"))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date); None if absent
    or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter before the retry that follows attempt `attempt`."""
    base = WAIT_INITIAL * (2 ** (attempt - 1))
    return min(WAIT_MAX, base + random.uniform(0, WAIT_JITTER))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ValidMindClient:
    """Synchronous client for the ValidMind backend API used by Atryum."""

    def __init__(
        self, config: BackendConfig, *, transport: httpx2.BaseTransport | None = None
    ) -> None:
        if not config.base_url.strip():
            raise ValidMindNotConfigured()
        self._config = config
        self.base_url = config.base_url.strip().rstrip("/") + API_PREFIX
        self.auth_mode, self._auth_headers = _auth_headers(config)
        # redacted from any text an error carries
        self._secrets = [v for v in self._auth_headers.values() if len(v) >= 4]
        if len(userinfo(config.base_url.strip())) >= 4:  # user:password@ in base_url
            self._secrets.append(userinfo(config.base_url.strip()))
        self._attempts = config.retry_attempts
        self._timeout = httpx2.Timeout(config.connection_timeout_seconds)
        self._agents_timeout = httpx2.Timeout(
            config.agents_timeout_seconds,
            connect=min(config.connection_timeout_seconds, config.agents_timeout_seconds),
        )
        self._http = httpx2.Client(
            base_url=self.base_url,
            headers={"Accept": "application/json", "User-Agent": "atryum"},
            timeout=self._timeout,
            transport=transport,
            follow_redirects=False,
        )

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ValidMindClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ endpoints
    def connection(self) -> dict[str, Any]:
        """`GET /connection`: check reachability and credentials."""
        endpoint = "GET /connection"
        data = self._call("GET", "/connection")
        self._field(endpoint, data, "ok", bool)
        return data

    def organizations(self) -> list[dict[str, Any]]:
        data = self._call("GET", "/organizations")
        return self._items("GET /organizations", data)

    def record_types(self, org_cuid: str) -> list[dict[str, Any]]:
        data = self._call(
            "GET", "/primary-record-types", params={"org_cuid": org_cuid}, org_cuid=org_cuid
        )
        return self._items("GET /primary-record-types", data)

    def custom_fields(self, org_cuid: str, record_type_slug: str) -> list[dict[str, Any]]:
        data = self._call(
            "GET",
            "/custom-fields",
            params={"org_cuid": org_cuid, "primary_record_type_slug": record_type_slug},
            org_cuid=org_cuid,
        )
        return self._items("GET /custom-fields", data)

    def model_configs(self) -> list[dict[str, Any]]:
        data = self._call("GET", "/model-configs")
        return self._items("GET /model-configs", data)

    def charter_preview(
        self, org_cuid: str, agent_vm_cuid: str, charter_field_key: str
    ) -> dict[str, Any]:
        endpoint = "POST /charter-preview"
        data = self._call(
            "POST",
            "/charter-preview",
            json_body={"agent_vm_cuid": agent_vm_cuid, "charter_field_key": charter_field_key},
            org_cuid=org_cuid,
        )
        self._field(endpoint, data, "segments", list)
        self._field(endpoint, data, "combined", str)
        return data

    def evaluate(self, payload: dict[str, Any], org_cuid: str | None = None) -> dict[str, Any]:
        """`POST /evaluate`: judge one tool call. `org_cuid` (or `payload["org_cuid"]`) scopes
        the call to an organization."""
        endpoint = "POST /evaluate"
        body = dict(payload)
        from_body = body.get("org_cuid")
        org = org_cuid or (from_body if isinstance(from_body, str) and from_body else None)
        if org is not None:
            body.setdefault("org_cuid", org)
        data = self._call("POST", "/evaluate", json_body=body, org_cuid=org)
        self._field(endpoint, data, "verdict", str)
        self._field(endpoint, data, "reason", str)
        return data

    def fetch_agents(
        self, org_cuid: str, record_type_slug: str, *, on_page: PageSink | None = None
    ) -> AgentsPull:
        """Pull every active agent record, page by page (see the spec's paging section).

        With `on_page`, each page's records go to it as they arrive and are not kept: the pull
        holds one page at a time, whatever the organization's size. With `prefetch_pages`, the
        page the answers so far point to next is asked for while one is being read (the server
        prepares it meanwhile); what the pull sees, and in what order, is the same."""
        limit = self._config.page_size

        def ask(page: int) -> dict[str, Any]:
            return self._call(
                "GET",
                "/agents",
                params={
                    "org_cuid": org_cuid,
                    "primary_record_type_slug": record_type_slug,
                    "page": page,
                    "limit": limit,
                },
                org_cuid=org_cuid,
                timeout=self._agents_timeout,
                label=_page_label(page),
            )

        with _PagesAhead(ask, enabled=self._config.prefetch_pages) as pages:
            return self._pull_agents(pages, limit, on_page)

    def _pull_agents(self, pages: _PagesAhead, limit: int, on_page: PageSink | None) -> AgentsPull:
        records: list[dict[str, Any]] = []
        received = 0
        seen: set[str] = set()
        problems: list[str] = []
        anomaly = False
        page = 1
        pages_asked = 0
        first_org = ""
        org_name = ""
        total = 0
        max_pages = 1
        first_held_total = False
        guess: int | None = None  # the page after next, when the answers make it predictable
        while True:
            label = _page_label(page)
            data = pages.get(page, guess)
            pages_asked += 1
            results = self._field(label, data, "results", list)
            page_total = self._field(label, data, "total", int)
            page_org = self._field(label, data, "org_cuid", str)
            if page_total < 0:
                raise self._shape_error(label, data, "field 'total' is negative")
            for i, rec in enumerate(results):
                if not isinstance(rec, dict):
                    raise self._shape_error(
                        label, data, f"results[{i}] is {_type_name(rec)}, not an object"
                    )
            if pages_asked == 1:
                first_org, total = page_org, page_total
                name = data.get("org_name")
                org_name = name if isinstance(name, str) else ""
                max_pages = math.ceil(total / limit) + EXTRA_PAGES
            else:
                if page_org != first_org:
                    raise self._shape_error(
                        label,
                        data,
                        f"answered for organization {page_org!r}, not {first_org!r} like page 1",
                    )
                if page_total != total:
                    anomaly = True
                    problems.append(
                        f"the record count changed during the pull (page 1 said {total}, "
                        f"page {page} said {page_total}); records may have been missed"
                    )

            empty_page = not results
            next_field = data.get("next_page", _ABSENT)
            page_cuids = [c for r in results if (c := _cuid(r))]
            if pages_asked > 1 and page_cuids and all(c in seen for c in page_cuids):
                problems.append(
                    f"server ignored paging: page {page} repeated records already received; "
                    "stopped asking"
                )
                if not first_held_total:
                    anomaly = True
                break

            dropped: list[str] = []
            fresh: list[dict[str, Any]] = []
            for rec in results:
                cuid = _cuid(rec)
                if cuid:
                    if cuid in seen:
                        dropped.append(cuid)
                        continue
                    seen.add(cuid)
                fresh.append(rec)
            received += len(fresh)
            if on_page is None:
                records.extend(fresh)
            else:
                on_page(org_name, total, fresh)
            if dropped:
                shown = ", ".join(repr(c) for c in dropped[:5])
                more = f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""
                problems.append(
                    f"page {page} repeated {len(dropped)} record(s) already received "
                    f"({shown}{more}); kept the first copy"
                )
            if pages_asked == 1:
                first_held_total = received >= total

            if empty_page:
                break
            if next_field is not _ABSENT:
                nxt = next_field
                if nxt is None:
                    break
                if not _is_int(nxt):
                    raise self._shape_error(
                        label, data, f"field 'next_page' is {_type_name(nxt)}, not an integer"
                    )
                if nxt <= page:
                    anomaly = True
                    problems.append(
                        f"server sent next_page {nxt} after page {page}; stopped asking"
                    )
                    break
                next_page = nxt
            elif received < total:
                next_page = page + 1
            else:
                break
            if pages_asked >= max_pages:
                anomaly = True
                problems.append(
                    f"stopped after {pages_asked} pages (safety limit for {total} records "
                    f"at {limit} per page)"
                )
                break
            # Ask for the page after next too when this step was plain (page + 1) and that page
            # would be asked for anyway if the next one comes back full.
            sequential = next_page == page + 1
            guess = (
                next_page + 1
                if sequential and received + limit < total and pages_asked + 2 <= max_pages
                else None
            )
            page = next_page

        if received != total:
            problems.append(f"received {received} of {total} records")
        complete = not anomaly and received == total
        return AgentsPull(
            org_cuid=first_org,
            org_name=org_name,
            records=records,
            total=total,
            complete=complete,
            problems=problems,
            received=received,
        )

    # ------------------------------------------------------------------ plumbing
    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        org_cuid: str | None = None,
        timeout: httpx2.Timeout | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """One API call with retries; returns the decoded JSON object or raises
        ValidMindError."""
        endpoint = label or f"{method} {path}"
        headers = dict(self._auth_headers)
        if org_cuid:
            headers["X-Org-CUID"] = org_cuid
        response: httpx2.Response
        try:
            for attempt in stamina.retry_context(
                on=lambda exc: self._retry_wait(endpoint, exc),
                attempts=self._attempts,
                timeout=None,
                wait_initial=WAIT_INITIAL,
                wait_max=WAIT_MAX,
                wait_jitter=WAIT_JITTER,
            ):
                with attempt:
                    response = self._send(
                        attempt.num,
                        method,
                        path,
                        params=params,
                        json_body=json_body,
                        headers=headers,
                        timeout=timeout or self._timeout,
                    )
        except _Retryable as exc:
            if exc.response is None:
                raise ValidMindError(endpoint, self._describe(exc.error)) from None
            response = exc.response
        return self._decode(endpoint, response)

    def _send(
        self,
        attempt: int,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None,
        json_body: dict[str, Any] | None,
        headers: dict[str, str],
        timeout: httpx2.Timeout,
    ) -> httpx2.Response:
        try:
            response = self._http.request(
                method, path, params=params, json=json_body, headers=headers, timeout=timeout
            )
        except httpx2.TransportError as exc:
            raise _Retryable(attempt, error=exc) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(attempt, response=response)
        return response

    def _retry_wait(self, endpoint: str, exc: Exception) -> bool | float:
        """stamina backoff hook: False = do not retry, a float = wait that long first."""
        if not isinstance(exc, _Retryable):
            return False
        if isinstance(exc.error, httpx2.UnsupportedProtocol):
            return False  # a bad base_url does not get better by asking again
        wait = _backoff(exc.attempt)
        retry_after = exc.retry_after()
        if retry_after is not None:
            wait = max(wait, min(retry_after, RETRY_AFTER_CAP_SECONDS))
        if exc.attempt < self._attempts:
            log.info(
                "validmind retry endpoint=%r attempt=%d cause=%s wait_seconds=%.3f",
                endpoint,
                exc.attempt,
                exc.cause(),
                wait,
                extra={"wait_seconds": wait, "endpoint": endpoint, "attempt": exc.attempt},
            )
        return wait

    def _decode(self, endpoint: str, response: httpx2.Response) -> dict[str, Any]:
        status = response.status_code
        if not 200 <= status < 300:
            excerpt = self._excerpt(response)
            raise ValidMindError(
                endpoint,
                f"HTTP {status}: {excerpt or '(empty body)'}",
                status=status,
                body_excerpt=excerpt,
            )
        try:
            data = parse_json(response.content)
        except ValueError as exc:
            excerpt = self._excerpt(response)
            raise ValidMindError(
                endpoint,
                f"response is not valid JSON ({exc}): {excerpt or '(empty body)'}",
                status=status,
                body_excerpt=excerpt,
            ) from None
        if not isinstance(data, dict):
            excerpt = self._excerpt(response)
            raise ValidMindError(
                endpoint,
                f"response is {_type_name(data)}, not a JSON object: {excerpt}",
                status=status,
                body_excerpt=excerpt,
            )
        return data

    def _excerpt(self, response: httpx2.Response) -> str:
        text = response.text[: BODY_EXCERPT_CHARS + 200]
        return self._redact(text)[:BODY_EXCERPT_CHARS]

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _describe(self, error: httpx2.TransportError | None) -> str:
        reason = self._redact(str(error) or type(error).__name__)
        if isinstance(error, httpx2.UnsupportedProtocol):
            shown = redact_url(self._config.base_url.strip())
            return f"cannot connect: base_url {shown!r} is not an http(s) URL"
        if isinstance(error, httpx2.ConnectError | httpx2.ConnectTimeout):
            return f"cannot connect: {reason}"
        if isinstance(error, httpx2.TimeoutException):
            return f"timed out: {reason}"
        return f"connection error: {type(error).__name__}: {reason}"

    def _shape_error(self, endpoint: str, data: dict[str, Any], detail: str) -> ValidMindError:
        excerpt = self._redact(json.dumps(data)[: BODY_EXCERPT_CHARS + 200])[:BODY_EXCERPT_CHARS]
        return ValidMindError(endpoint, f"response {detail}", status=200, body_excerpt=excerpt)

    def _field(self, endpoint: str, data: dict[str, Any], name: str, kind: type) -> Any:
        if name not in data:
            raise self._shape_error(endpoint, data, f"is missing required field {name!r}")
        value = data[name]
        wrong_bool = kind is not bool and isinstance(value, bool)
        if not isinstance(value, kind) or wrong_bool:
            raise self._shape_error(
                endpoint,
                data,
                f"field {name!r} is {_type_name(value)}, not {_KIND_NAMES.get(kind, kind)}",
            )
        return value

    def _items(self, endpoint: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        items = self._field(endpoint, data, "items", list)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self._shape_error(
                    endpoint, data, f"items[{i}] is {_type_name(item)}, not an object"
                )
        return items


_KIND_NAMES: dict[type, str] = {
    list: "a list",
    int: "an integer",
    str: "a string",
    bool: "a boolean",
    dict: "an object",
}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


_ABSENT = object()


def _cuid(record: dict[str, Any]) -> str:
    cuid = record.get("cuid")
    return cuid if isinstance(cuid, str) else ""


def _auth_headers(config: BackendConfig) -> tuple[str, dict[str, str]]:
    """Machine-user headers when both machine values are set, else API-key headers."""

    def value(secret: Any) -> str:
        return secret.get_secret_value() if secret is not None else ""

    machine_key, machine_secret = value(config.machine_key), value(config.machine_secret)
    if machine_key and machine_secret:
        return "machine_user", {"X-MACHINE-KEY": machine_key, "X-MACHINE-SECRET": machine_secret}
    api_key, api_secret = value(config.api_key), value(config.api_secret)
    if api_key and api_secret:
        return "api_key", {"X-API-KEY": api_key, "X-API-SECRET": api_secret}
    return "none", {}

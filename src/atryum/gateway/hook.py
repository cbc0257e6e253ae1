"""`atryum hook`: a Claude Code hook that gates each tool call through Atryum (spec §2).

PreToolUse: post the intended call, wait for the decision, print Claude Code's allow/deny JSON.
PostToolUse: report the outcome of the approved call. With Atryum's `[[auth]]` on, it sends the
bearer token of ATRYUM_ACCESS_TOKEN or ATRYUM_TOKEN_COMMAND (`hook_token`). Anything that goes
wrong — Atryum unreachable, an error answer, no decision in time — denies the call (fail
closed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import platformdirs

from atryum.gateway import hook_hosts as hosts
from atryum.gateway.hook_token import BearerAuth, TokenSource

OPEN = {"received", "pending_approval"}
# The hook's whole run ends this long after its decision wait at the latest, whatever the
# network does (a server trickling bytes resets every per-read timeout): register the hook with
# a harness timeout above `--timeout` + DEADLINE_GRACE, so the hook, not the harness, decides.
DEADLINE_GRACE = 15.0
MAX_RESULT_CHARS = 64_000
POLL_WAIT = 25  # seconds per long-poll request (the server caps it at 30)


class HookDeadline(Exception):
    """The hook's total deadline passed: the call is blocked."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise HookDeadline in this (main) thread once `seconds` of wall-clock time have passed."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread; `atryum hook` always runs there
        return

    def expire(signum: int, frame: Any) -> None:
        raise HookDeadline(f"no answer within the hook's total deadline of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class UnsafeStateDir(Exception):
    """The hook's state directory is shared or not this user's: the hook refuses to use it."""


def _state_dir() -> Path:
    """The directory approved call ids wait in for PostToolUse: the user's state directory
    unless ATRYUM_HOOK_STATE_DIR (or ATRYUM_STATE_DIR) says otherwise. It must be a directory
    of this user that no one else can write or read (0700): anyone who can write it could swap
    the invocation a report goes to, so a shared or foreign directory is refused, never used."""
    base = (
        os.environ.get("ATRYUM_HOOK_STATE_DIR")
        or os.environ.get("ATRYUM_STATE_DIR")  # the Go original's hook's name for it
        or platformdirs.user_state_path("atryum") / "hook"
    )
    path = Path(base)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise UnsafeStateDir(
            f"the hook state directory {path} must be a directory owned by you that only you "
            f"can use (mode 0700); fix it with chmod 700 {path}, or set ATRYUM_HOOK_STATE_DIR"
        )
    return path


def _state_file(tool_use_id: str) -> Path:
    return _state_dir() / (re.sub(r"[^A-Za-z0-9_.-]", "_", tool_use_id) + ".json")


ABANDONED = "abandoned-"
CANCEL_TIMEOUT = 3.0  # per withdrawal request: a withdrawal never holds a hook up for long
MAX_RETRIES_PER_RUN = 20


def _withdraw(client: httpx2.Client, invocation_id: str) -> bool:
    """PATCH the call `cancelled`; True when Atryum has it settled (cancelled now, or already
    decided or finished: 409, or gone: 404), False when it could not be told."""
    try:
        r = client.patch(
            f"/api/v1/external/invocations/{invocation_id}",
            json={"execution_status": "cancelled", "message": "the hook stopped waiting"},
            timeout=CANCEL_TIMEOUT,
        )
    except (httpx2.HTTPError, OSError):
        return False
    return r.status_code in (200, 404, 409)


def _abandon(client: httpx2.Client, invocation_id: str) -> None:
    """The hook gives up on a call it submitted: withdraw it, or, if Atryum cannot be told now,
    remember it so that the next hook run withdraws it (issue 14 row 9: nobody approves a call
    that never ran)."""
    if not _withdraw(client, invocation_id):
        name = ABANDONED + re.sub(r"[^A-Za-z0-9_.-]", "_", invocation_id) + ".json"
        (_state_dir() / name).write_text(json.dumps({"invocation_id": invocation_id}))


def _withdraw_abandoned(client: httpx2.Client) -> None:
    """Withdraw the calls earlier runs gave up on while Atryum was unreachable."""
    for path in sorted(_state_dir().glob(ABANDONED + "*.json"))[:MAX_RETRIES_PER_RUN]:
        try:
            invocation_id = str(json.loads(path.read_text())["invocation_id"])
        except (ValueError, KeyError, TypeError, OSError):
            path.unlink(missing_ok=True)  # unreadable: nothing to withdraw
            continue
        if not _withdraw(client, invocation_id):
            return  # still unreachable: the next run tries again
        path.unlink(missing_ok=True)


def _error_text(r: httpx2.Response) -> str:
    try:
        return f"HTTP {r.status_code}: {r.json()['error']['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {r.status_code}"


def pre_tool_use(
    event: dict[str, Any],
    *,
    client: httpx2.Client,
    host: hosts.Host,
    source: str,
    agent_id: str | None,
    timeout: float,
) -> dict[str, Any]:
    tool_use_id = hosts.tool_use_id(event)
    state = _state_file(tool_use_id)  # refused before anything is asked
    session = hosts.session_id(event)
    tool_input = hosts.tool_input(event)
    body: dict[str, Any] = {
        "source": source,
        "tool": hosts.tool_name(event),
        "input": tool_input if isinstance(tool_input, dict) else {"value": tool_input},
        "description": str((tool_input or {}).get("description", ""))
        if isinstance(tool_input, dict)
        else "",
        "client_session_id": session or None,
        "client_name": hosts.default_source(host),
        "client_version": "atryum-hook",
        "agent_id": agent_id,
        # the call expires when this hook has stopped waiting (its total deadline), even if the
        # hook cannot withdraw it then
        "wait_seconds": max(1, int(timeout + DEADLINE_GRACE)),
    }
    body["request_id"] = tool_use_id
    if hosts.given_tool_use_id(event):  # a derived id names equal calls alike: no key then
        body["idempotency_key"] = f"{source}:{session}:{tool_use_id}"
    r = client.post("/api/v1/external/invocations", json=body)
    if r.status_code not in (200, 201):
        return hosts.answer(host, False, f"Atryum refused the call: {_error_text(r)}")
    inv = r.json()
    try:
        inv = _wait_for_decision(client, inv, timeout)
    except BaseException:  # unreachable, the total deadline, anything: the call is given up on
        submitted = inv.get("invocation_id") if isinstance(inv, dict) else None
        if isinstance(submitted, str):  # an answered call is settled: withdrawing it is a 409
            _abandon(client, submitted)
        raise
    reason = (inv.get("approval") or {}).get("reason") or inv["status"]
    if inv["status"] != "approved":
        return hosts.answer(host, False, f"Atryum: {inv['status']}: {reason}")
    client.patch(
        f"/api/v1/external/invocations/{inv['invocation_id']}",
        json={"execution_status": "running"},
    )
    state.write_text(json.dumps({"invocation_id": inv["invocation_id"]}))
    return hosts.answer(host, True, f"Atryum: approved: {reason}")


class NoDecision(Exception):
    """No decision in time, or an error answer while waiting: the call is blocked."""


def _wait_for_decision(client: httpx2.Client, inv: dict[str, Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while inv["status"] in OPEN:
        left = deadline - time.monotonic()
        if left <= 0:
            raise NoDecision(f"no decision from Atryum within {timeout:.0f} s")
        r = client.get(
            f"/api/v1/external/invocations/{inv['invocation_id']}",
            params={"wait": min(POLL_WAIT, max(int(left), 1))},
        )
        if r.status_code != 200:
            raise NoDecision(f"Atryum answered with an error: {_error_text(r)}")
        inv = r.json()
    return inv


def _failed(event: dict[str, Any], result: Any) -> bool:
    """The harness reported the tool failed (as the Go hook reads it)."""
    if (event.get("tool_response_status") or event.get("status")) == "error":
        return True
    if not isinstance(result, dict):
        return False
    return (
        result.get("is_error") is True
        or result.get("isError") is True
        or result.get("success") is False
        or result.get("error") is not None
    )


def post_tool_use(event: dict[str, Any], *, client: httpx2.Client) -> None:
    path = _state_file(hosts.tool_use_id(event))
    if not path.exists():
        return  # not a call this hook approved
    invocation_id = json.loads(path.read_text())["invocation_id"]
    result = hosts.tool_result(event)
    failed = _failed(event, result)
    text = json.dumps(result, default=str)
    if len(text) > MAX_RESULT_CHARS:
        result = {"truncated": True, "preview": text[:MAX_RESULT_CHARS]}
    client.patch(
        f"/api/v1/external/invocations/{invocation_id}",
        json={"execution_status": "failed" if failed else "completed", "result": result},
    )
    path.unlink(missing_ok=True)


def run(
    stdin_text: str,
    *,
    url: str,
    host: hosts.Host = "claude",
    source: str | None = None,
    agent_id: str | None = None,
    timeout: float = 600.0,
    transport: httpx2.BaseTransport | None = None,
) -> str:
    """Handle one hook event of the harness `host`; returns what to print on stdout (empty for
    PostToolUse, `{}` for SessionStart). `source` defaults to the harness's name."""
    try:
        event = json.loads(stdin_text or "{}")
        if not isinstance(event, dict):
            raise ValueError("hook input is not a JSON object")
    except ValueError as exc:
        return json.dumps(hosts.answer(host, False, f"atryum hook could not read its input: {exc}"))
    kind = hosts.kind_of(event)
    if kind == "session_start":
        return "{}"
    try:
        with (
            _deadline(timeout + DEADLINE_GRACE),
            httpx2.Client(
                base_url=url.rstrip("/"),
                timeout=POLL_WAIT + 10,
                transport=transport,
                auth=BearerAuth(TokenSource.from_env(url, _state_dir)),
            ) as client,
        ):
            _withdraw_abandoned(client)
            if kind == "post":
                post_tool_use(event, client=client)
                return ""
            out = pre_tool_use(
                event,
                client=client,
                host=host,
                source=source or hosts.default_source(host),
                agent_id=agent_id,
                timeout=timeout,
            )
    except NoDecision as exc:
        out = hosts.answer(host, False, str(exc))
    except (httpx2.HTTPError, OSError) as exc:
        if kind == "post":
            return ""  # the outcome report is best effort; the tool has already run
        out = hosts.answer(host, False, f"Atryum at {url} could not be reached ({exc}); blocked")
    except Exception as exc:  # fail closed: whatever went wrong, the call does not run
        if kind == "post":
            return ""
        out = hosts.answer(
            host,
            False,
            f"the Atryum hook failed ({type(exc).__name__}: {exc}); the call was blocked",
        )
    return json.dumps(out)

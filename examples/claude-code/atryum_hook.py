#!/usr/bin/env python3
"""Claude Code hook for Atryum, standard library only (Python 3.9+).

Register it for PreToolUse (and optionally PostToolUse) in Claude Code's settings — see
README.md. It reads the hook event on stdin and:

* PreToolUse: posts the intended call to Atryum, waits for the decision (long-polling while a
  human decides) and prints Claude Code's allow/deny JSON. Anything that goes wrong — Atryum
  unreachable, an error answer, no decision in time — denies the call (fail closed).
* PostToolUse: reports the outcome of a call this hook approved.

Environment: ATRYUM_URL (default http://127.0.0.1:8080), ATRYUM_AGENT_ID (runtime agent id),
ATRYUM_SOURCE (default claude-code), ATRYUM_HOOK_TIMEOUT (seconds to wait, default 600),
ATRYUM_HOOK_STATE_DIR (where approved call ids wait for PostToolUse).
"""

import contextlib
import json
import os
import re
import stat
import sys
import time
import urllib.error
import urllib.request

URL = os.environ.get("ATRYUM_URL", "http://127.0.0.1:8080").rstrip("/")
SOURCE = os.environ.get("ATRYUM_SOURCE", "claude-code")
AGENT_ID = os.environ.get("ATRYUM_AGENT_ID") or None
OPEN = ("received", "pending_approval")


class AtryumError(Exception):
    pass


def call(method, path, body=None, timeout=40):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        URL + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except Exception:
            message = f"HTTP {exc.code}"
        raise AtryumError(message) from None


def decision(allow, reason):
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "allow" if allow else "deny",
            "permissionDecisionReason": reason,
        }
    }


def state_file(tool_use_id):
    """Approved call ids wait here for PostToolUse: a directory of this user only (0700), never
    a shared or foreign one (whoever can write it could redirect the outcome report)."""
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    base = os.environ.get("ATRYUM_HOOK_STATE_DIR") or os.path.join(state_home, "atryum", "hook")
    os.makedirs(base, mode=0o700, exist_ok=True)
    st = os.lstat(base)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise AtryumError(
            f"the hook state directory {base} must be a directory owned by you that only you "
            f"can use (mode 0700); fix it with chmod 700 {base}, or set ATRYUM_HOOK_STATE_DIR"
        )
    return os.path.join(base, re.sub(r"[^A-Za-z0-9_.-]", "_", tool_use_id) + ".json")


def pre_tool_use(event):
    tool_use_id = str(event.get("tool_use_id") or "")
    state = state_file(tool_use_id) if tool_use_id else None  # refused before anything is asked
    session = str(event.get("session_id") or "")
    tool_input = event.get("tool_input")
    if not isinstance(tool_input, dict):
        tool_input = {"value": tool_input}
    body = {
        "source": SOURCE,
        "tool": str(event.get("tool_name") or ""),
        "input": tool_input,
        "description": str(tool_input.get("description", "")),
        "client_session_id": session or None,
        "client_name": "claude-code",
        "client_version": "atryum-example-hook",
        "agent_id": AGENT_ID,
    }
    if tool_use_id:
        body["request_id"] = tool_use_id
        body["idempotency_key"] = f"{SOURCE}:{session}:{tool_use_id}"
    inv = call("POST", "/api/v1/external/invocations", body)
    path = "/api/v1/external/invocations/" + inv["invocation_id"]
    timeout = float(os.environ.get("ATRYUM_HOOK_TIMEOUT", "600"))
    deadline = time.monotonic() + timeout
    while inv["status"] in OPEN:
        left = deadline - time.monotonic()
        if left <= 0:
            call("PATCH", path, {"execution_status": "cancelled", "message": "hook timed out"})
            return decision(False, f"no decision from Atryum within {timeout:.0f} s")
        inv = call("GET", f"{path}?wait={max(1, min(25, int(left)))}")
    reason = (inv.get("approval") or {}).get("reason") or inv["status"]
    if inv["status"] != "approved":
        return decision(False, "Atryum: {}: {}".format(inv["status"], reason))
    call("PATCH", path, {"execution_status": "running"})
    if state:
        with open(state, "w") as f:
            json.dump({"invocation_id": inv["invocation_id"]}, f)
    return decision(True, "Atryum: approved: " + reason)


def post_tool_use(event):
    tool_use_id = str(event.get("tool_use_id") or "")
    if not tool_use_id or not os.path.exists(state_file(tool_use_id)):
        return
    with open(state_file(tool_use_id)) as f:
        invocation_id = json.load(f)["invocation_id"]
    result = event.get("tool_response")
    text = json.dumps(result, default=str)
    if len(text) > 64000:
        result = {"truncated": True, "preview": text[:64000]}
    failed = isinstance(result, dict) and result.get("is_error") is True
    call(
        "PATCH",
        "/api/v1/external/invocations/" + invocation_id,
        {"execution_status": "failed" if failed else "completed", "result": result},
    )
    os.unlink(state_file(tool_use_id))


def main():
    try:
        event = json.loads(sys.stdin.read() or "{}")
        if not isinstance(event, dict):
            raise ValueError("hook input is not a JSON object")
    except ValueError as exc:
        print(json.dumps(decision(False, f"atryum hook could not read its input: {exc}")))
        return
    if event.get("hook_event_name") == "PostToolUse":
        with contextlib.suppress(Exception):  # best effort: the tool has already run
            post_tool_use(event)
        return
    try:
        out = pre_tool_use(event)
    except Exception as exc:  # fail closed: whatever went wrong, the call does not run
        out = decision(False, f"Atryum at {URL}: {type(exc).__name__}: {exc}; the call was blocked")
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except BaseException:  # exit code 2 is Claude Code's "block": never fail open
        sys.stderr.write("atryum hook failed; the call was blocked\n")
        sys.exit(2)

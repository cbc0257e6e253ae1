"""What each harness sends the hook and the answer it understands (Claude Code, Cursor, Codex),
read as the Go original's shared hook reads them, so one `atryum hook` serves all three.

* Claude Code and Codex: `PreToolUse` / `PostToolUse` events; the answer is
  `{"hookSpecificOutput": {"permissionDecision": "allow" | "deny", …}}`.
* Cursor: `preToolUse` / `postToolUse` (and `sessionStart`); the answer is
  `{"permission": "allow" | "deny", "message": …}`. Cursor sets CURSOR_INVOKED_AS for its hooks.

An event that names neither is treated as a PreToolUse: a call is gated, never let through.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Literal

Host = Literal["claude", "cursor", "codex"]
HOSTS: tuple[Host, ...] = ("claude", "cursor", "codex")
Kind = Literal["pre", "post", "session_start"]


def host_of(name: str | None) -> Host:
    """The harness: Cursor when it invoked us, else `name` (ATRYUM_HOOK_HOST), else Claude."""
    if os.environ.get("CURSOR_INVOKED_AS"):
        return "cursor"
    value = (name or "claude").strip().lower()
    if value not in HOSTS:
        raise ValueError(f"unknown hook host {name!r}; use one of {', '.join(HOSTS)}")
    return value


def default_source(host: Host) -> str:
    return "claude-code" if host == "claude" else host


def _first(event: dict[str, Any], *keys: str) -> Any:
    return next((event[k] for k in keys if event.get(k) not in (None, "")), None)


def kind_of(event: dict[str, Any]) -> Kind:
    name = str(
        os.environ.get("ATRYUM_HOOK_EVENT")
        or _first(event, "hook_event_name", "hookEventName", "event", "type")
        or ""
    )
    if re.search("posttooluse", name, re.IGNORECASE):
        return "post"
    if re.search("sessionstart", name, re.IGNORECASE):
        return "session_start"
    return "pre"


def tool_name(event: dict[str, Any]) -> str:
    return str(_first(event, "tool_name", "toolName", "tool", "name") or "")


def tool_input(event: dict[str, Any]) -> Any:
    return _first(event, "tool_input", "toolInput", "input", "args")


_ID_KEYS = ("tool_use_id", "toolUseId", "toolUseID", "id", "request_id")


def given_tool_use_id(event: dict[str, Any]) -> bool:
    return _first(event, *_ID_KEYS) is not None


def tool_use_id(event: dict[str, Any]) -> str:
    """The harness's id of the call; without one, the tool and a hash of its input (as the Go
    hook derives it), so that PostToolUse finds what PreToolUse approved."""
    given = _first(event, *_ID_KEYS)
    if given is not None:
        return str(given)
    digest = hashlib.sha256(
        json.dumps(tool_input(event) or {}, separators=(",", ":")).encode()
    ).hexdigest()
    return f"{tool_name(event) or 'unknown'}:{digest[:24]}"


def session_id(event: dict[str, Any]) -> str:
    keys = ("session_id", "sessionId", "thread_id", "threadId", "conversation_id")
    return str(_first(event, *keys, "conversationId") or "")


def tool_result(event: dict[str, Any]) -> Any:
    return _first(event, "tool_response", "toolResponse", "output", "result")


def answer(host: Host, allow: bool, reason: str) -> dict[str, Any]:
    """The PreToolUse answer in the harness's own form."""
    if host == "cursor":
        return {"permission": "allow" if allow else "deny", "message": reason}
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "allow" if allow else "deny",
            "permissionDecisionReason": reason,
        }
    }

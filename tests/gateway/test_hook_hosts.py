"""Cursor, Codex and Claude Code events and answers, read and written as each harness (and the
Go original's shared hook) does."""

from __future__ import annotations

import pytest

from atryum.gateway import hook_hosts as hosts

CURSOR_PRE = {
    "hook_event_name": "preToolUse",
    "conversation_id": "conv-1",
    "tool_name": "Shell",
    "tool_input": {"command": "ls -la"},
}


def test_events_are_told_apart_case_blind_and_unknown_ones_are_gated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert hosts.kind_of(CURSOR_PRE) == "pre"
    assert hosts.kind_of({"hook_event_name": "postToolUse"}) == "post"
    assert hosts.kind_of({"hookEventName": "PostToolUse"}) == "post"
    assert hosts.kind_of({"hook_event_name": "sessionStart"}) == "session_start"
    assert hosts.kind_of({}) == "pre" and hosts.kind_of({"type": "mystery"}) == "pre"
    monkeypatch.setenv("ATRYUM_HOOK_EVENT", "postToolUse")  # as the Go examples register it
    assert hosts.kind_of(CURSOR_PRE) == "post"


def test_a_call_without_an_id_gets_a_stable_one_from_its_input() -> None:
    first = hosts.tool_use_id(CURSOR_PRE)
    assert first.startswith("Shell:") and first == hosts.tool_use_id(dict(CURSOR_PRE))
    assert first != hosts.tool_use_id({**CURSOR_PRE, "tool_input": {"command": "rm -rf /"}})
    assert not hosts.given_tool_use_id(CURSOR_PRE)
    assert hosts.tool_use_id({"toolUseId": "t-9"}) == "t-9"
    assert hosts.session_id(CURSOR_PRE) == "conv-1"


def test_each_harness_gets_its_own_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hosts.answer("cursor", False, "no") == {"permission": "deny", "message": "no"}
    for host in ("claude", "codex"):
        out = hosts.answer(host, True, "ok")["hookSpecificOutput"]
        assert out["permissionDecision"] == "allow" and out["hookEventName"] == "PreToolUse"
    assert hosts.host_of("Codex") == "codex" and hosts.default_source("codex") == "codex"
    assert hosts.default_source("claude") == "claude-code"
    with pytest.raises(ValueError, match="unknown hook host"):
        hosts.host_of("vim")
    monkeypatch.setenv("CURSOR_INVOKED_AS", "hook")
    assert hosts.host_of(None) == "cursor"

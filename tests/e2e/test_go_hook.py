"""THE compatibility test: the Go original's shared hook script (`atryum-hook.mjs`, run by
Node as Claude Code, Cursor and Codex run it) against a real `atryum run` process, on SQLite
and PostgreSQL (go-compat.md §2, issue 9).

The amp, opencode and pi plugins are TypeScript modules loaded by their harnesses (amp, opencode,
pi), which are not available here; `test_plugin_request_shapes` sends the requests they send
(read from their sources) over HTTP instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.go_original import SharedHook
from tests.e2e.processes import AtryumProcess
from tests.support import free_port, wait_until

REVIEW = "/api/v1/review/invocations"
ALLOW = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}}


def write_toml(path: Path, db_url: str, port: int, *, unregistered: str = "global_rules") -> Path:
    path.write_text(
        "[server]\n"
        f'listen_addr = "127.0.0.1:{port}"\n'
        f'database_url = "{db_url}"\n'
        'log_level = "debug"\n'
        "[policy]\n"
        f'unregistered_agents = "{unregistered}"\n'
    )
    return path


def start_atryum(tmp: Path, name: str, db_url: str, **kw: Any) -> AtryumProcess:
    port = free_port()
    path = write_toml(tmp / f"{name}.toml", db_url, port, **kw)
    proc = AtryumProcess(
        tmp, name, config_path=path, env={"ATRYUM_LISTEN_ADDR": f"127.0.0.1:{port}"}
    )
    proc.port, proc.url = port, f"http://127.0.0.1:{port}"
    return proc.start()


class Recorder(ThreadingHTTPServer):
    """A pass-through proxy in front of Atryum that records each request's Authorization."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[tuple[str, str, str | None]] = []
        super().__init__(("127.0.0.1", 0), _Forward)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: Recorder

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        r = httpx2.request(
            self.command, self.server.upstream + self.path, content=body, headers=headers
        )
        self.send_response(r.status_code)
        self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    do_GET = do_POST = do_PATCH = _forward

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def shared_atryum(
    tmp_path_factory: pytest.TempPathFactory, module_db_url: str
) -> Iterator[AtryumProcess]:
    proc = start_atryum(tmp_path_factory.mktemp("atryum"), "atryum", module_db_url)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def atryum(shared_atryum: AtryumProcess) -> AtryumProcess:
    """The module's Atryum with no rules: each test adds its own, and calls tools no other test
    calls (the invocations it reads are its own)."""
    for rule in api(shared_atryum, "GET", "/api/v1/rules")["items"]:
        api(shared_atryum, "DELETE", f"/api/v1/rules/{rule['id']}")
    assert invocations(shared_atryum, status="pending_approval") == []
    return shared_atryum


def api(atryum: AtryumProcess, method: str, path: str, **kw: Any) -> Any:
    r = httpx2.request(method, atryum.url + path, timeout=10, **kw)
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


def add_rule(atryum: AtryumProcess, action: str, **fields: Any) -> dict[str, Any]:
    rule: dict[str, Any] = api(atryum, "POST", "/api/v1/rules", json={"action": action, **fields})
    return rule


def invocations(atryum: AtryumProcess, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api(atryum, "GET", REVIEW, params=params)["items"]
    return items


def claude(event: str, tool: str, tool_input: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A Claude Code hook payload (as on stdin of a `command` hook)."""
    return {
        "session_id": "sess-1",
        "transcript_path": "/nonexistent/transcript.jsonl",
        "cwd": "/work",
        "hook_event_name": event,
        "tool_name": tool,
        "tool_input": tool_input,
        **extra,
    }


def deny_reason(answer: dict[str, Any]) -> str:
    out = answer["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny", answer
    reason: str = out["permissionDecisionReason"]
    return reason


def test_claude_code_hook_end_to_end(atryum: AtryumProcess, tmp_path: Path) -> None:
    ops = api(atryum, "POST", "/api/v1/agents", json={"name": "Ops bot", "agent_ids": ["ops-bot"]})
    add_rule(atryum, "auto_approve", tool_patterns=["Write"], agent_cuids=[ops["cuid"]])
    add_rule(atryum, "auto_deny", tool_patterns=["Write", "mcp__github__delete_*"])
    add_rule(atryum, "auto_approve", tool_patterns=["Bash", "Read"])
    add_rule(atryum, "human_approval", tool_patterns=["WebFetch"])
    recorder = Recorder(atryum.url)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    try:
        hook = SharedHook(recorder.url, tmp_path, ATRYUM_ACCESS_TOKEN="tok-from-the-harness")
        _claude_flow(atryum, hook, ops)
    finally:
        recorder.shutdown()
        recorder.server_close()
    # ATRYUM_ACCESS_TOKEN went out as a bearer token on every request (with inbound auth off it
    # is not checked; test_the_hook_token_is_verified turns it on)
    assert recorder.seen and all(
        auth == "Bearer tok-from-the-harness" for *_, auth in recorder.seen
    )
    assert {m for m, *_ in recorder.seen} == {"POST", "GET", "PATCH"}


def _claude_flow(atryum: AtryumProcess, hook: SharedHook, ops: dict[str, Any]) -> None:
    # allow, then PostToolUse `completed` with the tool's response
    pre = claude("PreToolUse", "Bash", {"command": "ls -la"}, tool_use_id="toolu_01")
    assert hook.run("claude", "PreToolUse", pre) == ALLOW
    response = {"stdout": "total 0", "stderr": "", "interrupted": False, "isImage": False}
    post = claude("PostToolUse", "Bash", {"command": "ls -la"}, tool_use_id="toolu_01")
    assert hook.run("claude", "PostToolUse", {**post, "tool_response": response}) == {}
    done = invocations(atryum, tool="Bash")[0]
    assert (done["status"], done["result"], done["request_id"]) == (
        "succeeded",
        response,
        "toolu_01",
    )
    assert (done["source"], done["client_session_id"]) == ("claude-code", "sess-1")

    # PostToolUse with an error object → `failed`, the object recorded as the error
    pre = claude("PreToolUse", "Read", {"file_path": "/etc/shadow"}, tool_use_id="toolu_02")
    assert hook.run("claude", "PreToolUse", pre) == ALLOW
    failure = {"success": False, "error": "EACCES: permission denied", "code": 13}
    post = claude("PostToolUse", "Read", {"file_path": "/etc/shadow"}, tool_use_id="toolu_02")
    assert hook.run("claude", "PostToolUse", {**post, "tool_response": failure}) == {}
    failed = invocations(atryum, tool="Read")[0]
    assert (failed["status"], failed["error"]) == ("failed", failure)

    # deny by rule, with the hook's reason
    pre = claude("PreToolUse", "mcp__github__delete_repo", {"repo": "x"}, tool_use_id="toolu_03")
    reason = deny_reason(hook.run("claude", "PreToolUse", pre))
    assert "'mcp__github__delete_repo' was denied" in reason and "/api/v1/agent/rules" in reason

    # an agent-scoped rule for a registered id; the rules for all agents for an unregistered one
    write = claude("PreToolUse", "Write", {"file_path": "a.txt", "content": "hi"})
    assert hook.run("claude", "PreToolUse", write, ATRYUM_AGENT_ID="ops-bot") == ALLOW
    mine = invocations(atryum, tool="Write")[0]
    assert (mine["agent_id"], mine["agent_record_id"]) == ("ops-bot", ops["cuid"])
    stranger = hook.run("claude", "PreToolUse", write, ATRYUM_AGENT_ID="someone-else")
    assert "was denied" in deny_reason(stranger)
    bash = claude("PreToolUse", "Bash", {"command": "pwd"})
    assert hook.run("claude", "PreToolUse", bash, ATRYUM_AGENT_ID="someone-else") == ALLOW
    theirs = invocations(atryum, agent="someone-else")
    assert [i["status"] for i in theirs] == ["executing", "denied"]
    assert all(i["agent_record_id"] is None for i in theirs)

    # a human approval reaches the blocked hook
    fetch = claude("PreToolUse", "WebFetch", {"url": "https://example.com"}, tool_use_id="toolu_04")
    waiting = hook.start("claude", "PreToolUse", fetch)
    pending = wait_until(lambda: invocations(atryum, status="pending_approval"), timeout=30)
    assert waiting.poll() is None  # still blocked on the decision
    api(atryum, "POST", f"{REVIEW}/{pending[0]['invocation_id']}/approve", json={"reason": "ok"})
    assert hook.finish(waiting) == ALLOW
    assert api(atryum, "GET", f"{REVIEW}/{pending[0]['invocation_id']}")["status"] == "executing"

    # ... and a human denial too, with Go's `message`
    fetch = claude("PreToolUse", "WebFetch", {"url": "https://evil.test"}, tool_use_id="toolu_05")
    waiting = hook.start("claude", "PreToolUse", fetch)
    pending = wait_until(lambda: invocations(atryum, status="pending_approval"), timeout=30)
    api(atryum, "POST", f"{REVIEW}/{pending[0]['invocation_id']}/deny", json={"message": "no"})
    assert "was denied" in deny_reason(hook.finish(waiting))


def test_identical_calls_without_tool_use_ids_are_gated_each(
    atryum: AtryumProcess, tmp_path: Path
) -> None:
    """Codex sends no tool-use id: the hook derives `request_id` from a hash of the input, so two
    identical calls share it. Each is a call of its own once the first is decided."""
    add_rule(atryum, "auto_approve", tool_patterns=["shell"])
    hook = SharedHook(atryum.url, tmp_path)
    event = {"session_id": "codex-1", "tool_name": "shell", "tool_input": {"command": ["ls"]}}
    for _ in range(2):
        answer = hook.run("codex", "PreToolUse", {**event, "hook_event_name": "PreToolUse"})
        assert answer == ALLOW
    first, second = invocations(atryum, tool="shell")
    assert first["invocation_id"] != second["invocation_id"]
    assert first["request_id"] == second["request_id"] and first["request_id"].startswith("shell:")
    assert {first["source"], first["status"], second["status"]} == {"codex", "executing"}
    post = {**event, "hook_event_name": "PostToolUse", "tool_response": {"output": "a\nb"}}
    assert hook.run("codex", "PostToolUse", post) == {}
    assert {i["status"] for i in invocations(atryum, tool="shell")} == {"executing", "succeeded"}
    # a third identical call after the rule is gone waits for a human: a new call again
    for rule in api(atryum, "GET", "/api/v1/rules")["items"]:
        api(atryum, "DELETE", f"/api/v1/rules/{rule['id']}")
    waiting = hook.start("codex", "PreToolUse", {**event, "hook_event_name": "PreToolUse"})
    pending = wait_until(lambda: invocations(atryum, status="pending_approval"), timeout=30)
    api(atryum, "POST", f"{REVIEW}/{pending[0]['invocation_id']}/deny")
    assert "was denied" in deny_reason(hook.finish(waiting))
    assert len(invocations(atryum, tool="shell")) == 3


def test_cursor_hook(atryum: AtryumProcess, tmp_path: Path) -> None:
    add_rule(atryum, "auto_approve", tool_patterns=["Shell"])
    add_rule(atryum, "auto_deny", tool_patterns=["Delete"])
    hook = SharedHook(atryum.url, tmp_path)
    base = {"conversation_id": "conv-1", "generation_id": "gen-1", "hook_event_name": "preToolUse"}
    shell = {
        **base,
        "tool_name": "Shell",
        "tool_input": {"command": "npm test"},
        "tool_use_id": "c1",
    }
    assert hook.run("cursor", "preToolUse", shell) == {"permission": "allow"}
    denied = hook.run("cursor", "preToolUse", {**shell, "tool_name": "Delete", "tool_use_id": "c2"})
    assert denied["permission"] == "deny" and "'Delete' was denied" in denied["message"]
    post = {**shell, "hook_event_name": "postToolUse", "tool_response": {"exitCode": 1}}
    post["tool_response_status"] = "error"
    assert hook.run("cursor", "postToolUse", post) == {}
    shell_call = invocations(atryum, tool="Shell")[0]
    assert (shell_call["source"], shell_call["status"]) == ("cursor", "failed")
    assert shell_call["error"] == {"exitCode": 1} and shell_call["client_session_id"] == "conv-1"


def test_unregistered_agents_denied_by_configuration(tmp_path: Path, db_url: str) -> None:
    strict = start_atryum(tmp_path, "strict", db_url, unregistered="deny")
    try:
        api(strict, "POST", "/api/v1/agents", json={"name": "Known", "agent_ids": ["known"]})
        add_rule(strict, "auto_approve")
        hook = SharedHook(strict.url, tmp_path)
        bash = claude("PreToolUse", "Bash", {"command": "id"})
        assert hook.run("claude", "PreToolUse", bash, ATRYUM_AGENT_ID="known") == ALLOW
        stranger = hook.run("claude", "PreToolUse", bash, ATRYUM_AGENT_ID="stranger")
        assert "was denied" in deny_reason(stranger)
        refused = invocations(strict, agent="stranger")[0]
        assert "unregistered_agents" in refused["approval"]["reason"]
    finally:
        strict.stop()


def test_plugin_request_shapes(atryum: AtryumProcess) -> None:
    """What the amp (`tool.call`/`tool.result`), opencode (`tool.execute.before/after`,
    `dispose`) and pi plugins send, as their sources build it."""
    add_rule(atryum, "auto_approve")

    def submit(source: str, request_id: str, **extra: Any) -> dict[str, Any]:
        body = {
            "source": source,
            "tool": "bash",
            "description": "cmd: ls",
            "input": {"cmd": "ls"},
            "request_id": request_id,
            "thread_id": "T-1",
            "client_session_id": "T-1",
            "client_name": source,
            **extra,
        }
        inv: dict[str, Any] = api(atryum, "POST", "/api/v1/external/invocations", json=body)
        assert inv["status"] == "approved"
        api(
            atryum,
            "PATCH",
            f"/api/v1/external/invocations/{inv['invocation_id']}",
            json={"execution_status": "running"},
        )
        return inv

    def report(inv: dict[str, Any], **body: Any) -> dict[str, Any]:
        path = f"/api/v1/external/invocations/{inv['invocation_id']}"
        out: dict[str, Any] = api(atryum, "PATCH", path, json=body)
        return out

    amp_ok = submit("amp", "toolu_amp_1", agent_id="amp-agent")
    assert report(amp_ok, execution_status="completed", result="file1\n")["status"] == "succeeded"
    amp_err = submit("amp", "toolu_amp_2")
    failed = report(amp_err, execution_status="failed", error={"message": "boom", "exitCode": 2})
    assert (failed["status"], failed["error"]) == ("failed", {"message": "boom", "exitCode": 2})
    amp_cancel = submit("amp", "toolu_amp_3")
    assert report(amp_cancel, execution_status="cancelled")["status"] == "cancelled"
    oc = submit("opencode", "call_1")
    output = {"title": "ls", "output": "", "metadata": {"exit": 1, "error": "no such dir"}}
    assert report(oc, execution_status="failed", error=output)["error"] == output
    oc_open = submit("opencode", "call_2")
    gone = report(
        oc_open,
        execution_status="cancelled",
        message="opencode shut down before the tool result was reported to Atryum.",
    )
    assert gone["status"] == "cancelled"
    pi = submit("pi", "pi_call_1")
    result = {"content": [{"type": "text", "text": "ok"}], "details": {}}
    assert report(pi, execution_status="completed", result=result)["result"] == result


def test_the_hook_token_is_verified(tmp_path: Path, db_url: str, idp: Any) -> None:
    """With an `[[auth]]` block the hook's `ATRYUM_ACCESS_TOKEN` (or `ATRYUM_TOKEN_COMMAND`)
    is the agent's identity: a real token from the OpenID provider resolves the registered
    agent; a forged one is refused, and the hook then denies (it never fails open)."""
    port = free_port()
    block = idp.auth_block()
    path = write_toml(tmp_path / "auth.toml", db_url, port)
    path.write_text(
        path.read_text().replace("[policy]", "allow_unauthenticated = true\n[policy]", 1)
        + "[[auth]]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in block.items() if k != "enabled")
        + "enabled = true\n"
    )
    atryum = AtryumProcess(
        tmp_path, "auth", config_path=path, env={"ATRYUM_LISTEN_ADDR": f"127.0.0.1:{port}"}
    )
    atryum.port, atryum.url = port, f"http://127.0.0.1:{port}"
    atryum.start()
    try:
        bot = api(atryum, "POST", "/api/v1/agents", json={"name": "RS", "agent_ids": ["agent-rs"]})
        add_rule(atryum, "auto_approve", tool_patterns=["Bash"], agent_cuids=[bot["cuid"]])
        bash = claude("PreToolUse", "Bash", {"command": "id"})
        token = idp.mint("agent-rs")
        hook = SharedHook(atryum.url, tmp_path, ATRYUM_ACCESS_TOKEN=token)
        # the body's ATRYUM_AGENT_ID hint is ignored once the caller is verified
        assert hook.run("claude", "PreToolUse", bash, ATRYUM_AGENT_ID="someone-else") == ALLOW
        inv = invocations(atryum, tool="Bash")[0]
        assert (inv["agent_id"], inv["agent_record_id"]) == ("agent-rs", bot["cuid"])
        by_command = SharedHook(atryum.url, tmp_path, ATRYUM_TOKEN_COMMAND=f"echo {token}")
        assert by_command.run("claude", "PreToolUse", {**bash, "tool_use_id": "t2"}) == ALLOW
        forged = SharedHook(atryum.url, tmp_path, ATRYUM_ACCESS_TOKEN=token[:-4] + "AAAA")
        reason = deny_reason(forged.run("claude", "PreToolUse", {**bash, "tool_use_id": "t3"}))
        assert "failed to gate tool call" in reason and "401" in reason
        assert len(invocations(atryum, tool="Bash")) == 2
    finally:
        atryum.stop()

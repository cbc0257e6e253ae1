"""`atryum hook` and the standalone example hook, against a live Atryum: Claude Code's
allow/deny JSON, waiting for a human, outcome reporting, and failing closed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from atryum.cli import app as cli_app
from atryum.gateway import hook
from tests.gateway.live import REVIEW, Api
from tests.support import LiveServer, free_port, make_config, wait_until

EXAMPLE = Path(__file__).parents[2] / "examples" / "claude-code" / "atryum_hook.py"


@pytest.fixture
def server(engine: sa.Engine, live_atryum: Any) -> Iterator[LiveServer]:
    with live_atryum(make_config(), engine) as s:
        yield s


@pytest.fixture
def api(server: LiveServer) -> Iterator[Api]:
    with Api(server.url) as a:
        a.rule("auto_approve", tool_patterns=["Read"], description="reads")
        a.rule("auto_deny", tool_patterns=["Bash"], description="no shell")
        yield a


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATRYUM_HOOK_STATE_DIR", str(tmp_path / "hook-state"))


def event(tool: str, tool_use_id: str = "toolu_1", **extra: Any) -> str:
    return json.dumps(
        {
            "hook_event_name": "PreToolUse",
            "session_id": "sess-1",
            "tool_use_id": tool_use_id,
            "tool_name": tool,
            "tool_input": {"file_path": "/tmp/x", "description": "look"},
            **extra,
        }
    )


def decision(out: str) -> tuple[str, str]:
    spec = json.loads(out)["hookSpecificOutput"]
    assert spec["hookEventName"] == "PreToolUse"
    return spec["permissionDecision"], spec["permissionDecisionReason"]


def only_invocation(api: Api) -> dict[str, Any]:
    items = api.ok(api.http.get("/api/v1/review/invocations"))["items"]
    assert len(items) == 1
    result: dict[str, Any] = items[0]
    return result


def test_approved_call_runs_and_reports_its_outcome(server: LiveServer, api: Api) -> None:
    allow, reason = decision(hook.run(event("Read"), url=server.url))
    assert allow == "allow" and "reads" in reason
    inv = only_invocation(api)
    assert inv["status"] == "executing" and inv["client_session_id"] == "sess-1"
    assert inv["request_id"] == "toolu_1" and inv["description"] == "look"
    post = json.dumps(
        {"hook_event_name": "PostToolUse", "tool_use_id": "toolu_1", "tool_response": {"ok": 1}}
    )
    assert hook.run(post, url=server.url) == ""
    done = api.poll(inv["invocation_id"])
    assert done["status"] == "succeeded" and done["result"] == {"ok": 1}


def test_denied_call_is_denied_with_the_reason(server: LiveServer, api: Api) -> None:
    allow, reason = decision(hook.run(event("Bash"), url=server.url))
    assert allow == "deny" and "denied" in reason and "no shell" in reason
    post = json.dumps({"hook_event_name": "PostToolUse", "tool_use_id": "toolu_1"})
    assert hook.run(post, url=server.url) == ""  # nothing to report for a denied call
    assert only_invocation(api)["status"] == "denied"


def test_the_hook_waits_for_a_human(server: LiveServer, api: Api) -> None:
    out: dict[str, str] = {}
    t = threading.Thread(target=lambda: out.update(r=hook.run(event("Write"), url=server.url)))
    t.start()
    inv = wait_until(lambda: api.ok(api.http.get("/api/v1/review/invocations"))["items"])[0]
    api.decide(inv["invocation_id"], "approve", reason="ok by me")
    t.join(40)
    assert decision(out["r"]) == ("allow", "Atryum: approved: ok by me")


def test_no_decision_in_time_withdraws_and_denies(server: LiveServer, api: Api) -> None:
    allow, reason = decision(hook.run(event("Write"), url=server.url, timeout=1))
    assert allow == "deny" and "no decision" in reason
    assert only_invocation(api)["status"] == "cancelled"


class _UnreachableAfterSubmit(httpx2.BaseTransport):
    """Real HTTP for the submission; afterwards Atryum is unreachable (the network broke)."""

    def __init__(self) -> None:
        self.real = httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST":
            raise httpx2.ConnectError("connection refused", request=request)
        return self.real.handle_request(request)

    def close(self) -> None:
        self.real.close()


def test_a_call_given_up_on_is_withdrawn_once_atryum_is_reachable(
    server: LiveServer, api: Api, tmp_path: Path
) -> None:
    """Issue 14 row 9: the hook lost Atryum while a human had yet to decide; the call must not
    stay approvable. The next hook run that reaches Atryum withdraws it."""
    out = hook.run(event("Write"), url=server.url, transport=_UnreachableAfterSubmit())
    allow, reason = decision(out)
    assert allow == "deny" and "could not be reached" in reason
    abandoned = only_invocation(api)
    assert abandoned["status"] == "pending_approval"  # Atryum could not be told yet
    nowhere = f"http://127.0.0.1:{free_port()}"
    hook.run(event("Read", "toolu_2"), url=nowhere)  # still unreachable: kept for later
    assert list((tmp_path / "hook-state").glob("abandoned-*"))
    assert decision(hook.run(event("Read", "toolu_3"), url=server.url))[0] == "allow"
    inv_id = abandoned["invocation_id"]
    assert api.poll(inv_id)["status"] == "cancelled"
    r = api.http.post(f"{REVIEW}/{inv_id}/approve", json={"reason": "late"})
    assert r.status_code == 409  # no approval for a call that never ran
    assert not list((tmp_path / "hook-state").glob("abandoned-*"))


def test_fails_closed(server: LiveServer, api: Api) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    allow, reason = decision(hook.run(event("Read"), url=nowhere))
    assert allow == "deny" and "could not be reached" in reason
    allow, reason = decision(hook.run("not json", url=server.url))
    assert allow == "deny" and "could not read its input" in reason
    allow, reason = decision(hook.run(event(""), url=server.url))
    assert allow == "deny" and "refused" in reason


def test_fails_closed_on_the_unexpected() -> None:
    allow, reason = decision(hook.run(event("Read"), url="http://[::1"))  # malformed URL
    assert allow == "deny" and "blocked" in reason
    allow, reason = decision(hook.run("[]", url="http://127.0.0.1:1"))
    assert allow == "deny" and "not a JSON object" in reason

    def odd_server(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(201, json={"status": ["not", "a", "status"]})

    out = hook.run(event("Read"), url="http://atryum", transport=httpx2.MockTransport(odd_server))
    allow, reason = decision(out)
    assert allow == "deny" and "blocked" in reason


def test_cli_command_blocks_with_exit_code_2_when_it_crashes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crash(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(hook, "run", crash)
    result = CliRunner().invoke(cli_app, ["hook"], input=event("Read"))
    assert result.exit_code == 2 and "blocked" in result.stderr


def test_cli_command(server: LiveServer, api: Api) -> None:
    result = CliRunner().invoke(cli_app, ["hook", "--url", server.url], input=event("Read"))
    assert result.exit_code == 0, result.output
    assert decision(result.stdout)[0] == "allow"


def test_standalone_example_script(server: LiveServer, api: Api, tmp_path: Path) -> None:
    def run(url: str, stdin: str) -> str:
        env = {"ATRYUM_URL": url, "ATRYUM_HOOK_STATE_DIR": str(tmp_path / "state"), "PATH": ""}
        proc = subprocess.run(
            [sys.executable, str(EXAMPLE)],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        return proc.stdout

    assert decision(run(server.url, event("Read", "toolu_9")))[0] == "allow"
    post = {"hook_event_name": "PostToolUse", "tool_use_id": "toolu_9", "tool_response": "done"}
    assert run(server.url, json.dumps(post)) == ""
    inv = only_invocation(api)
    assert (inv["status"], inv["result"]) == ("succeeded", "done")
    assert decision(run(server.url, event("Bash", "toolu_10")))[0] == "deny"
    allow, reason = decision(run(f"http://127.0.0.1:{free_port()}", event("Read", "toolu_11")))
    assert allow == "deny" and "blocked" in reason
    allow, reason = decision(run(server.url, "[]"))
    assert allow == "deny" and "not a JSON object" in reason
    allow, reason = decision(run("http://[::1", event("Read", "toolu_12")))
    assert allow == "deny" and "blocked" in reason


def test_standalone_example_denies_on_a_bad_setting(tmp_path: Path) -> None:
    env = {"ATRYUM_HOOK_TIMEOUT": "soon", "ATRYUM_HOOK_STATE_DIR": str(tmp_path), "PATH": ""}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        input=event("Read"),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0 and decision(proc.stdout)[0] == "deny"


def run_example(url: str, stdin: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        input=stdin,
        capture_output=True,
        text=True,
        env={"ATRYUM_URL": url, "PATH": "", **env},
        timeout=60,
        check=True,
    )
    return proc.stdout


def both_hooks(url: str, stdin: str, env: dict[str, str], monkeypatch: Any) -> list[str]:
    """What `atryum hook` and the standalone script answer with the same environment."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return [hook.run(stdin, url=url), run_example(url, stdin, env)]


@pytest.mark.parametrize("mode", [0o777, 0o755, 0o770])
def test_a_shared_state_directory_is_refused(
    server: LiveServer, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    for out in both_hooks(
        server.url, event("Read"), {"ATRYUM_HOOK_STATE_DIR": str(shared)}, monkeypatch
    ):
        allow, reason = decision(out)
        assert allow == "deny" and "must be a directory owned by you" in reason
        assert f"chmod 700 {shared}" in reason
    assert api.ok(api.http.get("/api/v1/review/invocations"))["items"] == []  # nothing asked
    assert list(shared.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can create another user's directory")
def test_a_state_directory_of_another_user_is_refused(
    server: LiveServer, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)
    for out in both_hooks(
        server.url, event("Read"), {"ATRYUM_HOOK_STATE_DIR": str(foreign)}, monkeypatch
    ):
        assert decision(out)[0] == "deny"
    assert api.ok(api.http.get("/api/v1/review/invocations"))["items"] == []


def test_the_default_state_directory_is_the_users_own(
    server: LiveServer, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATRYUM_HOOK_STATE_DIR")
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert decision(hook.run(event("Read", "toolu_1"), url=server.url))[0] == "allow"
    assert decision(run_example(server.url, event("Read", "toolu_2"), env))[0] == "allow"
    state = tmp_path / "state" / "atryum" / "hook"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert sorted(p.name for p in state.iterdir()) == ["toolu_1.json", "toolu_2.json"]


def test_a_server_trickling_bytes_cannot_keep_the_hook_past_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each byte resets httpx's read timeout; the hook's total deadline still ends it."""
    import socket
    import time

    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def trickle() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 100000\r\n\r\n")
        while not stop.wait(0.2):
            conn.sendall(b" ")
        conn.close()

    worker = threading.Thread(target=trickle, daemon=True)
    worker.start()
    monkeypatch.setattr(hook, "DEADLINE_GRACE", 0.5)
    started = time.monotonic()
    try:
        allow, reason = decision(hook.run(event("Read"), url=f"http://127.0.0.1:{port}", timeout=1))
    finally:
        stop.set()
        listener.close()
    assert allow == "deny" and "total deadline" in reason
    assert time.monotonic() - started < 10


GUARD = EXAMPLE.parent / "atryum-guard.sh"


@pytest.mark.parametrize(
    ("command", "env"),
    [
        (["no-such-atryum-binary", "hook"], {}),  # 127: not on PATH
        ([sys.executable, "-c", "import sys; sys.exit(1)"], {}),  # an import crash
        ([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], {}),
        ([sys.executable, "-c", "import time; time.sleep(30)"], {"ATRYUM_GUARD_SECONDS": "1"}),
    ],
)
def test_the_guard_turns_every_failure_into_a_block(
    command: list[str], env: dict[str, str]
) -> None:
    proc = subprocess.run(
        ["sh", str(GUARD), *command],
        input=event("Read"),
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
        timeout=60,
    )
    assert proc.returncode == 2 and "blocked" in proc.stderr, (proc.returncode, proc.stderr)


def test_the_guard_passes_the_hooks_answer_through(server: LiveServer, api: Api) -> None:
    proc = subprocess.run(
        ["sh", str(GUARD), sys.executable, "-m", "atryum.cli", "hook", "--url", server.url],
        input=event("Read"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and decision(proc.stdout)[0] == "allow", proc.stderr


def test_cursor_is_answered_in_its_own_form_and_its_outcome_recorded(
    server: LiveServer, api: Api
) -> None:
    """Cursor's preToolUse has no tool-use id and reads `{"permission": …}`: a deny must be a
    deny in that form (Claude's form would be ignored, and the call would run)."""
    call = {"conversation_id": "c1", "tool_name": "Read", "tool_input": {"path": "/etc/hosts"}}
    pre = json.dumps({"hook_event_name": "preToolUse", **call})
    allowed = json.loads(hook.run(pre, url=server.url, host="cursor"))
    assert allowed["permission"] == "allow"
    post = json.dumps({"hook_event_name": "postToolUse", **call, "tool_response": "127.0.0.1"})
    assert hook.run(post, url=server.url, host="cursor") == ""
    shell = {"hook_event_name": "preToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}}
    denied = json.loads(hook.run(json.dumps(shell), url=server.url, host="cursor"))
    assert denied["permission"] == "deny" and "no shell" in denied["message"]
    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable = json.loads(hook.run(json.dumps(shell), url=nowhere, host="cursor"))
    assert unreachable["permission"] == "deny"
    calls = {i["tool"]: i for i in api.ok(api.http.get("/api/v1/review/invocations"))["items"]}
    assert calls["Read"]["status"] == "succeeded" and calls["Read"]["source"] == "cursor"
    assert calls["Bash"]["status"] == "denied"
    assert hook.run('{"hook_event_name": "sessionStart"}', url=nowhere, host="cursor") == "{}"


def test_codex_is_answered_as_claude_code_is(server: LiveServer, api: Api) -> None:
    out = hook.run(event("Bash"), url=server.url, host="codex")
    assert decision(out)[0] == "deny"
    (call,) = api.ok(api.http.get("/api/v1/review/invocations"))["items"]
    assert call["source"] == "codex"

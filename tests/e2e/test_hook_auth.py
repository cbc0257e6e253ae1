"""The Go original's shared hook (atryum-hook.mjs, run by Node as a harness runs it) against a
real `atryum run` whose `[[auth]]` trusts the real oidc-provider: gated with
ATRYUM_ACCESS_TOKEN and with ATRYUM_TOKEN_COMMAND (minting, refreshing an expired token,
retrying once on 401), and denied without a token — the hook fails closed.

One Atryum per dialect serves the module: each test's hook calls carry a session id of their
own (the test's temporary directory), and it looks only at that session's invocations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from atryum.config import load_config
from atryum.db.engine import make_engine
from atryum.identity import api_tokens
from atryum.identity.principal import CLI
from tests.e2e.go_original import SHARED_HOOK
from tests.e2e.processes import AtryumProcess
from tests.idp.fixtures import AGENT_SCOPE, Idp
from tests.support import wait_until

HOOK_SCRIPT = SHARED_HOOK
MINT = Path(__file__).resolve().parents[1] / "idp" / "mint_token.py"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def atryum(
    tmp_path_factory: pytest.TempPathFactory, module_db_url: str, idp: Idp
) -> Iterator[AtryumProcess]:
    proc = AtryumProcess(
        tmp_path_factory.mktemp("atryum"),
        "atryum",
        database_url=module_db_url,
        sim_url="",
        auth=[idp.auth_block()],
    )
    proc.start()
    api = httpx2.Client(base_url=proc.url, timeout=10, headers=operator_headers(proc))
    for agent in ({"name": "Bot", "agent_ids": ["agent-rs", "agent-short"]},):
        assert api.post("/api/v1/agents", json=agent).status_code == 201
    rules = [
        {"action": "auto_approve", "tool_patterns": ["Read"]},
        {"action": "auto_deny", "tool_patterns": ["Delete"]},
    ]
    for rule in rules:
        assert api.post("/api/v1/rules", json=rule).status_code == 201
    api.close()
    try:
        yield proc
    finally:
        proc.stop()


#: The hooks under test: the Go original's shared hook, run by Node, and our `atryum hook`.
HOOKS = {
    "go-shared-hook": ["node", str(HOOK_SCRIPT)],
    "atryum-hook": [str(Path(sys.executable).with_name("atryum")), "hook"],
}
#: What each says when its token command fails.
COMMAND_FAILED = {"go-shared-hook": "failed to gate", "atryum-hook": "token command failed"}


@pytest.fixture(params=list(HOOKS))
def hook(request: pytest.FixtureRequest) -> str:
    if request.param == "go-shared-hook" and not HOOK_SCRIPT.is_file():
        pytest.fail(f"the Go original's hook is not at {HOOK_SCRIPT}; set ATRYUM_GO_ORIGINAL")
    name: str = request.param
    return name


def run_hook(
    atryum: AtryumProcess, tmp: Path, hook: str, event: dict[str, Any], **env: str
) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ATRYUM_")}
    hook_env = {
        **base,
        "ATRYUM_URL": atryum.url,
        "ATRYUM_HOOK_HOST": "claude",
        "ATRYUM_POLL_MS": "50",
        "ATRYUM_STATE_DIR": str(tmp / "hook-state"),
        **env,
    }
    # this test's session, and tool-use ids no other test sends
    event = {**event, "session_id": tmp.name, "tool_use_id": f"{tmp.name}-{event['tool_use_id']}"}
    event_file = tmp / f"event-{event['tool_use_id']}-{time.monotonic_ns()}.json"
    event_file.write_text(json.dumps(event))
    with event_file.open() as stdin:
        return subprocess.Popen(
            HOOKS[hook],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=hook_env,
            text=True,
        )


def decision(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, _err = proc.communicate(timeout=60)
    output = json.loads(out.strip().splitlines()[-1])["hookSpecificOutput"]
    return output["permissionDecision"], output.get("permissionDecisionReason", "")


def pre(tool: str, use_id: str) -> dict[str, Any]:
    return {
        "hook_event_name": "PreToolUse",
        "session_id": "set-by-run_hook",
        "tool_name": tool,
        "tool_input": {"file_path": "/etc/hosts", "command": "ls"},
        "tool_use_id": use_id,
    }


def post_event(use_id: str) -> dict[str, Any]:
    return {
        "hook_event_name": "PostToolUse",
        "session_id": "set-by-run_hook",
        "tool_name": "Read",
        "tool_use_id": use_id,
        "tool_response": {"content": "127.0.0.1 localhost"},
    }


def operator_headers(atryum: AtryumProcess) -> dict[str, str]:
    """An operator API token in that Atryum's database (operator routes need one once [[auth]]
    is on)."""
    engine = make_engine(load_config(atryum.config_path).database_url)
    try:
        _, value = api_tokens.create_token(
            engine, name="e2e", role="admin", expires_in=timedelta(hours=1), actor=CLI
        )
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {value}"}


def invocations(atryum: AtryumProcess, tmp: Path) -> list[dict[str, Any]]:
    """The invocations of this test's session (`run_hook`)."""
    r = httpx2.get(
        f"{atryum.url}/api/v1/review/invocations",
        params={"limit": 500},
        headers=operator_headers(atryum),
        timeout=10,
    )
    items: list[dict[str, Any]] = r.json()["items"]
    return [i for i in items if i["client_session_id"] == tmp.name]


def test_access_token_gates_the_hook_and_no_token_is_denied(
    atryum: AtryumProcess, idp: Idp, tmp_path: Path, hook: str
) -> None:
    # no token: the submission is refused (401) and the hook denies the call
    verdict, reason = decision(run_hook(atryum, tmp_path, hook, pre("Read", "toolu_0")))
    assert verdict == "deny" and "401" in reason
    assert invocations(atryum, tmp_path) == []
    # a body agent_id cannot stand in for a token
    hinted = run_hook(atryum, tmp_path, hook, pre("Read", "toolu_0"), ATRYUM_AGENT_ID="agent-rs")
    assert decision(hinted)[0] == "deny"

    token = idp.mint("agent-rs")
    env = {"ATRYUM_ACCESS_TOKEN": token}
    assert decision(run_hook(atryum, tmp_path, hook, pre("Read", "toolu_1"), **env))[0] == "allow"
    assert decision(run_hook(atryum, tmp_path, hook, pre("Delete", "toolu_2"), **env))[0] == "deny"
    run_hook(atryum, tmp_path, hook, post_event("toolu_1"), **env).communicate(timeout=60)
    by_tool = {i["tool"]: i for i in invocations(atryum, tmp_path)}
    assert by_tool["Read"]["status"] == "succeeded"
    assert by_tool["Read"]["agent_id"] == "agent-rs" and by_tool["Read"]["agent_name"] == "Bot"
    assert by_tool["Delete"]["status"] == "denied"

    # a call that waits for a person: the hook polls with its token until the operator decides
    waiting = run_hook(atryum, tmp_path, hook, pre("Bash", "toolu_3"), **env)
    pending = wait_until(
        lambda: [i for i in invocations(atryum, tmp_path) if i["status"] == "pending_approval"]
    )
    review = f"{atryum.url}/api/v1/review/invocations/{pending[0]['invocation_id']}/approve"
    assert (
        httpx2.post(
            review, json={"reason": "ok"}, headers=operator_headers(atryum), timeout=10
        ).status_code
        == 200
    )
    assert decision(waiting)[0] == "allow"
    assert token not in atryum.log_path.read_text()


def test_token_command_mints_refreshes_on_expiry_and_retries_once_on_401(
    atryum: AtryumProcess, idp: Idp, tmp_path: Path, hook: str
) -> None:
    mint_log = tmp_path / "mints.log"
    client = idp.clients["agent-short"]  # its tokens live 3 s
    env = {
        "ATRYUM_TOKEN_COMMAND": f"{sys.executable} {MINT}",
        "ATRYUM_TOKEN_REFRESH_SKEW_MS": "0",
        "MINT_TOKEN_URL": idp.token_url,
        "MINT_CLIENT_ID": client.client_id,
        "MINT_CLIENT_SECRET": client.client_secret,
        "MINT_RESOURCE": idp.resource,
        "MINT_SCOPE": AGENT_SCOPE,
        "MINT_LOG": str(mint_log),
        # the first token is for another audience: Atryum answers 401, the hook mints again
        "MINT_FIRST_RESOURCE": "https://elsewhere.example/",
    }

    def mints() -> list[str]:
        return mint_log.read_text().splitlines() if mint_log.exists() else []

    assert decision(run_hook(atryum, tmp_path, hook, pre("Read", "toolu_1"), **env))[0] == "allow"
    assert mints() == ["https://elsewhere.example/", idp.resource]  # retried once after 401
    minted_at = time.time()
    # the next hook process reuses the cached token while it is valid (on a slow machine it
    # may have expired by then, and is minted again)
    assert decision(run_hook(atryum, tmp_path, hook, pre("Read", "toolu_2"), **env))[0] == "allow"
    if time.time() < minted_at + 2:
        assert len(mints()) == 2
    # once it has expired the hook mints a fresh one before calling Atryum
    minted = len(mints())
    if minted > 2:
        minted_at = time.time()  # the second call's token, minted before now
    wait_until(lambda: time.time() > minted_at + 3.5, timeout=10)
    assert decision(run_hook(atryum, tmp_path, hook, pre("Read", "toolu_3"), **env))[0] == "allow"
    assert len(mints()) == minted + 1
    calls = [i for i in invocations(atryum, tmp_path) if i["tool"] == "Read"]
    assert len(calls) == 3 and {i["agent_id"] for i in calls} == {"agent-short"}


def test_a_token_command_that_fails_denies_the_call(
    atryum: AtryumProcess, tmp_path: Path, hook: str
) -> None:
    env = {"ATRYUM_TOKEN_COMMAND": f"{sys.executable} -c 'raise SystemExit(3)'"}
    verdict, reason = decision(run_hook(atryum, tmp_path, hook, pre("Read", "toolu_1"), **env))
    assert verdict == "deny" and COMMAND_FAILED[hook] in reason
    assert invocations(atryum, tmp_path) == []

"""`atryum demo`: the simulator with demo data, and Atryum configured against it, in front of
a small upstream MCP server of our own (`demo-tools`: a calculator and a notebook) with example
rules: reads are approved, deletes denied, writes wait for a human in the UI."""

from __future__ import annotations

import json
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import httpx2
import uvicorn

from atryum.app import build_context, create_app
from atryum.config import parse_config
from atryum.db import migrate
from atryum.gateway import rules
from atryum.sync.settings import update_settings
from atryum.validmind import sim
from atryum.validmind.sim.app import SimServer
from atryum.validmind.sim.state import SimState

DEMO_ORG = "org-acme"
DEMO_RECORD_TYPE = "ai-agent"
DEMO_MCP_SERVER = "demo-tools"
# (action, tool patterns, description), seeded while the demo database has no rules.
DEMO_RULES = [
    ("auto_approve", ["add", "read_*"], "reads are fine"),
    ("auto_deny", ["delete_*"], "no deletes"),
    ("human_approval", ["write_*"], "a human approves writes"),
]


def demo_seed() -> dict[str, Any]:
    seed: dict[str, Any] = json.loads(
        (Path(sim.__file__).parent / "demo_seed.json").read_text(encoding="utf-8")
    )
    return seed


def run_demo(*, port: int, sim_port: int, database: str) -> None:
    """Serve until Ctrl-C or SIGTERM; either stops Atryum and then the simulator, exit code 0."""
    if threading.current_thread() is not threading.main_thread():
        _run_demo(port=port, sim_port=sim_port, database=database)
        return
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: end normally instead.
    previous = signal.signal(signal.SIGTERM, _exit_normally)
    try:
        _run_demo(port=port, sim_port=sim_port, database=database)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_normally(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _run_demo(*, port: int, sim_port: int, database: str) -> None:
    key, secret = "demo-machine-caller", secrets.token_urlsafe(24)
    webhook_secret = secrets.token_urlsafe(32)
    state = SimState.from_seed(demo_seed())
    with SimServer(state, port=sim_port) as server:
        config = parse_config(
            {
                "server": {"listen_addr": f"127.0.0.1:{port}", "database_url": database},
                "backend": {
                    "base_url": server.url,
                    "machine_key": "sim-machine-key",
                    "machine_secret": "sim-machine-secret",
                },
                "api_key": {"key": key, "secret": secret},
                "sync": {"interval_seconds": 60},
                "validmind": {"webhook_secret": webhook_secret},
                "upstreams": [
                    {
                        "name": DEMO_MCP_SERVER,
                        "mode": "stdio",
                        "command": sys.executable,
                        "args": ["-m", "atryum.mcp.demo_server"],
                    }
                ],
            },
            "(demo)",
        )
        ctx = build_context(config)
        migrate.upgrade(ctx.engine)
        update_settings(
            ctx.engine,
            changes={
                "org_cuid": DEMO_ORG,
                "org_name": "Acme Bank",
                "agent_record_type_slug": DEMO_RECORD_TYPE,
                "charter_field_key": "charter",
            },
            defaults=config.sync,
        )
        seed_rules(ctx.engine)
        atryum_url = f"http://127.0.0.1:{port}"
        # Every record change in the simulator sends Atryum a signed change event, as
        # ValidMind's backend does; Atryum debounces them into a sync.
        httpx2.put(
            f"{server.url}/admin/notify",
            json={"atryum_url": atryum_url, "mode": "event", "webhook_secret": webhook_secret},
        ).raise_for_status()
        print(_banner(atryum_url, server.url, state_dump(server.url)), flush=True)
        uvicorn.run(
            create_app(ctx, settle_heap=True), host="127.0.0.1", port=port, log_level="warning"
        )


def seed_rules(engine: Any) -> None:
    if rules.list_rules(engine):
        return
    for action, tools, description in DEMO_RULES:
        spec = rules.RuleSpec(
            action=action,
            server_patterns=[DEMO_MCP_SERVER],
            tool_patterns=tools,
            description=description,
        )
        rules.create_rule(engine, spec=spec)


def state_dump(sim_url: str) -> dict[str, Any]:
    dump: dict[str, Any] = httpx2.get(f"{sim_url}/admin/state").json()
    return dump


def _banner(atryum_url: str, sim_url: str, dump: dict[str, Any]) -> str:
    records = [
        r
        for r in dump.get("records", [])
        if r.get("record_type_slug", r.get("slug")) == DEMO_RECORD_TYPE
    ]
    first = records[0]["cuid"] if records else "<cuid>"
    mcp_url = f"{atryum_url}/mcp/{DEMO_MCP_SERVER}"
    lines = [
        "",
        "Atryum demo is running (Ctrl-C stops it).",
        f"  Atryum API      {atryum_url}/api/v1/agents",
        f"  API docs        {atryum_url}/docs",
        f"  Operator UI     {atryum_url}/ui/",
        f"  Sync runs       {atryum_url}/api/v1/agents/sync/runs",
        f"  ValidMind sim   {sim_url}/admin/state",
        "",
        "Records in the simulated inventory (org-acme / ai-agent):",
        *(f"  {r['cuid']:<28} {r.get('name', '')}" for r in records),
        "",
        "Try it:",
        f"  curl -s {atryum_url}/api/v1/agents | python -m json.tool",
        f"  curl -s -X POST {sim_url}/admin/records/{first}/archive",
        f"  curl -s {atryum_url}/api/v1/agents        # the archived agent has left the list",
        f"  curl -s -X POST {sim_url}/admin/records/{first}/unarchive   # back, same cuid",
        f"  curl -s '{atryum_url}/api/v1/agents/sync?dry_run=true' -X POST",
        "",
        f"MCP proxy: the demo's own MCP server '{DEMO_MCP_SERVER}' (add, read_note, write_note,",
        "delete_note) is behind Atryum. Reads are approved, deletes denied, writes wait for you",
        f"in {atryum_url}/ui/ . Point any MCP client (streamable HTTP) at:",
        f"  {mcp_url}",
        "  Claude Code:  claude mcp add --transport http atryum-demo " + mcp_url,
        "  or plain:     curl -s " + mcp_url + " -d '"
        '{"jsonrpc":"2.0","id":1,"method":"tools/call",'
        '"params":{"name":"write_note","arguments":{"title":"hi","text":"there"}}}' + "'",
        "",
    ]
    return "\n".join(lines)

"""The MCP servers pages in Chromium: the list with status, test, the add form with write-only
secrets, disable, and the tools with the effective action for a chosen agent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from atryum.agents import service as agents
from atryum.web.gateway_ui import PICKER_SIZE
from tests.gateway.live import Api
from tests.mcp.conftest import SECRET, RunLog, stdio_upstream
from tests.support import LiveServer, make_config
from tests.web.driver import UI


@pytest.fixture
def server(
    sqlite_engine: sa.Engine, live_atryum: Callable[..., LiveServer], tmp_path: Path
) -> Iterator[LiveServer]:
    config = make_config(upstreams=[stdio_upstream("calc", RunLog(tmp_path / "runs.log"))])
    with live_atryum(config, sqlite_engine) as live, Api(live.url) as api:
        api.ok(api.http.post("/api/v1/agents", json={"name": "Bot", "agent_ids": ["rt-bot"]}), 201)
        api.rule("auto_approve", tool_patterns=["add"])
        api.rule("auto_deny", tool_patterns=["delete_*"], agent_cuids=[], description="no")
        yield live


def test_servers_list_test_tools_add_and_disable(
    server: LiveServer, open_ui: Callable[[LiveServer], UI]
) -> None:
    ui = open_ui(server)
    page = ui.page
    ui.goto("/ui/")
    ui.nav("MCP servers")
    row = page.locator("#server-calc")
    expect(row.locator("[data-status]")).to_have_text("unknown")
    row.get_by_role("button", name="Test server calc").click()
    expect(row.locator("[data-test-result]")).to_have_text("Connected: 7 tools.")
    expect(row.locator("[data-status]")).to_have_text("connected")
    ui.shoot("servers")

    ui.follow(row.get_by_role("link", name="Edit server calc"))
    page.get_by_label("Effective action for").select_option(label="Bot")
    page.get_by_role("button", name="Show tools").click()
    expect(page.locator('tr[data-tool="add"] td[data-label="Action"]')).to_have_text("Approve")
    expect(page.locator('tr[data-tool="delete_note"] td[data-label="Action"]')).to_have_text("Deny")
    expect(page.locator('tr[data-tool="write_note"] td[data-label="Action"]')).to_have_text(
        "Ask a human"
    )
    ui.shoot("server-calc")

    ui.goto("/ui/servers/new")
    page.get_by_label("Name", exact=True).fill("Remote tools")
    page.get_by_label("Transport").select_option("http")
    page.get_by_label("URL", exact=True).fill("http://127.0.0.1:9/mcp")
    page.get_by_label("Bearer token").fill(SECRET)
    page.get_by_label("Headers (Name: value, one per line)").fill(f"X-Key: {SECRET}")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.alert-ok")).to_have_text("Server saved.")
    expect(page.locator("#server-remote-tools")).to_contain_text("/mcp/remote-tools")
    ui.goto("/ui/servers/Remote%20tools")
    assert SECRET not in page.content()
    expect(page.get_by_label("Headers (Name: value, one per line)")).to_have_value(
        "X-Key: ********\n"
    )
    page.get_by_role("button", name="Save").click()  # saving the masks keeps the secrets
    expect(page.locator("p.alert-ok")).to_have_text("Server saved.")
    with Api(server.url) as api:
        stored = api.ok(api.http.get("/api/v1/servers/Remote tools"))
    assert stored["has_auth_token"] is True and stored["headers"] == {"X-Key": "********"}

    page.locator("#server-calc").get_by_role("button", name="Disable server calc").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#server-calc td[data-label='Enabled']")).to_have_text("Disabled")


def test_the_tools_agent_list_is_bounded_and_searches_the_registry(
    server: LiveServer, sqlite_engine: sa.Engine, open_ui: Callable[[LiveServer], UI]
) -> None:
    """With more agents than the list shows, the page names how many and typing finds any one;
    the tools then carry that agent's actions."""
    for i in range(PICKER_SIZE + 5):
        agents.create_manual_agent(sqlite_engine, name=f"Agent {i:03}", agent_ids=[f"rt-{i}"])
    zed = agents.create_manual_agent(sqlite_engine, name="Zed", agent_ids=["rt-zed"])
    with Api(server.url) as api:
        api.rule("auto_approve", tool_patterns=["write_note"], agent_cuids=[zed.id])
    ui = open_ui(server)
    page = ui.page
    ui.goto("/ui/servers/calc")
    total = PICKER_SIZE + 7  # and Zed and Bot
    expect(page.locator("#tools-agent-status")).to_have_text(
        f"Showing the first {PICKER_SIZE} of {total} agents: type to find others."
    )
    assert page.locator("#tools-agent option").count() == PICKER_SIZE + 1  # and anonymous
    assert page.locator("#tools-agent option", has_text="Zed").count() == 0
    page.get_by_label("Find agents").fill("zed")
    expect(page.locator("#tools-agent-status")).to_have_text("1 matching agent.")
    page.get_by_label("Effective action for").select_option(label="Zed")
    page.get_by_role("button", name="Show tools").click()
    expect(page.locator('tr[data-tool="write_note"] td[data-label="Action"]')).to_have_text(
        "Approve"
    )  # Zed's own rule (for anyone else a human decides)
    page.get_by_label("Find agents").fill("Agent 00")  # the chosen agent stays in the list
    expect(page.locator("#tools-agent-status")).to_have_text("10 matching agents.")
    expect(page.get_by_label("Effective action for")).to_have_value("rt-zed")

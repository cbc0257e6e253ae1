"""The MCP servers pages in Chromium: the list with status, test, the add form with write-only
secrets, disable, and the tools with the effective action for a chosen agent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

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

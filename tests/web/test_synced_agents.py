"""Synced agents in the browser: a charter's line breaks, and purging a retired agent."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from atryum.agents import service as agents
from atryum.config import SyncConfig
from atryum.sync.settings import update_settings
from tests.support import ORG, SLUG, LiveServer
from tests.web.driver import UI

pytestmark = pytest.mark.browser

CHARTER = "May read claims.\nMay not pay out.\n\nNeeds a human: refunds over 500."


def _sync(atryum: LiveServer) -> dict[str, Any]:
    r = httpx2.post(f"{atryum.url}/api/v1/agents/sync?wait=true", timeout=30)
    assert r.status_code == 200, r.text
    run: dict[str, Any] = r.json()
    assert run["status"] == "succeeded", run
    return run


def _configure(engine: sa.Engine) -> None:
    update_settings(
        engine, changes={"org_cuid": ORG, "agent_record_type_slug": SLUG}, defaults=SyncConfig()
    )


def test_a_synced_multi_line_charter_keeps_its_line_breaks(
    ui: UI, atryum: LiveServer, sim_state: Any, sqlite_engine: sa.Engine
) -> None:
    page = ui.page
    sim_state.create_record(ORG, SLUG, name="Claims Triage", custom_fields={"charter": CHARTER})
    _configure(sqlite_engine)
    _sync(atryum)
    (agent,) = agents.list_agents(sqlite_engine)

    ui.goto(f"/ui/agents/{agent.id}")
    charter = page.get_by_label("Charter")
    expect(charter).to_have_text(CHARTER)
    assert charter.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"
    # innerText is the text as laid out: collapsed whitespace would join the lines with spaces
    assert charter.evaluate("e => e.innerText") == CHARTER
    # the lines are laid out one under the other: as many line boxes as lines (blank included)
    lines = charter.evaluate(
        """e => {
            const range = document.createRange();
            range.selectNodeContents(e);
            return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
        }"""
    )
    assert lines >= len(CHARTER.splitlines()) - 1, lines
    ui.shoot("agent-synced-multiline-charter")


def test_purging_a_retired_agent_asks_first_and_removes_it_for_good(
    ui: UI, atryum: LiveServer, sim_state: Any, sqlite_engine: sa.Engine
) -> None:
    page = ui.page
    gone = sim_state.create_record(ORG, SLUG, name="Code Review", custom_fields={"charter": "c"})
    sim_state.create_record(ORG, SLUG, name="Support Copilot", custom_fields={"charter": "c"})
    _configure(sqlite_engine)
    _sync(atryum)
    sim_state.archive_record(gone["cuid"])
    assert _sync(atryum)["retired"] == 1
    retired_id = next(
        a.id
        for a in agents.list_agents(sqlite_engine, include_removed=True)
        if a.name == "Code Review"
    )

    ui.goto("/ui/?state=retired")
    row = page.locator('tr[data-agent="Code Review"]')
    expect(row).to_contain_text("retired: archived or deleted in ValidMind")

    # Cancel keeps it
    row.get_by_role("button", name="Purge").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(
        "Purge agent “Code Review”? This removes it for good and cannot be undone."
    )
    ui.shoot("agents-purge-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(row).to_be_visible()

    # Confirm purges it
    row.get_by_role("button", name="Purge").click()
    dialog.get_by_role("button", name="Purge “Code Review”").click()
    expect(page.get_by_text("Deleted agent “Code Review”.")).to_be_visible()
    expect(page).to_have_url(f"{ui.base_url}/ui/?state=retired&deleted=Code+Review")
    expect(page.locator('tr[data-agent="Code Review"]')).to_have_count(0)
    ui.shoot("agents-purged")

    listed = httpx2.get(f"{atryum.url}/api/v1/agents?include_removed=true", timeout=10)
    assert listed.status_code == 200
    assert [a["name"] for a in listed.json()["items"]] == ["Support Copilot"]
    assert httpx2.get(f"{atryum.url}/api/v1/agents/{retired_id}", timeout=10).status_code == 404

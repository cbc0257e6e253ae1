"""Pages without ValidMind: the setup guide, manual agents, inline server errors, the keyboard."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from atryum.agents import service as agents
from atryum.errors import Conflict
from tests.web.driver import UI

pytestmark = pytest.mark.browser


def test_without_validmind_the_settings_page_explains_the_setup(page_ui: UI) -> None:
    page = page_ui.page
    page_ui.goto("/ui/settings")
    expect(page.locator("#vm-status")).to_have_text("ValidMind: not configured")
    setup = page.locator(".setup")
    expect(setup).to_contain_text("[backend]")
    expect(setup).to_contain_text("atryum setup validmind --org-cuid")
    expect(setup).to_contain_text("VM_BASE_URL")
    page_ui.shoot("settings-not-configured")

    page_ui.nav("Sync")
    expect(page.get_by_text("ValidMind is not configured")).to_be_visible()
    page_ui.nav("Agents")
    expect(page.get_by_role("link", name="New agent")).to_be_visible()
    assert page.get_by_role("button", name="Sync from ValidMind").count() == 0


def test_server_errors_are_shown_inline_and_delete_names_the_agent(
    page_ui: UI, sqlite_engine: sa.Engine
) -> None:
    page = page_ui.page
    alpha = agents.create_manual_agent(sqlite_engine, name="Alpha", agent_ids=["jwt-a"])
    beta = agents.create_manual_agent(sqlite_engine, name="Beta", charter="Line one\nLine two")
    with pytest.raises(Conflict) as conflict:
        agents.update_agent(sqlite_engine, agent_id=beta.id, changes={"agent_ids": ["jwt-a"]})

    page_ui.allow_console_error(r"status of 409")
    page_ui.goto(f"/ui/agents/{beta.id}")
    expect(page.get_by_label("Charter")).to_have_value("Line one\nLine two")
    page.get_by_label("Runtime ids").fill("jwt-a")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#form-error")).to_have_text(conflict.value.message)
    assert agents.get_agent(sqlite_engine, agent_id=beta.id).agent_ids == []

    page.get_by_role("button", name="Delete agent").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete agent “Beta”?")
    page_ui.shoot("agent-delete-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    page.get_by_role("button", name="Delete agent").click()
    dialog.get_by_role("button", name="Delete “Beta”").click()
    expect(page.get_by_text("Deleted agent “Beta”.")).to_be_visible()
    assert [a.id for a in agents.list_agents(sqlite_engine)] == [alpha.id]


def test_forms_work_from_the_keyboard(page_ui: UI, sqlite_engine: sa.Engine) -> None:
    page = page_ui.page
    agents.create_manual_agent(sqlite_engine, name="Alpha", tags=["finance"])
    agents.create_manual_agent(sqlite_engine, name="Bravo")

    page_ui.goto("/ui/")
    page.get_by_label("Search").focus()
    page.keyboard.type("finance")
    page.keyboard.press("Enter")
    expect(page.locator("tr[data-agent]")).to_have_count(1)
    expect(page.locator("tr[data-agent]")).to_have_attribute("data-agent", "Alpha")

    page_ui.goto("/ui/agents/new")
    page.get_by_label("Name").focus()
    order = page_ui.tab_order(6)
    fields = ["name", "description", "charter", "agent_ids", "tags", "enabled", "add-binding"]
    assert order == fields
    page.keyboard.press("Enter")  # on "Add binding": a new row, focused on its id field
    expect(page.get_by_label("Claude agent id")).to_be_focused()
    page.keyboard.type("agent_kb")
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("Keyboard agent")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Agent created.")).to_be_visible()
    created = next(a for a in agents.list_agents(sqlite_engine) if a.name == "Keyboard agent")
    assert [b.external_agent_id for b in created.bindings] == ["agent_kb"]

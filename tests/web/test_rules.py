"""Rules: create (all agents, then agent-scoped with the picker, inserted before), move, disable,
delete with a confirmation naming the rule, the default policy, and stale-agent warnings when an
agent a rule names is retired by the sync."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from atryum.agents import service as agents
from atryum.config import SyncConfig
from atryum.sync.settings import update_settings
from tests.support import ORG, SLUG, LiveServer
from tests.web.driver import UI
from tests.web.hook import Hook

pytestmark = pytest.mark.browser


def _order(page: Page) -> list[str]:
    ids: list[str] = page.locator("tr[data-rule-id]").evaluate_all(
        "(rows) => rows.map((r) => r.dataset.ruleId)"
    )
    return ids


def test_rules_are_created_ordered_disabled_and_flagged_when_their_agent_retires(
    ui: UI, atryum: LiveServer, sim_state: Any, sqlite_engine: sa.Engine
) -> None:
    page = ui.page
    cuids = {
        name: sim_state.create_record(ORG, SLUG, name=name, custom_fields={"charter": "May."})[
            "cuid"
        ]
        for name in ("Claims bot", "Ledger bot")
    }
    update_settings(
        sqlite_engine,
        changes={"org_cuid": ORG, "agent_record_type_slug": SLUG},
        defaults=SyncConfig(),
    )
    assert atryum.ctx.coordinator.run_blocking(trigger="manual")["created"] == 2
    ops = agents.create_manual_agent(sqlite_engine, name="Ops bot", agent_ids=["ops"])
    agents.update_agent(sqlite_engine, agent_id=ops.id, changes={"enabled": False})

    ui.goto("/ui/")
    ui.nav("Rules")
    expect(page.get_by_text("No rules yet")).to_be_visible()

    # an all-agents rule
    ui.follow(page.get_by_role("link", name="New rule"))
    page.get_by_label("Action").select_option("auto_approve")
    page.get_by_label("Tools").fill("Read, Grep")
    page.get_by_label("Description").fill("Reads are fine")
    page.get_by_role("button", name="Create rule").click()
    expect(page.get_by_text("Rule created.")).to_be_visible()
    reads = page.locator("tr[data-rule-id]")
    expect(reads).to_have_count(1)
    expect(reads.locator("td[data-label='Agents']")).to_have_text("all agents")
    expect(reads.locator("td[data-label='Tools']")).to_have_text("Read, Grep")

    # an agent-scoped rule, picked by name, inserted before the first
    ui.follow(page.get_by_role("link", name="New rule"))
    picker = page.locator("[data-agent-choice]")
    expect(picker).to_have_text(["Claims bot active", "Ledger bot active", "Ops bot disabled"])
    page.get_by_label("Action").select_option("auto_deny")
    page.get_by_label("Tools").fill("Bash")
    page.get_by_label(re.compile(r"^Claims bot")).check()
    page.get_by_label("Description").fill("Claims bot may not run shell commands")
    page.get_by_label("Position").select_option(label="Before #1 “Reads are fine”")
    ui.shoot("rule-new")
    page.get_by_role("button", name="Create rule").click()
    expect(page.get_by_text("Rule created.")).to_be_visible()

    with Hook(atryum.url) as hook:
        api = hook.rules()
        deny, allow = api
        assert (deny["action"], deny["description"]) == (
            "auto_deny",
            "Claims bot may not run shell commands",
        )
        assert [a["name"] for a in deny["agents"]] == ["Claims bot"]
        assert _order(page) == [deny["id"], allow["id"]]
        row = page.locator(f"tr[data-rule-id='{deny['id']}']")
        expect(row.locator("td[data-label='Agents']")).to_have_text("Claims bot active")
        expect(row.locator("td[data-label='Order']")).to_have_text("1")
        ui.shoot("rules")

        # move it down, then disable it; the page follows the API
        page.get_by_role(
            "button", name="Move rule #1 “Claims bot may not run shell commands” down"
        ).click()
        expect(page.locator("tr[data-rule-id]").first).to_have_attribute(
            "data-rule-id", allow["id"]
        )
        assert _order(page) == [r["id"] for r in hook.rules()] == [allow["id"], deny["id"]]
        page.get_by_role(
            "button", name="Disable rule #2 “Claims bot may not run shell commands”"
        ).click()
        expect(row).to_have_attribute("data-enabled", "false")
        expect(page.get_by_role("button", name=re.compile("^Enable rule #2"))).to_be_focused()
        assert [r["enabled"] for r in hook.rules()] == [True, False]

        # a call the first rule approves names it in the invocation list
        call = hook.submit(tool="Read", input={"path": "README.md"})
        assert call["status"] == "approved"
        ui.nav("Invocations")
        expect(page.locator("td[data-label='Matched rule']")).to_have_text("#1 “Reads are fine”")

        # the sync retires Claims bot: the rule says so and matches nothing
        sim_state.archive_record(cuids["Claims bot"])
        assert atryum.ctx.coordinator.run_blocking(trigger="manual")["retired"] == 1
        ui.nav("Rules")
        warnings = row.locator(".warning")
        expect(warnings).to_have_text(
            [
                "This rule names a retired agent: Claims bot",
                re.compile(r"^Matches nothing — all its agents are gone or retired"),
            ]
        )
        expect(row.locator("td[data-label='Agents'] .badge")).to_have_text("retired")
        assert hook.rules()[1]["stale_agents"] == [deny["agents"][0]["cuid"]]
        ui.shoot("rules-stale")

        page.get_by_role(
            "link", name="Edit rule #2 “Claims bot may not run shell commands”"
        ).click()
        expect(page.get_by_role("note").first).to_have_text(
            "This rule names a retired agent: Claims bot"
        )
        claims = page.get_by_label(re.compile(r"^Claims bot"))
        expect(claims).to_be_checked()
        expect(claims).to_be_enabled()  # it can be taken off the rule
        claims.uncheck()
        page.get_by_label("Enabled").check()
        page.get_by_role("button", name="Save rule").click()
        expect(page.get_by_text("Rule saved.")).to_be_visible()
        saved = hook.rules()[1]
        assert (saved["agent_cuids"], saved["enabled"], saved["matches_nothing"]) == (
            [],
            True,
            False,
        )

        # delete with a confirmation that names the rule
        page.get_by_role("button", name="Delete rule #1 “Reads are fine”").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Delete rule #1 “Reads are fine”?")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        assert len(hook.rules()) == 2
        page.get_by_role("button", name="Delete rule #1 “Reads are fine”").click()
        dialog.get_by_role("button", name="Delete rule #1 “Reads are fine”").click()
        expect(page.get_by_text("Rule deleted.")).to_be_visible()
        assert [r["id"] for r in hook.rules()] == [deny["id"]] == _order(page)

        # the default policy
        expect(page.get_by_label("When no rule matches")).to_have_value("manual_approval")
        page.get_by_label("When no rule matches").select_option("always_deny")
        page.get_by_label("Approval timeout (seconds)").fill("600")
        page.get_by_role("button", name="Save default policy").click()
        expect(page.locator("#policy-saved")).to_contain_text("Default policy saved: Deny")
        policy = hook.http.get("/api/v1/policy").json()
        assert (policy["provider"], policy["approval_timeout_seconds"]) == ("always_deny", 600)
    ui.goto("/ui/rules")
    expect(page.get_by_label("When no rule matches")).to_have_value("always_deny")


def test_the_rule_form_works_from_the_keyboard(page_ui: UI, sqlite_engine: sa.Engine) -> None:
    page = page_ui.page
    solo = agents.create_manual_agent(sqlite_engine, name="Solo", agent_ids=["solo"])
    page_ui.goto("/ui/rules/new")
    page.get_by_label("Action").focus()
    order = page_ui.tab_order(7)
    assert order == [
        "action",
        "server_patterns",
        "tool_patterns",
        "agent-search",
        f"agent-{solo.id}",
        "rule-description",
        "rule-enabled",
        "insert_before",
    ]
    page.get_by_label("Tools").focus()
    page.keyboard.type("Bash")
    page.keyboard.press("Tab")  # the agent search
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # tick "Solo"
    page.keyboard.press("Tab")
    page.keyboard.type("Solo asks first")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Rule created.")).to_be_visible()
    row = page.locator("tr[data-rule-id]")
    expect(row.locator("td[data-label='Agents']")).to_have_text("Solo active")
    expect(row.locator("td[data-label='Action']")).to_have_text("Ask a human")  # the safe default


def test_the_agent_picker_searches_as_you_type(page_ui: UI, sqlite_engine: sa.Engine) -> None:
    """A big registry: the form lists the first agents, typing finds the others, and what is
    ticked stays ticked across searches."""
    for i in range(60):
        agents.create_manual_agent(sqlite_engine, name=f"Agent {i:02d}")
    page = page_ui.page
    page_ui.goto("/ui/rules/new")
    picker = page.locator("[data-agent-choice]")
    expect(picker).to_have_count(50)
    status = page.locator("#agent-search-status")
    expect(status).to_have_text("Showing the first 50 of 60 agents: type to find others.")
    search = page.get_by_label("Find agents")
    search.fill("agent 5")
    expect(picker).to_have_text([f"Agent 5{i} active" for i in range(10)])
    expect(status).to_have_text("10 matching agents.")
    page.get_by_label("Agent 57").check()
    search.fill("agent 03")
    expect(picker).to_have_text(["Agent 57 active", "Agent 03 active"])
    page.get_by_label("Agent 03").check()
    search.fill("nobody")
    expect(status).to_have_text("No agents match.")
    expect(picker).to_have_text(["Agent 57 active", "Agent 03 active"])
    page.get_by_label("Tools").fill("Bash")
    page.get_by_role("button", name="Create rule").click()
    expect(page.get_by_text("Rule created.")).to_be_visible()
    row = page.locator("tr[data-rule-id]")
    expect(row.locator("td[data-label='Agents']")).to_contain_text("Agent 57")
    expect(row.locator("td[data-label='Agents']")).to_contain_text("Agent 03")

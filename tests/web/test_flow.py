"""The seed's acceptance steps done by clicking, against a live Atryum and the simulator."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from atryum.agents import service as agents
from tests.support import ORG, SLUG
from tests.web.driver import UI

pytestmark = pytest.mark.browser


def _record(sim_state: Any, name: str, charter: str, slug: str = SLUG) -> str:
    cuid: str = sim_state.create_record(ORG, slug, name=name, custom_fields={"charter": charter})[
        "cuid"
    ]
    return cuid


def _rows(page: Page) -> list[str]:
    names: list[str] = page.locator("tr[data-agent]").evaluate_all(
        "rows => rows.map(r => r.dataset.agent)"
    )
    return names


def _active(engine: sa.Engine) -> dict[str, Any]:
    return {a.name: a for a in agents.list_agents(engine)}


def _choose_scope(ui: UI, record_type: str) -> None:
    page = ui.page
    ui.nav("Settings")
    page.get_by_label("Organization").select_option(label="Org One (org-1)")
    page.get_by_label("Agent record type").select_option(label=record_type)
    expect(page.get_by_label("Charter field")).to_be_enabled()


def test_configure_sync_archive_and_rescope(ui: UI, sim_state: Any, sqlite_engine: Any) -> None:
    page = ui.page
    sim_state.add_custom_field(ORG, SLUG, "summary", "Summary", "text")
    sim_state.add_custom_field(ORG, SLUG, "policy", "Policy", "long-text")
    sim_state.add_custom_field(ORG, "model", "charter", "Charter", "long-text")
    _record(sim_state, "Claims Triage", "May read claims.\nMay not pay out.")
    review = _record(sim_state, "Code Review", "May comment on pull requests.")
    _record(sim_state, "Support Copilot", "May draft replies.")
    bound = _record(sim_state, "Pipeline Operator", "May restart failed jobs.")
    _record(sim_state, "Risk Model", "Scores credit risk.", slug="model")

    # the root redirects to the agent list; nothing is synced yet
    ui.goto("/")
    expect(page).to_have_url(f"{ui.base_url}/ui/")
    expect(page.locator("#vm-status")).to_have_attribute("data-state", "ok")
    expect(page.get_by_text("No agents match.")).to_be_visible()
    assert page.get_by_role("button", name="Sync from ValidMind").count() == 0

    # choose org, record type and charter field (long-text fields first); save; confirm
    _choose_scope(ui, "AI Agent (ai-agent)")
    charter = page.get_by_label("Charter field")
    expect(charter.locator("option")).to_have_text(
        [
            "Choose the charter field",
            "Charter (charter) — long text",
            "Policy (policy) — long text",
            "Summary (summary) — text",
        ]
    )
    charter.select_option("charter")
    ui.shoot("settings")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#preview-retire")).to_have_text("none")
    page.get_by_role("button", name="Confirm and save").click()
    expect(page.locator("#saved-run-status")).to_have_text("succeeded")

    # the agents appear
    ui.nav("Agents")
    expect(page.locator("tr[data-agent]")).to_have_count(4)
    expect(page.locator('tr[data-agent="Claims Triage"]')).to_contain_text(
        "synced from ValidMind · Org One"
    )

    # a manual agent, created through the form
    ui.follow(page.get_by_role("link", name="New agent"))
    page.get_by_label("Name").fill("Local helper")
    page.get_by_label("Charter").fill("May tidy the wiki.\nMay not delete pages.")
    page.get_by_label("Runtime ids").fill("jwt-local")
    page.get_by_label("Tags").fill("ops, wiki")
    ui.shoot("agent-new")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text("Agent created.")).to_be_visible()
    manual = _active(sqlite_engine)["Local helper"]
    assert (manual.agent_ids, manual.tags) == (["jwt-local"], ["ops", "wiki"])

    # a binding on a synced agent: its ValidMind-owned fields are read-only
    ui.nav("Agents")
    ui.follow(page.get_by_role("link", name="Pipeline Operator"))
    expect(page.get_by_role("heading", name="Managed by ValidMind")).to_be_visible()
    assert page.get_by_label("Name").count() == 0
    page.get_by_role("button", name="Add binding").click()
    page.get_by_label("Account").fill("acme")
    page.get_by_label("Claude agent id").fill("agent_01")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Changes saved.")).to_be_visible()
    expect(page.locator("#charter")).to_have_text("May restart failed jobs.")
    ui.shoot("agent-synced")

    # archive two records in ValidMind; press Sync
    sim_state.archive_record(review)
    sim_state.archive_record(bound)
    ui.nav("Agents")
    page.get_by_role("button", name="Sync from ValidMind").click()
    expect(page.locator(".run")).to_have_attribute("data-status", "succeeded")
    expect(page.locator(".changes-retired")).to_contain_text("Code Review")
    expect(page.locator(".changes-kept_dependent")).to_contain_text("Pipeline Operator")
    ui.shoot("run")

    # the archived agent leaves the list; the bound one stays with its badge; manual untouched
    ui.nav("Agents")
    expect(page.locator("tr[data-agent]")).to_have_count(4)
    assert sorted(_rows(page)) == [
        "Claims Triage",
        "Local helper",
        "Pipeline Operator",
        "Support Copilot",
    ]
    expect(page.locator('tr[data-agent="Pipeline Operator"]')).to_contain_text(
        "archived in ValidMind — kept: has bindings · since"
    )
    expect(page.locator('tr[data-agent="Local helper"]')).to_contain_text("manual")
    assert _active(sqlite_engine)["Local helper"] == manual
    ui.shoot("agents")

    ui.follow(page.get_by_role("link", name="Show retired agents"))
    retired = page.locator('tr[data-agent="Code Review"]')
    expect(retired).to_contain_text("retired: archived or deleted in ValidMind")
    expect(retired.get_by_role("button", name="Purge")).to_be_visible()
    ui.shoot("agents-retired")

    # a change of record type previews who is retired and who is kept, before anything changes
    _choose_scope(ui, "Model (model)")
    expect(page.get_by_label("Charter field")).to_have_value("charter")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#preview-retire li")).to_have_text(["Claims Triage", "Support Copilot"])
    expect(page.locator("#preview-keep li")).to_have_text(["Pipeline Operator"])
    assert {"Claims Triage", "Support Copilot"} <= _active(sqlite_engine).keys()
    ui.shoot("settings-preview")
    # it retires every agent nothing depends on: held, as a sync would be, until allowed
    expect(page.locator("#preview-held")).to_be_visible()
    page.get_by_role("button", name="Allow these retirements and save").click()
    expect(page.locator("#saved-run-status")).to_have_text("succeeded")
    ui.shoot("settings-saved")

    ui.nav("Agents")
    expect(page.locator("tr[data-agent]")).to_have_count(3)
    assert sorted(_rows(page)) == ["Local helper", "Pipeline Operator", "Risk Model"]
    expect(page.locator('tr[data-agent="Pipeline Operator"]')).to_contain_text(
        "outside the sync scope — kept: has bindings"
    )
    assert _active(sqlite_engine)["Local helper"] == manual

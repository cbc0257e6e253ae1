"""Settings → ValidMind: API-key credentials (organization fixed by the key), the keyboard, and a
change of only the charter field (no scope change: no removal preview, still a sync)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from atryum.agents import service as agents
from atryum.config import SyncConfig
from atryum.sync.settings import get_settings, update_settings
from tests.support import ORG, SLUG, LiveServer, make_config
from tests.web.driver import UI

pytestmark = pytest.mark.browser

KEY_ORG = "org-2"


@pytest.fixture
def api_key_sim() -> Iterator[Any]:
    """A simulator whose API key is bound to the second organization (not the first)."""
    from atryum.validmind.sim.app import SimServer
    from atryum.validmind.sim.state import SimState

    state = SimState(api_key="vm-api-key", api_secret="vm-api-secret", api_key_org=KEY_ORG)
    state.add_org(ORG, "Org One")
    state.add_org(KEY_ORG, "Org Two")
    for org in (ORG, KEY_ORG):
        state.add_record_type(org, SLUG, "AI Agent")
        state.add_record_type(org, "model", "Model")
        state.add_custom_field(org, SLUG, "charter", "Charter", "long-text")
        state.add_custom_field(org, SLUG, "policy", "Policy", "long-text")
    state.create_record(ORG, SLUG, name="Other org agent", custom_fields={"charter": "No."})
    state.create_record(
        KEY_ORG,
        SLUG,
        name="Claims Triage",
        custom_fields={"charter": "May read claims.", "policy": "Policy text."},
    )
    with SimServer(state) as server:
        yield server


@pytest.fixture
def api_key_atryum(
    api_key_sim: Any, sqlite_engine: sa.Engine, live_atryum: Callable[..., LiveServer]
) -> Iterator[LiveServer]:
    """Atryum with API-key credentials (no machine user) against that simulator."""
    config = make_config(
        backend={
            "base_url": api_key_sim.url,
            "api_key": "vm-api-key",
            "api_secret": "vm-api-secret",
            "retry_attempts": 1,
        }
    )
    assert config.backend.auth_mode == "api_key"
    with live_atryum(config, sqlite_engine) as server:
        yield server


@pytest.fixture
def api_key_ui(api_key_atryum: LiveServer, open_ui: Callable[[LiveServer], UI]) -> UI:
    # the server first: it outlives the pages, so no page sees it go away
    return open_ui(api_key_atryum)


def test_api_key_credentials_fix_the_organization_and_the_pickers_still_save(
    api_key_ui: UI, sqlite_engine: sa.Engine
) -> None:
    ui = api_key_ui
    page = ui.page
    ui.goto("/ui/settings")
    expect(page.locator("#vm-status")).to_have_text("ValidMind: connected · Org Two")

    org = page.get_by_label("Organization")
    expect(org).to_have_value("Org Two (org-2)")
    expect(org).not_to_be_editable()
    assert org.evaluate("e => e.tagName") == "INPUT"
    expect(page.locator("#org-hint")).to_have_text(
        "Fixed by the API-key credentials: an API key is bound to one organization."
    )

    record_type = page.get_by_label("Agent record type")
    expect(record_type).to_be_enabled()
    expect(record_type.locator("option")).to_have_text(
        ["Choose a record type", "AI Agent (ai-agent)", "Model (model)"]
    )
    record_type.select_option(SLUG)
    charter = page.get_by_label("Charter field")
    expect(charter).to_be_enabled()
    expect(charter.locator("option")).to_have_text(
        [
            "Choose the charter field",
            "Charter (charter) — long text",
            "Policy (policy) — long text",
        ]
    )
    charter.select_option("policy")
    ui.shoot("settings-api-key")

    page.get_by_role("button", name="Save").click()
    expect(page.locator("#preview-summary")).to_have_text(
        "The sync scope changes from (not configured) to Org Two / ai-agent."
    )
    expect(page.locator("#preview-retire")).to_have_text("none")
    page.get_by_role("button", name="Confirm and save").click()
    expect(page.locator("#saved-run-status")).to_have_text("succeeded")
    expect(page.locator("#saved-summary")).to_have_text(
        "Scope: Org Two / ai-agent, charter field policy."
    )
    ui.shoot("settings-api-key-saved")

    saved = get_settings(sqlite_engine, defaults=SyncConfig())
    assert (saved.org_cuid, saved.org_name) == (KEY_ORG, "Org Two")
    assert (saved.agent_record_type_slug, saved.charter_field_key) == (SLUG, "policy")
    synced = agents.list_agents(sqlite_engine)
    assert [(a.name, a.vm_organization_cuid, a.charter) for a in synced] == [
        ("Claims Triage", KEY_ORG, "Policy text.")
    ]

    # the page, reloaded, still shows the saved choices with the organization read-only
    ui.goto("/ui/settings")
    expect(page.get_by_label("Organization")).to_have_value("Org Two (org-2)")
    expect(page.get_by_label("Agent record type")).to_have_value(SLUG)
    expect(page.get_by_label("Charter field")).to_have_value("policy")


def test_settings_from_the_keyboard_and_a_charter_field_change_needs_no_preview(
    ui: UI, sim_state: Any, sqlite_engine: sa.Engine
) -> None:
    """Tab through organization → record type → charter field → … → Save; a change of only
    the charter field keeps the scope: no removal preview, and it still triggers a sync."""
    page = ui.page
    sim_state.add_custom_field(ORG, SLUG, "policy", "Policy", "long-text")
    sim_state.create_record(
        ORG, SLUG, name="Alpha", custom_fields={"charter": "Old.", "policy": "New policy."}
    )
    update_settings(
        sqlite_engine,
        changes={
            "org_cuid": ORG,
            "org_name": "Org One",
            "agent_record_type_slug": SLUG,
            "charter_field_key": "charter",
        },
        defaults=SyncConfig(),
    )

    ui.goto("/ui/settings")
    charter = page.get_by_label("Charter field")
    expect(charter).to_have_value("charter")
    page.get_by_label("Organization").focus()
    order = ui.tab_order(6)
    assert order == [
        "org",
        "record-type",
        "charter-field",
        "interval_seconds",
        "max_removals",
        "max_removal_ratio",
        "save-settings",
    ]

    # back to the charter field (Shift+Tab), pick the next option with the arrow key
    for _ in range(4):
        page.keyboard.press("Shift+Tab")
    expect(charter).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(charter).to_have_value("policy")
    for _ in range(4):
        page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save")).to_be_focused()
    page.keyboard.press("Space")

    saved = page.locator("#saved")
    expect(saved).to_be_visible()
    expect(saved).to_be_focused()
    expect(page.locator("#preview")).to_be_hidden()
    expect(page.locator("#saved-summary")).to_have_text(
        "Scope: Org One / ai-agent, charter field policy."
    )
    expect(page.locator("#saved-run")).to_be_visible()
    expect(page.locator("#saved-run-status")).to_have_text("succeeded")
    ui.shoot("settings-charter-only-saved")

    assert get_settings(sqlite_engine, defaults=SyncConfig()).charter_field_key == "policy"
    assert [(a.name, a.charter) for a in agents.list_agents(sqlite_engine)] == [
        ("Alpha", "New policy.")
    ]
    page.locator("#saved-run-link").click()
    expect(page.locator(".run")).to_have_attribute("data-status", "succeeded")
    expect(page.locator(".run")).to_contain_text("settings")


def test_a_scope_change_that_retires_everyone_is_held_for_review_then_allowed(
    ui: UI, sim_state: Any, sqlite_engine: sa.Engine, atryum: LiveServer
) -> None:
    """As the Sync page shows a held run: who would be retired, then an explicit allow; until
    then the registry is untouched (issue 14 row 1)."""
    page = ui.page
    sim_state.add_record_type("org-2", SLUG, "AI Agent")
    sim_state.add_custom_field("org-2", SLUG, "charter", "Charter", "long-text")
    for name in ("Alpha", "Beta", "Gamma"):
        sim_state.create_record(ORG, SLUG, name=name, custom_fields={"charter": "c"})
    update_settings(
        sqlite_engine,
        changes={"org_cuid": ORG, "agent_record_type_slug": SLUG, "charter_field_key": "charter"},
        defaults=SyncConfig(),
    )
    atryum.ctx.coordinator.run_blocking(trigger="manual", requested_by="test")
    assert len(agents.list_agents(sqlite_engine)) == 3

    ui.goto("/ui/settings")
    page.get_by_label("Organization").select_option(label="Org Two (org-2)")
    page.get_by_label("Agent record type").select_option(SLUG)
    expect(page.get_by_label("Charter field")).to_have_value("charter")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#preview-held")).to_contain_text(
        "Held: the scope change would retire every one of the 3 active synced agents"
    )
    expect(page.locator("#preview-retire li")).to_have_text(["Alpha", "Beta", "Gamma"])
    ui.shoot("settings-held")
    assert len(agents.list_agents(sqlite_engine)) == 3  # nothing changed yet
    assert get_settings(sqlite_engine, defaults=SyncConfig()).org_cuid == ORG

    page.get_by_role("button", name="Allow these retirements and save").click()
    expect(page.locator("#saved-summary")).to_contain_text("Retired: Alpha, Beta, Gamma.")
    assert agents.list_agents(sqlite_engine) == []
    assert get_settings(sqlite_engine, defaults=SyncConfig()).org_cuid == "org-2"

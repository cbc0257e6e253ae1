"""A held run explains itself and is released with Review and allow."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from atryum.agents import service as agents
from atryum.config import SyncConfig
from atryum.sync.settings import update_settings
from tests.support import ORG, SLUG
from tests.web.driver import UI

pytestmark = pytest.mark.browser


def test_held_run_is_released_with_review_and_allow(
    ui: UI, sim_state: Any, sqlite_engine: sa.Engine
) -> None:
    page = ui.page
    cuids = {
        name: sim_state.create_record(ORG, SLUG, name=name, custom_fields={"charter": "May work."})[
            "cuid"
        ]
        for name in ("Alpha", "Bravo", "Charlie", "Delta")
    }
    update_settings(
        sqlite_engine,
        changes={
            "org_cuid": ORG,
            "agent_record_type_slug": SLUG,
            "max_removals": 1,
            "max_removal_ratio": 0.25,
        },
        defaults=SyncConfig(),
    )

    ui.goto("/ui/sync")
    page.get_by_role("button", name="Sync from ValidMind").click()
    expect(page.locator(".run")).to_have_attribute("data-status", "succeeded")
    expect(page.locator(".run-summary")).to_have_text(
        "4 records fetched from ValidMind: 4 created."
    )

    # two of four archived: more than 1 agent and more than 25 % → held
    sim_state.archive_record(cuids["Bravo"])
    sim_state.archive_record(cuids["Delta"])
    ui.nav("Sync")
    page.get_by_role("button", name="Sync from ValidMind").click()
    expect(page.locator(".run")).to_have_attribute("data-status", "held")
    expect(page.locator(".run-error")).to_contain_text(
        "would retire 2 of 4 active synced agents, more than max_removals (1) and more than "
        "max_removal_ratio (25%)"
    )
    expect(page.locator(".run-summary")).to_have_text(
        "2 records fetched from ValidMind: 2 unchanged, 2 held for review."
    )
    assert len(agents.list_agents(sqlite_engine)) == 4
    review = page.get_by_role("button", name="Review and allow")
    expect(review).to_have_attribute("aria-expanded", "false")
    review.click()
    expect(page.locator(".review .names li a")).to_have_text(["Bravo", "Delta"])
    ui.shoot("run-held")

    page.get_by_role("button", name="Allow these retirements and sync").click()
    expect(page.locator(".run")).to_have_attribute("data-status", "succeeded")
    expect(page.locator(".changes-retired li a")).to_have_text(["Bravo", "Delta"])
    assert sorted(a.name for a in agents.list_agents(sqlite_engine)) == ["Alpha", "Charlie"]

    ui.nav("Sync")
    # the Sync page shows the latest run: the one an operator allowed
    expect(page.get_by_text("allowed by an operator")).to_be_visible()
    ui.shoot("sync")
    ui.nav("Sync history")
    expect(page.locator("tr[data-run-id] .badge-status")).to_have_text(
        ["succeeded", "held", "succeeded"]
    )
    ui.shoot("history")

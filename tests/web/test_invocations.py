"""Invocations: a call waiting for a human appears live, is approved or denied with a reason, and
the header's pending count follows; a decision someone else made first is refused inline."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect

from atryum.agents import service as agents
from tests.support import LiveServer
from tests.web.driver import UI
from tests.web.hook import Hook

pytestmark = pytest.mark.browser


def _badge(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role(
        "link", name=re.compile(r"^Invocations")
    )


def _history(page: Page) -> Locator:
    return page.locator("tr[data-event] td[data-label='Status'] .badge")


def test_a_pending_call_appears_live_and_is_approved_with_a_reason(
    page_ui: UI, offline: LiveServer, sqlite_engine: sa.Engine
) -> None:
    page = page_ui.page
    agents.create_manual_agent(sqlite_engine, name="Claims bot", agent_ids=["claims-bot"])
    page_ui.goto("/ui/invocations")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "on")
    expect(page.locator("#no-invocations")).to_be_visible()
    expect(_badge(page)).to_have_text("Invocations")
    page_ui.shoot("invocations-empty")
    page.evaluate("window.notReloaded = true")

    with Hook(offline.url) as hook:
        inv = hook.submit(
            input={"command": "rm -rf build", "cwd": "/repo"},
            agent_id="claims-bot",
            description="Clean the build directory",
        )
        assert inv["status"] == "pending_approval"
        inv_id = inv["invocation_id"]

        row = page.locator(f'tr[data-invocation-id="{inv_id}"]')
        expect(row).to_have_attribute("data-status", "pending_approval")
        assert page.evaluate("window.notReloaded") is True  # it came in live
        expect(row.locator("td[data-label='Agent']")).to_have_text("Claims bot")
        expect(row.locator("td[data-label='Source']")).to_have_text("claude-code")
        expect(row.locator("td[data-label='Status']")).to_have_text("pending approval")
        expect(_badge(page)).to_have_text("Invocations (1)")
        page_ui.shoot("invocations")

        page_ui.follow(row.get_by_role("link", name="Bash"))
        expect(page.locator("#input-json")).to_contain_text('"command": "rm -rf build"')
        expect(page.locator("#approval-facts")).to_contain_text("pending")
        expect(_history(page)).to_have_text(["received", "pending approval"])
        page_ui.shoot("invocation-pending")

        page.get_by_label("Reason (optional)").fill("Only the build directory")
        page.get_by_role("button", name="Approve").click()
        expect(page.locator("#invocation-status")).to_have_text("approved")
        polled = hook.poll(inv_id)
        assert polled["status"] == "approved"
        assert polled["approval"]["reason"] == "Only the build directory"

    expect(page.locator("#approval-reason")).to_have_text("Only the build directory")
    expect(page.locator("#approval-actor")).to_have_text("operator")
    expect(_history(page)).to_have_text(["received", "pending approval", "approved"])
    approved = page.locator("tr[data-event='approved']")
    expect(approved.locator("td[data-label='Who']")).to_have_text("operator")
    expect(approved.locator("td[data-label='Why']")).to_have_text("Only the build directory")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(_badge(page)).to_have_text("Invocations")
    page_ui.shoot("invocation-approved")

    page_ui.nav("Invocations")
    expect(page.locator(f'tr[data-invocation-id="{inv_id}"]')).to_have_attribute(
        "data-status", "approved"
    )


def test_deny_with_a_reason_and_a_decision_made_elsewhere_is_refused_inline(
    page_ui: UI, offline: LiveServer
) -> None:
    page = page_ui.page
    page_ui.allow_console_error(r"status of 409")
    with Hook(offline.url) as hook:
        first = hook.submit(tool="mcp__github__delete_repo", input={"repo": "acme/api"})
        second = hook.submit(tool="Write", input={"path": "/etc/hosts"})
        page_ui.goto("/ui/invocations?status=pending_approval")
        expect(page.locator("tr[data-invocation-id]")).to_have_count(2)
        expect(_badge(page)).to_have_text("Invocations (2)")

        page_ui.follow(page.get_by_role("link", name="mcp__github__delete_repo"))
        page.get_by_label("Reason (optional)").fill("Never delete repositories")
        page.get_by_role("button", name="Deny").click()
        expect(page.locator("#invocation-status")).to_have_text("denied")
        polled = hook.poll(first["invocation_id"])
        assert (polled["status"], polled["approval"]["reason"]) == (
            "denied",
            "Never delete repositories",
        )
        expect(_history(page)).to_have_text(["received", "pending approval", "denied"])
        expect(_badge(page)).to_have_text("Invocations (1)")

        # someone else approves the second call while this page shows it as pending
        page_ui.goto(f"/ui/invocations/{second['invocation_id']}")
        expect(page.get_by_role("button", name="Deny")).to_be_visible()
        page.evaluate("window.notReloaded = true")
        hook.decide(second["invocation_id"], "approve", "looks fine")
        expect(page.locator("#changed-notice")).to_contain_text("This call is now approved.")
        expect(_badge(page)).to_have_text("Invocations")  # the count went down live
        assert page.evaluate("window.notReloaded") is True
        page.get_by_label("Reason (optional)").fill("too late")
        page.get_by_role("button", name="Deny").click()
        expect(page.locator("#decision-error")).to_have_text(
            f"invocation {second['invocation_id']} is approved, not pending approval; "
            "only a pending call can be approved or denied"
        )
        assert hook.poll(second["invocation_id"])["status"] == "approved"
        page_ui.shoot("invocation-conflict")

    page_ui.nav("Invocations")
    page.get_by_label("Status").select_option("denied")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr[data-invocation-id]")).to_have_count(1)
    expect(page.locator("tr[data-invocation-id]")).to_have_attribute(
        "data-invocation-id", first["invocation_id"]
    )


def test_without_server_sent_events_the_list_falls_back_to_re_reading(
    page_ui: UI, offline: LiveServer
) -> None:
    page = page_ui.page
    page.add_init_script("delete window.EventSource")
    page_ui.goto("/ui/invocations")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "polling")
    page.evaluate("window.notReloaded = true")
    with Hook(offline.url) as hook:
        inv = hook.submit(tool="Edit", input={"path": "a.py"})
    row = page.locator(f'tr[data-invocation-id="{inv["invocation_id"]}"]')
    expect(row).to_have_attribute("data-status", "pending_approval")
    expect(_badge(page)).to_have_text("Invocations (1)")
    assert page.evaluate("window.notReloaded") is True

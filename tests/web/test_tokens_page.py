"""The API tokens page: create shows the value once, the list never does, revoke refuses it."""

from __future__ import annotations

import httpx2
from playwright.sync_api import expect

from atryum.identity import api_tokens
from tests.support import LiveServer
from tests.web.driver import UI


def test_create_shows_the_value_once_and_revoke_ends_it(page_ui: UI, offline: LiveServer) -> None:
    page = page_ui.page
    page_ui.goto("/ui/")
    page_ui.nav("Tokens")
    expect(page.locator("#tokens-empty")).to_be_visible()
    page.get_by_label("Name").fill("ci-reports")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_label("Expires in").fill("2w")
    page.get_by_role("button", name="Create token").click()
    value_box = page.locator("#token-value")
    expect(value_box).to_contain_text(api_tokens.PREFIX)
    value = value_box.inner_text()
    page_ui.shoot("tokens-created")

    page.reload()
    expect(page.locator("#token-created")).to_be_hidden()
    assert value not in page.content()
    row = page.locator("#tokens-table tbody tr").first
    expect(row.locator("td[data-label='Name']")).to_have_text("ci-reports")
    expect(row.locator("td[data-label='State']")).to_have_text("active")
    expect(row.locator("td[data-label='Last used']")).to_have_text("never")
    page_ui.shoot("tokens")

    row.get_by_role("button", name="Revoke").click()
    page.locator("#confirm-ok").click()
    expect(
        page.locator("#tokens-table tbody tr").first.locator("td[data-label='State']")
    ).to_have_text("revoked")
    audit = httpx2.get(f"{offline.url}/api/v1/audit?entity=api_token").json()
    assert [e["action"] for e in audit["items"]] == ["revoke", "create"]
    assert value not in str(audit)


def test_a_bad_token_request_is_explained_inline(page_ui: UI) -> None:
    page = page_ui.page
    page_ui.allow_console_error(r"400")
    page_ui.goto("/ui/tokens")
    page.get_by_label("Name").fill("x")
    page.get_by_label("Expires in").fill("forever")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#token-error")).to_contain_text("expires_in must be like 90d")
    expect(page.locator("#token-created")).to_be_hidden()

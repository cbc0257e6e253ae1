"""The charter judge in the UI: the LLM judges page (add, test, disable), the rule form's judge,
and the judge's verdict on the invocation page. Real Chromium, a scripted LLM server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from atryum.agents import service as agents
from tests.judge.conftest import CHARTER
from tests.judge.llm_server import LlmServer, answer
from tests.support import LiveServer
from tests.web.driver import UI
from tests.web.hook import Hook

pytestmark = pytest.mark.browser
KEY = "sk-ui-SECRET-42"


@pytest.fixture
def llm() -> Iterator[LlmServer]:
    with LlmServer() as server:
        yield server


def test_an_operator_adds_tests_and_uses_an_llm_judge(
    page_ui: UI, offline: LiveServer, sqlite_engine: sa.Engine, llm: LlmServer
) -> None:
    page = page_ui.page
    agents.create_manual_agent(
        sqlite_engine, name="Code Review Bot", agent_ids=["review-bot"], charter=CHARTER
    )
    page_ui.goto("/ui/")
    page_ui.nav("LLM judges")
    expect(page.get_by_text("No LLM judges yet")).to_be_visible()

    page_ui.follow(page.get_by_role("link", name="Add LLM judge"))
    page.get_by_label("Name").fill("Local llama")
    page.get_by_label("Provider").select_option("openai_compatible")
    page.get_by_label("Model").fill("llama3.1")
    page_ui.allow_console_error(r"status of 400 \(Bad Request\)")  # the refused form
    page.get_by_role("button", name="Add LLM judge").click()
    expect(page.locator("#config-error")).to_contain_text("base_url is required")
    page.get_by_label("Base URL").fill(llm.openai_url)
    page.get_by_label("API key").fill(KEY)
    page_ui.shoot("llm-config-form")
    page.get_by_role("button", name="Add LLM judge").click()
    expect(page.get_by_text("LLM config created.")).to_be_visible()
    row = page.locator("tr[data-config-id]")
    expect(row.locator("td[data-label='API key']")).to_have_text("set")
    page_ui.shoot("llm-configs")

    # a sample call
    llm.script(answer("approved", 0.93, "reading a pull request is allowed"))
    page_ui.follow(page.get_by_role("link", name="Edit or test LLM judge Local llama"))
    expect(page.get_by_label("API key")).to_have_value("")  # write-only
    assert KEY not in page.content()
    page.get_by_role("button", name="Run the sample call").click()
    expect(page.locator("#test-result")).to_contain_text(
        "approved, confidence 0.93 — reading a pull request is allowed (llama3.1"
    )

    # a rule judged by it
    page_ui.goto("/ui/rules/new")
    expect(page.get_by_label("Judge", exact=True)).to_be_hidden()
    page.get_by_label("Action").select_option("ai_evaluation")
    page.get_by_label("Judge", exact=True).select_option(label="Local llama (llama3.1)")
    page.get_by_label("Minimum confidence to approve").fill("0.5")
    page.get_by_label("Description").fill("Charter judge")
    page.get_by_role("button", name="Create rule").click()
    expect(page.get_by_text("Rule created.")).to_be_visible()
    with Hook(offline.url) as hook:
        (rule,) = hook.rules()
        config_id = rule["atryum_llm_config_id"]
        assert config_id and rule["min_confidence"] == 0.5
        # disabling and re-enabling the rule from the list keeps its judge
        page.get_by_role("button", name="Disable rule #1 “Charter judge”").click()
        page.get_by_role("button", name="Enable rule #1 “Charter judge”").click()
        expect(page.get_by_role("button", name="Disable rule #1 “Charter judge”")).to_be_visible()
        assert hook.rules()[0]["atryum_llm_config_id"] == config_id

        llm.script(answer("denied", 0.88, "merging pull requests is forbidden"))
        inv = hook.submit("merge_pull_request", source="github", agent_id="review-bot")
        assert inv["status"] == "denied"

    page_ui.goto(f"/ui/invocations/{inv['invocation_id']}")
    judge = page.locator("#judge")
    expect(judge.locator("td[data-label='Judge']")).to_have_text("LLM llama3.1")
    expect(judge.locator("td[data-label='Verdict']")).to_contain_text("denied")
    expect(judge.locator("td[data-label='Confidence']")).to_have_text("0.88")
    expect(judge.locator("td[data-label='Reason']")).to_contain_text("merging pull requests")
    expect(judge.locator("td[data-label='Latency']")).to_contain_text(" ms")
    page_ui.shoot("invocation-judged")

    # disabling the judge flags its rule
    page_ui.goto("/ui/llm-configs")
    page.get_by_role("button", name="Disable LLM judge Local llama").click()
    expect(page.get_by_role("button", name="Enable LLM judge Local llama")).to_be_visible()
    page_ui.goto("/ui/rules")
    expect(page.locator("tr[data-rule-id] .warning")).to_contain_text("is disabled")

"""Judge fixtures: a scripted LLM server and Atryum serving the hook path over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from atryum.agents import service as agents
from atryum.agents.models import Agent
from atryum.app import build_context
from tests.gateway.conftest import client  # noqa: F401 (the gateway's TestClient fixture)
from tests.gateway.live import Api
from tests.judge.llm_server import LlmServer
from tests.support import LiveServer, make_config

CHARTER = (
    "Purpose: review pull requests in the bank's internal repositories.\n"
    "May: read repositories, diffs and CI results; comment on pull requests.\n"
    "May not: merge or close pull requests; delete branches, tags or repositories.\n"
    "Needs a human: any deployment."
)
SECRET_KEY = "sk-test-SECRET-0123456789abcdef"


@dataclass
class Judged:
    """Atryum over real HTTP with one agent that has a charter, and a scripted LLM."""

    api: Api
    llm: LlmServer
    engine: sa.Engine
    server: LiveServer
    agent: Agent

    def config(self, provider: str = "openai_compatible", **body: Any) -> dict[str, Any]:
        base = self.llm.url if provider == "anthropic" else self.llm.openai_url
        payload = {
            "name": f"judge {provider}",
            "provider": provider,
            "model": "judge-model-1",
            "base_url": base,
            "api_key": SECRET_KEY,
            "timeout_seconds": 5,
            **body,
        }
        result: dict[str, Any] = self.api.ok(
            self.api.http.post("/api/v1/llm-configs", json=payload), 201
        )
        return result

    def ai_rule(self, config_id: str | None = None, **body: Any) -> dict[str, Any]:
        if config_id is not None:
            body["atryum_llm_config_id"] = config_id
        return self.api.rule("ai_evaluation", **body)

    def call(self, tool: str = "get_pull_request", **body: Any) -> dict[str, Any]:
        body.setdefault("source", "github")
        body.setdefault("input", {"repo": "acme/api", "number": 7})
        return self.api.submit(tool, agent_id="review-bot", **body)

    def events(self, inv_id: str) -> list[dict[str, Any]]:
        r = self.api.http.get(f"/api/v1/review/invocations/{inv_id}/events")
        items: list[dict[str, Any]] = self.api.ok(r)["items"]
        return items

    def evaluations(self, inv_id: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events(inv_id) if e["type"] == "rule_evaluated"]


@pytest.fixture
def llm() -> Iterator[LlmServer]:
    with LlmServer() as server:
        yield server


@pytest.fixture
def judged_factory(engine: sa.Engine, llm: LlmServer) -> Iterator[Callable[..., Judged]]:
    opened: list[tuple[LiveServer, Api]] = []

    def start(charter: str = CHARTER, **config: dict[str, Any]) -> Judged:
        agent = agents.create_manual_agent(
            engine, name="Code Review Bot", agent_ids=["review-bot"], charter=charter
        )
        server = LiveServer(build_context(make_config(**config), engine)).__enter__()
        api = Api(server.url).__enter__()
        opened.append((server, api))
        return Judged(api, llm, engine, server, agent)

    yield start
    for server, api in opened:
        api.__exit__(None, None, None)
        server.__exit__(None, None, None)


@pytest.fixture
def judged(judged_factory: Callable[..., Judged]) -> Judged:
    return judged_factory()

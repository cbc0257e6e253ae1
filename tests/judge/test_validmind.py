"""The ValidMind judge (`POST /evaluate`) through the simulator, on the demo's agents."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from atryum.app import build_context
from atryum.demo import DEMO_ORG, DEMO_RECORD_TYPE, demo_seed
from atryum.sync.settings import update_settings
from atryum.validmind.sim.app import SimServer
from atryum.validmind.sim.state import SimState
from tests.gateway.live import Api
from tests.support import LiveServer, make_config


@dataclass
class Demo:
    api: Api
    sim: SimServer
    state: SimState
    server: LiveServer

    def call(self, tool: str, **body: Any) -> dict[str, Any]:
        return self.api.submit(tool, agent_id="code-review-bot", source="github", **body)


@pytest.fixture
def demo(engine: sa.Engine) -> Iterator[Demo]:
    state = SimState.from_seed(demo_seed())
    with SimServer(state) as sim:
        config = make_config(
            backend={
                "base_url": sim.url,
                "machine_key": "sim-machine-key",
                "machine_secret": "sim-machine-secret",
                "retry_attempts": 1,
            }
        )
        ctx = build_context(config, engine)
        update_settings(
            engine,
            changes={
                "org_cuid": DEMO_ORG,
                "agent_record_type_slug": DEMO_RECORD_TYPE,
                "charter_field_key": "charter",
            },
            defaults=config.sync,
        )
        assert ctx.coordinator.run_blocking(trigger="manual")["created"] == 5
        with LiveServer(ctx) as server, Api(server.url) as api:
            agents = api.ok(api.http.get("/api/v1/agents"))["items"]
            bot = next(a for a in agents if a["name"] == "Code Review Bot")
            api.ok(
                api.http.patch(
                    f"/api/v1/agents/{bot['cuid']}", json={"agent_ids": ["code-review-bot"]}
                )
            )
            yield Demo(api, sim, state, server)


def test_model_configs_are_listed_from_validmind(demo: Demo) -> None:
    items = demo.api.ok(demo.api.http.get("/api/v1/model-configs"))["items"]
    assert {i["cuid"] for i in items} == {"mc-sim-default", "mc-sim-strict"}


def test_the_validmind_judge_decides_the_code_review_bots_calls(demo: Demo) -> None:
    rule = demo.api.rule("ai_evaluation", model_config_cuid="mc-sim-default")

    allowed = demo.call("get_pull_request", input={"number": 1})
    forbidden = demo.call("delete_branch", input={"branch": "main"})
    human = demo.call("deploy_service", input={"env": "prod"})

    assert allowed["status"] == "approved"
    assert forbidden["status"] == "denied"
    assert (human["status"], human["approval"]["status"]) == ("pending_approval", "ai_escalated")
    assert {i["matched_rule_id"] for i in (allowed, forbidden, human)} == {rule["id"]}
    events = demo.api.ok(
        demo.api.http.get(f"/api/v1/review/invocations/{forbidden['invocation_id']}/events")
    )["items"]
    (ev,) = [e["data"] for e in events if e["type"] == "rule_evaluated"]
    assert ev["judge"] == "validmind"
    assert ev["config"] == "mc-sim-default"
    assert ev["model"] == "Simulated judge (deterministic)"
    assert ev["verdict"] == "denied"
    assert ev["confidence"] == 0.97
    assert "Code Review Bot" in ev["reason"]
    assert ev["tokens"]["input"] > 0


def test_a_failing_validmind_judge_sends_the_call_to_a_human(demo: Demo) -> None:
    demo.api.rule("ai_evaluation", model_config_cuid="mc-sim-default")
    demo.state.set_faults(status=503, endpoints=["evaluate"])

    inv = demo.call("get_pull_request")

    assert inv["status"] == "pending_approval"
    assert "http_5xx" in inv["approval"]["reason"]


def test_an_unknown_model_config_sends_the_call_to_a_human(demo: Demo) -> None:
    demo.api.rule("ai_evaluation", model_config_cuid="mc-gone")

    inv = demo.call("get_pull_request")

    assert inv["status"] == "pending_approval"
    assert "http_4xx" in inv["approval"]["reason"]

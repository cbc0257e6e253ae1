"""mcp-proxy.md §4.2 as a property: for any rule set and default policy, the action `tools/list`
shows a caller for a tool is the decision a `tools/call` of that tool by that caller then gets
by rule or default policy (an `ai_evaluation` rule without a judge goes to a human)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atryum.gateway import rules, service
from atryum.gateway.models import APPROVED, DENIED, PENDING
from atryum.gateway.service import CallRequest
from tests.gateway.helpers import DEFAULTS, agent

SERVER = "calc"
TOOLS = ["add", "read_note", "write_note", "delete_note"]
CALL_OUTCOME = {
    "auto_approve": APPROVED,
    "auto_deny": DENIED,
    "human_approval": PENDING,
    "ai_evaluation": PENDING,
}

patterns = st.lists(
    st.sampled_from(["*", *TOOLS, "*_note", "read_*", "?dd", "nothing"]), max_size=2
)
servers = st.lists(st.sampled_from(["*", SERVER, "c*", "other"]), max_size=2)
rule_specs = st.lists(
    st.fixed_dictionaries(
        {
            "action": st.sampled_from(list(CALL_OUTCOME)),
            "tool_patterns": patterns,
            "server_patterns": servers,
            "agents": st.sets(st.sampled_from(["a", "b"]), max_size=2),
            "enabled": st.booleans(),
        }
    ),
    max_size=6,
)
providers = st.sampled_from(["manual_approval", "always_approve", "always_deny"])


def test_list_and_call_agree(engine: sa.Engine) -> None:
    ids = {"a": agent(engine, "A", "rt-a").id, "b": agent(engine, "B", "rt-b").id}

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(specs=rule_specs, provider=providers, caller=st.sampled_from(["rt-a", "rt-b"]))
    def check(specs: list[dict[str, Any]], provider: str, caller: str) -> None:
        for old in rules.list_rules(engine):
            rules.delete_rule(engine, rule_id=old.rule.id)
        for spec in specs:
            rules.create_rule(
                engine,
                spec=rules.RuleSpec(
                    action=spec["action"],
                    server_patterns=spec["server_patterns"],
                    tool_patterns=spec["tool_patterns"],
                    agent_cuids=[ids[a] for a in sorted(spec["agents"])],
                    enabled=spec["enabled"],
                ),
            )
        rules.update_policy(engine, provider=provider, defaults=DEFAULTS)
        listed = rules.actions_for_caller(
            engine, source=SERVER, tools=TOOLS, agent_id=caller, defaults=DEFAULTS
        )
        for tool in TOOLS:
            inv, _ = service.submit(
                engine,
                request=CallRequest(source=SERVER, tool=tool, input={}, agent_id=caller),
                caller=None,
                defaults=DEFAULTS,
            )
            assert inv.status == CALL_OUTCOME[listed[tool]], (tool, listed[tool], inv.status)

    check()

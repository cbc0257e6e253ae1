"""Which registry agent is calling: runtime id → binding → default agent, failing closed.

A runtime id that belongs to a retired or disabled agent is denied outright; it never falls
through to the default agent or to rules for all agents (agent-sync.md §3.3, §7.8). A runtime id
that belongs to no agent at all is *unregistered*: as in the Go original, only rules for all
agents and the default policy decide its calls — or, with `[policy] unregistered_agents =
"deny"`, they are denied (go-compat.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from atryum.gateway import store
from atryum.gateway.models import AgentInfo

_RETIRED_BECAUSE = {
    "archived_in_source": "its ValidMind record is archived",
    "out_of_scope": "its ValidMind record is outside the configured sync scope",
}


@dataclass(frozen=True)
class Resolution:
    agent: AgentInfo | None
    denied: str | None  # reason to deny the call outright
    via: str  # runtime_id | binding | default | anonymous | unregistered

    @property
    def agent_id(self) -> str | None:
        return self.agent.id if self.agent else None

    @property
    def agent_name(self) -> str | None:
        return self.agent.name if self.agent else None


def retired_reason(agent: AgentInfo) -> str:
    why = _RETIRED_BECAUSE.get(
        agent.removal_reason or "", f"it was removed from the registry ({agent.removal_reason})"
    )
    return f"agent {agent.name} was retired: {why}"


def refusal(agent: AgentInfo) -> str | None:
    """Why calls of this agent are denied outright (retired or disabled), or None."""
    if agent.retired:
        return retired_reason(agent)
    if not agent.enabled:
        return f"agent {agent.name} is disabled"
    return None


def _checked(agent: AgentInfo, via: str) -> Resolution:
    return Resolution(agent, refusal(agent), via)


def resolve(
    conn: sa.Connection,
    runtime_id: str | None,
    *,
    default_agent_id: str | None,
    unregistered: str = "global_rules",
) -> Resolution:
    rid = (runtime_id or "").strip()
    if rid:
        agent = store.agent_for_runtime_id(conn, rid)
        if agent is not None:
            return _checked(agent, "runtime_id")
        bound = store.agents_bound_to(conn, rid)
        if len(bound) > 1:
            return Resolution(
                None,
                f"agent id {rid!r} matches managed-agent bindings of several agents; "
                "bind it to one agent only",
                "binding",
            )
        if bound and (agent := store.agent_info(conn, bound[0])) is not None:
            return _checked(agent, "binding")
    default_id = default_agent_id
    if default_id:
        agent = store.agent_info(conn, default_id)
        if agent is None:
            return Resolution(
                None,
                f"the default agent {default_id} no longer exists; choose another default agent",
                "default",
            )
        return _checked(agent, "default")
    if rid and unregistered == "deny":
        return Resolution(
            None,
            f"agent {rid!r} is not registered in Atryum and unregistered agents are denied "
            '([policy] unregistered_agents = "deny"); add this id to an agent\'s agent_ids or '
            "set a default agent",
            "unregistered",
        )
    return Resolution(None, None, "unregistered" if rid else "anonymous")

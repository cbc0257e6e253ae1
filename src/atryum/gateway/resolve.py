"""Which registry agent is calling: runtime id → binding → default agent, failing closed.

A runtime id that belongs to a retired or disabled agent is denied outright; it never falls
through to the default agent or to rules for all agents (agent-sync.md §3.3, §7.8). A runtime id
that belongs to no agent at all is *unregistered*: as in the Go original, only rules for all
agents and the default policy decide its calls — or, with `[policy] unregistered_agents =
"deny"`, they are denied (go-compat.md §2).

A verified caller (identity.md §1) is the pair (issuer, agent id): an `agent_ids` entry
`issuer#name` matches that name from that issuer only, a plain `name` from any issuer. An id
that itself contains `#` matches only the qualified form, so one issuer cannot mint a client id
that reads as another issuer's qualified entry.
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


def runtime_keys(runtime_id: str, issuer: str | None) -> list[str]:
    """The `agent_ids` entries that name this caller, the most specific first."""
    if issuer is None:
        return [runtime_id]
    qualified = f"{issuer}#{runtime_id}"
    return [qualified] if "#" in runtime_id else [qualified, runtime_id]


def resolve(
    conn: sa.Connection,
    runtime_id: str | None,
    *,
    default_agent_id: str | None,
    unregistered: str = "global_rules",
    issuer: str | None = None,
) -> Resolution:
    """`issuer` is set for a verified caller (its token's issuer), None for a hinted id."""
    rid = (runtime_id or "").strip()
    if rid:
        keys = runtime_keys(rid, issuer)
        agent = store.agent_for_runtime_id(conn, *keys)
        if agent is not None:
            return _checked(agent, "runtime_id")
        bound = next((b for key in keys if (b := store.agents_bound_to(conn, key))), [])
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

"""Decisions belong to someone else (identity.md §3): the four-eyes check of approve/deny."""

from __future__ import annotations

import sqlalchemy as sa

from atryum.gateway import resolve
from atryum.gateway.models import Invocation
from atryum.identity.principal import OperatorPrincipal


def same_agent(conn: sa.Connection, issuer: str, agent_id: str, invocation: Invocation) -> bool:
    """Whether (issuer, agent_id) is the call's own identity or one bound to the call's agent.

    Local stand-in for `atryum.identity.same_agent` of the agent-token work (same rule): the
    caller's `issuer#id` key, else the self-declared agent id, else the registry binding.
    """
    if invocation.caller is not None:
        if invocation.caller in (f"{issuer}#{agent_id}", agent_id):
            return True
    elif invocation.agent_id is not None and invocation.agent_id == agent_id:
        return True
    if invocation.agent_record_id is None:
        return False
    found = resolve.resolve(conn, f"{issuer}#{agent_id}", default_agent_id=None)
    if found.agent_id is None:
        found = resolve.resolve(conn, agent_id, default_agent_id=None)
    return found.agent_id == invocation.agent_record_id


def four_eyes_refusal(
    conn: sa.Connection, actor: OperatorPrincipal, invocation: Invocation
) -> str | None:
    """Why `actor` may not decide `invocation`, or None."""
    if not actor.issuer or actor.method not in ("session", "bearer"):
        return None  # Atryum's own tokens, the machine key, the CLI: not agent identities
    for agent_id in dict.fromkeys((actor.subject, *actor.agent_ids)):
        if agent_id and same_agent(conn, actor.issuer, agent_id, invocation):
            return (
                f"{actor.name} may not decide this call: it was made by the same identity or by "
                "another identity of the same agent (four eyes)"
            )
    return None

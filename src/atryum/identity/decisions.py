"""Decisions belong to someone else (identity.md §3): the four-eyes check of approve/deny."""

from __future__ import annotations

import sqlalchemy as sa

from atryum.gateway.models import Invocation
from atryum.identity.four_eyes import same_agent
from atryum.identity.principal import OperatorPrincipal
from atryum.identity.tokens import AgentIdentity


def four_eyes_refusal(
    conn: sa.Connection, actor: OperatorPrincipal, invocation: Invocation
) -> str | None:
    """Why `actor` may not decide `invocation`, or None. A person or token of an identity
    provider is compared under every id it would have as an agent there (its subject, and the
    agent id its token names)."""
    if not actor.issuer or actor.method not in ("session", "bearer"):
        return None  # Atryum's own tokens, the machine key, the CLI: not agent identities
    for agent_id in dict.fromkeys((actor.subject, *actor.agent_ids)):
        if agent_id and same_agent(conn, AgentIdentity(actor.issuer, agent_id), invocation):
            return (
                f"{actor.name} may not decide this call: it was made by the same identity or by "
                "another identity of the same agent (four eyes)"
            )
    return None

"""Four eyes (identity.md §3): a call is never decided by the identity that made it, nor by
another identity of the same registry agent.

The operator side calls `same_agent` at approve/deny with the deciding principal's identity
when that principal is a bearer token (issuer, subject or client id) and refuses with 403 when
it answers True.
"""

from __future__ import annotations

import sqlalchemy as sa

from atryum.gateway import resolve
from atryum.gateway.models import Invocation
from atryum.identity.tokens import AgentIdentity


def same_agent(conn: sa.Connection, principal: AgentIdentity, invocation: Invocation) -> bool:
    """Whether `principal` is the call's own identity or one bound to the call's agent.

    An unauthenticated call's self-declared agent id counts as its identity too (so a
    principal named like it may not decide it), and a retired agent's ids still count.
    The default agent is no binding: resolving the principal never falls back to it.
    """
    if invocation.caller is not None:
        if invocation.caller == principal.key:
            return True
    elif invocation.agent_id is not None and invocation.agent_id == principal.agent_id:
        return True
    if invocation.agent_record_id is None:
        return False
    resolution = resolve.resolve(
        conn, principal.agent_id, issuer=principal.issuer, default_agent_id=None
    )
    return resolution.agent_id == invocation.agent_record_id

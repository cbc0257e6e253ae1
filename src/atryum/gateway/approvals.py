"""Human approval: approve, deny, expire. Decisions are durable rows, so any replica sees them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from atryum.db.types import utcnow
from atryum.errors import Conflict, Forbidden, NotFound
from atryum.gateway import audit, metrics, resolve, rules, store, tx
from atryum.gateway.hub import Change, Hub
from atryum.gateway.models import (
    A_APPROVED,
    A_DENIED,
    A_EXPIRED,
    APPROVED,
    DENIED,
    EXPIRED,
    PENDING,
    Invocation,
)
from atryum.identity.decisions import four_eyes_refusal
from atryum.identity.principal import OperatorPrincipal

SYSTEM = "atryum"


def _overdue(inv: Invocation, now: datetime) -> bool:
    expires = inv.approval.expires_at if inv.approval else None
    return inv.status == PENDING and expires is not None and expires <= now


def expire_if_due(
    conn: sa.Connection, inv: Invocation, *, now: datetime, outbox: list[Change]
) -> Invocation:
    """A pending call past its deadline becomes `expired` (the harness treats it as a denial)."""
    if not _overdue(inv, now):
        return inv
    assert inv.approval is not None and inv.approval.expires_at is not None
    waited = int((inv.approval.expires_at - inv.approval.requested_at).total_seconds())
    reason = f"no one approved or denied the call within {waited} s"
    if audit.change_status(
        conn,
        inv,
        EXPIRED,
        now=now,
        actor=SYSTEM,
        data={"reason": reason},
        values={"completed_at": now},
        outbox=outbox,
    ):
        store.update_approval(
            conn, inv.id, {"status": A_EXPIRED, "reason": reason, "decision_at": now}
        )
        metrics.DECISIONS.labels(A_EXPIRED, "none").inc()
    fresh = store.get_invocation(conn, inv.id)
    assert fresh is not None
    return fresh


def expire_overdue(engine: sa.Engine, *, hub: Hub | None = None) -> int:
    """Expire every pending call past its deadline (the sweeper; safe on several replicas)."""
    outbox: list[Change] = []
    now = utcnow()
    with tx.begin(engine) as conn:
        for inv_id in store.overdue_pending(conn, now):
            inv = store.get_invocation(conn, inv_id)
            if inv is not None:
                expire_if_due(conn, inv, now=now, outbox=outbox)
    if hub is not None:
        hub.committed(outbox)
    return len(outbox)


def _agent_refusal(conn: sa.Connection, inv: Invocation) -> str | None:
    """An agent retired, disabled or purged while its call waited: approving would fail open."""
    if inv.agent_record_id is None:
        return None
    agent = store.agent_info(conn, inv.agent_record_id)
    if agent is None:
        return f"agent {inv.agent_name or inv.agent_record_id} was purged from the registry"
    return resolve.refusal(agent)


def decide(
    engine: sa.Engine,
    *,
    invocation_id: str,
    approve: bool,
    reason: str = "",
    actor: OperatorPrincipal | str,
    create_rule: Callable[[Invocation], rules.RuleSpec] | None = None,
    hub: Hub | None = None,
) -> Invocation:
    """A human's decision on a pending call; 409 unless it is still pending (and not overdue),
    403 when the operator is the call's own identity or one of the same agent (four eyes).

    `create_rule` (Go's "decide and remember"): the rule it makes for this call is inserted in
    the same transaction, before the rule that matched the call (last if none did)."""
    new = APPROVED if approve else DENIED
    outbox: list[Change] = []
    problem: str | None = None
    refused: str | None = None
    principal = actor if isinstance(actor, OperatorPrincipal) else None
    actor_text = principal.label if principal else str(actor)
    who = {"operator": principal.describe()} if principal else {}
    with tx.begin(engine) as conn:
        now = utcnow()
        inv = store.get_invocation(conn, invocation_id)
        if inv is None:
            raise NotFound(f"invocation {invocation_id} not found")
        inv = expire_if_due(conn, inv, now=now, outbox=outbox)
        reason = reason.strip() or (
            "approved by an operator" if approve else "denied by an operator"
        )
        if principal and (why := four_eyes_refusal(conn, principal, inv)):
            refused = why
        elif inv.status != PENDING:
            problem = (
                f"invocation {invocation_id} is {inv.status}, not pending approval; "
                "only a pending call can be approved or denied"
            )
        elif approve and (why := _agent_refusal(conn, inv)):
            problem = f"{why} (after the call was submitted), so it can only be denied now"
        elif audit.change_status(
            conn,
            inv,
            new,
            now=now,
            actor=actor_text,
            data={"reason": reason, **who},
            outbox=outbox,
        ):
            store.update_approval(
                conn,
                inv.id,
                {
                    "status": A_APPROVED if approve else A_DENIED,
                    "reason": reason,
                    "actor_id": actor_text,
                    "decision_at": now,
                },
            )
            if create_rule is not None:
                matched = inv.matched_rule_id
                anchor = matched if matched and store.get_rule(conn, matched) else None
                rules.insert_rule(conn, spec=create_rule(inv), insert_before=anchor, actor=actor)
        else:
            fresh = store.get_invocation(conn, invocation_id)
            status = fresh.status if fresh else "gone"
            problem = f"invocation {invocation_id} was decided at the same time (now {status})"
        result = store.get_invocation(conn, invocation_id)
    if hub is not None:
        hub.committed(outbox)
    if refused:
        raise Forbidden(refused)
    if problem:
        raise Conflict(problem)
    assert result is not None
    metrics.DECISIONS.labels(A_APPROVED if approve else A_DENIED, "human").inc()
    metrics.DECISION_LATENCY.labels("human").observe((now - result.submitted_at).total_seconds())
    return result

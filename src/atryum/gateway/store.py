"""SQL for invocations, their events and approvals, rules and the default policy. No policy here."""

from __future__ import annotations

import contextlib
import json
import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from atryum.db.tables import (
    agent_runtime_ids,
    agent_sync_settings,
    agents,
    approval_rules,
    approvals,
    gateway_policy,
    invocation_events,
    invocations,
    managed_agent_bindings,
)
from atryum.gateway.models import AgentInfo, AgentState, Approval, Event, Invocation, Rule

NOTIFY_CHANNEL = "atryum_gateway"


def new_id() -> str:
    return str(uuid.uuid4())


# -- invocations ------------------------------------------------------------------------------

_INVOCATION_COLUMNS = [c for c in invocations.c if c.name != "dedupe_key"]
_APPROVAL_COLUMNS = [
    approvals.c.status.label("a_status"),
    approvals.c.reason.label("a_reason"),
    approvals.c.actor_id.label("a_actor_id"),
    approvals.c.requested_at.label("a_requested_at"),
    approvals.c.expires_at.label("a_expires_at"),
    approvals.c.decision_at.label("a_decision_at"),
]


def _select_invocations() -> sa.Select[Any]:
    return sa.select(*_INVOCATION_COLUMNS, *_APPROVAL_COLUMNS).select_from(
        invocations.outerjoin(approvals, approvals.c.invocation_id == invocations.c.id)
    )


def _invocation(row: sa.Row[Any]) -> Invocation:
    m = row._mapping
    approval = None
    if m["a_status"] is not None:
        approval = Approval(
            status=m["a_status"],
            reason=m["a_reason"],
            actor_id=m["a_actor_id"],
            requested_at=m["a_requested_at"],
            expires_at=m["a_expires_at"],
            decision_at=m["a_decision_at"],
        )
    values = {c.name: m[c.name] for c in _INVOCATION_COLUMNS}
    values["input"] = values["input"] if isinstance(values["input"], dict) else {}
    return Invocation(**values, approval=approval)


_BY_ID = _select_invocations().where(invocations.c.id == sa.bindparam("inv_id"))
_BY_DEDUPE = _select_invocations().where(invocations.c.dedupe_key == sa.bindparam("key"))


def get_invocation(conn: sa.Connection, invocation_id: str) -> Invocation | None:
    row = conn.execute(_BY_ID, {"inv_id": invocation_id}).first()
    return _invocation(row) if row else None


def find_by_dedupe_key(conn: sa.Connection, dedupe_key: str) -> Invocation | None:
    row = conn.execute(_BY_DEDUPE, {"key": dedupe_key}).first()
    return _invocation(row) if row else None


def release_dedupe_key(conn: sa.Connection, invocation_id: str, dedupe_key: str) -> None:
    """The invocation no longer answers repeats of its key (a later call takes the key over)."""
    conn.execute(
        invocations.update()
        .where(invocations.c.id == invocation_id, invocations.c.dedupe_key == dedupe_key)
        .values(dedupe_key=None)
    )


def _insert_ignoring_conflicts(dialect: str) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(invocations).on_conflict_do_nothing().returning(invocations.c.id)


_INSERT_INVOCATION = {d: _insert_ignoring_conflicts(d) for d in ("postgresql", "sqlite")}


def insert_invocation(conn: sa.Connection, values: dict[str, Any]) -> bool:
    """Insert unless the dedupe key (or id) exists already; False if it did."""
    result = conn.execute(_INSERT_INVOCATION[conn.dialect.name], values)
    return result.first() is not None


def change_status(
    conn: sa.Connection,
    invocation_id: str,
    *,
    old: str,
    new: str,
    values: dict[str, Any],
) -> bool:
    """Compare-and-set: move `old` → `new` (plus `values`); False if the status was not `old`."""
    result = conn.execute(
        invocations.update()
        .where(invocations.c.id == invocation_id, invocations.c.status == old)
        .values(status=new, **values)
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class InvocationFilter:
    statuses: Sequence[str] = ()
    agent: str | None = None
    source: str | None = None
    tool: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_invocations(
    conn: sa.Connection, flt: InvocationFilter, *, offset: int, limit: int
) -> tuple[list[Invocation], int]:
    conds: list[sa.ColumnElement[bool]] = []
    if flt.statuses:
        conds.append(invocations.c.status.in_(list(flt.statuses)))
    if flt.agent:
        conds.append(
            sa.or_(
                invocations.c.agent_record_id == flt.agent,
                invocations.c.agent_id == flt.agent,
            )
        )
    if flt.source:
        conds.append(invocations.c.source == flt.source)
    if flt.tool:
        conds.append(invocations.c.tool == flt.tool)
    if flt.since is not None:
        conds.append(invocations.c.submitted_at >= flt.since)
    if flt.until is not None:
        conds.append(invocations.c.submitted_at <= flt.until)
    total = conn.execute(sa.select(sa.func.count()).select_from(invocations).where(*conds))
    order = (invocations.c.submitted_at.desc(), invocations.c.id.desc())
    # The page's ids first (ix_invocations_page covers them), then its rows: a deep page's
    # offset walks the index, not the invocations joined with their approvals.
    ids = sa.select(invocations.c.id).where(*conds).order_by(*order).offset(offset).limit(limit)
    q = _select_invocations().where(invocations.c.id.in_(ids)).order_by(*order)
    return [_invocation(r) for r in conn.execute(q)], int(total.scalar_one())


def overdue_pending(conn: sa.Connection, now: datetime, *, limit: int = 500) -> list[str]:
    q = (
        sa.select(invocations.c.id)
        .join(approvals, approvals.c.invocation_id == invocations.c.id)
        .where(invocations.c.status == "pending_approval", approvals.c.expires_at <= now)
        .order_by(approvals.c.expires_at)
        .limit(limit)
    )
    return list(conn.execute(q).scalars())


def next_expiry(conn: sa.Connection) -> datetime | None:
    q = (
        sa.select(sa.func.min(approvals.c.expires_at))
        .join(invocations, approvals.c.invocation_id == invocations.c.id)
        .where(invocations.c.status == "pending_approval")
    )
    value: datetime | None = conn.execute(q).scalar_one_or_none()
    return value


def runtime_agent_ids(conn: sa.Connection) -> list[str]:
    """The distinct runtime agent ids that submitted invocations."""
    q = (
        sa.select(invocations.c.agent_id)
        .where(invocations.c.agent_id.is_not(None))
        .distinct()
        .order_by(invocations.c.agent_id)
    )
    return list(conn.execute(q).scalars())


def count_by_status(conn: sa.Connection) -> dict[str, int]:
    q = sa.select(invocations.c.status, sa.func.count()).group_by(invocations.c.status)
    return {status: int(n) for status, n in conn.execute(q)}


def delete_finished_before(
    conn: sa.Connection, cutoff: datetime, open_statuses: Iterable[str], *, limit: int
) -> int:
    """Delete up to `limit` invocations not in `open_statuses` last changed before `cutoff`;
    their events and approvals go with them (ON DELETE CASCADE)."""
    old = [invocations.c.updated_at < cutoff, invocations.c.status.not_in(list(open_statuses))]
    ids = sa.select(invocations.c.id).where(*old).order_by(invocations.c.updated_at).limit(limit)
    result = conn.execute(invocations.delete().where(invocations.c.id.in_(ids.scalar_subquery())))
    return int(result.rowcount)


def all_invocation_ids(conn: sa.Connection) -> list[str]:
    return list(conn.execute(sa.select(invocations.c.id).order_by(invocations.c.id)).scalars())


# -- approvals --------------------------------------------------------------------------------


def insert_approval(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(approvals.insert(), values)


def update_approval(conn: sa.Connection, invocation_id: str, values: dict[str, Any]) -> None:
    conn.execute(
        approvals.update().where(approvals.c.invocation_id == invocation_id).values(**values)
    )


def _pg_decision_statement(n_events: int) -> sa.TextClause:
    """A new invocation's `n_events` events, its approval row and the NOTIFY in one statement
    (data-modifying CTEs). Written as text so that it is compiled once and cached."""

    def cols(t: sa.Table) -> str:
        return ", ".join(c.name for c in t.c)

    def row(t: sa.Table, prefix: str) -> str:
        return "(" + ", ".join(f":{prefix}{c.name}" for c in t.c) + ")"

    ev, ap = invocation_events, approvals
    prefixes = [f"e{i}_" for i in range(n_events)]
    sql = (
        f"WITH ev AS (INSERT INTO {ev.name} ({cols(ev)}) "
        f"VALUES {', '.join(row(ev, p) for p in prefixes)}), "
        f"ap AS (INSERT INTO {ap.name} ({cols(ap)}) VALUES {row(ap, 'a_')}) "
        f"SELECT pg_notify('{NOTIFY_CHANNEL}', :payload)"
    )
    binds = [
        sa.bindparam(f"{prefix}{c.name}", type_=c.type)
        for t, prefix in [*((ev, p) for p in prefixes), (ap, "a_")]
        for c in t.c
    ]
    return sa.text(sql).bindparams(*binds, sa.bindparam("payload", type_=sa.Text))


#: The usual decisions: received → decided, and the same → executing when the executor (the MCP
#: proxy) runs an approved call at once.
_PG_DECISIONS = {n: _pg_decision_statement(n) for n in (2, 3)}


def insert_decision(
    conn: sa.Connection,
    events: Sequence[dict[str, Any]],
    approval: dict[str, Any],
    notice: dict[str, Any],
) -> None:
    """A new invocation's events, its approval row and the NOTIFY.

    On PostgreSQL, the usual two or three events are one statement (data-modifying CTEs),
    sparing round trips on the hook and MCP paths; otherwise (SQLite, or the judge's events
    too), several statements.
    """
    statement = _PG_DECISIONS.get(len(events))
    if conn.dialect.name != "postgresql" or statement is None:
        insert_events(conn, events)
        insert_approval(conn, approval)
        notify(conn, notice)
        return
    params = {f"e{i}_{k}": v for i, event in enumerate(events) for k, v in event.items()}
    params.update({f"a_{k}": v for k, v in approval.items()})
    params["payload"] = json.dumps(notice, separators=(",", ":"))
    conn.execute(statement, params)


# -- events -----------------------------------------------------------------------------------


_NEXT_EVENT_COLUMNS = (
    "id", "invocation_id", "type", "from_status", "status", "actor", "created_at", "data"
)  # fmt: skip
# The event after an invocation's last one, numbered in the same statement (its status was just
# compare-and-set in this transaction, so no other writer numbers an event of it meanwhile).
_APPEND_EVENT = invocation_events.insert().from_select(
    [*_NEXT_EVENT_COLUMNS, "seq"],
    sa.select(
        *(sa.bindparam(c, type_=invocation_events.c[c].type) for c in _NEXT_EVENT_COLUMNS),
        sa.func.coalesce(sa.func.max(invocation_events.c.seq), 0) + 1,
    ).where(invocation_events.c.invocation_id == sa.bindparam("invocation_id")),
)


def append_event(conn: sa.Connection, row: dict[str, Any]) -> None:
    """Insert `row` (an event without `seq`) as its invocation's next event."""
    conn.execute(_APPEND_EVENT, row)


def insert_events(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(invocation_events.insert(), list(rows))


def list_events(conn: sa.Connection, invocation_id: str) -> list[Event]:
    q = (
        sa.select(invocation_events)
        .where(invocation_events.c.invocation_id == invocation_id)
        .order_by(invocation_events.c.seq)
    )
    return [Event(**r._mapping) for r in conn.execute(q)]


# -- rules ------------------------------------------------------------------------------------


def _rule(row: sa.Row[Any]) -> Rule:
    m = dict(row._mapping)
    m["order"] = m.pop("position")
    for key in ("server_patterns", "tool_patterns", "agent_cuids"):
        m[key] = list(m[key] or [])
    m["enabled"] = bool(m["enabled"])
    m["shadow"] = bool(m.get("shadow"))
    m["min_confidence"] = float(m.get("min_confidence") or 0)
    return Rule(**m)


def list_rules(conn: sa.Connection, *, enabled_only: bool = False) -> list[Rule]:
    q = sa.select(approval_rules).order_by(approval_rules.c.position, approval_rules.c.created_at)
    if enabled_only:
        q = q.where(approval_rules.c.enabled.is_(True))
    return [_rule(r) for r in conn.execute(q)]


# The enabled rules of the newest `rules_version` this process has read, per database. A
# decision reads the version with the policy (`read_gateway_snapshot`) and takes the rules from
# here while it is the cached one: every rule write bumps it in its own transaction, so a
# decision never uses rules older than the version its transaction saw. (On PostgreSQL a write
# committed between the two reads can put newer rules under the older version: a later reader
# of the newer version misses and reloads; the rules are never older than without the cache.)
_enabled_cache: weakref.WeakKeyDictionary[sa.Engine, tuple[int, tuple[Rule, ...]]] = (
    weakref.WeakKeyDictionary()
)


def enabled_rules(conn: sa.Connection, rules_version: int | None) -> Sequence[Rule]:
    """The enabled rules in order, from the cache while `rules_version` is the cached one
    (None: no policy row, nothing to key a cache on)."""
    if rules_version is None:
        return list_rules(conn, enabled_only=True)
    cached = _enabled_cache.get(conn.engine)
    if cached is not None and cached[0] == rules_version:
        return cached[1]
    loaded = tuple(list_rules(conn, enabled_only=True))
    _enabled_cache[conn.engine] = (rules_version, loaded)
    return loaded


def _rules_changed(conn: sa.Connection) -> None:
    """Every write to approval_rules calls this in its transaction (see `enabled_rules`)."""
    conn.execute(
        gateway_policy.update()
        .where(gateway_policy.c.id == 1)
        .values(rules_version=gateway_policy.c.rules_version + 1)
    )


def get_rule(conn: sa.Connection, rule_id: str) -> Rule | None:
    row = conn.execute(sa.select(approval_rules).where(approval_rules.c.id == rule_id)).first()
    return _rule(row) if row else None


def insert_rule(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(approval_rules.insert().values(**values))
    _rules_changed(conn)


def update_rule(conn: sa.Connection, rule_id: str, values: dict[str, Any]) -> None:
    conn.execute(approval_rules.update().where(approval_rules.c.id == rule_id).values(**values))
    _rules_changed(conn)


def delete_rule(conn: sa.Connection, rule_id: str) -> None:
    conn.execute(approval_rules.delete().where(approval_rules.c.id == rule_id))
    _rules_changed(conn)


def set_positions(conn: sa.Connection, ordered_ids: Sequence[str]) -> None:
    """Renumber rules 0..n-1 in the given order (only rows whose position changes are written)."""
    current = dict(conn.execute(sa.select(approval_rules.c.id, approval_rules.c.position)).all())
    changed = [
        {"rid": rid, "pos": pos} for pos, rid in enumerate(ordered_ids) if current.get(rid) != pos
    ]
    if changed:
        conn.execute(
            approval_rules.update()
            .where(approval_rules.c.id == sa.bindparam("rid"))
            .values(position=sa.bindparam("pos")),
            changed,
        )
        _rules_changed(conn)


# -- default policy ---------------------------------------------------------------------------


def read_policy(conn: sa.Connection) -> dict[str, Any] | None:
    row = conn.execute(sa.select(gateway_policy).where(gateway_policy.c.id == 1)).first()
    return dict(row._mapping) if row else None


def lock_policy(conn: sa.Connection, now: datetime) -> None:
    """Make sure the policy row exists and hold its lock until the transaction ends.

    Rule edits take this lock so that concurrent inserts and moves keep one consistent order
    (SQLite transactions already hold the database's write lock).
    """
    if read_policy(conn) is None:
        # another transaction may create it first: that is fine
        with contextlib.suppress(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(gateway_policy.insert().values(id=1, updated_at=now))
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.select(gateway_policy.c.id).where(gateway_policy.c.id == 1).with_for_update()
        )


_SNAPSHOT = sa.select(
    sa.select(gateway_policy.c.provider).where(gateway_policy.c.id == 1).scalar_subquery(),
    sa.select(gateway_policy.c.approval_timeout_seconds)
    .where(gateway_policy.c.id == 1)
    .scalar_subquery(),
    sa.select(gateway_policy.c.updated_at).where(gateway_policy.c.id == 1).scalar_subquery(),
    sa.select(gateway_policy.c.rules_version).where(gateway_policy.c.id == 1).scalar_subquery(),
    sa.select(agent_sync_settings.c.default_agent_id)
    .where(agent_sync_settings.c.id == 1)
    .scalar_subquery(),
)


@dataclass(frozen=True)
class GatewaySnapshot:
    policy_row: dict[str, Any]  # its values are None without a policy row
    rules_version: int | None
    default_agent_id: str | None


def read_gateway_snapshot(conn: sa.Connection) -> GatewaySnapshot:
    """What a decision reads first, in one round trip: the policy row, the rules' version and
    the default agent id."""
    provider, timeout, updated_at, version, default_agent = conn.execute(_SNAPSHOT).one()
    policy_row = {
        "provider": provider,
        "approval_timeout_seconds": timeout,
        "updated_at": updated_at,
    }
    return GatewaySnapshot(policy_row, version, default_agent)


def write_policy(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(gateway_policy.update().where(gateway_policy.c.id == 1).values(**values))


# -- registry lookups the gateway needs (read-only) ---------------------------------------------


def agents_bound_to(conn: sa.Connection, external_agent_id: str) -> list[str]:
    """Agents holding a managed-agent binding for this external agent id (any account)."""
    q = (
        sa.select(managed_agent_bindings.c.agent_id)
        .where(managed_agent_bindings.c.external_agent_id == external_agent_id)
        .distinct()
    )
    return list(conn.execute(q).scalars())


_AGENT_INFO = sa.select(
    agents.c.id,
    agents.c.name,
    agents.c.enabled,
    agents.c.removed_at,
    agents.c.removal_reason,
    agents.c.charter,
)
_BY_RUNTIME_ID = _AGENT_INFO.join(
    agent_runtime_ids, agent_runtime_ids.c.agent_id == agents.c.id
).where(agent_runtime_ids.c.runtime_id == sa.bindparam("rid"))
_BY_RUNTIME_IDS = (
    _AGENT_INFO.add_columns(agent_runtime_ids.c.runtime_id)
    .join(agent_runtime_ids, agent_runtime_ids.c.agent_id == agents.c.id)
    .where(agent_runtime_ids.c.runtime_id.in_(sa.bindparam("rids", expanding=True)))
)
_AGENT_BY_ID = _AGENT_INFO.where(agents.c.id == sa.bindparam("agent_id"))
_DEFAULT_AGENT = sa.select(agent_sync_settings.c.default_agent_id).where(
    agent_sync_settings.c.id == 1
)


def _agent_info(row: Any) -> AgentInfo | None:
    if row is None:
        return None
    return AgentInfo(
        id=row.id,
        name=row.name,
        enabled=bool(row.enabled),
        retired=row.removed_at is not None,
        removal_reason=row.removal_reason,
        charter=row.charter,
    )


def agent_for_runtime_id(conn: sa.Connection, runtime_id: str, *fallbacks: str) -> AgentInfo | None:
    """The agent owning a runtime id (else the first of `fallbacks` that has one, still in one
    query), active or retired."""
    if not fallbacks:
        return _agent_info(conn.execute(_BY_RUNTIME_ID, {"rid": runtime_id}).first())
    order = [runtime_id, *fallbacks]
    rows = {r.runtime_id: r for r in conn.execute(_BY_RUNTIME_IDS, {"rids": order})}
    return next((_agent_info(rows[rid]) for rid in order if rid in rows), None)


def agent_info(conn: sa.Connection, agent_id: str) -> AgentInfo | None:
    return _agent_info(conn.execute(_AGENT_BY_ID, {"agent_id": agent_id}).first())


def agent_id_for_vm_cuid(conn: sa.Connection, vm_cuid: str) -> str | None:
    """The registry agent synced from this ValidMind record (active or retired)."""
    value: str | None = conn.execute(
        sa.select(agents.c.id).where(agents.c.vm_cuid == vm_cuid)
    ).scalar_one_or_none()
    return value


def default_agent_id(conn: sa.Connection) -> str | None:
    value: str | None = conn.execute(_DEFAULT_AGENT).scalar_one_or_none()
    return value


def agent_states(conn: sa.Connection, agent_ids: Iterable[str]) -> list[AgentState]:
    ids = sorted(set(agent_ids))
    if not ids:
        return []
    q = sa.select(
        agents.c.id, agents.c.name, agents.c.enabled, agents.c.removed_at, agents.c.removal_reason
    ).where(agents.c.id.in_(ids))
    return [
        AgentState(
            id=r.id,
            name=r.name,
            live=r.removed_at is None,
            enabled=bool(r.enabled),
            removal_reason=r.removal_reason,
        )
        for r in conn.execute(q)
    ]


# -- wake-ups ---------------------------------------------------------------------------------


def notify(conn: sa.Connection, payload: dict[str, Any]) -> None:
    """PostgreSQL: NOTIFY every replica when this transaction commits (nothing on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, json.dumps(payload, separators=(",", ":"))))
        )

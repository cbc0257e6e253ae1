"""SQL of the operator-change audit log."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from atryum.db.tables import audit_log
from atryum.db.types import utcnow
from atryum.identity.principal import OperatorPrincipal


class _Entity(Protocol):
    @property
    def id(self) -> str: ...


E = TypeVar("E", bound=_Entity)


@dataclass(frozen=True)
class AuditEntry:
    id: str
    at: datetime
    actor: str
    actor_name: str
    actor_method: str
    entity: str
    entity_id: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class AuditFilter:
    entity: str | None = None
    entity_id: str | None = None
    actor: str | None = None  # the principal's reference or its display name
    since: datetime | None = None


def _plain(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A JSON-safe copy: timestamps and other values become their string form."""
    if value is None:
        return None
    plain: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return plain


def record_change(
    conn: sa.Connection,
    *,
    actor: OperatorPrincipal | str,
    entity: str,
    entity_id: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Record one operator change in the caller's transaction. `before`/`after` are the entity's
    state around the change (None when it did not exist); they must never hold a secret."""
    if isinstance(actor, OperatorPrincipal):
        ref, name, method = actor.ref, actor.name, str(actor.method)
    else:
        ref, name, method = actor, actor, ""
    conn.execute(
        audit_log.insert().values(
            id=str(uuid.uuid4()),
            at=utcnow(),
            actor=ref,
            actor_name=name,
            actor_method=method,
            entity=entity,
            entity_id=entity_id,
            action=action,
            before=_plain(before),
            after=_plain(after),
        )
    )


def _where(flt: AuditFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if flt.entity:
        where.append(audit_log.c.entity == flt.entity)
    if flt.entity_id:
        where.append(audit_log.c.entity_id == flt.entity_id)
    if flt.actor:
        where.append(sa.or_(audit_log.c.actor == flt.actor, audit_log.c.actor_name == flt.actor))
    if flt.since is not None:
        where.append(audit_log.c.at >= flt.since)
    return where


def list_changes(
    conn: sa.Connection, *, flt: AuditFilter, offset: int, limit: int
) -> tuple[list[AuditEntry], int]:
    """Newest first, and the number of records the filter matches."""
    where = _where(flt)
    total = conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(*where)).scalar()
    rows = conn.execute(
        sa.select(audit_log)
        .where(*where)
        .order_by(audit_log.c.at.desc(), audit_log.c.id)
        .offset(offset)
        .limit(limit)
    )
    return [AuditEntry(**row._mapping) for row in rows], int(total or 0)


def record_entity_change(
    conn: sa.Connection,
    *,
    actor: OperatorPrincipal | str,
    entity: str,
    action: str,
    before: E | None,
    after: E | None,
    shown: Callable[[E], dict[str, Any]],
) -> None:
    """`record_change` of an entity object with an `id`, as `shown` (which masks its secrets)
    shows it: created (no `before`), changed, or deleted (no `after`)."""
    subject = after or before
    assert subject is not None, "a change has a before or an after"
    record_change(
        conn,
        actor=actor,
        entity=entity,
        entity_id=subject.id,
        action=action,
        before=shown(before) if before is not None else None,
        after=shown(after) if after is not None else None,
    )

"""Status changes with their events: one compare-and-set, one event row, one notification.

Every status change of an invocation goes through `change_status` (or `first_events` at
submission), inside the caller's transaction, so a status never changes without its event and
an event never exists without its change. `rebuild_status` replays an event history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from atryum.gateway import store
from atryum.gateway.hub import Change
from atryum.gateway.models import Event, Invocation, can_change


def event_row(
    *,
    invocation_id: str,
    seq: int | None,
    old: str | None,
    new: str,
    actor: str | None,
    now: datetime,
    data: dict[str, Any],
) -> dict[str, Any]:
    """An event row; without `seq` when None (`store.append_event` numbers it)."""
    row: dict[str, Any] = {
        "id": store.new_id(),
        "invocation_id": invocation_id,
        "type": new,
        "from_status": old,
        "status": new,
        "actor": actor,
        "created_at": now,
        "data": data,
    }
    if seq is not None:
        row["seq"] = seq
    return row


RULE_EVALUATED = "rule_evaluated"  # the charter judge's verdict on one rule (no status change)
# Event types that record something without changing the status.
NOTES = frozenset({RULE_EVALUATED})


def note_row(
    *,
    invocation_id: str,
    seq: int,
    type_: str,
    status: str,
    now: datetime,
    data: dict[str, Any],
) -> dict[str, Any]:
    """An event that records something about the invocation without changing its status."""
    row = event_row(
        invocation_id=invocation_id, seq=seq, old=status, new=status, actor=None, now=now, data=data
    )
    return {**row, "type": type_}


def change_status(
    conn: sa.Connection,
    inv: Invocation,
    new: str,
    *,
    now: datetime,
    actor: str | None,
    data: dict[str, Any],
    values: dict[str, Any] | None = None,
    outbox: list[Change],
) -> bool:
    """Move `inv` from the status it was read with to `new`; False if someone else moved it."""
    if not can_change(inv.status, new):
        raise ValueError(f"no transition {inv.status} → {new}")
    moved = store.change_status(
        conn, inv.id, old=inv.status, new=new, values={"updated_at": now, **(values or {})}
    )
    if not moved:
        return False
    row = event_row(
        invocation_id=inv.id, seq=None, old=inv.status, new=new, actor=actor, now=now, data=data
    )
    store.append_event(conn, row)  # numbers it
    announce(conn, inv.id, new, outbox)
    return True


def announce(conn: sa.Connection, invocation_id: str, status: str, outbox: list[Change]) -> None:
    store.notify(conn, {"id": invocation_id, "status": status})
    outbox.append(Change(invocation_id, status))


def rebuild_status(events: Sequence[Event]) -> str | None:
    """Replay an invocation's events; raises ValueError if the history is not a valid chain."""
    status: str | None = None
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            raise ValueError(f"event {event.id}: seq {event.seq}, expected {expected_seq}")
        if event.type in NOTES:  # a note: it must leave the status as it is
            if event.from_status != status or event.status != status:
                raise ValueError(f"event {event.id}: a {event.type} note changes the status")
            continue
        if event.from_status != status or not can_change(status, event.status):
            raise ValueError(
                f"event {event.id}: {event.from_status} → {event.status} after {status}"
            )
        status = event.status
    return status

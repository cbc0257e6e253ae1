"""Retention: finished invocations (and their events) older than `[retention] invocations_days`
are deleted by a background sweep. Off by default (0 = keep everything): an audit trail is
deleted only because an operator asked for it. Open calls (received, pending, executing) are
never deleted, whatever their age."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from atryum.db.types import utcnow
from atryum.gateway import store, tx
from atryum.gateway.models import OPEN_STATUSES

BATCH = 500  # rows per transaction, so the sweep never holds the write lock for long


def purge_finished(engine: sa.Engine, *, days: float) -> int:
    """Delete what is past retention, in short transactions; returns how many were deleted."""
    cutoff = utcnow() - timedelta(days=days)
    total = 0
    while True:
        with tx.begin(engine) as conn:
            deleted = store.delete_finished_before(conn, cutoff, OPEN_STATUSES, limit=BATCH)
        total += deleted
        if deleted < BATCH:
            return total

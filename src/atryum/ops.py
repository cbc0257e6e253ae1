"""Probes: `/healthz` (liveness) and `/readyz` (readiness), as Kubernetes uses them.

Liveness answers 200 whenever the process serves, with the database's state in the body, so a
liveness probe does not restart a pod during a database blip; readiness answers 503 until the
database is reachable and its migrations are at head, so a load balancer sends no traffic before.
Database errors are logged, never echoed: the body says only a state word.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from atryum.db import migrate

log = logging.getLogger("atryum.ops")
router = APIRouter(tags=["ops"])

DbState = Literal["ok", "unreachable", "migrations_pending"]


def _database_state(engine: sa.Engine, *, check_migrations: bool) -> DbState:
    try:
        if check_migrations:
            at_head = migrate.current_revision(engine) == migrate.head_revision()
            return "ok" if at_head else "migrations_pending"
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        log.warning("database check failed: %s: %s", type(exc).__name__, exc)
        return "unreachable"
    return "ok"


@router.get("/healthz")
def healthz(request: Request) -> dict[str, Any]:
    """Liveness: 200 while the process serves; `database` is `ok` or `unreachable`."""
    state = _database_state(request.app.state.ctx.engine, check_migrations=False)
    return {"status": "ok", "database": state}


@router.get("/readyz", responses={503: {"description": "not ready"}})
def readyz(request: Request) -> Any:
    """Readiness: 200 once the database is reachable and migrated to head, else 503."""
    state = _database_state(request.app.state.ctx.engine, check_migrations=True)
    if state == "ok":
        return {"status": "ready", "database": state}
    message = {
        "unreachable": "the database is unreachable",
        "migrations_pending": "the database is not migrated to this version yet",
    }[state]
    return JSONResponse(
        {"status": "not_ready", "database": state, "error": {"message": message}}, 503
    )

"""Server-side UI sessions (backend-for-frontend): the browser holds only an opaque id.

A session ends at logout, when revoked, after `session_idle_minutes` without a request, or
`session_absolute_hours` after the login, whichever comes first. Ended and expired sessions are
refused at once and forgotten a day later.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from atryum.config import OperatorConfig
from atryum.db.types import utcnow
from atryum.identity import store
from atryum.identity.principal import OperatorPrincipal, Role, parse_role
from atryum.identity.secrets import digest, new_secret

# A request refreshes the idle clock at most this often (one write per minute, not per request).
TOUCH_EVERY = timedelta(seconds=60)
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Session:
    principal: OperatorPrincipal
    csrf_token: str
    expires_at: datetime


def create_session(
    engine: sa.Engine,
    *,
    issuer: str,
    subject: str,
    name: str,
    role: Role,
    settings: OperatorConfig,
) -> str:
    """A new session; returns its id (the cookie value), which is stored only hashed."""
    session_id = new_secret()
    now = utcnow()
    with engine.begin() as conn:
        store.delete_sessions_before(conn, now - FORGET_AFTER)
        store.insert_session(
            conn,
            {
                "id_hash": digest(session_id),
                "issuer": issuer,
                "subject": subject,
                "name": name,
                "role": role,
                "csrf_token": secrets.token_urlsafe(24),
                "created_at": now,
                "last_seen_at": now,
                "expires_at": now + timedelta(hours=settings.session_absolute_hours),
            },
        )
    return session_id


def resume_session(
    engine: sa.Engine, *, session_id: str, settings: OperatorConfig
) -> Session | None:
    """The live session of this id (and its idle clock refreshed), or None."""
    id_hash = digest(session_id)
    now = utcnow()
    with engine.connect() as conn:
        row = store.get_session(conn, id_hash)
    if row is None or row["ended_at"] is not None or row["expires_at"] <= now:
        return None
    if row["last_seen_at"] + timedelta(minutes=settings.session_idle_minutes) <= now:
        return None
    role = parse_role(row["role"])
    if role is None:
        return None
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        with engine.begin() as conn:
            store.touch_session(conn, id_hash, now)
    principal = OperatorPrincipal(
        issuer=row["issuer"], subject=row["subject"], name=row["name"], method="session", role=role
    )
    return Session(principal=principal, csrf_token=row["csrf_token"], expires_at=row["expires_at"])


def end_session(engine: sa.Engine, *, session_id: str) -> bool:
    with engine.begin() as conn:
        return store.end_session(conn, digest(session_id), utcnow())


def end_sessions_of(engine: sa.Engine, *, issuer: str, subject: str) -> int:
    """Revoke every live session of one person (e.g. after their access was removed)."""
    with engine.begin() as conn:
        return store.end_sessions_of(conn, issuer, subject, utcnow())

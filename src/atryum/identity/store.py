"""SQL of operator sessions, pending logins and operator API tokens. No policy here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from atryum.db.tables import operator_api_tokens, operator_logins, operator_sessions

# -- sessions ---------------------------------------------------------------------------------


def insert_session(conn: sa.Connection, row: dict[str, Any]) -> None:
    conn.execute(operator_sessions.insert().values(**row))


def get_session(conn: sa.Connection, id_hash: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(operator_sessions).where(operator_sessions.c.id_hash == id_hash)
    ).first()
    return dict(row._mapping) if row else None


def touch_session(conn: sa.Connection, id_hash: str, now: datetime) -> None:
    conn.execute(
        operator_sessions.update()
        .where(operator_sessions.c.id_hash == id_hash)
        .values(last_seen_at=now)
    )


def end_session(conn: sa.Connection, id_hash: str, now: datetime) -> bool:
    done = conn.execute(
        operator_sessions.update()
        .where(operator_sessions.c.id_hash == id_hash, operator_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    return done.rowcount > 0


def end_sessions_of(conn: sa.Connection, issuer: str, subject: str, now: datetime) -> int:
    done = conn.execute(
        operator_sessions.update()
        .where(
            operator_sessions.c.issuer == issuer,
            operator_sessions.c.subject == subject,
            operator_sessions.c.ended_at.is_(None),
        )
        .values(ended_at=now)
    )
    return done.rowcount


def delete_sessions_before(conn: sa.Connection, cutoff: datetime) -> None:
    """Forget sessions that expired or ended before `cutoff`."""
    conn.execute(
        operator_sessions.delete().where(
            sa.or_(operator_sessions.c.expires_at < cutoff, operator_sessions.c.ended_at < cutoff)
        )
    )


# -- logins under way -------------------------------------------------------------------------


def insert_login(conn: sa.Connection, row: dict[str, Any]) -> None:
    conn.execute(operator_logins.insert().values(**row))


def take_login(conn: sa.Connection, state_hash: str) -> dict[str, Any] | None:
    """The login of this state, removed so it cannot be used twice."""
    row = conn.execute(
        sa.select(operator_logins).where(operator_logins.c.state_hash == state_hash)
    ).first()
    if row is None:
        return None
    done = conn.execute(operator_logins.delete().where(operator_logins.c.state_hash == state_hash))
    return dict(row._mapping) if done.rowcount else None


def delete_logins_before(conn: sa.Connection, cutoff: datetime) -> None:
    conn.execute(operator_logins.delete().where(operator_logins.c.created_at < cutoff))


# -- operator API tokens ----------------------------------------------------------------------

_TOKEN_COLUMNS = [c for c in operator_api_tokens.c if c.name != "token_hash"]


def insert_token(conn: sa.Connection, row: dict[str, Any]) -> None:
    conn.execute(operator_api_tokens.insert().values(**row))


def list_tokens(conn: sa.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(*_TOKEN_COLUMNS).order_by(
            operator_api_tokens.c.created_at.desc(), operator_api_tokens.c.id
        )
    )
    return [dict(r._mapping) for r in rows]


def get_token(conn: sa.Connection, token_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(*_TOKEN_COLUMNS).where(operator_api_tokens.c.id == token_id)
    ).first()
    return dict(row._mapping) if row else None


def token_by_hash(conn: sa.Connection, token_hash: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(*_TOKEN_COLUMNS).where(operator_api_tokens.c.token_hash == token_hash)
    ).first()
    return dict(row._mapping) if row else None


def update_token(conn: sa.Connection, token_id: str, values: dict[str, Any]) -> None:
    conn.execute(
        operator_api_tokens.update().where(operator_api_tokens.c.id == token_id).values(**values)
    )

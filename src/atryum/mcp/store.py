"""SQL for the upstream MCP servers. No rules here."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from atryum.db.tables import mcp_servers
from atryum.mcp.models import Server


def _server(row: sa.Row[Any]) -> Server:
    return Server(**row._mapping)


def list_servers(conn: sa.Connection) -> list[Server]:
    rows = conn.execute(sa.select(mcp_servers).order_by(mcp_servers.c.name))
    return [_server(r) for r in rows]


def count(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(mcp_servers)).scalar_one())


def find(conn: sa.Connection, name_or_slug: str) -> Server | None:
    """By name first, then by endpoint slug."""
    for column in (mcp_servers.c.name, mcp_servers.c.endpoint_slug):
        row = conn.execute(sa.select(mcp_servers).where(column == name_or_slug)).first()
        if row is not None:
            return _server(row)
    return None


def name_taken(conn: sa.Connection, *, name: str, slug: str, except_id: str | None) -> str | None:
    """The column (`name` or `endpoint_slug`) another server already uses, if any."""
    for column, value in (("name", name), ("endpoint_slug", slug)):
        q = sa.select(mcp_servers.c.id).where(mcp_servers.c[column] == value)
        if except_id is not None:
            q = q.where(mcp_servers.c.id != except_id)
        if conn.execute(q).first() is not None:
            return column
    return None


def insert(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(sa.insert(mcp_servers).values(**values))


def update(conn: sa.Connection, server_id: str, values: dict[str, Any]) -> None:
    conn.execute(sa.update(mcp_servers).where(mcp_servers.c.id == server_id).values(**values))


def delete(conn: sa.Connection, server_id: str) -> None:
    conn.execute(sa.delete(mcp_servers).where(mcp_servers.c.id == server_id))

"""The servers registry: validation, write-only secrets, bootstrap from `[[upstreams]]`.

The database is the truth once it holds any server: `[[upstreams]]` only seeds an empty table,
so a server an operator disabled or deleted stays so across restarts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from atryum import audit
from atryum.config import UpstreamConfig
from atryum.db.types import utcnow
from atryum.errors import Conflict, InvalidInput, NotFound
from atryum.gateway import store as gateway_store
from atryum.gateway import tx
from atryum.identity.principal import OperatorPrincipal
from atryum.mcp import store
from atryum.mcp.models import HTTP, MASK, MODES, STDIO, UNKNOWN, Server, slugify

Actor = OperatorPrincipal | str

MAX_TIMEOUT = 3600


@dataclass(frozen=True)
class ServerSpec:
    """A server as an operator writes it. `auth_token=None` keeps the stored token (write-only);
    a header or env value equal to the mask keeps the stored value of that key."""

    name: str
    mode: str = STDIO
    base_url: str = ""
    command: str = ""
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    auth_token: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: int = 30
    enabled: bool = True


def _kept(new: Mapping[str, str], old: Mapping[str, str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in new.items():
        key = str(key).strip()
        if not key:
            raise InvalidInput(f"{what} names must not be empty")
        if value == MASK:
            if key not in old:
                raise InvalidInput(f"{what} {key!r}: the masked value can only keep a stored value")
            value = old[key]
        out[key] = str(value)
    return out


def _validated(spec: ServerSpec, old: Server | None) -> dict[str, Any]:
    name = spec.name.strip()
    if not name:
        raise InvalidInput("name must not be empty")
    if spec.mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {spec.mode!r}")
    if spec.mode == STDIO and not spec.command.strip():
        raise InvalidInput("a stdio server needs a command")
    if spec.mode == HTTP and not spec.base_url.strip().startswith(("http://", "https://")):
        raise InvalidInput("an http server needs a base_url starting with http:// or https://")
    if not 1 <= spec.timeout_seconds <= MAX_TIMEOUT:
        raise InvalidInput(f"timeout_seconds must be between 1 and {MAX_TIMEOUT}")
    token = spec.auth_token
    if token is None or token == MASK:
        token = old.auth_token if old else None
    return {
        "name": name,
        "endpoint_slug": slugify(name),
        "mode": spec.mode,
        "base_url": spec.base_url.strip(),
        "command": spec.command.strip(),
        "args": [str(a) for a in spec.args],
        "env": _kept(spec.env, old.env if old else {}, "env"),
        "auth_token": token or None,
        "headers": _kept(spec.headers, old.headers if old else {}, "header"),
        "timeout_seconds": spec.timeout_seconds,
        "enabled": bool(spec.enabled),
    }


def _unique(conn: sa.Connection, values: dict[str, Any], except_id: str | None) -> None:
    taken = store.name_taken(
        conn, name=values["name"], slug=values["endpoint_slug"], except_id=except_id
    )
    if taken == "name":
        raise Conflict(f"a server named {values['name']!r} already exists")
    if taken:
        raise Conflict(
            f"the endpoint /mcp/{values['endpoint_slug']} is already used by another server; "
            "choose a different name"
        )


def _require(conn: sa.Connection, name: str) -> Server:
    server = store.find(conn, name)
    if server is None:
        raise NotFound(f"MCP server {name!r} not found")
    return server


def list_servers(engine: sa.Engine) -> list[Server]:
    with tx.begin(engine) as conn:
        return store.list_servers(conn)


def get_server(engine: sa.Engine, *, name: str) -> Server:
    with tx.begin(engine) as conn:
        return _require(conn, name)


def find_server(engine: sa.Engine, *, name: str) -> Server | None:
    """By name or endpoint slug; None if there is none."""
    with engine.connect() as conn:
        return store.find(conn, name)


def create_server(engine: sa.Engine, *, spec: ServerSpec, actor: Actor) -> Server:
    values = _validated(spec, None)
    now = utcnow()
    with tx.begin(engine) as conn:
        _unique(conn, values, None)
        server_id = gateway_store.new_id()
        store.insert(
            conn,
            {
                **values,
                "id": server_id,
                "connection_status": UNKNOWN,
                "created_at": now,
                "updated_at": now,
            },
        )
        created = _require(conn, values["name"])
        _audited(conn, actor, "create", before=None, after=created)
        return created


def replace_server(engine: sa.Engine, *, name: str, spec: ServerSpec, actor: Actor) -> Server:
    with tx.begin(engine) as conn:
        old = _require(conn, name)
        values = _validated(spec, old)
        _unique(conn, values, old.id)
        store.update(conn, old.id, {**values, "updated_at": utcnow()})
        new = _require(conn, values["name"])
        _audited(conn, actor, "update", before=old, after=new)
        return new


def delete_server(engine: sa.Engine, *, name: str, disable: bool, actor: Actor) -> Server | None:
    """Delete the server, or with `disable` keep it disabled (returned)."""
    with tx.begin(engine) as conn:
        old = _require(conn, name)
        if not disable:
            store.delete(conn, old.id)
            _audited(conn, actor, "delete", before=old, after=None)
            return None
        store.update(conn, old.id, {"enabled": False, "updated_at": utcnow()})
        new = _require(conn, old.name)
        _audited(conn, actor, "disable", before=old, after=new)
        return new


def record_status(engine: sa.Engine, *, server_id: str, status: str, error: str | None) -> None:
    """The outcome of the last connection attempt (already redacted by the caller)."""
    with tx.begin(engine) as conn:
        store.update(
            conn,
            server_id,
            {
                "connection_status": status,
                "last_checked_at": utcnow(),
                "last_error_summary": error[:500] if error else None,
            },
        )


def bootstrap(engine: sa.Engine, *, upstreams: Sequence[UpstreamConfig]) -> int:
    """Seed the table from `[[upstreams]]` while it is empty; returns how many were added."""
    if not upstreams:
        return 0
    now = utcnow()
    with tx.begin(engine) as conn:
        if store.count(conn):
            return 0
        for up in upstreams:
            values = _validated(_spec_of(up), None)
            _unique(conn, values, None)
            store.insert(
                conn,
                {
                    **values,
                    "id": gateway_store.new_id(),
                    "connection_status": UNKNOWN,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        return len(upstreams)


def _spec_of(up: UpstreamConfig) -> ServerSpec:
    return ServerSpec(
        name=up.name,
        mode=up.mode,
        base_url=up.base_url,
        command=up.command,
        args=up.args,
        env={k: v.get_secret_value() for k, v in up.env.items()},
        auth_token=up.auth_token.get_secret_value() if up.auth_token else None,
        headers={k: v.get_secret_value() for k, v in up.headers.items()},
        timeout_seconds=up.timeout_seconds,
        enabled=up.enabled,
    )


def masked(server: Server) -> dict[str, Any]:
    """The server as an answer shows it: secrets replaced by the mask."""
    return {
        "id": server.id,
        "name": server.name,
        "endpoint_slug": server.endpoint_slug,
        "mode": server.mode,
        "base_url": server.base_url,
        "command": server.command,
        "args": server.args,
        "env": {k: MASK for k in server.env},
        "auth_token": MASK if server.auth_token else None,
        "has_auth_token": bool(server.auth_token),
        "headers": {k: MASK for k in server.headers},
        "timeout_seconds": server.timeout_seconds,
        "enabled": server.enabled,
        "connection_status": server.connection_status,
        "last_checked_at": server.last_checked_at,
        "last_error_summary": server.last_error_summary,
        "created_at": server.created_at,
        "updated_at": server.updated_at,
    }


def _audited(
    conn: sa.Connection, actor: Actor, action: str, *, before: Server | None, after: Server | None
) -> None:
    """The operator-change audit, in the change's transaction; secrets masked."""
    audit.record_entity_change(
        conn,
        actor=actor,
        entity="mcp_server",
        action=action,
        before=before,
        after=after,
        shown=masked,
    )

"""Operator API tokens issued by Atryum: shown once at creation, kept as SHA-256, always expiring,
with a last-used time and revocation. Every creation and revocation is an audit record."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from atryum import audit
from atryum.db.types import utcnow
from atryum.errors import InvalidInput, NotFound
from atryum.identity import store
from atryum.identity.principal import ROLES, OperatorPrincipal, Role, parse_role
from atryum.identity.secrets import digest, new_secret

PREFIX = "atryum_op_"
MAX_LIFETIME = timedelta(days=3650)
TOUCH_EVERY = timedelta(seconds=60)
_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw]?)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks", "": "days"}


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    role: Role
    created_by: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"

    def describe(self) -> dict[str, Any]:
        """What the audit log keeps (never the value or its hash)."""
        return {
            "name": self.name,
            "role": self.role,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `2w`, or a number of days."""
    m = _DURATION.match(text)
    if not m or int(m.group(1)) == 0:
        raise InvalidInput(f"expires_in must be like 90d, 12h, 30m or 2w, not {text!r}")
    span = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if span > MAX_LIFETIME:
        raise InvalidInput("expires_in must be at most 3650 days; tokens always expire")
    return span


def _token(row: dict[str, Any]) -> ApiToken:
    return ApiToken(**{**row, "role": parse_role(row["role"]) or "viewer"})


def create_token(
    engine: sa.Engine, *, name: str, role: str, expires_in: timedelta, actor: OperatorPrincipal
) -> tuple[ApiToken, str]:
    """A new token and its value, which is returned here once and never again."""
    name = name.strip()
    if not name or len(name) > 256:
        raise InvalidInput("name must be 1 to 256 characters")
    checked = parse_role(role)
    if checked is None or checked != role.strip().lower():
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if expires_in <= timedelta(0) or expires_in > MAX_LIFETIME:
        raise InvalidInput("a token must expire, within 3650 days")
    value = new_secret(PREFIX)
    now = utcnow()
    row = {
        "id": str(uuid.uuid4()),
        "name": name,
        "role": checked,
        "created_by": actor.name,
        "created_at": now,
        "expires_at": now + expires_in,
        "last_used_at": None,
        "revoked_at": None,
    }
    with engine.begin() as conn:
        store.insert_token(conn, {**row, "token_hash": digest(value)})
        token = _token(row)
        audit.record_change(
            conn,
            actor=actor,
            entity="api_token",
            entity_id=token.id,
            action="create",
            before=None,
            after=token.describe(),
        )
    return token, value


def list_tokens(engine: sa.Engine) -> list[ApiToken]:
    with engine.connect() as conn:
        return [_token(r) for r in store.list_tokens(conn)]


def revoke_token(engine: sa.Engine, *, token_id: str, actor: OperatorPrincipal) -> ApiToken:
    with engine.begin() as conn:
        row = store.get_token(conn, token_id)
        if row is None:
            raise NotFound(f"API token {token_id} not found")
        before = _token(row)
        if before.revoked_at is not None:
            return before
        now = utcnow()
        store.update_token(conn, token_id, {"revoked_at": now})
        after = _token({**row, "revoked_at": now})
        audit.record_change(
            conn,
            actor=actor,
            entity="api_token",
            entity_id=token_id,
            action="revoke",
            before=before.describe(),
            after=after.describe(),
        )
    return after


def authenticate(engine: sa.Engine, value: str) -> OperatorPrincipal | None:
    """The principal of a live token (its last-used time refreshed), else None."""
    now = utcnow()
    with engine.connect() as conn:
        row = store.token_by_hash(conn, digest(value))
    if row is None:
        return None
    token = _token(row)
    if token.state(now) != "active":
        return None
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        with engine.begin() as conn:
            store.update_token(conn, token.id, {"last_used_at": now})
    return OperatorPrincipal(
        issuer="atryum",
        subject=f"api_token:{token.id}",
        name=token.name,
        method="api_token",
        role=token.role,
    )

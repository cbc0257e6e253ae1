"""Upstream MCP servers as the rest of the code sees them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

STDIO = "stdio"
HTTP = "http"
MODES = (STDIO, HTTP)

# connection_status values
UNKNOWN = "unknown"
CONNECTED = "connected"
ERROR = "error"

MASK = "********"

_NOT_SLUG = re.compile(r"[^a-z0-9._~-]+")


def slugify(name: str) -> str:
    """Lower-case; runs of characters outside `[a-z0-9._~-]` become one `-`."""
    return _NOT_SLUG.sub("-", name.strip().lower()).strip("-") or "server"


@dataclass(frozen=True)
class Server:
    id: str
    name: str
    endpoint_slug: str
    mode: str
    base_url: str
    command: str
    args: list[str]
    env: dict[str, str]  # values are secrets
    auth_token: str | None  # secret
    headers: dict[str, str]  # values are secrets
    timeout_seconds: int
    enabled: bool
    connection_status: str
    last_checked_at: datetime | None
    last_error_summary: str | None
    created_at: datetime
    updated_at: datetime

    def secrets(self) -> list[str]:
        """Every secret value of this server (what no answer, log line or error may contain)."""
        values = [*self.env.values(), *self.headers.values()]
        if self.auth_token:
            values.append(self.auth_token)
        return [v for v in values if v]

    def connection_key(self) -> tuple[object, ...]:
        """What a live upstream connection depends on: a change means reconnecting."""
        return (
            self.mode,
            self.base_url,
            self.command,
            tuple(self.args),
            tuple(sorted(self.env.items())),
            self.auth_token,
            tuple(sorted(self.headers.items())),
        )


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret value replaced by the mask."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text

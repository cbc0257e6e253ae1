"""ValidMind change events (agent-sync.md §5): verify, record once, trigger a debounced sync.

The event only says *that* something changed; the sync re-reads ValidMind and never trusts the
event body for content.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from atryum.db.types import utcnow
from atryum.errors import InvalidInput, Unauthorized
from atryum.sync import event_store

MAX_BODY_BYTES = 64 * 1024
MAX_SKEW_SECONDS = 300
EVENT_TYPES = frozenset({"record.created", "record.updated", "record.archived", "record.deleted"})
TIMESTAMP_HEADER = "X-Atryum-Timestamp"
SIGNATURE_HEADER = "X-Atryum-Signature"


@dataclass(frozen=True)
class ChangeEvent:
    id: str
    type: str
    org_cuid: str
    record_cuid: str
    occurred_at: datetime | None


def verify_signature(
    *,
    secrets: list[bytes],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
) -> None:
    if not timestamp or not signature:
        raise Unauthorized(
            f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header; events must be signed"
        )
    try:
        sent = int(timestamp)
    except ValueError:
        raise Unauthorized(f"{TIMESTAMP_HEADER} must be a unix timestamp in seconds") from None
    if abs(now - sent) > MAX_SKEW_SECONDS:
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} is more than {MAX_SKEW_SECONDS} s away from Atryum's clock; "
            "check the sender's clock"
        )
    if not signature.startswith("v1="):
        raise Unauthorized(f"{SIGNATURE_HEADER} must look like v1=<hex>")
    given = signature[3:].strip().lower()
    signed = timestamp.encode() + b"." + body
    for secret in secrets:
        if hmac.compare_digest(hmac.new(secret, signed, hashlib.sha256).hexdigest(), given):
            return
    raise Unauthorized("event signature does not match; check the shared webhook secret")


def parse_event(body: bytes) -> ChangeEvent:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("event body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("event body must be a JSON object")
    for key in ("id", "type", "org_cuid", "record_cuid"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InvalidInput(f"event field {key!r} is missing or not a non-empty string")
    if len(data["id"]) > 128:
        raise InvalidInput("event id is longer than 128 characters")
    if data["type"] not in EVENT_TYPES:
        raise InvalidInput(f"event type must be one of {', '.join(sorted(EVENT_TYPES))}")
    occurred: datetime | None = None
    if data.get("occurred_at") is not None:
        try:
            occurred = datetime.fromisoformat(str(data["occurred_at"]).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("occurred_at must be an ISO 8601 timestamp") from None
        if occurred.tzinfo is None:
            raise InvalidInput("occurred_at must carry a timezone")
    return ChangeEvent(data["id"], data["type"], data["org_cuid"], data["record_cuid"], occurred)


def record_event(engine: sa.Engine, *, event: ChangeEvent) -> bool:
    """Persist the event; False when its id was seen before (replay: ignore)."""
    with engine.begin() as conn:
        return event_store.insert_event(
            conn,
            {
                "id": event.id,
                "type": event.type,
                "org_cuid": event.org_cuid,
                "record_cuid": event.record_cuid,
                "occurred_at": event.occurred_at,
                "received_at": utcnow(),
            },
        )


def fold_events(engine: sa.Engine, *, run_id: str) -> int:
    """Link every not-yet-folded event to the run that will read its change."""
    with engine.begin() as conn:
        return event_store.fold_into_run(conn, run_id, utcnow())


def list_events(engine: sa.Engine, *, limit: int = 100) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        return event_store.list_events(conn, limit=limit)

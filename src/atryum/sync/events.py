"""ValidMind change events (agent-sync.md §5): verify, record once, trigger a debounced sync.

The event only says *that* something changed; the sync re-reads ValidMind and never trusts the
event body for content.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
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
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Unauthorized(f"{TIMESTAMP_HEADER} must be a unix timestamp in seconds")
    sent = int(timestamp)
    if abs(now - sent) > MAX_SKEW_SECONDS:
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} is more than {MAX_SKEW_SECONDS} s away from Atryum's clock; "
            "check the sender's clock"
        )
    if not signature.startswith("v1=") or not signature.isascii():
        raise Unauthorized(f"{SIGNATURE_HEADER} must look like v1=<hex>, in ASCII characters only")
    given = signature[3:].strip().lower().encode("ascii")
    signed = timestamp.encode("ascii") + b"." + body
    for secret in secrets:
        expected = hmac.new(secret, signed, hashlib.sha256).hexdigest().encode("ascii")
        if hmac.compare_digest(expected, given):
            return
    raise Unauthorized("event signature does not match; check the shared webhook secret")


def parse_event(body: bytes) -> ChangeEvent:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("event body is not valid JSON") from None
    except RecursionError:
        raise InvalidInput("event body is nested too deeply; send a flat JSON object") from None
    if not isinstance(data, dict):
        raise InvalidInput("event body must be a JSON object")
    for key, limit in event_store.FIELD_LENGTHS.items():
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"event field {key!r} is missing or not a non-empty string")
        if len(value) > limit:
            raise InvalidInput(f"event field {key!r} is longer than {limit} characters")
        if "\x00" in value:
            raise InvalidInput(f"event field {key!r} contains a NUL character")
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
        try:
            occurred = occurred.astimezone(UTC)
        except OverflowError:
            raise InvalidInput("occurred_at is out of range") from None
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


def list_events(
    engine: sa.Engine, *, offset: int = 0, limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    """A page of received events, newest first, and how many there are."""
    with engine.begin() as conn:
        return event_store.list_events(conn, offset=offset, limit=limit)

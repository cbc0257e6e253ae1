"""Signature checks and event parsing (no I/O)."""

from __future__ import annotations

import json

import pytest

from atryum.errors import InvalidInput, Unauthorized
from atryum.sync.events import parse_event, verify_signature
from atryum.validmind.sim.notify import sign

SECRET = "s" * 32
BODY = json.dumps(
    {
        "id": "e1",
        "type": "record.archived",
        "org_cuid": "o",
        "record_cuid": "r",
        "occurred_at": "2026-11-24T10:00:00Z",
    }
).encode()


def check(
    body: bytes = BODY,
    ts: str | None = "1000",
    sig: str | None = None,
    now: float = 1000,
    secrets: list[bytes] | None = None,
) -> None:
    if sig is None and ts is not None:
        sig = sign(SECRET, ts, body)
    verify_signature(
        secrets=secrets or [SECRET.encode()], timestamp=ts, signature=sig, body=body, now=now
    )


def test_valid_signature_with_current_or_previous_secret() -> None:
    check()
    check(secrets=[b"n" * 32, SECRET.encode()])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ts": None}, "missing"),
        ({"sig": "v1=" + "0" * 64}, "does not match"),
        ({"sig": "sha1=abc"}, "v1="),
        ({"now": 1301}, "300 s"),
        ({"now": 699}, "300 s"),
        ({"ts": "yesterday", "sig": "v1=00"}, "unix timestamp"),
        ({"secrets": [b"w" * 32]}, "does not match"),
        ({"sig": "v1=\u00e9" + "0" * 63}, "ASCII"),
        ({"sig": "v1=" + "\u0661" * 64}, "ASCII"),
        ({"ts": "\u0661\u0660\u0660\u0660", "sig": "v1=00"}, "unix timestamp"),
        ({"ts": "-1000", "sig": "v1=00"}, "unix timestamp"),
    ],
)
def test_bad_signatures_refused(kwargs: dict, fragment: str) -> None:
    with pytest.raises(Unauthorized, match=fragment):
        check(**kwargs)


def test_signature_covers_the_body() -> None:
    sig = sign(SECRET, "1000", BODY)
    with pytest.raises(Unauthorized):
        check(body=BODY.replace(b"archived", b"created"), sig=sig)


def test_parse_event() -> None:
    event = parse_event(BODY)
    assert (event.id, event.type, event.record_cuid) == ("e1", "record.archived", "r")
    assert event.occurred_at is not None and event.occurred_at.tzinfo is not None


def _event(**fields: object) -> bytes:
    base = {"id": "e", "type": "record.created", "org_cuid": "o", "record_cuid": "r"}
    return json.dumps({**base, **fields}).encode()


@pytest.mark.parametrize(
    ("field", "limit"), [("id", 128), ("type", 32), ("org_cuid", 128), ("record_cuid", 128)]
)
def test_fields_longer_than_their_column_refused(field: str, limit: int) -> None:
    with pytest.raises(InvalidInput, match=f"event field '{field}' is longer than {limit}"):
        parse_event(_event(**{field: "x" * (limit + 1)}))


def test_fields_at_their_column_length_accepted() -> None:
    event = parse_event(_event(id="i" * 128, org_cuid="o" * 128, record_cuid="r" * 128))
    assert (len(event.id), len(event.org_cuid), len(event.record_cuid)) == (128, 128, 128)


@pytest.mark.parametrize(
    "body",
    [b"[" * 20_000 + b"]" * 20_000, _event(extra=[]).replace(b"[]", b"[" * 5000 + b"]" * 5000)],
)
def test_deeply_nested_body_refused(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="nested too deeply"):
        parse_event(body)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_event(record_cuid="r\u0000"), "NUL"),
        (_event(occurred_at="0001-01-01T00:00:00+01:00"), "out of range"),
    ],
)
def test_values_the_database_would_refuse_are_400(body: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_event(body)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{nope", "not valid JSON"),
        (b"[]", "JSON object"),
        (
            json.dumps({"id": "e", "type": "record.created", "org_cuid": "o"}).encode(),
            "record_cuid",
        ),
        (
            json.dumps(
                {"id": "e", "type": "record.moved", "org_cuid": "o", "record_cuid": "r"}
            ).encode(),
            "event type",
        ),
        (
            json.dumps(
                {
                    "id": "e",
                    "type": "record.created",
                    "org_cuid": "o",
                    "record_cuid": "r",
                    "occurred_at": "soon",
                }
            ).encode(),
            "ISO 8601",
        ),
    ],
)
def test_malformed_events_refused(body: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_event(body)

"""Input every database can store: no NUL characters (PostgreSQL refuses them in text),
integers that fit the 32-bit INTEGER columns, timestamps that have a zone and a UTC form, and
ValidMind ids that can travel in an HTTP header. Refused with 422, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

INT32_MAX = 2**31 - 1
NUL_MESSAGE = "must not contain NUL (\\u0000) characters; remove them and send it again"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("nul_character", NUL_MESSAGE)
    return value


# A string stored in, or looked up in, a text column.
Text = Annotated[str, AfterValidator(_no_nul)]


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise PydanticCustomError(
            "naive_datetime", "must name its timezone, e.g. 2026-01-01T00:00:00Z"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("datetime_range", "is out of range in UTC") from None


# A timestamp a client sends (filters): timezone-aware, in UTC.
Timestamp = Annotated[datetime, AfterValidator(_aware_utc)]


def _header_safe(value: str) -> str:
    if not all("!" <= c <= "~" for c in value):
        raise PydanticCustomError(
            "cuid_characters", "must be printable ASCII without spaces (a ValidMind cuid)"
        )
    return value


# A ValidMind id (org cuid): it is sent to ValidMind in a header, so ASCII only.
Cuid = Annotated[str, AfterValidator(_no_nul), AfterValidator(_header_safe)]


async def refuse_nul_params(request: Request) -> None:
    """App-wide dependency: path and query parameters are looked up in text columns too."""
    errors = [
        {"loc": (where, name), "msg": NUL_MESSAGE, "type": "nul_character"}
        for where, items in (
            ("path", request.path_params.items()),
            ("query", request.query_params.multi_items()),
        )
        for name, value in items
        if isinstance(value, str) and "\x00" in value
    ]
    if errors:
        raise RequestValidationError(errors)

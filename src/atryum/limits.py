"""Input every database can store: no NUL characters (PostgreSQL refuses them in text), and
integers that fit the 32-bit INTEGER columns. Refused with 422, never a database error (500)."""

from __future__ import annotations

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


def refuse_nul_params(request: Request) -> None:
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

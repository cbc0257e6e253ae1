"""Every error the app answers, as one JSON shape: `{"error": {"message": …}}` with its status.

The app's exception handlers (`install`) and the hot routes' shortcut (`hot_routes`) both answer
through `response_for`, so a request gets the same error whichever way it was served.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from atryum.errors import AtryumError

log = logging.getLogger("atryum")

HANDLED = (AtryumError, RequestValidationError, StarletteHTTPException, sa.exc.OperationalError)


def _error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, **(details or {})}}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid request: " + "; ".join(parts)


def response_for(exc: Exception) -> JSONResponse | None:
    """The answer to `exc`, or None for an exception that is a bug (the server error path)."""
    if isinstance(exc, AtryumError):
        return _error(exc.status_code, exc.message, exc.headers, exc.details)
    if isinstance(exc, RequestValidationError):
        return _error(422, _validation_message(exc))
    if isinstance(exc, StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))
    if isinstance(exc, sa.exc.OperationalError):
        log.error("database error: %s", type(exc).__name__)
        return _error(503, "the database is unavailable; nothing was changed, try again")
    return None


def install(app: FastAPI) -> None:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        response = response_for(exc)
        assert response is not None, exc  # registered for HANDLED only
        return response

    for kind in HANDLED:
        app.add_exception_handler(kind, handler)

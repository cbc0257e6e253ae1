"""Domain errors. The HTTP layer maps each to a status code and `{"error": {"message": …}}`."""

from __future__ import annotations

from typing import Any


class AtryumError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None  # e.g. a WWW-Authenticate challenge
    details: dict[str, Any] | None = None  # more fields of the error object, e.g. a held list

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(AtryumError):
    status_code = 400


class Unauthorized(AtryumError):
    status_code = 401


class Forbidden(AtryumError):
    status_code = 403


class NotFound(AtryumError):
    status_code = 404


class Conflict(AtryumError):
    status_code = 409


class UpstreamError(AtryumError):
    """ValidMind answered with an error (502)."""

    status_code = 502


class NotConfigured(AtryumError):
    """The ValidMind integration (or the sync scope) is not configured (503)."""

    status_code = 503

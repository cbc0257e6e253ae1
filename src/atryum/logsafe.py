"""Every log line, whoever writes it (Atryum, uvicorn, httpx2's request log, a driver), has URL
credentials (``scheme://user:password@``) and every configured secret replaced by
``[redacted]`` before any handler sees it.

It is done in the log record factory rather than in a handler filter: a filter on Atryum's
handlers would miss the handlers others attach (pytest's capture, a deployment's own), and a
filter on a logger misses records its children propagate. httpx2 logs each request with the full
URL, so a `backend.base_url` with userinfo reached the INFO log in clear before this.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, SecretStr

from atryum.validmind.redact import redact_urls_in

MIN_SECRET_CHARS = 4  # shorter values ("", "x") would redact ordinary words

_secrets: set[str] = set()
_guard = threading.Lock()
_base_factory = logging.getLogRecordFactory()


def redact(text: str) -> str:
    text = redact_urls_in(text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text


def secrets_of(value: Any) -> Iterator[str]:
    """Every SecretStr value in a configuration model (nested sections, lists, dicts)."""
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secrets_of(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secrets_of(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secrets_of(item)


def _record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: leave it to logging's own error report
        return record
    safe = redact(message)
    if safe != message:
        record.msg, record.args = safe, None
    if record.exc_info:  # the traceback's text too (handlers use exc_text when it is set)
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    return record


def configured_secrets() -> frozenset[str]:
    with _guard:
        return frozenset(_secrets)


def install(secrets: Iterable[str | None]) -> None:
    """Redact these secrets (and URL credentials) from every log record from now on."""
    with _guard:
        _secrets.update(s for s in secrets if s and len(s) >= MIN_SECRET_CHARS)
        if logging.getLogRecordFactory() is not _record:
            logging.setLogRecordFactory(_record)


LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(level: str = "info") -> None:
    """The process's log lines: logfmt-style on stderr at `[server] log_level` (redacted by
    `install`)."""
    logging.basicConfig(
        level=LEVELS[level],
        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s",
        stream=sys.stderr,
    )

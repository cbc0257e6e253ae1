"""Credentials embedded in URLs (``scheme://user:password@host``) never reach logs or errors."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.\-]*:)?//)?[^/?#]*@")


def userinfo(url: str) -> str:
    """The ``user:password`` part of `url`, or "" when it has none."""
    match = _USERINFO.match(url)
    if match is None:
        return ""
    return match.group(0)[len(match.group(1) or "") : -1]


def redact_url(url: str) -> str:
    """`url` with any userinfo replaced by ``[redacted]``; other URLs unchanged."""
    return _USERINFO.sub(lambda m: f"{m.group(1) or ''}[redacted]@", url, count=1)


# userinfo anywhere in a text (a log line, an error): scheme://<no / @ or whitespace>@
_USERINFO_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@]+@")


def redact_urls_in(text: str) -> str:
    """`text` with the userinfo of every URL in it replaced by ``[redacted]``."""
    return _USERINFO_IN_TEXT.sub(r"\1[redacted]@", text)

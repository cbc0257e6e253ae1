"""userinfo (user:password@) is cut out of URLs before they reach logs or errors."""

from __future__ import annotations

import pytest

from atryum.validmind.redact import redact_url, userinfo


@pytest.mark.parametrize(
    ("url", "shown", "info"),
    [
        ("http://u:p@h:1/x", "http://[redacted]@h:1/x", "u:p"),
        ("http://a@b:c@h/", "http://[redacted]@h/", "a@b:c"),
        ("user:pw@host/x", "[redacted]@host/x", "user:pw"),
        ("https://h/p@x", "https://h/p@x", ""),
        ("http://h?x=a@b", "http://h?x=a@b", ""),
        ("http://h:8080", "http://h:8080", ""),
        ("", "", ""),
    ],
)
def test_redact_url(url: str, shown: str, info: str) -> None:
    assert (redact_url(url), userinfo(url)) == (shown, info)

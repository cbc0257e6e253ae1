"""Cross-site requests cannot act (identity.md §3).

A state-changing operator request that a browser marks as coming from another site (`Origin`,
`Sec-Fetch-Site`) is refused whatever authenticates it. One authenticated by the session cookie
must in addition prove it is same-origin and carry the session's CSRF token (header
`X-CSRF-Token`, which the UI's JavaScript sends; a cross-site form cannot set a header). Bearer
and API-key requests carry no ambient credential, so the token is not asked of them.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

HEADER = "x-csrf-token"
SAME_SITE_VALUES = frozenset({"same-origin", "none"})


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def served_origins(*, scheme: str, host: str | None, public_base_url: str) -> set[str]:
    origins = {origin_of(public_base_url)} if public_base_url else set()
    if host:
        origins.add(f"{scheme}://{host}".lower())
    origins.discard("")
    return origins


def cross_site(headers: Mapping[str, str], origins: Iterable[str]) -> str | None:
    """Why the browser says this request comes from another site, or None."""
    origin = headers.get("origin")
    if origin is not None and origin.lower().rstrip("/") not in set(origins):
        return f"the request comes from another origin ({origin[:200]})"
    site = headers.get("sec-fetch-site")
    if site is not None and site.lower() not in SAME_SITE_VALUES:
        return f"the browser marks the request as {site[:50]}"
    return None


def proves_same_origin(headers: Mapping[str, str], origins: Iterable[str]) -> bool:
    origin = headers.get("origin")
    if origin is not None:
        return origin.lower().rstrip("/") in set(origins)
    return (headers.get("sec-fetch-site") or "").lower() == "same-origin"


def token_matches(headers: Mapping[str, str], expected: str) -> bool:
    sent = headers.get(HEADER) or ""
    return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())

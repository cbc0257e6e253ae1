"""High-entropy credentials and how they are kept: only their SHA-256 is ever stored."""

from __future__ import annotations

import hashlib
import secrets


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """SHA-256 hex: enough for 256-bit random values (no dictionary to guess from)."""
    return hashlib.sha256(value.encode()).hexdigest()

"""Machine callers' API key ([api_key]): optional to present, refused when wrong."""

from __future__ import annotations

import hmac

from fastapi import Request

from atryum.config import ApiKeyConfig
from atryum.errors import Unauthorized

KEY_HEADER = "X-API-KEY"
SECRET_HEADER = "X-API-SECRET"


def machine_key_matches(configured: ApiKeyConfig, key: str | None, secret: str | None) -> bool:
    if not configured.configured:
        return False
    assert configured.key is not None and configured.secret is not None
    ok_key = hmac.compare_digest((key or "").encode(), configured.key.get_secret_value().encode())
    ok_secret = hmac.compare_digest(
        (secret or "").encode(), configured.secret.get_secret_value().encode()
    )
    return ok_key and ok_secret


def check_machine_key(request: Request) -> None:
    key = request.headers.get(KEY_HEADER)
    secret = request.headers.get(SECRET_HEADER)
    if key is None and secret is None:
        return  # operator routes decide what an absent key means (atryum.identity.operators)
    configured = request.app.state.ctx.config.api_key
    if not configured.configured:
        raise Unauthorized(
            "machine API key headers were sent but no [api_key] is configured in atryum.toml"
        )
    if not machine_key_matches(configured, key, secret):
        raise Unauthorized("invalid machine API key or secret")

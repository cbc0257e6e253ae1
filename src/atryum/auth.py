"""Machine callers' API key ([api_key]): optional to present, refused when wrong."""

from __future__ import annotations

import hmac

from fastapi import Request

from atryum.errors import Unauthorized

KEY_HEADER = "X-API-KEY"
SECRET_HEADER = "X-API-SECRET"


def check_machine_key(request: Request) -> None:
    key = request.headers.get(KEY_HEADER)
    secret = request.headers.get(SECRET_HEADER)
    if key is None and secret is None:
        return  # operator endpoints are open unless admin authentication is configured
    configured = request.app.state.ctx.config.api_key
    if not configured.configured:
        raise Unauthorized(
            "machine API key headers were sent but no [api_key] is configured in atryum.toml"
        )
    ok_key = hmac.compare_digest((key or "").encode(), configured.key.get_secret_value().encode())
    ok_secret = hmac.compare_digest(
        (secret or "").encode(), configured.secret.get_secret_value().encode()
    )
    if not (ok_key and ok_secret):
        raise Unauthorized("invalid machine API key or secret")

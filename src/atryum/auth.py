"""Machine callers' API key ([api_key]): `X-API-Key` + `X-API-Secret`.

Optional to present; refused when wrong while `[api_key]` is configured. While it is not, no
route uses the headers, so a stray `X-API-Key` (a proxy's, another service's) is ignored rather
than failing the whole app. The legacy reporting routes require the pair
(`require_machine_key`: 503 while unconfigured, 401 when missing or wrong).
"""

from __future__ import annotations

import hmac

from fastapi import Request

from atryum.config import ApiKeyConfig
from atryum.errors import NotConfigured, Unauthorized

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


def machine_key_sent(request: Request) -> bool:
    """Machine key headers that count: sent while `[api_key]` is configured."""
    headers = request.headers
    sent = headers.get(KEY_HEADER) is not None or headers.get(SECRET_HEADER) is not None
    return sent and request.app.state.ctx.config.api_key.configured


async def check_machine_key(request: Request) -> None:
    if not machine_key_sent(request):
        return  # operator routes decide what an absent key means (atryum.identity.operators)
    configured = request.app.state.ctx.config.api_key
    if not machine_key_matches(
        configured, request.headers.get(KEY_HEADER), request.headers.get(SECRET_HEADER)
    ):
        raise Unauthorized("invalid machine API key or secret")


async def require_machine_key(request: Request) -> None:
    """The legacy reporting routes: only for machine callers holding the `[api_key]` pair."""
    configured = request.app.state.ctx.config.api_key
    if not configured.configured:
        raise NotConfigured(
            "the reporting endpoints need [api_key] key and secret in atryum.toml; none are set"
        )
    if not machine_key_matches(
        configured, request.headers.get(KEY_HEADER), request.headers.get(SECRET_HEADER)
    ):
        raise Unauthorized("send the [api_key] pair as X-API-Key and X-API-Secret headers")

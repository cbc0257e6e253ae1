"""Machine callers' API key ([api_key]): `X-API-Key` + `X-API-Secret`.

Optional on operator routes: a pair that is sent while `[api_key]` is configured must match
(401 otherwise). A stray `X-API-Key` (without its secret, or while no `[api_key]` is configured)
is ignored: no route there uses it. The legacy reporting routes require the pair
(`require_machine_key`: 503 while unconfigured, 401 when missing or wrong).
"""

from __future__ import annotations

import hmac

from fastapi import Request

from atryum.errors import NotConfigured, Unauthorized

KEY_HEADER = "X-API-KEY"
SECRET_HEADER = "X-API-SECRET"


def _matches(request: Request) -> bool:
    configured = request.app.state.ctx.config.api_key
    key = request.headers.get(KEY_HEADER) or ""
    secret = request.headers.get(SECRET_HEADER) or ""
    ok_key = hmac.compare_digest(key.encode(), configured.key.get_secret_value().encode())
    ok_secret = hmac.compare_digest(secret.encode(), configured.secret.get_secret_value().encode())
    return ok_key and ok_secret


def check_machine_key(request: Request) -> None:
    """App-wide: refuse a wrong key/secret pair; ignore a stray key (see the module docstring)."""
    if KEY_HEADER not in request.headers or SECRET_HEADER not in request.headers:
        return  # operator endpoints are open unless admin authentication is configured
    if request.app.state.ctx.config.api_key.configured and not _matches(request):
        raise Unauthorized("invalid machine API key or secret")


def require_machine_key(request: Request) -> None:
    """The legacy reporting routes: only for machine callers holding the `[api_key]` pair."""
    if not request.app.state.ctx.config.api_key.configured:
        raise NotConfigured(
            "the reporting endpoints need [api_key] key and secret in atryum.toml; none are set"
        )
    if not _matches(request):
        raise Unauthorized("send the [api_key] pair as X-API-Key and X-API-Secret headers")

"""Who is calling an agent route: the FastAPI dependency behind `gateway.deps.Caller`.

With no enabled `[[auth]]` block it answers None (the body/query `agent_id` hint applies). With
one, every agent route needs a valid bearer token: none → 401 with a `WWW-Authenticate`
challenge pointing at the protected-resource metadata (RFC 9728 §5.1); a bad one → 401
`invalid_token`; one without the required scope → 403 `insufficient_scope` (RFC 6750 §3).
The token itself is never logged or echoed.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from atryum.errors import AtryumError
from atryum.identity import tokens
from atryum.identity.tokens import AgentIdentity, Rejection
from atryum.identity.verifier import TOKENS, AgentAuth, KeysNeeded, TokenRejected

log = logging.getLogger("atryum.identity")

METADATA_PATH = "/.well-known/oauth-protected-resource"
_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')

_AUTHS: dict[int, tuple[Any, AgentAuth]] = {}


def agent_auth_for(ctx: Any) -> AgentAuth:
    """The context's verifier (its key caches live as long as the context)."""
    entry = _AUTHS.get(id(ctx))
    if entry is None or entry[0] is not ctx:
        entry = _AUTHS[id(ctx)] = (ctx, AgentAuth.from_blocks(ctx.config.auth))
    return entry[1]


class AuthChallenge(AtryumError):
    """401/403 with the Bearer challenge an OAuth client acts on."""

    def __init__(self, status_code: int, message: str, challenge: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = {"WWW-Authenticate": challenge}


def public_base(request: Request) -> str:
    configured: str = request.app.state.ctx.config.server.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


def mcp_server_of(path: str) -> str | None:
    """`/mcp/{server}/…` → server (the MCP proxy's protected resource), else None."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[1] == "mcp" and parts[2]:
        return parts[2]
    return None


def metadata_url(request: Request) -> str:
    server = mcp_server_of(request.url.path)
    suffix = f"/mcp/{server}" if server else ""
    return f"{public_base(request)}{METADATA_PATH}{suffix}"


def _quoted(text: str) -> str:
    return _UNSAFE.sub("'", text)[:300]


def _challenge(request: Request, rejection: Rejection | None, auth: AgentAuth) -> AuthChallenge:
    params = [f'resource_metadata="{metadata_url(request)}"']
    if rejection is None:
        TOKENS.labels("missing").inc()
        message = "this agent route needs a bearer token (Authorization: Bearer <token>)"
        return AuthChallenge(401, message, "Bearer " + ", ".join(params))
    TOKENS.labels(rejection.error).inc()
    params = [f'error="{rejection.error}"', f'error_description="{_quoted(rejection.message)}"']
    status = 401
    if rejection.error == tokens.INSUFFICIENT_SCOPE:
        status = 403
        params.append(f'scope="{" ".join(auth.scopes)}"')
    params.append(f'resource_metadata="{metadata_url(request)}"')
    return AuthChallenge(status, rejection.message, "Bearer " + ", ".join(params))


async def agent_caller(request: Request) -> AgentIdentity | None:
    """The verified caller of an agent route, or None while agent authentication is off."""
    auth = agent_auth_for(request.app.state.ctx)
    if not auth.enabled:
        return None
    token = tokens.bearer(request.headers.get("authorization"))
    if isinstance(token, Rejection):
        raise _challenge(request, token, auth)
    if token is None:
        raise _challenge(request, None, auth)
    try:
        try:
            identity = auth.verify(token)
        except KeysNeeded:
            identity = await run_in_threadpool(auth.verify, token, fetch=True)
    except TokenRejected as rejected:
        log.info("auth_agent_token_refused error=%s", rejected.rejection.error)
        raise _challenge(request, rejected.rejection, auth) from None
    TOKENS.labels("accepted").inc()
    return identity

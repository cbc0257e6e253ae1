"""OpenID provider metadata and signed-token checks for operators, on the agent verifier's keys.

Operator bearer tokens are checked by the agent-token verifier (`AgentAuth`: issuer, audience,
signature, expiry, scope) exactly like agent tokens; the claims the role is read from are those
of the token it has just verified. UI logins' ID tokens (audience: the login client) are checked
against the same per-issuer key cache. Only the discovery document's endpoints are kept here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from atryum.config import AuthBlock
from atryum.context import AppContext
from atryum.errors import Unauthorized
from atryum.identity import tokens
from atryum.identity.inbound import agent_auth_for
from atryum.identity.tokens import AgentIdentity, Rejection
from atryum.identity.verifier import TokenRejected, http_fetch

LEEWAY_SECONDS = 60


class ProviderError(Exception):
    """The identity provider could not be reached or answered wrongly."""


_metadata: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


def metadata(block: AuthBlock) -> dict[str, Any]:
    """The issuer's discovery document (cached once it was read)."""
    with _lock:
        known = _metadata.get(block.issuer)
    if known is not None:
        return known
    url = f"{block.issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        doc = http_fetch(url)
    except Exception as exc:
        raise ProviderError(f"{url}: {type(exc).__name__}") from None
    if not isinstance(doc, dict) or doc.get("issuer") != block.issuer:
        raise ProviderError(f"{url}: the discovery document names another issuer")
    with _lock:
        _metadata[block.issuer] = doc
    return doc


def endpoint(block: AuthBlock, name: str) -> str:
    value = metadata(block).get(name)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ProviderError(f"{block.issuer}: the discovery document names no {name}")
    return value


def verify_id_token(ctx: AppContext, block: AuthBlock, token: str) -> dict[str, Any]:
    """The claims of an ID token of `block`'s issuer for its login client; Unauthorized if not."""
    head = tokens.inspect(token)
    if isinstance(head, Rejection):
        raise Unauthorized(head.message)
    if head.issuer != block.issuer:
        raise Unauthorized("the ID token comes from another issuer")
    keys = agent_auth_for(ctx).keys.get(block.issuer)
    if keys is None:
        raise Unauthorized("the ID token's issuer is not an enabled [[auth]] issuer")
    candidates = keys.candidates(head.kid, head.alg)
    if not candidates and keys.may_fetch():
        keys.refresh()
        candidates = keys.candidates(head.kid, head.alg)
    if not candidates:
        raise Unauthorized("the ID token is signed with a key the issuer does not publish")
    import jwt  # loaded on first use, as in verifier.py

    for key in candidates:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[head.alg],
                audience=block.admin_client_id,
                issuer=block.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "sub", "aud"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the ID token was refused ({type(exc).__name__})") from None
        return claims
    raise Unauthorized("the ID token's signature does not verify")


def verify_bearer(
    ctx: AppContext, token: str
) -> tuple[AuthBlock, AgentIdentity, Mapping[str, Any]]:
    """The enabled block, verified identity and claims of a bearer JWT (from a thread)."""
    try:
        identity = agent_auth_for(ctx).verify(token, fetch=True)
    except TokenRejected as rejected:
        raise Unauthorized(rejected.rejection.message) from None
    import jwt

    # The verifier has just checked this very token's signature and claims.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    for block in ctx.config.auth:
        if block.enabled and block.issuer == identity.issuer and block.audience in audiences:
            return block, identity, claims
    raise Unauthorized("the bearer token matches no enabled [[auth]] block")

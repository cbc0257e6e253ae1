"""OpenID provider metadata and signed-token checks for operator logins and admin bearer tokens.

`verify_bearer` is the one seam through which operator routes check a bearer JWT. It verifies
here against the issuer's keys; the agent-token verifier of identity.md §1 answers the same
question for agents, and the two should share one key cache (see the report of issue 10).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt

from atryum.config import AuthBlock, Config
from atryum.errors import Unauthorized

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
LEEWAY_SECONDS = 60
REFETCH_INTERVAL_SECONDS = 60.0
TIMEOUT_SECONDS = 5.0


class ProviderError(Exception):
    """The identity provider could not be reached or answered wrongly."""


@dataclass
class _Provider:
    metadata: dict[str, Any]
    keys: dict[str, jwt.PyJWK]
    fetched_at: float


_providers: dict[str, _Provider] = {}
_lock = threading.Lock()


def _get_json(url: str) -> dict[str, Any]:
    try:
        resp = httpx2.get(url, timeout=TIMEOUT_SECONDS, follow_redirects=False)
        resp.raise_for_status()
        body = resp.json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise ProviderError(f"{url}: {type(exc).__name__}") from None
    if not isinstance(body, dict):
        raise ProviderError(f"{url}: not a JSON object")
    return body


def _load(block: AuthBlock) -> _Provider:
    issuer = block.issuer.rstrip("/")
    metadata = _get_json(f"{issuer}/.well-known/openid-configuration")
    jwks_url = block.jwks_url or str(metadata.get("jwks_uri") or "")
    if not jwks_url:
        raise ProviderError(f"{issuer}: the discovery document names no jwks_uri")
    keys: dict[str, jwt.PyJWK] = {}
    for jwk in _get_json(jwks_url).get("keys", []):
        try:
            key = jwt.PyJWK(jwk)
        except jwt.PyJWTError:
            continue  # a key type or algorithm this build cannot use
        keys[str(jwk.get("kid", ""))] = key
    return _Provider(metadata=metadata, keys=keys, fetched_at=time.monotonic())


def provider(block: AuthBlock, *, refresh: bool = False) -> _Provider:
    """The issuer's metadata and keys, cached; `refresh` refetches at most once a minute."""
    with _lock:
        known = _providers.get(block.issuer)
    stale = known is not None and time.monotonic() - known.fetched_at >= REFETCH_INTERVAL_SECONDS
    if known is None or (refresh and stale):
        try:
            known = _load(block)
        except ProviderError:
            if known is None:
                raise
            return known
        with _lock:
            _providers[block.issuer] = known
    return known


def endpoint(block: AuthBlock, name: str) -> str:
    value = provider(block).metadata.get(name)
    if not isinstance(value, str) or not value:
        raise ProviderError(f"{block.issuer}: the discovery document names no {name}")
    return value


def verify_jwt(block: AuthBlock, token: str, *, audience: str) -> dict[str, Any]:
    """The claims of a token signed by `block`'s issuer for `audience`; Unauthorized if not."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthorized("the token is not a well-formed JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise Unauthorized(f"the token's algorithm {header.get('alg')!r} is not accepted")
    kid = str(header.get("kid", ""))
    try:
        key = provider(block).keys.get(kid) or provider(block, refresh=True).keys.get(kid)
    except ProviderError as exc:
        raise Unauthorized(f"the identity provider's keys are unavailable ({exc})") from None
    if key is None:
        raise Unauthorized("the token is signed with a key the issuer does not publish")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[str(header["alg"])],
            audience=audience,
            issuer=block.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"the token was refused: {exc}") from None
    return claims


def block_for_issuer(config: Config, issuer: str) -> AuthBlock | None:
    for block in config.auth:
        if block.enabled and block.issuer.rstrip("/") == issuer.rstrip("/"):
            return block
    return None


def verify_bearer(config: Config, token: str) -> tuple[AuthBlock, Mapping[str, Any]]:
    """The enabled block and verified claims of a bearer JWT (audience = the block's)."""
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise Unauthorized("the bearer token is not a well-formed JWT") from None
    block = block_for_issuer(config, str(issuer or ""))
    if block is None:
        raise Unauthorized("the bearer token's issuer is not an enabled [[auth]] issuer")
    return block, verify_jwt(block, token, audience=block.audience)

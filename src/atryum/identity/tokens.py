"""Agent token checks as pure functions: is this bearer JWT acceptable, and who is it?

Everything here is a decision over values already in hand (the token text, its decoded claims,
a key's JWK members, the clock), with no I/O, so the rules of identity.md §1 can be tested one
by one and by property. Fetching keys and checking signatures live in `verifier.py`.

A token is refused as `invalid_token` (401) unless: it is at most 16 KiB, three base64url
parts, its header names an allowed asymmetric algorithm (never `none`, never HMAC: a public key
is no secret), its `iss` is an enabled block's issuer, its `aud` contains that block's audience,
`exp` holds and `nbf` has passed (60 s leeway both ways), and it names an agent. A valid token
without the block's required scope is `insufficient_scope` (403).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

MAX_TOKEN_BYTES = 16 * 1024
LEEWAY_SECONDS = 60
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"})
# Which JWK key types (and curves) can verify which algorithm.
_KEY_FITS: dict[str, tuple[str, frozenset[str | None]]] = {
    "RS256": ("RSA", frozenset({None})),
    "RS384": ("RSA", frozenset({None})),
    "RS512": ("RSA", frozenset({None})),
    "PS256": ("RSA", frozenset({None})),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
FALLBACK_ID_CLAIMS = ("client_id", "azp", "sub")

INVALID: Final = "invalid_token"
INSUFFICIENT_SCOPE: Final = "insufficient_scope"


@dataclass(frozen=True, order=True)
class AgentIdentity:
    """A verified agent: the pair (issuer, agent id). Two issuers' equal ids are two agents."""

    issuer: str
    agent_id: str

    @property
    def key(self) -> str:
        """The identity as one string, `issuer#agent id`: the form a registry agent's
        `agent_ids` entry uses to accept this id from this issuer only."""
        return f"{self.issuer}#{self.agent_id}"


@dataclass(frozen=True)
class Expectation:
    """What one enabled `[[auth]]` block demands of a token."""

    issuer: str
    audience: str
    required_scope: str = ""
    agent_id_claim: str = "client_id"


@dataclass(frozen=True)
class Rejection:
    error: Literal["invalid_token", "insufficient_scope"]
    message: str


@dataclass(frozen=True)
class Unverified:
    """What the token says about itself before its signature is checked: only used to pick
    the issuer and the key, never trusted for anything else."""

    alg: str
    kid: str | None
    issuer: str


def invalid(message: str) -> Rejection:
    return Rejection(INVALID, message)


def _b64_json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def inspect(token: str) -> Unverified | Rejection:
    """Size, shape, algorithm and claimed issuer of a compact JWS, before any key is used."""
    if len(token.encode("utf-8", "replace")) > MAX_TOKEN_BYTES:
        return invalid(f"the bearer token is larger than {MAX_TOKEN_BYTES // 1024} KiB")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return invalid("the bearer token is not a JWT (three base64url parts)")
    try:
        header, payload = _b64_json(parts[0]), _b64_json(parts[1])
    except (ValueError, UnicodeError, binascii.Error):
        return invalid("the bearer token is not a JWT (undecodable header or claims)")
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return invalid("the bearer token is not a JWT (header and claims must be objects)")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        return invalid(
            f"token algorithm {str(alg)[:20]!r} is not accepted; use one of "
            f"{', '.join(sorted(ALGORITHMS))}"
        )
    if "crit" in header:
        return invalid("tokens with critical header extensions (crit) are not accepted")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        return invalid("the token's key id (kid) must be a string")
    iss = payload.get("iss")
    if not isinstance(iss, str) or not iss:
        return invalid("the token has no issuer (iss)")
    return Unverified(alg=alg, kid=kid, issuer=iss)


def key_fits(jwk: Mapping[str, Any], alg: str) -> bool:
    """Whether a JWK may verify a signature made with `alg` (type, curve, use and its own
    `alg` member all agree)."""
    if alg not in _KEY_FITS:
        return False
    kty, curves = _KEY_FITS[alg]
    if jwk.get("kty") != kty or jwk.get("crv") not in curves:
        return False
    if jwk.get("use") not in (None, "sig"):
        return False
    return jwk.get("alg") in (None, alg)


def _scopes(claims: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return found


def _audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def _number(claims: Mapping[str, Any], name: str) -> float | Rejection | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return invalid(f"the token's {name} claim is not a number")
    return float(value)


def agent_id_of(claims: Mapping[str, Any], claim: str) -> str | None:
    """The configured claim, else client_id, else azp, else sub (the first non-empty string)."""
    for name in (claim, *FALLBACK_ID_CLAIMS):
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def check_claims(
    claims: Mapping[str, Any], expect: Expectation, *, now: float
) -> AgentIdentity | Rejection:
    """The verified token's claims against one block: the caller, or why it is refused."""
    if claims.get("iss") != expect.issuer:
        return invalid("the token's issuer is not the one this block trusts")
    if expect.audience not in _audiences(claims):
        return invalid(
            f"the token is not meant for this service (aud must contain {expect.audience!r})"
        )
    exp = _number(claims, "exp")
    if isinstance(exp, Rejection):
        return exp
    if exp is None:
        return invalid("the token has no expiry (exp)")
    if now > exp + LEEWAY_SECONDS:
        return invalid("the token has expired; get a new one")
    nbf = _number(claims, "nbf")
    if isinstance(nbf, Rejection):
        return nbf
    if nbf is not None and now < nbf - LEEWAY_SECONDS:
        return invalid("the token is not valid yet (nbf)")
    agent_id = agent_id_of(claims, expect.agent_id_claim)
    if agent_id is None:
        return invalid(
            f"the token names no agent (none of {expect.agent_id_claim}, "
            f"{', '.join(FALLBACK_ID_CLAIMS)})"
        )
    if expect.required_scope and expect.required_scope not in _scopes(claims):
        return Rejection(
            INSUFFICIENT_SCOPE, f"the token lacks the required scope {expect.required_scope!r}"
        )
    return AgentIdentity(issuer=expect.issuer, agent_id=agent_id)


def best(
    claims: Mapping[str, Any], expectations: Iterable[Expectation], *, now: float
) -> AgentIdentity | Rejection:
    """Several blocks may share an issuer (one audience each): the first that accepts wins;
    otherwise the most telling refusal (a missing scope over a mismatch)."""
    refusals: list[Rejection] = []
    for expect in expectations:
        verdict = check_claims(claims, expect, now=now)
        if isinstance(verdict, AgentIdentity):
            return verdict
        refusals.append(verdict)
    if not refusals:
        return invalid("the token's issuer is not trusted here")
    scoped = [r for r in refusals if r.error == INSUFFICIENT_SCOPE]
    return (scoped or refusals)[0]


def parse_claims(payload: bytes) -> Mapping[str, Any] | Rejection:
    try:
        claims = json.loads(payload)
    except (ValueError, UnicodeError):
        return invalid("the token's claims are not JSON")
    if not isinstance(claims, dict):
        return invalid("the token's claims must be a JSON object")
    return claims


def bearer(header: str | None) -> str | Rejection | None:
    """The token of an `Authorization: Bearer …` header; None when there is no header."""
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return invalid("use Authorization: Bearer <token>")
    if len(token.encode("utf-8", "replace")) > MAX_TOKEN_BYTES:
        return invalid(f"the bearer token is larger than {MAX_TOKEN_BYTES // 1024} KiB")
    return token

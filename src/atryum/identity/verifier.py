"""Verifying agent tokens against the enabled `[[auth]]` issuers' published keys.

Keys come from the issuer's JWKS (its `jwks_url`, else the `jwks_uri` of its OIDC discovery
document) and are cached by `kid`. A token signed with a key not in the cache makes one refetch
— never more than one a minute per issuer, so a flood of made-up key ids cannot turn Atryum
into a load generator against the identity provider. When the provider is down the keys already
cached still verify; a token that needs a new key is refused (401) with that reason and the
failure is counted (`atryum_auth_jwks_fetch_failures_total`).

The hot path is CPU only, so the async dependency runs it inline; only a fetch goes to the
thread pool (`KeysNeeded`). A harness sends the same token with every call until it expires, so
verified tokens are remembered (bounded, and forgotten when the key set changes): a repeat costs
a dictionary lookup and the claim checks (expiry included) instead of a signature check and two
decodings — measured here, ~0.4 ms per RS256 token on a loaded 2-core machine
(bench/auth_overhead.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2
from prometheus_client import Counter

from atryum.config import AuthBlock
from atryum.identity import tokens
from atryum.identity.tokens import AgentIdentity, Expectation, Rejection
from atryum.metrics import REGISTRY

if TYPE_CHECKING:  # PyJWT and its cryptography load on the first token (a second of start-up)
    import jwt

log = logging.getLogger("atryum.identity")

REFETCH_INTERVAL_SECONDS = 60.0
MAX_REMEMBERED_TOKENS = 4096
FETCH_TIMEOUT_SECONDS = 5.0
MAX_DOCUMENT_BYTES = 1024 * 1024

JWKS_FETCH_FAILURES = Counter(
    "atryum_auth_jwks_fetch_failures_total",
    "Failed fetches of an [[auth]] issuer's discovery document or key set (the provider is "
    "down or answers wrongly); tokens signed with already cached keys still verify",
    ["issuer"],
    registry=REGISTRY,
)
TOKENS = Counter(
    "atryum_auth_agent_tokens_total",
    "Agent bearer tokens checked, by result (accepted, missing, invalid_token, insufficient_scope)",
    ["result"],
    registry=REGISTRY,
)


class TokenRejected(Exception):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


class KeysNeeded(Exception):
    """The token's key is not cached and a fetch is allowed: call `verify` again with
    `fetch=True` (from a thread, it blocks on the network)."""


Fetch = Callable[[str], Any]


def http_fetch(url: str) -> Any:
    with httpx2.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client:
        resp = client.get(url, headers={"Accept": "application/json"})
    if resp.status_code != 200:
        raise ValueError(f"{url} answered HTTP {resp.status_code}")
    if len(resp.content) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    return resp.json()


@dataclass
class IssuerKeys:
    """One issuer's key set: cached by kid, refetched at most once per interval."""

    issuer: str
    jwks_url: str
    fetch: Fetch
    clock: Callable[[], float] = time.monotonic
    interval: float = REFETCH_INTERVAL_SECONDS
    keys: dict[str | None, list[dict[str, Any]]] = field(default_factory=dict)
    last_fetch: float | None = None
    last_error: str | None = None
    generation: int = 0  # counts key-set changes; tokens verified by an older one re-verify
    lock: threading.Lock = field(default_factory=threading.Lock)
    _parsed: dict[tuple[int, str], jwt.PyJWK] = field(default_factory=dict)

    def candidates(self, kid: str | None, alg: str) -> list[jwt.PyJWK]:
        found = self.keys.get(kid, []) if kid is not None else self._all()
        return [self._key(jwk, alg) for jwk in found if tokens.key_fits(jwk, alg)]

    def _all(self) -> list[dict[str, Any]]:
        return [jwk for group in self.keys.values() for jwk in group]

    def _key(self, jwk: dict[str, Any], alg: str) -> jwt.PyJWK:
        slot = (id(jwk), alg)
        key = self._parsed.get(slot)
        if key is None:
            import jwt

            key = self._parsed[slot] = jwt.PyJWK(jwk, algorithm=alg)
        return key

    def may_fetch(self) -> bool:
        return self.last_fetch is None or self.clock() - self.last_fetch >= self.interval

    def refresh(self) -> None:
        """Fetch the key set now unless it was fetched within the interval (by anyone)."""
        with self.lock:
            if not self.may_fetch():
                return
            self.last_fetch = self.clock()
            try:
                url = self.jwks_url or self._discover()
                keys = _key_index(self.fetch(url))
            except Exception as exc:
                self.last_error = _describe(exc)
                JWKS_FETCH_FAILURES.labels(self.issuer).inc()
                log.warning(
                    "auth_jwks_fetch_failed issuer=%s error=%s", self.issuer, self.last_error
                )
                return
            self.jwks_url = url
            if keys != self.keys:
                self.generation += 1
            self.keys, self._parsed, self.last_error = keys, {}, None

    def _discover(self) -> str:
        doc = self.fetch(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration")
        if not isinstance(doc, dict) or doc.get("issuer") != self.issuer:
            raise ValueError("the discovery document names another issuer")
        url = doc.get("jwks_uri")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ValueError("the discovery document has no jwks_uri")
        return url


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx2.HTTPError):
        return f"{type(exc).__name__}: the identity provider could not be reached"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _key_index(doc: Any) -> dict[str | None, list[dict[str, Any]]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("the key set has no keys list")
    index: dict[str | None, list[dict[str, Any]]] = {}
    for jwk in doc["keys"]:
        if isinstance(jwk, dict) and "d" not in jwk:  # never a private key
            kid = jwk.get("kid")
            index.setdefault(kid if isinstance(kid, str) else None, []).append(jwk)
    return index


@dataclass(frozen=True)
class AgentAuth:
    """The enabled `[[auth]]` blocks of a configuration and their issuers' keys."""

    expectations: Mapping[str, Sequence[Expectation]]
    keys: Mapping[str, IssuerKeys]
    clock: Callable[[], float] = time.time
    # verified token → (issuer, its claims, the key-set generation that verified it)
    verified: dict[str, tuple[str, Mapping[str, Any], int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def enabled(self) -> bool:
        return bool(self.expectations)

    @property
    def issuers(self) -> list[str]:
        return list(self.expectations)

    @property
    def scopes(self) -> list[str]:
        found = {e.required_scope for group in self.expectations.values() for e in group}
        return sorted(s for s in found if s)

    @classmethod
    def from_blocks(
        cls,
        blocks: Sequence[AuthBlock],
        *,
        fetch: Fetch = http_fetch,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> AgentAuth:
        expectations: dict[str, list[Expectation]] = {}
        keys: dict[str, IssuerKeys] = {}
        for block in blocks:
            if not block.enabled:
                continue
            expectations.setdefault(block.issuer, []).append(
                Expectation(
                    issuer=block.issuer,
                    audience=block.audience,
                    required_scope=block.required_scope,
                    agent_id_claim=block.agent_id_claim or "client_id",
                )
            )
            if block.issuer not in keys or block.jwks_url:
                keys[block.issuer] = IssuerKeys(
                    issuer=block.issuer, jwks_url=block.jwks_url, fetch=fetch, clock=monotonic
                )
        return cls(expectations=expectations, keys=keys, clock=clock)

    def verify(self, token: str, *, fetch: bool = False) -> AgentIdentity:
        """The caller of a bearer token, or `TokenRejected`; `KeysNeeded` when the key is not
        cached and may be fetched (only raised while `fetch` is False)."""
        seen = self.verified.get(token)
        if seen is not None and seen[2] == self.keys[seen[0]].generation:
            return self._judge(seen[1], self.expectations[seen[0]])
        head = tokens.inspect(token)
        if isinstance(head, Rejection):
            raise TokenRejected(head)
        expectations = self.expectations.get(head.issuer)
        if not expectations:
            raise TokenRejected(tokens.invalid("the token's issuer is not trusted here"))
        issuer_keys = self.keys[head.issuer]
        candidates = issuer_keys.candidates(head.kid, head.alg)
        if not candidates and issuer_keys.may_fetch():
            if not fetch:
                raise KeysNeeded(head.issuer)
            issuer_keys.refresh()
            candidates = issuer_keys.candidates(head.kid, head.alg)
        if not candidates:
            raise TokenRejected(tokens.invalid(_no_key(head, issuer_keys)))
        payload = _verified_payload(token, head.alg, candidates)
        claims = tokens.parse_claims(payload)
        if isinstance(claims, Rejection):
            raise TokenRejected(claims)
        identity = self._judge(claims, expectations)
        self._remember(token, head.issuer, claims, issuer_keys.generation)
        return identity

    def _judge(
        self, claims: Mapping[str, Any], expectations: Sequence[Expectation]
    ) -> AgentIdentity:
        verdict = tokens.best(claims, expectations, now=self.clock())
        if isinstance(verdict, Rejection):
            raise TokenRejected(verdict)
        return verdict

    def _remember(
        self, token: str, issuer: str, claims: Mapping[str, Any], generation: int
    ) -> None:
        with self.lock:
            if len(self.verified) >= MAX_REMEMBERED_TOKENS:
                del self.verified[next(iter(self.verified))]  # the oldest
            self.verified[token] = (issuer, claims, generation)


def _no_key(head: tokens.Unverified, keys: IssuerKeys) -> str:
    if keys.last_error is not None:
        return (
            f"the token's signing key is unknown and the identity provider's keys could not be "
            f"fetched ({keys.last_error}); try again later"
        )
    return (
        f"no {head.alg} key with id {str(head.kid)[:64]!r} in the issuer's key set "
        "(re-checked within the last minute)"
    )


def _verified_payload(token: str, alg: str, candidates: Sequence[jwt.PyJWK]) -> bytes:
    import jwt

    jws = jwt.PyJWS()
    for key in candidates:
        try:
            decoded = jws.decode_complete(token, key=key, algorithms=[alg])
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise TokenRejected(
                tokens.invalid(f"the token could not be verified ({type(exc).__name__})")
            ) from None
        payload: bytes = decoded["payload"]
        return payload
    raise TokenRejected(tokens.invalid("the token's signature does not verify"))

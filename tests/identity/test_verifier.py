"""Signature checks and the key cache: by kid, refetched at most once a minute per issuer,
cached keys still verifying while the identity provider is down."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from atryum.config import AuthBlock
from atryum.identity.tokens import AgentIdentity
from atryum.identity.verifier import (
    JWKS_FETCH_FAILURES,
    AgentAuth,
    KeysNeeded,
    TokenRejected,
)
from tests.idp.fixtures import SigningKeys

ISS = "https://idp.example"
AUD = "https://atryum.example/"
JWKS_URL = "https://idp.example/jwks"


def public_jwks(keys: SigningKeys, kids: tuple[str, str, str] = ("rsa-1", "ec-1", "ed-1")):
    return {
        "keys": [
            {**RSAAlgorithm.to_jwk(keys.rsa.public_key(), as_dict=True), "kid": kids[0]},
            {**ECAlgorithm.to_jwk(keys.ec.public_key(), as_dict=True), "kid": kids[1]},
            {**OKPAlgorithm.to_jwk(keys.ed.public_key(), as_dict=True), "kid": kids[2]},
        ]
    }


class Provider:
    """The identity provider as `AgentAuth` sees it: documents by URL, or down."""

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys
        self.docs: dict[str, Any] = {
            f"{ISS}/.well-known/openid-configuration": {"issuer": ISS, "jwks_uri": JWKS_URL},
            JWKS_URL: public_jwks(keys),
        }
        self.down = False
        self.fetched: list[str] = []

    def fetch(self, url: str) -> Any:
        self.fetched.append(url)
        if self.down:
            raise ConnectionError("connection refused")
        return self.docs[url]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider() -> Provider:
    return Provider(SigningKeys.generate())


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_auth(provider: Provider, clock: Clock, **block: Any) -> AgentAuth:
    config = AuthBlock(enabled=True, issuer=ISS, audience=AUD, required_scope="go", **block)
    return AgentAuth.from_blocks([config], fetch=provider.fetch, monotonic=clock)


def sign(keys: SigningKeys, alg: str = "RS256", kid: str | None = None, **claims: Any) -> str:
    key, own_kid = keys.for_alg(alg)
    now = int(time.time())
    body = {"iss": ISS, "aud": AUD, "exp": now + 300, "scope": "go", "client_id": "bot"} | claims
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid or own_kid})


def verify(auth: AgentAuth, token: str) -> AgentIdentity:
    """As the dependency does it: inline, then with a fetch when keys are needed."""
    try:
        return auth.verify(token)
    except KeysNeeded:
        return auth.verify(token, fetch=True)


def rejected(call: Callable[[], Any]) -> str:
    with pytest.raises(TokenRejected) as info:
        call()
    return info.value.rejection.message


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "ES256", "EdDSA"])
def test_every_accepted_algorithm_verifies(provider: Provider, clock: Clock, alg: str) -> None:
    auth = make_auth(provider, clock)
    assert verify(auth, sign(provider.keys, alg)) == AgentIdentity(ISS, "bot")


def test_keys_come_from_discovery_once_and_are_cached(provider: Provider, clock: Clock) -> None:
    auth = make_auth(provider, clock)
    with pytest.raises(KeysNeeded):
        auth.verify(sign(provider.keys))  # the hot path never does I/O
    for _ in range(5):
        verify(auth, sign(provider.keys))
    assert provider.fetched == [f"{ISS}/.well-known/openid-configuration", JWKS_URL]


def test_configured_jwks_url_skips_discovery(provider: Provider, clock: Clock) -> None:
    provider.docs["https://keys.example/set"] = provider.docs[JWKS_URL]
    auth = make_auth(provider, clock, jwks_url="https://keys.example/set")
    verify(auth, sign(provider.keys))
    assert provider.fetched == ["https://keys.example/set"]


def test_unknown_kid_refetches_at_most_once_a_minute(provider: Provider, clock: Clock) -> None:
    auth = make_auth(provider, clock)
    verify(auth, sign(provider.keys))
    provider.fetched.clear()
    # the provider rotates: a new kid for the same key material
    provider.docs[JWKS_URL] = public_jwks(provider.keys, ("rsa-2", "ec-2", "ed-2"))
    clock.now += 30
    for _ in range(20):  # a flood of unknown kids within the minute: no fetch at all
        message = rejected(lambda: verify(auth, sign(provider.keys, kid="rsa-2")))
        assert "rsa-2" in message and "last minute" in message
    assert provider.fetched == []
    clock.now += 31
    assert verify(auth, sign(provider.keys, kid="rsa-2")) == AgentIdentity(ISS, "bot")
    assert provider.fetched == [JWKS_URL]  # discovery is remembered
    rejected(lambda: verify(auth, sign(provider.keys, kid="rsa-1")))  # the old kid is gone


def test_provider_down_cached_keys_still_verify(provider: Provider, clock: Clock) -> None:
    auth = make_auth(provider, clock)
    verify(auth, sign(provider.keys))
    provider.down = True
    clock.now += 61
    before = JWKS_FETCH_FAILURES.labels(ISS)._value.get()
    assert verify(auth, sign(provider.keys)) == AgentIdentity(ISS, "bot")
    message = rejected(lambda: verify(auth, sign(provider.keys, kid="new")))
    assert "could not be fetched" in message and "connection refused" in message
    assert JWKS_FETCH_FAILURES.labels(ISS)._value.get() == before + 1
    assert verify(auth, sign(provider.keys, "ES256")) == AgentIdentity(ISS, "bot")


def test_provider_down_from_the_start(provider: Provider, clock: Clock) -> None:
    provider.down = True
    auth = make_auth(provider, clock)
    assert "could not be fetched" in rejected(lambda: verify(auth, sign(provider.keys)))
    provider.down = False
    clock.now += 61
    assert verify(auth, sign(provider.keys)) == AgentIdentity(ISS, "bot")


def test_a_discovery_document_of_another_issuer_is_not_used(
    provider: Provider, clock: Clock
) -> None:
    provider.docs[f"{ISS}/.well-known/openid-configuration"]["issuer"] = "https://evil.example"
    auth = make_auth(provider, clock)
    assert "another issuer" in rejected(lambda: verify(auth, sign(provider.keys)))


def test_hmac_signed_with_the_public_key_is_refused(provider: Provider, clock: Clock) -> None:
    """The classic confusion: HS256 keyed with the RSA public key's PEM (anyone has it)."""
    auth = make_auth(provider, clock)
    verify(auth, sign(provider.keys))
    pem = provider.keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","kid":"rsa-1","typ":"JWT"}')
    body = jwt.utils.base64url_encode(
        f'{{"iss":"{ISS}","aud":"{AUD}","exp":{int(time.time()) + 300},"scope":"go",'
        '"client_id":"bot"}'.encode()
    )
    mac = hmac.new(pem, header + b"." + body, hashlib.sha256).digest()
    forged = b".".join([header, body, jwt.utils.base64url_encode(mac)]).decode()
    assert "not accepted" in rejected(lambda: verify(auth, forged))


def test_alg_none_and_a_mismatched_key_are_refused(provider: Provider, clock: Clock) -> None:
    auth = make_auth(provider, clock)
    verify(auth, sign(provider.keys))
    unsigned = jwt.encode({"iss": ISS, "aud": AUD, "client_id": "bot"}, "", algorithm="none")
    assert "not accepted" in rejected(lambda: verify(auth, unsigned))
    # an RS256 token naming the EC key: no key of that kid may verify RS256
    assert "no RS256 key" in rejected(lambda: verify(auth, sign(provider.keys, kid="ec-1")))


def test_a_token_signed_by_another_key_does_not_verify(provider: Provider, clock: Clock) -> None:
    auth = make_auth(provider, clock)
    stranger = SigningKeys.generate()
    assert "signature" in rejected(lambda: verify(auth, sign(stranger, kid="rsa-1")))
    tampered = sign(provider.keys)
    head, _, sig = tampered.split(".")
    other_body = jwt.utils.base64url_encode(b'{"iss":"' + ISS.encode() + b'","client_id":"x"}')
    forged = ".".join([head, other_body.decode(), sig])
    assert "signature" in rejected(lambda: verify(auth, forged))


def test_private_keys_in_a_key_set_are_ignored(provider: Provider, clock: Clock) -> None:
    provider.docs[JWKS_URL] = {"keys": provider.keys.private_jwks()}
    auth = make_auth(provider, clock)
    assert "no RS256 key" in rejected(lambda: verify(auth, sign(provider.keys)))


def test_unknown_issuer_and_disabled_blocks(provider: Provider, clock: Clock) -> None:
    auth = make_auth(provider, clock)
    token = sign(provider.keys, iss="https://elsewhere.example")
    assert "not trusted" in rejected(lambda: verify(auth, token))
    off = AgentAuth.from_blocks([AuthBlock(enabled=False, issuer=ISS, audience=AUD)])
    assert not off.enabled
    assert provider.fetched == []


def test_two_issuers_equal_client_ids_are_two_identities(clock: Clock) -> None:
    a, b = Provider(SigningKeys.generate()), Provider(SigningKeys.generate())
    other = "https://other-idp.example"
    b.docs = {f"{other}/jwks": public_jwks(b.keys)}

    def fetch(url: str) -> Any:
        return (a if url.startswith(ISS) else b).fetch(url)

    blocks = [
        AuthBlock(enabled=True, issuer=ISS, audience=AUD),
        AuthBlock(enabled=True, issuer=other, audience=AUD, jwks_url=f"{other}/jwks"),
    ]
    auth = AgentAuth.from_blocks(blocks, fetch=fetch, monotonic=clock)
    first = verify(auth, sign(a.keys))
    second = verify(auth, sign(b.keys, iss=other))
    assert first == AgentIdentity(ISS, "bot") and second == AgentIdentity(other, "bot")
    assert first != second
    # b's key does not verify a token claiming a's issuer
    assert "signature" in rejected(lambda: verify(auth, sign(b.keys)))


def test_a_remembered_token_still_expires_and_dies_with_its_key(
    provider: Provider, clock: Clock
) -> None:
    wall = Clock()
    wall.now = time.time()
    config = AuthBlock(enabled=True, issuer=ISS, audience=AUD, required_scope="go")
    auth = AgentAuth.from_blocks([config], fetch=provider.fetch, monotonic=clock, clock=wall)
    token = sign(provider.keys, exp=int(wall.now) + 100)
    assert verify(auth, token) == AgentIdentity(ISS, "bot")
    assert auth.verify(token) == AgentIdentity(ISS, "bot")  # remembered: no key work
    wall.now += 100 + 61
    assert "expired" in rejected(lambda: auth.verify(token))
    wall.now -= 100
    # the provider drops the key; after the next refetch the token is checked again, and fails
    fresh = sign(provider.keys, exp=int(wall.now) + 100)
    assert verify(auth, fresh) == AgentIdentity(ISS, "bot")
    provider.docs[JWKS_URL] = public_jwks(SigningKeys.generate(), ("rsa-2", "ec-2", "ed-2"))
    clock.now += 61
    with pytest.raises(TokenRejected):
        verify(auth, sign(provider.keys, kid="unknown"))  # triggers the refetch
    assert "no RS256 key" in rejected(lambda: verify(auth, fresh))

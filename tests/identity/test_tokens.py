"""The pure token checks of identity.md §1, one rule at a time and by property."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atryum.identity import tokens
from atryum.identity.tokens import (
    INSUFFICIENT_SCOPE,
    INVALID,
    LEEWAY_SECONDS,
    AgentIdentity,
    Expectation,
    Rejection,
    Unverified,
)

ISS = "https://idp.example"
AUD = "https://atryum.example/"
NOW = 1_800_000_000.0
EXPECT = Expectation(issuer=ISS, audience=AUD, required_scope="atryum:invoke")


def _part(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def compact(header: Any, payload: Any, signature: str = "c2ln") -> str:
    return f"{_part(header)}.{_part(payload)}.{signature}"


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISS,
        "aud": AUD,
        "exp": NOW + 300,
        "iat": NOW,
        "scope": "atryum:invoke",
        "client_id": "agent-1",
        "sub": "agent-1",
    }
    merged = base | changes
    return {k: v for k, v in merged.items() if v is not None}


def refused(verdict: object, error: str = INVALID) -> str:
    assert isinstance(verdict, Rejection), verdict
    assert verdict.error == error
    return verdict.message


# -- the token's outside ------------------------------------------------------------------------


def test_inspect_reads_algorithm_kid_and_claimed_issuer() -> None:
    head = tokens.inspect(compact({"alg": "ES256", "kid": "k1"}, {"iss": ISS}))
    assert head == Unverified(alg="ES256", kid="k1", issuer=ISS)


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "HS384", "HS512", "", None, 7])
def test_none_and_hmac_algorithms_are_refused_before_any_key(alg: Any) -> None:
    message = refused(tokens.inspect(compact({"alg": alg}, {"iss": ISS})))
    assert "not accepted" in message


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..sig",
        "!!!.???.sig",
        compact(b"not json", {"iss": ISS}),
        compact(["alg"], {"iss": ISS}),
        compact({"alg": "RS256"}, "a string"),
        compact({"alg": "RS256"}, {"no": "issuer"}),
        compact({"alg": "RS256", "kid": 5}, {"iss": ISS}),
        compact({"alg": "RS256", "crit": ["exp"]}, {"iss": ISS}),
        "é.é.é",
    ],
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    refused(tokens.inspect(token))


def test_tokens_over_16_kib_are_refused_unread() -> None:
    big = compact({"alg": "RS256"}, {"iss": ISS, "pad": "x" * tokens.MAX_TOKEN_BYTES})
    assert "16 KiB" in refused(tokens.inspect(big))
    assert "16 KiB" in refused(tokens.bearer("Bearer " + big))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer   abc.def.ghi  ", "abc.def.ghi"),
    ],
)
def test_bearer_header(header: str | None, expected: str | None) -> None:
    assert tokens.bearer(header) == expected


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer    ", "abc.def.ghi"])
def test_other_authorization_schemes_are_invalid(header: str) -> None:
    refused(tokens.bearer(header))


@pytest.mark.parametrize(
    ("jwk", "alg", "fits"),
    [
        ({"kty": "RSA"}, "RS256", True),
        ({"kty": "RSA"}, "PS256", True),
        ({"kty": "RSA", "alg": "RS256"}, "PS256", False),
        ({"kty": "RSA", "use": "enc"}, "RS256", False),
        ({"kty": "EC", "crv": "P-256"}, "ES256", True),
        ({"kty": "EC", "crv": "P-256"}, "ES384", False),
        ({"kty": "EC", "crv": "P-384"}, "ES384", True),
        ({"kty": "OKP", "crv": "Ed25519"}, "EdDSA", True),
        ({"kty": "OKP", "crv": "X25519"}, "EdDSA", False),
        ({"kty": "EC", "crv": "P-256"}, "RS256", False),
        ({"kty": "oct", "k": "c2VjcmV0"}, "HS256", False),
        ({"kty": "RSA"}, "HS256", False),
    ],
)
def test_a_key_verifies_only_its_own_kind_of_algorithm(
    jwk: dict[str, Any], alg: str, fits: bool
) -> None:
    assert tokens.key_fits(jwk, alg) is fits


# -- the verified claims ------------------------------------------------------------------------


def test_a_good_token_names_its_issuer_and_agent() -> None:
    assert tokens.check_claims(claims(), EXPECT, now=NOW) == AgentIdentity(ISS, "agent-1")


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"iss": "https://evil.example"}, "issuer"),
        ({"aud": "https://elsewhere.example/"}, "not meant for this service"),
        ({"aud": ["https://a.example/", "https://b.example/"]}, "not meant"),
        ({"aud": None}, "not meant"),
        ({"aud": 5}, "not meant"),
        ({"exp": None}, "no expiry"),
        ({"exp": "tomorrow"}, "not a number"),
        ({"exp": True}, "not a number"),
        ({"exp": NOW - LEEWAY_SECONDS - 1}, "expired"),
        ({"nbf": NOW + LEEWAY_SECONDS + 1}, "not valid yet"),
        ({"nbf": "soon"}, "not a number"),
        ({"client_id": None, "sub": None}, "names no agent"),
        ({"client_id": "", "sub": "  "}, "names no agent"),
    ],
)
def test_claims_that_fail(changes: dict[str, Any], needle: str) -> None:
    assert needle in refused(tokens.check_claims(claims(**changes), EXPECT, now=NOW))


def test_leeway_is_sixty_seconds_both_ways() -> None:
    at_edge = claims(exp=NOW - LEEWAY_SECONDS, nbf=NOW + LEEWAY_SECONDS)
    assert isinstance(tokens.check_claims(at_edge, EXPECT, now=NOW), AgentIdentity)


def test_audience_may_be_a_list() -> None:
    ok = claims(aud=["https://other.example/", AUD])
    assert isinstance(tokens.check_claims(ok, EXPECT, now=NOW), AgentIdentity)


@pytest.mark.parametrize(
    "scopes",
    [
        {"scope": "read atryum:invoke"},
        {"scope": None, "scp": "atryum:invoke write"},
        {"scope": None, "scp": ["write", "atryum:invoke"]},
        {"scope": "read", "scp": ["atryum:invoke"]},
    ],
)
def test_required_scope_in_scope_or_scp(scopes: dict[str, Any]) -> None:
    assert isinstance(tokens.check_claims(claims(**scopes), EXPECT, now=NOW), AgentIdentity)


@pytest.mark.parametrize(
    "scopes",
    [
        {"scope": "read write"},
        {"scope": "atryum:invoke-more"},
        {"scope": None},
        {"scope": None, "scp": [1, 2]},
        {"scope": ["atryum:invoke x"]},
    ],
)
def test_missing_scope_is_insufficient_scope(scopes: dict[str, Any]) -> None:
    message = refused(tokens.check_claims(claims(**scopes), EXPECT, now=NOW), INSUFFICIENT_SCOPE)
    assert "atryum:invoke" in message


def test_no_required_scope_accepts_any() -> None:
    expect = Expectation(issuer=ISS, audience=AUD)
    assert isinstance(tokens.check_claims(claims(scope=None), expect, now=NOW), AgentIdentity)


@pytest.mark.parametrize(
    ("present", "agent_id"),
    [
        ({"agent": "a", "client_id": "c", "azp": "z", "sub": "s"}, "a"),
        ({"client_id": "c", "azp": "z", "sub": "s"}, "c"),
        ({"azp": "z", "sub": "s"}, "z"),
        ({"sub": "s"}, "s"),
        ({"agent": 5, "client_id": "", "azp": "z"}, "z"),
    ],
)
def test_agent_id_comes_from_the_claim_then_client_id_azp_sub(
    present: dict[str, Any], agent_id: str
) -> None:
    expect = Expectation(issuer=ISS, audience=AUD, agent_id_claim="agent")
    base = claims(client_id=None, sub=None) | present
    assert tokens.check_claims(base, expect, now=NOW) == AgentIdentity(ISS, agent_id)


def test_several_blocks_for_one_issuer_the_first_that_accepts_wins() -> None:
    other = Expectation(issuer=ISS, audience="https://other.example/")
    assert tokens.best(claims(), [other, EXPECT], now=NOW) == AgentIdentity(ISS, "agent-1")
    unscoped = claims(scope="read")
    # the most telling refusal: the token was for us but lacks the scope
    refused(tokens.best(unscoped, [other, EXPECT], now=NOW), INSUFFICIENT_SCOPE)
    refused(tokens.best(claims(), [], now=NOW))


def test_agent_identity_key_is_issuer_qualified() -> None:
    assert AgentIdentity(ISS, "bot").key == f"{ISS}#bot"
    assert AgentIdentity(ISS, "bot") != AgentIdentity("https://other.example", "bot")


# -- properties ----------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=20)
_numbers = st.one_of(st.none(), st.floats(NOW - 1000, NOW + 1000), st.integers())
_claim_values = st.one_of(st.none(), _text, st.integers(), st.lists(_text, max_size=3))


@given(
    iss=st.one_of(st.just(ISS), _text),
    aud=st.one_of(st.just(AUD), st.lists(st.one_of(st.just(AUD), _text), max_size=3), _text),
    exp=_numbers,
    nbf=_numbers,
    scope=_claim_values,
    scp=_claim_values,
    client_id=_claim_values,
    sub=_claim_values,
)
def test_an_accepted_token_meets_every_rule(**values: Any) -> None:
    """Whatever the claims, acceptance implies each rule of §1 holds; every refusal is one of
    the two errors — nothing else comes out (no exception)."""
    verdict = tokens.check_claims(claims(**values), EXPECT, now=NOW)
    c = claims(**values)
    if isinstance(verdict, Rejection):
        assert verdict.error in (INVALID, INSUFFICIENT_SCOPE)
        return
    assert c["iss"] == ISS
    assert c["aud"] == AUD or AUD in c["aud"]
    assert isinstance(c["exp"], int | float) and c["exp"] + LEEWAY_SECONDS >= NOW
    assert "nbf" not in c or c["nbf"] - LEEWAY_SECONDS <= NOW
    granted = set()
    for name in ("scope", "scp"):
        v = c.get(name)
        granted |= (
            set(v.split()) if isinstance(v, str) else set(v) if isinstance(v, list) else set()
        )
    assert "atryum:invoke" in granted
    assert verdict.agent_id in (c.get("client_id"), c.get("sub"))


@given(header=st.dictionaries(_text, _claim_values), payload=st.dictionaries(_text, _claim_values))
def test_inspect_never_raises_and_never_lets_a_bad_algorithm_through(
    header: dict[str, Any], payload: dict[str, Any]
) -> None:
    head = tokens.inspect(compact(header, payload))
    if isinstance(head, Unverified):
        assert head.alg in tokens.ALGORITHMS and not head.alg.startswith("HS")


@given(st.text(max_size=200))
def test_inspect_of_any_text_is_a_verdict(token: str) -> None:
    assert isinstance(tokens.inspect(token), Unverified | Rejection)

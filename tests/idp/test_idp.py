"""The oidc-provider fixture issues what the identity tests rely on."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
import pytest

from tests.idp.fixtures import AGENT_SCOPE, Idp

ALGS = {"agent-rs": "RS256", "agent-es": "ES256", "agent-ps": "PS256", "agent-ed": "EdDSA"}


def _verify(idp: Idp, token: str, audience: str | None = None) -> dict:
    key = jwt.PyJWKClient(idp.jwks_url).get_signing_key_from_jwt(token).key
    return jwt.decode(
        token,
        key,
        algorithms=list(ALGS.values()),
        audience=audience or idp.resource,
        issuer=idp.issuer,
    )


@pytest.mark.parametrize("client", sorted(ALGS))
def test_agent_tokens_are_signed_jwts_for_the_resource(idp: Idp, client: str) -> None:
    token = idp.mint(client)
    assert jwt.get_unverified_header(token)["alg"] == ALGS[client]
    claims = _verify(idp, token)
    assert claims["client_id"] == client
    assert claims["scope"] == AGENT_SCOPE


def test_scope_resource_lifetime_and_extra_claims(idp: Idp) -> None:
    other = _verify(idp, idp.mint("agent-rs", scope="atryum:other"))
    assert other["scope"] == "atryum:other"
    elsewhere = idp.mint("agent-rs", resource="https://elsewhere.example/")
    assert _verify(idp, elsewhere, "https://elsewhere.example/")["aud"] == (
        "https://elsewhere.example/"
    )
    short = _verify(idp, idp.mint("agent-short"))
    assert short["exp"] - short["iat"] == 3
    assert _verify(idp, idp.mint("agent-claim"))["agent"] == "claim-agent"
    assert _verify(idp, idp.mint("operator-bot"))["atryum_admin"] == "true"


def test_unknown_client_is_refused(idp: Idp) -> None:
    resp = httpx2.post(
        idp.token_url,
        data={"grant_type": "client_credentials", "scope": AGENT_SCOPE},
        auth=("agent-rs", "wrong"),
    )
    assert resp.status_code == 401


def test_code_flow_with_pkce_gives_an_id_token_with_the_role(idp: Idp) -> None:
    """What the UI login does, driven over plain HTTP (the browser test lives with idops)."""
    ui = idp.login_client
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect_uri = "http://127.0.0.1:49152/auth/callback"  # any loopback port matches
    with httpx2.Client(base_url=idp.issuer) as browser:
        resp = browser.get(
            "/auth",
            params={
                "client_id": ui.client_id,
                "response_type": "code",
                "scope": "openid profile",
                "redirect_uri": redirect_uri,
                "code_challenge": challenge.rstrip(b"=").decode(),
                "code_challenge_method": "S256",
                "state": "st",
                "nonce": "nn",
            },
        )
        while resp.status_code in (302, 303) and resp.headers["location"].startswith(
            ("/", idp.issuer)
        ):
            resp = browser.get(resp.headers["location"])
        assert 'name="login"' in resp.text
        action = resp.text.split('action="', 1)[1].split('"', 1)[0]
        resp = browser.post(action, data={"prompt": "login", "login": "april", "password": "x"})
        while resp.headers.get("location", "").startswith(("/", idp.issuer)):
            resp = browser.get(resp.headers["location"])
        assert resp.status_code in (302, 303), resp.text[:2000]
        location = urlsplit(resp.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
        query = parse_qs(location.query)
        assert query["state"] == ["st"]
        tokens = browser.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=(ui.client_id, ui.client_secret),
        ).json()
    claims = _verify(idp, tokens["id_token"], ui.client_id)
    assert claims["sub"] == "april"
    assert claims["nonce"] == "nn"
    assert claims[idp.role_claim] == "approver"
    assert claims["name"] == "April Approver"


def test_tokens_signed_with_the_providers_keys_verify_against_its_key_set(idp: Idp) -> None:
    for alg in ("RS256", "PS256", "ES256", "EdDSA"):
        claims = _verify(idp, idp.sign(idp.claims("agent-claim"), alg=alg))
        assert claims["agent"] == "claim-agent"

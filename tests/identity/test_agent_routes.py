"""Agent routes with `[[auth]]` on, against the real oidc-provider (identity.md §1, §5.3):
challenges, every bad token → 401 (never 500), scope → 403, the token's agent replaces the
body's, callers confined to their own invocations. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from tests.gateway.helpers import agent
from tests.identity.conftest import authed_client
from tests.idp.fixtures import Idp, SigningKeys

HOOK = "/api/v1/external/invocations"
METADATA = "http://testserver/.well-known/oauth-protected-resource"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def submit(client: TestClient, token: str | None, **body: Any) -> Any:
    payload = {"source": "claude-code", "tool": "Bash", "input": {"command": "ls"}, **body}
    return client.post(HOOK, json=payload, headers=bearer(token) if token else {})


def created(client: TestClient, token: str, **body: Any) -> dict[str, Any]:
    r = submit(client, token, **body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def agent_routes(inv_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("POST", HOOK, {"source": "s", "tool": "t", "input": {}}),
        ("GET", f"{HOOK}/{inv_id}", None),
        ("PATCH", f"{HOOK}/{inv_id}", {"execution_status": "cancelled"}),
        ("GET", "/api/v1/agent/rules?source=s&tool=t&agent_id=x", None),
    ]


def test_every_agent_route_challenges_a_caller_without_a_token(
    client: TestClient, idp: Idp
) -> None:
    inv = created(client, idp.mint())
    for method, path, body in agent_routes(inv["invocation_id"]):
        r = client.request(method, path, json=body)
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == f'Bearer resource_metadata="{METADATA}"'
        assert "bearer token" in r.json()["error"]["message"]


@pytest.mark.parametrize("client_id", ["agent-rs", "agent-es", "agent-ps", "agent-ed"])
def test_a_valid_token_identifies_the_agent_and_replaces_the_body_hint(
    client: TestClient, idp: Idp, client_id: str
) -> None:
    inv = created(client, idp.mint(client_id), agent_id="someone-else")
    assert inv["agent_id"] == client_id


def _hmac_confused(idp: Idp) -> str:
    """HS256 keyed with the issuer's RSA public key in PEM form: anyone can make it."""
    pem = idp.keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256)
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","kid":"rsa-1","typ":"at+jwt"}')
    body = jwt.utils.base64url_encode(json.dumps(idp.claims()).encode())
    mac = signing.sign(header + b"." + body, pem)
    return b".".join([header, body, jwt.utils.base64url_encode(mac)]).decode()


BAD_TOKENS = {
    "garbage": lambda idp: "not-a-jwt",
    "three_dots": lambda idp: "a.b.c",
    "oversized": lambda idp: idp.sign(idp.claims(pad="x" * 17_000)),
    "expired": lambda idp: idp.sign(idp.claims(exp=1_700_000_000, iat=1_699_999_000)),
    "not_yet_valid": lambda idp: idp.sign(idp.claims(nbf=4_000_000_000)),
    "no_expiry": lambda idp: idp.sign(idp.claims(exp=None)),
    "wrong_issuer": lambda idp: idp.sign(idp.claims(iss="https://evil.example")),
    "wrong_audience": lambda idp: idp.mint(resource="https://elsewhere.example/"),
    "alg_none": lambda idp: (
        idp.sign(idp.claims()).split(".")[1].join(["eyJhbGciOiJub25lIn0.", "."])
    ),
    "unknown_kid": lambda idp: idp.sign(idp.claims(), kid="rotated-away"),
    "hmac_confusion": _hmac_confused,
    "foreign_key": lambda idp: idp.sign(idp.claims(), key=SigningKeys.generate().rsa),
    "no_agent": lambda idp: idp.sign(idp.claims(client_id=None, sub=None)),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_tokens_are_401_invalid_token_never_500(
    client: TestClient, idp: Idp, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = BAD_TOKENS[case](idp)
    caplog.set_level(logging.DEBUG)
    r = submit(client, token)
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="')
    assert challenge.endswith(f'resource_metadata="{METADATA}"')
    message = r.json()["error"]["message"]
    assert message and token not in message and token not in challenge
    assert token not in caplog.text
    assert client.get(HOOK + "/x", headers=bearer(token)).status_code == 401


def test_other_schemes_and_empty_bearer_are_invalid(client: TestClient) -> None:
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Token abc"):
        r = client.post(HOOK, json={}, headers={"Authorization": header})
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


def test_a_token_without_the_required_scope_is_403(client: TestClient, idp: Idp) -> None:
    r = submit(client, idp.mint(scope="atryum:other"))
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="the token lacks the required '
        'scope \'atryum:invoke\'", scope="atryum:invoke", '
        f'resource_metadata="{METADATA}"'
    )
    assert "atryum:invoke" in r.json()["error"]["message"]


def test_scp_claim_carries_the_scope_too(client: TestClient, idp: Idp) -> None:
    token = idp.sign(idp.claims(scope=None, scp=["read", "atryum:invoke"]))
    assert created(client, token)["agent_id"] == "agent-rs"


def test_the_configured_agent_id_claim_names_the_agent(engine: sa.Engine, idp: Idp) -> None:
    with authed_client(engine, idp.auth_block(agent_id_claim="agent")) as client:
        assert created(client, idp.mint("agent-claim"))["agent_id"] == "claim-agent"
        # without that claim: client_id
        assert created(client, idp.mint("agent-rs"))["agent_id"] == "agent-rs"
        # neither the claim nor client_id: azp, then sub
        azp = idp.sign(idp.claims(client_id=None, azp="from-azp", sub="from-sub"))
        assert created(client, azp)["agent_id"] == "from-azp"
        sub = idp.sign(idp.claims(client_id=None, sub="from-sub"))
        assert created(client, sub)["agent_id"] == "from-sub"


def test_a_caller_reads_and_reports_only_its_own_invocations(
    engine: sa.Engine, client: TestClient, idp: Idp
) -> None:
    agent(engine, "Mine", "agent-rs")
    agent(engine, "Theirs", "agent-es")
    mine = idp.mint("agent-rs")
    inv = created(client, mine)
    path = f"{HOOK}/{inv['invocation_id']}"
    other = idp.mint("agent-es")
    assert client.get(path, headers=bearer(other)).status_code == 404
    r = client.patch(path, json={"execution_status": "cancelled"}, headers=bearer(other))
    assert r.status_code == 404
    assert client.get(path, headers=bearer(mine)).json()["status"] == "pending_approval"
    r = client.patch(path, json={"execution_status": "cancelled"}, headers=bearer(mine))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_repeat_submissions_dedupe_per_verified_caller(client: TestClient, idp: Idp) -> None:
    first = created(client, idp.mint("agent-rs"), idempotency_key="k1")
    again = submit(client, idp.mint("agent-rs"), idempotency_key="k1")
    assert again.status_code == 200 and again.json()["invocation_id"] == first["invocation_id"]
    # another agent's equal key is its own call
    other = created(client, idp.mint("agent-es"), idempotency_key="k1")
    assert other["invocation_id"] != first["invocation_id"]


def test_registry_agents_match_plain_and_issuer_qualified_ids(
    engine: sa.Engine, client: TestClient, idp: Idp
) -> None:
    plain = agent(engine, "Plain", "agent-rs")
    qualified = agent(engine, "Qualified", f"{idp.issuer}#agent-es")
    agent(engine, "Elsewhere", "https://other-idp.example#agent-ps")  # not from this issuer
    for client_id, expected in (
        ("agent-rs", plain.id),
        ("agent-es", qualified.id),
        ("agent-ps", None),
    ):
        assert created(client, idp.mint(client_id))["agent_record_id"] == expected


def test_agent_rules_are_for_the_tokens_agent(
    engine: sa.Engine, client: TestClient, idp: Idp
) -> None:
    mine = agent(engine, "Mine", "agent-rs")
    agent(engine, "Theirs", "agent-es")
    r = client.get(
        "/api/v1/agent/rules",
        params={"source": "claude-code", "tool": "Bash", "agent_id": "agent-es"},
        headers=bearer(idp.mint("agent-rs")),
    )
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["cuid"] == mine.id


def test_operator_routes_are_not_agent_routes(client: TestClient) -> None:
    """No token needed here (operator authentication is its own door, identity.md §2)."""
    assert client.get("/healthz").status_code == 200


def test_hostile_token_text_cannot_break_the_challenge_header(client: TestClient, idp: Idp) -> None:
    token = idp.sign(idp.claims(), kid='k"\r\nX-Injected: 1 é')
    r = submit(client, token)
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert "x-injected" not in {k.lower() for k in r.headers}
    assert challenge.isascii() and "\r" not in challenge and "\n" not in challenge
    assert challenge.count('"') == 6  # three quoted parameters, nothing else quoted


def test_tokens_never_reach_metrics(client: TestClient, idp: Idp) -> None:
    good, bad = idp.mint(), idp.sign(idp.claims(exp=1))
    created(client, good)
    submit(client, bad)
    metrics = client.get("/metrics").text
    assert 'atryum_auth_agent_tokens_total{result="accepted"}' in metrics
    assert 'atryum_auth_agent_tokens_total{result="invalid_token"}' in metrics
    for token in (good, bad):
        for part in token.split("."):
            assert part not in metrics

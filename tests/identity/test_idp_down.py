"""An identity provider that is down: 401 with a clear message and a metric, while keys
already cached keep verifying (identity.md §1; issue 10 "bad input")."""

from __future__ import annotations

import time
from contextlib import ExitStack

import jwt
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.identity.inbound import agent_auth_for
from tests.gateway.helpers import agent
from tests.identity.conftest import authed_client
from tests.idp.fixtures import AGENT_SCOPE, SigningKeys, run_idp
from tests.support import free_port

HOOK = "/api/v1/external/invocations"
BODY = {"source": "claude-code", "tool": "Bash", "input": {}}


def post(client: TestClient, token: str) -> tuple[int, str]:
    r = client.post(HOOK, json=BODY, headers={"Authorization": f"Bearer {token}"})
    return r.status_code, r.json()["error"]["message"] if r.status_code >= 400 else ""


def failures(client: TestClient, issuer: str) -> float:
    prefix = f'atryum_auth_jwks_fetch_failures_total{{issuer="{issuer}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def test_cached_keys_verify_while_the_provider_is_down(engine: sa.Engine) -> None:
    agent(engine, "Bot", "agent-rs")
    provider = ExitStack()
    idp = provider.enter_context(run_idp())
    with provider, authed_client(engine, idp.auth_block()) as client:
        token = idp.mint("agent-rs")
        rotated = idp.sign(idp.claims(), kid="rotated")  # a key Atryum has not seen
        assert post(client, token)[0] == 201
        provider.close()  # the provider is down from here on
        assert post(client, token)[0] == 201  # the cached key still verifies
        # a minute later a token with a new key may trigger a refetch, which fails
        agent_auth_for(client.app.state.ctx).keys[idp.issuer].last_fetch = time.monotonic() - 61
        before = failures(client, idp.issuer)
        status, message = post(client, rotated)
        assert status == 401
        assert "keys could not be fetched" in message and "try again later" in message
        assert failures(client, idp.issuer) == before + 1
        assert post(client, token)[0] == 201


def test_a_provider_down_from_the_start_refuses_with_the_reason(engine: sa.Engine) -> None:
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    block = {"enabled": True, "issuer": issuer, "audience": "a", "required_scope": AGENT_SCOPE}
    claims = {"iss": issuer, "aud": "a", "exp": int(time.time()) + 60, "client_id": "bot"}
    token = jwt.encode(claims, SigningKeys.generate().rsa, algorithm="RS256")
    with authed_client(engine, block) as client:
        before = failures(client, issuer)
        status, message = post(client, token)
        assert status == 401
        assert "could not be reached" in message
        assert failures(client, issuer) == before + 1
        # within the minute no second fetch is made
        assert post(client, token)[0] == 401
        assert failures(client, issuer) == before + 1

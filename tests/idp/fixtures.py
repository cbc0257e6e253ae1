"""A real OpenID provider in the tests: npm's OpenID-Certified `oidc-provider` run by Node.

`idp` (session-scoped) starts tests/idp/idp.mjs once, waits until its discovery document
answers, and stops it at the end. `run_idp(...)` starts a private one (a test that stops it,
or wants other options). `.ci/run` installs the package with `npm install --prefix tests/npm`.

Agents (client credentials, JWT access tokens for a resource indicator, RFC 8707)::

    token = idp.mint("agent-rs")                 # RS256, aud = idp.resource, scope atryum:invoke
    idp.mint("agent-es", scope="atryum:other")   # ES256 (also agent-ps PS256, agent-ed EdDSA)
    idp.mint("agent-short")                      # expires after `short_ttl` seconds
    idp.mint("agent-claim")                      # carries the claim `agent = "claim-agent"`
    idp.mint("operator-bot")                     # carries atryum_role=admin and atryum_admin=true
    idp.mint("agent-rs", resource="https://elsewhere.example/")   # a wrong-audience token

The matching `[[auth]]` block is `idp.auth_block()` (issuer, audience, required_scope).

People (authorization code + PKCE S256, for the UI login): client `idp.login_client` (a
confidential client, secret `idp.login_client.client_secret`, auth method client_secret_basic).
Its redirect URIs are loopback URIs on any port (RFC 8252 §7.3, the client is "native"): by
default `http://127.0.0.1/auth/callback` and `http://localhost/auth/callback` (and the
post-logout URI `http://127.0.0.1/`); pass `redirect_paths=...` to `run_idp` for others. In the
browser the provider shows its development login form: fill `input[name=login]` with a user
name from `idp.users` and `input[name=password]` with anything, press the submit button; consent
is granted without a page. The ID token (and the access token, when `resource=` is sent) carry
`name`, the role claim (`role_claim`, default `atryum_role`) and for admins the Go admin claim
`atryum_admin = "true"`. Users: alice (admin), april (approver), victor (viewer), nora (no role).
Logout: the discovery document's `end_session_endpoint` (RP-initiated logout).
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support import wait_until

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "idp.mjs"
NODE_MODULES = HERE.parent / "npm" / "node_modules" / "oidc-provider"

AGENT_SCOPE = "atryum:invoke"
OTHER_SCOPE = "atryum:other"
RESOURCE = "https://atryum.test/"


@dataclass(frozen=True)
class IdpClient:
    client_id: str
    client_secret: str = field(repr=False)
    alg: str = "RS256"
    ttl: int | None = None
    extra_claims: dict[str, Any] = field(default_factory=dict)
    kind: str = "agent"  # or "login"

    def as_config(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "alg": self.alg,
            "ttl": self.ttl,
            "extra_claims": self.extra_claims or None,
            "kind": self.kind,
        }


@dataclass
class Idp:
    issuer: str
    clients: dict[str, IdpClient]
    users: dict[str, dict[str, Any]]
    resource: str = RESOURCE
    role_claim: str = "atryum_role"

    @property
    def login_client(self) -> IdpClient:
        return self.clients["ui"]

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    def auth_block(self, **overrides: Any) -> dict[str, Any]:
        """An enabled `[[auth]]` block that accepts this provider's agent tokens."""
        return {
            "enabled": True,
            "issuer": self.issuer,
            "audience": self.resource,
            "required_scope": AGENT_SCOPE,
            **overrides,
        }

    def token_response(
        self, client: str = "agent-rs", *, scope: str = AGENT_SCOPE, resource: str | None = None
    ) -> dict[str, Any]:
        c = self.clients[client]
        data = {"grant_type": "client_credentials", "resource": resource or self.resource}
        if scope:
            data["scope"] = scope
        resp = httpx2.post(self.token_url, data=data, auth=(c.client_id, c.client_secret))
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    def mint(
        self, client: str = "agent-rs", *, scope: str = AGENT_SCOPE, resource: str | None = None
    ) -> str:
        """A fresh access token (JWT) for `client` by client credentials."""
        token: str = self.token_response(client, scope=scope, resource=resource)["access_token"]
        return token


def _default_clients(short_ttl: int) -> list[IdpClient]:
    def secret() -> str:
        return secrets.token_urlsafe(24)

    return [
        IdpClient("agent-rs", secret(), "RS256"),
        IdpClient("agent-es", secret(), "ES256"),
        IdpClient("agent-ps", secret(), "PS256"),
        IdpClient("agent-ed", secret(), "EdDSA"),
        IdpClient("agent-short", secret(), "RS256", ttl=short_ttl),
        IdpClient("agent-claim", secret(), "RS256", extra_claims={"agent": "claim-agent"}),
        IdpClient(
            "operator-bot",
            secret(),
            "RS256",
            extra_claims={"atryum_role": "admin", "atryum_admin": "true"},
        ),
        IdpClient("ui", secret(), kind="login"),
    ]


def _users(role_claim: str) -> dict[str, dict[str, Any]]:
    return {
        "alice": {"name": "Alice Admin", role_claim: "admin", "atryum_admin": "true"},
        "april": {"name": "April Approver", role_claim: "approver"},
        "victor": {"name": "Victor Viewer", role_claim: "viewer"},
        "nora": {"name": "Nora Norole"},
    }


@contextmanager
def run_idp(
    *,
    short_ttl: int = 3,
    access_token_ttl: int = 300,
    role_claim: str = "atryum_role",
    redirect_paths: tuple[str, ...] = ("/auth/callback",),
    resource: str = RESOURCE,
) -> Iterator[Idp]:
    """Start a private oidc-provider; stop it on exit."""
    node = shutil.which("node")
    if node is None or not NODE_MODULES.is_dir():
        pytest.fail(
            "oidc-provider is not installed: run `npm install --prefix tests/npm` (Node 20+)"
        )
    clients = _default_clients(short_ttl)
    users = _users(role_claim)
    config = {
        "resource_scope": f"{AGENT_SCOPE} {OTHER_SCOPE}",
        "default_resource": resource,
        "access_token_ttl": access_token_ttl,
        "users": users,
        "user_claims": [role_claim, "atryum_admin"],
        "clients": [
            {
                **c.as_config(),
                "redirect_uris": [
                    f"http://{host}{path}"
                    for host in ("127.0.0.1", "localhost")
                    for path in redirect_paths
                ],
                "post_logout_redirect_uris": ["http://127.0.0.1/", "http://localhost/"],
            }
            for c in clients
        ],
    }
    proc = subprocess.Popen(
        [node, str(SCRIPT)],
        env={**os.environ, "IDP_CONFIG": json.dumps(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if not line:
            pytest.fail(f"oidc-provider did not start (exit code {proc.poll()})")
        issuer = json.loads(line)["issuer"]
        idp = Idp(
            issuer=issuer,
            clients={c.client_id: c for c in clients},
            users=users,
            resource=resource,
            role_claim=role_claim,
        )
        wait_until(lambda: _answers(idp.discovery_url), timeout=30)
        yield idp
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


@pytest.fixture(scope="session")
def idp() -> Iterator[Idp]:
    """The shared oidc-provider (started once per test session)."""
    with run_idp() as provider:
        yield provider

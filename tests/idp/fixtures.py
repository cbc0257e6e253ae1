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

The matching `[[auth]]` block is `idp.auth_block()` (issuer, audience, required_scope). The
provider signs with keys the fixture made (`rsa-1`, `ec-1`, `ed-1`), so a test can also forge a
token signed by the real issuer's key: `idp.sign({...claims}, alg="RS256")` (e.g. an expired
one), starting from `idp.claims("agent-rs")` (what the provider itself would issue).

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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

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


@dataclass(frozen=True)
class SigningKeys:
    """The provider's private keys by kid, made here so tests can sign like the provider."""

    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    ed: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKeys:
        return cls(
            rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            ec=ec.generate_private_key(ec.SECP256R1()),
            ed=ed25519.Ed25519PrivateKey.generate(),
        )

    def private_jwks(self) -> list[dict[str, Any]]:
        keys = [
            {**RSAAlgorithm.to_jwk(self.rsa, as_dict=True), "kid": "rsa-1"},
            {**ECAlgorithm.to_jwk(self.ec, as_dict=True), "kid": "ec-1"},
            {**OKPAlgorithm.to_jwk(self.ed, as_dict=True), "kid": "ed-1"},
        ]
        return [{k: v for k, v in key.items() if k != "key_ops"} | {"use": "sig"} for key in keys]

    def for_alg(self, alg: str) -> tuple[Any, str]:
        if alg.startswith(("RS", "PS")):
            return self.rsa, "rsa-1"
        if alg.startswith("ES"):
            return self.ec, "ec-1"
        return self.ed, "ed-1"


@dataclass
class Idp:
    issuer: str
    clients: dict[str, IdpClient]
    users: dict[str, dict[str, Any]]
    keys: SigningKeys = field(repr=False)
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

    def claims(self, client: str = "agent-rs", **changes: Any) -> dict[str, Any]:
        """The claims the provider puts in `client`'s access token, with `changes` (a value
        of None drops that claim)."""
        now = int(time.time())
        base: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "sub": client,
            "iat": now,
            "exp": now + 300,
            "scope": AGENT_SCOPE,
            "client_id": client,
            "iss": self.issuer,
            "aud": self.resource,
            **self.clients[client].extra_claims,
        }
        merged = base | changes
        return {k: v for k, v in merged.items() if v is not None}

    def sign(
        self,
        claims: dict[str, Any],
        *,
        alg: str = "RS256",
        kid: str | None = None,
        key: Any = None,
    ) -> str:
        """A token signed with the provider's own key for `alg` (or `key`), kid as given."""
        own, own_kid = self.keys.for_alg(alg)
        headers = {"typ": "at+jwt", "kid": kid or own_kid}
        return jwt.encode(claims, key if key is not None else own, algorithm=alg, headers=headers)


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
    keys = SigningKeys.generate()
    config = {
        "keys": keys.private_jwks(),
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
            keys=keys,
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

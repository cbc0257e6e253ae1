"""Atryum with `[[auth]]` pointing at the real oidc-provider (tests/idp): for agent routes
(`client`), and for operators — a private provider whose UI client may redirect to Atryum's
`/ui/auth/callback`, an Atryum configured against it, and one operator API token per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from atryum.config import Config, parse_config
from atryum.identity import api_tokens
from atryum.identity.principal import CLI
from tests.idp.fixtures import Idp, run_idp


@contextmanager
def authed_client(engine: sa.Engine, *blocks: dict[str, Any], **sections: Any) -> Iterator[Any]:
    sections.setdefault("server", {}).setdefault("allowed_hosts", ["testserver"])
    config = parse_config({"auth": list(blocks), **sections}, "(test)")
    with TestClient(create_app(build_context(config, engine), background=False)) as client:
        yield client


@pytest.fixture
def client(engine: sa.Engine, idp: Idp) -> Iterator[TestClient]:
    """Agent routes need a token of the shared provider (required scope atryum:invoke)."""
    with authed_client(engine, idp.auth_block()) as c:
        yield c


API_KEY = {"key": "machine-key-id", "secret": "machine-key-secret-value"}


@pytest.fixture(scope="session")
def op_idp() -> Iterator[Idp]:
    with run_idp(redirect_paths=("/ui/auth/callback",)) as provider:
        yield provider


def auth_config(idp: Idp, *, block: dict[str, Any] | None = None, **sections: Any) -> Config:
    """Atryum with one enabled [[auth]] block for `idp` that also allows the UI login."""
    login = idp.login_client
    data: dict[str, Any] = {
        "auth": [
            {
                **idp.auth_block(),
                "admin_enabled": True,
                "admin_client_id": login.client_id,
                "admin_client_secret": login.client_secret,
                "admin_scopes": "openid profile",
                **(block or {}),
            }
        ],
        "api_key": dict(API_KEY),
        **sections,
    }
    server = data.setdefault("server", {})
    server.setdefault("allowed_hosts", ["testserver"])
    return parse_config(data, "(test)")


@pytest.fixture
def make_client(engine: sa.Engine) -> Iterator[Callable[[Config], TestClient]]:
    clients: list[TestClient] = []

    def make(config: Config) -> TestClient:
        client = TestClient(create_app(build_context(config, engine), background=False))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def role_tokens(engine: sa.Engine) -> dict[str, str]:
    """An operator API token per role: role → value."""
    return {
        role: api_tokens.create_token(
            engine, name=f"{role}-token", role=role, expires_in=timedelta(days=1), actor=CLI
        )[1]
        for role in ("viewer", "approver", "admin")
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


PUBLIC = "http://127.0.0.1:8080"  # a loopback address the provider's UI client may return to


def http_login(idp: Idp, client: TestClient, user: str, *, next_path: str = "/ui/rules") -> Any:
    """Log `user` in through the real provider over plain HTTP; the session cookie lands in
    `client`. Returns Atryum's answer to the callback."""
    resp = client.get(f"/ui/auth/login?issuer=0&next={next_path}", follow_redirects=False)
    assert resp.status_code == 303, resp.text
    location = resp.headers["location"]
    with httpx2.Client() as browser:
        resp = browser.get(location)
        while resp.status_code in (302, 303) and resp.headers["location"].startswith(
            ("/", idp.issuer)
        ):
            resp = browser.get(urljoin(idp.issuer, resp.headers["location"]))
        action = resp.text.split('action="', 1)[1].split('"', 1)[0]
        resp = browser.post(
            urljoin(idp.issuer, action), data={"prompt": "login", "login": user, "password": "x"}
        )
        while resp.headers.get("location", "").startswith(("/", idp.issuer)):
            resp = browser.get(urljoin(idp.issuer, resp.headers["location"]))
    back = urlsplit(resp.headers["location"])
    assert f"{back.scheme}://{back.netloc}" == PUBLIC, back
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)

"""RFC 9728 protected-resource metadata and the challenge that points at it, including the
path-inserted form for an MCP server (the MCP proxy's `/mcp/{server}` takes the same `Caller`)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.identity.inbound import mcp_server_of
from tests.identity.conftest import authed_client
from tests.idp.fixtures import AGENT_SCOPE, Idp

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def test_root_document_names_the_issuers_and_scopes(engine: sa.Engine, idp: Idp) -> None:
    second = {"enabled": True, "issuer": "https://other.example", "audience": "a"}
    disabled = {"enabled": False, "issuer": "https://off.example", "audience": "a"}
    with authed_client(engine, idp.auth_block(), second, disabled) as client:
        r = client.get(WELL_KNOWN)
    assert r.status_code == 200
    assert r.json() == {
        "resource": "http://testserver",
        "authorization_servers": [idp.issuer, "https://other.example"],
        "scopes_supported": [AGENT_SCOPE],
        "bearer_methods_supported": ["header"],
    }


def test_public_base_url_and_the_path_inserted_mcp_document(engine: sa.Engine, idp: Idp) -> None:
    server = {"public_base_url": "https://atryum.example.com/"}
    with authed_client(engine, idp.auth_block(), server=server) as client:
        root = client.get(WELL_KNOWN).json()
        mcp = client.get(f"{WELL_KNOWN}/mcp/github").json()
    assert root["resource"] == "https://atryum.example.com"
    assert mcp["resource"] == "https://atryum.example.com/mcp/github"
    assert mcp["authorization_servers"] == [idp.issuer]


def test_resource_url_overrides_the_resource(engine: sa.Engine, idp: Idp) -> None:
    server = {"public_base_url": "https://atryum.example.com", "resource_url": idp.resource}
    with authed_client(engine, idp.auth_block(), server=server) as client:
        assert client.get(WELL_KNOWN).json()["resource"] == idp.resource.rstrip("/")
        assert client.get(f"{WELL_KNOWN}/mcp/x").json()["resource"] == idp.resource.rstrip("/")
        # the challenge still points where the document is served
        r = client.post("/api/v1/external/invocations", json={})
    assert r.headers["www-authenticate"] == (
        f'Bearer resource_metadata="https://atryum.example.com{WELL_KNOWN}"'
    )


def test_without_auth_there_is_no_protected_resource(engine: sa.Engine) -> None:
    with authed_client(engine) as client:
        r = client.get(WELL_KNOWN)
    assert r.status_code == 404
    assert "[[auth]]" in r.json()["error"]["message"]


def test_the_mcp_proxy_challenges_with_the_servers_document(client: TestClient, idp: Idp) -> None:
    """`/mcp/{server}` takes the same `Caller`: its challenge points at the path-inserted
    document, and a valid token gets through to the proxy (which then reads the body)."""
    r = client.post("/mcp/github")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == (
        f'Bearer resource_metadata="http://testserver{WELL_KNOWN}/mcp/github"'
    )
    ok = client.post("/mcp/github", headers={"Authorization": f"Bearer {idp.mint()}"})
    assert ok.status_code != 401 and "www-authenticate" not in ok.headers


@pytest.mark.parametrize(
    ("path", "server"),
    [
        ("/mcp/github", "github"),
        ("/mcp/github/", "github"),
        ("/mcp/github/sse", "github"),
        ("/mcp/", None),
        ("/mcp", None),
        ("/api/v1/external/invocations", None),
        ("/mcpx/a", None),
    ],
)
def test_mcp_server_of_path(path: str, server: str | None) -> None:
    assert mcp_server_of(path) == server

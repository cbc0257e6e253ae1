"""OAuth 2.0 protected-resource metadata (RFC 9728) for the agent routes.

`/.well-known/oauth-protected-resource` describes the agent API as a whole and
`/.well-known/oauth-protected-resource/mcp/{server}` (the path-inserted form of §3.1) one MCP
server. A client that got a 401 follows the challenge's `resource_metadata` here to learn which
authorization servers issue tokens for Atryum and with which scope. `resource` is
`public_base_url` + the path, unless `[server] resource_url` names the one resource identifier
the identity providers were told about (they insist on registered audiences).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from atryum.errors import NotFound
from atryum.identity.inbound import METADATA_PATH, agent_auth_for, public_base

router = APIRouter(tags=["identity"])


class ProtectedResource(BaseModel):
    resource: str
    authorization_servers: list[str]
    scopes_supported: list[str]
    bearer_methods_supported: list[str]


def _document(request: Request, path: str) -> ProtectedResource:
    ctx: Any = request.app.state.ctx
    auth = agent_auth_for(ctx)
    if not auth.enabled:
        raise NotFound(
            "agent authentication is not configured: add an enabled [[auth]] block to "
            "atryum.toml to protect the agent routes"
        )
    resource = ctx.config.server.resource_url.rstrip("/") or f"{public_base(request)}{path}"
    return ProtectedResource(
        resource=resource,
        authorization_servers=auth.issuers,
        scopes_supported=auth.scopes,
        bearer_methods_supported=["header"],
    )


@router.get(METADATA_PATH, response_model=ProtectedResource)
def protected_resource(request: Request) -> ProtectedResource:
    return _document(request, "")


@router.get(f"{METADATA_PATH}/mcp/{{server}}", response_model=ProtectedResource)
def mcp_protected_resource(server: str, request: Request) -> ProtectedResource:
    return _document(request, f"/mcp/{server}")

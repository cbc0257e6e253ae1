"""The one place that decides who may use an operator route (identity.md §2-4).

`OperatorGate` wraps the whole ASGI app, so every route — including ones added later, and the
static files — passes it: it refuses Host names Atryum does not serve, classifies the route
(`roles.classify`), refuses cross-site changes, and, once any `[[auth]]` block is enabled,
authenticates the operator (UI session cookie, operator API token, admin-claim bearer token or
the machine key), checks the role and, for cookie-authenticated changes, the CSRF token. The
principal it found is what the `Operator` dependency hands to routes, and what pages render.
Agent routes are left to the agent-token dependency (`Caller`) untouched.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atryum.auth import KEY_HEADER, SECRET_HEADER, machine_key_matches
from atryum.config import Config
from atryum.context import AppContext
from atryum.errors import Unauthorized
from atryum.identity import api_tokens, csrf, sessions
from atryum.identity.headers import security_headers
from atryum.identity.hosts import HostAllowList, operators_must_authenticate
from atryum.identity.oidc import verify_bearer
from atryum.identity.principal import ANONYMOUS, OperatorPrincipal, Role, role_allows
from atryum.identity.roles import (
    ANY_HOST_PATHS,
    SAFE_METHODS,
    RouteClass,
    api_key_may,
    classify,
    role_from_claims,
)

log = logging.getLogger("atryum.identity")

# The machine key's principal: a viewer that may also trigger syncs (`roles.api_key_may`).
MACHINE_KEY = OperatorPrincipal(
    issuer="", subject="api_key", name="machine API key", method="api_key", role="viewer"
)
COOKIE = "atryum_session"
SECURE_COOKIE = "__Host-atryum_session"


@dataclass(frozen=True)
class OperatorView:
    """What a page knows of the operator: who, the session's CSRF token, the mode."""

    principal: OperatorPrincipal
    csrf_token: str = ""
    authenticated: bool = False  # operator authentication is on
    open_by_choice: bool = False  # [server] allow_unauthenticated: every page says so

    def can(self, role: Role) -> bool:
        return role_allows(self.principal.role, role)


_current: contextvars.ContextVar[OperatorView | None] = contextvars.ContextVar(
    "atryum_operator", default=None
)


def current_view() -> OperatorView | None:
    """The operator of the request being served (set by the gate; None outside one)."""
    return _current.get()


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else COOKIE


def is_secure(config: Config, scope: Scope) -> bool:
    return scope.get("scheme") == "https" or config.server.public_base_url.startswith("https:")


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    challenge: str | None = None  # WWW-Authenticate


@dataclass(frozen=True)
class Admitted:
    principal: OperatorPrincipal
    csrf_token: str = ""
    by_cookie: bool = False


def display_name(claims: Mapping[str, Any]) -> str:
    for key in ("name", "preferred_username", "email", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:256]
    return "unknown"


def _bearer(ctx: AppContext, value: str) -> Admitted | Refusal:
    if value.startswith(api_tokens.PREFIX):
        principal = api_tokens.authenticate(ctx.engine, value)
        if principal is None:
            return Refusal(
                401,
                "the operator API token is unknown, expired or revoked; create a new one with "
                "`atryum token create`",
                'Bearer error="invalid_token"',
            )
        return Admitted(principal)
    try:
        block, identity, claims = verify_bearer(ctx, value)
    except Unauthorized as exc:
        return Refusal(401, exc.message, 'Bearer error="invalid_token"')
    if not block.admin_enabled:
        return Refusal(
            403,
            "agent credentials cannot use operator routes (this issuer's [[auth]] block has "
            "admin_enabled = false)",
        )
    role = role_from_claims(claims, block=block, role_claim=ctx.config.operator.role_claim)
    if role is None:
        return Refusal(
            403,
            f"the token carries no operator role: claim {ctx.config.operator.role_claim!r} "
            f"(viewer, approver or admin) or {block.admin_claim!r} = "
            f"{block.admin_claim_value!r}",
        )
    principal = OperatorPrincipal(
        issuer=block.issuer,
        subject=str(claims.get("sub", "")),
        name=display_name(claims),
        method="bearer",
        role=role,
        agent_ids=(identity.agent_id,),
    )
    return Admitted(principal)


def _machine_key(ctx: AppContext, request: Request) -> Admitted | Refusal:
    headers = request.headers
    if not machine_key_matches(
        ctx.config.api_key, headers.get(KEY_HEADER), headers.get(SECRET_HEADER)
    ):
        return Refusal(401, "invalid machine API key or secret")
    if not api_key_may(request.method, request.url.path):
        return Refusal(
            403,
            "the machine API key may only trigger a sync (POST /api/v1/agents/sync) and read "
            "the JSON API; use an operator API token for anything else",
        )
    return Admitted(MACHINE_KEY)


def _credential(ctx: AppContext, request: Request, *, secure: bool) -> Admitted | Refusal:
    """Who the request says it is: bearer token, machine key or session cookie, in that order."""
    headers = request.headers
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return Refusal(401, "Authorization must be `Bearer <token>`", "Bearer")
        return _bearer(ctx, value.strip())
    if headers.get(KEY_HEADER) is not None or headers.get(SECRET_HEADER) is not None:
        return _machine_key(ctx, request)
    session_id = request.cookies.get(cookie_name(secure))
    if session_id:
        session = sessions.resume_session(
            ctx.engine, session_id=session_id, settings=ctx.config.operator
        )
        if session is not None:
            return Admitted(session.principal, csrf_token=session.csrf_token, by_cookie=True)
    return Refusal(
        401,
        "operator authentication is required: log in to the UI, or send an operator API "
        "token or an admin bearer token as `Authorization: Bearer <token>`",
        "Bearer",
    )


def authenticate(
    ctx: AppContext, request: Request, route: RouteClass, *, secure: bool
) -> Admitted | Refusal:
    """Who the operator is and whether they may use `route` (runs in the thread pool)."""
    admitted = _credential(ctx, request, secure=secure)
    if isinstance(admitted, Refusal):
        return admitted
    assert route.role is not None
    principal = admitted.principal
    # the machine key's routes are its own short list, checked with the key
    if principal is not MACHINE_KEY and not role_allows(principal.role, route.role):
        return Refusal(
            403, f"{principal.name} has the role {principal.role}; this needs {route.role}"
        )
    if admitted.by_cookie and request.method not in SAFE_METHODS:
        if not csrf.proves_same_origin(request.headers, _origins(ctx.config, request.scope)):
            return Refusal(403, "a change made with the session cookie must be same-origin")
        if not csrf.token_matches(request.headers, admitted.csrf_token):
            return Refusal(403, "the CSRF token is missing or wrong; reload the page and try again")
    return admitted


def _origins(config: Config, scope: Scope) -> set[str]:
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
    return csrf.served_origins(
        scheme=str(scope.get("scheme", "http")),
        host=host,
        public_base_url=config.server.public_base_url,
    )


def _wants_html(request: Request) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and request.url.path.startswith("/ui/")
        and "text/html" in request.headers.get("accept", "")
    )


class OperatorGate:
    """ASGI middleware: Host check, security headers, and operator authentication."""

    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app = app
        self.ctx = ctx
        self.hosts = HostAllowList(ctx.config)
        self.required = operators_must_authenticate(ctx.config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = security_headers(path)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in extra if k not in names),
                ]
            await send(message)

        request = Request(scope)
        if path not in ANY_HOST_PATHS and not self.hosts.allows(request.headers.get("host")):
            await _error(400, "this Host is not served here (see [server] allowed_hosts)")(
                scope, receive, send_with_headers
            )
            return
        route = classify(request.method, path)
        if route.kind in ("agent", "public"):
            await self.app(scope, receive, send_with_headers)
            return
        if request.method not in SAFE_METHODS:
            why = csrf.cross_site(request.headers, _origins(self.ctx.config, scope))
            if why:
                log.warning("cross-site request refused path=%s", path)
                await _error(403, f"cross-site request refused: {why}")(
                    scope, receive, send_with_headers
                )
                return
        if route.kind == "login":
            await self.app(scope, receive, send_with_headers)
            return
        view = await self._admit(request, route)
        if isinstance(view, Response):
            await view(scope, receive, send_with_headers)
            return
        scope.setdefault("state", {})["operator"] = view.principal
        token = _current.set(view)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            _current.reset(token)

    async def _admit(self, request: Request, route: RouteClass) -> OperatorView | Response:
        config = self.ctx.config
        if not self.required:
            return OperatorView(ANONYMOUS, open_by_choice=config.server.allow_unauthenticated)
        secure = is_secure(config, request.scope)
        found = await run_in_threadpool(authenticate, self.ctx, request, route, secure=secure)
        if isinstance(found, Admitted):
            return OperatorView(found.principal, csrf_token=found.csrf_token, authenticated=True)
        if _wants_html(request):
            from atryum.web.render import refusal_page

            nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return refusal_page(
                self.ctx, status=found.status, message=found.message, next_path=quote(nxt)
            )
        response = _error(found.status, found.message)
        if found.challenge:
            response.headers["WWW-Authenticate"] = found.challenge
        return response


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)


def operator_of(request: Request) -> OperatorPrincipal:
    """The operator the gate admitted for this request."""
    principal = getattr(request.state, "operator", None)
    if isinstance(principal, OperatorPrincipal):
        return principal
    if operators_must_authenticate(request.app.state.ctx.config):
        raise Unauthorized("operator authentication is required for this route")
    return ANONYMOUS

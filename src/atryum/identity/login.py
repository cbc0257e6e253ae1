"""UI login through OIDC: authorization code + PKCE S256, `state`, `nonce`, issuer check.

Backend-for-frontend: the code is exchanged here, the ID token verified here, and the tokens
are dropped once the person's name and role are read; the browser only ever holds the opaque
session cookie (`__Host-` prefixed over HTTPS, HttpOnly, SameSite=Lax). Pending logins live in
the database, so a callback may reach any replica.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx2
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from atryum.config import AuthBlock, Config
from atryum.context import AppContext
from atryum.db.types import utcnow
from atryum.errors import Unauthorized
from atryum.identity import csrf, sessions, store
from atryum.identity.oidc import ProviderError, endpoint, verify_id_token
from atryum.identity.operators import cookie_name, display_name, is_secure
from atryum.identity.principal import ROLES
from atryum.identity.roles import role_from_claims
from atryum.identity.secrets import digest

log = logging.getLogger("atryum.identity")

CALLBACK_PATH = "/ui/auth/callback"
LOGIN_PATH = "/ui/auth/login"
LOGOUT_PATH = "/ui/auth/logout"
LOGIN_TTL = timedelta(minutes=10)
DEFAULT_SCOPES = "openid profile email"

router = APIRouter(include_in_schema=False)


def login_blocks(config: Config) -> list[tuple[int, AuthBlock]]:
    """The blocks a person can log in with: enabled, admin_enabled, with a client id."""
    return [
        (i, b)
        for i, b in enumerate(config.auth)
        if b.enabled and b.admin_enabled and b.admin_client_id
    ]


def _scopes(block: AuthBlock) -> str:
    raw = block.admin_scopes
    words = (raw.split() if isinstance(raw, str) else list(raw)) or DEFAULT_SCOPES.split()
    return " ".join(dict.fromkeys(["openid", *words]))


def redirect_uri(config: Config, request: Request) -> str:
    base = config.server.public_base_url.rstrip("/")
    if not base:
        base = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
    return base + CALLBACK_PATH


def _safe_next(value: str) -> str:
    """Only a path of this UI: never another origin (`//evil`, `https://…`)."""
    if value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value[:2048]
    return "/ui/"


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def _page(ctx: AppContext, status: int, message: str) -> HTMLResponse:
    from atryum.web.render import refusal_page

    return refusal_page(ctx, status=status, message=message, next_path="/ui/")


@router.get(LOGIN_PATH)
def login(request: Request, issuer: int = Query(0, ge=0, le=1000), next: str = "/ui/") -> Response:
    ctx = _ctx(request)
    blocks = dict(login_blocks(ctx.config))
    block = blocks.get(issuer)
    if block is None:
        return _page(
            ctx,
            404,
            "no UI login is configured for that issuer: set admin_enabled = true and "
            "admin_client_id in an enabled [[auth]] block",
        )
    try:
        authorize = endpoint(block, "authorization_endpoint")
    except ProviderError as exc:
        return _page(ctx, 502, f"the identity provider is unavailable ({exc}); try again")
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    now = utcnow()
    with ctx.engine.begin() as conn:
        store.delete_logins_before(conn, now - LOGIN_TTL)
        store.insert_login(
            conn,
            {
                "state_hash": digest(state),
                "issuer": block.issuer,
                "nonce": nonce,
                "code_verifier": verifier,
                "return_to": _safe_next(next),
                "created_at": now,
            },
        )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": block.admin_client_id,
            "redirect_uri": redirect_uri(ctx.config, request),
            "scope": _scopes(block),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
    )
    sep = "&" if "?" in authorize else "?"
    return RedirectResponse(f"{authorize}{sep}{query}", status_code=303)


def _exchange(block: AuthBlock, *, code: str, verifier: str, redirect: str) -> dict[str, Any]:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect,
        "code_verifier": verifier,
    }
    auth: tuple[str, str] | None = None
    if block.admin_client_secret is not None and block.admin_client_secret.get_secret_value():
        auth = (block.admin_client_id, block.admin_client_secret.get_secret_value())
    else:
        data["client_id"] = block.admin_client_id
    try:
        resp = httpx2.post(endpoint(block, "token_endpoint"), data=data, auth=auth, timeout=10)
    except httpx2.HTTPError as exc:
        raise ProviderError(f"token endpoint: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise Unauthorized(
            f"the identity provider refused the login code (HTTP {resp.status_code})"
        )
    body: dict[str, Any] = resp.json()
    return body


def _userinfo(block: AuthBlock, access_token: str) -> dict[str, Any]:
    """Claims of the userinfo endpoint, if the provider has one (roles often live there)."""
    try:
        url = endpoint(block, "userinfo_endpoint")
        resp = httpx2.get(url, headers={"Authorization": f"Bearer {access_token}"}, timeout=10)
    except (ProviderError, httpx2.HTTPError):
        return {}
    if resp.status_code != 200:
        return {}
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@router.get(CALLBACK_PATH)
def callback(
    request: Request,
    code: str = "",
    state: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    ctx = _ctx(request)
    if error:
        return _page(
            ctx, 401, f"the identity provider refused the login: {error_description or error}"[:500]
        )
    with ctx.engine.begin() as conn:
        pending = store.take_login(conn, digest(state)) if state else None
    if pending is None or pending["created_at"] + LOGIN_TTL <= utcnow():
        return _page(ctx, 400, "this login link is unknown or expired; start the login again")
    blocks = [b for _, b in login_blocks(ctx.config) if b.issuer == pending["issuer"]]
    if not blocks or not code:
        return _page(ctx, 400, "the login answer is incomplete; start the login again")
    block = blocks[0]
    try:
        tokens = _exchange(
            block,
            code=code,
            verifier=pending["code_verifier"],
            redirect=redirect_uri(ctx.config, request),
        )
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthorized("the identity provider sent no ID token")
        claims = verify_id_token(ctx, block, id_token)
    except ProviderError as exc:
        return _page(ctx, 502, f"the identity provider is unavailable ({exc}); try again")
    except Unauthorized as exc:
        log.warning("ui login refused issuer=%s reason=%s", block.issuer, exc.message)
        return _page(ctx, 401, f"login refused: {exc.message}")
    if not secrets.compare_digest(str(claims.get("nonce", "")), pending["nonce"]):
        return _page(ctx, 401, "login refused: the ID token's nonce does not match")
    access = tokens.get("access_token")
    extra = _userinfo(block, access) if isinstance(access, str) else {}
    if extra.get("sub") not in (None, claims["sub"]):
        extra = {}
    merged = {**extra, **claims}
    role = role_from_claims(merged, block=block, role_claim=ctx.config.operator.role_claim)
    if role is None:
        log.warning("ui login without a role issuer=%s", block.issuer)
        return _page(
            ctx,
            403,
            f"{display_name(merged)} has no Atryum role: the identity provider must send the "
            f"claim {ctx.config.operator.role_claim!r} with one of {', '.join(ROLES)}",
        )
    session_id = sessions.create_session(
        ctx.engine,
        issuer=block.issuer,
        subject=str(claims["sub"]),
        name=display_name(merged),
        role=role,
        settings=ctx.config.operator,
    )
    log.info("ui login issuer=%s role=%s", block.issuer, role)
    response = RedirectResponse(pending["return_to"], status_code=303)
    secure = is_secure(ctx.config, request.scope)
    response.set_cookie(
        cookie_name(secure),
        session_id,
        max_age=ctx.config.operator.session_absolute_hours * 3600,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    return response


@router.post(LOGOUT_PATH)
def logout(request: Request) -> Response:
    """Ends the session on the server (the cookie alone would outlive a deleted cookie)."""
    ctx = _ctx(request)
    secure = is_secure(ctx.config, request.scope)
    name = cookie_name(secure)
    session_id = request.cookies.get(name)
    if session_id:
        live = sessions.resume_session(
            ctx.engine, session_id=session_id, settings=ctx.config.operator
        )
        if live is not None and not csrf.token_matches(request.headers, live.csrf_token):
            return Response(
                '{"error": {"message": "the CSRF token is missing or wrong"}}',
                status_code=403,
                media_type="application/json",
            )
        sessions.end_session(ctx.engine, session_id=session_id)
    response = Response(status_code=204)
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
    return response

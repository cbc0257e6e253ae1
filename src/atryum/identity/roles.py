"""Which routes are whose, and what role a set of claims grants (identity.md §2).

Routes are classified by path and method in this one place, so a route another module adds is an
operator route, protected by role, without any help from it: reads need `viewer`, approve/deny
`approver`, every other change `admin`. Only the agent routes and a short public list are exempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from atryum.config import AuthBlock
from atryum.identity.principal import Role, parse_role

Kind = Literal["agent", "public", "login", "operator"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AGENT_PREFIXES = ("/api/v1/external/", "/api/v1/agent/", "/mcp/")
AGENT_EXACT = frozenset({("POST", "/api/v1/invocations")})
PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics"})
PUBLIC_PREFIXES = ("/.well-known/", "/ui/static/")
# ValidMind's change events carry their own HMAC signature (agent-sync.md §5).
PUBLIC_EXACT = frozenset({("POST", "/api/v1/validmind/events")})
LOGIN_PREFIX = "/ui/auth/"
# Probes and scrapers address a replica by its IP, so these answer whatever the Host header.
ANY_HOST_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass(frozen=True)
class RouteClass:
    kind: Kind
    role: Role | None = None  # the least role an operator route needs


def classify(method: str, path: str) -> RouteClass:
    method = method.upper()
    if path == "/mcp" or path.startswith(AGENT_PREFIXES) or (method, path) in AGENT_EXACT:
        return RouteClass("agent")
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or (method, path) in PUBLIC_EXACT:
        return RouteClass("public")
    if path.startswith(LOGIN_PREFIX):
        return RouteClass("login")
    if method in SAFE_METHODS:
        return RouteClass("operator", "viewer")
    if method == "POST" and path.rstrip("/").endswith(("/approve", "/deny")):
        return RouteClass("operator", "approver")
    return RouteClass("operator", "admin")


# Only what ValidMind's backend needs: the sync trigger and reads outside the UI pages (the JSON
# API and the Go original's reporting routes).
def api_key_may(method: str, path: str) -> bool:
    if method.upper() == "POST" and path == "/api/v1/agents/sync":
        return True
    return method.upper() in SAFE_METHODS and not path.startswith("/ui/")


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by its exact name, else by a dotted path into nested objects."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _same(value: Any, expected: str | bool | int) -> bool:
    if isinstance(value, bool) or isinstance(expected, bool):
        return str(value).lower() == str(expected).lower()
    return str(value) == str(expected)


def admin_claim_matches(claims: Mapping[str, Any], block: AuthBlock) -> bool:
    """Go's admin claim: equal to `admin_claim_value` (string, bool or int), or a list that
    contains it, or a space-separated string (like `scope`) that contains it."""
    value = claim(claims, block.admin_claim)
    if value is None:
        return False
    if isinstance(value, list):
        return any(_same(v, block.admin_claim_value) for v in value)
    if isinstance(value, str) and " " in value:
        return any(_same(v, block.admin_claim_value) for v in value.split())
    return _same(value, block.admin_claim_value)


def role_from_claims(
    claims: Mapping[str, Any], *, block: AuthBlock, role_claim: str
) -> Role | None:
    """The role claim's value, else `admin` for Go's admin claim, else None (no default role)."""
    role = parse_role(claim(claims, role_claim)) if role_claim else None
    if role is not None:
        return role
    return "admin" if admin_claim_matches(claims, block) else None

"""The operator principal: who is acting on an operator route, how they proved it, what they may do.

Roles are ordered: each includes everything the one below it may do (identity.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["viewer", "approver", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "approver", "admin")

# How an operator authenticated: a UI session (OIDC login), an admin-claim bearer token from an
# [[auth]] issuer, an operator API token issued by Atryum, the [api_key] machine key, the CLI on
# the server's own machine, or nobody (development mode / allow_unauthenticated).
Method = Literal["session", "bearer", "api_token", "api_key", "cli", "none"]


def role_allows(role: Role, needed: Role) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def parse_role(value: Any) -> Role | None:
    """A role claim's value (a string, or a list of strings: the highest role wins)."""
    values = value if isinstance(value, list) else [value]
    found = [v.strip().lower() for v in values if isinstance(v, str)]
    best: Role | None = None
    for role in ROLES:
        if role in found:
            best = role
    return best


@dataclass(frozen=True)
class OperatorPrincipal:
    issuer: str
    subject: str
    name: str
    method: Method
    role: Role
    # The ids this principal would have as an agent at its issuer (subject, client_id, azp):
    # what the four-eyes check compares with the call's identity and its agent's bindings.
    agent_ids: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How records name the principal: `Alice <https://idp.example#alice>`."""
        return self.name if self.name == self.ref else f"{self.name} <{self.ref}>"[:256]

    @property
    def ref(self) -> str:
        """A stable, readable reference, e.g. `https://idp.example#alice` or `api_token#ci`."""
        return f"{self.issuer}#{self.subject}" if self.issuer else self.subject

    def describe(self) -> dict[str, Any]:
        """What audit records keep of the principal (never a credential)."""
        return {
            "issuer": self.issuer,
            "subject": self.subject,
            "name": self.name,
            "method": self.method,
            "role": self.role,
        }


#: The operator when nothing authenticates operators (development mode, allow_unauthenticated).
ANONYMOUS = OperatorPrincipal(
    issuer="", subject="operator", name="operator", method="none", role="admin"
)
#: `atryum token …` run on the server's own machine (it holds the database credentials).
CLI = OperatorPrincipal(issuer="", subject="cli", name="atryum CLI", method="cli", role="admin")
#: Changes Atryum makes on its own behalf (start-up seeding, the demo).
SYSTEM = OperatorPrincipal(issuer="", subject="atryum", name="Atryum", method="none", role="admin")

Actor = OperatorPrincipal | str

"""Page routes of operator identity: the Audit page (who changed what) and operator API tokens.

Reads go through the services; creating and revoking a token is done by the page's JavaScript
through `/api/v1/tokens`, the one write path (the new value is shown once, in the page only).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from atryum.audit import AuditEntry, AuditFilter
from atryum.audit.api import read_page
from atryum.context import AppContext, get_ctx
from atryum.db.types import utcnow
from atryum.identity import api_tokens
from atryum.identity.principal import ROLES
from atryum.web.gateway_views import Paging
from atryum.web.render import page

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(get_ctx)]
PAGE_SIZE = 50
ENTITIES = ("rule", "policy", "settings", "agent", "api_token", "mcp_server", "llm_config")


def changed_fields(entry: AuditEntry) -> list[tuple[str, str, str]]:
    """(field, before, after) for every field the change touched."""
    before, after = entry.before or {}, entry.after or {}
    keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
    return [(k, _show(before.get(k)), _show(after.get(k))) for k in keys]


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value) or "(none)"
    return str(value)


@router.get("/ui/audit")
def audit_page(
    ctx: Ctx, entity: str = "", actor: str = "", offset: Annotated[int, Query(ge=0)] = 0
) -> HTMLResponse:
    flt = AuditFilter(entity=entity or None, actor=actor.strip() or None)
    items, total = read_page(ctx, flt=flt, offset=offset, limit=PAGE_SIZE)
    return page(
        ctx,
        "audit.html",
        title="Audit",
        nav="audit",
        rows=[(e, changed_fields(e)) for e in items],
        paging=Paging(offset=offset, limit=PAGE_SIZE, total=total),
        entity=entity,
        actor=actor,
        entities=ENTITIES,
        query=urlencode({"entity": entity, "actor": actor}),
    )


@router.get("/ui/tokens")
def tokens_page(ctx: Ctx) -> HTMLResponse:
    now = utcnow()
    tokens = [(t, t.state(now)) for t in api_tokens.list_tokens(ctx.engine)]
    return page(
        ctx,
        "tokens.html",
        title="API tokens",
        nav="tokens",
        tokens=tokens,
        roles=ROLES,
        default_days=ctx.config.operator.api_token_default_days,
    )

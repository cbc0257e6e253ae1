"""Page routes of the gateway: invocations (live list, detail with approve/deny) and rules.

Reads go through the gateway services; every change is made by the pages' JavaScript through
the JSON API (`/api/v1/review/…`, `/api/v1/rules`, `/api/v1/policy`), the one write path.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from atryum.agents import service as agents
from atryum.agents.store import AgentFilter
from atryum.context import AppContext, get_ctx
from atryum.errors import NotFound
from atryum.gateway import rules, service
from atryum.gateway.runtime import runtime_for
from atryum.gateway.store import InvocationFilter
from atryum.limits import INT32_MAX
from atryum.web.gateway_views import (
    ACTIONS,
    INVOCATION_STATUSES,
    POLICIES,
    Paging,
    agent_choices,
    event_rows,
    invocation_rows,
    judge_rows,
    pretty_json,
    rule_names,
    rule_rows,
)
from atryum.web.judge_ui import judge_choices
from atryum.web.render import not_found, page, render_fragment

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(get_ctx)]
PAGE_SIZE = 50
PICKER_SIZE = 50


def _rule_names(ctx: AppContext) -> dict[str, str]:
    return rule_names(rule_rows(rules.list_rules(ctx.engine)))


def _list(ctx: AppContext, status: str, offset: int) -> dict[str, Any]:
    status = status if status in INVOCATION_STATUSES else ""
    flt = InvocationFilter(statuses=[status] if status else [])
    items, total = service.list_invocations(
        ctx.engine, flt=flt, offset=offset, limit=PAGE_SIZE, hub=runtime_for(ctx).hub
    )
    names = _rule_names(ctx)
    return {
        "rows": invocation_rows(items, names),
        "paging": Paging(offset, PAGE_SIZE, total),
        "status_filter": status,
    }


@router.get("/ui/invocations")
def invocations_page(
    ctx: Ctx, status: str = "", offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0
) -> HTMLResponse:
    return page(
        ctx,
        "invocations.html",
        title="Invocations",
        nav="invocations",
        statuses=INVOCATION_STATUSES,
        **_list(ctx, status, offset),
    )


@router.get("/ui/invocations/rows")
def invocation_rows_fragment(
    ctx: Ctx, status: str = "", offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0
) -> HTMLResponse:
    """The list's table body and counts, re-read by the live list when an invocation changes."""
    return render_fragment("_invocation_rows.html", **_list(ctx, status, offset))


@router.get("/ui/invocations/{invocation_id}")
def invocation_page(invocation_id: str, ctx: Ctx) -> HTMLResponse:
    try:
        inv = service.get_invocation(
            ctx.engine, invocation_id=invocation_id, hub=runtime_for(ctx).hub
        )
        events = service.list_events(ctx.engine, invocation_id=invocation_id)
    except NotFound as exc:
        return not_found(ctx, exc.message)
    names = _rule_names(ctx)
    rows = invocation_rows([inv], names)
    return page(
        ctx,
        "invocation.html",
        title=f"{inv.tool} · invocation",
        nav="invocations",
        row=rows[0],
        inv=inv,
        events=event_rows(events, names),
        judged=judge_rows(events, names),
        input_json=pretty_json(inv.input),
        result_json=pretty_json(inv.result) if inv.result is not None else "",
        error_text=inv.error if isinstance(inv.error, str) else pretty_json(inv.error),
    )


@router.get("/ui/rules")
def rules_page(ctx: Ctx, notice: str = "") -> HTMLResponse:
    notices = {"created": "Rule created.", "saved": "Rule saved.", "deleted": "Rule deleted."}
    return page(
        ctx,
        "rules.html",
        title="Rules",
        nav="rules",
        rows=rule_rows(rules.list_rules(ctx.engine)),
        policy=rules.get_policy(ctx.engine, defaults=runtime_for(ctx).defaults),
        policies=POLICIES,
        notice=notices.get(notice, ""),
    )


@router.get("/ui/rules/new")
def new_rule_page(ctx: Ctx) -> HTMLResponse:
    return page(
        ctx,
        "rule.html",
        title="New rule",
        nav="rules",
        row=None,
        rows=rule_rows(rules.list_rules(ctx.engine)),
        actions=ACTIONS,
        **_picker(ctx, []),
        judges=judge_choices(ctx, None, None),
    )


@router.get("/ui/rules/{rule_id}")
def rule_page(rule_id: str, ctx: Ctx) -> HTMLResponse:
    listed = rule_rows(rules.list_rules(ctx.engine))
    row = next((r for r in listed if r.rule.id == rule_id), None)
    if row is None:
        return not_found(ctx, f"rule {rule_id} not found")
    return page(
        ctx,
        "rule.html",
        title=f"Rule {row.label}",
        nav="rules",
        row=row,
        rows=listed,
        actions=ACTIONS,
        **_picker(ctx, row.rule.agent_cuids),
        judges=judge_choices(ctx, row.rule.atryum_llm_config_id, row.rule.model_config_cuid),
    )


def _picker(ctx: AppContext, selected: list[str]) -> dict[str, Any]:
    """The rule form's agent picker: the rule's agents and the first live ones; the page's
    script searches the rest as the operator types (GET /api/v1/agents/search)."""
    found, total = agents.search_agents(
        ctx.engine, flt=AgentFilter(state="active"), offset=0, limit=PICKER_SIZE
    )
    named = []
    for agent_id in selected:
        try:
            named.append(agents.get_agent(ctx.engine, agent_id=agent_id))
        except NotFound:
            continue  # the rule page says the agent is gone
    return {
        "choices": agent_choices(named, found, selected),
        "picker_total": total,
        "picker_size": PICKER_SIZE,
    }

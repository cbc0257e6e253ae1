"""Page routes of the operator UI (/ui/…). Reads go through the service layer; the pages' own
JavaScript calls the JSON API for every change, so there is one write path."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, RedirectResponse

from atryum.agents import service as agents
from atryum.agents.store import AgentFilter
from atryum.config import default_config_path
from atryum.context import AppContext, get_ctx
from atryum.errors import NotFound
from atryum.limits import INT32_MAX
from atryum.sync import api as sync_api
from atryum.sync import runs, settings
from atryum.sync.schemas import RunDetail
from atryum.validmind.client import ValidMindError
from atryum.web.gateway_ui import PAGE_SIZE
from atryum.web.gateway_ui import router as gateway_router
from atryum.web.gateway_views import Paging
from atryum.web.identity_ui import router as identity_router
from atryum.web.judge_ui import router as judge_router
from atryum.web.render import not_found, page
from atryum.web.servers_ui import router as servers_router
from atryum.web.views import SOURCES, STATES, describe, run_view

#: How long a live run page waits for a run nobody knows (not in the history, not queued or
#: waiting in this process) before it says so: a run another replica queued appears within
#: moments; one a restart lost never does.
UNKNOWN_RUN_GIVE_UP_SECONDS = 30.0

router = APIRouter(include_in_schema=False)
router.include_router(gateway_router)
router.include_router(servers_router)
router.include_router(judge_router)
router.include_router(identity_router)
Ctx = Annotated[AppContext, Depends(get_ctx)]


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/")


def _scope(ctx: AppContext) -> settings.SyncSettings:
    return settings.get_settings(ctx.engine, defaults=ctx.config.sync)


def _sync_configured(ctx: AppContext, scope: settings.SyncSettings) -> bool:
    return ctx.config.backend.enabled and scope.configured


@router.get("/ui/")
def agents_page(
    ctx: Ctx,
    q: str = "",
    source: str = "",
    state: str = "active",
    deleted: str = "",
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
) -> HTMLResponse:
    state = state if state in STATES else "active"
    source = source if source in SOURCES else ""
    scope = _scope(ctx)
    flt = AgentFilter(text=q[:200], source=source, state=state)
    listed, total = agents.page_agents(ctx.engine, flt=flt, offset=offset, limit=PAGE_SIZE)
    empty = (
        total == 0
        and not agents.page_agents(ctx.engine, flt=AgentFilter(state="all"), offset=0, limit=1)[1]
    )
    href = "/ui/?" + urlencode({"q": q, "source": source, "state": state}) + "&offset="
    return page(
        ctx,
        "agents.html",
        title="Agents",
        nav="agents",
        views=[describe(a, scope) for a in listed],
        paging=Paging(offset, PAGE_SIZE, total),
        page_href=href,
        registry_empty=empty,
        q=q,
        source=source,
        state=state,
        states=STATES,
        sources=SOURCES,
        deleted=deleted,
        sync_configured=_sync_configured(ctx, scope),
    )


@router.get("/ui/agents/new")
def new_agent_page(ctx: Ctx) -> HTMLResponse:
    return page(ctx, "agent.html", title="New agent", nav="agents", view=None, notice="")


@router.get("/ui/agents/{agent_id}")
def agent_page(agent_id: str, ctx: Ctx, notice: str = "") -> HTMLResponse:
    try:
        agent = agents.get_agent(ctx.engine, agent_id=agent_id)
    except NotFound as exc:
        return not_found(ctx, exc.message)
    view = describe(agent, _scope(ctx))
    notices = {"created": "Agent created.", "saved": "Changes saved."}
    return page(
        ctx,
        "agent.html",
        title=agent.name,
        nav="agents",
        view=view,
        notice=notices.get(notice, ""),
    )


@router.get("/ui/sync")
def sync_page(ctx: Ctx) -> HTMLResponse:
    scope = _scope(ctx)
    latest = [
        _normalized(runs.get_run(ctx.engine, run_id=r["id"]))
        for r in runs.list_runs(ctx.engine, limit=1)
    ]
    return page(
        ctx,
        "sync.html",
        title="Sync",
        nav="sync",
        scope=scope,
        sync_configured=_sync_configured(ctx, scope),
        rv=run_view(latest[0]) if latest else None,
        can_allow=bool(latest) and _sync_configured(ctx, scope),
    )


@router.get("/ui/sync/runs")
def runs_page(ctx: Ctx, offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0) -> HTMLResponse:
    rows, total = runs.page_runs(ctx.engine, offset=offset, limit=PAGE_SIZE)
    return page(
        ctx,
        "runs.html",
        title="Sync history",
        nav="history",
        items=[run_view(_normalized(r)) for r in rows],
        paging=Paging(offset, PAGE_SIZE, total),
    )


@router.get("/ui/sync/runs/{run_id}")
def run_page(
    run_id: str,
    ctx: Ctx,
    started: bool = False,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
) -> HTMLResponse:
    """`started` marks a run this browser just triggered: until it is known (queued, waiting or
    recorded; another replica may have queued it) it is shown as starting rather than not found,
    and the page gives up after `UNKNOWN_RUN_GIVE_UP_SECONDS`. The changes come a page of
    `runs.CHANGES_PREVIEW` at a time (`offset`)."""
    run = _find_run(ctx, run_id)
    if run is None and not started:
        return not_found(ctx, f"sync run {run_id} not found")
    changes_paging = None
    if run is not None and run.get("started_at") is not None:
        if offset:
            run["changes"], _ = runs.list_changes(
                ctx.engine, run_id=run_id, offset=offset, limit=runs.CHANGES_PREVIEW
            )
        changes_paging = Paging(offset, runs.CHANGES_PREVIEW, int(run["changes_total"]))
    latest = runs.list_runs(ctx.engine, limit=1)
    is_latest = bool(latest) and latest[0]["id"] == run_id
    return page(
        ctx,
        "run.html",
        title="Sync run",
        nav="history",
        rv=run_view(run or _unknown(run_id)),
        changes_paging=changes_paging,
        known=run is not None,
        can_allow=is_latest and _sync_configured(ctx, _scope(ctx)),
    )


@router.get("/ui/sync/runs/{run_id}/status")
def run_status(run_id: str, ctx: Ctx) -> dict[str, Any]:
    """Polled by a live run page. A run not known here is `starting` with `known: false`; the
    page stops asking after `give_up_after_ms`."""
    run = _find_run(ctx, run_id)
    if run is None:
        give_up = round(UNKNOWN_RUN_GIVE_UP_SECONDS * 1000)
        return {"status": "starting", "known": False, "give_up_after_ms": give_up}
    return {"status": str(run["status"]), "known": True}


def _normalized(run: dict[str, Any]) -> dict[str, Any]:
    """A run row or queued view with every field of the API's run shape."""
    return RunDetail.model_validate(run).model_dump()


def _unknown(run_id: str) -> dict[str, Any]:
    return _normalized({"id": run_id, "trigger": "", "status": "starting"})


def _find_run(ctx: AppContext, run_id: str) -> dict[str, Any] | None:
    """The run as the API shows it (history, else this process's queue or worker), or None.
    A run taken by the worker but not recorded yet (it waits for the sync lock) is `starting`."""
    try:
        run = sync_api.run_view(ctx, run_id).model_dump()
    except NotFound:
        return None
    if run["status"] == "running" and run["started_at"] is None:
        run["status"] = "starting"
    return run


@router.get("/ui/settings")
def settings_page(ctx: Ctx) -> HTMLResponse:
    return page(
        ctx,
        "settings.html",
        title="Settings · ValidMind",
        nav="settings",
        scope=_scope(ctx),
        auth_mode=ctx.config.backend.auth_mode,
        config_file=_config_file(ctx),
    )


def _config_file(ctx: AppContext) -> str:
    """The file the running config came from, else where Atryum looks for one."""
    if ctx.config.source and not ctx.config.source.startswith("("):
        return ctx.config.source
    return f"atryum.toml (in the working directory, or {default_config_path()})"


@router.get("/ui/connection")
def connection(ctx: Ctx) -> dict[str, str]:
    """ValidMind connection status for the header (always 200: the state is in the body)."""
    if not ctx.config.backend.enabled:
        return {"state": "off", "message": "not configured"}
    try:
        with ctx.validmind() as client:
            info = client.connection()
    except ValidMindError as exc:
        return {"state": "error", "message": str(exc)}
    if not info["ok"]:
        return {
            "state": "error",
            "message": "ValidMind answered the connection check with ok=false",
        }
    org = info.get("org_name") or info.get("service_name") or ""
    return {"state": "ok", "message": f"connected · {org}" if org else "connected"}

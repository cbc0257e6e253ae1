"""HTTP routes: /api/v1/agents/sync, sync runs, /api/v1/settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from atryum.auth import machine_key_sent
from atryum.context import AppContext, get_ctx
from atryum.errors import InvalidInput, NotConfigured, NotFound, UpstreamError
from atryum.gateway.deps import Operator
from atryum.identity.principal import OperatorPrincipal
from atryum.paging import DEFAULT_LIMIT, Limit, Offset
from atryum.sync import runs, settings
from atryum.sync.schemas import (
    AgentRef,
    ChangeList,
    ChangeOut,
    RunDetail,
    RunList,
    RunOut,
    SettingsChangeOut,
    SettingsOut,
    SettingsPatch,
    SettingsPreviewOut,
    SyncRequest,
)
from atryum.sync.scope import scope_problem
from atryum.validmind.client import ValidMindError

router = APIRouter(tags=["sync"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
WAIT_SECONDS = 600.0


def _require_configured(ctx: AppContext) -> None:
    if not ctx.config.backend.enabled:
        raise NotConfigured(
            "ValidMind is not configured: set [backend] base_url and credentials in atryum.toml "
            "(or VM_BASE_URL with VM_MACHINE_KEY/VM_MACHINE_SECRET) and restart"
        )
    if not settings.get_settings(ctx.engine, defaults=ctx.config.sync).configured:
        raise NotConfigured(
            "the sync scope is not configured: choose the ValidMind organization and agent record "
            "type first (PUT /api/v1/settings with org_cuid and agent_record_type_slug)"
        )


def run_view(ctx: AppContext, run_id: str) -> RunDetail:
    """The run from the history, or as this process knows it before its row is written.

    Memory is read first: a run leaves it only after its row is committed, so if memory does
    not know it, the history does (or nobody does) — no window in which a live run is missed."""
    unwritten = ctx.coordinator.unwritten_view(run_id)
    try:
        return RunDetail.model_validate(runs.get_run(ctx.engine, run_id=run_id))
    except NotFound:
        if unwritten is None:
            raise
        return RunDetail.model_validate(unwritten)


@router.post("/api/v1/agents/sync", response_model=RunDetail, status_code=status.HTTP_202_ACCEPTED)
async def trigger_sync(
    ctx: Ctx,
    request: Request,
    response: Response,
    operator: Operator,
    body: Annotated[SyncRequest | None, Body()] = None,
    dry_run: bool = False,
    wait: bool = False,
) -> RunDetail:
    """Queue a sync (merged into one already queued). `wait=true` answers when it ended (200)
    or after 10 minutes (202); the wait holds no thread."""
    await run_in_threadpool(_require_configured, ctx)
    machine = machine_key_sent(request)  # verified by check_machine_key
    ticket = ctx.coordinator.submit(
        trigger="webhook" if machine else "manual",
        requested_by="machine api key" if machine else operator.label,
        dry_run=dry_run,
        allow_removals=bool(body and body.allow_removals),
    )
    if wait:
        ended = await ticket.wait(WAIT_SECONDS)
        response.status_code = status.HTTP_200_OK if ended else status.HTTP_202_ACCEPTED
    return await run_in_threadpool(run_view, ctx, ticket.run_id)


@router.get("/api/v1/agents/sync/runs", response_model=RunList)
def list_runs(ctx: Ctx, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT) -> RunList:
    """Runs, newest first, without their changes."""
    rows, total = runs.page_runs(ctx.engine, offset=offset, limit=limit)
    items = [RunOut.model_validate(r) for r in rows]
    return RunList(items=items, total=total, offset=offset, limit=limit)


@router.get("/api/v1/agents/sync/runs/{run_id}", response_model=RunDetail)
def get_run(run_id: str, ctx: Ctx) -> RunDetail:
    """The run with its first changes (`changes_total` says how many there are)."""
    return run_view(ctx, run_id)


CHANGE_ACTIONS = ("created", "updated", "restored", "retired", "kept_dependent", "held")


@router.get("/api/v1/agents/sync/runs/{run_id}/changes", response_model=ChangeList)
def list_changes(
    run_id: str,
    ctx: Ctx,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    action: Annotated[
        str | None, Query(description=f"only changes of one action: {', '.join(CHANGE_ACTIONS)}")
    ] = None,
) -> ChangeList:
    if action is not None and action not in CHANGE_ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(CHANGE_ACTIONS)}")
    rows, total = runs.list_changes(
        ctx.engine, run_id=run_id, offset=offset, limit=limit, action=action
    )
    items = [ChangeOut.model_validate(r) for r in rows]
    return ChangeList(items=items, total=total, offset=offset, limit=limit)


def _settings_out(ctx: AppContext, s: settings.SyncSettings) -> dict[str, object]:
    return {
        **s.as_dict(),
        "validmind_configured": ctx.config.backend.enabled,
        "sync_configured": ctx.config.backend.enabled and s.configured,
    }


@router.get("/api/v1/settings", response_model=SettingsOut)
def get_settings(ctx: Ctx) -> SettingsOut:
    s = settings.get_settings(ctx.engine, defaults=ctx.config.sync)
    return SettingsOut.model_validate(_settings_out(ctx, s))


def _check_scope(ctx: AppContext, changes: dict[str, Any]) -> None:
    """A new scope is checked against ValidMind before anything is saved, as `atryum setup
    validmind` does: a typo'd organization would otherwise retire the registry and then fail
    every sync with "organization not found"."""
    merged, scope, _ = settings.preview_settings(
        ctx.engine, changes=changes, defaults=ctx.config.sync
    )
    if not (scope.scope_changed and merged.configured and ctx.config.backend.enabled):
        return
    try:
        with ctx.validmind() as client:
            problem = scope_problem(
                client,
                org_cuid=merged.org_cuid,
                record_type=merged.agent_record_type_slug,
                charter_field=merged.charter_field_key,
            )
    except ValidMindError as exc:
        raise UpstreamError(
            f"could not check the new scope against ValidMind: {exc}. Nothing was saved."
        ) from exc
    if problem:
        raise InvalidInput(f"{problem}. Nothing was saved.")


def _change_settings(
    ctx: AppContext, body: SettingsPatch, operator: OperatorPrincipal
) -> SettingsChangeOut:
    changes = body.changes()
    _check_scope(ctx, changes)
    new, scope, old = settings.update_settings(
        ctx.engine,
        changes=changes,
        defaults=ctx.config.sync,
        actor=operator,
        allow_removals=body.allow_removals,
    )
    run_id = None
    if new.source != old.source and ctx.config.backend.enabled and new.configured:
        run_id = ctx.coordinator.submit(trigger="settings", requested_by="settings").run_id
    return SettingsChangeOut.model_validate(
        {
            **_settings_out(ctx, new),
            "sync_run_id": run_id,
            "retired": [AgentRef.of(a) for a in scope.retire],
            "kept": [AgentRef.of(a) for a in scope.keep],
        }
    )


@router.put("/api/v1/settings", response_model=SettingsChangeOut)
def put_settings(body: SettingsPatch, ctx: Ctx, operator: Operator) -> SettingsChangeOut:
    return _change_settings(ctx, body, operator)


@router.patch("/api/v1/settings", response_model=SettingsChangeOut)
def patch_settings(body: SettingsPatch, ctx: Ctx, operator: Operator) -> SettingsChangeOut:
    return _change_settings(ctx, body, operator)


@router.post("/api/v1/settings/preview", response_model=SettingsPreviewOut)
def preview_settings(body: SettingsPatch, ctx: Ctx) -> SettingsPreviewOut:
    merged, scope, held = settings.preview_settings(
        ctx.engine, changes=body.changes(), defaults=ctx.config.sync
    )
    return SettingsPreviewOut(
        settings=SettingsOut.model_validate(_settings_out(ctx, merged)),
        scope_changed=scope.scope_changed,
        retire=[AgentRef.of(a) for a in scope.retire],
        keep=[AgentRef.of(a) for a in scope.keep],
        held_reason=held,
    )

"""HTTP routes for ValidMind change events: /api/v1/validmind/events."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from atryum.context import AppContext, get_ctx
from atryum.errors import AtryumError, NotConfigured
from atryum.paging import DEFAULT_LIMIT, Limit, Offset
from atryum.sync import events
from atryum.sync.coordinator import Ticket
from atryum.sync.settings import get_settings

router = APIRouter(prefix="/api/v1/validmind", tags=["validmind events"])
Ctx = Annotated[AppContext, Depends(get_ctx)]


class PayloadTooLarge(AtryumError):
    status_code = 413


class EventOut(BaseModel):
    id: str
    type: str
    org_cuid: str
    record_cuid: str
    occurred_at: datetime | None
    received_at: datetime
    sync_run_id: str | None


class EventList(BaseModel):
    items: list[EventOut]
    total: int
    offset: int
    limit: int


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > events.MAX_BODY_BYTES:
        raise PayloadTooLarge(f"event body is larger than {events.MAX_BODY_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > events.MAX_BODY_BYTES:
            raise PayloadTooLarge(f"event body is larger than {events.MAX_BODY_BYTES} bytes")
    return body


@router.post("/events", status_code=202, responses={200: {}, 401: {}, 400: {}, 413: {}})
async def receive_event(request: Request, ctx: Ctx) -> JSONResponse:
    secrets = ctx.config.validmind.secrets
    if not secrets:
        raise NotConfigured(
            "ValidMind change events are off: set [validmind] webhook_secret in atryum.toml"
        )
    body = await _read_body(request)
    events.verify_signature(
        secrets=secrets,
        timestamp=request.headers.get(events.TIMESTAMP_HEADER),
        signature=request.headers.get(events.SIGNATURE_HEADER),
        body=body,
        now=time.time(),
    )
    event = events.parse_event(body)
    return await run_in_threadpool(_accept, ctx, event)


def _accept(ctx: AppContext, event: events.ChangeEvent) -> JSONResponse:
    if not events.record_event(ctx.engine, event=event):
        return JSONResponse({"status": "duplicate", "id": event.id}, status_code=200)
    settings = get_settings(ctx.engine, defaults=ctx.config.sync)
    if not (ctx.config.backend.enabled and settings.configured):
        return JSONResponse(
            {"status": "recorded", "id": event.id, "note": "sync is not configured"}, 202
        )
    if event.org_cuid != settings.org_cuid:
        return JSONResponse(
            {"status": "ignored", "id": event.id, "note": "event is for another organization"},
            202,
        )

    def fold(ticket: Ticket) -> None:
        events.fold_events(ctx.engine, run_id=ticket.run_id)

    ctx.coordinator.submit_debounced(
        trigger="webhook",
        requested_by="validmind events",
        delay=ctx.config.validmind.debounce_seconds,
        on_submit=fold,
    )
    return JSONResponse({"status": "accepted", "id": event.id}, status_code=202)


@router.get("/events", response_model=EventList)
def list_events(ctx: Ctx, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT) -> Any:
    items, total = events.list_events(ctx.engine, offset=offset, limit=limit)
    return EventList.model_validate(
        {"items": items, "total": total, "offset": offset, "limit": limit}
    )

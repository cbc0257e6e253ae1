"""ValidMind discovery proxies for the operator: organizations, record types, custom fields."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from atryum.context import AppContext, get_ctx
from atryum.errors import UpstreamError
from atryum.limits import Cuid
from atryum.validmind.client import ValidMindClient, ValidMindError

router = APIRouter(prefix="/api/v1/vm", tags=["validmind"])
Ctx = Annotated[AppContext, Depends(get_ctx)]


def _proxy(ctx: AppContext, call: Any) -> dict[str, Any]:
    try:
        with ctx.validmind() as client:
            items = call(client)
    except ValidMindError as exc:
        raise UpstreamError(str(exc)) from exc
    return {"items": items}


@router.get("/organizations")
def organizations(ctx: Ctx) -> dict[str, Any]:
    return _proxy(ctx, lambda c: c.organizations())


@router.get("/record-types")
def record_types(ctx: Ctx, org_cuid: Annotated[Cuid, Query(min_length=1)]) -> dict[str, Any]:
    return _proxy(ctx, lambda c: c.record_types(org_cuid))


@router.get("/custom-fields")
def custom_fields(
    ctx: Ctx,
    org_cuid: Annotated[Cuid, Query(min_length=1)],
    primary_record_type_slug: Annotated[str, Query(min_length=1)],
) -> dict[str, Any]:
    def call(c: ValidMindClient) -> list[dict[str, Any]]:
        return c.custom_fields(org_cuid, primary_record_type_slug)

    return _proxy(ctx, call)

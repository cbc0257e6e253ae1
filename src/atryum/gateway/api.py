"""HTTP routes of the gateway. Including `router` also runs the gateway's background work
(change listener, expiry sweeper) in the app's lifespan, via the router's own lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from atryum.gateway import api_hook, api_legacy, api_review, api_rules, runtime


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    ctx = app.state.ctx
    await runtime.start(ctx)
    try:
        yield
    finally:
        await runtime.stop(ctx)


router = APIRouter(lifespan=_lifespan)
router.include_router(api_hook.router)
router.include_router(api_review.router)
router.include_router(api_rules.router)
router.include_router(api_legacy.router)

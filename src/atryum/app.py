"""ASGI app factory and lifespan: migrate, start the sync coordinator, serve the API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import Depends, FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from atryum import heap, http_errors, logsafe, openapi, ops
from atryum.agents import api as agents_api
from atryum.agents.store import count_agents_by_state
from atryum.audit import api as audit_api
from atryum.body_limits import BodyLimits
from atryum.config import Config
from atryum.context import AppContext, make_client
from atryum.db import migrate
from atryum.db.checkpoint import Checkpointer
from atryum.db.engine import make_engine, sqlite_file
from atryum.gateway import api as gateway_api
from atryum.gateway import api_hook
from atryum.hot_routes import APP_CHECKS, HotRoutes
from atryum.identity import api as identity_api
from atryum.identity import login as identity_login
from atryum.identity import operators_api
from atryum.identity.hosts import check_exposure
from atryum.identity.operators import OperatorGate
from atryum.judge import api as judge_api
from atryum.mcp import api as mcp_api
from atryum.mcp import routes as mcp_routes
from atryum.metrics import AGENTS, REGISTRY
from atryum.sync import api as sync_api
from atryum.sync import events_api
from atryum.sync.coordinator import SyncCoordinator
from atryum.validmind import api as vm_api
from atryum.web import STATIC_DIR, STATIC_PATH
from atryum.web import router as web_router

log = logging.getLogger("atryum")


def build_context(config: Config, engine: sa.Engine | None = None) -> AppContext:
    engine = engine or make_engine(config.database_url)
    coordinator = SyncCoordinator(engine, config=config, client_factory=lambda: make_client(config))
    return AppContext(config=config, engine=engine, coordinator=coordinator)


def create_app(ctx: AppContext, *, background: bool = True, settle_heap: bool = False) -> FastAPI:
    """`background=False` skips the start-up sync and the schedule (tests that drive syncs);
    `settle_heap` is for a process that only serves this app (`atryum.heap`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warning = check_exposure(ctx.config)  # refuses an open non-loopback listener
        if warning:
            log.warning(warning)
        migrate.upgrade(ctx.engine)
        path = sqlite_file(ctx.engine)
        checkpointer = Checkpointer(path).start() if path else None
        ctx.coordinator.start(schedule=background)
        if background and ctx.coordinator.sync_configured():
            ctx.coordinator.submit(trigger="startup", requested_by="startup")
        log.info("atryum started listen_addr=%s", ctx.config.server.listen_addr)
        if settle_heap:
            heap.settle()
        try:
            yield
        finally:
            ctx.coordinator.stop()
            if checkpointer is not None:
                checkpointer.stop()

    app = FastAPI(
        title="Atryum",
        version="0.1.0",
        description="Permissions gateway for AI agents, with a registry synced from ValidMind.",
        lifespan=lifespan,
        dependencies=[Depends(check) for check in APP_CHECKS],
        docs_url=None,  # served by openapi.install from the package, not a CDN
        redoc_url=None,  # ReDoc has no installable bundle: it would load from a CDN
    )
    app.state.ctx = ctx
    logsafe.install(logsafe.secrets_of(ctx.config))
    http_errors.install(app)
    openapi.install(app)
    app.include_router(sync_api.router)
    app.include_router(agents_api.router)
    app.include_router(vm_api.router)
    app.include_router(events_api.router)
    app.include_router(gateway_api.router)
    app.include_router(mcp_api.router)
    app.include_router(judge_api.router)
    app.include_router(audit_api.router)
    app.include_router(operators_api.router)
    app.include_router(identity_login.router)
    app.include_router(identity_api.router)
    app.include_router(web_router)
    app.include_router(ops.router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(HotRoutes, routes=[*api_hook.hot.routes, *mcp_routes.hot.routes])
    limits = ctx.config.limits  # every body is measured before a route reads it
    app.add_middleware(BodyLimits, max_bytes=limits.max_body_bytes, max_depth=limits.max_json_depth)
    app.add_middleware(OperatorGate, ctx=ctx)  # Host check, headers, operator auth: all routes

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def metrics() -> Response:
        with ctx.engine.begin() as conn:
            for state, count in count_agents_by_state(conn).items():
                AGENTS.labels(state).set(count)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app

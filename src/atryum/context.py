"""What request handlers need: config, database engine, sync coordinator, ValidMind client."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from fastapi import Request

from atryum.config import Config
from atryum.errors import NotConfigured
from atryum.sync.coordinator import SyncCoordinator
from atryum.validmind.client import ValidMindClient


@dataclass
class AppContext:
    config: Config
    engine: sa.Engine
    coordinator: SyncCoordinator
    # Other processes serve the same database (`atryum run --workers`): on SQLite, the gateway
    # then follows their commits from the database (`gateway.listener.follow_sqlite`).
    shared: bool = False

    def validmind(self) -> ValidMindClient:
        return make_client(self.config)


def make_client(config: Config) -> ValidMindClient:
    if not config.backend.enabled:
        raise NotConfigured(
            "ValidMind is not configured: set [backend] base_url and credentials in atryum.toml "
            "(or VM_BASE_URL with VM_MACHINE_KEY/VM_MACHINE_SECRET)"
        )
    return ValidMindClient(config.backend)


async def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx

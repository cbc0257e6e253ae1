"""Atryum with `[[auth]]` pointing at the real oidc-provider (tests/idp)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from atryum.config import parse_config
from tests.idp.fixtures import Idp


@contextmanager
def authed_client(engine: sa.Engine, *blocks: dict[str, Any], **sections: Any) -> Iterator[Any]:
    config = parse_config({"auth": list(blocks), **sections}, "(test)")
    with TestClient(create_app(build_context(config, engine), background=False)) as client:
        yield client


@pytest.fixture
def client(engine: sa.Engine, idp: Idp) -> Iterator[TestClient]:
    """Agent routes need a token of the shared provider (required scope atryum:invoke)."""
    with authed_client(engine, idp.auth_block()) as c:
        yield c

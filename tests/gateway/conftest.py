"""Gateway fixtures. Every test that uses a database ends with a check that the event history of
every invocation it created rebuilds that invocation's final status (spec §1, §7.4)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from atryum.gateway import audit, store
from tests.support import make_config


def assert_histories_rebuild(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        ids = store.all_invocation_ids(conn)
        for inv_id in ids:
            inv = store.get_invocation(conn, inv_id)
            assert inv is not None
            events = store.list_events(conn, inv_id)
            assert audit.rebuild_status(events) == inv.status, (inv_id, inv.status, events)
    return len(ids)


@pytest.fixture(autouse=True)
def _event_histories_rebuild(request: pytest.FixtureRequest) -> Iterator[None]:
    engine = request.getfixturevalue("engine") if "engine" in request.fixturenames else None
    yield
    if engine is not None:
        assert_histories_rebuild(engine)


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    with TestClient(create_app(build_context(make_config(), engine), background=False)) as c:
        yield c

"""Gateway fixtures. (Every test database ends with the event-history check of
`tests.support.assert_histories_rebuild`, run by the database fixtures.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from tests.support import make_config


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    with TestClient(create_app(build_context(make_config(), engine), background=False)) as c:
        yield c

"""The engines Atryum opens: what every connection is set up with."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from atryum.config import normalize_database_url
from atryum.db.engine import make_engine
from tests.conftest import PG_URL

COSTLY = (
    "SELECT count(*) FROM generate_series(1, 10000) a, generate_series(1, 10000) b "
    "WHERE (a + b)::text LIKE '%1%'"
)


@pytest.mark.usefixtures("pg_admin")  # PostgreSQL is up, or the suite says where it looked
def test_postgresql_connections_never_jit_compile() -> None:
    """A plan costed over jit_above_cost (a search matching every agent) would otherwise spend
    100-200 ms compiling before it runs; the setting survives the pool's rollback on check-in."""
    engine = make_engine(normalize_database_url(PG_URL))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW jit")).scalar_one() == "off"
            conn.rollback()
            assert conn.execute(sa.text("SHOW jit")).scalar_one() == "off"
        with engine.connect() as first, engine.connect() as second:  # a second pooled one too
            for conn in (first, second):
                # costed far over jit_above_cost: EXPLAIN lists the JIT it would do
                plan = conn.execute(sa.text(f"EXPLAIN {COSTLY}")).scalars().all()
                assert not [line for line in plan if line.startswith("JIT")], plan
    finally:
        engine.dispose()

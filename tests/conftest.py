"""Shared fixtures: databases on SQLite and PostgreSQL, the app, the simulator, a live server."""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from atryum import logsafe
from atryum.app import build_context
from atryum.config import Config, normalize_database_url
from atryum.db import migrate
from atryum.db.engine import make_engine
from tests.support import ORG, SLUG, LiveServer, assert_histories_rebuild, make_config

pytest_plugins = ["tests.idp.fixtures"]

PG_URL = os.environ.get("ATRYUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


_CREDENTIAL_URL = re.compile(r"://[^/\s@\[]+@")


@pytest.fixture(autouse=True)
def _no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test's captured logs (INFO and up) hold no configured secret and no URL
    credential (issue 14 row 6): every app and CLI run registers its config's secrets."""
    caplog.set_level(logging.INFO)
    yield
    text = caplog.text
    leaked = [s for s in logsafe.configured_secrets() if s in text]
    assert not leaked and not _CREDENTIAL_URL.search(text), "a secret reached the logs"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(normalize_database_url(PG_URL))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        _install_pg_trgm(engine)
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {PG_URL} ({exc.__class__.__name__}); start it or set "
            "ATRYUM_TEST_POSTGRES_URL. Database tests run on both dialects and do not skip."
        )
    yield engine
    engine.dispose()


def _install_pg_trgm(engine: sa.Engine) -> None:
    """pg_trgm in `public`, once for every test process: a migration installs it in the current
    schema when the database has none, and a test's schema is dropped with what it holds."""
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7310)"))  # one process at a time
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))


def _pg_schema_url(pg_admin: sa.Engine) -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with pg_admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    base = normalize_database_url(PG_URL)
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options=-csearch_path%3D{schema}"


def _fresh_db_url(request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    """An empty database of the fixture's dialect (a file in `directory`, or a schema of its
    own), its histories checked afterwards, then dropped."""
    if request.param == "sqlite":
        url = f"sqlite:///{directory / 'atryum.db'}"
        yield url
        _check_histories(url)
        return
    admin = request.getfixturevalue("pg_admin")
    schema, url = _pg_schema_url(admin)
    try:
        yield url
        _check_histories(url)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL on each dialect (empty: the `engine` fixture migrates it)."""
    yield from _fresh_db_url(request, tmp_path)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database URL on each dialect shared by a module's tests: for one `atryum run`
    process serving them all (a start costs seconds); the tests keep apart by what they send."""
    yield from _fresh_db_url(request, tmp_path_factory.mktemp("shared"))


def _check_histories(url: str) -> None:
    """Every invocation a test created, on any engine or process, has a complete history."""
    engine = make_engine(url)
    try:
        assert_histories_rebuild(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def _sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated once per test process: each SQLite `engine` starts as a copy of it
    (a migration costs 0.2 s, a copy 1 ms; the migrations themselves are tested from empty)."""
    path = tmp_path_factory.mktemp("template") / "atryum.db"
    eng = make_engine(f"sqlite:///{path}")
    migrate.upgrade(eng)
    eng.dispose()  # the last connection's close checkpoints the WAL into the file
    assert not path.with_name("atryum.db-wal").exists()
    return path


@pytest.fixture(scope="session")
def _pg_migration(pg_admin: sa.Engine) -> list[tuple[str, Any]]:
    """The statements of a migration from empty, recorded once per test process in a schema of
    its own: each PostgreSQL `engine` replays them (0.2 s instead of Alembic's 0.4 s). None
    names its schema; each runs in the test's, through the URL's search_path."""
    schema, url = _pg_schema_url(pg_admin)
    eng = make_engine(url)
    recorded: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        assert not many and schema not in statement
        recorded.append((statement, params))

    sa.event.listen(eng, "before_cursor_execute", record)
    try:
        migrate.upgrade(eng)
    finally:
        eng.dispose()
        with pg_admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    return recorded


@pytest.fixture
def engine(db_url: str, request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    eng = make_engine(db_url)
    if eng.dialect.name == "sqlite" and eng.url.database:
        target = Path(eng.url.database)
        if not target.exists():
            shutil.copyfile(request.getfixturevalue("_sqlite_migrated"), target)
    elif eng.dialect.name == "postgresql":
        with eng.begin() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                for statement, params in request.getfixturevalue("_pg_migration"):
                    cursor.execute(statement, params)
    migrate.upgrade(eng)  # at head already: a check
    yield eng
    eng.dispose()


@pytest.fixture
def sim_config() -> Callable[..., Config]:
    def build(base_url: str = "", **extra: dict[str, Any]) -> Config:
        data: dict[str, Any] = {
            "backend": {
                "base_url": base_url,
                "machine_key": "sim-machine-key",
                "machine_secret": "sim-machine-secret",
                "retry_attempts": 1,
                "page_size": 3,
            },
            "api_key": {"key": "test-key", "secret": "test-secret"},
        }
        for section, values in extra.items():
            data.setdefault(section, {}).update(values)
        return make_config(**data)

    return build


@pytest.fixture
def live_atryum() -> Callable[..., LiveServer]:
    def start(config: Config, engine: sa.Engine, background: bool = False) -> LiveServer:
        return LiveServer(build_context(config, engine), background=background)

    return start


@pytest.fixture
def sim_state() -> Any:
    from atryum.validmind.sim.state import SimState

    state = SimState()
    state.add_org(ORG, "Org One")
    state.add_org("org-2", "Org Two")
    state.add_record_type(ORG, SLUG, "AI Agent")
    state.add_record_type(ORG, "model", "Model")
    state.add_custom_field(ORG, SLUG, "charter", "Charter", "long-text")
    return state


@pytest.fixture
def sim(sim_state: Any) -> Iterator[Any]:
    from atryum.validmind.sim.app import SimServer

    with SimServer(sim_state) as server:
        yield server

"""SQLite's WAL is checkpointed by a background thread, not inside the commits of decisions."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from atryum.app import build_context, create_app
from atryum.db.checkpoint import Checkpointer
from atryum.db.engine import make_engine
from tests.support import make_config, wait_until

#: Each about two 4 KB pages: 700 commits take the WAL past SQLite's default threshold of 1000
#: pages (where a commit used to checkpoint), not past the backstop.
ROW, COMMITS = "x" * 6000, 700
WRITTEN = COMMITS * len(ROW)


def _checkpointers() -> set[threading.Thread]:
    """This process's checkpoint threads (other tests' apps may have their own running)."""
    return {t for t in threading.enumerate() if t.name == "sqlite-checkpoint"}


def _commit_rows(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    for _ in range(COMMITS):
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t (body) VALUES (:b)"), {"b": ROW})


def test_commits_leave_the_checkpoint_to_the_background_thread(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    engine = make_engine(f"sqlite:///{path}")  # open throughout: closing the last connection
    try:  # checkpoints
        _commit_rows(engine)
        # No commit copied the WAL into the database file: it is still the empty schema.
        assert path.stat().st_size < WRITTEN / 10
        assert (tmp_path / "a.db-wal").stat().st_size > WRITTEN

        others = _checkpointers()
        checkpointer = Checkpointer(str(path), every=0.02).start()
        try:
            wait_until(lambda: path.stat().st_size >= WRITTEN)
        finally:
            checkpointer.stop()
        assert _checkpointers() <= others  # stopped
    finally:
        engine.dispose()


def test_a_served_sqlite_file_is_checkpointed_until_the_app_stops(tmp_path: Path) -> None:
    config = make_config(server={"database_url": f"sqlite:///{tmp_path / 'atryum.db'}"})
    others = _checkpointers()
    with TestClient(create_app(build_context(config), background=False)):
        started = _checkpointers() - others
        assert started
    assert not started & _checkpointers()

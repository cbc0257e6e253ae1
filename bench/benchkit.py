"""What the benchmarks share: a scratch database for one run and a free local port."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from atryum.config import normalize_database_url

PG_URL = os.environ.get("ATRYUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def scratch_database(dialect: str, workdir: Path | None = None) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in `workdir` (a new temporary directory if
    None), or a fresh schema on PG_URL, dropped on exit."""
    if dialect == "sqlite":
        workdir = workdir or Path(tempfile.mkdtemp(prefix="atryum-bench-"))
        yield f"sqlite:///{workdir / 'atryum.db'}"
        return
    url = normalize_database_url(PG_URL)
    admin = sa.create_engine(url)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

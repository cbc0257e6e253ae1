"""A configuration or database Atryum cannot use stops `atryum run`/`atryum migrate` with the
file, the key and what is wrong, a non-zero exit and no traceback (issue 14 row 12)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port


def atryum(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atryum.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def server(database_url: str) -> bytes:
    listen = f"127.0.0.1:{free_port()}"
    return f'[server]\nlisten_addr = "{listen}"\ndatabase_url = "{database_url}"\n'.encode()


def bad_configs(tmp: Path) -> dict[str, tuple[bytes, str, str]]:
    readonly = tmp / "readonly.db"
    sqlite3.connect(readonly).close()
    return {
        "invalid-utf8": (b'[server]\nlisten_addr = "\xff\xfe"\n', "not UTF-8", "byte 24"),
        "deep-nesting": (
            b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n",
            "not valid TOML",
            "nested too deeply",
        ),
        "missing-directory": (
            server(str(tmp / "no-such-dir" / "atryum.db")),
            "server.database_url",
            "no-such-dir does not exist",
        ),
        # Opened read-only through SQLite's URI form: file permissions do not stop root.
        "readonly-database": (
            server(f"sqlite:///file:{readonly}?mode=ro&uri=true"),
            "server.database_url",
            "readonly database",
        ),
    }


@pytest.mark.parametrize(
    "case", ["invalid-utf8", "deep-nesting", "missing-directory", "readonly-database"]
)
@pytest.mark.parametrize("command", ["run", "migrate"])
def test_an_unusable_config_or_database_is_one_clear_message(
    tmp_path: Path, case: str, command: str
) -> None:
    text, where, what = bad_configs(tmp_path)[case]
    path = tmp_path / "atryum.toml"
    path.write_bytes(text)
    done = atryum(command, "--config", str(path), cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "Error:" not in done.stderr, done.stderr
    assert str(path) in done.stderr and where in done.stderr and what in done.stderr, done.stderr

"""`atryum setup validmind`: the scope is checked against ValidMind before it is saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atryum import cli
from atryum.db import migrate
from atryum.db.engine import make_engine
from atryum.sync.settings import get_settings
from tests.support import ORG, SLUG, free_port, make_config


def write_config(path: Path, db_url: str, base_url: str = "") -> Path:
    backend = (
        f'[backend]\nbase_url = "{base_url}"\nretry_attempts = 1\n'
        'machine_key = "sim-machine-key"\nmachine_secret = "sim-machine-secret"\n'
        if base_url
        else ""
    )
    path.write_text(f'[server]\ndatabase_url = "{db_url}"\n{backend}')
    return path


def saved_scope(db_url: str) -> tuple[str, str, str]:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)  # a refused setup never touched the database
        s = get_settings(engine, defaults=make_config().sync)
    finally:
        engine.dispose()
    return s.org_cuid, s.agent_record_type_slug, s.charter_field_key


def setup(config: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cli.app, ["setup", "validmind", "--config", str(config), *args], catch_exceptions=False
    )


def test_a_scope_that_exists_is_saved(tmp_path: Path, db_url: str, sim: Any) -> None:
    config = write_config(tmp_path / "atryum.toml", db_url, sim.url)
    result = setup(config, "--org-cuid", ORG, "--record-type", SLUG)
    assert result.exit_code == 0, result.output
    assert f"sync scope: {ORG} / {SLUG} (charter field charter)" in result.stdout
    assert saved_scope(db_url) == (ORG, SLUG, "charter")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org-cuid", "org-typo", "--record-type", SLUG], "no organization 'org-typo'"),
        (["--org-cuid", ORG, "--record-type", "agents"], "no record type 'agents'"),
        (
            ["--org-cuid", ORG, "--record-type", SLUG, "--charter-field", "chartr"],
            "no custom field 'chartr' (long-text fields: charter)",
        ),
    ],
)
def test_a_typo_is_named_and_nothing_is_saved(
    tmp_path: Path, db_url: str, sim: Any, args: list[str], message: str
) -> None:
    config = write_config(tmp_path / "atryum.toml", db_url, sim.url)
    result = setup(config, *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Nothing was saved" in result.stderr
    assert saved_scope(db_url) == ("", "", "charter")


def test_unreachable_validmind_saves_nothing_unless_told(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "atryum.toml", db_url, f"http://127.0.0.1:{free_port()}")
    result = setup(config, "--org-cuid", ORG, "--record-type", SLUG)
    assert result.exit_code == 1 and "--no-check" in result.stderr
    assert "sim-machine-secret" not in result.output
    assert saved_scope(db_url) == ("", "", "charter")
    result = setup(config, "--org-cuid", ORG, "--record-type", SLUG, "--no-check")
    assert result.exit_code == 0, result.output
    assert saved_scope(db_url) == (ORG, SLUG, "charter")


def test_without_validmind_the_scope_is_saved_with_a_note(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "atryum.toml", db_url)
    result = setup(config, "--org-cuid", ORG, "--record-type", SLUG)
    assert result.exit_code == 0 and "not checked" in result.stderr
    assert saved_scope(db_url) == (ORG, SLUG, "charter")

"""`atryum sync` against the simulator: table output, --dry-run, --allow-removals, exit codes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from atryum import cli
from atryum.config import load_config
from atryum.db import migrate
from atryum.db.engine import make_engine
from atryum.db.tables import agents
from atryum.sync.settings import update_settings
from tests.e2e.registry import validmind_view
from tests.support import ORG, SLUG


@pytest.fixture
def config_path(tmp_path: Path, db_url: str, sim: Any) -> Path:
    path = tmp_path / "atryum.toml"
    path.write_text(
        f'[server]\ndatabase_url = "{db_url}"\n'
        f'[backend]\nbase_url = "{sim.url}"\n'
        'machine_key = "sim-machine-key"\nmachine_secret = "sim-machine-secret"\n'
        "[sync]\nmax_removals = 1\n"
    )
    return path


def registry(db_url: str) -> list[tuple[str, str, str]]:
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(agents.c.vm_cuid, agents.c.name, agents.c.charter).where(
                    agents.c.removed_at.is_(None)
                )
            )
            return sorted((r.vm_cuid, r.name, r.charter) for r in rows)
    finally:
        engine.dispose()


def count(output: str, name: str) -> int:
    match = re.search(rf"^{name}\s+(\d+)\s*$", output, re.MULTILINE)
    assert match, output
    return int(match.group(1))


def sync(config_path: Path, *flags: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, ["sync", "--config", str(config_path), *flags])
    return result.exit_code, result.output


def test_sync_dry_run_and_allow_removals(config_path: Path, db_url: str, sim_state: Any) -> None:
    cuids = [
        sim_state.create_record(ORG, SLUG, name=f"A{i}", custom_fields={"charter": f"C{i}"})["cuid"]
        for i in range(6)
    ]
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    update_settings(
        engine,
        changes={"org_cuid": ORG, "agent_record_type_slug": SLUG},
        defaults=load_config(config_path, env={}).sync,
    )
    engine.dispose()

    code, out = sync(config_path, "--dry-run")
    assert code == 0 and "status=SUCCEEDED  (dry run: nothing was written)" in out, out
    assert (count(out, "fetched"), count(out, "created")) == (6, 6)
    assert all(re.search(rf"^created\s+A\d\s+{c}\s", out, re.MULTILINE) for c in cuids), out
    assert registry(db_url) == []

    code, out = sync(config_path)
    assert code == 0 and "status=SUCCEEDED" in out and "dry run" not in out, out
    assert count(out, "created") == 6
    assert registry(db_url) == validmind_view(sim_state)

    for cuid in cuids[:3]:
        sim_state.archive_record(cuid)
    code, out = sync(config_path)  # 3 retirements > max_removals (1) and > 20 %: held
    assert code == 1 and "status=HELD" in out and "atryum sync --allow-removals" in out, out
    assert count(out, "retired") == 0 and len(registry(db_url)) == 6

    code, out = sync(config_path, "--dry-run", "--allow-removals")
    assert code == 0 and "(dry run: nothing was written)" in out, out
    assert count(out, "retired") == 3 and len(registry(db_url)) == 6

    code, out = sync(config_path, "--allow-removals")
    assert code == 0 and "status=SUCCEEDED" in out and count(out, "retired") == 3, out
    assert all(re.search(rf"^retired\s+A\d\s+{c}\s", out, re.MULTILINE) for c in cuids[:3])
    assert registry(db_url) == validmind_view(sim_state)


def test_sync_prints_summary_first_changes_and_progress(
    config_path: Path, db_url: str, sim_state: Any
) -> None:
    """A big first sync lists the first 20 changes (--all: every one) and shows the fetch."""
    sim_state.bulk_create(ORG, SLUG, count=45, charter_bytes=50)
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    update_settings(
        engine,
        changes={"org_cuid": ORG, "agent_record_type_slug": SLUG},
        defaults=load_config(config_path, env={}).sync,
    )
    engine.dispose()
    result = CliRunner().invoke(
        cli.app, ["sync", "--config", str(config_path), "--dry-run"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "fetching from ValidMind: 45 of 45 records" in result.stderr
    assert count(result.stdout, "created") == 45
    assert len(re.findall(r"^created\s+Bulk agent", result.stdout, re.MULTILINE)) == 20
    assert "… and 25 more changes: atryum sync --all" in result.stdout

    code, out = sync(config_path, "--all")
    assert code == 0 and len(re.findall(r"^created\s+Bulk agent", out, re.MULTILINE)) == 45
    assert "more changes" not in out
    assert len(registry(db_url)) == 45

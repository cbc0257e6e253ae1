"""The `[policy]` and `[approvals]` sections of atryum.toml reach the gateway's decisions."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from atryum.config import ConfigError, load_config
from atryum.gateway import service
from atryum.gateway.settings import defaults_from
from tests.gateway.helpers import call


def test_policy_and_approval_timeout_come_from_the_file(tmp_path: Path, engine: sa.Engine) -> None:
    path = tmp_path / "atryum.toml"
    path.write_text('[policy]\nprovider = "always_deny"\n[approvals]\ntimeout_seconds = 60\n')
    defaults = defaults_from(load_config(path, env={}))
    assert defaults.approval_timeout_seconds == 60
    inv, _ = service.submit(engine, request=call("Anything"), caller=None, defaults=defaults)
    assert inv.status == "denied" and inv.matched_rule_id is None

    path.write_text("[approvals]\ntimeout_seconds = 90\n")
    defaults = defaults_from(load_config(path, env={}))
    inv, _ = service.submit(engine, request=call("Other"), caller=None, defaults=defaults)
    assert inv.status == "pending_approval" and inv.approval is not None
    assert inv.approval.expires_at is not None
    assert (inv.approval.expires_at - inv.approval.requested_at).total_seconds() == 90


def test_a_bad_policy_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "atryum.toml"
    path.write_text('[policy]\nprovider = "yes please"\n')
    with pytest.raises(ConfigError, match=r"atryum\.toml.*policy\.provider"):
        load_config(path, env={})

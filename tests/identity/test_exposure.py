"""Running without authentication (identity.md §4): loopback only, unless allow_unauthenticated
is set — logged at every start and shown on every page — and the `atryum token` commands."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from atryum import cli
from atryum.app import build_context, create_app
from atryum.identity.hosts import ExposureError, check_exposure
from tests.identity.conftest import auth_config, bearer
from tests.idp.fixtures import Idp
from tests.support import make_config


@pytest.mark.parametrize("listen", ["127.0.0.1:8080", "localhost:9000", "[::1]:8080"])
def test_no_auth_is_fine_on_loopback(listen: str) -> None:
    assert check_exposure(make_config(server={"listen_addr": listen})) is None


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", ":8080", "10.0.0.5:8080", "[::]:8080"])
def test_no_auth_beyond_loopback_refuses_to_start(listen: str) -> None:
    with pytest.raises(ExposureError, match="allow_unauthenticated"):
        check_exposure(make_config(server={"listen_addr": listen}))
    warning = check_exposure(
        make_config(server={"listen_addr": listen, "allow_unauthenticated": True})
    )
    assert warning is not None and "WITHOUT authentication" in warning


def test_atryum_run_says_why_it_will_not_start(tmp_path: Path) -> None:
    config = tmp_path / "atryum.toml"
    config.write_text('[server]\nlisten_addr = "0.0.0.0:18080"\n')
    result = CliRunner().invoke(cli.app, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert "refusing to start" in result.output and "[[auth]]" in result.output


def test_dev_mode_serves_operators_without_credentials(engine: sa.Engine) -> None:
    with TestClient(create_app(build_context(make_config(), engine), background=False)) as c:
        assert c.get("/api/v1/operator").json()["method"] == "none"
        page = c.get("/ui/rules").text
        assert "unauthenticated-banner" not in page and 'id="whoami"' not in page


def test_allow_unauthenticated_with_auth_opens_operator_routes_only(
    engine: sa.Engine, op_idp: Idp, caplog: pytest.LogCaptureFixture
) -> None:
    config = auth_config(
        op_idp,
        server={
            "listen_addr": "0.0.0.0:8080",
            "allow_unauthenticated": True,
            "allowed_hosts": ["testserver"],
        },
    )
    caplog.set_level(logging.WARNING)
    with TestClient(create_app(build_context(config, engine), background=False)) as c:
        assert "WITHOUT authentication" in caplog.text
        assert c.post("/api/v1/rules", json={"action": "auto_deny"}).status_code == 201
        assert 'id="unauthenticated-banner"' in c.get("/ui/").text
        hook = c.post("/api/v1/external/invocations", json={"source": "s", "tool": "t"})
        assert hook.status_code == 401  # agents still need their tokens
        token = op_idp.mint("agent-rs")
        assert c.post(
            "/api/v1/external/invocations",
            json={"source": "s", "tool": "t"},
            headers=bearer(token),
        ).status_code in (200, 201)


def test_token_commands(tmp_path: Path, db_url: str, op_idp: Idp, engine: sa.Engine) -> None:
    path = tmp_path / "atryum.toml"
    path.write_text(f'[server]\ndatabase_url = "{db_url}"\n')
    runner = CliRunner()
    made = runner.invoke(
        cli.app,
        [
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "approver",
            "--expires-in",
            "2w",
            "--config",
            str(path),
        ],
    )
    assert made.exit_code == 0, made.output
    value = made.stdout.strip().splitlines()[-1]
    assert value.startswith("atryum_op_")
    with TestClient(create_app(build_context(auth_config(op_idp), engine), background=False)) as c:
        me: dict[str, Any] = c.get("/api/v1/operator", headers=bearer(value)).json()
        assert (me["name"], me["role"], me["method"]) == ("ci", "approver", "api_token")
        listed = runner.invoke(cli.app, ["token", "list", "--config", str(path)])
        assert listed.exit_code == 0 and "ci" in listed.stdout and value not in listed.stdout
        token_id = me["subject"].removeprefix("api_token:")
        gone = runner.invoke(cli.app, ["token", "revoke", token_id, "--config", str(path)])
        assert gone.exit_code == 0, gone.output
        assert c.get("/api/v1/operator", headers=bearer(value)).status_code == 401
    bad = runner.invoke(
        cli.app, ["token", "create", "--name", "x", "--role", "root", "--config", str(path)]
    )
    assert bad.exit_code == 2 and "role must be one of" in bad.output
    never = runner.invoke(
        cli.app,
        [
            "token",
            "create",
            "--name",
            "x",
            "--role",
            "viewer",
            "--expires-in",
            "0d",
            "--config",
            str(path),
        ],
    )
    assert never.exit_code == 2

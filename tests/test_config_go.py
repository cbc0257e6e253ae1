"""The Go original's configuration keys (go-compat.md §1): they load, map onto ours, and the
features we lack are named, not silently dropped; the CLI takes Go's `-config` flag."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from atryum.cli import app
from atryum.config import load_config, unimplemented_warnings

GO_KEYS = """
[server]
listen_addr = ":8080"
atryum_instance = "prod-eu"
database_path = "./go.db"
database_url = ""
log_level = "warning"

[backend]
base_url = ""
evaluate_timeout_seconds = 90

[defaults]
request_timeout_seconds = 45

[policy]
provider = "always_deny"

[[managed_agents]]
name = "default"
workspace = "ws"
api_key = "sk-ant-secret"
poll_interval_millis = 500

[otel]
enabled = true
capture_content = false

[[otel.exporters]]
name = "langfuse"
endpoint = "https://langfuse.example/api/public/otel/v1/traces"
public_key = "pk-lf-1"
secret_key = "sk-lf-secret"
headers = { "X-Tenant" = "t" }

[plans]
enabled = true

[[upstreams]]
name = "slack"
mode = "http"
base_url = "https://mcp.slack.example/mcp"
oauth_client_id = "1234567890.abcdef"
oauth_client_secret = "oauth-shhhhh"
oauth_scopes = "chat:write channels:history"

[[upstreams]]
name = "calc"
command = "calc-mcp"
"""


def test_every_go_key_loads(tmp_path: Path) -> None:
    path = tmp_path / "atryum.toml"
    path.write_text(GO_KEYS)
    config = load_config(path, env={"VM_EVALUATE_TIMEOUT_SECONDS": "7"})
    server = config.server
    assert (server.host, server.port) == ("0.0.0.0", 8080)
    assert (server.atryum_instance, server.log_level) == ("prod-eu", "warning")
    assert config.database_url == f"sqlite:///{Path('go.db').resolve()}"
    assert config.backend.evaluate_timeout_seconds == 7
    assert config.defaults.request_timeout_seconds == 45
    assert config.policy.unregistered_agents == "global_rules"
    assert config.managed_agents[0].poll_interval_millis == 500
    assert config.otel.exporters[0].name == "langfuse"
    warnings = unimplemented_warnings(config)
    sections = [w.split("[")[1].split("]")[0] for w in warnings]
    assert sections == ["managed_agents", "otel", "plans", ""]  # "" is [[upstreams]]
    assert "'slack'" in warnings[-1] and "oauth_*" in warnings[-1] and "calc" not in warnings[-1]
    assert all(str(path) in w for w in warnings)
    assert not any("secret" in w or "shhhhh" in w for w in warnings)


def test_database_url_wins_over_database_path(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text('[server]\ndatabase_path = "x.db"\ndatabase_url = "sqlite:///y.db"\n')
    assert load_config(path, env={}).database_url == "sqlite:///y.db"


def test_listen_addresses(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    for addr, host in ((":9000", "0.0.0.0"), ("[::1]:9000", "::1"), ("10.0.0.5:9000", "10.0.0.5")):
        path.write_text(f'[server]\nlisten_addr = "{addr}"\n')
        assert load_config(path, env={}).server.host == host


def test_version_and_the_go_config_flag(tmp_path: Path) -> None:
    runner = CliRunner()
    for args in (["--version"], ["version"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and result.output.startswith("atryum 0.")
    path = tmp_path / "a.toml"
    path.write_text(f'[server]\ndatabase_url = "sqlite:///{tmp_path / "m.db"}"\n')
    for args in (["-config", str(path)], [f"-config={path}"], ["--config", str(path)]):
        result = runner.invoke(app, ["migrate", *args])
        assert result.exit_code == 0, result.output
    missing = runner.invoke(app, ["migrate", "-config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "nope.toml: config file not found" in missing.output

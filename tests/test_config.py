"""Configuration: discovery order, env overrides, and errors naming file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from atryum.config import ConfigError, load_config, normalize_database_url


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    config = load_config(None, env={})
    assert config.server.listen_addr == "127.0.0.1:8080"
    assert config.sync.max_removals == 10 and config.sync.max_removal_ratio == 0.2
    assert not config.backend.enabled


def test_explicit_then_cwd_then_user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    user = tmp_path / "cfg" / "atryum"
    user.mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    write(user / "atryum.toml", '[server]\nlisten_addr = "127.0.0.1:1111"\n')
    assert load_config(None, env={}).server.port == 1111
    write(tmp_path / "atryum.toml", '[server]\nlisten_addr = "127.0.0.1:2222"\n')
    assert load_config(None, env={}).server.port == 2222
    other = write(tmp_path / "other.toml", '[server]\nlisten_addr = "127.0.0.1:3333"\n')
    assert load_config(other, env={}).server.port == 3333


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[sync]\nmax_removals = -1\n", ["sync.max_removals", "greater than or equal"]),
        ("[sync]\nmax_removal_ratio = 'lots'\n", ["sync.max_removal_ratio"]),
        ("[server]\nlisten_adr = 'x'\n", ["server.listen_adr", "unknown key"]),
        ("[server]\nlisten_addr = 'nohost'\n", ["server", "host:port"]),
        ("[backend]\nmachine_key = 'k'\n", ["backend", "machine_secret is missing"]),
        ("[server]\ndatabase_url = 'mysql://x'\n", ["server.database_url", "mysql"]),
        ("[server\n", ["not valid TOML"]),
    ],
)
def test_bad_file_names_file_key_and_problem(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path / "atryum.toml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    message = str(err.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_secret_values_never_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "a.toml", "[backend]\nmachine_key = 'TOPSECRET-KEY'\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert "TOPSECRET" not in str(err.value)


def test_env_overrides(tmp_path: Path) -> None:
    path = write(tmp_path / "a.toml", "[backend]\nbase_url = 'http://file'\n")
    config = load_config(
        path,
        env={
            "VM_BASE_URL": "http://env",
            "VM_API_KEY": "k",
            "VM_API_SECRET": "s",
            "VM_CONNECTION_TIMEOUT_SECONDS": "7",
        },
    )
    assert config.backend.base_url == "http://env" and config.backend.auth_mode == "api_key"
    assert config.backend.connection_timeout_seconds == 7
    assert "s" not in repr(config.backend.api_secret)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_database_url_forms(tmp_path: Path) -> None:
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert normalize_database_url(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"


def test_webhook_secrets_from_env(tmp_path: Path) -> None:
    path = write(tmp_path / "a.toml", "[validmind]\nwebhook_secret = '" + "f" * 24 + "'\n")
    config = load_config(
        path,
        env={"ATRYUM_WEBHOOK_SECRET": "n" * 24, "ATRYUM_PREVIOUS_WEBHOOK_SECRET": "o" * 24},
    )
    assert config.validmind.secrets == [b"n" * 24, b"o" * 24]
    assert "o" * 24 not in repr(config)


@pytest.mark.parametrize("key", ["webhook_secret", "previous_webhook_secret"])
@pytest.mark.parametrize(
    ("value", "ok"),
    [("x" * 23, False), ("x" * 24, True), ("\u00e9" * 11 + "x", False), ("\u00e9" * 12, True)],
)
def test_webhook_secrets_need_24_bytes(tmp_path: Path, key: str, value: str, ok: bool) -> None:
    """Bytes, not characters: 'é' is two bytes in UTF-8."""
    fields = {"webhook_secret": "c" * 32, key: value}
    text = "[validmind]\n" + "".join(f"{k} = '{v}'\n" for k, v in fields.items())
    path = write(tmp_path / "a.toml", text)
    if ok:
        assert value.encode() in load_config(path, env={}).validmind.secrets
        return
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert f"{key} must be at least 24 bytes" in str(err.value)
    assert value not in str(err.value)


def test_previous_webhook_secret_alone_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.toml", "[validmind]\nprevious_webhook_secret = '" + "o" * 24 + "'\n")
    with pytest.raises(ConfigError, match="webhook_secret is missing"):
        load_config(path, env={})

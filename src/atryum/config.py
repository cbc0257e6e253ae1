"""Typed configuration: `atryum.toml` plus ATRYUM_* / VM_* environment overrides.

The file is found at `--config`, else `./atryum.toml`, else `<user config dir>/atryum.toml`.
A missing file means defaults. A bad file fails start-up with the file, the key and the problem.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

APP_NAME = "atryum"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file, the key and the problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


LogLevel = Literal["debug", "info", "warn", "warning", "error"]


class ServerConfig(_Section):
    listen_addr: str = "127.0.0.1:8080"
    public_base_url: str = ""
    database_url: str = ""
    # Go: the SQLite file used when database_url is empty.
    database_path: str = ""
    log_level: LogLevel = "info"
    # Go: identity written into Claude Managed Agents metadata (kept for its configs).
    atryum_instance: str = ""
    # Host names (optionally host:port) served besides public_base_url and the listen address;
    # other Host headers are refused (DNS rebinding, identity.md §3).
    allowed_hosts: list[str] = Field(default_factory=list)
    # Serve operator routes without authentication on a non-loopback address (identity.md §4).
    allow_unauthenticated: bool = False
    # The OAuth resource identifier of the agent routes (RFC 9728 `resource`), when the
    # identity providers were registered with another one than public_base_url + path.
    resource_url: str = ""

    @property
    def host(self) -> str:
        """`":8080"` (Go's form) means every interface; `[::1]:8080` binds `::1`."""
        return self.listen_addr.rsplit(":", 1)[0].strip("[]") or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.listen_addr.rsplit(":", 1)[1])

    @model_validator(mode="after")
    def _check_listen_addr(self) -> ServerConfig:
        _host, sep, port = self.listen_addr.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen_addr must be host:port, got {self.listen_addr!r}")
        return self


class BackendConfig(_Section):
    """How Atryum reaches ValidMind (validmind-api.md)."""

    base_url: str = ""
    machine_key: SecretStr | None = None
    machine_secret: SecretStr | None = None
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    connection_timeout_seconds: float = Field(default=5.0, gt=0)
    agents_timeout_seconds: float = Field(default=60.0, gt=0)
    # How long a ValidMind /evaluate call (an LLM judging a tool call) may take.
    evaluate_timeout_seconds: float = Field(default=120.0, gt=0)
    retry_attempts: int = Field(default=3, ge=1, le=10)
    page_size: int = Field(default=500, ge=1, le=10_000)
    # Ask for the next /agents page while one is being read (see ValidMindClient.fetch_agents).
    prefetch_pages: bool = True

    @model_validator(mode="after")
    def _pairs_complete(self) -> BackendConfig:
        for a, b in (("machine_key", "machine_secret"), ("api_key", "api_secret")):
            has_a, has_b = _present(getattr(self, a)), _present(getattr(self, b))
            if has_a != has_b:
                missing = b if has_a else a
                present = a if has_a else b
                raise ValueError(f"{present} is set but {missing} is missing; set both or neither")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.base_url.strip())

    @property
    def auth_mode(self) -> str:
        if _present(self.machine_key):
            return "machine_user"
        if _present(self.api_key):
            return "api_key"
        return "none"


def _present(value: SecretStr | None) -> bool:
    return value is not None and value.get_secret_value() != ""


class SyncConfig(_Section):
    interval_seconds: int = Field(default=300, ge=5)
    max_removals: int = Field(default=10, ge=0)
    max_removal_ratio: float = Field(default=0.2, ge=0, le=1)


class ApiKeyConfig(_Section):
    """Machine key/secret that machine callers (ValidMind's backend) present."""

    key: SecretStr | None = None
    secret: SecretStr | None = None

    @property
    def configured(self) -> bool:
        return _present(self.key) and _present(self.secret)


MIN_WEBHOOK_SECRET_BYTES = 24


class ValidMindEventsConfig(_Section):
    """Signed change events from ValidMind (agent-sync.md §5)."""

    webhook_secret: SecretStr | None = None
    # Accepted as well while a new secret is rolled out, so rotation needs no downtime.
    previous_webhook_secret: SecretStr | None = None
    debounce_seconds: float = Field(default=2.0, ge=0, le=300)

    @model_validator(mode="after")
    def _long_enough(self) -> ValidMindEventsConfig:
        for name in ("webhook_secret", "previous_webhook_secret"):
            value = getattr(self, name)
            if (
                value is not None
                and len(value.get_secret_value().encode()) < MIN_WEBHOOK_SECRET_BYTES
            ):
                raise ValueError(f"{name} must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes long")
        if self.previous_webhook_secret is not None and self.webhook_secret is None:
            raise ValueError("previous_webhook_secret is set but webhook_secret is missing")
        return self

    @property
    def secrets(self) -> list[bytes]:
        return [
            s.get_secret_value().encode()
            for s in (self.webhook_secret, self.previous_webhook_secret)
            if s is not None
        ]


class PolicyConfig(_Section):
    """What happens to a call no rule matches (overridden by `PUT /api/v1/policy`)."""

    provider: Literal["manual_approval", "always_approve", "always_deny"] = "manual_approval"
    # A runtime agent id that resolves to no registry agent (and no default agent):
    # "global_rules" (as the Go original) = only rules for all agents and the default policy
    # decide; "deny" = such calls are denied outright.
    unregistered_agents: Literal["global_rules", "deny"] = "global_rules"


class ApprovalsConfig(_Section):
    timeout_seconds: int = Field(default=3600, ge=1)
    sweep_interval_seconds: float = Field(default=5.0, gt=0)


class JudgeConfig(_Section):
    """The charter judge of `ai_evaluation` rules (judge.md)."""

    # Identical questions within this many seconds are answered from the cache (0 = off).
    cache_ttl_seconds: float = Field(default=600, ge=0)
    # The most calls of the same client session the judge sees (newest kept).
    history_calls: int = Field(default=10, ge=0, le=100)


class AuthBlock(_Section):
    """One `[[auth]]` block (Go keys): an OIDC issuer whose bearer tokens identify agents and,
    with `admin_enabled`, operators (identity.md §1-2). Only `enabled = true` blocks count."""

    enabled: bool = False
    issuer: str = ""
    audience: str = ""
    jwks_url: str = ""
    required_scope: str = ""
    agent_id_claim: str = "client_id"
    admin_enabled: bool = False
    admin_provider: str = ""
    admin_client_id: str = ""
    admin_client_secret: SecretStr | None = None
    admin_scopes: str | list[str] = ""  # Go: space-separated string
    admin_claim: str = "atryum_admin"
    admin_claim_value: str | bool | int = "true"


class OperatorConfig(_Section):
    """Operator login, sessions and API tokens (identity.md §2)."""

    # The claim whose value (viewer | approver | admin, or a list of them) is a person's role;
    # a dotted path reaches into objects (Keycloak: `realm_access.roles`).
    role_claim: str = "atryum_role"
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=24 * 30)
    api_token_default_days: int = Field(default=90, ge=1, le=3650)


class AuthDebugConfig(_Section):
    """Go's local-only switch: ignore the Authorization header on /mcp/ entirely."""

    skip_verify: bool = False


class UpstreamConfig(_Section):
    """One `[[upstreams]]` entry (Go keys): seeds `mcp_servers` while that table is empty."""

    name: str
    mode: Literal["stdio", "http"] = "stdio"
    base_url: str = ""
    command: str = ""
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    auth_token: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout_seconds: int = Field(default=30, ge=1)
    enabled: bool = True
    oauth_client_id: str = ""
    oauth_client_secret: SecretStr | None = None
    oauth_authorize_url: str = ""
    oauth_token_url: str = ""
    oauth_scopes: str | list[str] = ""  # Go: space-separated string
    oauth_redirect_url: str = ""


class LimitsConfig(_Section):
    """What one request may carry (issue 14): bigger bodies are 413, deeper JSON 422."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=64, ge=2, le=200)


class RetentionConfig(_Section):
    """How long finished invocations (and their events) are kept; 0 = forever (the default)."""

    invocations_days: float = Field(default=0, ge=0)
    sweep_interval_seconds: float = Field(default=3600, gt=0)


class DefaultsConfig(_Section):
    """Go's `[defaults]`: the timeout of a request to an upstream MCP server."""

    request_timeout_seconds: int = Field(default=30, ge=1)


class ManagedAgentsConfig(_Section):
    """One `[[managed_agents]]` entry (Go keys): a Claude Managed Agents events bridge."""

    name: str = ""
    workspace: str = ""
    base_url: str = ""
    api_key: SecretStr | None = None
    poll_interval_millis: int = 1000
    reconnect_backoff_seconds: int = 2
    recent_chat_messages_limit: int = 100
    client_name: str = ""
    client_version: str = ""


class OtelExporterConfig(_Section):
    name: str = ""
    endpoint: str = ""
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    public_key: str = ""
    secret_key: SecretStr | None = None


class OtelConfig(_Section):
    """Go's `[otel]`: OpenTelemetry trace export over OTLP/HTTP."""

    enabled: bool = False
    environment: str = ""
    capture_content: bool | None = None
    exporters: list[OtelExporterConfig] = Field(default_factory=list)


class Config(_Section):
    server: ServerConfig = ServerConfig()
    backend: BackendConfig = BackendConfig()
    sync: SyncConfig = SyncConfig()
    api_key: ApiKeyConfig = ApiKeyConfig()
    validmind: ValidMindEventsConfig = ValidMindEventsConfig()
    policy: PolicyConfig = PolicyConfig()
    approvals: ApprovalsConfig = ApprovalsConfig()
    judge: JudgeConfig = JudgeConfig()
    auth: list[AuthBlock] = Field(default_factory=list)
    operator: OperatorConfig = OperatorConfig()
    auth_debug: AuthDebugConfig = AuthDebugConfig()
    upstreams: list[UpstreamConfig] = Field(default_factory=list)
    limits: LimitsConfig = LimitsConfig()
    retention: RetentionConfig = RetentionConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    managed_agents: list[ManagedAgentsConfig] = Field(default_factory=list)
    otel: OtelConfig = OtelConfig()
    # Go's plan-submission settings; its keys are not ours to check yet (see UNIMPLEMENTED).
    plans: dict[str, Any] = Field(default_factory=dict)
    source: str = Field(default="", exclude=True)

    @property
    def database_url(self) -> str:
        return normalize_database_url(self.server.database_url or self.server.database_path)


# Sections of the Go original's configuration that load but do nothing here yet: each one
# present in the file is named in one start-up warning. Delete a line when its feature lands.
UNIMPLEMENTED: dict[str, str] = {
    "managed_agents": "the Claude Managed Agents events bridge",
    "otel": "OpenTelemetry trace export",
    "plans": "plan submission",
    "auth_debug": "the MCP proxy's auth debug switch",
}


def unimplemented_warnings(config: Config) -> list[str]:
    """One warning per Go section in the file whose feature Atryum does not have yet, and one
    per upstream whose `oauth_*` keys (the Go original's upstream OAuth sign-in) it ignores."""
    sections = [
        f"{config.source}: [{key}] is accepted for compatibility with the Go original, but "
        f"{what} is not implemented yet; the section is ignored"
        for key, what in UNIMPLEMENTED.items()
        if key in config.model_fields_set
    ]
    oauth = [
        f"{config.source}: [[upstreams]] {up.name!r}: the oauth_* keys are accepted for "
        "compatibility with the Go original, but upstream OAuth sign-in is not implemented yet; "
        "the server is reached without it (use auth_token or headers)"
        for up in config.upstreams
        if any(key.startswith("oauth_") for key in up.model_fields_set)
    ]
    return sections + oauth


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "atryum.toml"


def default_database_url() -> str:
    data_dir = Path(platformdirs.user_data_dir(APP_NAME))
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'atryum.db'}"


def normalize_database_url(raw: str) -> str:
    """`postgresql://…`, `sqlite:///…` or a plain file path → a SQLAlchemy URL."""
    raw = raw.strip()
    if not raw:
        return default_database_url()
    if raw.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + raw.split("://", 1)[1]
    if raw.startswith(("postgresql+psycopg://", "sqlite://")):
        return raw
    if "://" in raw:
        raise ValueError(f"unsupported database_url scheme in {raw.split('://')[0]!r}")
    return f"sqlite:///{Path(raw).expanduser().resolve()}"


_ENV: dict[str, tuple[str, str]] = {
    "VM_BASE_URL": ("backend", "base_url"),
    "VM_MACHINE_KEY": ("backend", "machine_key"),
    "VM_MACHINE_SECRET": ("backend", "machine_secret"),
    "VM_API_KEY": ("backend", "api_key"),
    "VM_API_SECRET": ("backend", "api_secret"),
    "VM_CONNECTION_TIMEOUT_SECONDS": ("backend", "connection_timeout_seconds"),
    "VM_EVALUATE_TIMEOUT_SECONDS": ("backend", "evaluate_timeout_seconds"),
    "ATRYUM_LISTEN_ADDR": ("server", "listen_addr"),
    "ATRYUM_PUBLIC_BASE_URL": ("server", "public_base_url"),
    "ATRYUM_DATABASE_URL": ("server", "database_url"),
    "ATRYUM_ALLOW_UNAUTHENTICATED": ("server", "allow_unauthenticated"),
    "ATRYUM_WEBHOOK_SECRET": ("validmind", "webhook_secret"),
    "ATRYUM_PREVIOUS_WEBHOOK_SECRET": ("validmind", "previous_webhook_secret"),
}


def find_config_file(explicit: str | Path | None) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    for candidate in (Path("atryum.toml"), default_config_path()):
        if candidate.is_file():
            return candidate
    return None


def load_config(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    path = find_config_file(explicit)
    data: dict[str, Any] = {}
    where = str(path) if path else "(defaults)"
    if path is not None:
        data = _read_toml(path)
    for var, (section, key) in _ENV.items():
        if env.get(var):
            data.setdefault(section, {})
            if isinstance(data[section], dict):
                data[section][key] = env[var]
    return parse_config(data, where)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start} is not valid UTF-8); save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None


def parse_config(data: dict[str, Any], where: str) -> Config:
    try:
        config = Config.model_validate(data)
        normalize_database_url(config.server.database_url)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(file)"
            problems.append(f"{where}: {key}: {_describe(err)}")
        raise ConfigError("\n".join(problems)) from None
    except ValueError as exc:
        raise ConfigError(f"{where}: server.database_url: {exc}") from None
    config.source = where
    return config


def _describe(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")

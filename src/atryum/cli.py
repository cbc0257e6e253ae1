"""Command line: `atryum run | sync | migrate | demo | vm-sim | setup validmind | token`."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from atryum import logsafe
from atryum.config import (
    Config,
    ConfigError,
    find_config_file,
    load_config,
    unimplemented_warnings,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
setup_app = typer.Typer(no_args_is_help=True, help="Configure integrations.")
app.add_typer(setup_app, name="setup")
token_app = typer.Typer(no_args_is_help=True, help="Operator API tokens: create, list, revoke.")
app.add_typer(token_app, name="token")
session_app = typer.Typer(no_args_is_help=True, help="Operator UI sessions: end them.")
app.add_typer(session_app, name="session")

#: Changes `atryum sync` lists unless asked for --all.
CLI_CHANGES = 20

# `-config PATH` / `-config=PATH` is the Go original's flag, used by its Dockerfile.
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-config", "-c", help="Path to atryum.toml", show_default=False),
]


def _version() -> str:
    return importlib.metadata.version("atryum")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"atryum {_version()}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """Atryum: a permissions gateway for AI agents."""


@app.command("version")
def version_command() -> None:
    """Print the version."""
    typer.echo(f"atryum {_version()}")


def _load(path: Path | None) -> Config:
    try:
        config = load_config(path)
    except ConfigError as exc:
        typer.echo(f"atryum: bad configuration:\n{exc}", err=True)
        raise typer.Exit(2) from None
    logsafe.install(logsafe.secrets_of(config))
    return config


def _database_problem(url: str, exc: Exception) -> str:
    """What is wrong with the database, in words (no driver traceback, no credentials)."""
    from sqlalchemy.engine import make_url

    from atryum.validmind.redact import redact_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database.removeprefix("file:")).parent
        if not path.is_dir():
            return f"the directory {path} does not exist; create it or set another database_url"
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return f"cannot open or write the database ({redact_url(reason)})"


def _migrated(cfg: Config, engine: Any) -> None:
    """Apply migrations now, so a database that cannot be opened or written stops the command
    with the file, the key and the problem instead of a traceback."""
    import sqlalchemy as sa

    from atryum.db import migrate as db_migrate

    try:
        db_migrate.upgrade(engine)
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        problem = _database_problem(cfg.database_url, exc)
        typer.echo(
            f"atryum: bad configuration:\n{cfg.source}: server.database_url: {problem}", err=True
        )
        raise typer.Exit(2) from None


@app.command()
def run(
    config: ConfigOpt = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            envvar="ATRYUM_WORKERS",
            help="Server processes on the one port (a database file or PostgreSQL; see README)",
        ),
    ] = 1,
) -> None:
    """Serve Atryum (API, UI, background sync) at [server] listen_addr."""
    from atryum.app import build_context, create_app
    from atryum.identity.hosts import ExposureError, check_exposure
    from atryum.workers import CONFIG_ENV, WorkersRefused, check_workers

    cfg = _load(config)
    level = cfg.server.log_level
    logsafe.configure(level)
    try:
        check_exposure(cfg)
    except ExposureError as exc:
        typer.echo(f"atryum: {exc}", err=True)
        raise typer.Exit(2) from None
    for warning in unimplemented_warnings(cfg):
        logging.getLogger("atryum").warning(warning)
    ctx = build_context(cfg)
    _migrated(cfg, ctx.engine)
    log_level = logging.getLevelName(logsafe.LEVELS[level]).lower()
    if workers == 1:
        uvicorn.run(
            create_app(ctx, settle_heap=True),
            host=cfg.server.host,
            port=cfg.server.port,
            log_level=log_level,
        )
        return
    try:
        check_workers(workers, ctx.engine)
    except WorkersRefused as exc:
        typer.echo(f"atryum: {exc}", err=True)
        raise typer.Exit(2) from None
    ctx.engine.dispose()  # the workers open their own
    found = find_config_file(config)
    if found is not None:
        os.environ[CONFIG_ENV] = str(found)
    uvicorn.run(
        "atryum.workers:worker_app",
        factory=True,
        workers=workers,
        host=cfg.server.host,
        port=cfg.server.port,
        log_level=log_level,
    )


@app.command()
def migrate(config: ConfigOpt = None) -> None:
    """Apply database migrations and exit."""
    from atryum.db import migrate as db_migrate
    from atryum.db.engine import make_engine

    cfg = _load(config)
    engine = make_engine(cfg.database_url)
    _migrated(cfg, engine)
    typer.echo(f"database at revision {db_migrate.current_revision(engine)}")


class _FetchProgress:
    """`atryum sync`'s progress line on stderr while the pull arrives (redrawn on a terminal,
    a line per tenth of the records otherwise)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = -1

    def __call__(self, received: int, total: int) -> None:
        line = f"fetching from ValidMind: {received} of {total} records"
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if received >= total else ""))
        elif self.shown < 0 or received - self.shown >= max(total // 10, 1) or received >= total:
            sys.stderr.write(line + "\n")
        else:
            return
        self.shown = received
        sys.stderr.flush()


@app.command()
def sync(
    config: ConfigOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; change nothing")] = False,
    allow_removals: Annotated[
        bool, typer.Option("--allow-removals", help="Apply retirements held by the threshold")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help=f"List every change, not the first {CLI_CHANGES}")
    ] = False,
) -> None:
    """Run one ValidMind sync now and print what it did."""
    from atryum.app import build_context
    from atryum.cli_table import render_run
    from atryum.sync import runs

    cfg = _load(config)
    if not cfg.backend.enabled:
        typer.echo("atryum: ValidMind is not configured ([backend] base_url is empty)", err=True)
        raise typer.Exit(2)
    ctx = build_context(cfg)
    try:
        _migrated(cfg, ctx.engine)
        run = ctx.coordinator.run_blocking(
            trigger="manual",
            requested_by="cli",
            dry_run=dry_run,
            allow_removals=allow_removals,
            progress=_FetchProgress(),
        )
        shown = run["changes_total"] if show_all else CLI_CHANGES
        run = runs.get_run(ctx.engine, run_id=run["id"], changes=shown)
    finally:
        ctx.engine.dispose()
    typer.echo(json.dumps(run, default=str, indent=2) if as_json else render_run(run))
    raise typer.Exit(0 if run["status"] == "succeeded" else 1)


@setup_app.command("validmind")
def setup_validmind(
    org_cuid: Annotated[str, typer.Option(help="ValidMind organization cuid")],
    record_type: Annotated[str, typer.Option(help="Agent record type slug, e.g. ai-agent")],
    charter_field: Annotated[
        str, typer.Option(help="Custom field holding the charter")
    ] = "charter",
    check: Annotated[
        bool, typer.Option(help="Check the scope against ValidMind before saving it")
    ] = True,
    allow_removals: Annotated[
        bool,
        typer.Option(
            "--allow-removals", help="Apply the change even if it retires more than the thresholds"
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Set the sync scope (organization, record type, charter field); the next sync uses it."""
    from atryum.app import build_context
    from atryum.context import make_client
    from atryum.sync.scope import scope_problem
    from atryum.sync.settings import ScopeChangeHeld, update_settings
    from atryum.validmind.client import ValidMindError

    cfg = _load(config)
    if check and cfg.backend.enabled:
        try:
            with make_client(cfg) as client:
                problem = scope_problem(
                    client, org_cuid=org_cuid, record_type=record_type, charter_field=charter_field
                )
        except ValidMindError as exc:
            typer.echo(
                f"atryum: could not check the scope against ValidMind: {exc}\nNothing was saved; "
                "fix the connection or pass --no-check to save it unchecked.",
                err=True,
            )
            raise typer.Exit(1) from None
        if problem:
            typer.echo(f"atryum: {problem}. Nothing was saved.", err=True)
            raise typer.Exit(2)
    elif check:
        typer.echo(
            "note: ValidMind is not configured ([backend] in atryum.toml), so the scope was not "
            "checked; syncs start once it is.",
            err=True,
        )
    ctx = build_context(cfg)
    try:
        _migrated(cfg, ctx.engine)
        changes: dict[str, Any] = {
            "org_cuid": org_cuid,
            "agent_record_type_slug": record_type,
            "charter_field_key": charter_field,
        }
        new, scope, _ = update_settings(
            ctx.engine, changes=changes, defaults=cfg.sync, allow_removals=allow_removals
        )
    except ScopeChangeHeld as held:
        message = held.message.replace('"allow_removals": true', "--allow-removals")
        typer.echo(f"atryum: {message}", err=True)
        raise typer.Exit(1) from None
    finally:
        ctx.engine.dispose()
    typer.echo(
        f"sync scope: {new.org_cuid} / {new.agent_record_type_slug} "
        f"(charter field {new.charter_field_key}); retired {len(scope.retire)} out-of-scope "
        f"agents, kept {len(scope.keep)} dependents"
    )


@app.command("vm-sim")
def vm_sim(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8090,
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    seed: Annotated[
        Path | None, typer.Option(help="JSON seed file (default: the demo data)")
    ] = None,
    empty: Annotated[bool, typer.Option(help="Start with no data at all")] = False,
    notify_url: Annotated[
        str | None,
        typer.Option(help="Atryum base URL to tell about every record change", show_default=False),
    ] = None,
    notify_mode: Annotated[
        str | None,
        typer.Option(
            help="none | sync | event (default: event with --webhook-secret, sync with "
            "--api-key, else none)",
            show_default=False,
        ),
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            envvar="ATRYUM_SIM_WEBHOOK_SECRET",
            help="Shared secret that signs change events (mode event)",
            show_default=False,
            show_envvar=True,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="ATRYUM_SIM_API_KEY",
            help="Atryum machine API key id (mode sync)",
            show_default=False,
            show_envvar=True,
        ),
    ] = None,
    api_secret: Annotated[
        str | None,
        typer.Option(
            envvar="ATRYUM_SIM_API_SECRET",
            help="Atryum machine API key secret (mode sync)",
            show_default=False,
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """Serve the bundled ValidMind simulator (API + /admin surface).

    With --notify-url every record change is sent to Atryum: a signed change event (mode event)
    or a sync call with the machine API key (mode sync), retried while Atryum is down."""
    from atryum.demo import demo_seed
    from atryum.validmind.sim.app import serve
    from atryum.validmind.sim.notify import NotifyConfig, NotifyMode
    from atryum.validmind.sim.state import SimState

    modes: dict[str, NotifyMode] = {"none": "none", "sync": "sync", "event": "event"}
    mode = modes.get(notify_mode or ("event" if webhook_secret else "sync" if api_key else "none"))
    if mode is None:
        typer.echo(
            f"atryum: --notify-mode must be none, sync or event, not {notify_mode!r}", err=True
        )
        raise typer.Exit(2)
    if mode != "none" and not notify_url:
        typer.echo(f"atryum: --notify-mode {mode} needs --notify-url", err=True)
        raise typer.Exit(2)
    try:
        notify = NotifyConfig(
            atryum_url=notify_url or "",
            mode=mode,
            api_key=api_key or None,
            api_secret=api_secret or None,
            webhook_secret=webhook_secret or None,
        )
    except ValueError as exc:
        typer.echo(f"atryum: bad notify options: {exc}", err=True)
        raise typer.Exit(2) from None
    logsafe.configure()
    state = (
        SimState()
        if empty
        else SimState.from_seed(json.loads(seed.read_text()) if seed else demo_seed())
    )
    serve(state, host, port, notify=notify)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Atryum port")] = 8080,
    sim_port: Annotated[int, typer.Option(help="Simulator port")] = 8090,
    database: Annotated[
        str, typer.Option(help="Database URL or SQLite path for the demo")
    ] = "atryum-demo.db",
) -> None:
    """Start the simulator with demo data and Atryum configured against it."""
    from atryum.demo import run_demo

    logsafe.configure()
    run_demo(port=port, sim_port=sim_port, database=database)


@app.command()
def hook(
    url: Annotated[
        str, typer.Option(envvar="ATRYUM_URL", help="Atryum's base URL")
    ] = "http://127.0.0.1:8080",
    host: Annotated[
        str,
        typer.Option(
            envvar="ATRYUM_HOOK_HOST", help="The harness: claude, cursor or codex (its answer form)"
        ),
    ] = "claude",
    source: Annotated[
        str | None,
        typer.Option(
            envvar="ATRYUM_SOURCE",
            help="Recorded as the call's source (default: claude-code, cursor or codex)",
        ),
    ] = None,
    agent_id: Annotated[
        str | None, typer.Option(envvar="ATRYUM_AGENT_ID", help="Runtime agent id to present")
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a human decision before denying")
    ] = 600.0,
) -> None:
    """Claude Code, Cursor or Codex hook: read the hook event on stdin, ask Atryum, print the
    harness's allow/deny JSON."""
    from atryum.gateway.hook import run as run_hook
    from atryum.gateway.hook_hosts import host_of

    try:
        out = run_hook(
            sys.stdin.read(),
            url=url,
            host=host_of(host),
            source=source,
            agent_id=agent_id,
            timeout=timeout,
        )
    except BaseException as exc:  # exit code 2 is Claude Code's "block": never fail open
        typer.echo(f"atryum hook failed ({type(exc).__name__}); the call was blocked", err=True)
        raise typer.Exit(2) from exc
    if out:
        typer.echo(out)


def main() -> None:
    app()


@contextlib.contextmanager
def _database(config: Path | None) -> Iterator[tuple[Config, Any]]:
    """The configuration and its migrated database, for commands that work on it directly."""
    from atryum.db.engine import make_engine

    cfg = _load(config)
    engine = make_engine(cfg.database_url)
    try:
        _migrated(cfg, engine)
        yield cfg, engine
    finally:
        engine.dispose()


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. ci-reports")],
    role: Annotated[str, typer.Option("--role", help="viewer, approver or admin")],
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="e.g. 90d, 12h, 2w (default: 90 days)")
    ] = "",
    config: ConfigOpt = None,
) -> None:
    """Create an operator API token; its value is printed once, store it now."""
    from atryum.errors import AtryumError
    from atryum.identity import api_tokens
    from atryum.identity.principal import CLI

    try:
        with _database(config) as (cfg, engine):
            days = cfg.operator.api_token_default_days
            span = api_tokens.parse_duration(expires_in or f"{days}d")
            token, value = api_tokens.create_token(
                engine, name=name, role=role, expires_in=span, actor=CLI
            )
    except AtryumError as exc:
        typer.echo(f"atryum: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"created token {token.id} ({token.name}, {token.role}), "
        f"expires {token.expires_at:%Y-%m-%d %H:%M UTC}",
        err=True,
    )
    typer.echo("the value is shown only now; send it as `Authorization: Bearer <value>`:", err=True)
    typer.echo(value)


@token_app.command("list")
def token_list(config: ConfigOpt = None) -> None:
    """List operator API tokens (never their values)."""
    from atryum.cli_table import table
    from atryum.db.types import utcnow
    from atryum.identity import api_tokens

    with _database(config) as (_, engine):
        tokens = api_tokens.list_tokens(engine)
    now = utcnow()
    rows = [
        [
            t.id,
            t.name,
            t.role,
            t.state(now),
            f"{t.expires_at:%Y-%m-%d %H:%M}",
            f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
        ]
        for t in tokens
    ]
    typer.echo(table(["ID", "NAME", "ROLE", "STATE", "EXPIRES (UTC)", "LAST USED"], rows))


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from `atryum token list`)")],
    config: ConfigOpt = None,
) -> None:
    """Revoke an operator API token; it is refused from the next request on."""
    from atryum.errors import AtryumError
    from atryum.identity import api_tokens
    from atryum.identity.principal import CLI

    try:
        with _database(config) as (_, engine):
            token = api_tokens.revoke_token(engine, token_id=token_id, actor=CLI)
    except AtryumError as exc:
        typer.echo(f"atryum: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked token {token.id} ({token.name})")


@session_app.command("end")
def session_end(
    subject: Annotated[str, typer.Option("--subject", help="The person's subject (sub claim)")],
    issuer: Annotated[str, typer.Option("--issuer", help="Their [[auth]] issuer")],
    config: ConfigOpt = None,
) -> None:
    """End every UI session of one person at once (e.g. after their access was removed)."""
    from atryum.identity import sessions

    with _database(config) as (_, engine):
        ended = sessions.end_sessions_of(engine, issuer=issuer, subject=subject)
    typer.echo(f"ended {ended} session(s) of {subject}")


if __name__ == "__main__":
    main()

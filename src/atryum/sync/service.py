"""One sync run: fetch → plan → apply, recorded in the run history.

The apply, the run record's outcome included, is one database transaction: an error or a crash
half-way leaves the registry exactly as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from atryum.config import SyncConfig
from atryum.db.types import utcnow
from atryum.metrics import SYNC_DURATION, SYNC_RUNS
from atryum.sync import run_store, store
from atryum.sync.planner import LocalAgent, Plan, make_plan
from atryum.sync.records import NormalizedPull, normalize
from atryum.sync.settings import SyncSettings, read_settings_tx
from atryum.validmind.client import AgentsPull, ValidMindClient, ValidMindError

log = logging.getLogger("atryum.sync")

ClientFactory = Callable[[], ValidMindClient]

RUNNING, SUCCEEDED, PARTIAL, HELD, FAILED, SKIPPED = (
    "running",
    "succeeded",
    "partial",
    "held",
    "failed",
    "skipped",
)


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    trigger: str
    requested_by: str = ""
    dry_run: bool = False
    allow_removals: bool = False
    triggers: tuple[str, ...] = ()


SETTINGS_CHANGED = (
    "skipped: the sync settings (organization, record type or charter field) changed while this "
    "run was fetching, so nothing was applied; a sync of the new settings follows"
)


class RunFailed(Exception):
    """Ends a run as `failed` with a message; nothing was applied."""

    status = FAILED


class SettingsChanged(RunFailed):
    """The settings changed between fetch and apply: the pull answers an old question."""

    status = SKIPPED

    def __init__(self) -> None:
        super().__init__(SETTINGS_CHANGED)


def start_run(engine: sa.Engine, request: RunRequest) -> None:
    with engine.begin() as conn:
        run_store.insert_run(
            conn,
            {
                "id": request.run_id,
                "trigger": request.trigger,
                "requested_by": request.requested_by,
                "dry_run": request.dry_run,
                "allow_removals": request.allow_removals,
                "triggers": list(request.triggers or (request.trigger,)),
                "status": RUNNING,
                "started_at": utcnow(),
                "warnings": [],
                "changes": [],
            },
        )


def execute_run(
    engine: sa.Engine,
    *,
    request: RunRequest,
    client_factory: ClientFactory,
    sync_defaults: SyncConfig,
) -> dict[str, Any]:
    """Run a sync whose run row `start_run` created; returns the finished run row."""
    started = time.monotonic()
    try:
        outcome = _fetch_plan_apply(engine, request, client_factory, sync_defaults)
        applied = True
    except RunFailed as exc:
        outcome, applied = {"status": exc.status, "error": str(exc)}, False
    except Exception as exc:  # an unexpected error must still end the run as failed
        log.exception("sync run %s failed", request.run_id)
        error = f"unexpected error: {type(exc).__name__}: {exc}"
        outcome, applied = {"status": FAILED, "error": error}, False
    if not applied:
        with engine.begin() as conn:
            run_store.update_run(conn, request.run_id, {**outcome, "finished_at": utcnow()})
    SYNC_RUNS.labels(outcome["status"], request.trigger).inc()
    SYNC_DURATION.observe(time.monotonic() - started)
    with engine.begin() as conn:
        run = run_store.get_run(conn, request.run_id)
    assert run is not None
    log.info(
        "sync run finished run_id=%s trigger=%s status=%s", run["id"], run["trigger"], run["status"]
    )
    return run


def _fetch_plan_apply(
    engine: sa.Engine,
    request: RunRequest,
    client_factory: ClientFactory,
    sync_defaults: SyncConfig,
) -> dict[str, Any]:
    try:
        with engine.begin() as conn:
            settings = read_settings_tx(conn, sync_defaults)
    except sa.exc.SQLAlchemyError as exc:
        raise RunFailed(f"could not read the sync settings: {exc}") from exc
    if not settings.configured:
        raise RunFailed(
            "the sync scope is not configured: set org_cuid and agent_record_type_slug "
            "(PUT /api/v1/settings)"
        )
    pull = _fetch(client_factory, settings)
    norm = normalize(
        pull.records,
        charter_field_key=settings.charter_field_key,
        org_name=pull.org_name,
        slug=settings.agent_record_type_slug,
    )
    problems = pull.problems + norm.problems
    complete = pull.complete and not norm.problems
    # What the client noticed about a pull that is still complete (a duplicate cuid dropped, a
    # server ignoring paging) is a warning; an incomplete pull's problems are the run's error.
    warnings = (pull.problems if complete else []) + norm.warnings
    try:
        with engine.begin() as conn:
            settings = _still_current(conn, settings, sync_defaults)
            local = store.load_org_agents(conn, settings.org_cuid, settings.default_agent_id)
            plan = make_plan(
                local,
                norm.records,
                complete=complete,
                thresholds=settings.thresholds,
                allow_removals=request.allow_removals,
            )
            if not request.dry_run:
                created_ids = _apply(conn, plan, settings, norm.org_name)
                outcome = _outcome(
                    plan, created_ids, complete, problems, warnings, norm, len(pull.records)
                )
                run_store.update_run(conn, request.run_id, outcome)
                return outcome
        outcome = _outcome(plan, [], complete, problems, warnings, norm, len(pull.records))
        with engine.begin() as conn:
            run_store.update_run(conn, request.run_id, outcome)
        return outcome
    except sa.exc.SQLAlchemyError as exc:
        raise RunFailed(
            "database error while applying the sync; nothing was changed: "
            f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:300]}"
        ) from exc


def _still_current(
    conn: sa.Connection, fetched: SyncSettings, defaults: SyncConfig
) -> SyncSettings:
    """The settings, locked for the rest of the apply; the run stops if the pull is stale."""
    current = read_settings_tx(conn, defaults, lock=True)
    if current.source != fetched.source:
        raise SettingsChanged()
    return current


def _fetch(client_factory: ClientFactory, settings: SyncSettings) -> AgentsPull:
    try:
        with client_factory() as client:
            pull = client.fetch_agents(settings.org_cuid, settings.agent_record_type_slug)
    except ValidMindError as exc:
        raise RunFailed(f"fetch from ValidMind failed; nothing was changed: {exc}") from exc
    if pull.org_cuid != settings.org_cuid:
        raise RunFailed(
            f"ValidMind answered for organization {pull.org_cuid!r}, not the configured "
            f"{settings.org_cuid!r}; nothing was changed"
        )
    return pull


def _apply(conn: sa.Connection, plan: Plan, settings: SyncSettings, org_name: str) -> list[str]:
    now = utcnow()
    slug = settings.agent_record_type_slug
    created_ids = store.insert_synced(
        conn, plan.creates, org_cuid=settings.org_cuid, org_name=org_name, slug=slug, now=now
    )
    for pairs, restore in ((plan.updates, False), (plan.restores, True)):
        store.refresh_synced(conn, pairs, org_name=org_name, slug=slug, now=now, restore=restore)
    previous = store.confirmed_at(conn, settings.org_cuid)
    plan.retires, plan.keeps = store.retire_or_keep(
        conn,
        plan.retires,
        plan.keeps,
        reason="archived_in_source",
        now=now,
        confirmed_at=previous,
        default_agent_id=settings.default_agent_id,
    )
    if plan.confirms_everyone:
        # Every active agent left is present: one write confirms them all.
        store.set_confirmed(conn, settings.org_cuid, now)
    else:
        store.mark_synced(conn, [a.id for a in plan.unchanged], now)
    return created_ids


def _change(
    action: str, agent: LocalAgent | None, cuid: str, name: str, reason: str
) -> dict[str, Any]:
    return {
        "action": action,
        "agent_id": agent.id if agent else None,
        "vm_cuid": cuid,
        "name": name,
        "reason": reason,
    }


def _outcome(
    plan: Plan,
    created_ids: list[str],
    complete: bool,
    problems: list[str],
    warnings: list[str],
    norm: NormalizedPull,
    fetched: int,
) -> dict[str, Any]:
    skipped_invalid = norm.skipped_invalid
    changes: list[dict[str, Any]] = []
    for i, rec in enumerate(plan.creates):
        change = _change("created", None, rec.cuid, rec.name, "new record in ValidMind")
        change["agent_id"] = created_ids[i] if created_ids else None
        changes.append(change)
    for agent, rec in plan.updates:
        why = "record is back in ValidMind" if agent.missing else "record changed in ValidMind"
        changes.append(_change("updated", agent, rec.cuid, rec.name, why))
    for agent, rec in plan.restores:
        changes.append(_change("restored", agent, rec.cuid, rec.name, "record is active again"))
    for agent in plan.retires:
        changes.append(
            _change("retired", agent, agent.vm_cuid, agent.name, "archived or deleted in ValidMind")
        )
    for agent in plan.keeps:
        changes.append(
            _change(
                "kept_dependent",
                agent,
                agent.vm_cuid,
                agent.name,
                "missing in ValidMind; kept because a managed-agent binding or the default "
                "agent setting depends on it",
            )
        )
    for agent in plan.held:
        changes.append(
            _change("held", agent, agent.vm_cuid, agent.name, "would be retired; held for review")
        )
    if plan.held:
        status = HELD
        error = (
            f"{len(plan.held)} retirements held: {plan.held_reason}. Review the held agents and "
            'allow them with POST /api/v1/agents/sync {"allow_removals": true} '
            "(CLI: atryum sync --allow-removals)"
        )
    elif not complete or skipped_invalid:
        status = PARTIAL
        error = "incomplete pull, nothing was retired: " + "; ".join(problems)
    else:
        status, error = SUCCEEDED, ""
    return {
        "status": status,
        "error": error,
        "created": len(plan.creates),
        "updated": len(plan.updates),
        "unchanged": len(plan.unchanged),
        "retired": len(plan.retires),
        "restored": len(plan.restores),
        "kept_dependent": len(plan.keeps),
        "skipped_invalid": skipped_invalid,
        "fetched": fetched,
        "warnings": warnings,
        "changes": changes,
        "finished_at": utcnow(),
    }

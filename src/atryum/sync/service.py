"""One sync run: fetch → plan → apply, recorded in the run history.

The apply, the run record's outcome included, is one database transaction: an error or a crash
half-way leaves the registry exactly as it was.

The pull streams: a thread fetches the pages while this one loads the registry, fingerprints
each page as it arrives and stages only what must be written (`atryum.sync.stage_store`), so a
run holds one page of raw records at a time and costs little more than the fetch itself.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from atryum.config import SyncConfig
from atryum.db.types import utcnow
from atryum.metrics import SYNC_DURATION, SYNC_RUNS
from atryum.sync import gc_hold, run_store, runs, stage_store, store
from atryum.sync.planner import LocalAgent, Plan, make_plan
from atryum.sync.records import Content, NormalizedPull, Normalizer
from atryum.sync.settings import SyncSettings, read_settings_tx
from atryum.validmind.client import AgentsPull, PageSink, ValidMindClient, ValidMindError

log = logging.getLogger("atryum.sync")

ClientFactory = Callable[[], ValidMindClient]
#: Told (records received, total announced) after every page of the pull.
Progress = Callable[[int, int], None]

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
    progress: Progress | None = field(default=None, compare=False)


#: Records normalized between two chances for the fetching thread to run.
YIELD_EVERY = 100

REGISTRY_MOVED = (
    "the registry changed while this run was fetching (an agent of the organization was "
    "edited, retired or purged), so nothing was applied; sync again"
)

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
            },
        )


def execute_run(
    engine: sa.Engine,
    *,
    request: RunRequest,
    client_factory: ClientFactory,
    sync_defaults: SyncConfig,
) -> dict[str, Any]:
    """Run a sync whose run row `start_run` created; returns the finished run (with the first
    changes)."""
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
    run = runs.get_run(engine, run_id=request.run_id)
    log.info(
        "sync run finished run_id=%s trigger=%s status=%s", run["id"], run["trigger"], run["status"]
    )
    _refresh_statistics(engine, run)
    return run


#: A run that changed this many agents, and at least a tenth of those it saw (autovacuum's own
#: analyze scale factor), refreshes PostgreSQL's statistics of the registry at once, so that its
#: name-ordered pages use their index from the first look after a big first sync (autovacuum
#: would, a minute or more later; SQLite's planner needs none). Changing 1 % of a big registry
#: moves no statistic that matters, and the ANALYZE would cost a fifth of that run.
ANALYZE_AFTER = 1000


def statistics_stale(run: dict[str, Any]) -> bool:
    changed = sum(int(run.get(k) or 0) for k in ("created", "updated", "restored", "retired"))
    seen = int(run.get("fetched") or 0) + int(run.get("retired") or 0)
    return not run.get("dry_run") and changed >= ANALYZE_AFTER and changed * 10 >= seen


def _refresh_statistics(engine: sa.Engine, run: dict[str, Any]) -> None:
    if engine.dialect.name != "postgresql" or not statistics_stale(run):
        return
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE agents"))
            conn.commit()
    except sa.exc.SQLAlchemyError:  # statistics are an optimisation: the run has succeeded
        log.warning("ANALYZE agents after sync run %s failed", run["id"], exc_info=True)


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
    try:
        # One connection for the whole run: its temporary tables hold the staged pull.
        with engine.connect() as conn:
            try:
                return _run_staged(conn, request, client_factory, sync_defaults, settings)
            finally:
                stage_store.discard(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise RunFailed(
            "database error while applying the sync; nothing was changed: "
            f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:300]}"
        ) from exc


def _run_staged(
    conn: sa.Connection,
    request: RunRequest,
    client_factory: ClientFactory,
    sync_defaults: SyncConfig,
    settings: SyncSettings,
) -> dict[str, Any]:
    with gc_hold.held() as settle:
        return _pull_plan_apply(conn, request, sync_defaults, settings, client_factory, settle)


def _pull_plan_apply(
    conn: sa.Connection,
    request: RunRequest,
    sync_defaults: SyncConfig,
    settings: SyncSettings,
    client_factory: ClientFactory,
    settle: Callable[[], None],
) -> dict[str, Any]:
    org = settings.org_cuid
    with _PageStream(client_factory, settings) as pages:
        # The first pages are on their way while the registry loads.
        with conn.begin():
            stage_store.create(conn)
            local = store.load_org_agents(conn, org, settings.default_agent_id)
            snapshot = store.org_snapshot(conn, org)
        known = {a.vm_cuid: a.source_hash for a in local if not a.retired and not a.missing}
        normalizer = Normalizer(
            charter_field_key=settings.charter_field_key,
            slug=settings.agent_record_type_slug,
            known=known,
        )
        del known
        settle()  # the registry as loaded stays until the plan is applied
        for org_name, page in pages:
            normalizer.set_org_name(org_name)
            staged: list[Content] = []
            for start in range(0, len(page), YIELD_EVERY):
                staged += normalizer.page(page[start : start + YIELD_EVERY])
                # Hand the GIL to the fetching thread, whose socket read may be done: without
                # this it waits out the interpreter's 5 ms switch interval every time.
                time.sleep(0)
            if staged:
                with conn.begin():
                    stage_store.stage_content(conn, staged)
            if request.progress is not None:
                request.progress(pages.received, pages.total)
            settle()  # and so do the page's fingerprints
        pull = pages.result()
    normalizer.set_org_name(pull.org_name)
    norm = normalizer.out
    problems = pull.problems + norm.problems
    complete = pull.complete and not norm.problems
    # What the client noticed about a pull that is still complete (a duplicate cuid dropped, a
    # server ignoring paging) is a warning; an incomplete pull's problems are the run's error.
    warnings = (pull.problems if complete else []) + norm.warnings
    with conn.begin():
        settings = _still_current(conn, settings, sync_defaults)
        if store.org_snapshot(conn, org) != snapshot:
            local = store.load_org_agents(conn, org, settings.default_agent_id)
        plan = make_plan(
            local,
            norm.records,
            complete=complete,
            thresholds=settings.thresholds,
            allow_removals=request.allow_removals,
        )
        if not request.dry_run:
            _apply(conn, plan, settings, norm.org_name)
        changes = _changes(plan)
        if not request.dry_run and plan.creates:
            run_store.add_changes_from(
                conn, stage_store.created_changes(request.run_id, CREATED_REASON)
            )
        else:
            changes = _creates(plan) + changes
        run_store.add_changes(conn, request.run_id, changes)
        outcome = _outcome(plan, complete, problems, warnings, norm, pull.received)
        run_store.update_run(conn, request.run_id, outcome)
        return outcome


class _PageStream:
    """The pull in a thread of its own, handed over page by page (at most a few in flight)."""

    DONE = object()

    def __init__(self, client_factory: ClientFactory, settings: SyncSettings) -> None:
        # Enough pages in flight to cover loading the registry while the first ones arrive.
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=16)
        self._stop = threading.Event()
        self._pull: AgentsPull | None = None
        self._error: BaseException | None = None
        self.received = 0
        self.total = 0
        self._thread = threading.Thread(
            target=self._fetch, args=(client_factory, settings), name="atryum-sync-fetch"
        )
        self._thread.daemon = True

    def __enter__(self) -> _PageStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped()

    def _fetch(self, client_factory: ClientFactory, settings: SyncSettings) -> None:
        def on_page(org_name: str, total: int, records: list[dict[str, Any]]) -> None:
            self._put((org_name, total, records))

        try:
            self._pull = _fetch(client_factory, settings, on_page)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._error = exc
        try:
            self._put(self.DONE)
        except _Stopped:
            return

    def __iter__(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        while True:
            item = self._queue.get()
            if item is self.DONE:
                return
            org_name, self.total, records = item
            self.received += len(records)
            yield org_name, records

    def result(self) -> AgentsPull:
        if self._error is not None:
            raise self._error
        assert self._pull is not None
        self.total = self._pull.total
        return self._pull


class _Stopped(Exception):
    """The consumer of a page stream went away."""


def _still_current(
    conn: sa.Connection, fetched: SyncSettings, defaults: SyncConfig
) -> SyncSettings:
    """The settings, locked for the rest of the apply; the run stops if the pull is stale."""
    current = read_settings_tx(conn, defaults, lock=True)
    if current.source != fetched.source:
        raise SettingsChanged()
    return current


def _fetch(
    client_factory: ClientFactory,
    settings: SyncSettings,
    on_page: PageSink,
) -> AgentsPull:
    try:
        with client_factory() as client:
            pull = client.fetch_agents(
                settings.org_cuid, settings.agent_record_type_slug, on_page=on_page
            )
    except ValidMindError as exc:
        raise RunFailed(f"fetch from ValidMind failed; nothing was changed: {exc}") from exc
    if pull.org_cuid != settings.org_cuid:
        raise RunFailed(
            f"ValidMind answered for organization {pull.org_cuid!r}, not the configured "
            f"{settings.org_cuid!r}; nothing was changed"
        )
    return pull


def _apply(conn: sa.Connection, plan: Plan, settings: SyncSettings, org_name: str) -> None:
    now = utcnow()
    slug = settings.agent_record_type_slug
    stage_store.index(conn)
    writes: list[tuple[str, str, str | None]] = [(r.cuid, "create", None) for r in plan.creates]
    for action, pairs in (("update", plan.updates), ("restore", plan.restores)):
        writes += [(rec.cuid, action, agent.id) for agent, rec in pairs]
    rows = [(seq, *write) for seq, write in enumerate(writes)]
    stage_store.stage_plan(conn, rows)
    written = 0
    if plan.creates:
        written = stage_store.insert_creates(
            conn, org_cuid=settings.org_cuid, org_name=org_name, slug=slug, now=now
        )
    for action, pairs, restore in (
        ("update", plan.updates, False),
        ("restore", plan.restores, True),
    ):
        if pairs:
            n = stage_store.refresh(
                conn, action, org_name=org_name, slug=slug, now=now, restore=restore
            )
            written += n
    if written != len(rows):
        # A record planned for a write was not staged: its agent changed after the load.
        raise RunFailed(REGISTRY_MOVED)
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


CREATED_REASON = "new record in ValidMind"
KEPT_REASON = (
    "missing in ValidMind; kept because a managed-agent binding or the default agent setting "
    "depends on it"
)


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


def _creates(plan: Plan) -> list[dict[str, Any]]:
    """Planned creates (a dry run: no ids yet)."""
    return [_change("created", None, r.cuid, r.name, CREATED_REASON) for r in plan.creates]


def _changes(plan: Plan) -> list[dict[str, Any]]:
    """Every change but the creates, in the order the run lists them."""
    changes: list[dict[str, Any]] = []
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
        changes.append(_change("kept_dependent", agent, agent.vm_cuid, agent.name, KEPT_REASON))
    for agent in plan.held:
        changes.append(
            _change("held", agent, agent.vm_cuid, agent.name, "would be retired; held for review")
        )
    return changes


def _outcome(
    plan: Plan,
    complete: bool,
    problems: list[str],
    warnings: list[str],
    norm: NormalizedPull,
    fetched: int,
) -> dict[str, Any]:
    skipped_invalid = norm.skipped_invalid
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
    counts = {
        "created": len(plan.creates),
        "updated": len(plan.updates),
        "retired": len(plan.retires),
        "restored": len(plan.restores),
        "kept_dependent": len(plan.keeps),
        "held": len(plan.held),
    }
    return {
        "status": status,
        "error": error,
        **counts,
        "unchanged": len(plan.unchanged),
        "skipped_invalid": skipped_invalid,
        "fetched": fetched,
        "warnings": warnings,
        "changes_total": sum(counts.values()),
        "finished_at": utcnow(),
    }

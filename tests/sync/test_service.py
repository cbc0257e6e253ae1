"""A sync run end to end against the real simulator, on SQLite and PostgreSQL.

Covers agent-sync.md §7: 1 (manual untouched), 2 (bound kept), 3 (faults remove nothing),
4 (present records never retired, also when a write fails), 6 (one transaction),
7 (archive → unarchive keeps the agent), 9 (no success when work was skipped).
"""

from __future__ import annotations

import gc
import json
import random
import string
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from atryum.agents import service as agents
from atryum.agents import store as agent_store
from atryum.agents.service import BindingInput
from atryum.app import build_context
from atryum.config import Config
from atryum.db import migrate
from atryum.db.engine import make_engine
from atryum.db.types import utcnow
from atryum.errors import InvalidInput, NotFound
from atryum.sync import service, stage_store
from atryum.sync import settings as sync_settings
from atryum.sync import store as sync_store
from atryum.sync.runs import get_run
from atryum.sync.settings import get_settings, update_settings
from atryum.validmind.client import ValidMindClient
from tests.support import ORG, SLUG, LiveServer, wait_until


class Harness:
    def __init__(self, engine: sa.Engine, config: Config, state: Any) -> None:
        self.engine = engine
        self.config = config
        self.state = state
        self.ctx = build_context(config, engine)
        update_settings(
            engine,
            changes={"org_cuid": ORG, "agent_record_type_slug": SLUG},
            defaults=config.sync,
        )

    def sync(self, **kw: Any) -> dict[str, Any]:
        return self.ctx.coordinator.run_blocking(trigger="manual", **kw)

    def record(self, name: str, charter: Any = "may read; may not write", **fields: Any) -> str:
        rec = self.state.create_record(
            ORG, SLUG, name=name, custom_fields={"charter": charter, **fields}
        )
        cuid: str = rec["cuid"]
        return cuid

    def by_cuid(self, include_removed: bool = True) -> dict[str, Any]:
        items = agents.list_agents(self.engine, include_removed=include_removed)
        return {a.vm_cuid: a for a in items if a.vm_cuid}

    def snapshot(self) -> list[tuple[Any, ...]]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id, vm_cuid, name, charter, removed_at, source_missing_since, enabled "
                    "FROM agents ORDER BY id"
                )
            ).all()
        return [tuple(r) for r in rows]


def _finished(engine: sa.Engine, run_id: str) -> dict[str, Any] | None:
    try:
        run = get_run(engine, run_id=run_id)
    except NotFound:  # not started yet
        return None
    return run if run["finished_at"] else None


@pytest.fixture
def h(engine: sa.Engine, sim: Any, sim_state: Any, sim_config: Callable[..., Config]) -> Harness:
    return Harness(engine, sim_config(sim.url), sim_state)


def test_first_sync_creates_agents_with_charters(h: Harness) -> None:
    a = h.record("Claims bot", charter="may triage claims")
    b = h.record("Model charter", charter=None, model={"charter": "nested charter"})
    run = h.sync()
    assert run["status"] == "succeeded", run["error"]
    assert (run["fetched"], run["created"]) == (2, 2)
    got = h.by_cuid()
    assert got[a].charter == "may triage claims" and got[a].vm_organization_name == "Org One"
    assert got[b].charter == "nested charter"
    assert {c["action"] for c in run["changes"]} == {"created"}
    again = h.sync()
    assert (again["status"], again["unchanged"], again["changes"]) == ("succeeded", 2, [])
    assert gc.get_freeze_count() == 0  # what the runs kept out of collection is back
    with h.engine.connect() as conn:  # the pool's next connection holds no staged pull
        for table in stage_store.TABLES:
            with pytest.raises(sa.exc.DBAPIError):
                conn.exec_driver_sql(f"SELECT 1 FROM {table.name}")
            conn.rollback()


def test_update_archive_delete_and_restore_keep_identity(h: Harness) -> None:
    keep, arch, gone = h.record("Keep"), h.record("Archived"), h.record("Deleted")
    h.sync()
    before = h.by_cuid()[arch]
    agents.update_agent(
        h.engine,
        agent_id=before.id,
        changes={"agent_ids": ["jwt-arch"], "tags": ["prod"], "enabled": False, "bindings": []},
    )
    h.state.update_record(keep, name="Keep v2")
    h.state.archive_record(arch)
    h.state.delete_record(gone)
    run = h.sync()
    assert run["status"] == "succeeded"
    assert (run["updated"], run["retired"]) == (1, 2)
    active = h.by_cuid(include_removed=False)
    assert set(active) == {keep} and active[keep].name == "Keep v2"
    retired = h.by_cuid()[arch]
    assert retired.removal_reason == "archived_in_source" and retired.removed_at is not None
    # §7.7: unarchive brings back the same agent with everything Atryum owns
    h.state.unarchive_record(arch)
    run = h.sync()
    assert run["restored"] == 1
    back = h.by_cuid(include_removed=False)[arch]
    assert back.id == before.id and back.agent_ids == ["jwt-arch"]
    assert back.tags == ["prod"] and back.enabled is False and back.removed_at is None


def test_manual_agents_are_never_touched(h: Harness) -> None:
    """§7.1 — syncs (complete, empty, allowed removals) and settings changes."""
    manual = agents.create_manual_agent(h.engine, name="Mine", charter="c", agent_ids=["m"])
    h.record("Synced")
    h.sync()
    h.state.set_faults(empty_answer=True)
    h.sync(allow_removals=True)
    update_settings(h.engine, changes={"org_cuid": "org-2"}, defaults=h.config.sync)
    assert agents.get_agent(h.engine, agent_id=manual.id) == manual


def test_bound_agent_is_kept_and_flagged(h: Harness) -> None:
    """§7.2 — by a sync and by a settings change."""
    bound, plain = h.record("Bound"), h.record("Plain")
    h.sync()
    agent = h.by_cuid()[bound]
    agents.update_agent(
        h.engine, agent_id=agent.id, changes={"bindings": [BindingInput("default", "cma", "CMA")]}
    )
    h.state.archive_record(bound)
    h.state.archive_record(plain)
    run = h.sync(allow_removals=True)
    assert (run["retired"], run["kept_dependent"]) == (1, 1)
    kept = h.by_cuid(include_removed=False)[bound]
    assert kept.source_missing_since is not None and kept.removed_at is None
    _, scope, _ = update_settings(
        h.engine, changes={"agent_record_type_slug": "model"}, defaults=h.config.sync
    )
    assert [a.vm_cuid for a in scope.keep] == [bound]
    assert h.by_cuid(include_removed=False)[bound].removed_at is None
    h.state.unarchive_record(bound)
    update_settings(h.engine, changes={"agent_record_type_slug": SLUG}, defaults=h.config.sync)
    h.sync()
    assert h.by_cuid()[bound].source_missing_since is None


FAULTS: list[tuple[str, dict[str, Any], str]] = [
    ("http 500", {"status": 500}, "failed"),
    ("http 401", {"status": 401}, "failed"),
    ("malformed json", {"malformed_json": True}, "failed"),
    ("wrong org", {"wrong_org": True}, "failed"),
    ("truncated pages", {"truncate_after_page": 1}, "partial"),
    ("ignored paging", {"ignore_paging": True}, "partial"),
    ("record without cuid", {"drop_cuid": True}, "partial"),
]


@pytest.mark.parametrize(("label", "fault", "status"), FAULTS, ids=[f[0] for f in FAULTS])
def test_faults_remove_nothing_and_never_report_success(
    h: Harness, label: str, fault: dict[str, Any], status: str
) -> None:
    """§7.3 and §7.9 through the simulator's fault injection."""
    for i in range(7):
        h.record(f"Agent {i}")
    h.sync()
    before = h.snapshot()
    h.state.archive_record(next(iter(h.by_cuid())))  # a real change is pending too
    h.state.set_faults(**fault)
    run = h.sync()
    assert run["status"] == status, (label, run)
    assert run["retired"] == 0 and run["error"], run
    after = {row[1]: row for row in h.snapshot()}
    assert all(after[row[1]][4] is None for row in before), "something was retired"
    if status == "failed":
        assert h.snapshot() == before


def test_empty_answer_is_held_not_applied(h: Harness) -> None:
    for i in range(3):
        h.record(f"Agent {i}")
    h.sync()
    h.state.set_faults(empty_answer=True)
    run = h.sync()
    assert run["status"] == "held" and run["retired"] == 0
    assert sorted(c["action"] for c in run["changes"]) == ["held"] * 3
    assert len(h.by_cuid(include_removed=False)) == 3


def test_empty_answer_is_held_even_when_one_agent_is_bound(h: Harness) -> None:
    bound = h.record("Bound")
    for i in range(3):
        h.record(f"Agent {i}")
    h.sync()
    agents.update_agent(
        h.engine,
        agent_id=h.by_cuid()[bound].id,
        changes={"bindings": [BindingInput("default", "cma", "CMA")]},
    )
    h.state.set_faults(empty_answer=True)
    run = h.sync()
    assert (run["status"], run["retired"], run["kept_dependent"]) == ("held", 0, 1), run
    assert sorted(c["action"] for c in run["changes"]) == ["held"] * 3 + ["kept_dependent"]
    assert "every one of the 3" in run["error"]
    assert len(h.by_cuid(include_removed=False)) == 4


def test_deletion_threshold_holds_then_allow_releases(h: Harness) -> None:
    cuids = [h.record(f"Agent {i:02}") for i in range(40)]
    h.sync()
    for c in cuids[:15]:
        h.state.archive_record(c)
    run = h.sync()
    assert run["status"] == "held" and "allow_removals" in run["error"]
    assert {c["vm_cuid"] for c in run["changes"] if c["action"] == "held"} == set(cuids[:15])
    assert len(h.by_cuid(include_removed=False)) == 40
    released = h.sync(allow_removals=True)
    assert released["status"] == "succeeded" and released["retired"] == 15


def test_dry_run_writes_only_the_run(h: Harness) -> None:
    a = h.record("A")
    h.record("Stays")
    h.sync()
    h.state.archive_record(a)
    h.record("B")
    before = h.snapshot()
    run = h.sync(dry_run=True)
    assert run["dry_run"] and (run["created"], run["retired"]) == (1, 1)
    assert h.snapshot() == before


def test_write_failure_changes_nothing_and_retires_nothing(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§7.4 (a write fails) and §7.6 (the apply is one transaction)."""
    a, b = h.record("A"), h.record("B")
    h.sync()
    h.state.update_record(a, name="A2")
    h.state.archive_record(b)
    h.record("C")
    before = h.snapshot()
    real = stage_store.refresh

    def failing(conn: sa.Connection, *args: Any, **kw: Any) -> None:
        real(conn, *args, **kw)
        raise sa.exc.OperationalError("UPDATE agents", {}, Exception("disk I/O error"))

    monkeypatch.setattr(stage_store, "refresh", failing)
    run = h.sync()
    assert run["status"] == "failed" and "nothing was changed" in run["error"]
    assert h.snapshot() == before
    assert gc.get_freeze_count() == 0  # what the run kept out of collection is back


def test_settings_read_error_fails_the_run(h: Harness) -> None:
    """§3.1: a settings read error fails the run with that error; it is not "not configured"."""
    h.record("A")
    with h.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE agent_sync_settings"))
    run = h.sync()
    assert run["status"] == "failed"
    assert run["error"].startswith("could not read the sync settings: "), run["error"]
    assert "agent_sync_settings" in run["error"] and "not configured" not in run["error"]
    assert h.snapshot() == []


def test_wrong_charter_type_keeps_previous_charter(h: Harness) -> None:
    a = h.record("A", charter="good charter")
    h.sync()
    h.state.update_record(a, custom_fields={"charter": {"html": 1}})
    run = h.sync()
    assert run["status"] == "succeeded" and any("charter" in w for w in run["warnings"])
    assert h.by_cuid()[a].charter == "good charter"


def test_scope_change_retires_out_of_scope_and_records_it(h: Harness) -> None:
    h.record("A")
    h.sync()
    new, scope, _ = update_settings(
        h.engine,
        changes={"agent_record_type_slug": "model"},
        defaults=h.config.sync,
        allow_removals=True,  # it retires every agent: a scope change is held like a sync
    )
    assert new.agent_record_type_slug == "model" and len(scope.retire) == 1
    assert h.by_cuid()[scope.retire[0].vm_cuid].removal_reason == "out_of_scope"
    runs = h.ctx.coordinator  # the scope change has its own entry in the history
    from atryum.sync.runs import get_run, list_runs

    latest = get_run(runs.engine, run_id=list_runs(runs.engine)[0]["id"])
    assert latest["changes"][0]["action"] == "retired"
    assert get_settings(h.engine, defaults=h.config.sync).org_cuid == ORG


def test_synced_at_advances_without_rewriting_unchanged_rows(h: Harness) -> None:
    a, b = h.record("A"), h.record("B")
    for name in "CDEF":
        h.record(name)
    h.sync()
    first = h.by_cuid()[a].synced_at
    with h.engine.begin() as conn:
        updated_before = conn.execute(sa.text("SELECT max(updated_at) FROM agents")).scalar_one()
    h.sync()
    assert h.by_cuid()[a].synced_at > first
    with h.engine.begin() as conn:
        assert conn.execute(sa.text("SELECT max(updated_at) FROM agents")).scalar_one() == (
            updated_before
        )
    confirmed = h.by_cuid()[a].synced_at
    h.state.archive_record(b)
    h.sync()
    retired = h.by_cuid()[b]
    assert retired.removed_at is not None and retired.synced_at == confirmed
    h.state.set_faults(truncate_after_page=1)  # partial: only present rows are confirmed
    run = h.sync()
    assert run["status"] == "partial"
    assert h.by_cuid()[a].synced_at > confirmed


def test_scope_change_while_fetching_is_not_undone(
    h: Harness, monkeypatch: pytest.MonkeyPatch, live_atryum: Callable[..., LiveServer]
) -> None:
    """A run that fetched the old scope applies nothing once the scope changed (the settings
    change retired the old org's agents); the sync the settings change queued then runs."""
    a, b = h.record("A"), h.record("B")
    h.sync()
    h.record("C")  # new in the old org: the stale pull would create it
    h.state.add_record_type("org-2", SLUG, "AI Agent")
    h.state.add_custom_field("org-2", SLUG, "charter", "Charter", "long-text")  # scope checked
    other = h.state.create_record("org-2", SLUG, name="Other", custom_fields={})["cuid"]
    real_fetch = service._fetch
    change: dict[str, Any] = {}

    with live_atryum(h.config, h.engine) as server:

        def fetch_then_change_scope(*args: Any) -> Any:
            pull = real_fetch(*args)
            if not change:  # between this run's fetch and its apply
                scope = {"org_cuid": "org-2", "allow_removals": True}  # it retires everyone
                r = httpx2.put(f"{server.url}/api/v1/settings", json=scope)
                assert r.status_code == 200, r.text
                change.update(r.json())
            return pull

        monkeypatch.setattr(service, "_fetch", fetch_then_change_scope)
        ticket = server.ctx.coordinator.submit(trigger="manual")
        wait_until(ticket.done.is_set)
        follow_id = change["sync_run_id"]
        follow = wait_until(lambda: _finished(h.engine, follow_id))
    stale = get_run(h.engine, run_id=ticket.run_id)
    assert (stale["status"], stale["error"]) == ("skipped", service.SETTINGS_CHANGED)
    assert (stale["created"], stale["restored"], stale["changes"]) == (0, 0, [])
    assert sorted(x["vm_cuid"] for x in change["retired"]) == sorted([a, b])
    got = h.by_cuid()
    assert {got[c].removal_reason for c in (a, b)} == {"out_of_scope"}
    assert set(got) == {a, b, other}, "the stale pull created an agent of the old org"
    assert (follow["trigger"], follow["status"], follow["created"]) == ("settings", "succeeded", 1)
    with h.engine.begin() as conn:
        confirmed = sync_store.read_settings(conn) or {}
    assert confirmed["confirmed_org_cuid"] == "org-2"


def _bind_meanwhile(h: Harness, conn: sa.Connection, agent_id: str) -> None:
    """A binding that appears after the plan was made, before the apply writes.

    On PostgreSQL another transaction commits it (the real race). SQLite serialises writers, so
    there it is written inside the apply's own transaction: the guard in the SQL must catch it.
    """
    binding = BindingInput("default", f"cma-{agent_id}", "CMA")
    if h.engine.dialect.name == "postgresql":
        agents.update_agent(h.engine, agent_id=agent_id, changes={"bindings": [binding]})
    else:
        agent_store.replace_bindings(
            conn,
            agent_id,
            [
                {
                    "id": "",
                    "account": "default",
                    "external_agent_id": binding.external_agent_id,
                    "external_agent_name": "CMA",
                }
            ],
            utcnow(),
        )


def test_agent_bound_after_planning_is_kept_not_retired(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§7.2 in a race: the retirement itself re-checks for dependents."""
    a, b = h.record("A"), h.record("B")
    for name in "CDE":
        h.record(name)
    h.sync()
    target = h.by_cuid()[a].id
    h.state.archive_record(a)
    h.state.archive_record(b)
    real_load = sync_store.load_org_agents

    def load_then_bind(conn: sa.Connection, *args: Any) -> Any:
        local = real_load(conn, *args)  # what the plan sees: A unbound
        _bind_meanwhile(h, conn, target)
        return local

    monkeypatch.setattr(sync_store, "load_org_agents", load_then_bind)
    run = h.sync()
    assert (run["status"], run["retired"], run["kept_dependent"]) == ("succeeded", 1, 1), run
    assert {(c["action"], c["vm_cuid"]) for c in run["changes"]} == {
        ("retired", b),
        ("kept_dependent", a),
    }
    kept = h.by_cuid()[a]
    assert kept.removed_at is None and kept.source_missing_since is not None
    assert [x.external_agent_id for x in kept.bindings] == [f"cma-{target}"]
    assert h.by_cuid()[b].removal_reason == "archived_in_source"


def test_agent_bound_after_scope_preview_is_kept_on_scope_change(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = h.record("A"), h.record("B")
    h.sync()
    target = h.by_cuid()[a].id
    real_scope = sync_settings._scope_change

    def scope_then_bind(conn: sa.Connection, *args: Any) -> Any:
        scope = real_scope(conn, *args)
        _bind_meanwhile(h, conn, target)
        return scope

    monkeypatch.setattr(sync_settings, "_scope_change", scope_then_bind)
    _, scope, _ = update_settings(h.engine, changes={"org_cuid": "org-2"}, defaults=h.config.sync)
    assert [x.vm_cuid for x in scope.retire] == [b] and [x.vm_cuid for x in scope.keep] == [a]
    kept = h.by_cuid()[a]
    assert kept.removed_at is None and kept.source_missing_since is not None
    assert h.by_cuid()[b].removal_reason == "out_of_scope"


class _DuplicateFirstRecord(httpx2.HTTPTransport):
    """The simulator's answer with its first agent record sent twice (same page, same total)."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        if not request.url.path.endswith("/agents"):
            return response
        body = json.loads(response.read())
        body["results"] = body["results"] + body["results"][:1]
        return httpx2.Response(response.status_code, json=body)


def test_duplicate_cuid_in_a_complete_pull_is_a_warning_on_the_run(h: Harness) -> None:
    """§3.1: a duplicate cuid is a record-level problem: a warning, the pull stays complete."""
    a, b = h.record("A"), h.record("B")
    h.ctx.coordinator.client_factory = lambda: ValidMindClient(
        h.config.backend, transport=_DuplicateFirstRecord()
    )
    run = h.sync()
    assert (run["status"], run["fetched"], run["created"]) == ("succeeded", 2, 2), run
    assert any("repeated 1 record" in w and a in w for w in run["warnings"]), run["warnings"]
    h.state.archive_record(b)
    run = h.sync()
    assert (run["status"], run["retired"]) == ("succeeded", 1)  # still complete: it retires
    assert any("repeated" in w for w in run["warnings"])


def test_unstorable_cuid_is_skipped_and_retires_nothing(h: Harness) -> None:
    """§3.1: one record whose cuid cannot be stored (longer than the column) is a record-level
    problem: the others apply, the run is partial, and nothing is retired."""
    a, gone = h.record("A"), h.record("Gone")
    h.sync()
    h.state.archive_record(gone)
    h.state.update_record(a, name="A2")
    h.state.create_record(ORG, SLUG, name="Long", custom_fields={}, cuid="x" * 200)
    new = h.record("New")
    run = h.sync()
    assert (run["status"], run["skipped_invalid"]) == ("partial", 1), run
    assert (run["created"], run["updated"], run["retired"]) == (1, 1, 0)
    assert "cuid Atryum cannot store" in run["error"] and "'Long'" in run["error"]
    got = h.by_cuid(include_removed=False)
    assert set(got) == {a, gone, new} and got[a].name == "A2"


def test_text_the_database_refuses_is_cleaned_with_warnings(h: Harness) -> None:
    """NUL characters (refused by PostgreSQL) and an organization name longer than its column
    are record-level problems: warnings, never a failed run."""
    h.state.add_org(ORG, "O" * 600)
    bad = h.record("Bad\x00name", charter="may\x00read", description="d\x00")
    h.record("Fine")
    run = h.sync()
    assert (run["status"], run["created"]) == ("succeeded", 2), run
    assert sum("NUL" in w for w in run["warnings"]) == 3
    assert any("organization name is longer than 512" in w for w in run["warnings"])
    agent = h.by_cuid()[bad]
    assert (agent.name, agent.charter, agent.description) == ("Badname", "mayread", "d")
    assert agent.vm_organization_name == "O" * 512
    again = h.sync()
    assert (again["status"], again["unchanged"]) == ("succeeded", 2)


def test_a_name_too_long_to_index_is_stored_shortened_and_the_sync_succeeds(h: Harness) -> None:
    """PostgreSQL cannot index a name of several kB (the list's order): one such record failed
    every sync. It is stored at its first 512 characters, with a warning, and re-syncs are
    unchanged. The name is random, so PostgreSQL cannot compress it under its limit."""
    long_name = "".join(random.choices(string.ascii_letters, k=5000))
    cuid = h.record(long_name)
    h.record("Fine")
    run = h.sync()
    assert (run["status"], run["created"]) == ("succeeded", 2), run
    assert [w for w in run["warnings"] if "name is longer" in w] == [
        f"record {cuid}: the name is longer than 512 characters; stored shortened"
    ]
    assert h.by_cuid()[cuid].name == long_name[:512]
    again = h.sync()
    assert (again["status"], again["unchanged"]) == ("succeeded", 2)


def test_settings_longer_than_their_columns_are_refused(h: Harness) -> None:
    with pytest.raises(InvalidInput, match="org_cuid must be at most 128 characters"):
        update_settings(h.engine, changes={"org_cuid": "o" * 129}, defaults=h.config.sync)
    assert get_settings(h.engine, defaults=h.config.sync).org_cuid == ORG


def test_archive_then_unarchive_keeps_identity_and_everything_atryum_owns(h: Harness) -> None:
    """§7.7: a retired agent comes back with its id, runtime ids, tags and enabled flag; a bound
    agent is kept (never retired) and comes back unflagged with its bindings intact."""
    bound, plain = h.record("Bound"), h.record("Plain")
    h.record("Other 1")
    h.record("Other 2")
    h.sync()
    ids = {c: a.id for c, a in h.by_cuid().items()}
    agents.update_agent(
        h.engine,
        agent_id=ids[plain],
        changes={"agent_ids": ["jwt-plain"], "tags": ["prod"], "enabled": False},
    )
    agents.update_agent(
        h.engine,
        agent_id=ids[bound],
        changes={
            "agent_ids": ["jwt-bound"],
            "tags": ["pci"],
            "bindings": [BindingInput("acct", "cma-1", "Claude One")],
        },
    )
    bindings_before = h.by_cuid()[bound].bindings
    for cuid in (bound, plain):
        h.state.archive_record(cuid)
    run = h.sync()
    assert (run["status"], run["retired"], run["kept_dependent"]) == ("succeeded", 1, 1), run
    kept, retired = h.by_cuid()[bound], h.by_cuid()[plain]
    assert kept.removed_at is None and kept.source_missing_since is not None
    assert kept.bindings == bindings_before
    assert retired.removed_at is not None
    for cuid in (bound, plain):
        h.state.unarchive_record(cuid)
    run = h.sync()
    assert (run["status"], run["restored"], run["updated"]) == ("succeeded", 1, 1), run
    back = h.by_cuid(include_removed=False)
    assert {c: a.id for c, a in back.items()} == ids
    assert back[bound].source_missing_since is None and back[bound].bindings == bindings_before
    assert (back[bound].agent_ids, back[bound].tags) == (["jwt-bound"], ["pci"])
    assert back[plain].removed_at is None and back[plain].removal_reason is None
    assert (back[plain].agent_ids, back[plain].tags, back[plain].enabled) == (
        ["jwt-plain"],
        ["prod"],
        False,
    )


def test_partial_pull_still_creates_updates_and_restores(h: Harness) -> None:
    """§3.4: an incomplete pull applies creates, updates and restores and retires nothing."""
    first = h.record("First")  # the simulator's drop_cuid fault blanks the first record's cuid
    edited, back, gone = h.record("Edited"), h.record("Back"), h.record("Gone")
    h.sync()
    h.state.archive_record(back)
    assert h.sync()["retired"] == 1
    h.state.unarchive_record(back)
    h.state.update_record(edited, name="Edited v2")
    h.state.archive_record(gone)
    new = h.record("New")
    h.state.set_faults(drop_cuid=True)
    run = h.sync()
    assert run["status"] == "partial" and "has no cuid" in run["error"], run
    assert (run["created"], run["updated"], run["restored"], run["retired"]) == (1, 1, 1, 0)
    got = h.by_cuid(include_removed=False)
    assert set(got) == {first, edited, back, gone, new}
    assert got[edited].name == "Edited v2" and got[new].name == "New"


@pytest.mark.parametrize(
    ("run", "stale"),
    [
        ({"created": 1000, "fetched": 1000}, True),  # a big first sync
        ({"created": 999, "fetched": 999}, False),  # too few to matter
        ({"updated": 1000, "fetched": 100_000}, False),  # 1 % of a big registry
        ({"updated": 5000, "created": 5000, "fetched": 100_000}, True),  # a tenth
        ({"retired": 2000, "fetched": 1000}, True),  # most of the registry went
        ({"created": 5000, "fetched": 5000, "dry_run": True}, False),  # nothing was written
    ],
)
def test_statistics_are_refreshed_after_a_run_that_moved_them(
    run: dict[str, Any], stale: bool
) -> None:
    assert service.statistics_stale(run) is stale


def test_a_big_first_sync_analyzes_and_a_small_change_does_not(h: Harness) -> None:
    """PostgreSQL: ANALYZE after the first sync of 1 050 agents, none after a 1-agent change.
    SQLite: never (its planner needs no statistics)."""
    analyzed: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("ANALYZE"):
            analyzed.append(statement)

    sa.event.listen(h.engine, "before_cursor_execute", seen)
    cuids = h.state.bulk_create(ORG, SLUG, count=service.ANALYZE_AFTER + 50)
    assert h.sync()["created"] == len(cuids)
    postgres = h.engine.dialect.name == "postgresql"
    assert analyzed == (["ANALYZE agents"] if postgres else [])
    h.state.update_record(cuids[0], name="Renamed")
    assert h.sync()["updated"] == 1
    assert len(analyzed) == (1 if postgres else 0)


def test_a_registry_in_memory_outlives_its_runs(
    sim: Any, sim_state: Any, sim_config: Callable[..., Config]
) -> None:
    """An in-memory SQLite database lives in its one connection: a run's clean-up must not
    close it (the file case closes the run's connection to discard its staging tables)."""
    engine = make_engine("sqlite://")
    migrate.upgrade(engine)
    h = Harness(engine, sim_config(sim.url), sim_state)
    a = h.record("Kept in memory")
    assert h.sync()["created"] == 1
    assert h.sync()["unchanged"] == 1
    assert list(h.by_cuid()) == [a]
    engine.dispose()

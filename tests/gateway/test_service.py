"""The hook path's rules of the domain, on SQLite and PostgreSQL: decisions, idempotency, agent
resolution (fail closed), outcome guards, compare-and-set, expiry, and the spec §7 list."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from atryum.agents import store as agent_store
from atryum.agents.service import BindingInput, update_agent
from atryum.db.engine import make_engine
from atryum.db.tables import approvals as approvals_table
from atryum.db.tables import invocations as invocations_table
from atryum.db.types import utcnow
from atryum.errors import Conflict, InvalidInput, NotFound
from atryum.gateway import approvals, audit, rules, service, store
from atryum.gateway.models import Event
from atryum.gateway.settings import GatewayDefaults
from atryum.identity import AgentIdentity
from tests.gateway.helpers import DEFAULTS, agent, call, retire, rule, set_default_agent

RETIRED = "was retired: its ValidMind record is archived"
IDP = "https://idp.example"
OTHER_IDP = "https://other-idp.example"
ALICE = AgentIdentity(IDP, "alice")


def submit(engine: sa.Engine, req: Any = None, *, caller: AgentIdentity | None = None, **kw: Any):
    inv, _ = service.submit(engine, request=req or call(), caller=caller, defaults=DEFAULTS, **kw)
    return inv


def set_policy(engine: sa.Engine, provider: str) -> None:
    rules.update_policy(engine, provider=provider, defaults=DEFAULTS)


def overdue(engine: sa.Engine, inv_id: str) -> None:
    """Move a pending call's deadline into the past (instead of waiting for it)."""
    with engine.begin() as conn:
        conn.execute(
            approvals_table.update()
            .where(approvals_table.c.invocation_id == inv_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def count_invocations(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        q = sa.select(sa.func.count()).select_from(invocations_table)
        return int(conn.execute(q).scalar_one())


# -- decisions --------------------------------------------------------------------------------


def test_rules_decide_and_the_default_policy_asks_a_human(engine: sa.Engine) -> None:
    ok = rule(engine, "auto_approve", tools=["Read"], description="reads are fine")
    no = rule(engine, "auto_deny", tools=["mcp__github__*"])
    approved = submit(engine, call("Read"))
    assert approved.status == "approved" and approved.matched_rule_id == ok.id
    assert approved.approval is not None and approved.approval.status == "auto_approved"
    assert "reads are fine" in approved.approval.reason
    denied = submit(engine, call("mcp__github__merge"))
    assert (denied.status, denied.matched_rule_id) == ("denied", no.id)
    assert denied.approval is not None and denied.approval.status == "auto_denied"
    pending = submit(engine, call("Bash"))
    assert pending.status == "pending_approval" and pending.matched_rule_id is None
    assert pending.approval is not None and pending.approval.status == "pending"
    assert pending.approval.expires_at == pending.submitted_at + timedelta(seconds=3600)


def test_default_policy_providers(engine: sa.Engine) -> None:
    set_policy(engine, "always_approve")
    assert submit(engine).status == "approved"
    set_policy(engine, "always_deny")
    assert submit(engine).status == "denied"
    set_policy(engine, "manual_approval")
    assert submit(engine).status == "pending_approval"


def test_approval_timeout_comes_from_the_policy(engine: sa.Engine) -> None:
    rules.update_policy(engine, approval_timeout_seconds=90, defaults=DEFAULTS)
    inv = submit(engine)
    assert inv.approval is not None and inv.approval.expires_at is not None
    assert inv.approval.expires_at - inv.submitted_at == timedelta(seconds=90)
    short = GatewayDefaults(approval_timeout_seconds=7)
    assert rules.get_policy(engine, defaults=short).approval_timeout_seconds == 90


def test_empty_source_or_tool_is_refused(engine: sa.Engine) -> None:
    with pytest.raises(InvalidInput):
        submit(engine, call(" "))
    assert count_invocations(engine) == 0


# -- idempotency ------------------------------------------------------------------------------


def test_a_repeated_idempotency_key_returns_the_first_invocation(engine: sa.Engine) -> None:
    first, created = service.submit(
        engine, request=call(idempotency_key="k1"), caller=None, defaults=DEFAULTS
    )
    again, created_again = service.submit(
        engine, request=call(idempotency_key="k1"), caller=None, defaults=DEFAULTS
    )
    assert (created, created_again) == (True, False)
    assert again.id == first.id and count_invocations(engine) == 1
    with pytest.raises(Conflict, match="already used"):
        submit(engine, call("Write", idempotency_key="k1"))


def test_an_idempotency_key_binds_the_input(engine: sa.Engine) -> None:
    """The same key with a different input is another call, not a repeat of the first (it
    would otherwise answer with the first call's decision)."""
    first = submit(engine, call(idempotency_key="k1", input={"command": "ls", "n": [1, 2]}))
    assert submit(engine, call(idempotency_key="k1", input={"n": [1, 2], "command": "ls"})).id == (
        first.id
    )
    for other in ({"command": "rm -rf /", "n": [1, 2]}, {"command": "ls"}, {}):
        with pytest.raises(Conflict, match="with its own input"):
            submit(engine, call(idempotency_key="k1", input=other))
    submit(engine, call(request_id="tu-9", input={"a": 1}))
    with pytest.raises(Conflict):
        submit(engine, call(request_id="tu-9", input={"a": 2}))
    assert count_invocations(engine) == 2


def test_request_id_deduplicates_per_source_and_agent(engine: sa.Engine) -> None:
    a = submit(engine, call(request_id="tu-1", agent_id="rt-a"))
    assert submit(engine, call(request_id="tu-1", agent_id="rt-a")).id == a.id
    assert submit(engine, call(request_id="tu-1", agent_id="rt-b")).id != a.id
    assert submit(engine, call(request_id="tu-1", source="cursor", agent_id="rt-a")).id != a.id
    assert count_invocations(engine) == 3


def test_concurrent_repeats_create_one_invocation(engine: sa.Engine) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            ids.append(submit(engine, call(idempotency_key="same")).id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(ids)) == 1 and count_invocations(engine) == 1


# -- agent resolution (spec §3) ---------------------------------------------------------------


def test_runtime_id_resolves_and_agent_scoped_rules_apply(engine: sa.Engine) -> None:
    bot = agent(engine, "Ops bot", "rt-ops")
    other = agent(engine, "Helper", "rt-help")
    rule(engine, "auto_deny", tools=["Bash"], agents_=[bot.id])
    rule(engine, "auto_approve", tools=["Bash"])
    mine = submit(engine, call(agent_id="rt-ops"))
    assert (mine.status, mine.agent_record_id, mine.agent_name) == ("denied", bot.id, "Ops bot")
    assert submit(engine, call(agent_id="rt-help")).status == "approved"
    assert submit(engine, call(agent_id="rt-help")).agent_record_id == other.id


def test_managed_agent_binding_resolves(engine: sa.Engine) -> None:
    bot = agent(engine, "Managed")
    update_agent(
        engine,
        agent_id=bot.id,
        changes={"bindings": [BindingInput("acme", "agent_01", "Managed one")]},
    )
    rule(engine, "auto_approve", agents_=[bot.id])
    inv = submit(engine, call(agent_id="agent_01"))
    assert (inv.status, inv.agent_record_id) == ("approved", bot.id)


def test_unknown_identity_uses_the_default_agent_or_the_global_rules(engine: sa.Engine) -> None:
    everyone = rule(engine, "auto_approve")
    unregistered = submit(engine, call(agent_id="who-knows"))
    assert (unregistered.status, unregistered.matched_rule_id) == ("approved", everyone.id)
    assert unregistered.agent_record_id is None
    anonymous = submit(engine, call())
    assert (anonymous.status, anonymous.agent_record_id) == ("approved", None)
    fallback = agent(engine, "Default")
    set_default_agent(engine, fallback.id)
    for req in (call(agent_id="who-knows"), call()):
        inv = submit(engine, req)
        assert (inv.status, inv.agent_record_id) == ("approved", fallback.id)


def test_retired_agent_is_denied_never_retargeted(engine: sa.Engine) -> None:
    """§7.3 / agent-sync §7.8: not the default agent, not all-agents rules, not the policy."""
    gone = agent(engine, "Code Review", "rt-review")
    fallback = agent(engine, "Default")
    set_default_agent(engine, fallback.id)
    rule(engine, "auto_approve", agents_=[gone.id])
    rule(engine, "auto_approve", agents_=[fallback.id])
    rule(engine, "auto_approve")
    set_policy(engine, "always_approve")
    assert submit(engine, call(agent_id="rt-review")).status == "approved"
    retire(engine, gone.id)
    inv = submit(engine, call(agent_id="rt-review"))
    assert inv.status == "denied" and inv.matched_rule_id is None
    assert inv.agent_record_id == gone.id
    assert inv.approval is not None
    assert inv.approval.reason == f"agent Code Review {RETIRED}"
    # restored (same id, as a ValidMind unarchive does): its rules apply again
    with engine.begin() as conn:
        agent_store.update_agent(conn, gone.id, {"removed_at": None, "removal_reason": None})
    assert submit(engine, call(agent_id="rt-review")).status == "approved"


def test_disabled_agents_are_denied_including_the_default(engine: sa.Engine) -> None:
    rule(engine, "auto_approve")
    agent(engine, "Paused", "rt-paused", enabled=False)
    inv = submit(engine, call(agent_id="rt-paused"))
    assert inv.status == "denied"
    assert inv.approval is not None and inv.approval.reason == "agent Paused is disabled"
    fallback = agent(engine, "Default", enabled=False)
    set_default_agent(engine, fallback.id)
    inv = submit(engine, call(agent_id="unknown"))
    assert inv.status == "denied" and inv.approval is not None
    assert inv.approval.reason == "agent Default is disabled"


def test_retired_default_agent_denies_unknown_callers(engine: sa.Engine) -> None:
    rule(engine, "auto_approve")
    fallback = agent(engine, "Default")
    set_default_agent(engine, fallback.id)
    retire(engine, fallback.id)
    inv = submit(engine, call())
    assert inv.status == "denied" and inv.approval is not None
    assert RETIRED in inv.approval.reason


# -- outcomes (spec §2, §7.2) -----------------------------------------------------------------


def report(engine: sa.Engine, inv_id: str, status: str, **kw: Any):
    return service.report_outcome(engine, invocation_id=inv_id, execution_status=status, **kw)


def test_outcome_lifecycle_of_an_approved_call(engine: sa.Engine) -> None:
    rule(engine, "auto_approve")
    inv = submit(engine)
    assert report(engine, inv.id, "running").status == "executing"
    assert report(engine, inv.id, "running").status == "executing"  # retry: no-op
    done = report(engine, inv.id, "completed", result={"stdout": "ok"})
    assert done.status == "succeeded" and done.result == {"stdout": "ok"}
    assert done.completed_at is not None
    again = report(engine, inv.id, "completed", result={"stdout": "other"})
    assert again.result == {"stdout": "ok"}  # a retry never overwrites
    for other in ("failed", "cancelled", "running"):
        with pytest.raises(Conflict, match="already has its outcome"):
            report(engine, inv.id, other, error="boom")
    final = service.get_invocation(engine, invocation_id=inv.id)
    assert (final.status, final.result, final.error) == ("succeeded", {"stdout": "ok"}, None)


@pytest.mark.parametrize(
    ("steps", "kw"),
    [
        (["running"], {}),
        (["completed"], {"result": {"rows": [1, 2.5, "x", None, True]}}),
        (["running", "failed"], {"error": {"is_error": True, "text": "boom"}, "message": "m"}),
        (["cancelled"], {"message": "user interrupted"}),
    ],
)
def test_a_reported_outcome_is_answered_as_stored(
    engine: sa.Engine, steps: list[str], kw: dict[str, Any]
) -> None:
    """The report answers with the invocation as written (not re-read): the same as a read."""
    rule(engine, "auto_approve", tools=["Bash"])
    inv = submit(engine)
    for step in steps:
        answered = report(engine, inv.id, step, **kw)
        assert answered == service.get_invocation(engine, invocation_id=inv.id)
    pending = submit(engine, call(tool="Write"))  # no rule: waits for a human
    withdrawn = report(engine, pending.id, "cancelled", message="gone")
    assert withdrawn == service.get_invocation(engine, invocation_id=pending.id)
    assert withdrawn.approval is not None and withdrawn.approval.status == "cancelled"


@pytest.mark.parametrize("provider", ["manual_approval", "always_deny"])
@pytest.mark.parametrize("outcome", ["running", "completed", "failed"])
def test_no_outcome_for_an_unapproved_call(engine: sa.Engine, provider: str, outcome: str) -> None:
    set_policy(engine, provider)
    inv = submit(engine)
    with pytest.raises(Conflict, match="not approved"):
        report(engine, inv.id, outcome, result={"forged": True})
    after = service.get_invocation(engine, invocation_id=inv.id)
    assert after.status == inv.status and after.result is None


def test_no_outcome_for_an_expired_call(engine: sa.Engine) -> None:
    inv = submit(engine)
    overdue(engine, inv.id)
    with pytest.raises(Conflict):
        report(engine, inv.id, "completed")
    assert service.get_invocation(engine, invocation_id=inv.id).status == "expired"


def test_cancel_while_pending_then_no_approval(engine: sa.Engine) -> None:
    inv = submit(engine)
    cancelled = report(engine, inv.id, "cancelled", message="user interrupted")
    assert cancelled.status == "cancelled" and cancelled.approval is not None
    assert (cancelled.approval.status, cancelled.approval.reason) == (
        "cancelled",
        "user interrupted",
    )
    with pytest.raises(Conflict, match="not pending"):
        approvals.decide(engine, invocation_id=inv.id, approve=True, actor="op")
    assert report(engine, inv.id, "cancelled").status == "cancelled"  # retry: no-op


def test_cancel_of_a_denied_call_is_refused(engine: sa.Engine) -> None:
    set_policy(engine, "always_deny")
    inv = submit(engine)
    with pytest.raises(Conflict):
        report(engine, inv.id, "cancelled")


def test_unknown_execution_status_is_invalid(engine: sa.Engine) -> None:
    inv = submit(engine)
    with pytest.raises(InvalidInput):
        report(engine, inv.id, "done")
    with pytest.raises(NotFound):
        report(engine, "no-such-id", "completed")


def race(*actions: Any) -> list[str]:
    """Run the actions at the same moment; return the names of those that did not get a 409."""
    wins: list[str] = []
    barrier = threading.Barrier(len(actions))

    def run(action: Any) -> None:
        barrier.wait()
        try:
            action()
            wins.append(action.__name__)
        except Conflict:
            pass

    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return wins


def test_concurrent_approve_and_deny_have_one_winner(engine: sa.Engine) -> None:
    for _ in range(5):
        inv = submit(engine)

        def approved(inv_id: str = inv.id) -> None:
            approvals.decide(engine, invocation_id=inv_id, approve=True, actor="ann")

        def denied(inv_id: str = inv.id) -> None:
            approvals.decide(engine, invocation_id=inv_id, approve=False, actor="bob")

        wins = race(approved, denied)
        assert wins == [service.get_invocation(engine, invocation_id=inv.id).status]


def test_concurrent_approve_and_cancel_leave_pending_once(engine: sa.Engine) -> None:
    for _ in range(5):
        inv = submit(engine)

        def approved(inv_id: str = inv.id) -> None:
            approvals.decide(engine, invocation_id=inv_id, approve=True, actor="ann")

        def cancelled(inv_id: str = inv.id) -> None:
            report(engine, inv_id, "cancelled")

        race(approved, cancelled)
        events = service.list_events(engine, invocation_id=inv.id)
        assert [e.from_status for e in events].count("pending_approval") == 1
        assert events[-1].status == "cancelled"  # approved then cancelled, or cancelled at once


# -- human approval and expiry ----------------------------------------------------------------


def test_approve_and_deny_record_actor_and_reason(engine: sa.Engine) -> None:
    a, b = submit(engine), submit(engine)
    ok = approvals.decide(
        engine, invocation_id=a.id, approve=True, reason="looks fine", actor="ann"
    )
    assert ok.status == "approved" and ok.approval is not None
    assert (ok.approval.status, ok.approval.actor_id, ok.approval.reason) == (
        "approved",
        "ann",
        "looks fine",
    )
    no = approvals.decide(engine, invocation_id=b.id, approve=False, actor="bob")
    assert no.status == "denied" and no.approval is not None
    assert (no.approval.status, no.approval.reason) == ("denied", "denied by an operator")
    with pytest.raises(Conflict):
        approvals.decide(engine, invocation_id=a.id, approve=False, actor="bob")
    with pytest.raises(NotFound):
        approvals.decide(engine, invocation_id="nope", approve=True, actor="bob")


def test_a_call_waiting_while_its_agent_is_retired_or_disabled_cannot_be_approved(
    engine: sa.Engine,
) -> None:
    gone = agent(engine, "Code Review", "rt-review")
    paused = agent(engine, "Paused", "rt-paused")
    waiting = submit(engine, call(agent_id="rt-review"))
    other = submit(engine, call(agent_id="rt-paused"))
    assert waiting.status == other.status == "pending_approval"
    retire(engine, gone.id)
    update_agent(engine, agent_id=paused.id, changes={"enabled": False})
    with pytest.raises(Conflict, match=f"agent Code Review {RETIRED}.*can only be denied"):
        approvals.decide(engine, invocation_id=waiting.id, approve=True, actor="ann")
    with pytest.raises(Conflict, match="agent Paused is disabled"):
        approvals.decide(engine, invocation_id=other.id, approve=True, actor="ann")
    assert service.get_invocation(engine, invocation_id=waiting.id).status == "pending_approval"
    denied = approvals.decide(engine, invocation_id=waiting.id, approve=False, actor="ann")
    assert denied.status == "denied"


def test_overdue_calls_expire_on_read_and_by_the_sweeper(engine: sa.Engine) -> None:
    a, b = submit(engine), submit(engine)
    overdue(engine, a.id)
    overdue(engine, b.id)
    read = service.get_invocation(engine, invocation_id=a.id)
    assert read.status == "expired" and read.approval is not None
    assert read.approval.status == "expired"
    assert read.approval.reason.startswith("no one approved or denied the call within")
    assert approvals.expire_overdue(engine) == 1
    assert service.get_invocation(engine, invocation_id=b.id).status == "expired"
    with pytest.raises(Conflict, match="expired"):
        approvals.decide(engine, invocation_id=b.id, approve=True, actor="late")


def test_a_repeated_submission_of_an_overdue_call_answers_expired(engine: sa.Engine) -> None:
    inv = submit(engine, call(idempotency_key="k-late"))
    overdue(engine, inv.id)
    again = submit(engine, call(idempotency_key="k-late"))
    assert (again.id, again.status) == (inv.id, "expired")


def test_approving_an_overdue_call_expires_it_instead(engine: sa.Engine) -> None:
    inv = submit(engine)
    overdue(engine, inv.id)
    with pytest.raises(Conflict, match="expired"):
        approvals.decide(engine, invocation_id=inv.id, approve=True, actor="late")
    assert service.get_invocation(engine, invocation_id=inv.id).status == "expired"


# -- the authenticated caller sees only its own calls -------------------------------------------


def test_an_authenticated_caller_sees_only_its_own_invocations(engine: sa.Engine) -> None:
    rule(engine, "auto_approve")
    alice_agent = agent(engine, "Alice", "alice")
    inv = submit(engine, call(agent_id="someone-else"), caller=ALICE)
    assert inv.agent_id == "alice" and inv.status == "approved"  # body agent_id is ignored
    assert inv.agent_record_id == alice_agent.id and inv.caller == f"{IDP}#alice"
    # another agent, and the same client id from another issuer, are other identities
    for who in (AgentIdentity(IDP, "bob"), AgentIdentity(OTHER_IDP, "alice"), None):
        if who is None:
            assert service.get_invocation(engine, invocation_id=inv.id).id == inv.id
            continue
        with pytest.raises(NotFound):
            service.get_invocation(engine, invocation_id=inv.id, caller=who)
        with pytest.raises(NotFound):
            report(engine, inv.id, "completed", caller=who)
        with pytest.raises(NotFound):
            service.list_events(engine, invocation_id=inv.id, caller=who)
    assert report(engine, inv.id, "completed", caller=ALICE).status == "succeeded"


def test_issuer_qualified_agent_ids_match_only_that_issuer(engine: sa.Engine) -> None:
    """identity.md §1: `name` matches from any issuer, `issuer#name` only from that issuer."""
    plain = agent(engine, "Plain", "bot")
    qualified = agent(engine, "Qualified", f"{IDP}#worker")
    assert submit(engine, caller=AgentIdentity(IDP, "bot")).agent_record_id == plain.id
    assert submit(engine, caller=AgentIdentity(OTHER_IDP, "bot")).agent_record_id == plain.id
    assert submit(engine, caller=AgentIdentity(IDP, "worker")).agent_record_id == qualified.id
    assert submit(engine, caller=AgentIdentity(OTHER_IDP, "worker")).agent_record_id is None
    # a client id that spells another issuer's qualified entry does not match it
    forged = submit(engine, caller=AgentIdentity(OTHER_IDP, f"{IDP}#worker"))
    assert forged.agent_record_id is None
    # the qualified entry wins over a plain one for the same name
    both = agent(engine, "Both", f"{OTHER_IDP}#bot")
    assert submit(engine, caller=AgentIdentity(OTHER_IDP, "bot")).agent_record_id == both.id
    assert submit(engine, caller=AgentIdentity(IDP, "bot")).agent_record_id == plain.id


# -- spec §7: must never happen ---------------------------------------------------------------


def test_every_rule_change_decides_the_next_call_on_every_replica(
    engine: sa.Engine, db_url: str
) -> None:
    """Decisions take the enabled rules from their process's cache: a rule created, edited,
    disabled, moved or deleted through any replica decides the very next call everywhere."""
    other = make_engine(db_url)  # a second replica: its own process cache
    try:
        for replica in (engine, other):
            assert submit(replica).status == "pending_approval"  # both caches filled
        deny = rule(engine, "auto_deny", tools=["Bash"])
        for replica in (engine, other):
            assert submit(replica).status == "denied"
        rules.replace_rule(
            other,
            rule_id=deny.id,
            spec=rules.RuleSpec(action="auto_approve", tool_patterns=["Bash"]),
        )
        for replica in (engine, other):
            assert submit(replica).status == "approved"
        first = rule(engine, "auto_deny", tools=["Bash"], insert_before="")
        for replica in (engine, other):
            assert submit(replica).status == "denied"
        rules.move_rule(other, rule_id=first.id, direction="down")
        for replica in (engine, other):
            assert submit(replica).status == "approved"
        rules.replace_rule(
            engine,
            rule_id=deny.id,
            spec=rules.RuleSpec(action="auto_approve", tool_patterns=["Bash"], enabled=False),
        )
        for replica in (engine, other):
            assert submit(replica).status == "denied"
        rules.delete_rule(other, rule_id=first.id)
        for replica in (engine, other):
            assert submit(replica).status == "pending_approval"
    finally:
        other.dispose()


def test_rule_loading_failure_asks_a_human_never_approves(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§7.1: even with an approve-everything rule and an always_approve policy."""
    rule(engine, "auto_approve")
    set_policy(engine, "always_approve")

    def broken(conn: sa.Connection, **_: Any) -> Any:
        conn.execute(sa.text("SELECT * FROM no_such_table"))

    monkeypatch.setattr(store, "list_rules", broken)
    inv = submit(engine)
    assert inv.status == "pending_approval" and inv.approval is not None
    assert "could not be evaluated" in inv.approval.reason


def test_evaluator_failure_asks_a_human(engine: sa.Engine) -> None:
    rule(engine, "ai_evaluation")
    set_policy(engine, "always_approve")

    def crash(rule: Any, c: Any) -> Any:
        raise RuntimeError("LLM provider down")

    inv = submit(engine, evaluator=crash)
    assert inv.status == "pending_approval"


def test_database_failure_while_recording_approves_nothing(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule(engine, "auto_approve")

    def fail(*_: Any, **__: Any) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(store, "insert_decision", fail)
    with pytest.raises(sa.exc.OperationalError):
        submit(engine)
    assert count_invocations(engine) == 0


def test_no_status_change_without_its_event(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§7.4: when the event cannot be written, the status does not change either."""
    inv = submit(engine)
    before = service.list_events(engine, invocation_id=inv.id)

    def fail(*_: Any, **__: Any) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("event table unavailable"))

    monkeypatch.setattr(store, "append_event", fail)  # a transition's event
    with pytest.raises(sa.exc.OperationalError):
        approvals.decide(engine, invocation_id=inv.id, approve=True, actor="op")
    with pytest.raises(sa.exc.OperationalError):
        report(engine, inv.id, "cancelled")
    monkeypatch.undo()
    assert service.get_invocation(engine, invocation_id=inv.id).status == "pending_approval"
    assert service.list_events(engine, invocation_id=inv.id) == before


def test_event_history_rebuilds_the_status(engine: sa.Engine) -> None:
    rule(engine, "auto_approve", tools=["Read"])
    inv = submit(engine, call("Read"))
    report(engine, inv.id, "running")
    report(engine, inv.id, "failed", error="exit 1")
    events = service.list_events(engine, invocation_id=inv.id)
    assert [e.type for e in events] == ["received", "approved", "executing", "failed"]
    assert audit.rebuild_status(events) == "failed"
    assert events[-1].data == {"error": "exit 1"}


def test_rebuild_rejects_a_broken_history() -> None:
    now = utcnow()

    def ev(seq: int, old: str | None, new: str) -> Event:
        return Event(f"e{seq}", "i", seq, new, old, new, None, now, {})

    assert audit.rebuild_status([ev(1, None, "received"), ev(2, "received", "approved")])
    with pytest.raises(ValueError):
        audit.rebuild_status([ev(1, None, "received"), ev(2, "received", "succeeded")])
    with pytest.raises(ValueError):
        audit.rebuild_status([ev(1, None, "received"), ev(3, "received", "approved")])
    with pytest.raises(ValueError):
        audit.rebuild_status([ev(1, None, "received"), ev(2, "pending_approval", "approved")])


def test_a_call_expires_when_its_harness_stops_waiting(engine: sa.Engine) -> None:
    """The hook says how long it waits (`wait_seconds`); past that no one can approve the call
    (the audit would show an approval for a call that never ran)."""
    inv = submit(engine, call(wait_seconds=60))
    assert inv.approval is not None and inv.approval.expires_at is not None
    assert inv.approval.expires_at - inv.submitted_at == timedelta(seconds=60)
    longer = submit(engine, call("Write", wait_seconds=10**6))  # never past the policy's timeout
    assert longer.approval is not None and longer.approval.expires_at is not None
    assert longer.approval.expires_at - longer.submitted_at == timedelta(seconds=3600)
    overdue(engine, inv.id)
    with pytest.raises(Conflict):
        approvals.decide(engine, invocation_id=inv.id, approve=True, actor="op")
    assert service.get_invocation(engine, invocation_id=inv.id).status == "expired"


def test_invocation_pages_tile_the_list_with_their_approvals(engine: sa.Engine) -> None:
    """Pages (ids first, then their rows) cover every invocation once, newest first, ties in
    `submitted_at` broken by id, each with its approval; a filter pages the same way."""
    rule(engine, "auto_approve", tools=["Read"])
    for i in range(7):
        submit(engine, call(tool="Read" if i % 2 else "Bash", request_id=f"page-{i}"))
    with engine.begin() as conn:  # four share one instant
        same = utcnow()
        ids = [r.id for r in conn.execute(sa.select(invocations_table.c.id))][:4]
        conn.execute(
            invocations_table.update()
            .where(invocations_table.c.id.in_(ids))
            .values(submitted_at=same)
        )

    def tiles(flt: store.InvocationFilter) -> tuple[list[Any], int]:
        seen: list[Any] = []
        with engine.begin() as conn:
            for offset in range(0, 9, 3):
                page, total = store.list_invocations(conn, flt, offset=offset, limit=3)
                seen.extend(page)
        return seen, total

    seen, total = tiles(store.InvocationFilter())
    assert total == 7 and len({i.id for i in seen}) == 7
    assert [(i.submitted_at, i.id) for i in seen] == sorted(
        ((i.submitted_at, i.id) for i in seen), reverse=True
    )
    assert {i.approval.status for i in seen if i.tool == "Read"} == {"auto_approved"}
    reads, n = tiles(store.InvocationFilter(tool="Read"))
    assert n == 3 and sorted(i.id for i in reads) == sorted(i.id for i in seen if i.tool == "Read")


def test_an_executor_claims_an_approved_call_in_its_decision(engine: sa.Engine) -> None:
    """The MCP proxy runs an auto-approved call at once: the decision writes it executing, with
    approved → executing as its third event (the executor as actor), and nobody claims it
    again; a call that is not approved is not claimed."""
    rule(engine, "auto_approve", tools=["Read"])
    inv = submit(engine, call("Read", idempotency_key="claim-1"), executor="mcp-proxy")
    assert inv.status == "executing" and inv.approval and inv.approval.status == "auto_approved"
    assert service.get_invocation(engine, invocation_id=inv.id).status == "executing"
    with engine.begin() as conn:
        history = [(e.from_status, e.status, e.actor) for e in store.list_events(conn, inv.id)]
    assert history == [
        (None, "received", None),
        ("received", "approved", None),
        ("approved", "executing", "mcp-proxy"),
    ]
    assert service.claim_execution(engine, invocation_id=inv.id, executor="mcp-proxy") is None
    again = submit(engine, call("Read", idempotency_key="claim-1"), executor="mcp-proxy")
    assert (again.id, again.status) == (inv.id, "executing")  # a repeat: not claimed twice
    done = service.report_outcome(
        engine, invocation_id=inv.id, execution_status="completed", result={"ok": 1}
    )
    assert done.status == "succeeded"
    held = submit(engine, call("Bash", request_id="claim-2"), executor="mcp-proxy")
    assert held.status == "pending_approval"  # the default asks a human: nothing to claim yet

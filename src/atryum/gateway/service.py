"""The hook path: submit a call, read it (with lazy expiry), report its outcome.

One transaction per operation; every status change writes its event in that transaction
(`audit.change_status`). Failures never approve: an error while loading or evaluating rules
sends the call to a human, and a retired or disabled agent is denied before any rule (an
unregistered one gets only the rules for all agents, `resolve.py`).
A call an `ai_evaluation` rule judges is decided in rounds, the judge answering between
transactions (see `atryum.judge.judge`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from atryum.db.types import utcnow
from atryum.errors import Conflict, InvalidInput, NotFound
from atryum.gateway import approvals, audit, metrics, policy, resolve, rules, store, tx
from atryum.gateway.hub import Change, Hub
from atryum.gateway.models import (
    A_AI_ESCALATED,
    A_AUTO_APPROVED,
    A_AUTO_DENIED,
    A_CANCELLED,
    A_PENDING,
    APPROVED,
    CANCELLED,
    DENIED,
    EXECUTING,
    FAILED,
    OUTCOMES,
    PENDING,
    RECEIVED,
    SUCCEEDED,
    Approval,
    Event,
    Invocation,
    Policy,
)
from atryum.gateway.settings import GatewayDefaults
from atryum.identity.tokens import AgentIdentity
from atryum.judge import judge as judging

log = logging.getLogger("atryum.gateway")

INF = 2**31  # no wait limit given by the harness

EXECUTION_STATUSES = {
    "running": EXECUTING,
    "completed": SUCCEEDED,
    "failed": FAILED,
    "cancelled": CANCELLED,
}


@dataclass(frozen=True)
class CallRequest:
    source: str
    tool: str
    input: dict[str, Any]
    description: str = ""
    request_id: str | None = None
    idempotency_key: str | None = None
    thread_id: str | None = None
    client_session_id: str | None = None
    client_name: str | None = None
    client_version: str | None = None
    agent_id: str | None = None
    # The tool's own description and input schema, when known (MCP upstreams): the judge sees them.
    tool_description: str = ""
    tool_schema: Any = None
    # How long the harness waits for a decision: a pending call expires then (never later than
    # the policy's timeout), so no one can approve a call whose harness has stopped waiting.
    wait_seconds: int | None = None


def _dedupe_key(req: CallRequest, identity: str | None, caller: str | None) -> str | None:
    who = caller if caller is not None else (identity or "")
    if req.idempotency_key:
        raw = f"idem\0{who}\0{req.idempotency_key}"
    elif req.request_id:
        raw = f"req\0{who}\0{req.source}\0{req.request_id}"
    else:
        return None
    return hashlib.sha256(raw.encode()).hexdigest()


def input_hash(value: Any) -> str:
    """The hash of a call's input in canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_call(inv: Invocation, req: CallRequest, identity: str | None) -> bool:
    return (inv.source, inv.tool, inv.agent_id, input_hash(inv.input)) == (
        req.source,
        req.tool,
        identity,
        input_hash(req.input),
    )


class _RulesFailed(Exception):
    """Loading or evaluating the rules failed: redo the submission with a human decision."""

    def __init__(self, decision: policy.Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


def _decide(
    conn: sa.Connection,
    call: policy.Call,
    resolution: resolve.Resolution,
    pol: Policy,
    rules_version: int | None,
    evaluator: policy.Evaluator,
    failed: _RulesFailed | None,
) -> tuple[policy.Decision, str]:
    """The decision and who made it (agent_check, rule, default_policy; error once the rules
    have `failed`). The agent check never depends on the rules."""
    if resolution.denied:
        return policy.Decision("deny", resolution.denied, None), "agent_check"
    if failed is not None:
        return failed.decision, "error"
    try:
        enabled = store.enabled_rules(conn, rules_version)
        decision = policy.decide(
            rules=enabled, call=call, provider=pol.provider, evaluator=evaluator
        )
    except judging.NeedsJudge:
        raise  # not a failure: the judge answers outside the transaction, then we decide again
    except Exception as exc:  # fail closed: any failure asks a human, never approves
        log.exception("rule evaluation failed; the call goes to a human")
        reason = f"the rules could not be evaluated ({type(exc).__name__}); a human must decide"
        raise _RulesFailed(policy.Decision("human", reason, None)) from exc
    return decision, "default_policy" if decision.by_default_policy else "rule"


# Decision rounds for one call: one per judged rule of a `next_rule` chain, plus retries when
# the rules or the judge's inputs change while it answers. Past that, a human decides.
MAX_ROUNDS = 8


def submit(
    engine: sa.Engine,
    *,
    request: CallRequest,
    caller: AgentIdentity | None,
    defaults: GatewayDefaults,
    evaluator: policy.Evaluator | None = None,
    judge: judging.Judge | None = None,
    hub: Hub | None = None,
    executor: str | None = None,
) -> tuple[Invocation, bool]:
    """Record a call and decide it. Returns (invocation, created); a repeat returns the first.

    With an `executor` (Atryum runs the call itself, the MCP proxy), a new call approved at
    once is also claimed for it in the same transaction: approved → executing, as
    `claim_execution` does for one approved later.

    One transaction: the invocation goes received → decided with its events (and the
    `rule_evaluated` ones of the judge) and its approval row. `ai_evaluation` rules use
    `evaluator` if given, else `judge`: a question the judge has not answered ends the
    transaction without a write, is answered outside any transaction, and the next round decides
    on the then current rules (a compare-and-set on everything the answer depends on). If the
    rules cannot be loaded or evaluated, the call is recorded in a fresh transaction as waiting
    for a human (a failed statement would otherwise poison the PostgreSQL transaction).
    """
    if not request.source.strip() or not request.tool.strip():
        raise InvalidInput("source and tool must not be empty")
    started = time.perf_counter()
    answers: dict[str, judging.Result] = {}
    failed: _RulesFailed | None = None
    for _ in range(MAX_ROUNDS):
        try:
            inv, created, judged = _submit(
                engine, request, caller, defaults, evaluator, judge, answers, failed, hub, executor
            )
            break
        except _RulesFailed as exc:
            failed = exc
        except judging.NeedsJudge as need:
            assert judge is not None
            answers[need.question.key] = judge.ask(need.question)
    else:
        changing = policy.Decision(
            "human",
            "the rules or what the judge sees kept changing while it answered; a human must decide",
            None,
        )
        inv, created, judged = _submit(
            engine,
            request,
            caller,
            defaults,
            evaluator,
            judge,
            answers,
            _RulesFailed(changing),
            hub,
            executor,
        )
    if created:
        judging.count(judged)
        label = {APPROVED: A_AUTO_APPROVED, EXECUTING: A_AUTO_APPROVED, DENIED: A_AUTO_DENIED}.get(
            inv.status, inv.status
        )
        metrics.DECISIONS.labels(label, inv.matched_rule_id or "none").inc()
        metrics.DECISION_LATENCY.labels("auto").observe(time.perf_counter() - started)
    return inv, created


def _submit(
    engine: sa.Engine,
    request: CallRequest,
    verified: AgentIdentity | None,
    defaults: GatewayDefaults,
    evaluator: policy.Evaluator | None,
    judge: judging.Judge | None,
    answers: dict[str, judging.Result],
    failed: _RulesFailed | None,
    hub: Hub | None,
    executor: str | None,
) -> tuple[Invocation, bool, list[judging.Evaluation]]:
    # A verified caller's id replaces the body's agent_id hint; `caller` records who it is.
    identity = verified.agent_id if verified is not None else (request.agent_id or None)
    caller = _key(verified)
    dedupe = _dedupe_key(request, identity, caller)
    outbox: list[Change] = []
    with tx.begin(engine) as conn:
        snapshot = store.read_gateway_snapshot(conn)
        pol = rules.policy_of(snapshot.policy_row, defaults)
        resolution = resolve.resolve(
            conn,
            identity,
            default_agent_id=snapshot.default_agent_id,
            unregistered=defaults.unregistered_agents,
            issuer=verified.issuer if verified is not None else None,
        )
        call = policy.Call(
            source=request.source,
            tool=request.tool,
            agent_record_id=resolution.agent_id,
            input=request.input,
            description=request.description,
            charter=resolution.agent.charter if resolution.agent else "",
        )
        round_ = None
        if evaluator is None and judge is not None:
            extra = judging.CallExtra(request.tool_description, request.tool_schema)
            round_ = judge.round(
                conn,
                identity=identity,
                caller=caller,
                session_id=request.client_session_id,
                answers=answers,
                call_extra=extra,
            )
        judged = round_.records if round_ is not None else []
        decide_with = evaluator or round_ or policy.no_evaluator
        decision, decided_by = _decide(
            conn, call, resolution, pol, snapshot.rules_version, decide_with, failed
        )
        status = {"approve": APPROVED, "deny": DENIED, "human": PENDING}[decision.outcome]
        claimed_by = executor if status == APPROVED else None  # runs at once: written executing
        now = utcnow()
        row = _row(request, identity, caller, dedupe, resolution, decision, status, now, claimed_by)
        created = store.insert_invocation(conn, row)
        existing = None
        if not created and dedupe:
            existing = store.find_by_dedupe_key(conn, dedupe)
            if existing is not None and _request_id_reused(existing, request):
                store.release_dedupe_key(conn, existing.id, dedupe)
                created = store.insert_invocation(conn, row)
                if not created:  # another submission of this request id won the race
                    existing = store.find_by_dedupe_key(conn, dedupe)
        if not created:
            if existing is None:
                raise Conflict("the invocation could not be recorded; try again")
            repeat = _repeat(existing, request, identity)
            repeat = approvals.expire_if_due(conn, repeat, now=now, outbox=outbox)
        else:
            repeat = None
            approval = _record_decision(
                conn,
                row,
                decision,
                decided_by,
                resolution,
                timedelta(seconds=min(pol.approval_timeout_seconds, request.wait_seconds or INF)),
                judged,
                claimed_by,
            )
            judging.touch_session(conn, caller or identity, request.client_session_id, now=now)
            outbox.append(Change(row["id"], row["status"]))
    if hub is not None:
        hub.committed(outbox)
    if repeat is not None:
        return repeat, False, []
    row.pop("dedupe_key")
    inv = Invocation(**row, result=None, error=None, completed_at=None, approval=approval)
    return inv, True, judged


def _request_id_reused(existing: Invocation, request: CallRequest) -> bool:
    """A request id (without an idempotency key) names one call only while that call waits for
    its decision; once decided, an equal request id is a new call — the shared Go hook derives it
    from a hash of the input when the host gives no tool-use id, so equal inputs repeat."""
    return not request.idempotency_key and existing.status not in (RECEIVED, PENDING)


def _repeat(existing: Invocation, request: CallRequest, identity: str | None) -> Invocation:
    if not _same_call(existing, request, identity):
        raise Conflict(
            f"this idempotency key (or request id) was already used for invocation {existing.id} "
            f"({existing.source} / {existing.tool}, with its own input); use a new key for a "
            "different call"
        )
    return existing


def _row(
    req: CallRequest,
    identity: str | None,
    caller: str | None,
    dedupe: str | None,
    resolution: resolve.Resolution,
    decision: policy.Decision,
    status: str,
    now: datetime,
    claimed_by: str | None,
) -> dict[str, Any]:
    return {
        "id": store.new_id(),
        "source": req.source,
        "tool": req.tool,
        "input": req.input,
        "description": req.description,
        "request_id": req.request_id,
        "idempotency_key": req.idempotency_key,
        "dedupe_key": dedupe,
        "thread_id": req.thread_id,
        "agent_id": identity,
        "agent_record_id": resolution.agent_id,
        "agent_name": resolution.agent_name,
        "caller": caller,
        "client_session_id": req.client_session_id,
        "client_name": req.client_name,
        "client_version": req.client_version,
        "status": EXECUTING if claimed_by else status,
        "matched_rule_id": decision.rule_id,
        "submitted_at": now,
        "updated_at": now,
    }


def _record_decision(
    conn: sa.Connection,
    row: dict[str, Any],
    decision: policy.Decision,
    decided_by: str,
    resolution: resolve.Resolution,
    timeout: timedelta,
    judged: list[judging.Evaluation],
    claimed_by: str | None,
) -> Approval:
    """The invocation row was written in its decided status: its two status changes
    (none → received → decided) get their events, with the judge's `rule_evaluated` events
    between them, the decision its approval row, and every replica a notification when the
    transaction commits. An approved call its executor runs at once (`claimed_by`, the MCP
    proxy) was written executing: approved → executing is its third change."""
    inv_id, now = row["id"], row["submitted_at"]
    status = APPROVED if claimed_by else row["status"]
    received = {"agent_record_id": resolution.agent_id, "resolved_via": resolution.via}
    decided = {"reason": decision.reason, "rule_id": decision.rule_id, "decided_by": decided_by}
    notes = [
        audit.note_row(
            invocation_id=inv_id,
            seq=2 + i,
            type_=audit.RULE_EVALUATED,
            status=RECEIVED,
            now=now,
            data=e.event_data(),
        )
        for i, e in enumerate(judged)
    ]
    events = [
        audit.event_row(
            invocation_id=inv_id, seq=1, old=None, new=RECEIVED, actor=None, now=now, data=received
        ),
        *notes,
        audit.event_row(
            invocation_id=inv_id,
            seq=2 + len(notes),
            old=RECEIVED,
            new=status,
            actor=None,
            now=now,
            data=decided,
        ),
    ]
    if claimed_by:
        events.append(
            audit.event_row(
                invocation_id=inv_id,
                seq=3 + len(notes),
                old=APPROVED,
                new=EXECUTING,
                actor=claimed_by,
                now=now,
                data={"executor": claimed_by},
            )
        )
    pending = status == PENDING
    waiting = A_AI_ESCALATED if decision.escalated else A_PENDING
    approval = Approval(
        status={APPROVED: A_AUTO_APPROVED, DENIED: A_AUTO_DENIED, PENDING: waiting}[status],
        reason=decision.reason,
        actor_id=None,
        requested_at=now,
        expires_at=now + timeout if pending else None,
        decision_at=None if pending else now,
    )
    store.insert_decision(
        conn,
        events,
        {"invocation_id": inv_id, **approval.__dict__},
        {"id": inv_id, "status": row["status"]},
    )
    return approval


def _key(caller: AgentIdentity | None) -> str | None:
    return caller.key if caller is not None else None


def _visible(
    inv: Invocation | None, invocation_id: str, caller: AgentIdentity | None
) -> Invocation:
    """An authenticated caller sees only its own invocations (404 for others)."""
    if inv is None or (caller is not None and inv.caller != caller.key):
        raise NotFound(f"invocation {invocation_id} not found")
    return inv


def get_invocation(
    engine: sa.Engine,
    *,
    invocation_id: str,
    caller: AgentIdentity | None = None,
    hub: Hub | None = None,
) -> Invocation:
    """Read an invocation; a pending one past its deadline expires now (in this transaction)."""
    outbox: list[Change] = []
    with tx.begin(engine) as conn:
        inv = _visible(store.get_invocation(conn, invocation_id), invocation_id, caller)
        inv = approvals.expire_if_due(conn, inv, now=utcnow(), outbox=outbox)
    if hub is not None:
        hub.committed(outbox)
    return inv


def report_outcome(
    engine: sa.Engine,
    *,
    invocation_id: str,
    execution_status: str,
    result: Any = None,
    error: Any = None,
    message: str | None = None,
    caller: AgentIdentity | None = None,
    hub: Hub | None = None,
) -> Invocation:
    """The executor's report. Only approved calls run; a recorded outcome is never overwritten."""
    target = EXECUTION_STATUSES.get(execution_status)
    if target is None:
        raise InvalidInput(
            f"execution_status must be one of {', '.join(EXECUTION_STATUSES)}, "
            f"not {execution_status!r}"
        )
    outbox: list[Change] = []
    problem: str | None = None
    with tx.begin(engine) as conn:
        now = utcnow()
        inv = _visible(store.get_invocation(conn, invocation_id), invocation_id, caller)
        inv = approvals.expire_if_due(conn, inv, now=now, outbox=outbox)
        for _ in range(2):  # a lost compare-and-set re-reads once and judges again
            if inv.status == target:
                break  # a retry of the same report: nothing to do
            problem = _refusal(inv, target)
            if problem:
                break
            written = _apply_outcome(conn, inv, target, result, error, message, now, outbox)
            if written is not None:
                inv = written
                break
            inv = _visible(store.get_invocation(conn, invocation_id), invocation_id, caller)
        else:
            problem = f"invocation {invocation_id} changed at the same time; nothing was recorded"
    if hub is not None:
        hub.committed(outbox)
    if problem:
        raise Conflict(problem)
    return inv


def claim_execution(
    engine: sa.Engine, *, invocation_id: str, executor: str, hub: Hub | None = None
) -> Invocation | None:
    """Atryum runs an approved call itself (the MCP proxy): approved → executing as one
    compare-and-set, so an invocation runs at most once however many waiters (retries,
    replicas) reach it. None when it is not, or no longer, approved."""
    outbox: list[Change] = []
    with tx.begin(engine) as conn:
        claimed = _claim(conn, invocation_id, executor, utcnow(), outbox)
    if hub is not None:
        hub.committed(outbox)
    return claimed


def _claim(
    conn: sa.Connection, invocation_id: str, executor: str, now: datetime, outbox: list[Change]
) -> Invocation | None:
    inv = store.get_invocation(conn, invocation_id)
    if inv is None or inv.status != APPROVED:
        return None
    data = {"executor": executor}
    if not audit.change_status(
        conn, inv, EXECUTING, now=now, actor=executor, data=data, outbox=outbox
    ):
        return None
    return store.get_invocation(conn, invocation_id)


def _refusal(inv: Invocation, target: str) -> str | None:
    if inv.status in OUTCOMES:
        return (
            f"invocation {inv.id} already has its outcome ({inv.status}); "
            f"it cannot be changed to {target}"
        )
    if target == CANCELLED:
        if inv.status in (PENDING, APPROVED, EXECUTING):
            return None
        return (
            f"invocation {inv.id} is {inv.status}; only a pending or approved call can be cancelled"
        )
    if inv.status in (APPROVED, EXECUTING):
        return None
    return (
        f"invocation {inv.id} is {inv.status}, not approved: an outcome can only be reported "
        "for an approved call"
    )


def _apply_outcome(
    conn: sa.Connection,
    inv: Invocation,
    target: str,
    result: Any,
    error: Any,
    message: str | None,
    now: Any,
    outbox: list[Change],
) -> Invocation | None:
    """The invocation as written, or None when someone else moved it first."""
    values: dict[str, Any] = {}
    if target in OUTCOMES:
        values["completed_at"] = now
        values["result"] = result
        values["error"] = error
    data = {k: v for k, v in {"message": message, "error": error}.items() if v not in (None, "")}
    moved = audit.change_status(
        conn, inv, target, now=now, actor=inv.caller, data=data, values=values, outbox=outbox
    )
    if not moved:
        return None
    if inv.status != PENDING:  # only the row changed, by exactly these values
        return replace(inv, status=target, updated_at=now, **values)
    store.update_approval(
        conn,
        inv.id,
        {
            "status": A_CANCELLED,
            "reason": message or "the harness withdrew the call before a decision",
            "decision_at": now,
        },
    )
    return store.get_invocation(conn, inv.id)


def list_events(
    engine: sa.Engine, *, invocation_id: str, caller: AgentIdentity | None = None
) -> list[Event]:
    with tx.begin(engine) as conn:
        _visible(store.get_invocation(conn, invocation_id), invocation_id, caller)
        return store.list_events(conn, invocation_id)


def list_invocations(
    engine: sa.Engine,
    *,
    flt: store.InvocationFilter,
    offset: int = 0,
    limit: int = 50,
    hub: Hub | None = None,
) -> tuple[list[Invocation], int]:
    if offset < 0 or not 1 <= limit <= 500:
        raise InvalidInput("offset must be ≥ 0 and limit between 1 and 500")
    approvals.expire_overdue(engine, hub=hub)
    with tx.begin(engine) as conn:
        return store.list_invocations(conn, flt, offset=offset, limit=limit)


def runtime_agent_ids(engine: sa.Engine) -> list[str]:
    with tx.begin(engine) as conn:
        return store.runtime_agent_ids(conn)


def agent_for_vm_cuid(engine: sa.Engine, *, vm_cuid: str) -> str:
    """The registry agent id synced from ValidMind record `vm_cuid` (404 if none)."""
    with tx.begin(engine) as conn:
        agent_id = store.agent_id_for_vm_cuid(conn, vm_cuid)
    if agent_id is None:
        raise NotFound(f"no agent is synced from ValidMind record {vm_cuid}")
    return agent_id

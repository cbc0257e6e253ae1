"""The charter judge at work: questions prepared inside a transaction, answered outside it.

A model can take seconds to answer; a transaction that waited for it would hold SQLite's write
lock (every other call would queue behind it) or a pooled PostgreSQL connection. So deciding a
call with an `ai_evaluation` rule takes rounds (gateway/service.py `submit`):

1. in a transaction, the rules are evaluated with a `Round` as their evaluator. It reads what
   the judge needs (the rule's config, the session's history) and, if the answer to that exact
   question is not known yet, raises `NeedsJudge`: the transaction ends without writing;
2. outside any transaction, `Judge.ask` answers it (from the cache or the model);
3. the next round re-reads everything and evaluates again. Only a round whose every question
   is answered decides, and it writes the decision and its `rule_evaluated` events in that same
   transaction. A rule, config, charter or history that changed meanwhile is a new question
   (the key covers them all), so a decision never rests on an answer to another question.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx2
import sqlalchemy as sa

from atryum.config import BackendConfig, Config
from atryum.db.types import utcnow
from atryum.gateway.models import Rule
from atryum.gateway.policy import Call, Verdict
from atryum.judge import metrics, providers, store
from atryum.judge.models import AgentContext, LlmConfig
from atryum.judge.prompt import (
    HistoryItem,
    Prompt,
    Subject,
    bounded_history,
    build_prompt,
    canonical_json,
    question_key,
)
from atryum.judge.verdict import NO_CHARTER, Answer, Failure, outcome, parse_answer
from atryum.validmind.client import ValidMindClient, ValidMindError

log = logging.getLogger("atryum.judge")

SESSION_TTL = timedelta(days=7)
CACHE_MAX_ENTRIES = 10_000
JudgeKind = Literal["llm", "validmind", "none"]


@dataclass(frozen=True)
class Question:
    key: str
    rule: Rule
    kind: JudgeKind
    subject: Subject
    llm: LlmConfig | None = None
    agent: AgentContext | None = None

    @property
    def config_ref(self) -> str | None:
        return self.llm.id if self.llm else self.rule.model_config_cuid


@dataclass(frozen=True)
class Result:
    """What asking the judge gave."""

    result: Answer | Failure
    model: str
    latency_ms: int
    prompt_sha256: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached: bool = False


class NeedsJudge(Exception):
    """The rules reached a question the judge has not answered yet: answer it outside the
    transaction, then evaluate again."""

    def __init__(self, question: Question) -> None:
        super().__init__(f"rule {question.rule.id} needs the judge")
        self.question = question


@dataclass(frozen=True)
class Evaluation:
    """One judged rule, as its `rule_evaluated` event records it."""

    rule_id: str
    judge: JudgeKind
    config: str | None
    model: str | None
    verdict: str | None  # the judge's own verdict; None when it could not answer
    confidence: float | None
    reason: str
    outcome: Verdict
    error: str | None = None
    latency_ms: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    prompt_sha256: str | None = None
    cached: bool = False
    shadow: bool = False

    def event_data(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "judge": self.judge,
            "config": self.config,
            "model": self.model,
            "verdict": self.verdict,
            "confidence": self.confidence,
            "reason": self.reason,
            "outcome": self.outcome,
            "error": self.error,
            "latency_ms": self.latency_ms,
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
            "prompt_sha256": self.prompt_sha256,
            "cached": self.cached,
            "shadow": self.shadow,
        }


class Judge:
    """One per app: the cache and the settings of the `[judge]` and `[backend]` sections."""

    def __init__(self, config: Config) -> None:
        self._backend: BackendConfig = config.backend
        self._ttl = config.judge.cache_ttl_seconds
        self.history_calls = config.judge.history_calls
        self._cache: OrderedDict[str, tuple[float, Result]] = OrderedDict()
        self._lock = threading.Lock()
        self._http: httpx2.Client | None = None
        self._validmind: ValidMindClient | None = None

    def _clients(self) -> tuple[httpx2.Client, ValidMindClient | None]:
        """The HTTP clients, made on first use and shared by every call (thread-safe)."""
        with self._lock:
            if self._http is None:
                self._http = providers.new_client()
            if self._validmind is None and self._backend.enabled:
                self._validmind = ValidMindClient(self._backend)
            return self._http, self._validmind

    def close(self) -> None:
        with self._lock:
            for client in (self._http, self._validmind):
                if client is not None:
                    client.close()
            self._http = self._validmind = None

    @property
    def validmind_configured(self) -> bool:
        return self._backend.enabled

    def round(
        self,
        conn: sa.Connection,
        *,
        identity: str | None,
        session_id: str | None,
        answers: dict[str, Result],
        caller: str | None = None,
        call_extra: CallExtra | None = None,
    ) -> Round:
        """The evaluator of one decision attempt. `identity` is the agent id as presented,
        `caller` the verified caller's key (issuer-qualified) when inbound auth is on: the
        session and its history belong to the caller if there is one, else to the identity."""
        return Round(self, conn, identity, caller, session_id, answers, call_extra or CallExtra())

    # -- answering (outside any transaction) --------------------------------------------------

    def ask(self, question: Question, *, cache: bool = True) -> Result:
        """The judge's answer to `question`: from the cache, or from the model (or ValidMind)."""
        hit = self._cached(question.key) if cache else None
        if hit is not None:
            return hit
        started = time.perf_counter()
        if question.kind == "llm":
            assert question.llm is not None
            result = self._ask_llm(question.llm, question.subject)
        else:
            result = self._ask_validmind(question)
        seconds = time.perf_counter() - started
        result = replace(result, latency_ms=int(seconds * 1000))
        metrics.LATENCY.labels(question.kind).observe(seconds)
        if isinstance(result.result, Failure):
            metrics.ERRORS.labels(question.kind, result.result.kind).inc()
            log.warning(
                "judge failed rule=%s judge=%s config=%s kind=%s",
                question.rule.id,
                question.kind,
                question.config_ref,
                result.result.kind,
            )
        elif cache:
            self._store(question.key, result)
        return result

    def _ask_llm(self, config: LlmConfig, subject: Subject) -> Result:
        prompt = new_prompt(subject)
        reply = providers.complete(self._clients()[0], config, prompt)
        return Result(
            reply.result,
            reply.model,
            0,
            prompt.sha256,
            reply.input_tokens,
            reply.output_tokens,
        )

    def _ask_validmind(self, question: Question) -> Result:
        payload = validmind_payload(question)
        digest = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
        cuid = question.rule.model_config_cuid or ""
        client = self._clients()[1]
        assert client is not None  # a question for ValidMind is only made when it is configured
        try:
            data = client.evaluate(payload)
        except ValidMindError as exc:
            return Result(_validmind_failure(exc), cuid, 0, digest)
        usage = providers.as_object(data.get("usage"))
        return Result(
            parse_answer(data),
            str(data.get("model") or cuid),
            0,
            digest,
            providers.as_int(usage.get("input_tokens")),
            providers.as_int(usage.get("output_tokens")),
        )

    # -- cache ----------------------------------------------------------------------------

    def _cached(self, key: str) -> Result | None:
        if self._ttl <= 0:
            return None
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._cache[key]
                return None
            self._cache.move_to_end(key)
            return replace(entry[1], cached=True)

    def _store(self, key: str, result: Result) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._cache[key] = (time.monotonic() + self._ttl, result)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_MAX_ENTRIES:
                self._cache.popitem(last=False)


@dataclass(frozen=True)
class CallExtra:
    """What the gateway knows about a call beyond the rules' `Call`: the tool's own metadata
    (MCP upstreams) when known."""

    tool_description: str = ""
    tool_schema: Any = None


class Round:
    """The evaluator of one decision attempt (inside its transaction): answers from `answers`
    or raises NeedsJudge; records every judged rule in `records`."""

    def __init__(
        self,
        judge: Judge,
        conn: sa.Connection,
        identity: str | None,
        caller: str | None,
        session_id: str | None,
        answers: dict[str, Result],
        extra: CallExtra,
    ) -> None:
        self.judge = judge
        self.conn = conn
        self.identity = identity
        self.caller = caller
        self.session_id = session_id
        self.answers = answers
        self.extra = extra
        self.records: list[Evaluation] = []
        self._history: tuple[HistoryItem, ...] | None = None

    def __call__(self, rule: Rule, call: Call) -> tuple[Verdict, str]:
        if not call.charter.strip():
            return self._record(
                Evaluation(rule.id, "none", None, None, None, None, NO_CHARTER, "deny"), rule
            )
        question = self._question(rule, call)
        if isinstance(question, Failure):
            kind: JudgeKind = (
                "llm"
                if rule.atryum_llm_config_id
                else ("validmind" if rule.model_config_cuid else "none")
            )
            ref = rule.atryum_llm_config_id or rule.model_config_cuid
            verdict, why = outcome(question, min_confidence=rule.min_confidence)
            evaluation = Evaluation(
                rule.id, kind, ref, None, None, None, why, verdict, error=question.kind
            )
            return self._record(evaluation, rule)
        answer = self.answers.get(question.key)
        if answer is None:
            raise NeedsJudge(question)
        verdict, why = outcome(answer.result, min_confidence=rule.min_confidence)
        result = answer.result
        evaluation = Evaluation(
            rule_id=rule.id,
            judge=question.kind,
            config=question.config_ref,
            model=answer.model,
            verdict=result.verdict if isinstance(result, Answer) else None,
            confidence=result.confidence if isinstance(result, Answer) else None,
            reason=why,
            outcome=verdict,
            error=result.kind if isinstance(result, Failure) else None,
            latency_ms=answer.latency_ms,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            prompt_sha256=answer.prompt_sha256,
            cached=answer.cached,
        )
        return self._record(evaluation, rule)

    def _record(self, evaluation: Evaluation, rule: Rule) -> tuple[Verdict, str]:
        evaluation = replace(evaluation, shadow=rule.shadow)
        self.records.append(evaluation)
        return evaluation.outcome, evaluation.reason

    def _question(self, rule: Rule, call: Call) -> Question | Failure:
        llm: LlmConfig | None = None
        agent: AgentContext | None = None
        if rule.atryum_llm_config_id:
            llm = store.get_config(self.conn, rule.atryum_llm_config_id)
            if llm is None:
                return Failure(
                    "config_missing",
                    f"the rule's LLM config {rule.atryum_llm_config_id} does not exist "
                    "(or was deleted)",
                )
            if not llm.enabled:
                return Failure("config_disabled", f"the rule's LLM config {llm.name!r} is disabled")
            kind: JudgeKind = "llm"
            judge_id = ["llm", llm.id, llm.updated_at.isoformat(), llm.provider, llm.model]
        elif rule.model_config_cuid:
            if not self.judge.validmind_configured:
                return Failure(
                    "not_configured",
                    "the rule uses a ValidMind judge but ValidMind is not configured",
                )
            if call.agent_record_id:
                agent = store.agent_context(self.conn, call.agent_record_id)
            kind = "validmind"
            judge_id = ["validmind", rule.model_config_cuid]
        else:
            return Failure("no_judge", "the rule names no judge (LLM config or ValidMind model)")
        subject = Subject(
            charter=call.charter,
            source=call.source,
            tool=call.tool,
            arguments=call.input,
            description=call.description,
            tool_description=self.extra.tool_description,
            tool_schema=self.extra.tool_schema,
            history=self._session_history(),
        )
        rule_id = [rule.id, rule.updated_at.isoformat()]
        key = question_key(subject, rule=rule_id, judge=judge_id)
        return Question(key, rule, kind, subject, llm, agent)

    def _session_history(self) -> tuple[HistoryItem, ...]:
        if self._history is None:
            self._history = ()
            if self.session_id:
                rows = store.session_history(
                    self.conn,
                    self.identity,
                    self.caller,
                    self.session_id,
                    cutoff=_now() - SESSION_TTL,
                    limit=self.judge.history_calls,
                )
                items = [
                    HistoryItem(
                        r.source,
                        r.tool,
                        canonical_json(r.input),
                        r.status,
                        r.submitted_at.isoformat(),
                    )
                    for r in reversed(rows)
                ]
                self._history = bounded_history(items, max_items=self.judge.history_calls)
        return self._history


def count(evaluations: Sequence[Evaluation]) -> None:
    """Metrics for the evaluations a committed decision recorded (failures of a model call
    were counted when it was made; those without one are counted here)."""
    for e in evaluations:
        metrics.EVALUATIONS.labels(e.judge, e.verdict or "none", e.outcome).inc()
        if e.cached:
            metrics.CACHE_HITS.labels(e.judge).inc()
        if e.error and e.latency_ms is None:
            metrics.ERRORS.labels(e.judge, e.error).inc()


def touch_session(
    conn: sa.Connection, owner: str | None, session_id: str | None, *, now: datetime
) -> None:
    """The harness used this session at `now`, the call's submission time (7-day sliding TTL).
    `owner`: the verified caller's key, else the presented agent id."""
    if session_id:
        store.touch_session(conn, owner or "", session_id, now=now, cutoff=now - SESSION_TTL)


def adhoc_question(
    subject: Subject,
    *,
    llm: LlmConfig | None = None,
    model_config_cuid: str | None = None,
    agent: AgentContext | None = None,
) -> Question:
    """A question outside any rule (a config's sample call, the judge benchmark)."""
    now = _now()
    rule = Rule(
        id="adhoc",
        action="ai_evaluation",
        server_patterns=[],
        tool_patterns=[],
        agent_cuids=[],
        description="",
        enabled=True,
        order=0,
        created_at=now,
        updated_at=now,
        atryum_llm_config_id=llm.id if llm else None,
        model_config_cuid=model_config_cuid,
    )
    kind: JudgeKind = "llm" if llm else "validmind"
    judge_id = [kind, llm.id if llm else model_config_cuid or ""]
    key = question_key(subject, rule=["adhoc", now.isoformat()], judge=judge_id)
    return Question(key, rule, kind, subject, llm, agent)


def new_prompt(subject: Subject) -> Prompt:
    """The prompt with a fresh random fence token (drawn again in the impossible case that the
    data holds it)."""
    while True:
        try:
            return build_prompt(subject, secrets.token_hex(16))
        except ValueError:
            continue


def validmind_payload(question: Question) -> dict[str, Any]:
    s, agent = question.subject, question.agent
    context: dict[str, Any] = {
        "history": [h.__dict__ for h in s.history],
        "description": s.description,
    }
    if s.tool_description:
        context["tool_description"] = s.tool_description
    if s.tool_schema is not None:
        context["tool_input_schema"] = s.tool_schema
    payload: dict[str, Any] = {
        "model_config_cuid": question.rule.model_config_cuid,
        "agent_tags": agent.tags if agent else [],
        "server_name": s.source,
        "tool_name": s.tool,
        "tool_args": dict(s.arguments),
        "context": context,
    }
    if agent is not None and agent.vm_cuid:
        payload["agent_vm_cuid"] = agent.vm_cuid
        payload["charter_field_key"] = agent.charter_field_key
        if agent.org_cuid:
            payload["org_cuid"] = agent.org_cuid
    return payload


def _validmind_failure(exc: ValidMindError) -> Failure:
    if exc.status is None:
        kind = (
            "timeout"
            if "timed out" in exc.detail.lower() or "timeout" in exc.detail.lower()
            else "transport"
        )
    elif exc.status >= 500:
        kind = "http_5xx"
    elif exc.status >= 400:
        kind = "http_4xx"
    else:
        kind = "unparseable"
    return Failure(kind, str(exc)[:300])


def _now() -> datetime:
    return utcnow()

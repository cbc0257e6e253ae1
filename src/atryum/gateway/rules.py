"""Rules and the default policy: validation, ordering, stale-agent flags, what a caller gets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from atryum import audit
from atryum.db.types import utcnow
from atryum.errors import InvalidInput, NotFound
from atryum.gateway import policy, resolve, store, tx
from atryum.gateway.models import (
    AUTO_DENY,
    POLICY_PROVIDERS,
    RULE_ACTIONS,
    Policy,
    Rule,
    RuleView,
)
from atryum.gateway.settings import GatewayDefaults
from atryum.identity.principal import SYSTEM, Actor
from atryum.judge import service as judge_service


@dataclass(frozen=True)
class RuleSpec:
    action: str
    server_patterns: Sequence[str] = ()
    tool_patterns: Sequence[str] = ()
    agent_cuids: Sequence[str] = ()
    description: str = ""
    enabled: bool | None = True  # None on a replace: keep the rule's current value
    # `ai_evaluation` rules (judge.md §1); None on a replace: keep the current value (a Go client
    # that knows neither field must not turn a shadow rule into a deciding one)
    atryum_llm_config_id: str | None = None
    model_config_cuid: str | None = None
    min_confidence: float | None = None
    shadow: bool | None = None


def _clean(values: Sequence[str], what: str) -> list[str]:
    out: list[str] = []
    for v in values:
        v = str(v).strip()
        if not v:
            raise InvalidInput(f"{what} must not contain empty values")
        if v not in out:
            out.append(v)
    return out


def _patterns(values: Sequence[str], what: str) -> list[str]:
    out = _clean(values, what)
    if any(len(p) > policy.MAX_PATTERN_LENGTH for p in out):
        raise InvalidInput(
            f"{what}: a pattern may be at most {policy.MAX_PATTERN_LENGTH} characters long"
        )
    return out


def _validated(
    conn: sa.Connection, spec: RuleSpec, *, before: Rule | None = None
) -> dict[str, Any]:
    """The rule's values; on a replace, fields the spec leaves out (None) keep `before`'s."""
    enabled = before.enabled if before else True
    if spec.action not in RULE_ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(RULE_ACTIONS)}, not {spec.action!r}")
    cuids = _clean(spec.agent_cuids, "agent_cuids")
    known = {a.id for a in store.agent_states(conn, cuids)}
    unknown = [c for c in cuids if c not in known]
    if unknown:
        raise InvalidInput(f"unknown agent id(s) in agent_cuids: {', '.join(unknown)}")
    return {
        "action": spec.action,
        "server_patterns": _patterns(spec.server_patterns, "server_patterns"),
        "tool_patterns": _patterns(spec.tool_patterns, "tool_patterns"),
        "agent_cuids": cuids,
        "description": spec.description.strip(),
        "enabled": enabled if spec.enabled is None else bool(spec.enabled),
        "shadow": (before.shadow if before else False) if spec.shadow is None else spec.shadow,
        **judge_service.check_rule_judge(
            llm_config_id=spec.atryum_llm_config_id,
            model_config_cuid=spec.model_config_cuid,
            min_confidence=(before.min_confidence if before else 0.0)
            if spec.min_confidence is None
            else spec.min_confidence,
        ),
    }


def _views(conn: sa.Connection, rules: Sequence[Rule]) -> list[RuleView]:
    states = {a.id: a for a in store.agent_states(conn, (c for r in rules for c in r.agent_cuids))}
    problems = judge_service.rule_problems(conn, rules)
    return [
        RuleView(r, [states[c] for c in r.agent_cuids if c in states], problems.get(r.id))
        for r in rules
    ]


def _snapshot(rule: Rule) -> dict[str, Any]:
    return {k: v for k, v in asdict(rule).items() if k not in ("id", "created_at", "updated_at")}


def _record(
    conn: sa.Connection,
    actor: Actor,
    rule_id: str,
    action: str,
    before: Rule | None,
    after: Rule | None,
) -> None:
    audit.record_change(
        conn,
        actor=actor,
        entity="rule",
        entity_id=rule_id,
        action=action,
        before=_snapshot(before) if before else None,
        after=_snapshot(after) if after else None,
    )


def _require(conn: sa.Connection, rule_id: str) -> Rule:
    rule = store.get_rule(conn, rule_id)
    if rule is None:
        raise NotFound(f"rule {rule_id} not found")
    return rule


def list_rules(engine: sa.Engine) -> list[RuleView]:
    with tx.begin(engine) as conn:
        return _views(conn, store.list_rules(conn))


def get_rule(engine: sa.Engine, *, rule_id: str) -> RuleView:
    with tx.begin(engine) as conn:
        return _views(conn, [_require(conn, rule_id)])[0]


def create_rule(
    engine: sa.Engine, *, spec: RuleSpec, insert_before: str | None = None, actor: Actor = SYSTEM
) -> RuleView:
    """Append, or insert before the rule `insert_before` (`""` = at the top)."""
    with tx.begin(engine) as conn:
        created = insert_rule(conn, spec=spec, insert_before=insert_before, actor=actor)
        return _views(conn, [created])[0]


def insert_rule(
    conn: sa.Connection, *, spec: RuleSpec, insert_before: str | None, actor: Actor
) -> Rule:
    """`create_rule` inside the caller's transaction (also used by a decision that creates a
    rule, go-compat.md §3)."""
    now = utcnow()
    rule_id = store.new_id()
    store.lock_policy(conn, now)
    values = _validated(conn, spec)
    order = [r.id for r in store.list_rules(conn)]
    if insert_before is None:
        index = len(order)
    elif insert_before == "":
        index = 0
    elif insert_before in order:
        index = order.index(insert_before)
    else:
        raise InvalidInput(f"insert_before: rule {insert_before} not found")
    store.insert_rule(
        conn,
        {**values, "id": rule_id, "position": len(order), "created_at": now, "updated_at": now},
    )
    order.insert(index, rule_id)
    store.set_positions(conn, order)
    created = _require(conn, rule_id)
    _record(conn, actor, rule_id, "create", None, created)
    return created


def replace_rule(
    engine: sa.Engine, *, rule_id: str, spec: RuleSpec, actor: Actor = SYSTEM
) -> RuleView:
    """Replace a rule's fields; `enabled` left out (None) keeps the rule's current value."""
    with tx.begin(engine) as conn:
        before = _require(conn, rule_id)
        values = _validated(conn, spec, before=before)
        store.update_rule(conn, rule_id, {**values, "updated_at": utcnow()})
        after = _require(conn, rule_id)
        _record(conn, actor, rule_id, "update", before, after)
        return _views(conn, [after])[0]


def delete_rule(engine: sa.Engine, *, rule_id: str, actor: Actor = SYSTEM) -> None:
    with tx.begin(engine) as conn:
        store.lock_policy(conn, utcnow())
        before = _require(conn, rule_id)
        store.delete_rule(conn, rule_id)
        store.set_positions(conn, [r.id for r in store.list_rules(conn)])
        _record(conn, actor, rule_id, "delete", before, None)


def move_rule(
    engine: sa.Engine, *, rule_id: str, direction: str, actor: Actor = SYSTEM
) -> RuleView:
    if direction not in ("up", "down"):
        raise InvalidInput("direction must be 'up' or 'down'")
    with tx.begin(engine) as conn:
        store.lock_policy(conn, utcnow())
        order = [r.id for r in store.list_rules(conn)]
        if rule_id not in order:
            raise NotFound(f"rule {rule_id} not found")
        i = order.index(rule_id)
        j = i - 1 if direction == "up" else i + 1
        before = _require(conn, rule_id)
        if 0 <= j < len(order):  # moving the first rule up (or the last down) changes nothing
            order[i], order[j] = order[j], order[i]
            store.set_positions(conn, order)
            _record(conn, actor, rule_id, f"move_{direction}", before, _require(conn, rule_id))
        return _views(conn, [_require(conn, rule_id)])[0]


# -- default policy ---------------------------------------------------------------------------


def policy_tx(conn: sa.Connection, defaults: GatewayDefaults) -> Policy:
    return policy_of(store.read_policy(conn) or {}, defaults)


def policy_of(row: dict[str, Any], defaults: GatewayDefaults) -> Policy:
    return Policy(
        provider=row.get("provider") or defaults.provider,
        approval_timeout_seconds=int(
            row.get("approval_timeout_seconds") or defaults.approval_timeout_seconds
        ),
        updated_at=row.get("updated_at"),
    )


def get_policy(engine: sa.Engine, *, defaults: GatewayDefaults) -> Policy:
    with tx.begin(engine) as conn:
        return policy_tx(conn, defaults)


def update_policy(
    engine: sa.Engine,
    *,
    provider: str | None = None,
    approval_timeout_seconds: int | None = None,
    defaults: GatewayDefaults,
    actor: Actor = SYSTEM,
) -> Policy:
    values: dict[str, Any] = {}
    if provider is not None:
        if provider not in POLICY_PROVIDERS:
            raise InvalidInput(
                f"provider must be one of {', '.join(POLICY_PROVIDERS)}, not {provider!r}"
            )
        values["provider"] = provider
    if approval_timeout_seconds is not None:
        if approval_timeout_seconds < 1:
            raise InvalidInput("approval_timeout_seconds must be at least 1")
        values["approval_timeout_seconds"] = approval_timeout_seconds
    now = utcnow()
    with tx.begin(engine) as conn:
        store.lock_policy(conn, now)
        before = policy_tx(conn, defaults)
        store.write_policy(conn, {**values, "updated_at": now})
        after = policy_tx(conn, defaults)
        audit.record_change(
            conn,
            actor=actor,
            entity="policy",
            entity_id="default",
            action="update",
            before={"provider": before.provider, "timeout": before.approval_timeout_seconds},
            after={"provider": after.provider, "timeout": after.approval_timeout_seconds},
        )
        return after


# -- what applies to a caller (advisory) --------------------------------------------------------


@dataclass(frozen=True)
class Applicable:
    resolution: resolve.Resolution
    rules: list[RuleView]
    decision: policy.Decision


def rules_for_caller(
    engine: sa.Engine,
    *,
    source: str,
    tool: str,
    agent_id: str | None,
    defaults: GatewayDefaults,
    issuer: str | None = None,
) -> Applicable:
    """The rules that would match this call, in order, and the decision they would give today
    (`issuer`: a verified caller's, see `resolve.resolve`)."""
    with tx.begin(engine) as conn:
        resolution = resolve.resolve(
            conn,
            agent_id,
            default_agent_id=store.default_agent_id(conn),
            unregistered=defaults.unregistered_agents,
            issuer=issuer,
        )
        if resolution.denied:
            decision = policy.Decision("deny", resolution.denied, None)
            return Applicable(resolution, [], decision)
        call = policy.Call(source=source, tool=tool, agent_record_id=resolution.agent_id, input={})
        rules = store.list_rules(conn, enabled_only=True)
        matching = [r for r in rules if policy.rule_matches(r, call)]
        decision = policy.decide(
            rules=rules, call=call, provider=policy_tx(conn, defaults).provider
        )
        return Applicable(resolution, _views(conn, matching), decision)


def actions_for_caller(
    engine: sa.Engine,
    *,
    source: str,
    tools: Sequence[str],
    agent_id: str | None,
    defaults: GatewayDefaults,
    issuer: str | None = None,
) -> dict[str, str]:
    """The action each tool's call would get today by rule or default policy (the MCP proxy's
    `tools/list`): the rule `policy.decide` stops at, `ai_evaluation` included; a denied
    agent gets `auto_deny` for every tool. Resolved as `rules_for_caller` resolves."""
    with tx.begin(engine) as conn:
        resolution = resolve.resolve(
            conn,
            agent_id,
            default_agent_id=store.default_agent_id(conn),
            unregistered=defaults.unregistered_agents,
            issuer=issuer,
        )
        if resolution.denied:
            return dict.fromkeys(tools, AUTO_DENY)
        enabled = store.list_rules(conn, enabled_only=True)
        provider = policy_tx(conn, defaults).provider
    return {
        tool: policy.effective_action(
            rules=enabled,
            call=policy.Call(
                source=source, tool=tool, agent_record_id=resolution.agent_id, input={}
            ),
            provider=provider,
        )
        for tool in tools
    }

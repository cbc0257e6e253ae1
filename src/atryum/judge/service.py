"""LLM configs (the local judges), the rules' judge fields, and a sample call to test a judge.

One transaction per operation. The API key is write-only: stored, sent to the provider, and
otherwise only ever shown as "***".
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from atryum import audit
from atryum.db.types import utcnow
from atryum.errors import InvalidInput, NotFound
from atryum.gateway import tx
from atryum.gateway.models import AI_EVALUATION, Rule
from atryum.identity.principal import SYSTEM, Actor
from atryum.judge import store
from atryum.judge.judge import Judge, Result, adhoc_question
from atryum.judge.models import DEFAULT_TIMEOUT_SECONDS, PROVIDERS, LlmConfig
from atryum.judge.prompt import Subject

MASK = "***"


@dataclass(frozen=True)
class ConfigSpec:
    """A new config, or the fields a PATCH changes (None = unchanged)."""

    name: str | None = None
    provider: str | None = None
    model: str | None = None
    api_key: str | None = None  # "" clears it; MASK leaves it as it is
    base_url: str | None = None
    enabled: bool | None = None
    timeout_seconds: float | None = None


def public_fields(c: LlmConfig) -> dict[str, Any]:
    """A config as answers show it: the key masked."""
    return {
        "id": c.id,
        "name": c.name,
        "provider": c.provider,
        "model": c.model,
        "base_url": c.base_url,
        "api_key": MASK if c.api_key else None,
        "enabled": c.enabled,
        "timeout_seconds": c.timeout_seconds,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def _check_url(url: str) -> str:
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"base_url must be an http(s) URL, not {url!r}")
    if parts.username or parts.password:
        raise InvalidInput("base_url must not carry credentials; put the key in api_key")
    return url


def _merged(current: LlmConfig | None, spec: ConfigSpec) -> dict[str, Any]:
    def pick(name: str, default: Any) -> Any:
        value = getattr(spec, name)
        if value is not None:
            return value
        return getattr(current, name) if current is not None else default

    values: dict[str, Any] = {
        "name": str(pick("name", "")).strip(),
        "provider": pick("provider", ""),
        "model": str(pick("model", "")).strip(),
        "base_url": _check_url(str(pick("base_url", ""))),
        "enabled": bool(pick("enabled", True)),
        "timeout_seconds": float(pick("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
    }
    if spec.api_key is not None and spec.api_key != MASK:
        values["api_key"] = spec.api_key.strip() or None
    elif current is None:
        values["api_key"] = None
    if not values["name"]:
        raise InvalidInput("name must not be empty")
    if values["provider"] not in PROVIDERS:
        raise InvalidInput(
            f"provider must be one of {', '.join(PROVIDERS)}, not {values['provider']!r}"
        )
    if not values["model"]:
        raise InvalidInput("model must not be empty (e.g. gpt-4o-mini, claude-sonnet-4-5)")
    if values["provider"] == "openai_compatible" and not values["base_url"]:
        raise InvalidInput(
            "base_url is required for openai_compatible (e.g. http://localhost:11434/v1 for "
            "Ollama, http://localhost:8000/v1 for vLLM)"
        )
    if not 0 < values["timeout_seconds"] <= 300:
        raise InvalidInput("timeout_seconds must be more than 0 and at most 300")
    return values


def list_configs(engine: sa.Engine) -> list[LlmConfig]:
    with tx.begin(engine) as conn:
        return store.list_configs(conn)


def _require(conn: sa.Connection, config_id: str) -> LlmConfig:
    config = store.get_config(conn, config_id)
    if config is None:
        raise NotFound(f"LLM config {config_id} not found")
    return config


def get_config(engine: sa.Engine, *, config_id: str) -> LlmConfig:
    with tx.begin(engine) as conn:
        return _require(conn, config_id)


def create_config(engine: sa.Engine, *, spec: ConfigSpec, actor: Actor = SYSTEM) -> LlmConfig:
    now = utcnow()
    values = {**_merged(None, spec), "id": _new_id(), "created_at": now, "updated_at": now}
    with tx.begin(engine) as conn:
        store.insert_config(conn, values)
        created = _require(conn, values["id"])
        _audited(conn, actor, "create", before=None, after=created)
        return created


def update_config(
    engine: sa.Engine, *, config_id: str, spec: ConfigSpec, actor: Actor = SYSTEM
) -> LlmConfig:
    with tx.begin(engine) as conn:
        before = _require(conn, config_id)
        values = {**_merged(before, spec), "updated_at": utcnow()}
        store.update_config(conn, config_id, values)
        after = _require(conn, config_id)
        _audited(conn, actor, "update", before=before, after=after)
        return after


def delete_config(engine: sa.Engine, *, config_id: str, actor: Actor = SYSTEM) -> list[str]:
    """Delete; the rules naming it stay (sending calls to a human, flagged). Returns them."""
    with tx.begin(engine) as conn:
        before = _require(conn, config_id)
        store.delete_config(conn, config_id)
        _audited(conn, actor, "delete", before=before, after=None)
        return store.rules_using(conn, config_id)


def rules_using(engine: sa.Engine, *, config_id: str) -> list[str]:
    with tx.begin(engine) as conn:
        return store.rules_using(conn, config_id)


# -- rules' judge fields ----------------------------------------------------------------------


def check_rule_judge(
    *,
    llm_config_id: str | None,
    model_config_cuid: str | None,
    min_confidence: float,
) -> dict[str, Any]:
    """The judge fields of a rule, normalised. As in the Go original a rule may name a config
    that does not exist (yet): it sends its calls to a human and is flagged (`rule_problems`)."""
    if not 0 <= min_confidence <= 1:
        raise InvalidInput("min_confidence must be between 0 and 1")
    return {
        "atryum_llm_config_id": (llm_config_id or "").strip() or None,
        "model_config_cuid": (model_config_cuid or "").strip() or None,
        "min_confidence": float(min_confidence),
    }


def rule_problems(conn: sa.Connection, rules: Sequence[Rule]) -> dict[str, str]:
    """Why each `ai_evaluation` rule's judge cannot answer, if it cannot (the API flags it)."""
    judged = [r for r in rules if r.action == AI_EVALUATION]
    configs = store.configs_by_id(
        conn, (r.atryum_llm_config_id for r in judged if r.atryum_llm_config_id)
    )
    problems: dict[str, str] = {}
    for r in judged:
        if r.atryum_llm_config_id and r.model_config_cuid:
            problems[r.id] = (
                "it names both an LLM config and a ValidMind model config: the LLM config "
                "judges; clear the other"
            )
        if r.atryum_llm_config_id:
            c = configs.get(r.atryum_llm_config_id)
            if c is None:
                problems[r.id] = (
                    f"its LLM config {r.atryum_llm_config_id} does not exist (or was deleted): "
                    "calls go to a human until the rule names another judge"
                )
            elif not c.enabled:
                problems[r.id] = f"its LLM config {c.name!r} is disabled: calls go to a human"
        elif not r.model_config_cuid:
            problems[r.id] = "it names no judge: calls go to a human"
    return problems


# -- trying a judge ---------------------------------------------------------------------------

SAMPLE_CHARTER = (
    "Purpose: review pull requests.\nMay: read repositories and comment on pull requests.\n"
    "May not: merge pull requests or delete branches.\nNeeds a human: any deployment."
)
SAMPLE_SOURCE = "github"
SAMPLE_TOOL = "get_pull_request"


def test_config(
    engine: sa.Engine,
    *,
    config_id: str,
    judge: Judge,
    charter: str = SAMPLE_CHARTER,
    source: str = SAMPLE_SOURCE,
    tool: str = SAMPLE_TOOL,
    arguments: dict[str, Any] | None = None,
) -> tuple[LlmConfig, Result]:
    """One sample call to the model, never cached, with what it answered (even if disabled)."""
    config = get_config(engine, config_id=config_id)
    args = arguments if arguments is not None else {"owner": "acme", "repo": "api", "number": 42}
    subject = Subject(charter=charter, source=source, tool=tool, arguments=args)
    return config, judge.ask(adhoc_question(subject, llm=config), cache=False)


def _new_id() -> str:
    return str(uuid.uuid4())


def _audited(
    conn: sa.Connection,
    actor: Actor,
    action: str,
    *,
    before: LlmConfig | None,
    after: LlmConfig | None,
) -> None:
    """The operator-change audit, in the change's transaction; secrets masked."""
    audit.record_entity_change(
        conn,
        actor=actor,
        entity="llm_config",
        action=action,
        before=before,
        after=after,
        shown=public_fields,
    )

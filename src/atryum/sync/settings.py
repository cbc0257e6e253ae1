"""Sync settings: the scope (org + record type), charter field, default agent and tuning.

Changing the scope retires, in the same transaction, every active synced agent outside the new
scope (reason `out_of_scope`), except dependents, which are kept and flagged.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from atryum import audit
from atryum.agents import store as agent_store
from atryum.config import SyncConfig
from atryum.db.tables import agent_sync_settings
from atryum.db.types import utcnow
from atryum.errors import Conflict, InvalidInput
from atryum.identity.principal import SYSTEM, Actor
from atryum.sync import run_store, store
from atryum.sync.planner import LocalAgent, Thresholds, hold_reason
from atryum.sync.records import column_length

EDITABLE = (
    "org_cuid",
    "org_name",
    "agent_record_type_slug",
    "charter_field_key",
    "default_agent_id",
    "interval_seconds",
    "max_removals",
    "max_removal_ratio",
)


@dataclass(frozen=True)
class SyncSettings:
    org_cuid: str
    org_name: str
    agent_record_type_slug: str
    charter_field_key: str
    default_agent_id: str | None
    interval_seconds: int
    max_removals: int
    max_removal_ratio: float
    updated_at: datetime | None

    @property
    def configured(self) -> bool:
        return bool(self.org_cuid and self.agent_record_type_slug)

    @property
    def source(self) -> tuple[str, str, str]:
        """What decides which records a pull yields and what the sync writes from them."""
        return (self.org_cuid, self.agent_record_type_slug, self.charter_field_key)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.max_removals, self.max_removal_ratio)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScopeChange:
    retire: list[LocalAgent]
    keep: list[LocalAgent]
    scope_changed: bool


def read_settings_tx(
    conn: sa.Connection, defaults: SyncConfig, *, lock: bool = False
) -> SyncSettings:
    row = store.read_settings(conn, lock=lock) or {}

    def pick(key: str, default: Any) -> Any:
        value = row.get(key)
        return default if value is None else value

    return SyncSettings(
        org_cuid=pick("org_cuid", ""),
        org_name=pick("org_name", ""),
        agent_record_type_slug=pick("agent_record_type_slug", ""),
        charter_field_key=pick("charter_field_key", "charter"),
        default_agent_id=row.get("default_agent_id"),
        interval_seconds=int(pick("interval_seconds", defaults.interval_seconds)),
        max_removals=int(pick("max_removals", defaults.max_removals)),
        max_removal_ratio=float(pick("max_removal_ratio", defaults.max_removal_ratio)),
        updated_at=row.get("updated_at"),
    )


def get_settings(engine: sa.Engine, *, defaults: SyncConfig) -> SyncSettings:
    with engine.begin() as conn:
        return read_settings_tx(conn, defaults)


def _validate(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"unknown settings field(s): {', '.join(unknown)}")
    out = dict(changes)
    for key in ("org_cuid", "org_name", "agent_record_type_slug", "charter_field_key"):
        if key in out:
            if not isinstance(out[key], str):
                raise InvalidInput(f"{key} must be a string")
            out[key] = out[key].strip()
            limit = column_length(agent_sync_settings.c[key])
            if len(out[key]) > limit:
                raise InvalidInput(f"{key} must be at most {limit} characters")
    if "charter_field_key" in out and not out["charter_field_key"]:
        raise InvalidInput("charter_field_key must not be empty")
    if out.get("interval_seconds") is not None and int(out["interval_seconds"]) < 5:
        raise InvalidInput("interval_seconds must be at least 5")
    if out.get("max_removals") is not None and int(out["max_removals"]) < 0:
        raise InvalidInput("max_removals must be 0 or more")
    ratio = out.get("max_removal_ratio")
    if ratio is not None and not 0 <= float(ratio) <= 1:
        raise InvalidInput("max_removal_ratio must be between 0 and 1")
    return out


def _scope_change(conn: sa.Connection, merged: SyncSettings, current: SyncSettings) -> ScopeChange:
    changed = (merged.org_cuid, merged.agent_record_type_slug) != (
        current.org_cuid,
        current.agent_record_type_slug,
    )
    if not changed:
        return ScopeChange([], [], False)
    outside = store.active_synced_outside_scope(
        conn, merged.org_cuid, merged.agent_record_type_slug, merged.default_agent_id
    )
    return ScopeChange(
        retire=[a for a in outside if not a.dependent],
        keep=[a for a in outside if a.dependent],
        scope_changed=True,
    )


def _merge(current: SyncSettings, changes: dict[str, Any]) -> SyncSettings:
    data = current.as_dict()
    data.update({k: v for k, v in changes.items()})
    if (
        "org_cuid" in changes
        and "org_name" not in changes
        and changes["org_cuid"] != current.org_cuid
    ):
        data["org_name"] = ""
    return SyncSettings(**data)


def preview_settings(
    engine: sa.Engine, *, changes: dict[str, Any], defaults: SyncConfig
) -> tuple[SyncSettings, ScopeChange, str]:
    """What a change would do: (settings, scope change, why it would be held or "")."""
    changes = _validate(changes)
    with engine.begin() as conn:
        current = read_settings_tx(conn, defaults)
        merged = _merge(current, changes)
        scope = _scope_change(conn, merged, current)
        return merged, scope, _held_reason(conn, scope, merged)


class ScopeChangeHeld(Conflict):
    """The scope change would retire too many agents at once; nothing was saved."""

    def __init__(self, message: str, would_retire: list[LocalAgent]) -> None:
        super().__init__(message)
        self.details = {
            "held": True,
            "would_retire": [
                {"cuid": a.id, "vm_cuid": a.vm_cuid, "name": a.name} for a in would_retire
            ],
        }


def _held_reason(conn: sa.Connection, scope: ScopeChange, merged: SyncSettings) -> str:
    """The sync's mass-retirement valve, for a scope change ("" when it passes): a typo in the
    organization would otherwise retire every synced agent in one transaction."""
    active = store.active_synced_outside_scope(conn, None, "", merged.default_agent_id)
    retirable = sum(1 for a in active if not a.dependent)
    reason = hold_reason(len(scope.retire), len(active), retirable, merged.thresholds)
    return f"the scope change {reason.removeprefix('the pull ')}" if reason else ""


def _hold(reason: str, scope: ScopeChange) -> ScopeChangeHeld:
    names = ", ".join(a.name for a in scope.retire[:20])
    more = f" and {len(scope.retire) - 20} more" if len(scope.retire) > 20 else ""
    return ScopeChangeHeld(
        f"held: {reason}. Nothing was saved. It would retire {names}{more}; review them and "
        'send the change again with "allow_removals": true to apply it.',
        scope.retire,
    )


def update_settings(
    engine: sa.Engine,
    *,
    changes: dict[str, Any],
    defaults: SyncConfig,
    actor: Actor = SYSTEM,
    allow_removals: bool = False,
) -> tuple[SyncSettings, ScopeChange, SyncSettings]:
    """Save (PATCH semantics) and apply the scope change in one transaction. A change that
    would retire more than the sync's thresholds allow is held (nothing saved) unless
    `allow_removals`.

    Returns (new settings, what the scope change did, previous settings).
    """
    changes = _validate(changes)
    now = utcnow()
    with engine.begin() as conn:
        # Locked first: a sync applying right now finishes before the scope is computed here.
        current = read_settings_tx(conn, defaults, lock=True)
        merged = _merge(current, changes)
        if merged.default_agent_id and agent_store.get_agent(conn, merged.default_agent_id) is None:
            raise InvalidInput(f"default_agent_id {merged.default_agent_id} is not a known agent")
        scope = _scope_change(conn, merged, current)
        held = _held_reason(conn, scope, merged)
        if held and not allow_removals:
            raise _hold(held, scope)
        values = {k: getattr(merged, k) for k in EDITABLE}
        values["updated_at"] = now
        store.write_settings(conn, values)
        if scope.scope_changed:
            previous = store.confirmed_at(conn, current.org_cuid)
            retired, kept = store.retire_or_keep(
                conn,
                scope.retire,
                scope.keep,
                reason="out_of_scope",
                now=now,
                confirmed_at=previous,
                default_agent_id=merged.default_agent_id,
            )
            scope = ScopeChange(retire=retired, keep=kept, scope_changed=True)
            store.set_confirmed(conn, None, None)
        if scope.retire or scope.keep:
            run, scope_changes = _scope_run(scope, merged, now)
            run_store.insert_run(conn, run)
            run_store.add_changes(conn, run["id"], scope_changes)
        new = read_settings_tx(conn, defaults)
        audit.record_change(
            conn,
            actor=actor,
            entity="settings",
            entity_id="sync",
            action="update",
            before={k: getattr(current, k) for k in EDITABLE},
            after={
                **{k: getattr(new, k) for k in EDITABLE},
                "retired_agents": [a.id for a in scope.retire],
            },
        )
        return new, scope, current


def _scope_run(
    scope: ScopeChange, new: SyncSettings, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The scope change's own entry in the run history, so every retirement is explained."""
    where = f"{new.org_cuid or '(no org)'} / {new.agent_record_type_slug or '(no record type)'}"

    def change(action: str, a: LocalAgent, reason: str) -> dict[str, Any]:
        return {
            "action": action,
            "agent_id": a.id,
            "vm_cuid": a.vm_cuid,
            "name": a.name,
            "reason": reason,
        }

    changes = [
        change("retired", a, f"out of scope: sync scope changed to {where}") for a in scope.retire
    ] + [
        change("kept_dependent", a, f"out of scope ({where}) but kept: something depends on it")
        for a in scope.keep
    ]
    run = {
        "id": str(uuid.uuid4()),
        "trigger": "settings",
        "requested_by": "settings",
        "status": "succeeded",
        "started_at": now,
        "finished_at": now,
        "retired": len(scope.retire),
        "kept_dependent": len(scope.keep),
        "changes_total": len(changes),
        "warnings": [],
    }
    return run, changes

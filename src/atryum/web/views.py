"""What the pages show: agent badges and states, list filters, run outcomes in words."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from atryum.agents.models import Agent
from atryum.sync.settings import SyncSettings

#: Agent list state filter: value → label. "active" (the default) hides retired agents.
STATES = {
    "active": "Active",
    "kept": "Kept although missing in ValidMind",
    "disabled": "Disabled",
    "retired": "Retired",
    "all": "All, including retired",
}
SOURCES = {"": "Any source", "validmind": "Synced from ValidMind", "manual": "Manual"}

REMOVAL_REASONS = {
    "archived_in_source": "archived or deleted in ValidMind",
    "out_of_scope": "outside the sync scope",
}

FINISHED = frozenset({"succeeded", "partial", "held", "failed", "skipped"})

HEADLINES = {
    "queued": "Queued: waiting for the sync worker",
    "starting": "Starting: waiting for the sync lock",
    "running": "Running: fetching from ValidMind and applying the plan",
    "succeeded": "Succeeded",
    "partial": "Partial: the pull was incomplete, so nothing was retired",
    "held": "Held: the retirements need an operator's review",
    "failed": "Failed: nothing was changed",
    "skipped": "Skipped",
}

#: Change actions in the order a run page lists them, with their headings.
CHANGE_SECTIONS = (
    ("created", "Created"),
    ("updated", "Updated"),
    ("restored", "Restored"),
    ("retired", "Retired"),
    ("kept_dependent", "Kept (something depends on them)"),
    ("held", "Would be retired (held for review)"),
)

COUNTS = (
    ("fetched", "fetched"),
    ("created", "created"),
    ("updated", "updated"),
    ("unchanged", "unchanged"),
    ("restored", "restored"),
    ("retired", "retired"),
    ("kept_dependent", "kept"),
    ("skipped_invalid", "skipped"),
)


@dataclass(frozen=True)
class Badge:
    label: str
    kind: str
    since: datetime | None = None


@dataclass(frozen=True)
class AgentView:
    agent: Agent
    state: str  # active | kept | retired
    badges: list[Badge]
    is_default: bool

    @property
    def source_label(self) -> str:
        a = self.agent
        if not a.synced:
            return "manual"
        return f"synced from ValidMind · {a.vm_organization_name or a.vm_organization_cuid}"


def describe(agent: Agent, scope: SyncSettings) -> AgentView:
    is_default = agent.id == scope.default_agent_id
    badges: list[Badge] = []
    if agent.removed_at is not None:
        reason = REMOVAL_REASONS.get(agent.removal_reason or "", agent.removal_reason or "")
        badges.append(Badge(f"retired: {reason}", "retired", agent.removed_at))
        state = "retired"
    elif agent.source_missing_since is not None:
        badges.append(
            Badge(_kept_label(agent, scope, is_default), "kept", agent.source_missing_since)
        )
        state = "kept"
    else:
        state = "active"
    if not agent.enabled:
        badges.append(Badge("disabled", "disabled"))
    if is_default:
        badges.append(Badge("default agent", "default"))
    return AgentView(agent=agent, state=state, badges=badges, is_default=is_default)


def _kept_label(agent: Agent, scope: SyncSettings, is_default: bool) -> str:
    in_scope = (agent.vm_organization_cuid, agent.vm_record_type_slug) == (
        scope.org_cuid,
        scope.agent_record_type_slug,
    )
    where = "archived in ValidMind" if in_scope else "outside the sync scope"
    if agent.bindings:
        return f"{where} — kept: has bindings"
    if is_default:
        return f"{where} — kept: default agent"
    return f"{where} — nothing depends on it any more; the next sync retires it"


@dataclass(frozen=True)
class ChangeSection:
    action: str
    heading: str
    changes: list[dict[str, Any]]


@dataclass
class RunView:
    run: dict[str, Any]
    headline: str
    counts: list[tuple[str, int]]
    sections: list[ChangeSection] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.run["status"])

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def held(self) -> list[dict[str, Any]]:
        return next((s.changes for s in self.sections if s.action == "held"), [])

    @property
    def summary(self) -> str:
        """The counts in words, e.g. `4 records fetched from ValidMind: 3 unchanged, 1 retired.`"""
        fetched, *rest = self.counts
        parts = [f"{n} {label}" for label, n in rest if n]
        held = int(self.run.get("held") or 0)
        if held:
            parts.append(f"{held} held for review")
        changed = ", ".join(parts)
        noun = "record" if fetched[1] == 1 else "records"
        return f"{fetched[1]} {noun} fetched from ValidMind: {changed or 'nothing changed'}."

    @property
    def duration(self) -> str:
        started, finished = self.run.get("started_at"), self.run.get("finished_at")
        if not (started and finished):
            return "—"
        seconds = (finished - started).total_seconds()
        if seconds < 1:
            return f"{seconds * 1000:.0f} ms"
        if seconds < 120:
            return f"{seconds:.1f} s"
        return f"{seconds / 60:.1f} min"


def run_view(run: dict[str, Any]) -> RunView:
    status = str(run["status"])
    changes = run.get("changes") or []
    sections = [
        ChangeSection(action, heading, picked)
        for action, heading in CHANGE_SECTIONS
        if (picked := [c for c in changes if c.get("action") == action])
    ]
    return RunView(
        run=run,
        headline=HEADLINES.get(status, status),
        counts=[(label, int(run.get(key) or 0)) for key, label in COUNTS],
        sections=sections,
    )

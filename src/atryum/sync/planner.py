"""The sync plan: a pure function of the local registry and a pull from ValidMind.

Nothing here touches the database or the network, so the rules that protect the registry
(manual agents are never seen, dependents are kept, incomplete pulls retire nothing, mass
retirements are held) can be checked exhaustively by property tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# A charter value that was not a string: the previous charter is kept.
KEEP_CHARTER = None


# The two record types of a plan are named tuples, not frozen dataclasses: a sync holds one of
# each per agent (100 000 at a time), and a named tuple is built in about half the time (no
# `object.__setattr__` per field) and is one object for the garbage collector, not two (no
# `__dict__`). The run also keeps them out of the collector's full passes (`gc_hold`).
class PulledRecord(NamedTuple):
    cuid: str
    name: str
    description: str
    charter: str | None  # None: keep the previous charter (the source value had the wrong type)
    source_hash: str


class LocalAgent(NamedTuple):
    """A synced agent of the configured org, as far as planning needs it."""

    id: str
    vm_cuid: str
    name: str
    source_hash: str | None
    retired: bool
    missing: bool  # source_missing_since is set
    dependent: bool  # has a managed-agent binding or is the default agent


@dataclass(frozen=True)
class Thresholds:
    max_removals: int
    max_removal_ratio: float


@dataclass
class Plan:
    creates: list[PulledRecord] = field(default_factory=list)
    updates: list[tuple[LocalAgent, PulledRecord]] = field(default_factory=list)
    restores: list[tuple[LocalAgent, PulledRecord]] = field(default_factory=list)
    unchanged: list[LocalAgent] = field(default_factory=list)
    retires: list[LocalAgent] = field(default_factory=list)
    keeps: list[LocalAgent] = field(default_factory=list)
    held: list[LocalAgent] = field(default_factory=list)
    held_reason: str = ""
    active_before: int = 0

    complete: bool = False

    @property
    def confirms_everyone(self) -> bool:
        """After applying, every active, non-flagged agent of the org is in the pull."""
        return self.complete and not self.held


def source_hash(*, name: str, description: str, charter: Any, org_name: str, slug: str) -> str:
    """Fingerprint of the source-owned fields; a non-text charter hashes by its type only."""
    charter_part = charter if isinstance(charter, str) else f"\x00kept:{type(charter).__name__}"
    payload = "\x1f".join((name, description, charter_part, org_name, slug))
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def make_plan(
    local: list[LocalAgent],
    records: list[PulledRecord],
    *,
    complete: bool,
    thresholds: Thresholds,
    allow_removals: bool,
) -> Plan:
    plan = Plan(active_before=sum(1 for a in local if not a.retired), complete=complete)
    by_cuid = {a.vm_cuid: a for a in local}
    present: set[str] = set()
    for rec in records:
        present.add(rec.cuid)
        agent = by_cuid.get(rec.cuid)
        if agent is None:
            plan.creates.append(rec)
        elif agent.retired:
            plan.restores.append((agent, rec))
        elif agent.source_hash != rec.source_hash or agent.missing:
            plan.updates.append((agent, rec))
        else:
            plan.unchanged.append(agent)
    if not complete:
        return plan
    for agent in local:
        if agent.retired or agent.vm_cuid in present:
            continue
        (plan.keeps if agent.dependent else plan.retires).append(agent)
    retirable = sum(1 for a in local if not a.retired and not a.dependent)
    reason = hold_reason(len(plan.retires), plan.active_before, retirable, thresholds)
    if reason and not allow_removals:
        plan.held, plan.retires, plan.held_reason = plan.retires, [], reason
    return plan


def hold_reason(retiring: int, active: int, retirable: int, t: Thresholds) -> str:
    """Why the retirements are held ("" when they are not).

    `retirable` counts the active agents nothing depends on: dependents are never retired, so an
    answer that leaves out every other agent (an empty answer, say) is held even when a few bound
    agents make it look like less than everything. With a single retirable agent that means its
    retirement waits for `allow_removals` too: one record going is indistinguishable from an
    empty answer.
    """
    if retiring == 0:
        return ""
    if retiring == retirable:
        return (
            f"the pull would retire every one of the {retirable} active synced agents that "
            "nothing depends on; ValidMind answering with none of them looks like a fault "
            "rather than a real change"
        )
    if retiring > t.max_removals and retiring > t.max_removal_ratio * active:
        return (
            f"the pull would retire {retiring} of {active} active synced agents, more than "
            f"max_removals ({t.max_removals}) and more than max_removal_ratio "
            f"({t.max_removal_ratio:.0%})"
        )
    return ""

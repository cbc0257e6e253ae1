"""Badges, filters and run wording of the pages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from atryum.agents.models import Agent, Binding
from atryum.sync.settings import SyncSettings
from atryum.web.views import describe, run_view

NOW = datetime(2025, 3, 1, 14, 5, tzinfo=UTC)
SCOPE = SyncSettings("org-1", "Org One", "ai-agent", "charter", "default-id", 300, 10, 0.2, None)
SYNCED = Agent(
    id="a1",
    source="validmind",
    vm_organization_cuid="org-1",
    vm_organization_name="Org One",
    vm_record_type_slug="ai-agent",
    vm_cuid="c1",
    name="Claims",
    description="Routes claims",
    charter="",
    enabled=True,
    tags=["prod"],
    source_hash=None,
    synced_at=NOW,
    removed_at=None,
    removal_reason=None,
    source_missing_since=None,
    created_at=NOW,
    updated_at=NOW,
    agent_ids=["jwt-claims"],
)


def _labels(agent: Agent) -> list[str]:
    return [b.label for b in describe(agent, SCOPE).badges]


def test_state_badges_say_why_an_agent_is_kept_or_retired() -> None:
    binding = Binding("b1", "a1", "acme", "agent_01", "", NOW)
    missing = replace(SYNCED, source_missing_since=NOW)
    assert describe(SYNCED, SCOPE).state == "active" and _labels(SYNCED) == []
    assert _labels(replace(missing, bindings=[binding])) == [
        "archived in ValidMind — kept: has bindings"
    ]
    assert _labels(replace(missing, id="default-id")) == [
        "archived in ValidMind — kept: default agent",
        "default agent",
    ]
    assert _labels(replace(missing, vm_record_type_slug="model", bindings=[binding])) == [
        "outside the sync scope — kept: has bindings"
    ]
    assert "the next sync retires it" in _labels(missing)[0]
    retired = replace(SYNCED, removed_at=NOW, removal_reason="out_of_scope", enabled=False)
    assert _labels(retired) == ["retired: outside the sync scope", "disabled"]
    assert describe(SYNCED, SCOPE).source_label == "synced from ValidMind · Org One"


def _run(**fields: Any) -> dict[str, Any]:
    return {"status": "succeeded", "started_at": NOW, "finished_at": NOW, **fields}


def test_runs_are_told_in_words_and_numbers() -> None:
    held = run_view(
        _run(
            status="held",
            fetched=1,
            unchanged=1,
            held=1,
            changes=[{"action": "held", "name": "Gone", "agent_id": "a2", "reason": "r"}],
        )
    )
    assert held.summary == "1 record fetched from ValidMind: 1 unchanged, 1 held for review."
    assert [c["name"] for c in held.held] == ["Gone"]
    assert run_view(_run(fetched=0)).summary == (
        "0 records fetched from ValidMind: nothing changed."
    )
    durations = [
        run_view(_run(finished_at=NOW + timedelta(seconds=s))).duration for s in (0.25, 3, 600)
    ]
    assert durations == ["250 ms", "3.0 s", "10.0 min"]
    assert run_view(_run(finished_at=None, status="running")).duration == "—"
    assert not run_view(_run(status="running")).finished

"""Registry rules on both dialects."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from atryum.agents import service
from atryum.agents.service import BindingInput
from atryum.db.tables import agents as agents_table
from atryum.db.types import utcnow
from atryum.errors import Conflict, InvalidInput, NotFound


def _synced(engine: sa.Engine, cuid: str = "vm-1", *, removed: bool = False) -> str:
    now = utcnow()
    agent_id = f"id-{cuid}"
    with engine.begin() as conn:
        conn.execute(
            agents_table.insert().values(
                id=agent_id,
                source="validmind",
                vm_organization_cuid="org",
                vm_cuid=cuid,
                name="Synced",
                charter="from VM",
                tags=[],
                created_at=now,
                updated_at=now,
                removed_at=now if removed else None,
                removal_reason="archived_in_source" if removed else None,
            )
        )
    return agent_id


def test_manual_agent_round_trip(engine: sa.Engine) -> None:
    a = service.create_manual_agent(
        engine,
        name=" Helper ",
        agent_ids=["rt-1", "rt-2"],
        tags=["x"],
        bindings=[BindingInput("default", "cma-1", "Claude helper")],
    )
    assert a.name == "Helper" and a.enabled and a.source == "manual" and a.vm_cuid is None
    got = service.get_agent(engine, agent_id=a.id)
    assert got.agent_ids == ["rt-1", "rt-2"] and got.tags == ["x"]
    assert [b.external_agent_id for b in got.bindings] == ["cma-1"]
    assert got.created_at.tzinfo is not None


def test_patch_is_partial(engine: sa.Engine) -> None:
    a = service.create_manual_agent(engine, name="A", charter="c", agent_ids=["r"], tags=["t"])
    b = service.update_agent(engine, agent_id=a.id, changes={"enabled": False})
    assert (b.name, b.charter, b.agent_ids, b.tags, b.enabled) == ("A", "c", ["r"], ["t"], False)


def test_runtime_id_belongs_to_one_agent(engine: sa.Engine) -> None:
    a = service.create_manual_agent(engine, name="A", agent_ids=["shared"])
    with pytest.raises(Conflict, match="shared"):
        service.create_manual_agent(engine, name="B", agent_ids=["shared"])
    names = [x.name for x in service.list_agents(engine)]
    assert names == ["A"], "the failed create must leave nothing behind"
    assert service.get_agent(engine, agent_id=a.id).agent_ids == ["shared"]


def test_runtime_id_unique_in_the_database(engine: sa.Engine) -> None:
    from atryum.db.tables import agent_runtime_ids

    a = service.create_manual_agent(engine, name="A", agent_ids=["rt"])
    b = service.create_manual_agent(engine, name="B")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(agent_runtime_ids.insert().values(runtime_id="rt", agent_id=b.id, position=0))
    assert service.get_agent(engine, agent_id=a.id).agent_ids == ["rt"]


def test_binding_belongs_to_one_agent(engine: sa.Engine) -> None:
    service.create_manual_agent(engine, name="A", bindings=[BindingInput("acct", "x", "")])
    with pytest.raises(Conflict, match="already bound"):
        service.create_manual_agent(engine, name="B", bindings=[BindingInput("acct", "x", "")])


def test_synced_source_fields_are_read_only(engine: sa.Engine) -> None:
    agent_id = _synced(engine)
    with pytest.raises(Conflict, match="come from ValidMind"):
        service.update_agent(engine, agent_id=agent_id, changes={"charter": "mine now"})
    updated = service.update_agent(
        engine, agent_id=agent_id, changes={"tags": ["prod"], "agent_ids": ["jwt-1"]}
    )
    assert updated.charter == "from VM" and updated.tags == ["prod"]


def test_delete_rules(engine: sa.Engine) -> None:
    active = _synced(engine, "vm-a")
    retired = _synced(engine, "vm-r", removed=True)
    manual = service.create_manual_agent(engine, name="M", bindings=[BindingInput("d", "b", "")])
    with pytest.raises(Conflict, match="managed by ValidMind"):
        service.delete_agent(engine, agent_id=active)
    service.delete_agent(engine, agent_id=retired)
    service.delete_agent(engine, agent_id=manual.id)
    with pytest.raises(NotFound):
        service.get_agent(engine, agent_id=retired)
    with engine.begin() as conn:  # bindings cascade (foreign keys are on, on SQLite too)
        n = conn.execute(sa.text("SELECT count(*) FROM managed_agent_bindings")).scalar_one()
    assert n == 0


def test_list_hides_retired_unless_asked(engine: sa.Engine) -> None:
    _synced(engine, "vm-a")
    _synced(engine, "vm-r", removed=True)
    assert len(service.list_agents(engine)) == 1
    assert len(service.list_agents(engine, include_removed=True)) == 2


def test_empty_name_refused(engine: sa.Engine) -> None:
    with pytest.raises(InvalidInput):
        service.create_manual_agent(engine, name="   ")


def test_agent_pages_filter_in_the_database_and_count(engine: sa.Engine) -> None:
    """Agent lists are paged in name order; text, source and state filters combine."""
    from atryum.agents.store import AgentFilter

    for i in range(7):
        service.create_manual_agent(engine, name=f"Bot {i}", tags=["ops"] if i % 2 else [])
    service.create_manual_agent(engine, name="Claims", agent_ids=["JWT-claims"], enabled=False)
    _synced(engine, "vm-1")
    _synced(engine, "vm-gone", removed=True)

    page, total = service.page_agents(engine, flt=AgentFilter(), offset=2, limit=3)
    assert total == 9 and [a.name for a in page] == ["Bot 2", "Bot 3", "Bot 4"]

    def names(**flt: str) -> list[str]:
        found, n = service.page_agents(engine, flt=AgentFilter(**flt), offset=0, limit=50)
        assert n == len(found)
        return [a.name for a in found]

    assert names(text="jwt-CLAIMS") == ["Claims"]  # runtime ids, case-insensitively
    assert names(text="OPS") == ["Bot 1", "Bot 3", "Bot 5"]  # tags
    assert names(text="vm-") == ["Synced"]  # the ValidMind cuid; retired ones hidden
    assert names(text="vm-", state="all") == ["Synced", "Synced"]
    assert names(text="%") == [] and names(text="_") == []  # wildcards are literal
    assert names(source="validmind") == ["Synced"]
    assert names(state="disabled") == ["Claims"]
    assert [
        a.vm_cuid
        for a in service.page_agents(engine, flt=AgentFilter(state="retired"), offset=0, limit=5)[0]
    ] == ["vm-gone"]
    with pytest.raises(InvalidInput):
        service.page_agents(engine, flt=AgentFilter(state="bogus"), offset=0, limit=5)

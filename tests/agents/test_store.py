"""Agent search through its substring index (db 0010) on both dialects: every write reaches the
index, and the index never hides or adds a match."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atryum.agents import service, store
from atryum.agents.store import AgentFilter
from atryum.db import migrate
from atryum.db.tables import agents
from atryum.db.types import utcnow
from tests.support import engine_at


def _names(engine: sa.Engine, text: str, *, names_only: bool = False) -> list[str]:
    flt = AgentFilter(text=text, state="all", names_only=names_only)
    if names_only:
        rows, total = service.search_agents(engine, flt=flt, offset=0, limit=500)
        found = [r["name"] for r in rows]
    else:
        page, total = service.page_agents(engine, flt=flt, offset=0, limit=500)
        found = [a.name for a in page]
    assert total == len(found)
    return found


def _synced(engine: sa.Engine, cuid: str, name: str) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            agents.insert().values(
                id=f"id-{cuid}",
                source="validmind",
                vm_organization_cuid="org",
                vm_organization_name="Acme Bank",
                vm_cuid=cuid,
                name=name,
                tags=["model-risk"],
                created_at=now,
                updated_at=now,
            )
        )


def test_search_follows_every_write(engine: sa.Engine) -> None:
    a = service.create_manual_agent(
        engine,
        name="Ledger Reader",
        description="reads the general ledger",
        agent_ids=["claude-ledger-01"],
        tags=["finance-ops"],
    )
    _synced(engine, "vm-cuid-7", "Payments Bot")
    assert _names(engine, "LEDGER READ") == ["Ledger Reader"]  # name, case-insensitively
    assert _names(engine, "general led") == ["Ledger Reader"]  # description
    assert _names(engine, "ledger-01") == ["Ledger Reader"]  # runtime id
    assert _names(engine, "finance-o") == ["Ledger Reader"]  # tags
    assert _names(engine, "acme ban") == ["Payments Bot"]  # organization name
    assert _names(engine, "cuid-7", names_only=True) == ["Payments Bot"]  # ValidMind cuid
    assert _names(engine, "general", names_only=True) == []  # a picker: name and cuid only

    service.update_agent(
        engine,
        agent_id=a.id,
        changes={"name": "Journal Writer", "agent_ids": ["codex-journal"], "tags": []},
    )
    assert _names(engine, "ledger read") == []
    assert _names(engine, "journal wr") == ["Journal Writer"]
    assert _names(engine, "claude-ledger") == []
    assert _names(engine, "codex-jo") == ["Journal Writer"]
    assert _names(engine, "finance") == []

    with engine.begin() as conn:  # the sync writes source fields with set-based SQL
        conn.execute(agents.update().where(agents.c.vm_cuid == "vm-cuid-7").values(name="Payouts"))
    assert _names(engine, "payments") == [] and _names(engine, "payou") == ["Payouts"]

    service.delete_agent(engine, agent_id=a.id)
    assert _names(engine, "journal") == [] and _names(engine, "general led") == []
    _synced(engine, "vm-cuid-8", "Journal Writer")  # a new row is not answered by the old one
    assert _names(engine, "journal wr") == ["Journal Writer"]
    assert _names(engine, "general led") == []


def test_index_is_what_the_query_uses(engine: sa.Engine) -> None:
    """PostgreSQL takes the trigram indexes only for the very expressions they were built on;
    SQLite reads the candidates from its FTS5 table, then fetches those agents by id."""
    if engine.dialect.name == "sqlite":
        _sqlite_search_reads_the_index(engine)
        return
    with engine.connect() as conn:  # with scans and plain index scans off, only a bitmap
        conn.execute(sa.text("SET enable_seqscan = off"))  # scan of a usable index is left
        conn.execute(sa.text("SET enable_indexscan = off"))
        narrowed, exact = store._where(conn, AgentFilter("ledger", state="all"))
        assert narrowed is not None
        for q, index in (
            (sa.select(agents.c.id).where(narrowed, *exact), "ix_agents_search"),
            # a full search's runtime-id lookup
            (store._by_runtime_id(store._like("ledger")), "ix_agent_runtime_ids_search"),
        ):
            compiled = q.compile(conn)
            plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars())
            assert index in plan and "Seq Scan" not in plan.split("SubPlan")[0], plan


def _sqlite_search_reads_the_index(engine: sa.Engine) -> None:
    for i in range(20):
        _synced(engine, f"vm-{i}", f"Ledger Agent {i:02}" if i % 5 == 0 else f"Agent {i:02}")
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        sent.append((statement, params))

    with engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", record)
        narrowed, exact = store._where(conn, AgentFilter("ledger", state="all"))
        sa.event.remove(conn, "before_cursor_execute", record)
        # the one lookup of the substring index (the other statement is the BEGIN)
        [(candidates, params)] = [(sql, args) for sql, args in sent if sql.startswith("SELECT")]

        def plan(sql: str, args: Any = ()) -> str:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", args).all()
            return " | ".join(str(row[-1]) for row in rows)

        assert "SCAN agent_search VIRTUAL TABLE INDEX" in plan(candidates, params)
        assert narrowed is not None
        where = [narrowed, *exact]
        page = store._page_ids(where, 0, 10).compile(conn, compile_kwargs={"literal_binds": True})
        page_plan = plan(str(page))
        assert "SCAN agents" not in page_plan and "sqlite_autoindex_agents_1" in page_plan
        assert conn.execute(store._page_ids(where, 0, 10)).scalars().all() == [
            f"id-vm-{i}" for i in (0, 5, 10, 15)
        ]


def test_a_picker_search_matching_most_agents_counts_from_the_name_index(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past _MAX_CANDIDATES the picker's filter runs on every agent: on PostgreSQL from the
    name index alone (0014: it holds the cuid), not from every agent's row and charter."""
    for i in range(12):
        _synced(engine, f"vm-{i}", f"Agent {i:02}")
    monkeypatch.setattr(store, "_MAX_CANDIDATES", 5)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE agents")  # the visibility map, as autovacuum
    for state, index in (("active", "ix_agents_active_key"), ("all", "ix_agents_all_key")):
        with engine.connect() as conn:
            flt = AgentFilter("agent", state=state, names_only=True)
            where, total = store._selected(conn, flt)
            assert total == 12
            if engine.dialect.name == "postgresql":
                _, exact = store._where(conn, flt)
                assert str(sa.and_(*where)) == str(sa.and_(*exact))
                conn.exec_driver_sql("SET enable_seqscan = off")  # as on 100 000 agents
                conn.exec_driver_sql("SET enable_bitmapscan = off")
                count = sa.select(sa.func.count()).select_from(agents).where(*where)
                compiled = count.compile(conn, compile_kwargs={"literal_binds": True})
                plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {compiled}").scalars())
                assert f"Index Only Scan using {index}" in plan, plan
            else:
                assert store._sqlite_candidates(conn, "agent", "%agent%", runtime_ids=False) is None
        rows, total = service.search_agents(engine, flt=flt, offset=10, limit=5)
        assert total == 12 and [r["name"] for r in rows] == ["Agent 10", "Agent 11"]


def test_a_search_matching_most_agents_reads_runtime_ids_once(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past _MAX_CANDIDATES a full search filters every agent; on PostgreSQL the agents with a
    matching runtime id are read first, not looked up per agent (a correlated subquery, which
    also keeps the scan from running in parallel)."""
    for i in range(12):
        _synced(engine, f"vm-{i}", f"Agent {i:02}")
    service.create_manual_agent(engine, name="Zed", agent_ids=["claude-agent-9"])
    monkeypatch.setattr(store, "_MAX_CANDIDATES", 5)
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    with engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", record)
        where, total = store._selected(conn, AgentFilter("agent"))
        sa.event.remove(conn, "before_cursor_execute", record)
        assert total == 13
        if engine.dialect.name == "postgresql":
            assert len([sql for sql in sent if "agent_runtime_ids" in sql]) == 1, sent
            count = sa.select(sa.func.count()).select_from(agents).where(*where)
            compiled = count.compile(conn, compile_kwargs={"literal_binds": True})
            plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {compiled}").scalars())
            assert "SubPlan" not in plan and "agent_runtime_ids" not in plan, plan
    page, total = service.page_agents(engine, flt=AgentFilter("agent"), offset=10, limit=5)
    assert total == 13 and [a.name for a in page] == ["Agent 10", "Agent 11", "Zed"]


@pytest.mark.parametrize("state", ["active", "kept", "disabled", "all", "retired"])
def test_a_page_is_read_in_index_order_never_sorted(engine: sa.Engine, state: str) -> None:
    """A deep page of every agent list walks a name index (on PostgreSQL the active and the
    every-state lists from the index alone: it does no index-only scan on an expression index);
    nothing sorts every agent (0012, 0013). PostgreSQL sorts the retired agents, only them."""
    for i in range(30):
        _synced(engine, f"vm-{i}", f"Agent {i:02}")
    with engine.begin() as conn:  # a few retired ones, for the lists that show them
        conn.execute(
            agents.update()
            .where(agents.c.vm_cuid.in_(["vm-3", "vm-11", "vm-20"]))
            .values(removed_at=utcnow(), removal_reason="archived_in_source")
        )
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE agents")  # the visibility map, as autovacuum
    with engine.connect() as conn:
        if postgres:  # on 30 rows a scan is cheaper: take the plan a big registry gets
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_bitmapscan = off")
        q = store._page_ids(store._where(conn, AgentFilter(state=state))[1], 10, 5)
        compiled = q.compile(conn, compile_kwargs={"literal_binds": True})
        explain = "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN"
        rows = conn.exec_driver_sql(f"{explain} {compiled}").all()
        plan = "\n".join(str(row[-1]) for row in rows)
        if postgres and state == "retired":  # it reads and sorts the retired agents only
            assert "Index Cond: (removed_at IS NOT NULL)" in plan, plan
        elif postgres:
            assert "Sort" not in plan, plan
            index = {"active": "ix_agents_active_key", "all": "ix_agents_all_key"}.get(state)
            if index:
                assert f"Index Only Scan using {index}" in plan, plan
        else:
            assert "TEMP B-TREE" not in plan, plan
            if state == "retired":  # the index walked holds the state: no row read to filter
                walked = re.search(r"USING (?:COVERING )?INDEX (\w+)", plan)
                assert walked, plan
                info = conn.exec_driver_sql(f"PRAGMA index_info({walked[1]})").all()
                assert "removed_at" in [row[2] for row in info], plan
        ids = conn.execute(q).scalars().all()
    if state == "active":
        assert ids == [f"id-vm-{i}" for i in (12, 13, 14, 15, 16)]
    if state == "all":
        assert ids == [f"id-vm-{i}" for i in range(10, 15)]


def test_0010_indexes_the_agents_already_there(db_url: str) -> None:
    engine = engine_at(db_url, "0010_agent_search-1")
    _synced(engine, "vm-old", "Registered Before")
    migrate.upgrade(engine)
    assert _names(engine, "before") == ["Registered Before"]
    engine.dispose()


# Characters whose case folding, LIKE wildcards or FTS5 quoting could part the index from the
# exact match: `ß` folds to two letters, `İ` lower-cases to two code points.
ALPHABET = 'abAB ß\u1e9e\u0130iI\u00e9\u00c9"%_\\-\n*:'
texts = st.text(ALPHABET, min_size=1, max_size=8)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(texts, min_size=1, max_size=6),
    descriptions=st.lists(texts, min_size=6, max_size=6),
    query=texts,
    names_only=st.booleans(),
)
def test_the_index_never_hides_or_adds_a_match(
    engine: sa.Engine,
    names: list[str],
    descriptions: list[str],
    query: str,
    names_only: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A search gives the agents a scan of every agent gives, whatever the text."""
    with engine.begin() as conn:
        conn.execute(agents.delete())
    for i, name in enumerate(names):
        if not name.strip():
            continue
        service.create_manual_agent(
            engine, name=name, description=descriptions[i], agent_ids=[f"rt{i}{name[:3]}"]
        )
    indexed = sorted(_names(engine, query, names_only=names_only))
    with monkeypatch.context() as m:
        m.setattr(store, "_MAX_CANDIDATES", 0)  # past the candidates: the filter on every agent
        assert sorted(_names(engine, query, names_only=names_only)) == indexed
    with monkeypatch.context() as m:
        m.setattr(store, "_INDEXED_LENGTH", 10**6)  # every search scans
        scanned = sorted(_names(engine, query, names_only=names_only))
    assert indexed == scanned

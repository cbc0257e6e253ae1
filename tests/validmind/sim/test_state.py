"""The simulator's in-memory state: seeding, records, faults, listeners, thread safety."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from atryum.validmind import sim
from atryum.validmind.sim.state import (
    Change,
    SimConflictError,
    SimNotFoundError,
    SimState,
    bulk_charter,
    validate_faults,
)

ORG = "org-1"
SLUG = "ai-agent"


def demo_seed() -> dict[str, Any]:
    seed: dict[str, Any] = json.loads(
        (Path(sim.__file__).parent / "demo_seed.json").read_text(encoding="utf-8")
    )
    return seed


@pytest.fixture
def state() -> SimState:
    s = SimState()
    s.add_org(ORG, "Org One")
    s.add_org("org-2", "Org Two")
    s.add_record_type(ORG, SLUG, "AI Agent")
    s.add_record_type(ORG, "model", "Model")
    s.add_custom_field(ORG, SLUG, "charter", "Charter", "long-text")
    return s


def active_cuids(state: SimState, slug: str = SLUG) -> list[str]:
    records, total = state.active_records(ORG, slug)
    assert total == len(records)
    return [r["cuid"] for r in records]


def test_demo_seed_has_the_documented_shape() -> None:
    seed = demo_seed()
    state = SimState.from_seed(seed)
    assert state.orgs() == [{"cuid": "org-acme", "name": "Acme Bank"}]
    slugs = {rt["slug"]: rt for rt in state.record_types("org-acme")}
    assert set(slugs) == {"ai-agent", "model"}
    assert slugs["ai-agent"]["name"] == "AI Agent"
    fields = {f["key"]: f["field_type"] for f in state.custom_fields("org-acme", "ai-agent")}
    assert fields == {"charter": "long-text", "description": "text"}

    agents, total = state.active_records("org-acme", "ai-agent")
    assert total == 5
    names = {a["name"] for a in agents}
    assert {"Claims Triage Assistant", "Code Review Bot", "Data Pipeline Operator"} <= names
    charters = []
    for agent in agents:
        cf = agent["custom_fields"]
        charter = cf.get("charter") or cf["model"]["charter"]
        assert 400 <= len(charter) <= 900, agent["name"]
        assert "May not" in charter and "human" in charter
        assert isinstance(cf["description"], str) and agent["cuid"]
        charters.append(charter)
    assert sum("model" in a["custom_fields"] for a in agents) == 1
    models, total = state.active_records("org-acme", "model")
    assert total == 1 and len(models) == 1


def test_from_seed_passes_credentials_and_statuses() -> None:
    seed = {
        "orgs": [
            {
                "cuid": "o",
                "name": "O",
                "record_types": [
                    {
                        "slug": "s",
                        "name": "S",
                        "cuid": "rt-1",
                        "records": [
                            {"cuid": "a", "name": "A", "custom_fields": {"charter": "x"}},
                            {"cuid": "b", "name": "B", "status": "archived"},
                            {"cuid": "c", "name": "C", "status": "deleted"},
                        ],
                    }
                ],
            }
        ]
    }
    state = SimState.from_seed(seed, machine_key="mk", machine_secret="ms")
    assert state.check_machine("mk", "ms") and not state.check_machine("mk", "nope")
    assert state.record_types("o") == [{"cuid": "rt-1", "slug": "s", "name": "S"}]
    records, total = state.active_records("o", "s")
    assert [r["cuid"] for r in records] == ["a"] and total == 1
    assert {r["cuid"]: r["status"] for r in state.dump()["records"]} == {
        "a": "active",
        "b": "archived",
        "c": "deleted",
    }
    bad = {
        "orgs": [
            {
                "cuid": "o",
                "name": "O",
                "record_types": [
                    {"slug": "s", "name": "S", "records": [{"name": "X", "status": "gone"}]}
                ],
            }
        ]
    }
    with pytest.raises(ValueError, match="unknown status"):
        SimState.from_seed(bad)


def test_credentials() -> None:
    with pytest.raises(ValueError, match="api_secret"):
        SimState(api_key="k")
    with pytest.raises(ValueError, match="api_key"):
        SimState(api_secret="s")
    state = SimState(api_key="k", api_secret="s")
    assert state.api_key_org is None
    state.add_org("first", "First")
    state.add_org("second", "Second")
    assert state.api_key_org == "first"  # default: bound to the first org
    assert state.check_api_key("k", "s") and not state.check_api_key("k", "x")
    assert not SimState().check_api_key("k", "s")
    assert SimState(api_key="k", api_secret="s", api_key_org="second").api_key_org == "second"


def test_schema_requires_parents(state: SimState) -> None:
    with pytest.raises(SimNotFoundError, match="organization 'nope'"):
        state.add_record_type("nope", SLUG, "X")
    with pytest.raises(SimNotFoundError, match="record type 'nope'"):
        state.add_custom_field(ORG, "nope", "k", "K", "text")
    with pytest.raises(SimNotFoundError):
        state.create_record(ORG, "nope", name="X")
    with pytest.raises(SimNotFoundError):
        state.custom_fields("org-2", SLUG)
    with pytest.raises(ValueError):
        state.add_org("", "empty")


def test_adding_again_updates_and_keeps_the_cuid(state: SimState) -> None:
    before = {rt["slug"]: rt["cuid"] for rt in state.record_types(ORG)}
    state.add_record_type(ORG, SLUG, "Agents")
    state.add_org(ORG, "Renamed")
    state.add_custom_field(ORG, SLUG, "charter", "Mandate", "text")
    after = {rt["slug"]: rt for rt in state.record_types(ORG)}
    assert after[SLUG]["cuid"] == before[SLUG] and after[SLUG]["name"] == "Agents"
    assert state.org(ORG)["name"] == "Renamed"
    assert state.custom_fields(ORG, SLUG) == [
        {"key": "charter", "name": "Mandate", "field_type": "text"}
    ]


def test_record_lifecycle(state: SimState) -> None:
    a = state.create_record(ORG, SLUG, name="A", custom_fields={"charter": "c", "x": 1})
    b = state.create_record(ORG, SLUG, name="B", cuid="fixed-b")
    c = state.create_record(ORG, SLUG, name="C")
    assert b["cuid"] == "fixed-b" and a["cuid"] and a["cuid"] != c["cuid"]
    assert a["status"] == "active" and a["org_cuid"] == ORG and a["record_type_slug"] == SLUG
    assert active_cuids(state) == [a["cuid"], "fixed-b", c["cuid"]]
    assert active_cuids(state, "model") == []

    updated = state.update_record(a["cuid"], custom_fields={"x": 2, "y": 3})
    assert updated["custom_fields"] == {"charter": "c", "x": 2, "y": 3}  # merged
    assert updated["name"] == "A"
    assert state.update_record(a["cuid"], name="A2")["name"] == "A2"

    state.archive_record(a["cuid"])
    state.delete_record(c["cuid"])
    assert active_cuids(state) == ["fixed-b"]
    assert state.get_record(a["cuid"])["status"] == "archived"
    assert state.get_record(c["cuid"])["status"] == "deleted"

    state.unarchive_record(a["cuid"])  # comes back in its place, same cuid and fields
    assert active_cuids(state) == [a["cuid"], "fixed-b"]
    assert state.get_record(a["cuid"])["custom_fields"]["y"] == 3

    # deleted records are gone for every change, but their cuid may be reused
    for change in (state.archive_record, state.unarchive_record, state.delete_record):
        with pytest.raises(SimNotFoundError):
            change(c["cuid"])
    with pytest.raises(SimNotFoundError):
        state.update_record(c["cuid"], name="X")
    again = state.create_record(ORG, "model", name="C again", cuid=c["cuid"])
    assert again["status"] == "active" and active_cuids(state, "model") == [c["cuid"]]
    assert c["cuid"] not in active_cuids(state)

    with pytest.raises(SimConflictError, match="already exists"):
        state.create_record(ORG, SLUG, name="dup", cuid="fixed-b")
    with pytest.raises(SimNotFoundError):
        state.get_record("missing")


def test_returned_records_are_copies(state: SimState) -> None:
    fields = {"model": {"charter": "c"}}
    rec = state.create_record(ORG, SLUG, name="A", custom_fields=fields)
    fields["model"]["charter"] = "changed"
    rec["custom_fields"]["model"]["charter"] = "changed too"
    page, _ = state.active_records(ORG, SLUG)
    page[0]["custom_fields"]["model"]["charter"] = "and again"
    assert state.get_record(rec["cuid"])["custom_fields"] == {"model": {"charter": "c"}}


def test_custom_fields_must_be_an_object(state: SimState) -> None:
    with pytest.raises(ValueError, match="object"):
        state.create_record(ORG, SLUG, name="A", custom_fields=["x"])  # type: ignore[arg-type]
    rec = state.create_record(ORG, SLUG, name="A")
    with pytest.raises(ValueError, match="object"):
        state.update_record(rec["cuid"], custom_fields="x")  # type: ignore[arg-type]


def test_active_records_slices(state: SimState) -> None:
    cuids = [state.create_record(ORG, SLUG, name=f"R{i}")["cuid"] for i in range(7)]
    state.archive_record(cuids[1])
    page, total = state.active_records(ORG, SLUG, offset=2, limit=3)
    assert total == 6
    assert [r["cuid"] for r in page] == [cuids[3], cuids[4], cuids[5]]
    assert set(page[0]) == {"cuid", "name", "custom_fields"}
    assert state.active_records(ORG, SLUG, offset=6, limit=3) == ([], 6)


def test_bulk_create(state: SimState) -> None:
    heard: list[Change] = []
    state.add_listener(heard.append)
    cuids = state.bulk_create(ORG, SLUG, count=250, charter_bytes=900, name_prefix="Perf")
    assert len(set(cuids)) == 250
    page, total = state.active_records(ORG, SLUG, offset=249, limit=10)
    assert total == 250 and page[0]["name"] == "Perf 000250"
    assert len(page[0]["custom_fields"]["charter"]) == 900
    assert [(c.type, c.record_cuid) for c in heard] == [("record.created", cuids[-1])]
    assert state.bulk_create(ORG, SLUG, count=0) == [] and len(heard) == 1
    with pytest.raises(ValueError):
        state.bulk_create(ORG, SLUG, count=-1)
    assert bulk_charter(0) == "" and len(bulk_charter(5000)) == 5000


def test_listeners_hear_every_change(state: SimState, caplog: pytest.LogCaptureFixture) -> None:
    heard: list[Change] = []

    def broken(change: Change) -> None:
        raise RuntimeError("listener bug")

    state.add_listener(broken)
    state.add_listener(heard.append)
    rec = state.create_record(ORG, SLUG, name="A")
    cuid = rec["cuid"]
    state.update_record(cuid, name="B")
    state.archive_record(cuid)
    state.archive_record(cuid)  # no-op: no change
    state.unarchive_record(cuid)
    state.delete_record(cuid)
    assert [c.type for c in heard] == [
        "record.created",
        "record.updated",
        "record.archived",
        "record.created",  # unarchive
        "record.deleted",
    ]
    assert all(c.org_cuid == ORG and c.record_cuid == cuid for c in heard)
    assert all(c.occurred_at.tzinfo is not None for c in heard)
    assert "sim listener failed" in caplog.text  # a broken listener never breaks the change
    state.remove_listener(heard.append)
    state.remove_listener(heard.append)  # twice is fine
    state.create_record(ORG, SLUG, name="C")
    assert len(heard) == 5


def test_faults_validation() -> None:
    assert validate_faults({}) == {}
    assert validate_faults({"status": 503, "retry_after": 2}) == {
        "status": 503,
        "retry_after": 2,
        "endpoints": ["agents"],
    }
    assert validate_faults({"wrong_org": False, "empty_answer": True}) == {
        "empty_answer": True,
        "endpoints": ["agents"],
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"stauts": 500}, "stauts"),
        ({"status": 99}, "status"),
        ({"endpoints": ["agentz"]}, "agentz"),
        ({"times": 0}, "times"),
        ({"delay_seconds": -1}, "delay_seconds"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            validate_faults(bad)


def test_faults_apply_to_their_endpoints_and_count_down(state: SimState) -> None:
    assert state.take_faults("agents") == {}
    state.set_faults(status=500)
    assert state.take_faults("agents")["status"] == 500
    assert state.take_faults("organizations") == {}
    assert state.faults["status"] == 500  # persists until cleared
    state.set_faults(empty_answer=True, endpoints=["organizations", "agents"], times=2)
    assert "status" not in state.faults  # set_faults replaces
    assert state.take_faults("connection") == {}  # not counted
    assert state.take_faults("organizations")["empty_answer"]
    assert state.take_faults("agents")["times"] == 1
    assert state.take_faults("agents") == {} and state.faults == {}
    state.set_faults(malformed_json=True, endpoints=["*"])
    assert state.take_faults("model-configs")["malformed_json"]
    state.clear_faults()
    assert state.faults == {} and state.take_faults("agents") == {}
    state.set_faults(status=500)
    state.set_faults()
    assert state.faults == {}


def test_dump(state: SimState) -> None:
    rec = state.create_record(ORG, SLUG, name="A", custom_fields={"charter": "c"})
    state.set_faults(wrong_org=True)
    dump = state.dump()
    assert {o["cuid"] for o in dump["orgs"]} == {ORG, "org-2"}
    assert {(rt["org_cuid"], rt["slug"]) for rt in dump["record_types"]} == {
        (ORG, SLUG),
        (ORG, "model"),
    }
    assert dump["custom_fields"] == [
        {
            "org_cuid": ORG,
            "record_type_slug": SLUG,
            "key": "charter",
            "name": "Charter",
            "field_type": "long-text",
        }
    ]
    assert dump["records"] == [state.get_record(rec["cuid"])]
    assert dump["faults"]["wrong_org"] is True


def test_concurrent_changes_are_safe(state: SimState) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(50):
                rec = state.create_record(ORG, SLUG, name=f"{n}-{i}")
                if i % 2:
                    state.archive_record(rec["cuid"])
                state.active_records(ORG, SLUG, offset=0, limit=10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    _, total = state.active_records(ORG, SLUG)
    assert total == 8 * 25
    assert len(state.dump()["records"]) == 8 * 50

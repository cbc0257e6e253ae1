"""The planner's safety properties, checked over random registries and pulls."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from atryum.sync.planner import (
    LocalAgent,
    PulledRecord,
    Thresholds,
    make_plan,
    source_hash,
)

T = Thresholds(max_removals=10, max_removal_ratio=0.2)


def rec(cuid: str, name: str = "n", charter: str | None = "c") -> PulledRecord:
    h = source_hash(name=name, description="", charter=charter, org_name="o", slug="s")
    return PulledRecord(cuid, name, "", charter, h)


def local(
    cuid: str,
    *,
    retired: bool = False,
    dependent: bool = False,
    missing: bool = False,
    name: str = "n",
) -> LocalAgent:
    return LocalAgent(
        id=f"id-{cuid}",
        vm_cuid=cuid,
        name=name,
        source_hash=rec(cuid, name).source_hash,
        retired=retired,
        missing=missing,
        dependent=dependent,
    )


def test_classifies_create_update_unchanged_restore_retire_keep() -> None:
    agents = [
        local("same"),
        local("changed"),
        local("back", retired=True),
        local("gone"),
        local("bound-gone", dependent=True),
        local("bound-back", dependent=True, missing=True),
    ]
    records = [rec("same"), rec("changed", name="new"), rec("back"), rec("new"), rec("bound-back")]
    plan = make_plan(agents, records, complete=True, thresholds=T, allow_removals=False)
    assert [r.cuid for r in plan.creates] == ["new"]
    assert sorted(a.vm_cuid for a, _ in plan.updates) == ["bound-back", "changed"]
    assert [a.vm_cuid for a in plan.unchanged] == ["same"]
    assert [a.vm_cuid for a, _ in plan.restores] == ["back"]
    assert [a.vm_cuid for a in plan.retires] == ["gone"]
    assert [a.vm_cuid for a in plan.keeps] == ["bound-gone"]


def test_incomplete_pull_retires_nothing() -> None:
    plan = make_plan(
        [local("a"), local("b")], [rec("a")], complete=False, thresholds=T, allow_removals=False
    )
    assert plan.retires == [] and plan.held == [] and plan.keeps == []


def test_threshold_holds_mass_retirement_unless_allowed() -> None:
    agents = [local(f"a{i}") for i in range(40)]
    records = [rec(f"a{i}") for i in range(25)]  # 15 of 40 gone: > 10 and > 20 %
    held = make_plan(agents, records, complete=True, thresholds=T, allow_removals=False)
    assert held.retires == [] and len(held.held) == 15 and "15 of 40" in held.held_reason
    allowed = make_plan(agents, records, complete=True, thresholds=T, allow_removals=True)
    assert len(allowed.retires) == 15 and allowed.held == []


def test_threshold_needs_both_count_and_ratio() -> None:
    agents = [local(f"a{i}") for i in range(100)]
    # 11 gone: more than max_removals but only 11 % of the registry -> applied
    plan = make_plan(
        agents, [rec(f"a{i}") for i in range(89)], complete=True, thresholds=T, allow_removals=False
    )
    assert len(plan.retires) == 11 and not plan.held


def test_empty_answer_never_retires_everything_without_review() -> None:
    agents = [local(f"a{i}") for i in range(3)]
    plan = make_plan(agents, [], complete=True, thresholds=T, allow_removals=False)
    assert plan.retires == [] and len(plan.held) == 3 and "every one" in plan.held_reason


def test_answer_retiring_every_retirable_agent_is_held_despite_dependents() -> None:
    agents = [local("bound", dependent=True)] + [local(f"a{i}") for i in range(3)]
    plan = make_plan(agents, [], complete=True, thresholds=T, allow_removals=False)
    assert plan.retires == [] and len(plan.held) == 3 and "every one of the 3" in plan.held_reason
    assert [a.vm_cuid for a in plan.keeps] == ["bound"]
    # the bound one still present does not make the rest look like a partial change either
    plan = make_plan(agents, [rec("bound")], complete=True, thresholds=T, allow_removals=False)
    assert plan.retires == [] and len(plan.held) == 3
    allowed = make_plan(agents, [], complete=True, thresholds=T, allow_removals=True)
    assert len(allowed.retires) == 3 and allowed.held == []


def test_only_dependents_or_one_of_several_gone_is_not_held() -> None:
    bound = [local("b1", dependent=True), local("b2", dependent=True)]
    plan = make_plan(bound, [], complete=True, thresholds=T, allow_removals=False)
    assert plan.held == [] and plan.retires == [] and len(plan.keeps) == 2
    agents = [*bound, local("a"), local("b")]
    plan = make_plan(agents, [rec("a")], complete=True, thresholds=T, allow_removals=False)
    assert [a.vm_cuid for a in plan.retires] == ["b"] and plan.held == []


def test_single_agent_org_losing_its_agent_waits_for_review() -> None:
    plan = make_plan([local("only")], [], complete=True, thresholds=T, allow_removals=False)
    assert plan.retires == [] and [a.vm_cuid for a in plan.held] == ["only"]
    plan = make_plan([local("only")], [], complete=True, thresholds=T, allow_removals=True)
    assert [a.vm_cuid for a in plan.retires] == ["only"]


def test_changed_charter_type_keeps_hash_stable_between_runs() -> None:
    a = source_hash(name="n", description="", charter={"x": 1}, org_name="o", slug="s")
    b = source_hash(name="n", description="", charter={"y": 2}, org_name="o", slug="s")
    assert a == b
    assert a != source_hash(name="n", description="", charter="text", org_name="o", slug="s")


cuids = st.text(alphabet="abcdef", min_size=1, max_size=3)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[LocalAgent], list[PulledRecord], bool, bool]:
    local_cuids = draw(st.lists(cuids, unique=True, max_size=30))
    agents = [
        local(
            c,
            retired=draw(st.booleans()),
            dependent=draw(st.booleans()),
            missing=draw(st.booleans()),
            name=draw(st.sampled_from(["n", "m"])),
        )
        for c in local_cuids
    ]
    pulled = draw(st.lists(cuids, unique=True, max_size=30))
    records = [rec(c, name=draw(st.sampled_from(["n", "m"]))) for c in pulled]
    return agents, records, draw(st.booleans()), draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_property_never_retires_dependents_or_present_records(
    s: tuple[list[LocalAgent], list[PulledRecord], bool, bool],
) -> None:
    agents, records, complete, allow = s
    plan = make_plan(agents, records, complete=complete, thresholds=T, allow_removals=allow)
    retired = {a.vm_cuid for a in plan.retires}
    present = {r.cuid for r in records}
    assert not any(a.dependent for a in plan.retires), "a bound agent was retired"
    assert not retired & present, "a record present in the pull was retired"
    if not complete:
        assert not retired and not plan.held, "an incomplete pull retired something"
    # every record is accounted for exactly once, every local agent at most once
    planned = (
        [r.cuid for r in plan.creates]
        + [a.vm_cuid for a, _ in plan.updates + plan.restores]
        + [a.vm_cuid for a in plan.unchanged]
    )
    assert sorted(planned) == sorted(present)
    touched = planned + [a.vm_cuid for a in plan.retires + plan.keeps + plan.held]
    assert len(touched) == len(set(touched))
    # the deletion valve: never more than the thresholds unless the operator allowed it
    n = len(plan.retires)
    active = sum(1 for a in agents if not a.retired)
    retirable = sum(1 for a in agents if not a.retired and not a.dependent)
    if not allow:
        assert n == 0 or n < retirable, "every agent nothing depends on was retired unreviewed"
        assert not (n > T.max_removals and n > T.max_removal_ratio * active)
    # progress: a complete pull retires every absent agent nothing depends on (or holds them
    # all for review), and keeps every absent dependent
    if complete:
        absent = [a for a in agents if not a.retired and a.vm_cuid not in present]
        gone = {a.vm_cuid for a in absent if not a.dependent}
        assert {a.vm_cuid for a in plan.keeps} == {a.vm_cuid for a in absent if a.dependent}
        if allow or not plan.held:
            assert retired == gone and not plan.held
        else:
            assert not retired and {a.vm_cuid for a in plan.held} == gone

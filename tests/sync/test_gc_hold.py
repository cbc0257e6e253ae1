"""gc_hold: what a sync run settles leaves the collector's passes, and comes back after."""

from __future__ import annotations

import gc
import threading

import pytest

from atryum.sync import gc_hold


def test_settled_objects_are_out_of_collection_until_the_run_ends() -> None:
    def collected() -> set[int]:
        return {id(o) for g in range(3) for o in gc.get_objects(generation=g)}

    assert gc.get_freeze_count() == 0
    with gc_hold.held() as settle:
        kept = [[i] for i in range(1000)]  # long-lived containers, as a run holds them
        assert {id(x) for x in kept} <= collected()
        settle()
        assert gc.get_freeze_count() >= len(kept)
        assert not {id(x) for x in kept} & collected()
    assert gc.get_freeze_count() == 0
    assert {id(x) for x in kept} <= collected()


def test_a_failing_run_puts_everything_back() -> None:
    with pytest.raises(RuntimeError), gc_hold.held() as settle:
        settle()
        raise RuntimeError("the run failed")
    assert gc.get_freeze_count() == 0


def test_the_last_of_two_runs_holding_unfreezes() -> None:
    first_in, second_out = threading.Event(), threading.Event()
    frozen_after_second: list[int] = []

    def second() -> None:
        first_in.wait(10)
        with gc_hold.held() as settle:
            settle()
        frozen_after_second.append(gc.get_freeze_count())
        second_out.set()

    t = threading.Thread(target=second)
    t.start()
    with gc_hold.held() as settle:
        settle()
        first_in.set()
        assert second_out.wait(10)
        t.join(10)
    assert frozen_after_second and frozen_after_second[0] > 0  # the first still held
    assert gc.get_freeze_count() == 0

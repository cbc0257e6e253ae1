"""Keep a sync run's long-lived objects out of the garbage collector's full passes.

A run holds the registry's agents and the pull's fingerprints (two objects per agent: 200 000
at 100 000 agents) until its plan is applied. CPython's full collections, triggered again and
again as that heap grows, walk every one of them each time: measured, a sixth of a no-change
re-sync of 100 000 agents. Inside `held()`, `settle()` moves everything alive at that moment out
of those passes (`gc.freeze`); when the last run holding leaves, it all goes back
(`gc.unfreeze`), and a serving process then freezes its own long-lived objects again
(`atryum.heap.resettle`). Reference counting still frees everything as usual; only garbage in
reference cycles that was created before a settle waits for the end of the run to be collected.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator

from atryum import heap

_lock = threading.Lock()
_holders = 0


@contextlib.contextmanager
def held() -> Iterator[Callable[[], None]]:
    """Yields `settle`; several runs may hold at once (the last one out unfreezes)."""
    global _holders
    with _lock:
        _holders += 1
    try:
        yield gc.freeze
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                gc.unfreeze()
                heap.resettle()
